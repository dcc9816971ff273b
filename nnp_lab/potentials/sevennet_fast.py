"""SevenNet-0 evaluated by our own torch code (no sevenn, e3nn or torch_geometric at run time).

SevenNet [2]_ is a NequIP-style [1]_ E(3)-equivariant message-passing network. This module
reads the weights of a SevenNet checkpoint (the ``.pth`` file shipped in the ``sevenn`` wheel,
loaded with ``torch.load(weights_only=True)``) and evaluates the same function with tensor
products specialised to ``l <= 2``:

* node features are kept per angular momentum ``l`` as ``(n_atoms, 2l+1, channels)`` blocks,
  so every equivariant linear layer is one plain ``matmul`` per ``l``;
* the ``uvu`` convolution of a layer is, for each input ``l1``, a batched product
  ``A(edge) @ x[neighbour]`` where ``A`` (rows: the components of all output paths) is the
  edge's spherical harmonics contracted with precomputed Wigner-3j coefficients (one
  ``(n_edges, 9) @ (9, ...)`` product per ``l1``, shared by all layers), followed by an
  element-wise product with the radial weights and one ``index_add`` onto the atoms. It runs
  in blocks of :data:`EDGE_CHUNK` edges with a hand-written backward that recomputes the
  per-edge products instead of storing them (memory linear in the number of atoms, small
  temporaries that stay in cache);
* every neighbour pair is listed once: its radial embedding and radial-network weights are
  computed once and used by both edge directions;
* constant factors (e3nn's second-moment normalisation of SiLU, the ``1/sqrt(fan_in)`` of
  linear layers, the ``sqrt(2l+1)`` path weights, the neighbour-count denominator) are folded
  into the weights once at load time;
* forces and stress come from one backward pass to the pair vectors
  (``F_i = sum_j dE/dr_ij`` with signs by endpoint, ``sigma = sum r_ij (x) dE/dr_ij / V``),
  so stress costs nothing extra and no strain graph is built; energy-only calls build no
  graph at all.

Conventions that must match the checkpoint (checked against the upstream model in
``tests/potentials/test_sevennet_fast.py``): e3nn's real spherical harmonics (``component``
normalisation, Cartesian order ``(x, y, z)`` for ``l = 1``), the checkpoint's own Wigner-3j
buffers (three of them have the opposite sign to e3nn 0.6.0's ``wigner_3j``), e3nn's irreps
layout (``mul`` major) and path order, and the edge vector ``r_j - r_i`` of an edge ``(i, j)``
carrying a message from ``j`` to ``i``.

The code is split by concern into private modules: ``_sevennet_checkpoint`` (reading the
checkpoint), ``_sevennet_geometry`` (spherical harmonics, coupling coefficients),
``_sevennet_convolution`` (the fused convolution and its backward), ``_sevennet_layers``
(:class:`SevenNetNetwork`) and ``_sevennet_graph`` (neighbour lists, batched graphs); this
module holds the :class:`~nnp_lab.potentials.Potential` and re-exports the public names.

References
----------
.. [1] S. Batzner et al., "E(3)-equivariant graph neural networks for data-efficient and
   accurate interatomic potentials", Nat. Commun. 13, 2453 (2022).
.. [2] Y. Park, J. Kim, S. Hwang, S. Han, "Scalable Parallel Algorithm for Graph Neural
   Network Interatomic Potentials in Molecular Dynamics Simulations", J. Chem. Theory
   Comput. 20, 4857 (2024).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from ase import Atoms

from nnp_lab.potentials._sevennet_checkpoint import load_sevennet_checkpoint
from nnp_lab.potentials._sevennet_convolution import EDGE_CHUNK, stage
from nnp_lab.potentials._sevennet_geometry import spherical_harmonics
from nnp_lab.potentials._sevennet_graph import BatchGraph, NeighbourCache
from nnp_lab.potentials._sevennet_layers import SILU_SECOND_MOMENT_CONSTANT, SevenNetNetwork
from nnp_lab.potentials.base import Potential, has_stress
from nnp_lab.potentials.memory import batch_bounds

__all__ = [
    "SevenNetFastPotential",
    "SevenNetNetwork",
    "NeighbourCache",
    "load_sevennet_checkpoint",
    "spherical_harmonics",
    "SILU_SECOND_MOMENT_CONSTANT",
    "EDGE_CHUNK",
]

#: Largest number of atoms pushed through the network in one batch (bounds peak memory).
_MAX_BATCH_ATOMS = 4096

_CITATION = (
    "Y. Park, J. Kim, S. Hwang, S. Han, 'Scalable Parallel Algorithm for Graph Neural Network "
    "Interatomic Potentials in Molecular Dynamics Simulations', J. Chem. Theory Comput. 20, "
    "4857 (2024)"
)


class SevenNetFastPotential(Potential):
    """SevenNet-0 evaluated by :class:`SevenNetNetwork` (our own code, same weights).

    Results equal the upstream ``sevenn`` implementation to float32 rounding (tested: energy
    1e-4 eV/atom, forces 1e-3 eV/Å, stress 1e-4 eV/Å³). All structures of one
    :meth:`evaluate` call form one graph; forces and stress come from one backward pass to
    the edge vectors, and nothing is differentiated when only energies are asked for.

    Parameters
    ----------
    checkpoint
        Path of the SevenNet checkpoint (``.pth``; the ``sevenn`` wheel ships it).
    name
        Registered name.
    device
        Torch device string.
    level_of_theory, citation
        Metadata.
    skin
        Verlet skin in Å for reusing neighbour lists between calls; see
        :class:`NeighbourCache`. Off by default: building a list with vesin costs 0.4 ms
        for 64 Si atoms and 13 ms for 4,096 (0.2-0.3 % of an energy + forces call), reusing
        one still costs about a quarter of that (filtering to the cutoff), and a rebuild
        with a 0.5 Å skin costs 2-3 times a plain build.
    """

    package = "sevenn"
    licence = "MIT (sevenn)"
    dtype = "float32"
    max_batch_atoms = _MAX_BATCH_ATOMS
    # Peak RSS growth of one batch (energy, forces, stress), measured with
    # bench/memory_model.py on diamond Si and C, fcc Cu and bcc Na, 64-4,096 atoms: fit
    # 12.6 MB + 50.8 kB/atom + 23.3 kB/pair (rms residual 5.6 %), here x 1.25 + 50 MB.
    memory_per_atom_bytes = 63.5e3
    memory_per_pair_bytes = 29.1e3
    memory_overhead_bytes = 65.8e6

    def __init__(
        self,
        checkpoint: str | Path,
        *,
        name: str = "sevennet-0",
        device: str = "cpu",
        level_of_theory: str = "PBE/PBE+U (MPtrj)",
        citation: str = _CITATION,
        skin: float = 0.0,
    ) -> None:
        super().__init__()
        state, config = load_sevennet_checkpoint(checkpoint)
        self.model = SevenNetNetwork(state, config).to(device).eval()
        self.config = config
        self.name = name
        self.version = str(config.get("version", "unknown"))
        self.cutoff = self.model.cutoff
        self.elements = frozenset(self.model.elements)
        self.device = device
        self.level_of_theory = level_of_theory
        self.citation = citation
        self.checkpoint = str(checkpoint)
        self.neighbours = NeighbourCache(self.cutoff, skin)

    def _evaluate(self, structures: list[Atoms], properties: tuple[str, ...]) -> list[dict]:
        results: list[dict] = []
        for start, stop in batch_bounds([len(a) for a in structures], self.max_batch_atoms):
            results.extend(self._evaluate_batch(structures[start:stop], start, properties))
        return results

    def _evaluate_batch(
        self, structures: list[Atoms], first_slot: int, properties: tuple[str, ...]
    ) -> list[dict]:
        with stage("sevennet.neighbours"):
            found = [self.neighbours.pairs(first_slot + k, a) for k, a in enumerate(structures)]
        with stage("sevennet.graph"):
            graph = BatchGraph.of(structures, found, self.model.species_of_z, self.device)
        want_stress = "stress" in properties
        atomic, grad = self._atomic_energies(graph, forces="forces" in properties or want_stress)
        with stage("sevennet.forces_stress"):
            energy = np.add.reduceat(atomic.double().cpu().numpy(), graph.atom_offsets[:-1])
            out: list[dict] = [{"energy": float(e)} for e in energy]
            if grad is not None:
                _add_forces(out, graph, grad)
                if want_stress:
                    _add_stresses(out, structures, graph, grad)
        return out

    def _atomic_energies(
        self, graph: BatchGraph, *, forces: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Atomic energies (detached) and, with ``forces``, ``dE/d(pair vector)``."""
        if not forces:
            with torch.inference_mode():
                return self.model(graph.species, graph.pairs, graph.vectors), None
        # Gradients are needed even if the caller runs under no_grad / inference_mode.
        with torch.inference_mode(False), torch.enable_grad():
            vectors = graph.vectors.clone().requires_grad_(True)
            atomic = self.model(graph.species, graph.pairs, vectors)
            with stage("sevennet.backward"):
                (grad,) = torch.autograd.grad(atomic.sum(), [vectors])
        return atomic.detach(), grad


