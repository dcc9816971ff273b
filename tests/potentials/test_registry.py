"""load_potential / list_potentials / resolve_potential and their errors."""

import pytest
from ase.build import bulk

import nnp_lab
from nnp_lab.errors import InputError, UnknownModelError
from nnp_lab.potentials import Potential, list_potentials, load_potential, resolve_potential

REQUIRED = [
    "sevennet-0",
    "sevennet-mf-0-pbe",
    "sevennet-mf-0-r2scan",
    "sevennet-l3i5",
    "chgnet-0.3.0",
    "chgnet-r2scan",
    "emt",
]


def test_all_required_models_registered_and_offline():
    table = list_potentials()
    assert set(REQUIRED) <= set(table["name"])
    assert list(table.columns[:6]) == [
        "name",
        "elements",
        "level_of_theory",
        "licence",
        "size_MB",
        "offline",
    ]
    rows = table.set_index("name")
    for name in REQUIRED:
        assert rows.loc[name, "offline"] == "yes", name
    assert rows.loc["sevennet-0", "elements"] == 89
    assert rows.loc["sevennet-0", "size_MB"] > 1
    assert rows.loc["sevennet-0", "licence"] == "MIT"
    assert rows.loc["emt", "elements"] == 11


def test_top_level_exports():
    assert nnp_lab.load_potential is load_potential
    assert nnp_lab.list_potentials is list_potentials


def test_models_are_cached():
    a = load_potential("emt")
    b = load_potential("EMT", device="cpu")
    assert a is b


def test_default_model_metadata():
    pot = load_potential()
    assert pot.name == "sevennet-0"
    assert pot is resolve_potential(None)
    assert pot.device == "cpu"  # no GPU on the test machines; 'auto' resolved to cpu
    assert pot.dtype == "float32"
    assert pot.cutoff == 5.0
    assert len(pot.elements) == 89
    assert "MPtrj" in pot.level_of_theory
    assert "Park" in pot.citation
    assert pot.licence.startswith("MIT")
    prov = pot.provenance()
    assert prov["model"] == "sevennet-0" and prov["packages"]["sevenn"]


def test_unknown_name_lists_registered_names():
    with pytest.raises(UnknownModelError) as err:
        load_potential("sevennet-99")
    msg = str(err.value)
    assert "sevennet-99" in msg and "sevennet-0" in msg and "chgnet-0.3.0" in msg
    assert isinstance(err.value, ValueError)


def test_missing_model_file_says_so(tmp_path):
    with pytest.raises(UnknownModelError, match="does not exist"):
        load_potential(tmp_path / "nope.pt")


def test_bad_device_and_dispersion():
    with pytest.raises(InputError, match="device"):
        load_potential("emt", device="tpu")
    with pytest.raises(InputError, match="dispersion"):
        load_potential("emt", dispersion="d4")


def test_resolve_accepts_names_and_potentials():
    pot = load_potential("emt")
    assert resolve_potential("emt") is pot
    assert resolve_potential(pot) is pot
    with pytest.raises(InputError):
        resolve_potential(42)


def test_d3_shares_the_loaded_model_and_adds_energy():
    base = load_potential("sevennet-0")
    d3 = load_potential("sevennet-0", dispersion="d3")
    assert d3 is not base and d3.model is base.model
    assert d3.name == "sevennet-0+d3"
    assert "D3" in d3.level_of_theory
    si = bulk("Si", "diamond", 5.43)
    e0 = base.evaluate([si])[0]["energy"]
    e1 = d3.evaluate([si])[0]["energy"]
    assert e1 < e0 - 0.05  # dispersion is attractive
    assert d3.provenance()["dispersion"]["cutoff_A"] == 20.0


def test_potential_is_abstract():
    with pytest.raises(TypeError):
        Potential()


@pytest.mark.parametrize("name", ["sevennet-0", "sevennet-mf-0-pbe", "sevennet-l3i5"])
def test_listed_element_coverage_matches_the_checkpoint(name):
    from nnp_lab.potentials.registry import _REGISTRY

    assert _REGISTRY[name].elements() == load_potential(name).elements


def test_listing_models_does_not_import_the_model_packages():
    import subprocess
    import sys

    code = (
        "import sys, nnp_lab; nnp_lab.list_potentials(); "
        "print(sorted(m for m in ('sevenn', 'chgnet', 'torch_geometric') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
