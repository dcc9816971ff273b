"""Peak-memory estimates: neighbour pairs and angles from local densities, bytes per batch.

Part of :mod:`nnp_lab.potentials.memory` (which re-exports the public names). A call's peak
memory above what the process already holds is modelled as ``overhead + per_atom * n_atoms +
per_pair * n_pairs (+ per_triplet * n_triplets)`` for the batch of structures that goes
through the model together.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms

__all__ = [
    "MAX_NUMBER_DENSITY",
    "MemoryEstimate",
    "estimate_pairs",
    "estimate_neighbours",
    "upper_bound_bytes",
    "batch_bounds",
    "peak_bytes",
]

_GB = 1e9
#: Bins per direction at most (keeps the flat bin index far from int64 overflow).
_MAX_BINS = 2**20
#: Offset of periodic bins, in bins (an irrational number: no crystal plane sits on a bin edge).
_BIN_PHASE = (math.sqrt(5.0) - 1.0) / 2.0 * 0.5


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated peak memory of one evaluate call (the batch that needs the most).

    Attributes
    ----------
    bytes : float
        Estimated peak memory above what the process holds before the call.
    n_atoms : int
        Atoms in that batch.
    n_pairs : float
        Estimated neighbour pairs (each once) within the cutoff in that batch.
    n_triplets : float
        Estimated angles (pairs of neighbours of an atom) within the three-body cutoff, for
        models with three-body terms (0 otherwise).
    n_structures : int
        Structures in that batch.
    n_batches : int
        Batches the call is split into.
    what : str
        What the estimate is of, e.g. ``"sevennet-0"`` or ``"D3 dispersion"``.
    """

    bytes: float
    n_atoms: int = 0
    n_pairs: float = 0.0
    n_triplets: float = 0.0
    n_structures: int = 0
    n_batches: int = 1
    what: str = ""

    def describe(self) -> str:
        """``"15.1 GB (1 structure, 32,768 atoms, ~445,557 neighbour pairs in one batch)"``."""
        s = "" if self.n_structures == 1 else "s"
        if self.n_batches == 1:
            batch = "in one batch"
        else:
            batch = f"in the largest of {self.n_batches} batches"
        angles = f", ~{self.n_triplets:,.0f} angles" if self.n_triplets else ""
        return (
            f"{self.bytes / _GB:.1f} GB ({self.n_structures} structure{s}, {self.n_atoms:,} "
            f"atoms, ~{self.n_pairs:,.0f} neighbour pairs{angles} {batch})"
        )


def estimate_pairs(atoms: Atoms, cutoff: float) -> float:
    """Estimated number of neighbour pairs within ``cutoff`` Å, each pair once.

    Atoms are binned into boxes at least ``cutoff`` wide (along the cell vectors of a
    periodic structure, along x, y, z otherwise) and each atom is given the number density
    of its box: ``n_pairs ≈ sum_boxes n_box² · (4/3)π cutoff³ / V_box / 2``. For a bulk cell
    that is the number density times the cutoff sphere; slabs with vacuum, molecules and
    particles get their local density. Non-periodic structures are capped at
    ``n (n - 1) / 2``. No neighbour list is built: O(n) NumPy work, ~20-60 µs for 64 atoms.

    Parameters
    ----------
    atoms
        The structure (not modified).
    cutoff
        Pair cutoff in Å.

    Returns
    -------
    float
        Estimated pair count; periodic images count as pairs (an atom may pair with its own
        image).
    """
    return estimate_neighbours(atoms, cutoff)[0]


