"""Builder panels: .atoms after setting inputs, inline errors, debounced rebuilds, site
markers, and the Relax / MD buttons starting live runs (EMT, so each run takes well under a
second). No browser: the widgets' comms are dummies."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("anywidget")

from ase import Atoms
from ase.calculators.emt import EMT
from ase.constraints import FixAtoms

from nnp_lab.errors import InputError
from nnp_lab.widgets import MoleculeBuilder, NanoparticleBuilder, SlabBuilder
from nnp_lab.widgets import builders
from nnp_lab.widgets.builders import RunLauncher

RUN_TIMEOUT_S = 300  # a hang guard only


def emt_energy(atoms: Atoms) -> float:
    atoms = atoms.copy()
    atoms.calc = EMT()
    return float(atoms.get_potential_energy())


def count_builds(panel, monkeypatch) -> list[int]:
    """Count calls of the panel's _build from now on."""
    calls: list[int] = []
    original = panel._build

    def counting() -> Atoms:
        calls.append(1)
        return original()

    monkeypatch.setattr(panel, "_build", counting)
    return calls


def small_pt111(**extra) -> SlabBuilder:
    sb = SlabBuilder(potential="emt")
    sb.set(
        element="Pt", miller=(1, 1, 1), layers=3, size=(2, 2), fixed_layers=1, vacuum=6.0, **extra
    )
    return sb


# ---------------------------------------------------------------------------------------------
# Molecule
# ---------------------------------------------------------------------------------------------


def test_molecule_from_smiles_and_name() -> None:
    mb = MoleculeBuilder()
    assert mb.atoms.get_chemical_formula() == "C2H6O"  # default CCO
    mb.set(spec="c1ccccc1O")
    atoms = mb.atoms
    assert atoms.get_chemical_formula() == "C6H6O" and len(atoms) == 13
    assert mb.viewer.n_atoms == 13
    np.testing.assert_allclose(mb.viewer.positions, atoms.positions, atol=1e-4)
    mb.spec.value = "H2O"  # what a commit in the browser does
    assert mb.atoms.get_chemical_formula() == "H2O"
    assert mb.error_message == "" and mb.error.value == ""
    assert not mb.relax_button.disabled and not mb.md_button.disabled


def test_molecule_atoms_is_a_copy() -> None:
    mb = MoleculeBuilder("CO")
    a = mb.atoms
    a.positions += 5.0
    assert not np.allclose(mb.atoms.positions, a.positions)


def test_invalid_smiles_shown_inline_and_atoms_none() -> None:
    mb = MoleculeBuilder("CCO")
    shown_before = mb.viewer.n_atoms
    mb.spec.value = "C1CC("  # must not raise
    assert mb.atoms is None
    assert "SMILES" in mb.error_message and "could not be parsed" in mb.error_message
    assert "#c62828" in mb.error.value and "SMILES" in mb.error.value  # red line
    assert mb.relax_button.disabled and mb.md_button.disabled
    # the preview keeps the last valid structure, labelled as stale
    assert mb.viewer.n_atoms == shown_before and "last valid" in mb.viewer.label
    mb.spec.value = "CC"
    assert mb.atoms.get_chemical_formula() == "C2H6" and mb.error_message == ""


def test_text_inputs_commit_on_enter_not_per_keystroke() -> None:
    mb = MoleculeBuilder()
    sb = SlabBuilder()
    nb = NanoparticleBuilder()
    for text in (mb.spec, sb.element, sb.adsorbate, sb.binding_atom, nb.composition):
        assert text.continuous_update is False


# ---------------------------------------------------------------------------------------------
# Slab
# ---------------------------------------------------------------------------------------------


def test_slab_counts_fixed_layers_and_sites() -> None:
    sb = SlabBuilder()  # Pt(111), 4 layers, 3x3, 2 fixed
    atoms = sb.atoms
    assert atoms.get_chemical_formula() == "Pt36"
    (fix,) = [c for c in atoms.constraints if isinstance(c, FixAtoms)]
    assert len(fix.get_indices()) == 18
    kinds = [s.kind for s in sb.sites]
    assert kinds == ["top", "bridge", "fcc", "hcp"]
    assert [v for _, v in sb.site.options] == ["top-0", "bridge-0", "fcc-0", "hcp-0"]
    assert sb.atoms.pbc.all() and "X" not in atoms.get_chemical_symbols()


