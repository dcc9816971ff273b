"""Tests for nnp_lab.build.nanoparticle."""

from __future__ import annotations

import numpy as np
import pytest

from nnp_lab.build import nanoparticle
from nnp_lab.errors import InputError

HEA = {"Pt": 0.2, "Pd": 0.2, "Ni": 0.2, "Co": 0.2, "Fe": 0.2}


@pytest.mark.parametrize("shape", ["icosahedron", "cuboctahedron", "decahedron"])
@pytest.mark.parametrize(("size", "n"), [(1, 1), (2, 13), (3, 55), (4, 147)])
def test_magic_numbers(shape: str, size: int, n: int) -> None:
    assert len(nanoparticle("Pt", shape=shape, size=size)) == n


def test_octahedron_and_wulff_sizes() -> None:
    assert [len(nanoparticle("Au", shape="octahedron", size=s)) for s in (2, 3, 4)] == [6, 19, 44]
    wulff = nanoparticle("Au", shape="wulff", size=200)
    assert abs(len(wulff) - 200) <= 20
    assert wulff.info["built_by"]["surface_energies"]


def test_truncated_octahedron_has_the_magic_numbers_and_its_facets() -> None:
    from ase.neighborlist import neighbor_list

    sizes = [len(nanoparticle("Pt", shape="truncated_octahedron", size=s)) for s in (1, 2, 3)]
    assert sizes == [38, 201, 586]
    particle = nanoparticle("Pt", shape="truncated_octahedron", size=2)
    i = neighbor_list("i", particle, 1.2 * 3.92 / 2**0.5)
    cn = np.bincount(i, minlength=len(particle))
    # Edges of 3 atoms: 8 hexagonal (111) facets with 7 inner atoms of 9 neighbours each,
    # 6 square (100) facets with 1 inner atom of 8, 36 edge atoms of 7, 24 corners of 6.
    counts = {k: int(np.sum(cn == k)) for k in (6, 7, 8, 9)}
    assert counts == {6: 24, 7: 36, 8: 6, 9: 56}
    assert int(np.sum(cn == 12)) == 201 - 122


def test_box_vacuum_and_pbc() -> None:
    np_ = nanoparticle("Pt", size=3, vacuum=6.0)
    assert not np_.pbc.any()
    cell = np_.cell.lengths()
    assert np.allclose(np.array(np_.cell), np.diag(cell))
    assert (np_.positions.min(axis=0) >= 6.0 - 1e-9).all()
    assert (cell - np_.positions.max(axis=0) >= 6.0 - 1e-9).all()


def test_lattice_constant_vegard() -> None:
    particle = nanoparticle({"Pt": 1, "Pd": 1}, shape="cuboctahedron", size=3, seed=0)
    a = (3.92 + 3.89) / 2
    assert particle.info["built_by"]["lattice_constant"] == pytest.approx(a)
    d = particle.get_all_distances()[np.triu_indices(len(particle), 1)]
    assert d.min() == pytest.approx(a / 2**0.5, abs=1e-6)  # cuboctahedron is unstrained fcc
    given = nanoparticle("Pt", shape="cuboctahedron", size=2, lattice_constant=4.0)
    d = given.get_all_distances()[np.triu_indices(13, 1)]
    assert d.min() == pytest.approx(4.0 / 2**0.5, abs=1e-6)


def test_random_alloy_composition_and_seed() -> None:
    particle = nanoparticle(HEA, shape="icosahedron", size=4, seed=3)
    n = len(particle)
    assert n == 147
    symbols = particle.get_chemical_symbols()
    counts = {s: symbols.count(s) for s in HEA}
    assert sum(counts.values()) == n
    for s, x in HEA.items():
        assert abs(counts[s] - x * n) <= 1
    assert particle.info["built_by"]["counts"] == counts
    same = nanoparticle(HEA, shape="icosahedron", size=4, seed=3)
    other = nanoparticle(HEA, shape="icosahedron", size=4, seed=4)
    assert same.get_chemical_symbols() == symbols
    assert other.get_chemical_symbols() != symbols
    assert sorted(other.get_chemical_symbols()) == sorted(symbols)


def test_uneven_fractions_largest_remainder() -> None:
    particle = nanoparticle({"Cu": 0.5, "Ag": 0.3, "Au": 0.2}, size=2, seed=1)  # 13 atoms
    counts = particle.info["built_by"]["counts"]
    # exact 6.5, 3.9, 2.6 -> floors 6, 3, 2; the 2 left go to the largest remainders (Ag, Au)
    assert counts == {"Cu": 6, "Ag": 4, "Au": 3}
    assert nanoparticle("Pt3Ni", size=2, seed=1).info["built_by"]["counts"] == {"Pt": 10, "Ni": 3}


def test_seed_none_is_recorded_and_reproducible() -> None:
    first = nanoparticle(HEA, size=3)
    seed = first.info["built_by"]["seed"]
    assert isinstance(seed, int)
    again = nanoparticle(HEA, size=3, seed=seed)
    assert again.get_chemical_symbols() == first.get_chemical_symbols()


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("Xx",), {}, "Unknown element"),
        ({"Pt": 0.5, "Qq": 0.5}, {}, "Unknown element"),
        ({"Pt": -0.5, "Pd": 1.5}, {}, "non-negative"),
        ({"Pt": 0.0}, {}, "zero"),
        (("Pt",), {"shape": "cube"}, "Unknown nanoparticle shape 'cube'.*icosahedron"),
        (("Pt",), {"size": 0}, ">= 1"),
        (("Pt",), {"lattice_constant": -1}, "positive"),
        (("H",), {}, "lattice_constant"),
    ],
)
def test_errors(args: object, kwargs: dict, match: str) -> None:
    spec = args[0] if isinstance(args, tuple) else args
    with pytest.raises(InputError, match=match):
        nanoparticle(spec, **kwargs)
