"""The Lab app: model picker, D3 toggle, lazy loading, run settings, runs from its tabs,
saving, and the File tab. EMT keeps every run fast; no browser."""

from __future__ import annotations

import base64
import datetime
import re

import numpy as np
import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("anywidget")

from ase.build import fcc111
from ase.io import read, write

from nnp_lab.errors import InputError
from nnp_lab.potentials import load_potential
from nnp_lab.widgets import Lab, MoleculeBuilder, NanoparticleBuilder, SlabBuilder
from nnp_lab.widgets import lab as lab_module

RUN_TIMEOUT_S = 300  # a hang guard only


@pytest.fixture
def load_calls(monkeypatch) -> list[tuple[str, str | None]]:
    """Record load_potential calls made by the Lab (and load EMT whatever was picked)."""
    calls: list[tuple[str, str | None]] = []

    def fake_load(name, *, dispersion=None, **_kw):
        calls.append((name, dispersion))
        return load_potential("emt")

    monkeypatch.setattr(lab_module, "load_potential", fake_load)
    return calls


@pytest.fixture
def lab(load_calls) -> Lab:
    return Lab(
        potential="emt", relax_options={"steps": 40}, md_options={"steps": 10, "interval": 5}
    )


def test_model_picker_lists_registered_models_with_level_of_theory(lab: Lab) -> None:
    values = [v for _, v in lab.model.options]
    assert "sevennet-0" in values and "emt" in values
    labels = dict((v, label) for label, v in lab.model.options)
    assert "PBE" in labels["sevennet-0"]  # level of theory shown
    assert lab.model.value == "emt" and lab.model_name == "emt"
    assert Lab().model.value == "sevennet-0"  # the default model
    lab.model.value = "sevennet-0"
    assert "SevenNet-0" in lab.model_info.value


def test_no_model_loaded_at_construction(load_calls) -> None:
    Lab()
    assert load_calls == []


def test_d3_toggle_maps_to_dispersion(lab: Lab, load_calls) -> None:
    assert lab.dispersion is None
    lab.get_potential()
    lab.d3.value = True
    assert lab.dispersion == "d3"
    lab.get_potential()
    lab.model.value = "sevennet-0"
    lab.get_potential()
    assert load_calls == [("emt", None), ("emt", "d3"), ("sevennet-0", "d3")]
    assert "D3" in lab.model_info.value


def test_unknown_model_name_rejected() -> None:
    with pytest.raises(InputError, match="registered"):
        Lab(potential="no-such-model")


def test_given_potential_is_offered_and_used() -> None:
    pot = load_potential("emt")
    lab = Lab(potential=pot)
    assert lab.model.options[0][0].endswith("(passed to Lab)")
    assert lab.get_potential() is pot and lab.model_name == "emt"


def test_settings_map_to_run_options(lab: Lab) -> None:
    s = lab.settings
    s.fmax.value, s.relax_steps.value, s.optimizer.value, s.cell.value = 0.02, 77, "BFGS", True
    assert lab.launcher.options("relax") == {
        "fmax": 0.02,
        "steps": 77,
        "optimizer": "BFGS",
        "cell": True,
    }
    s.ensemble.value = "nve"
    md = lab.launcher.options("md")
    assert md["ensemble"] == "nve" and "thermostat" not in md and "pressure_GPa" not in md
    assert s.thermostat.disabled and s.pressure.disabled
    s.ensemble.value, s.thermostat.value, s.pressure.value = "npt", "nose-hoover", 0.5
    md = lab.launcher.options("md")
    assert md["thermostat"] == "nose-hoover" and md["pressure_GPa"] == 0.5
    s.ensemble.value, s.thermostat.value, s.temperature.value, s.timestep.value = (
        "nvt",
        "bussi",
        450.0,
        2.0,
    )
    md = lab.launcher.options("md")
    assert md == {
        "ensemble": "nvt",
        "thermostat": "bussi",
        "temperature_K": 450.0,
        "timestep_fs": 2.0,
        "steps": 10,
        "interval": 5,
    }


def test_tabs_share_the_labs_launcher(lab: Lab) -> None:
    assert [lab.tabs.get_title(i) for i in range(4)] == ["Molecule", "Slab", "Nanoparticle", "File"]
    assert isinstance(lab.builders["molecule"], MoleculeBuilder)
    assert isinstance(lab.builders["slab"], SlabBuilder)
    assert isinstance(lab.builders["nanoparticle"], NanoparticleBuilder)
    for panel in lab.builders.values():
        assert panel.launcher is lab.launcher
        assert lab.launcher.area not in panel.children  # one live area: the Lab's
    assert lab.launcher.area in lab.children
    lab.tabs.selected_index = 1
    assert lab.atoms.get_chemical_formula() == "Pt36"


def test_relax_from_a_tab_uses_the_labs_model_and_settings(lab: Lab, load_calls) -> None:
    lab.tabs.selected_index = 2
    panel = lab.builders["nanoparticle"]
    panel.set(composition="Cu", shape="icosahedron", size=2)
    lab.settings.relax_steps.value = 25
    panel.relax_button.click()
    live = lab.live
    assert live is not None and live in lab.launcher.area.children
    result = live.wait(timeout=RUN_TIMEOUT_S)
    assert load_calls == [("emt", None)]  # loaded when the run started
    assert result.provenance["parameters"]["steps"] == 25
    assert result.energy < result.initial_energy
    assert lab.result is result