def test_slab_set_rebuilds_once(monkeypatch) -> None:
    sb = SlabBuilder()
    calls = count_builds(sb, monkeypatch)
    atoms = sb.set(
        element="Cu", miller=(1, 0, 0), layers=3, size=(2, 2), vacuum=8.0, fixed_layers=1
    )
    assert len(calls) == 1
    assert atoms.get_chemical_formula() == "Cu12"
    assert [s.kind for s in sb.sites] == ["top", "bridge", "hollow"]
    # the site dropdown follows the new slab
    assert [v for _, v in sb.site.options] == ["top-0", "bridge-0", "hollow-0"]
    # one committed widget change = one rebuild
    sb.layers.value = 4
    assert len(calls) == 2 and len(sb.atoms) == 16


def test_site_markers_in_preview_and_selection() -> None:
    sb = small_pt111()
    n = len(sb.atoms)
    sites = sb.sites
    # one dummy marker atom (Z=0) per site, after the real atoms, above the surface
    assert sb.viewer.n_atoms == n + len(sites)
    assert np.all(sb.viewer.numbers[n:] == 0)
    top_z = sb.atoms.positions[:, 2].max()
    assert np.all(sb.viewer.positions[n:, 2] > top_z + 1.5)
    np.testing.assert_allclose(
        sb.viewer.positions[n:, :2], [s.position[:2] for s in sites], atol=1e-4
    )
    # the selected site's marker and surface atoms are highlighted
    sb.set(site="hcp")
    hcp = sb.selected_site
    assert hcp.kind == "hcp"
    assert set(sb.viewer.selected) == {n + sites.index(hcp), *hcp.atoms}
    assert "hcp-0" in sb.site_table.value
    # a click on a marker in the browser selects that site
    fcc_index = n + [s.kind for s in sites].index("fcc")
    sb.viewer.selected = [fcc_index]
    assert sb.site.value == "fcc-0"
    assert fcc_index in sb.viewer.selected


def test_adsorbate_added_at_chosen_site() -> None:
    sb = small_pt111()
    slab = sb.atoms
    z_top = slab.positions[:, 2].max()
    for kind in ("fcc", "hcp", "top"):
        atoms = sb.set(adsorbate="CO", site=kind, height=1.5)
        site = sb.selected_site
        assert site.kind == kind
        assert atoms.get_chemical_formula() == "COPt12"
        c, o = atoms[-2], atoms[-1]
        assert (c.symbol, o.symbol) == ("C", "O")
        # C sits on the site (modulo the surface cell), 1.5 Å above the top layer, O above C
        d = c.position[:2] - site.position[:2]
        frac = np.linalg.solve(slab.cell[:2, :2].T, d)
        assert np.allclose(frac - np.round(frac), 0.0, atol=1e-6)
        assert c.position[2] == pytest.approx(z_top + 1.5, abs=0.05)
        assert o.position[2] > c.position[2] + 1.0
        # markers are hidden while an adsorbate is placed; site atoms stay highlighted
        assert sb.viewer.n_atoms == len(atoms)
        assert set(sb.viewer.selected) == set(site.atoms)
    # binding atom by element: O down
    atoms = sb.set(binding_atom="O")
    assert atoms[-1].symbol == "O" and atoms[-1].position[2] < atoms[-2].position[2]
    # clearing the adsorbate gives the bare slab back
    assert sb.set(adsorbate="").get_chemical_formula() == "Pt12"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"miller": (0, 0, 0)}, "does not define a plane"),
        ({"element": "Xx"}, "Unknown element 'Xx'"),
        ({"fixed_layers": 3}, "fixed_layers=3"),
        ({"element": ""}, "enter an element"),
        ({"adsorbate": "C1CC("}, "Adsorbate"),
        ({"adsorbate": "CO", "binding_atom": "N"}, "not an element of the adsorbate"),
    ],
)
def test_slab_errors_inline(values, expected) -> None:
    sb = small_pt111()
    assert sb.atoms is not None
    assert sb.set(**values) is None  # never raises
    assert sb.atoms is None and sb.slab is None and sb.sites == []
    assert expected in sb.error_message
    assert "#c62828" in sb.error.value
    assert sb.relax_button.disabled
    # fixing the input clears the error
    assert (
        sb.set(element="Pt", miller=(1, 1, 1), fixed_layers=1, adsorbate="", binding_atom="0")
        is not None
    )
    assert sb.error_message == ""


def test_slab_unknown_site_in_set_raises() -> None:
    sb = SlabBuilder()
    sb.set(element="Cu", miller=(1, 0, 0))
    with pytest.raises(InputError, match="available: top-0, bridge-0, hollow-0"):
        sb.set(site="fcc")


# ---------------------------------------------------------------------------------------------
# Nanoparticle
# ---------------------------------------------------------------------------------------------