def _add_forces(out: list[dict], graph: BatchGraph, grad: torch.Tensor) -> None:
    """Forces of every structure from ``grad = dE/dr`` of the pairs."""
    # F = -dE/dr with r_ij = r_j - r_i: atom i gets +dE/dr_ij, atom j -dE/dr_ij.
    n_atoms = int(graph.atom_offsets[-1])
    forces = torch.zeros((n_atoms, 3), dtype=grad.dtype, device=grad.device)
    forces.index_add_(0, graph.pairs[0], grad).index_add_(0, graph.pairs[1], -grad)
    array = forces.cpu().numpy().astype(np.float64)
    offsets = graph.atom_offsets
    for k, res in enumerate(out):
        res["forces"] = array[offsets[k] : offsets[k + 1]].copy()


def _add_stresses(
    out: list[dict], structures: list[Atoms], graph: BatchGraph, grad: torch.Tensor
) -> None:
    """Stress (Voigt, eV/Å³) of every structure that has one, from ``grad = dE/dr``."""
    # dE/d(strain)_ab = sum over the structure's pairs of (dE/dr)_a r_b.
    outer = (grad.unsqueeze(2) * graph.vectors.unsqueeze(1)).reshape(-1, 9)
    outer_array = outer.double().cpu().numpy()
    for k, (atoms, res) in enumerate(zip(structures, out)):
        if has_stress(atoms):
            a, b = graph.pair_offsets[k], graph.pair_offsets[k + 1]
            virial = outer_array[a:b].sum(axis=0).reshape(3, 3)
            sigma = 0.5 * (virial + virial.T) / atoms.get_volume()
            res["stress"] = sigma[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
