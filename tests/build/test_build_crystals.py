"""Tests for bulk, supercell, vacancy and the crystal library."""

from __future__ import annotations

import numpy as np
import pytest
from ase.constraints import FixAtoms
from ase.neighborlist import neighbor_list
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from nnp_lab.build import bulk, crystal, list_crystals, supercell, vacancy
from nnp_lab.errors import InputError


def test_bulk_reference_structures() -> None:
    pt = bulk("Pt")
    assert len(pt) == 1 and pt.pbc.all()
    assert pt.info["built_by"]["crystalstructure"] == "fcc"
    assert pt.info["built_by"]["a"] == pytest.approx(3.92)
    assert len(bulk("Pt", cubic=True)) == 4
    assert len(bulk("Mg")) == 2
    nacl = bulk("NaCl", "rocksalt", a=5.64)
    assert nacl.get_chemical_formula() == "ClNa"
    assert nacl.get_distance(0, 1, mic=True) == pytest.approx(2.82)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("Xx",), {}, "Unknown element 'Xx'"),
        (("Cu", "zigzag"), {}, "Unknown crystal structure 'zigzag'.*fcc"),
        (("Cu", "bcc"), {}, "pass the lattice constant"),
        (("H",), {}, "crystalstructure=... and a=..."),
        (("NaCl",), {}, "compound"),
        (("Cu",), {"a": -3.6}, "positive"),
    ],
)
def test_bulk_errors(args: tuple, kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        bulk(*args, **kwargs)


def test_supercell_forms() -> None:
    cu = bulk("Cu", cubic=True)
    assert len(supercell(cu, 2)) == 32
    assert len(supercell(cu, (2, 1, 3))) == 24
    prim = bulk("Cu")
    conv = supercell(prim, [[-1, 1, 1], [1, -1, 1], [1, 1, -1]])
    assert len(conv) == 4
    assert np.allclose(conv.cell.cellpar(), [3.61, 3.61, 3.61, 90, 90, 90])
    assert conv.info["built_by"]["parent"]["builder"] == "bulk"


def test_supercell_keeps_fixatoms() -> None:
    cu = bulk("Cu", cubic=True)
    cu.set_constraint(FixAtoms(indices=[0]))
    big = supercell(cu, (2, 1, 1))
    fixed = big.constraints[0].get_indices()
    assert len(fixed) == 2
    pos = sorted(big.positions[fixed].round(6).tolist())
    assert np.allclose(pos, [[0, 0, 0], [3.61, 0, 0]])  # the copies of atom 0
    big2 = supercell(cu, [[2, 0, 0], [0, 1, 0], [0, 0, 1]])
    assert len(big2.constraints[0].get_indices()) == 2


@pytest.mark.parametrize(
    ("size", "match"),
    [
        (0, ">= 1"),
        ((2, 0, 1), "positive"),
        ([[1, 0, 0], [0, 1, 0], [2, 0, 0]], "singular"),
        ([[0, 1, 0], [1, 0, 0], [0, 0, 1]], "negative determinant"),
        ([[1.5, 0, 0], [0, 1, 0], [0, 0, 1]], "integers"),
        ("big", "size must be"),
    ],
)
def test_supercell_errors(size: object, match: str) -> None:
    with pytest.raises(InputError, match=match):
        supercell(bulk("Cu"), size)  # type: ignore[arg-type]


def test_vacancy() -> None:
    nacl = supercell(bulk("NaCl", "rocksalt", a=5.64, cubic=True), 2)
    n = len(nacl)
    last = nacl[-1]
    out = vacancy(nacl, -1)
    assert len(out) == n - 1
    assert out.get_chemical_symbols().count(last.symbol) == n // 2 - 1
    rec = out.info["built_by"]
    assert rec["element"] == last.symbol
    assert np.allclose(rec["position"], last.position)
    assert rec["index"] == n - 1
    assert len(vacancy(nacl, 0)) == n - 1
    with pytest.raises(InputError, match="out of range"):
        vacancy(nacl, n)
    with pytest.raises(InputError, match="out of range"):
        vacancy(nacl, -n - 1)
    with pytest.raises(InputError, match="supercell"):
        vacancy(bulk("Cu"), 0)


EXPECTED = {
    # name: (atoms conventional, atoms primitive, space group number, formula unit, n units)
    "LiFePO4": (28, 28, 62, {"Li": 1, "Fe": 1, "P": 1, "O": 4}, 4),
    "Mg-MOF-74": (162, 54, 148, {"Mg": 2, "C": 8, "H": 2, "O": 6}, 9),
    "LiFeSO4F": (16, 16, 2, {"Li": 1, "Fe": 1, "S": 1, "O": 4, "F": 1}, 2),
}


def test_list_crystals() -> None:
    assert list_crystals() == list(EXPECTED)


@pytest.mark.filterwarnings("ignore:Set OLD_ERROR_HANDLING:DeprecationWarning")
@pytest.mark.parametrize("name", list(EXPECTED))
@pytest.mark.parametrize("primitive", [False, True])
def test_crystal_library(name: str, primitive: bool) -> None:
    n_conv, n_prim, sg, unit, units = EXPECTED[name]
    atoms = crystal(name.upper(), primitive=primitive)  # lookup is case-insensitive
    n = n_prim if primitive else n_conv
    assert len(atoms) == n
    symbols = atoms.get_chemical_symbols()
    scale = units * n // n_conv
    assert {s: symbols.count(s) for s in unit} == {s: c * scale for s, c in unit.items()}
    assert len(set(symbols)) == len(unit)
    structure = AseAtomsAdaptor.get_structure(atoms)
    assert SpacegroupAnalyzer(structure, symprec=0.1).get_space_group_number() == sg
    d = neighbor_list("d", atoms, 0.9)
    assert len(d) == 0, f"atoms closer than 0.9 Å in {name}: {d.min() if len(d) else None}"
    rec = atoms.info["built_by"]
    assert rec["spacegroup_number"] == sg and rec["citation"]
    assert atoms.pbc.all()


def test_crystal_unknown_name_lists_names() -> None:
    with pytest.raises(InputError) as err:
        crystal("MOF-5")
    for name in EXPECTED:
        assert name in str(err.value)
    assert len(crystal("cpo-27-mg")) == 162  # alias