def test_nanoparticle_composition_and_counts() -> None:
    nb = NanoparticleBuilder()  # Pt/Pd/Rh/Ir/Ru cuboctahedron, 55 atoms
    counts = dict(zip(*np.unique(nb.atoms.get_chemical_symbols(), return_counts=True)))
    assert counts == {"Ir": 11, "Pd": 11, "Pt": 11, "Rh": 11, "Ru": 11}
    atoms = nb.set(composition="Cu:0.25, Au:0.75", shape="icosahedron", size=3, seed=1)
    symbols = atoms.get_chemical_symbols()
    assert len(atoms) == 55 and symbols.count("Au") == 41 and symbols.count("Cu") == 14
    assert not atoms.pbc.any()
    same = nb.set(seed=1)
    assert same.get_chemical_symbols() == symbols  # the seed makes it reproducible
    other = nb.set(seed=2)
    assert other.get_chemical_symbols() != symbols
    assert (
        nb.set(composition={"Ni": 1}, shape="octahedron", size=3).get_chemical_formula() == "Ni19"
    )
    assert nb.set(composition="Pt", shape="cuboctahedron", size=2).get_chemical_formula() == "Pt13"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"composition": "Pt:abc"}, "is not a number"),
        ({"composition": "Qq"}, "Qq"),
        ({"composition": ""}, "enter an element"),
        ({"shape": "wulff", "size": 1}, "size must be >= 2"),
    ],
)
def test_nanoparticle_errors_inline(values, expected) -> None:
    nb = NanoparticleBuilder("Cu")
    assert nb.set(**values) is None
    assert nb.atoms is None and expected in nb.error_message


# ---------------------------------------------------------------------------------------------
# Relax / MD buttons (live runs)
# ---------------------------------------------------------------------------------------------


def test_relax_button_runs_and_lowers_energy() -> None:
    nb = NanoparticleBuilder("Cu", potential="emt", relax_options={"fmax": 0.05, "steps": 60})
    nb.set(shape="icosahedron", size=2)
    start = nb.atoms
    nb.relax_button.click()
    live = nb.live
    assert live is not None and live in nb.launcher.area.children
    assert nb.launcher.area in nb.children  # shown below the panel
    result = live.wait(timeout=RUN_TIMEOUT_S)
    assert live.done and live.error is None
    assert result.energy < emt_energy(start) - 1e-3
    assert result.atoms.get_chemical_formula() == "Cu13"
    assert "finished" in nb.launcher.status.value
    np.testing.assert_allclose(nb.atoms.positions, start.positions)  # the build is untouched
    # the run played in the panel's own view (the structure is not shown twice), whose player
    # then holds its frames, the last one shown; the run box holds the plots and controls only
    assert live.viewer is nb.viewer and nb.viewer not in live.children
    assert nb.viewer.n_frames == len(result.frames) and not nb.viewer.running
    np.testing.assert_allclose(nb.viewer.to_atoms().positions, result.atoms.positions, atol=1e-5)
    nb.set(size=3)  # a new build replaces the player with the new structure
    assert nb.viewer.n_frames == 0 and nb.viewer.n_atoms == 55


def test_inputs_changed_during_a_run_in_the_view_wait_for_it() -> None:
    import threading

    from tests.simulate.potentials_for_tests import HeldPotential

    gate = threading.Event()
    held = HeldPotential({2: gate})  # the run stops at its 2nd evaluation until released
    nb = NanoparticleBuilder("Cu", potential=held, relax_options={"fmax": 0.05, "steps": 50})
    nb.set(shape="icosahedron", size=2)
    live = nb.relax()
    assert held.holding.wait(RUN_TIMEOUT_S)
    try:
        nb.set(size=3)  # 55 atoms built; the view keeps playing the 13-atom run
        assert nb.atoms is not None and len(nb.atoms) == 55
        assert nb.viewer.n_atoms == 13 and nb.viewer.running
    finally:
        gate.set()
        live.wait(timeout=RUN_TIMEOUT_S)
    assert not nb.viewer.running


def test_relax_button_on_slab_keeps_fixed_atoms() -> None:
    sb = small_pt111(adsorbate="", site="fcc")
    sb.launcher.relax_options["steps"] = 15
    sb.relax_button.click()
    result = sb.live.wait(timeout=RUN_TIMEOUT_S)
    assert result.n_steps <= 15 and result.energy < result.initial_energy
    fixed = sb.atoms.constraints[0].get_indices()
    np.testing.assert_allclose(result.atoms.positions[fixed], sb.atoms.positions[fixed], atol=1e-9)