def estimate_neighbours(
    atoms: Atoms, cutoff: float, triplet_cutoff: float | None = None
) -> tuple[float, float]:
    """Estimated pairs within ``cutoff`` and angles within ``triplet_cutoff`` (Å).

    Pairs as in :func:`estimate_pairs`. Angles (unordered pairs of neighbours of one atom,
    what three-body terms loop over) are counted exactly, ``sum_atoms k_i (k_i - 1) / 2``
    with ``k_i`` the neighbours within ``triplet_cutoff`` from a vesin neighbour list: that
    cutoff is short (CHGNet's bond graph: 3 Å), where the count depends on the first
    neighbour shell rather than on the density (diamond Si has 4 neighbours within 3 Å,
    fcc Cu 12), and the list is cheap (~0.1 ms for 64 atoms, ~1 µs per atom).

    Parameters
    ----------
    atoms
        The structure (not modified).
    cutoff
        Pair cutoff in Å.
    triplet_cutoff
        Three-body cutoff in Å (None or 0: no angles counted).

    Returns
    -------
    pairs, triplets
        Estimated counts (floats).
    """
    n = len(atoms)
    if n == 0 or cutoff <= 0:
        return 0.0, 0.0
    frac, heights, periodic, volume = _binning_frame(atoms)
    scale, offset, n_bins, span_product = _bin_grid(frac, heights, periodic, cutoff)
    counts = _atoms_per_bin(frac, scale, offset, n_bins, periodic)
    box_volume = volume * span_product / (n_bins[0] * n_bins[1] * n_bins[2])
    pairs = 0.5 * float(np.dot(counts, counts)) * _sphere(cutoff) / box_volume
    if not any(periodic):
        pairs = min(pairs, 0.5 * n * (n - 1))
    return pairs, (_count_triplets(atoms, triplet_cutoff) if triplet_cutoff else 0.0)


def _binning_frame(atoms: Atoms) -> tuple[np.ndarray, list[float], list[bool], float]:
    """The coordinates the atoms are binned in, for :func:`estimate_neighbours`.

    Fractional coordinates along the cell when there is a periodic direction (a cell missing
    a vector is completed), Cartesian ones otherwise.

    Returns
    -------
    coordinates, heights, periodic, volume
        ``(n, 3)`` coordinates; per direction the distance between opposite cell faces
        (1 for Cartesian) and whether it is periodic; the cell volume (1 for Cartesian).
    """
    # 3-vectors are handled as Python floats: on arrays of length 3 every NumPy call costs
    # more than the arithmetic, and this runs before every evaluation.
    positions = atoms.positions
    periodic = [bool(p) for p in atoms.pbc]
    m = atoms.cell.array.tolist()
    det = _det3(m) if any(periodic) else 0.0
    if any(periodic) and abs(det) <= 1e-8:  # e.g. a slab with c = 0: complete the cell
        m = _complete_cell(atoms.cell.array, periodic)
        det = _det3(m)
    volume = abs(det)
    if volume <= 1e-8:  # non-periodic (or no 3D cell): Cartesian boxes around the atoms
        return positions, [1.0, 1.0, 1.0], [False, False, False], 1.0
    inverse = _inverse3(m, det)
    # Distance between opposite cell faces = 1 / |reciprocal vector| (columns of the inverse).
    heights = [
        1.0 / math.sqrt(inverse[0][k] ** 2 + inverse[1][k] ** 2 + inverse[2][k] ** 2)
        for k in range(3)
    ]
    return positions @ np.array(inverse), heights, periodic, volume


def _bin_grid(
    frac: np.ndarray, heights: list[float], periodic: list[bool], cutoff: float
) -> tuple[list[float], list[float], list[int], float]:
    """Bins at least ``cutoff`` wide over the cell (periodic directions) or the atoms with half
    a cutoff of room (the others).

    Returns
    -------
    scale, offset, n_bins, span_product
        Per direction: bin index = ``floor(coordinate * scale + offset)``, the number of
        bins; and the product of the binned spans (in units of the coordinates).
    """
    if all(periodic):
        lows, highs = [0.0] * 3, [1.0] * 3
    else:
        lows, highs = frac.min(axis=0).tolist(), frac.max(axis=0).tolist()
    scale, offset, n_bins, span_product = [], [], [], 1.0
    for k in range(3):
        if periodic[k]:
            lo, span = 0.0, 1.0
        else:  # half a cutoff of room around the atoms
            pad = 0.5 * cutoff / heights[k]
            lo, span = lows[k] - pad, highs[k] - lows[k] + 2.0 * pad
        bins = int(min(max(math.floor(span * heights[k] / cutoff), 1), _MAX_BINS))
        n_bins.append(bins)
        scale.append(bins / span)
        # Periodic bins start at an irrational fraction of a bin, so that the atomic planes
        # of a perfect crystal (at simple fractions of the cell) never sit on a bin edge.
        offset.append(_BIN_PHASE if periodic[k] else -lo * bins / span)
        span_product *= span
    return scale, offset, n_bins, span_product


