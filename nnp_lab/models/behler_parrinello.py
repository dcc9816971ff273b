"""Behler–Parrinello neural network potential: symmetry functions + per-element networks.

The energy is a sum of atomic energies; each atom's environment within a cutoff is described
by atom-centred symmetry functions (radial and angular, invariant to rotation, translation
and permutation of like atoms), and one feed-forward network per element maps them to the
atomic energy.

References
----------
- J. Behler and M. Parrinello, "Generalized neural-network representation of
  high-dimensional potential-energy surfaces", Phys. Rev. Lett. 98, 146401 (2007).
- J. Behler, "Atom-centered symmetry functions for constructing high-dimensional neural
  network potentials", J. Chem. Phys. 134, 074106 (2011) — the G2, G4, G5 functions and
  the cosine cutoff used here.
- J. S. Smith, O. Isayev and A. E. Roitberg, "ANI-1: an extensible neural network potential
  with DFT accuracy at force field computational cost", Chem. Sci. 8, 3192 (2017) — element
  resolved radial (per neighbour element) and angular (per neighbour-element pair) channels,
  shorter angular cutoff, CELU networks.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import numpy as np
import torch
from ase import Atoms
from ase.data import chemical_symbols

from nnp_lab.errors import InputError
from nnp_lab.models._base import (
    AtomicEnergyModel,
    as_float_list,
    cosine_cutoff,
    edge_pairs,
    graph_inputs,
    mlp,
    seeded,
)
from nnp_lab.potentials.torch_model import GraphBatch

__all__ = ["BehlerParrinello"]


class BehlerParrinello(AtomicEnergyModel):
    """Behler–Parrinello network with element-resolved G2 and G4/G5 symmetry functions.

    Descriptors of atom ``i`` (all with the cosine cutoff ``f_c(r) = 0.5 (cos(π r/R_c) + 1)``):

    - radial, one block per neighbour element ``A`` and per ``(η, R_s)`` of the grid
      ``radial_etas × radial_shifts``:
      ``G2 = Σ_{j ∈ A} exp(-η (r_ij - R_s)²) f_c(r_ij)`` (cutoff ``cutoff``);
    - angular, one block per unordered neighbour-element pair ``{A, B}`` and per
      ``(ζ, λ, η)`` of ``angular_zetas × angular_lambdas × angular_etas``, summed over
      unordered neighbour pairs ``{j, k}`` with elements ``{A, B}`` within
      ``angular_cutoff``:

      - ``G5 = 2^(1-ζ) (1 + λ cos θ_ijk)^ζ exp(-η (r_ij² + r_ik²)) f_c(r_ij) f_c(r_ik)``
      - ``G4`` additionally multiplies by ``exp(-η r_jk²) f_c(r_jk)``.

    With ``n_E`` elements there are ``n_E · n_radial + n_E (n_E + 1) / 2 · n_angular``
    descriptors (:attr:`n_descriptors`): the input grows quadratically with the number of
    elements — the reason message-passing networks took over for many-element systems.
    Descriptors are standardised with buffers fitted by :meth:`fit_descriptor_scaling`
    (which :func:`~nnp_lab.models.train` calls for a fresh model), then fed to one MLP per
    element.

    Parameters
    ----------
    elements
        Atomic numbers or symbols covered.
    cutoff
        Radial cutoff ``R_c`` (Å).
    angular_cutoff
        Cutoff of the angular terms (Å, ≤ ``cutoff``; ``None``: same as ``cutoff``).
    radial_etas
        ``η`` of the radial Gaussians (Å⁻²). Default ``[4.0]``.
    radial_shifts
        ``R_s`` (Å). Default: 10 values evenly spaced from 0.8 Å to ``cutoff - 0.5`` Å.
    angular_etas
        ``η`` of the angular terms (Å⁻²). Default ``[0.02, 0.2]``.
    angular_zetas
        ``ζ`` (≥ 1). Default ``[1.0, 4.0]``.
    angular_lambdas
        ``λ`` values (±1). Default ``[-1.0, 1.0]``.
    angular
        ``"g5"`` (default), ``"g4"``, or ``"none"`` (radial only).
    hidden
        Hidden layer sizes of the per-element networks. Default ``[32, 32]``.
    activation
        ``"tanh"`` (Behler), ``"celu"`` (ANI, α = 0.1), ``"silu"`` or ``"ssp"``.
    seed
        Seed of the weight initialisation (``None``: torch's global generator, as usual).
        Not part of :attr:`config`.
    """

    # buffers (register_buffer in __init__), declared for type checkers
    radial_eta: torch.Tensor
    radial_rs: torch.Tensor
    angular_lambda: torch.Tensor
    angular_zeta: torch.Tensor
    angular_eta: torch.Tensor
    pair_table: torch.Tensor
    descriptor_mean: torch.Tensor
    descriptor_std: torch.Tensor

    def __init__(
        self,
        elements: Iterable[int | str] = ("H", "C", "N", "O"),
        cutoff: float = 6.0,
        angular_cutoff: float | None = 4.0,
        radial_etas: Sequence[float] | None = None,
        radial_shifts: Sequence[float] | None = None,
        angular_etas: Sequence[float] | None = None,
        angular_zetas: Sequence[float] | None = None,
        angular_lambdas: Sequence[float] | None = None,
        angular: str = "g5",
        hidden: Sequence[int] = (32, 32),
        activation: str = "tanh",
        seed: int | None = None,
    ) -> None:
        super().__init__(elements, cutoff)
        rc = self.cutoff
        angular_cutoff = rc if angular_cutoff is None else min(float(angular_cutoff), rc)
        radial_etas = as_float_list([4.0] if radial_etas is None else radial_etas)
        radial_shifts = as_float_list(
            np.linspace(0.8, max(rc - 0.5, 1.0), 10) if radial_shifts is None else radial_shifts
        )
        angular_etas = as_float_list([0.02, 0.2] if angular_etas is None else angular_etas)
        angular_zetas = as_float_list([1.0, 4.0] if angular_zetas is None else angular_zetas)
        angular_lambdas = as_float_list([-1.0, 1.0] if angular_lambdas is None else angular_lambdas)
        angular = str(angular).lower()
        if angular not in ("g4", "g5", "none"):
            raise InputError(f"angular must be 'g4', 'g5' or 'none', got {angular!r}")
        if any(z < 1 for z in angular_zetas):
            raise InputError(
                f"angular_zetas must be >= 1 (smooth at θ = 0, π), got {angular_zetas}"
            )
        if any(abs(abs(lam) - 1) > 1e-12 for lam in angular_lambdas):
            raise InputError(f"angular_lambdas must be +1 or -1, got {angular_lambdas}")
        hidden = [int(h) for h in hidden]
        self.config.update(
            angular_cutoff=angular_cutoff,
            radial_etas=radial_etas,
            radial_shifts=radial_shifts,
            angular_etas=angular_etas,
            angular_zetas=angular_zetas,
            angular_lambdas=angular_lambdas,
            angular=angular,
            hidden=hidden,
            activation=str(activation),
        )
        self.angular_cutoff = angular_cutoff
        self.angular = angular

        grid_eta, grid_rs = np.meshgrid(radial_etas, radial_shifts, indexing="ij")
        self.register_buffer("radial_eta", torch.tensor(grid_eta.ravel()))
        self.register_buffer("radial_rs", torch.tensor(grid_rs.ravel()))
        lam, zeta, eta = np.meshgrid(angular_lambdas, angular_zetas, angular_etas, indexing="ij")
        self.register_buffer("angular_lambda", torch.tensor(lam.ravel()))
        self.register_buffer("angular_zeta", torch.tensor(zeta.ravel()))
        self.register_buffer("angular_eta", torch.tensor(eta.ravel()))
        self.n_radial = int(grid_eta.size)
        self.n_angular = 0 if angular == "none" else int(lam.size)

        # Unordered element pairs {A, B}, A <= B, numbered 0 … n_E (n_E + 1) / 2 - 1.
        n_e = self.n_elements
        pair_table = torch.zeros((n_e, n_e), dtype=torch.long)
        for k, (a, b) in enumerate(itertools.combinations_with_replacement(range(n_e), 2)):
            pair_table[a, b] = pair_table[b, a] = k
        self.register_buffer("pair_table", pair_table)
        self.n_pairs = n_e * (n_e + 1) // 2

        n_desc = self.n_descriptors
        dtype = torch.get_default_dtype()
        self.register_buffer("descriptor_mean", torch.zeros(n_desc, dtype=dtype))
        self.register_buffer("descriptor_std", torch.ones(n_desc, dtype=dtype))
        # Buffers above are float64 grids: cast them to the default dtype like the weights.
        for name in ("radial_eta", "radial_rs", "angular_lambda", "angular_zeta", "angular_eta"):
            setattr(self, name, getattr(self, name).to(dtype))
        with seeded(seed):
            self.networks = torch.nn.ModuleList(
                mlp([n_desc, *hidden, 1], activation) for _ in range(n_e)
            )

    # -- descriptors ------------------------------------------------------------------------
    @property
    def n_descriptors(self) -> int:
        """``n_elements · n_radial + n_elements (n_elements + 1) / 2 · n_angular``."""
        return self.n_elements * self.n_radial + self.n_pairs * self.n_angular

    @property
    def descriptor_labels(self) -> list[str]:
        """A short label per descriptor column, e.g. ``"G2[O] η=4 Rs=1.3"``."""
        sym = [chemical_symbols[z] for z in self.elements]
        labels = []
        for a in range(self.n_elements):
            for eta, rs in zip(self.radial_eta.tolist(), self.radial_rs.tolist()):
                labels.append(f"G2[{sym[a]}] η={eta:g} Rs={rs:.2f}")
        name = self.angular.upper()
        for a, b in itertools.combinations_with_replacement(range(self.n_elements), 2):
            for lam, zeta, eta in zip(
                self.angular_lambda.tolist(), self.angular_zeta.tolist(), self.angular_eta.tolist()
            ):
                labels.append(f"{name}[{sym[a]}{sym[b]}] ζ={zeta:g} λ={lam:+g} η={eta:g}")
        return labels

    def _raw_descriptors(
        self, species: torch.Tensor, edge_index: torch.Tensor, edge_vectors: torch.Tensor
    ) -> torch.Tensor:
        n_atoms = species.shape[0]
        dtype = edge_vectors.dtype
        r = torch.linalg.vector_norm(edge_vectors, dim=1)
        near = torch.nonzero(r < self.cutoff).squeeze(1)
        centre, neigh = edge_index[0, near], edge_index[1, near]
        r_n = r[near]
        fc = cosine_cutoff(r_n, self.cutoff)
        g2 = torch.exp(-self.radial_eta * (r_n[:, None] - self.radial_rs) ** 2) * fc[:, None]
        slot = centre * self.n_elements + species[neigh]
        radial = torch.zeros(n_atoms * self.n_elements, self.n_radial, dtype=dtype, device=r.device)
        radial = radial.index_add(0, slot, g2).reshape(n_atoms, -1)
        if self.n_angular == 0:
            return radial

        ang = torch.nonzero(r < self.angular_cutoff).squeeze(1)
        first, second = edge_pairs(edge_index[0, ang], n_atoms)
        e1, e2 = ang[first], ang[second]
        v1, v2 = edge_vectors[e1], edge_vectors[e2]
        r1, r2 = r[e1], r[e2]
        cos = (v1 * v2).sum(dim=1) / (r1 * r2)
        rcut = self.angular_cutoff
        weight = cosine_cutoff(r1, rcut) * cosine_cutoff(r2, rcut)
        r_sq = r1 * r1 + r2 * r2
        if self.angular == "g4":
            r3 = torch.linalg.vector_norm(v2 - v1, dim=1)
            weight = weight * cosine_cutoff(r3, rcut)
            r_sq = r_sq + r3 * r3
        base = (1.0 + self.angular_lambda * cos[:, None]).clamp(min=0.0)
        g = (
            2.0 ** (1.0 - self.angular_zeta)
            * base**self.angular_zeta
            * torch.exp(-self.angular_eta * r_sq[:, None])
            * weight[:, None]
        )
        pair = self.pair_table[species[edge_index[1, e1]], species[edge_index[1, e2]]]
        slot = edge_index[0, e1] * self.n_pairs + pair
        angular = torch.zeros(n_atoms * self.n_pairs, self.n_angular, dtype=dtype, device=r.device)
        angular = angular.index_add(0, slot, g).reshape(n_atoms, -1)
        return torch.cat([radial, angular], dim=1)

    def descriptors(
        self,
        data: GraphBatch | Atoms | Sequence[Atoms],
        *,
        standardised: bool = False,
    ) -> torch.Tensor:
        """Symmetry function values of every atom, shape ``(n_atoms, n_descriptors)``.

        Parameters
        ----------
        data
            A :class:`~nnp_lab.potentials.torch_model.GraphBatch`, an :class:`ase.Atoms` or
            a list of them. Columns are labelled by :attr:`descriptor_labels`.
        standardised
            Return ``(G - mean) / std`` (the network input) instead of the raw values.

        Returns
        -------
        torch.Tensor
            Detached, on the model's device and dtype.
        """
        numbers, edge_index, vec, _, _ = graph_inputs(data, self.cutoff, self.dtype, self.device)
        with torch.no_grad():
            g = self._raw_descriptors(self.species(numbers), edge_index, vec.to(self.dtype))
            if standardised:
                g = (g - self.descriptor_mean) / self.descriptor_std
        return g

    def fit_descriptor_scaling(
        self,
        data: Iterable[GraphBatch | Atoms] | GraphBatch | Atoms,
        *,
        min_std: float = 1e-3,
    ) -> None:
        """Set the standardisation buffers to the mean and std of the descriptors of ``data``.

        :func:`~nnp_lab.models.train` calls it on the training frames whenever it fits a
        fresh model (the buffers are saved with the model); call it yourself only to
        standardise on other structures.

        Parameters
        ----------
        data
            Graphs and/or structures (each Atoms is its own structure).
        min_std
            Lower bound on the std (descriptors that never change, e.g. of an element pair
            absent from the data, are only centred).
        """
        if isinstance(data, (GraphBatch, Atoms)):
            data = [data]
        items = list(data)
        if items and all(isinstance(x, Atoms) for x in items):
            items = [items]  # one batched graph
        blocks = [self.descriptors(item).double() for item in items]
        if not blocks:
            raise InputError("fit_descriptor_scaling needs at least one structure")
        g = torch.cat(blocks)
        mean = g.mean(dim=0)
        std = (
            g.std(dim=0, unbiased=False).clamp(min=min_std)
            if g.shape[0] > 1
            else torch.ones_like(mean)
        )
        with torch.no_grad():
            self.descriptor_mean.copy_(mean.to(self.descriptor_mean))
            self.descriptor_std.copy_(std.to(self.descriptor_std))

    # -- network ----------------------------------------------------------------------------
    def atomic_outputs(
        self,
        species: torch.Tensor,
        edge_index: torch.Tensor,
        edge_vectors: torch.Tensor,
        n_atoms: int,
    ) -> torch.Tensor:
        """Per-element network output on the standardised descriptors, ``(n_atoms,)``."""
        g = self._raw_descriptors(species, edge_index, edge_vectors)
        x = (g - self.descriptor_mean) / self.descriptor_std
        out = torch.zeros(n_atoms, dtype=x.dtype, device=x.device)
        if self.n_elements == 1:
            return self.networks[0](x).squeeze(1)
        counts = torch.bincount(species, minlength=self.n_elements).tolist()
        for k, net in enumerate(self.networks):
            if counts[k] == 0:
                continue
            idx = torch.nonzero(species == k).squeeze(1)
            out = out.index_put((idx,), net(x[idx]).squeeze(1))
        return out
