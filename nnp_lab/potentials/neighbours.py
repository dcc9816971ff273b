"""Neighbour lists: the one place nnp_lab calls vesin.

vesin's cell list is ~50x faster than ASE's here (0.2 ms against 10 ms on a 100-atom cell)
and handles mixed periodicity (slabs: ``pbc=(True, True, False)``).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

__all__ = ["neighbour_list"]


def neighbour_list(
    atoms: Atoms, cutoff: float, *, full: bool = False, quantities: str = "ijS"
) -> tuple[np.ndarray, ...]:
    """Pairs of atoms closer than ``cutoff`` Å, periodic images included.

    Parameters
    ----------
    atoms
        The structure (its ``pbc`` decides which directions are periodic; the cell of a
        non-periodic structure is ignored).
    cutoff
        Search radius in Å.
    full
        Both ``(i, j)`` and ``(j, i)`` (a full list); by default each pair once.
    quantities
        What to return, in vesin's letters: ``i``, ``j`` (atom indices), ``S`` (integer cell
        shifts, with ``r_ij = r_j - r_i + S @ cell``), ``d`` (distances), ``D`` (vectors).

    Returns
    -------
    tuple of numpy.ndarray
        One array per letter of ``quantities``, in that order (``i``/``j``/``S`` as int64).
    """
    from vesin import NeighborList

    periodic = bool(atoms.pbc.any())
    box = np.asarray(atoms.cell, dtype=np.float64) if periodic else np.zeros((3, 3))
    out = NeighborList(cutoff=float(cutoff), full_list=full).compute(
        np.asarray(atoms.positions, dtype=np.float64),
        box,
        atoms.pbc.tolist(),
        quantities=quantities,
    )
    if not isinstance(out, (list, tuple)):  # vesin returns a bare array for one quantity
        out = (out,)
    return tuple(
        np.asarray(a).astype(np.int64) if q in "ijS" else np.asarray(a)
        for q, a in zip(quantities, out)
    )