def test_save_built_structure_and_download_link(lab: Lab, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    lab.tabs.selected_index = 1
    lab.builders["slab"].set(size=(2, 2), layers=3, fixed_layers=1, adsorbate="CO", site="fcc")
    lab.filename.value = "co_pt111.extxyz"
    lab.save_button.click()  # no run yet: "auto" saves the built structure
    path = tmp_path / "co_pt111.extxyz"
    assert path.is_file()
    atoms = read(path)
    assert atoms.get_chemical_formula() == "COPt12"
    status = lab.save_status.value
    assert str(path) in status and "Saved the built structure" in status
    match = re.search(r'href="data:application/octet-stream;base64,([^"]+)"', status)
    assert match and base64.b64decode(match.group(1)) == path.read_bytes()
    assert lab.saved_path == path


def test_save_run_result_final_and_frames(lab: Lab, tmp_path) -> None:
    lab.tabs.selected_index = 2
    lab.builders["nanoparticle"].set(
        composition="Cu:0.5,Au:0.5", shape="icosahedron", size=2, seed=0
    )
    live = lab.builders["nanoparticle"].md()
    result = live.wait(timeout=RUN_TIMEOUT_S)
    final = lab.save(tmp_path / "final.extxyz")  # auto: the last run's final structure
    np.testing.assert_allclose(read(final).positions, result.atoms.positions, atol=1e-6)
    frames = lab.save(tmp_path / "md.traj", what="frames")
    assert len(read(frames, index=":")) == len(result.frames) == 3
    built = lab.save(tmp_path / "built.cif", what="built")
    assert len(read(built)) == 13


def test_save_errors_inline(lab: Lab, tmp_path) -> None:
    lab.save_what.value = "final"
    lab.filename.value = str(tmp_path / "x.extxyz")
    lab.save_button.click()
    assert "no run has finished yet" in lab.save_status.value and "#c62828" in lab.save_status.value
    lab.save_what.value = "built"
    lab.filename.value = str(tmp_path / "x.unknownformat")
    lab.save_button.click()
    assert "could not write" in lab.save_status.value
    lab.filename.value = ""
    lab.save_button.click()
    assert "type a file name" in lab.save_status.value


def test_file_tab_reads_path_and_upload(lab: Lab, tmp_path) -> None:
    panel = lab.builders["file"]
    assert panel.atoms is None and panel.error_message == ""  # a grey hint, not an error
    slab = fcc111("Au", size=(2, 2, 2), vacuum=5.0)
    slab.info.clear()  # ASE stores a dict the xyz writer skips with a warning
    write(tmp_path / "au.xyz", [slab, slab])
    assert panel.set(path=str(tmp_path / "au.xyz")).get_chemical_formula() == "Au8"
    assert panel.set(index="7") is None and "no frame 7" in panel.error_message
    assert panel.set(path=str(tmp_path / "missing.cif"), index=-1) is None
    assert "no file at" in panel.error_message
    content = (tmp_path / "au.xyz").read_bytes()
    panel.upload.value = (
        {
            "name": "upload.xyz",
            "type": "",
            "size": len(content),
            "content": memoryview(content),
            "last_modified": datetime.datetime.now(datetime.timezone.utc),
        },
    )
    assert panel.atoms is not None and len(panel.atoms) == 8


def test_properties_tab_computes_on_the_last_builder_tabs_structure():
    from nnp_lab.widgets._properties_panel import PropertiesPanel

    lab = Lab(potential="emt")
    assert isinstance(lab.properties, PropertiesPanel)
    assert lab.tabs.get_title(len(lab.tabs.children) - 1) == "Properties"
    lab.tabs.selected_index = 2  # Nanoparticle: a cluster, not a crystal
    lab.tabs.selected_index = len(lab.tabs.children) - 1
    assert lab.current is lab.builders["nanoparticle"]
    panel = lab.properties
    panel.choice.value = "eos"
    panel.start()
    assert panel.wait(600) is None and "periodic in all three directions" in panel.status.value
    # a crystal (handed to the panel directly: the builders make molecules, slabs, clusters)
    from ase.build import bulk

    cu = bulk("Cu", "fcc", a=3.6)
    panel.get_atoms = lambda: cu
    seen = []
    panel.progress.observe(lambda c: seen.append(c["new"]), names="value")
    panel.start()
    result = panel.wait(600)
    assert result is not None and result.ok, panel.status.value
    assert 120 < result.bulk_modulus_GPa < 150
    assert panel.progress.value == panel.progress.max and len(set(seen)) >= 2
    assert "EOSResult" in panel.numbers.value and len(panel.plot_area.children) == 1
    # the surface option is read from its field
    panel.choice.value = "surface"
    assert panel._options.children == (panel.miller,)
    panel.miller.value = "1 0 0"
    panel.start()
    assert panel.wait(600).miller == (1, 0, 0)
