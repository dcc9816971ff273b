"""Neighbour lists and batched graphs of nnp_lab's SevenNet-0.

Part of :mod:`nnp_lab.potentials.sevennet_fast`: each neighbour pair is listed once, in a
canonical order (:class:`NeighbourCache`, optionally reused between calls with a Verlet skin),
and the pairs of all structures of a batch are stacked into one :class:`BatchGraph`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms

__all__ = ["NeighbourCache", "BatchGraph"]

#: Pairs of one structure: ``i``, ``j`` (int64) and ``r_j - r_i + shift`` (Å, float64).
Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass
class _PairList:
    """Candidate pairs of one structure: ``r_ij = r_j - r_i + shift`` (Cartesian shift)."""

    i: np.ndarray
    j: np.ndarray
    shift: np.ndarray
    reference: np.ndarray  # positions the list was built for
    cell: np.ndarray
    pbc: np.ndarray


def _build_pairs(atoms: Atoms, radius: float) -> _PairList:
    """Neighbour pairs within ``radius`` (vesin half list), each once, in a canonical order.

    Every pair is oriented so that ``i < j`` (or, for an atom and its own periodic image,
    the first non-zero cell shift is positive) and the list is sorted by ``(i, j, shift)``:
    the edge order, and so the float32 rounding of the sums over neighbours, does not depend
    on how (or whether from a cache) the list was made.
    """
    from nnp_lab.potentials.neighbours import neighbour_list

    positions = np.asarray(atoms.positions, dtype=np.float64)
    periodic = bool(atoms.pbc.any())
    box = np.asarray(atoms.cell, dtype=np.float64) if periodic else np.zeros((3, 3))
    i, j, s = neighbour_list(atoms, radius, quantities="ijS")
    first_nonzero = s[np.arange(len(s)), np.argmax(s != 0, axis=1)] if len(s) else s[:, 0]
    flip = (i > j) | ((i == j) & (first_nonzero < 0))
    i, j = np.where(flip, j, i), np.where(flip, i, j)
    s = np.where(flip[:, None], -s, s)
    order = np.lexsort((s[:, 2], s[:, 1], s[:, 0], j, i))
    i, j, s = i[order], j[order], s[order]
    shift = s.astype(np.float64) @ box if periodic else np.zeros((len(i), 3))
    return _PairList(i, j, shift, positions.copy(), box.copy(), atoms.pbc.copy())


class NeighbourCache:
    """Verlet neighbour lists: pairs within ``cutoff + skin`` reused while atoms move little.

    A list built at reference positions with radius ``cutoff + skin`` contains every pair
    closer than ``cutoff`` as long as no atom has moved more than ``skin / 2`` from its
    reference position (and the cell, periodicity and number of atoms are unchanged). Each
    call filters the cached candidates down to the pairs within the cutoff, so the network
    sees exactly the edges a fresh list would give, in the same order.

    Lists are kept per slot (position of the structure in the evaluated batch: an MD run has
    one slot, an NEB band one per image). Which structure sits in a slot does not matter for
    correctness: a list is reused only if the displacement test passes.

    Parameters
    ----------
    cutoff
        Interaction cutoff in Å.
    skin
        Verlet skin in Å; 0 disables caching (every call builds fresh lists).
    max_slots
        Batches longer than this are not cached (e.g. the displaced structures of a
        vibrational analysis, evaluated once each).
    """

    def __init__(self, cutoff: float, skin: float = 0.0, max_slots: int = 64) -> None:
        self.cutoff = float(cutoff)
        self.skin = float(skin)
        self.max_slots = int(max_slots)
        self._slots: dict[int, _PairList] = {}
        #: Number of neighbour lists built (for tests and benchmarks).
        self.n_builds = 0

    def clear(self) -> None:
        """Forget all cached lists."""
        self._slots.clear()

    def _valid(self, entry: _PairList, atoms: Atoms) -> bool:
        positions = atoms.positions
        if positions.shape != entry.reference.shape or not np.array_equal(atoms.pbc, entry.pbc):
            return False
        if atoms.pbc.any() and not np.array_equal(np.asarray(atoms.cell), entry.cell):
            return False
        moved2 = np.max(np.sum((positions - entry.reference) ** 2, axis=1), initial=0.0)
        return bool(moved2 < (0.5 * self.skin) ** 2)

    def pairs(self, slot: int, atoms: Atoms) -> Pairs:
        """Neighbour pairs ``(i, j)`` (each once) and ``r_j - r_i + shift`` (Å) within the cutoff.

        Parameters
        ----------
        slot
            Position of ``atoms`` in the evaluated batch.
        atoms
            The structure.

        Returns
        -------
        i, j, vectors
            ``(n_pairs,)``, ``(n_pairs,)`` int64 and ``(n_pairs, 3)`` float64.
        """
        cacheable = self.skin > 0 and slot < self.max_slots
        entry = self._slots.get(slot) if cacheable else None
        if entry is None or not self._valid(entry, atoms):
            entry = _build_pairs(atoms, self.cutoff + (self.skin if cacheable else 0.0))
            self.n_builds += 1
            if cacheable:
                self._slots[slot] = entry
        positions = np.asarray(atoms.positions, dtype=np.float64)
        vectors = positions[entry.j] - positions[entry.i] + entry.shift
        if not cacheable:
            return entry.i, entry.j, vectors
        keep = np.einsum("ij,ij->i", vectors, vectors) < self.cutoff**2
        return entry.i[keep], entry.j[keep], vectors[keep]


@dataclass(frozen=True)
class BatchGraph:
    """The neighbour pairs of several structures stacked into one graph (atoms numbered
    consecutively, structure by structure).

    Attributes
    ----------
    species
        Model species index of every atom, ``(n_atoms,)``.
    pairs
        ``(2, n_pairs)`` int64: each pair ``(i, j)`` once.
    vectors
        ``r_j - r_i + shift``, ``(n_pairs, 3)`` float32.
    atom_offsets, pair_offsets
        First atom and first pair of each structure, and the totals at the end.
    """

    species: torch.Tensor
    pairs: torch.Tensor
    vectors: torch.Tensor
    atom_offsets: np.ndarray
    pair_offsets: np.ndarray

    @classmethod
    def of(
        cls,
        structures: list[Atoms],
        found: list[Pairs],
        species_of_z: torch.Tensor,
        device: str | torch.device,
    ) -> BatchGraph:
        """The graph of ``structures`` from their pairs ``found`` (one entry per structure);
        ``species_of_z`` maps atomic numbers to the model's species."""
        atom_offsets = np.concatenate([[0], np.cumsum([len(a) for a in structures])])
        i = np.concatenate([i + atom_offsets[k] for k, (i, _, _) in enumerate(found)])
        j = np.concatenate([j + atom_offsets[k] for k, (_, j, _) in enumerate(found)])
        pairs = torch.as_tensor(np.stack([i, j]), device=device)
        vectors = torch.as_tensor(
            np.concatenate([v for _, _, v in found]), dtype=torch.float32, device=device
        )
        numbers = np.concatenate([a.numbers for a in structures])
        species = species_of_z.index_select(0, torch.as_tensor(numbers, device=device))
        pair_offsets = np.concatenate([[0], np.cumsum([len(i) for i, _, _ in found])])
        return cls(species, pairs, vectors, atom_offsets, pair_offsets)