def test_md_button_runs() -> None:
    nb = NanoparticleBuilder(
        "Cu:0.5,Au:0.5",
        potential="emt",
        md_options={"steps": 20, "interval": 5, "temperature_K": 500, "seed": 3},
    )
    nb.set(shape="cuboctahedron", size=2)
    nb.md_button.click()
    result = nb.live.wait(timeout=RUN_TIMEOUT_S)
    assert result.n_steps == 20
    assert len(result.frames) == 5  # steps 0, 5, 10, 15, 20
    assert result.provenance["parameters"]["ensemble"] == "nvt"


def test_run_refused_while_one_is_going() -> None:
    nb = NanoparticleBuilder("Cu", potential="emt", md_options={"steps": 100_000, "interval": 50})
    nb.set(shape="icosahedron", size=2)
    first = nb.md()
    try:
        assert nb.launcher.busy
        assert nb.relax() is None
        assert "still going" in nb.launcher.status.value
    finally:
        first.stop()
        result = first.wait(timeout=RUN_TIMEOUT_S)
    assert result.stopped
    assert nb.relax() is not None  # free again
    nb.live.wait(timeout=RUN_TIMEOUT_S)


def test_run_errors_shown_inline() -> None:
    # EMT does not cover Rh/Ir/Ru: the reason (and the models that do) is shown, not raised
    nb = NanoparticleBuilder(potential="emt")
    assert nb.relax() is None
    status = nb.launcher.status.value
    assert "#c62828" in status and "Could not start the relaxation" in status
    # an unknown model name
    mb = MoleculeBuilder("H2", potential="no-such-model")
    assert mb.md() is None and "no-such-model" in mb.launcher.status.value
    # no structure: the buttons are disabled, and the methods say why
    mb.set(spec="C1CC(")
    assert mb.relax() is None and "fix the error" in mb.launcher.status.value


def test_launcher_options_and_potential_provider() -> None:
    calls = []

    def provider():
        calls.append(1)
        return "emt"

    launcher = RunLauncher(provider, relax_options={"fmax": 0.1})
    assert launcher.options("relax") == {**builders.DEFAULT_RELAX_OPTIONS, "fmax": 0.1}
    assert launcher.options("md") == builders.DEFAULT_MD_OPTIONS
    assert calls == []  # nothing resolved (no model loaded) before a run starts
    assert launcher.resolve_potential().name == "emt" and calls == [1]
    # panels sharing a launcher show no run area of their own
    panel = MoleculeBuilder("H2", launcher=launcher)
    assert launcher.area not in panel.children and panel.potential is provider


def test_edits_in_the_preview_are_the_panel_structure_until_an_input_changes() -> None:
    sb = small_pt111(adsorbate="", site="fcc")
    built = sb.atoms
    n = len(built)
    markers = [i for i, z in enumerate(sb.viewer.numbers) if z == 0]
    assert markers  # the sites are drawn as markers
    # add CO on a marker (what "Add on picked" does after clicking one): on that site
    marker = markers[0]
    edit = sb.viewer.add("CO", on_atom=marker, height=1.3)
    assert "site" in edit.arguments
    atoms = sb.atoms
    assert len(atoms) == n + 2 and 0 not in atoms.numbers  # markers never leave the view
    np.testing.assert_allclose(atoms.positions[-2, :2], sb.viewer.positions[marker, :2], atol=1e-4)
    top = built.positions[:, 2].max()
    assert atoms.positions[-2, 2] == pytest.approx(
        top + 1.3, abs=0.05
    )  # from the slab, not the markers
    sb.viewer.delete([0])
    assert len(sb.atoms) == n + 1
    sb.viewer.undo()
    sb.viewer.undo()
    assert len(sb.atoms) == n and sb.viewer.history == []
    sb.viewer.move([0], (0, 0, 0.3))
    assert sb.atoms.positions[0, 2] == pytest.approx(built.positions[0, 2] + 0.3)
    sb.set(layers=4)  # a new build replaces the edit
    assert sb.viewer.history == [] and len(sb.atoms) == 4 * n // 3


def test_the_preview_relax_button_uses_the_panel_model() -> None:
    nb = NanoparticleBuilder("Cu", potential="emt", relax_options={"fmax": 0.05, "steps": 30})
    nb.set(shape="icosahedron", size=2)
    live = nb.viewer.relax(steps=30)
    result = live.wait(timeout=RUN_TIMEOUT_S)
    assert result.provenance["model"] == "emt"
    assert nb.viewer.label.startswith(("relaxed", "not converged"))