def _atoms_per_bin(
    frac: np.ndarray,
    scale: list[float],
    offset: list[float],
    n_bins: list[int],
    periodic: list[bool],
) -> np.ndarray:
    """Atoms in each occupied bin (float64; empty bins may be left out)."""
    total_bins = n_bins[0] * n_bins[1] * n_bins[2]
    if total_bins == 1:
        return np.array([len(frac)], dtype=np.float64)
    idx = np.floor(frac * np.array(scale) + np.array(offset)).astype(np.int64)
    if all(periodic):
        idx %= np.array(n_bins)
    else:
        for k in range(3):
            if periodic[k]:
                idx[:, k] %= n_bins[k]
            else:
                np.clip(idx[:, k], 0, n_bins[k] - 1, out=idx[:, k])
    flat = idx @ np.array([n_bins[1] * n_bins[2], n_bins[2], 1], dtype=np.int64)
    if total_bins <= 8 * len(frac) + 4096:
        return np.bincount(flat, minlength=total_bins).astype(np.float64)
    return np.unique(flat, return_counts=True)[1].astype(np.float64)


def _count_triplets(atoms: Atoms, cutoff: float) -> float:
    """Exact number of angles ``sum_i k_i (k_i - 1) / 2`` within ``cutoff`` (vesin list)."""
    from nnp_lab.potentials.neighbours import neighbour_list

    i, j = neighbour_list(atoms, cutoff, quantities="ij")
    n = len(atoms)
    k = (np.bincount(i, minlength=n) + np.bincount(j, minlength=n)).astype(np.float64)
    return 0.5 * float(np.dot(k, k - 1.0))


def _complete_cell(cell: np.ndarray, periodic: list[bool]) -> list[list[float]]:
    """``cell`` with its non-periodic vectors replaced by unit vectors normal to the
    periodic ones (a 2D or 1D periodic structure given without a third vector)."""
    _, _, vt = np.linalg.svd(cell[periodic])
    rank = int(sum(periodic))
    normals = iter(vt[rank:])
    return [cell[k].tolist() if periodic[k] else next(normals).tolist() for k in range(3)]


def _sphere(radius: float) -> float:
    return 4.0 / 3.0 * math.pi * radius**3


def _det3(m: list[list[float]]) -> float:
    return (
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    )


def _inverse3(m: list[list[float]], det: float) -> list[list[float]]:
    """Inverse of a 3x3 matrix (nested lists) with determinant ``det``: the adjugate / det."""
    (a, b, c), (d, e, f), (g, h, i) = m
    r = 1.0 / det
    return [
        [(e * i - f * h) * r, (c * h - b * i) * r, (b * f - c * e) * r],
        [(f * g - d * i) * r, (a * i - c * g) * r, (c * d - a * f) * r],
        [(d * h - e * g) * r, (b * g - a * h) * r, (a * e - b * d) * r],
    ]


#: Number density (atoms/Å³) above that of any solid at ambient pressure (diamond: 0.176),
#: for :func:`upper_bound_bytes`.
MAX_NUMBER_DENSITY = 0.2


