"""Tests for nnp_lab.build.surface."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.constraints import FixAtoms
from helpers_build import assert_unchanged, count_planes, plane_index, snapshot

from nnp_lab.build import bulk, supercell, surface
from nnp_lab.errors import InputError

A_PT = 3.92
A_FE = 2.87


@pytest.mark.parametrize(
    ("crystal", "miller", "layers", "n_atoms"),
    [
        ("Pt", (1, 1, 1), 4, 4),
        ("Pt", (1, 0, 0), 4, 4),
        ("Pt", (1, 1, 0), 5, 5),
        ("Pt", (2, 1, 1), 6, 6),
        ("Fe", (1, 1, 0), 4, 4),
        ("Fe", (1, 0, 0), 3, 3),
        ("Mg", (0, 0, 1), 4, 4),
        ("Mg", (0, 0, 0, 1), 3, 3),
        ("Mg", (1, 0, -1, 0), 4, 4),
    ],
)
def test_layer_count(crystal: str, miller: tuple, layers: int, n_atoms: int) -> None:
    slab = surface(bulk(crystal), miller, layers, vacuum=8.0)
    assert len(slab) == n_atoms  # 1-atom-per-layer surface cell for these metals
    assert count_planes(slab.positions[:, 2]) == layers
    assert sorted(set(slab.arrays["layer"].tolist())) == list(range(layers))
    assert np.array_equal(slab.arrays["layer"], plane_index(slab.positions[:, 2]))
    rec = slab.info["built_by"]
    assert rec["builder"] == "surface" and rec["layers"] == layers and rec["vacuum"] == 8.0


def test_layer_count_from_conventional_cell_and_compound() -> None:
    # The conventional 4-atom cell gives the same minimal Pt(111) slab as the primitive one.
    assert len(surface(bulk("Pt", cubic=True), (1, 1, 1), 4)) == 4
    # so does a (slightly noisy) supercell: the slab is cut from the primitive cell
    noisy = supercell(bulk("Pt"), 2)
    noisy.rattle(stdev=0.002, seed=1)
    pt100 = surface(noisy, (1, 0, 0), 4)
    assert len(pt100) == 4
    assert pt100.cell.cellpar()[[0, 1, 5]] == pytest.approx([2.77, 2.77, 90.0], abs=0.02)
    nacl = surface(bulk("NaCl", "rocksalt", a=5.64), (1, 0, 0), 3)
    assert count_planes(nacl.positions[:, 2]) == 3
    assert nacl.get_chemical_formula() == "Cl3Na3"


@pytest.mark.parametrize(
    ("miller", "ab", "gamma", "spacing"),
    [
        ((1, 1, 1), (A_PT / 2**0.5, A_PT / 2**0.5), 120.0, A_PT / 3**0.5),
        ((1, 0, 0), (A_PT / 2**0.5, A_PT / 2**0.5), 90.0, A_PT / 2),
        ((0, 1, 0), (A_PT / 2**0.5, A_PT / 2**0.5), 90.0, A_PT / 2),
        ((1, 1, 0), (A_PT / 2**0.5, A_PT), 90.0, A_PT / 8**0.5),
    ],
)
def test_fcc_planes_are_the_right_ones(
    miller: tuple, ab: tuple, gamma: float, spacing: float
) -> None:
    """Lateral cell and interlayer spacing identify the (hkl) plane; c is along z."""
    slab = surface(bulk("Pt"), miller, 4, vacuum=10.0)
    cell = np.array(slab.cell)
    assert np.allclose(cell[:2, 2], 0.0)  # a, b in the xy plane
    assert np.allclose(cell[2, :2], 0.0) and cell[2, 2] > 0  # c along +z
    a, b, _, _, _, g = slab.cell.cellpar()
    assert sorted((a, b)) == pytest.approx(sorted(ab), abs=1e-6)
    assert g == pytest.approx(gamma, abs=1e-6)
    z = np.sort(slab.positions[:, 2])
    assert np.allclose(np.diff(z), spacing, atol=1e-6)


def test_surface_normal_along_z_for_bcc110() -> None:
    slab = surface(bulk("Fe"), (1, 1, 0), 4)
    z = np.sort(slab.positions[:, 2])
    assert np.allclose(np.diff(z), A_FE / 2**0.5, atol=1e-6)  # d(110) of bcc
    # every atom has its 4 nearest in-plane neighbours in its own layer at sqrt(3)/2 a
    lat = slab.cell.cellpar()
    assert min(lat[0], lat[1]) == pytest.approx(3**0.5 / 2 * A_FE, abs=1e-6)


def test_vacuum_pbc_and_periodic_flag() -> None:
    slab = surface(bulk("Pt"), (1, 1, 1), 4, vacuum=7.5)
    z = slab.positions[:, 2]
    c = slab.cell[2, 2]
    assert z.min() >= 7.5 - 1e-9
    assert c - z.max() >= 7.5 - 1e-9
    assert (c - (z.max() - z.min())) >= 15.0 - 1e-9  # gap between periodic images
    assert slab.pbc.tolist() == [True, True, True]
    open_slab = surface(bulk("Pt"), (1, 1, 1), 4, periodic=False)
    assert open_slab.pbc.tolist() == [True, True, False]


def test_fixed_layers_and_size() -> None:
    slab = surface(bulk("Pt"), (1, 1, 1), 4, size=(3, 2), fixed_layers=2)
    assert len(slab) == 24
    planes = plane_index(slab.positions[:, 2])
    (constraint,) = slab.constraints
    assert isinstance(constraint, FixAtoms)
    fixed = set(constraint.get_indices().tolist())
    assert fixed == set(np.flatnonzero(planes < 2).tolist())
    assert len(fixed) == 12
    # tags follow ASE's convention: 1 = top layer
    assert set(slab.get_tags()[planes == 3]) == {1}
    assert not surface(bulk("Pt"), (1, 1, 1), 4).constraints


def test_stacking_fcc111_is_abc() -> None:
    slab = surface(bulk("Pt"), (1, 1, 1), 6, size=(1, 1))
    xy = slab.positions[np.argsort(slab.positions[:, 2]), :2]
    inv = np.linalg.inv(np.array(slab.cell)[:2, :2])
    frac = (xy - xy[0]) @ inv
    frac -= np.round(frac)
    assert np.allclose(frac[3], 0, atol=1e-6)  # A B C A: layer 3 above layer 0
    assert not np.allclose(frac[1], 0, atol=1e-3)
    assert not np.allclose(frac[2], 0, atol=1e-3)
    assert not np.allclose(frac[1], frac[2], atol=1e-3)


def test_input_bulk_not_mutated() -> None:
    pt = bulk("Pt", cubic=True)
    pt.info["note"] = "mine"
    before = snapshot(pt)
    surface(pt, (2, 1, 1), 5, size=(2, 2), fixed_layers=1)
    assert_unchanged(pt, before)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"miller": (0, 0, 0), "layers": 4}, r"\(0, 0, 0\)"),
        ({"miller": (1, 1, 1), "layers": 0}, "layers must be >= 1"),
        ({"miller": (1, 1, 1), "layers": 3, "fixed_layers": 3}, "fixed_layers=3"),
        ({"miller": (1, 1), "layers": 3}, "3 indices"),
        ({"miller": (1, 0, 0, 1), "layers": 3}, "i = -"),
        ({"miller": (1, 1, 1), "layers": 3, "vacuum": 0}, "vacuum must be > 0"),
        ({"miller": (1.5, 1, 1), "layers": 3}, "integers"),
    ],
)
def test_surface_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        surface(bulk("Pt"), **kwargs)


def test_non_periodic_bulk_rejected() -> None:
    molecule_like = Atoms("Pt2", positions=[(0, 0, 0), (2.7, 0, 0)])
    with pytest.raises(InputError, match="periodic bulk"):
        surface(molecule_like, (1, 1, 1), 3)
