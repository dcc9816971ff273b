"""SchNet: continuous-filter convolutions over a Gaussian expansion of interatomic distances.

Atoms start from a learned embedding of their element; each interaction block lets every
atom gather its neighbours' features, weighted element-wise by a filter that a small network
generates from the distance (a continuous-filter convolution, "cfconv"), and adds the result
back (residual update). An atom-wise network maps the final features to atomic energies.

References
----------
- K. T. Schütt, P.-J. Kindermans, H. E. Sauceda, S. Chmiela, A. Tkatchenko and
  K.-R. Müller, "SchNet: A continuous-filter convolutional neural network for modeling
  quantum interactions", NeurIPS 30 (2017).
- K. T. Schütt, H. E. Sauceda, P.-J. Kindermans, A. Tkatchenko and K.-R. Müller,
  "SchNet – A deep learning architecture for molecules and materials",
  J. Chem. Phys. 148, 241722 (2018) — cosine cutoff on the filters, periodic systems.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from nnp_lab.errors import InputError
from nnp_lab.models._base import AtomicEnergyModel, cosine_cutoff, seeded, shifted_softplus

__all__ = ["SchNet"]


class _Interaction(torch.nn.Module):
    """One SchNet interaction block: atom-wise → cfconv → atom-wise, ssp → atom-wise."""

    def __init__(self, n_features: int, n_filters: int, n_rbf: int) -> None:
        super().__init__()
        self.filter1 = torch.nn.Linear(n_rbf, n_filters)
        self.filter2 = torch.nn.Linear(n_filters, n_filters)
        self.in2f = torch.nn.Linear(n_features, n_filters, bias=False)
        self.f2out = torch.nn.Linear(n_filters, n_features)
        self.dense = torch.nn.Linear(n_features, n_features)

    def forward(self, x, rbf, fc, centre, neigh):
        # Filter-generating network (two dense layers with ssp), zero beyond the cutoff.
        w = shifted_softplus(self.filter2(shifted_softplus(self.filter1(rbf)))) * fc[:, None]
        h = self.in2f(x)
        conv = torch.zeros_like(h).index_add(0, centre, h[neigh] * w)
        return self.dense(shifted_softplus(self.f2out(conv)))


class SchNet(AtomicEnergyModel):
    """SchNet interatomic potential.

    ``x_i⁰ = embedding(Z_i)``; each of ``n_interactions`` blocks computes
    ``x_i ← x_i + Dense(ssp(Dense(Σ_j W(r_ij) ⊙ Dense(x)_j)))`` with filters
    ``W(r) = ssp(Dense(ssp(Dense(e(r))))) · f_c(r)`` from the Gaussian expansion
    ``e_k(r) = exp(-γ (r - μ_k)²)`` (``μ_k`` evenly spaced on ``[0, cutoff]``) and the
    cosine cutoff ``f_c``; the output network is ``Dense(ssp(Dense(x)))`` → one number per
    atom. ``ssp(x) = ln(0.5 eˣ + 0.5)`` is the shifted softplus.

    Parameters
    ----------
    elements
        Atomic numbers or symbols covered.
    cutoff
        Cutoff (Å).
    n_features
        Atom feature size. Default 64.
    n_filters
        Filter size of the cfconv layers (``None``: ``n_features``).
    n_interactions
        Number of interaction blocks. Default 3.
    n_rbf
        Number of Gaussians. Default 32.
    gamma
        Gaussian width parameter (Å⁻²); ``None``: ``0.5 / Δμ²`` with ``Δμ`` the spacing.
    seed
        Seed of the weight initialisation (``None``: torch's global generator, as usual).
        Not part of :attr:`config`.
    """

    rbf_centres: torch.Tensor  # a buffer (register_buffer in __init__)

    def __init__(
        self,
        elements: Iterable[int | str] = ("H", "C", "N", "O"),
        cutoff: float = 5.0,
        n_features: int = 64,
        n_filters: int | None = None,
        n_interactions: int = 3,
        n_rbf: int = 32,
        gamma: float | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(elements, cutoff)
        n_features = int(n_features)
        n_filters = n_features if n_filters is None else int(n_filters)
        n_rbf = int(n_rbf)
        if n_rbf < 2 or n_features < 1 or int(n_interactions) < 1:
            raise InputError("SchNet needs n_rbf >= 2, n_features >= 1 and n_interactions >= 1")
        spacing = self.cutoff / (n_rbf - 1)
        gamma = 0.5 / spacing**2 if gamma is None else float(gamma)
        self.config.update(
            n_features=n_features,
            n_filters=n_filters,
            n_interactions=int(n_interactions),
            n_rbf=n_rbf,
            gamma=gamma,
        )
        self.gamma = gamma
        self.register_buffer(
            "rbf_centres", torch.linspace(0.0, self.cutoff, n_rbf, dtype=torch.get_default_dtype())
        )
        with seeded(seed):
            self.embedding = torch.nn.Embedding(self.n_elements, n_features)
            self.interactions = torch.nn.ModuleList(
                _Interaction(n_features, n_filters, n_rbf) for _ in range(int(n_interactions))
            )
            self.out1 = torch.nn.Linear(n_features, max(n_features // 2, 1))
            self.out2 = torch.nn.Linear(max(n_features // 2, 1), 1)

    def atomic_outputs(
        self,
        species: torch.Tensor,
        edge_index: torch.Tensor,
        edge_vectors: torch.Tensor,
        n_atoms: int,
    ) -> torch.Tensor:
        """Atom-wise output network on the features after the interaction blocks."""
        r = torch.linalg.vector_norm(edge_vectors, dim=1)
        near = torch.nonzero(r < self.cutoff).squeeze(1)
        r = r[near]
        centre, neigh = edge_index[0, near], edge_index[1, near]
        rbf = torch.exp(-self.gamma * (r[:, None] - self.rbf_centres) ** 2)
        fc = cosine_cutoff(r, self.cutoff)
        x = self.embedding(species).to(edge_vectors.dtype)
        for block in self.interactions:
            x = x + block(x, rbf, fc, centre, neigh)
        return self.out2(shifted_softplus(self.out1(x))).squeeze(1)