def upper_bound_bytes(
    n_atoms: int,
    cutoff: float,
    *,
    per_atom: float,
    per_pair: float,
    overhead: float = 0.0,
    per_triplet: float = 0.0,
    triplet_cutoff: float | None = None,
) -> float:
    """An upper bound of :func:`peak_bytes` from the atom count alone (no geometry).

    Neighbours are bounded by :data:`MAX_NUMBER_DENSITY` times the cutoff sphere, so a call
    whose bound is below :data:`~nnp_lab.potentials.memory.MIN_CHECKED_BYTES` needs no
    closer look (~1 µs).

    Parameters
    ----------
    n_atoms
        Atoms of all structures of the call.
    cutoff, triplet_cutoff
        The model's pair and three-body cutoffs in Å.
    per_atom, per_pair, overhead, per_triplet
        The model's constants (see :func:`peak_bytes`).
    """
    if per_atom <= 0 and per_pair <= 0 and overhead <= 0 and per_triplet <= 0:
        return 0.0
    per = per_atom + per_pair * 0.5 * MAX_NUMBER_DENSITY * _sphere(max(cutoff, 0.0))
    if per_triplet > 0 and triplet_cutoff:
        neighbours = MAX_NUMBER_DENSITY * _sphere(triplet_cutoff)
        per += per_triplet * 0.5 * neighbours * neighbours
    return overhead + n_atoms * per


def batch_bounds(
    sizes: Sequence[int], max_atoms: int | None = None, max_structures: int | None = None
) -> list[tuple[int, int]]:
    """Split structures (in order) into batches of at most ``max_atoms`` atoms and
    ``max_structures`` structures; a structure larger than ``max_atoms`` is a batch alone.

    Parameters
    ----------
    sizes
        Atoms per structure.
    max_atoms, max_structures
        Limits per batch (None: no limit).

    Returns
    -------
    list of (start, stop)
        Index ranges into ``sizes``.
    """
    bounds: list[tuple[int, int]] = []
    start, n_chunk = 0, 0
    for k, n in enumerate(sizes):
        full_atoms = max_atoms is not None and n_chunk + n > max_atoms
        full_count = max_structures is not None and k - start >= max_structures
        if k > start and (full_atoms or full_count):
            bounds.append((start, k))
            start, n_chunk = k, 0
        n_chunk += n
    if len(sizes) > start:
        bounds.append((start, len(sizes)))
    return bounds


def peak_bytes(
    structures: Sequence[Atoms],
    cutoff: float,
    *,
    per_atom: float,
    per_pair: float,
    overhead: float = 0.0,
    per_triplet: float = 0.0,
    triplet_cutoff: float | None = None,
    max_atoms: int | None = None,
    max_structures: int | None = None,
    what: str = "",
) -> MemoryEstimate:
    """Estimated peak memory of evaluating ``structures`` with a model of these constants.

    ``overhead + per_atom * n_atoms + per_pair * n_pairs + per_triplet * n_triplets`` of the
    batch (see :func:`batch_bounds`) that needs the most; pairs and angles from
    :func:`estimate_neighbours`.

    Parameters
    ----------
    structures
        The structures of one call.
    cutoff
        The model's pair cutoff in Å.
    per_atom, per_pair, overhead
        Bytes per atom, per neighbour pair (each pair once) and per call.
    per_triplet, triplet_cutoff
        Bytes per angle within ``triplet_cutoff`` Å, for models with three-body terms.
    max_atoms, max_structures
        How the model splits long lists into batches (None: all in one).
    what
        Label for messages.

    Returns
    -------
    MemoryEstimate
    """
    if not structures or max(per_atom, per_pair, overhead, per_triplet) <= 0:
        return MemoryEstimate(0.0, what=what, n_batches=0)
    sizes = [len(a) for a in structures]
    angles = triplet_cutoff if per_triplet > 0 else None
    if per_pair > 0 or angles:
        counts = [estimate_neighbours(a, cutoff, angles) for a in structures]
    else:
        counts = [(0.0, 0.0)] * len(structures)
    bounds = batch_bounds(sizes, max_atoms, max_structures)
    best: MemoryEstimate | None = None
    for start, stop in bounds:
        n_atoms = sum(sizes[start:stop])
        n_pairs = sum(c[0] for c in counts[start:stop])
        n_triplets = sum(c[1] for c in counts[start:stop])
        estimate = MemoryEstimate(
            overhead + per_atom * n_atoms + per_pair * n_pairs + per_triplet * n_triplets,
            n_atoms,
            n_pairs,
            n_triplets,
            stop - start,
            len(bounds),
            what,
        )
        if best is None or estimate.bytes > best.bytes:
            best = estimate
    assert best is not None
    return best
