"""Tests for nnp_lab.build.molecule."""

from __future__ import annotations

import numpy as np
import pytest
from ase.data import covalent_radii

from nnp_lab.build import molecule
from nnp_lab.errors import InputError

# Generous but chemically meaningful bond-length windows (Å).
BOND_RANGES = {
    frozenset({"C"}): (1.45, 1.58),
    frozenset({"C", "O"}): (1.36, 1.48),
    frozenset({"C", "H"}): (1.05, 1.13),
    frozenset({"O", "H"}): (0.93, 1.01),
}


def test_ethanol_from_smiles() -> None:
    atoms = molecule("CCO")
    assert len(atoms) == 9
    assert atoms.get_chemical_formula(mode="hill") == "C2H6O"
    assert not atoms.pbc.any()
    assert np.allclose(np.array(atoms.cell), 0.0)
    dist = atoms.get_all_distances()
    radii = covalent_radii[atoms.numbers]
    bonds = [
        (a, b, dist[a, b])
        for a in range(len(atoms))
        for b in range(a + 1, len(atoms))
        if dist[a, b] < 1.2 * (radii[a] + radii[b])
    ]
    assert len(bonds) == 8  # ethanol is a tree: 9 atoms, 8 bonds
    symbols = atoms.get_chemical_symbols()
    for a, b, dist in bonds:
        lo, hi = BOND_RANGES[frozenset({symbols[a], symbols[b]})]
        assert lo <= dist <= hi, (symbols[a], symbols[b], dist)
    # nothing else is unphysically close
    all_d = atoms.get_all_distances()[np.triu_indices(9, 1)]
    assert all_d.min() > 0.9
    rec = atoms.info["built_by"]
    assert rec["builder"] == "molecule" and rec["smiles"] == "CCO"
    assert "MMFF94" in rec["method"]


def test_smiles_is_deterministic_with_seed() -> None:
    a = molecule("CC(=O)Oc1ccccc1C(=O)O", seed=7)
    b = molecule("CC(=O)Oc1ccccc1C(=O)O", seed=7)
    assert np.array_equal(a.numbers, b.numbers)
    assert np.allclose(a.positions, b.positions)


def test_unoptimized_geometry_differs_from_optimized() -> None:
    raw = molecule("CCCCO", optimize=False)
    opt = molecule("CCCCO")
    assert "MMFF" not in raw.info["built_by"]["method"]
    assert not np.allclose(raw.positions, opt.positions, atol=1e-3)


def test_names_take_precedence_and_smiles_prefix() -> None:
    water = molecule("H2O")
    assert water.get_chemical_formula() == "H2O"
    assert water.info["built_by"]["name"] == "H2O"
    assert water.get_chemical_symbols()[0] == "O"
    co = molecule("CO")
    assert co.get_chemical_symbols() == ["C", "O"]  # carbon monoxide, C first as named
    assert co.get_distance(0, 1) == pytest.approx(1.13, abs=0.03)
    methanol = molecule("smiles:CO")
    assert methanol.get_chemical_formula(mode="hill") == "CH4O"


def test_charged_smiles_records_charge() -> None:
    ion = molecule("[NH4+]")
    assert ion.get_chemical_formula(mode="hill") == "H4N"
    assert ion.info["charge"] == 1


@pytest.mark.parametrize(
    ("smiles", "hint"),
    [
        ("C1CC", "unclosed ring"),
        ("CC(C", "parenthes"),
        ("C(C)(C)(C)(C)C", "valence"),
        ("CC[Xq]", "SMILES"),
    ],
)
def test_invalid_smiles_raises_helpful_error(smiles: str, hint: str) -> None:
    with pytest.raises(InputError) as err:
        molecule(smiles)
    msg = str(err.value)
    assert repr(smiles) in msg
    assert hint in msg
    assert "H2O" in msg  # tells how to fix it: use a name instead
    assert isinstance(err.value, ValueError)


def test_non_string_spec_raises() -> None:
    with pytest.raises(InputError, match="non-empty string"):
        molecule("")
    with pytest.raises(InputError):
        molecule(42)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="non-negative"):
        molecule("CCO", seed=-1)
