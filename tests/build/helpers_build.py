"""Independent checks used by the nnp_lab.build tests (deliberately not using nnp_lab code)."""

from __future__ import annotations

import copy

import numpy as np
from ase import Atoms


def count_planes(z: np.ndarray, tol: float = 0.3) -> int:
    """Number of distinct heights, splitting sorted heights at gaps larger than tol."""
    z = np.sort(np.asarray(z, dtype=float))
    return int(1 + np.sum(np.diff(z) > tol))


def plane_index(z: np.ndarray, tol: float = 0.3) -> np.ndarray:
    """Plane number (0 = lowest) of each height."""
    z = np.asarray(z, dtype=float)
    order = np.argsort(z)
    idx = np.empty(len(z), dtype=int)
    idx[order] = np.concatenate([[0], np.cumsum(np.diff(z[order]) > tol)])
    return idx


def lateral_distance(xy: np.ndarray, others: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Minimum-image lateral distances from xy to each row of others (2D periodic cell)."""
    c2 = np.asarray(cell)[:2, :2]
    best = np.full(len(others), np.inf)
    for n1 in range(-2, 3):
        for n2 in range(-2, 3):
            shift = n1 * c2[0] + n2 * c2[1]
            best = np.minimum(best, np.linalg.norm(others[:, :2] + shift - xy[:2], axis=1))
    return best


def snapshot(atoms: Atoms) -> dict:
    """Everything about an Atoms object a builder could mutate."""
    return {
        "numbers": atoms.numbers.copy(),
        "positions": atoms.positions.copy(),
        "cell": np.array(atoms.cell).copy(),
        "pbc": atoms.pbc.copy(),
        "info": copy.deepcopy(atoms.info),
        "arrays": {k: v.copy() for k, v in atoms.arrays.items()},
        "constraints": repr(atoms.constraints),
    }


def assert_unchanged(atoms: Atoms, before: dict) -> None:
    after = snapshot(atoms)
    assert np.array_equal(after["numbers"], before["numbers"])
    assert np.array_equal(after["positions"], before["positions"])
    assert np.array_equal(after["cell"], before["cell"])
    assert np.array_equal(after["pbc"], before["pbc"])
    assert after["info"] == before["info"]
    assert after["arrays"].keys() == before["arrays"].keys()
    for key, value in before["arrays"].items():
        assert np.array_equal(after["arrays"][key], value), key
    assert after["constraints"] == before["constraints"]
