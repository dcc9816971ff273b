"""TeaNet-style network: scalar, vector and rank-2 tensor features with per-layer cutoffs.

TeaNet (tensor embedded atom network) is the architecture behind PFP, the universal
potential of Matlantis. Its idea: classical potentials come from tight-binding electronic
relaxation — the embedded-atom method (EAM) uses a scalar density, the Tersoff bond order
needs angles — so a graph network that carries Euclidean *tensors* through its layers can
express both, and a deep residual stack of such layers resembles an iterative electronic
relaxation. PFP keeps five layers with cutoffs of 3, 3, 4, 6 and 6 Å (short-range layers
first, a 22 Å receptive field in total) and an energy surface that is infinitely
differentiable.

This module is written from the papers' descriptions (no reference code is public); the
update rules are our own choice within that description, documented in :class:`TeaNet`.

References
----------
- S. Takamoto, S. Izumi and J. Li, "TeaNet: universal neural network interatomic potential
  inspired by iterative electronic relaxations", Comput. Mater. Sci. 207, 111280 (2022);
  arXiv:1912.01398.
- S. Takamoto et al., "Towards universal neural network potential for material discovery
  applicable to arbitrary combination of 45 elements", Nat. Commun. 13, 2991 (2022) — PFP:
  layer cutoffs [3, 3, 4, 6, 6] Å, smooth (C∞) energy surface.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import cast

import torch

from nnp_lab.errors import InputError
from nnp_lab.models._base import (
    AtomicEnergyModel,
    as_float_list,
    bump_cutoff,
    make_activation,
    seeded,
)

__all__ = ["TeaNet", "DEFAULT_LAYER_CUTOFFS", "LIGHT_SETTINGS"]

#: PFP's layer cutoffs (Å).
DEFAULT_LAYER_CUTOFFS = (3.0, 3.0, 4.0, 6.0, 6.0)

#: Settings of a light TeaNet for distillation (see ``bench/model_speed.py`` for its speed).
LIGHT_SETTINGS = {
    "layer_cutoffs": [3.5, 5.0],
    "n_scalar": 32,
    "n_vector": 8,
    "n_tensor": 4,
    "n_rbf": 8,
}


#: Component indices (a, b) of the row-major entries of a 3 × 3 outer product.
_OUTER_INDEX = torch.tensor([[0, 0, 0, 1, 1, 1, 2, 2, 2], [0, 1, 2, 0, 1, 2, 0, 1, 2]])


def _bond_geometry(vec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Distances ``r``, unit vectors ``r̂`` and ``r̂ ⊗ r̂`` (row-major, 9 columns) of bond
    vectors ``(n, D, 3)``."""
    r = torch.linalg.vector_norm(vec, dim=2)
    rhat = vec / r[..., None]
    # r̂ ⊗ r̂ as a product of two gathers: cheaper to differentiate than a broadcast outer
    # product.
    first, second = _OUTER_INDEX[0].to(vec.device), _OUTER_INDEX[1].to(vec.device)
    return r, rhat, rhat.index_select(2, first) * rhat.index_select(2, second)


def _radial_basis(
    r: torch.Tensor, cutoff: float, centres: torch.Tensor, gamma: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The bump cutoff ``(n, D, 1)`` and the Gaussians ``exp(-γ (r - c_k)²)`` ``(n, D, K)``
    of distances ``(n, D)``."""
    d = r[..., None] - centres
    return bump_cutoff(r, cutoff)[..., None], torch.exp(-gamma * d * d)


class _Neighbours:
    """Neighbours of every atom in a dense ``(n_atoms, D)`` layout, nearest first.

    Row ``i`` holds the edges ``(i, j)`` sorted by distance, padded to the largest
    neighbour count ``D`` with dummy slots (bond vector ``(2 rc, 0, 0)``, neighbour 0). Because rows are sorted, the edges within a shorter layer cutoff are a prefix of
    every row: a layer with cutoff ``rc_l`` works on ``[:, :D_l]``. Sums over neighbours
    become sums over slots or batched matrix products, with no per-edge vector/tensor
    intermediates; dummy and out-of-range slots get exactly zero weight from the cutoff
    function.
    """

    def __init__(
        self, edge_index: torch.Tensor, edge_vectors: torch.Tensor, n_atoms: int, cutoff: float
    ) -> None:
        device, dtype = edge_vectors.device, edge_vectors.dtype
        with torch.no_grad():  # integer bookkeeping: which edge goes to which slot
            r = torch.linalg.vector_norm(edge_vectors, dim=1)
            keep = torch.nonzero(r < cutoff).squeeze(1)
            r = r.index_select(0, keep)
            centre = edge_index[0].index_select(0, keep)
            n_edges = r.shape[0]
            # Sort by (centre, distance) with one key: centre · 2rc + r (float64: exact order).
            order = torch.argsort(centre.double() * (2.0 * float(cutoff)) + r.double())
            c_sorted = centre.index_select(0, order)
            counts = torch.bincount(centre, minlength=n_atoms)
            D = max(int(counts.max()) if n_edges else 0, 1)
            starts = torch.cumsum(counts, 0) - counts
            slot = c_sorted * D + torch.arange(n_edges, device=device)
            slot -= starts.index_select(0, c_sorted)
            edges = keep.index_select(0, order)  # original edge id of every sorted edge
            J = torch.zeros(n_atoms * D, dtype=torch.long, device=device)
            self.J = J.index_copy_(0, slot, edge_index[1].index_select(0, edges)).view(n_atoms, D)
        self.D = D
        self.n_atoms = n_atoms
        # Dense bond vectors; dummy slots get (2 rc, 0, 0): beyond every cutoff, finite r̂.
        pad = torch.zeros((n_atoms * D, 3), dtype=dtype, device=device)
        pad[:, 0] = 2.0 * float(cutoff)
        vec = pad.index_copy(0, slot, edge_vectors.index_select(0, edges)).view(n_atoms, D, 3)
        self.r, self.rhat, self.rr = _bond_geometry(vec)  # (n, D), (n, D, 3), (n, D, 9)
        self._width: dict[float, int] = {}

    def width(self, rc: float) -> int:
        """Number of slots that hold every edge shorter than ``rc`` (at least 1)."""
        if rc not in self._width:
            inside = (self.r < rc).sum(dim=1)
            self._width[rc] = max(int(inside.max()), 1)
        return self._width[rc]


class _Slots:
    """The first ``D_l`` slots of every row and what layers with cutoff ``rc_l`` share."""

    def __init__(self, nb: _Neighbours, rc: float, centres: torch.Tensor, gamma: float):
        D = nb.width(rc)
        self.D = D
        self.J = nb.J[:, :D].reshape(-1)
        self.fc, self.rbf = _radial_basis(nb.r[:, :D], rc, centres, gamma)  # (n,D,1), (n,D,K)
        self.rhat = nb.rhat[:, :D]  # (n, D, 3)
        self.rr = nb.rr[:, :D]  # (n, D, 9)


class _TeaLayer(torch.nn.Module):
    """One TeaNet convolution with its own cutoff (see :class:`TeaNet` for the equations).

    Features are channels-last — scalars ``(n, F)``, vectors ``(n, 3, V)``, tensors
    ``(n, 9, T)`` (row-major 3 × 3), edge scalars ``(n, D, F)`` — so that channel mixing is
    one matrix product and sums over neighbours of ``coefficient × r̂`` or
    ``coefficient × r̂⊗r̂`` are batched matrix products over the neighbour slots.
    ``first``: the layer that sees zero vector/tensor/edge features (their terms are
    skipped; the result is the same). ``last``: only the scalars are read out after it
    (its edge updates and vector/tensor couplings are skipped).
    """

    centres: torch.Tensor  # a buffer (register_buffer in __init__)

    def __init__(
        self,
        cutoff: float,
        F: int,
        V: int,
        T: int,
        K: int,
        H: int,
        activation: str,
        first: bool,
        last: bool,
    ) -> None:
        super().__init__()
        self.cutoff = float(cutoff)
        self.first, self.last = bool(first), bool(last)
        self.sizes = (F, V, T, H)
        self.register_buffer(
            "centres", torch.linspace(0.0, self.cutoff, K, dtype=torch.get_default_dtype())
        )
        self.gamma = 0.5 / (self.cutoff / max(K - 1, 1)) ** 2
        # Rough neighbour count within the cutoff weighted by the bump: messages are summed
        # and divided by it so that features stay of order one for any cutoff.
        self.norm = 1.0 / max(1.0, 0.02 * 4.0 / 3.0 * math.pi * self.cutoff**3)
        n_in = K if first else F + K + V + T
        # Edge MLP; its first dense layer is Dense(edge invariants) + Dense(s_i) + Dense(s_j).
        self.edge_in = torch.nn.Linear(n_in, F)
        self.node_in = torch.nn.Linear(F, 2 * F, bias=False)
        self.act = make_activation(activation)
        # Outputs (times the cutoff function): Δe, scalar message (F each); coefficients of
        # r̂ (V) and r̂⊗r̂ (T); weights of the neighbours' vectors and tensors (H each).
        self.split = ([] if last else [F]) + [F, V, T] + ([] if first else [H, H])
        self.edge_out = torch.nn.Linear(F, sum(self.split), bias=False)
        if not first:
            self.prop_v = torch.nn.Linear(H * V, V, bias=False)
            self.prop_t = torch.nn.Linear(H * T, T, bias=False)
        self.node_mlp = torch.nn.Sequential(
            torch.nn.Linear(2 * F + V + 2 * T, F),
            make_activation(activation),
            torch.nn.Linear(F, F),
        )
        if not last:
            self.gates = torch.nn.Linear(F, V + 2 * T)
            # Channel mixings (no bias: a constant vector/tensor would break equivariance).
            self.tv_in = torch.nn.Linear(V, T, bias=False)
            self.tv_out = torch.nn.Linear(T, V, bias=False)
            self.vv = torch.nn.Linear(V, 2 * T, bias=False)
            self.v_mix = torch.nn.Linear(V, V, bias=False)
            self.t_mix = torch.nn.Linear(T, T, bias=False)

    def forward(self, s, v, t, e, g: _Slots):
        F, V, T, H = self.sizes
        n, D = s.shape[0], g.D
        sp = self.node_in(s)
        s_j = sp[:, F:].index_select(0, g.J).view(n, D, F)
        if self.first:
            h = self.edge_in(g.rbf)
        else:
            # Invariants of every bond seen from its centre atom: v_i·r̂ and r̂ᵀ T_i r̂
            # (= Σ_k w_ik cos² θ_jik: Tersoff-like bond-order information).
            proj_v = torch.bmm(g.rhat, v)  # (n, D, V)
            proj_t = torch.bmm(g.rr, t)  # (n, D, T)
            h = self.edge_in(torch.cat([e, g.rbf, proj_v, proj_t], dim=2))
        h = h + sp[:, None, :F] + s_j
        # Every edge update and message is switched on smoothly by the cutoff function.
        parts = torch.split(self.edge_out(self.act(h) * g.fc), self.split, dim=2)
        if not self.last:
            de, parts = parts[0], parts[1:]
            e = de if self.first else e + de
        ms, av, at = parts[:3]
        # Messages j -> i summed over neighbours: Σ m_s, Σ a_v r̂, Σ a_t r̂⊗r̂ (+ Σ b_h v_j,
        # Σ b_h T_j mixed over heads h): batched products over the slots.
        agg_s = ms.sum(dim=1)
        msg_v = torch.bmm(g.rhat.transpose(1, 2), av)  # (n, 3, V)
        msg_t = torch.bmm(g.rr.transpose(1, 2), at)  # (n, 9, T)
        if not self.first:
            bv, bt = parts[3], parts[4]
            v_j = v.reshape(n, 3 * V).index_select(0, g.J).view(n, D, 3 * V)
            t_j = t.reshape(n, 9 * T).index_select(0, g.J).view(n, D, 9 * T)
            pv = torch.bmm(bv.transpose(1, 2), v_j).view(n, H, 3, V).transpose(1, 2)
            pt = torch.bmm(bt.transpose(1, 2), t_j).view(n, H, 9, T).transpose(1, 2)
            msg_v = msg_v + self.prop_v(pv.reshape(n, 3, H * V))
            msg_t = msg_t + self.prop_t(pt.reshape(n, 9, H * T))
        v = v + self.norm * msg_v
        t = t + self.norm * msg_t
        # Node invariants: |v|², tr T (EAM-like density), tr T² = Σ T_ab² (T is symmetric).
        inv = [s, self.norm * agg_s, (v * v).sum(1), t[:, 0::4].sum(1), (t * t).sum(1)]
        s = s + self.node_mlp(torch.cat(inv, dim=1))
        if self.last:
            return s, v, t, e
        # Equivariant couplings gated by the new scalars:
        # v ← W v + g ⊙ W(T W v);  T ← W T + g' ⊙ T² + g'' ⊙ sym(W v ⊗ W' v).
        gates = torch.tanh(self.gates(s))[:, None]
        t3 = t.view(n, 3, 3, T)
        tv = (t3 * self.tv_in(v)[:, None, :, :]).sum(2)  # T (W v), (n, 3, T)
        tt = (t3[:, :, :, None, :] * t3[:, None, :, :, :]).sum(2)  # T², (n, 3, 3, T)
        w1, w2 = torch.split(self.vv(v), [T, T], dim=2)
        vv = w1[:, :, None, :] * w2[:, None, :, :]
        vv = vv + vv.transpose(1, 2)
        v = self.v_mix(v) + gates[..., :V] * self.tv_out(tv)
        t = (
            self.t_mix(t)
            + gates[..., V : V + T] * tt.reshape(n, 9, T)
            + gates[..., V + T :] * vv.reshape(n, 9, T)
        )
        return s, v, t, e


class TeaNet(AtomicEnergyModel):
    """TeaNet-style potential with scalar, vector and rank-2 tensor atom features.

    State: per atom a scalar ``s_i`` (``n_scalar`` channels, initialised from an element
    embedding), vectors ``v_i`` (``n_vector`` × 3) and symmetric tensors ``T_i``
    (``n_tensor`` × 3 × 3), both zero initially; per directed edge a scalar feature
    ``e_ij`` (``n_scalar`` channels, zero initially). Layer ``l`` only sees edges with
    ``r < rc_l`` and switches every edge contribution on with the C∞ bump
    ``f_l(r) = exp(1 - 1 / (1 - (r/rc_l)²))`` (:func:`nnp_lab.models._base.bump_cutoff`).
    On every edge an MLP of the invariants

        ``e_ij, Gaussians(r_ij), v_i·r̂_ij, r̂_ijᵀ T_i r̂_ij`` (+ ``Dense(s_i)``, ``Dense(s_j)``)

    times ``f_l(r_ij)`` gives ``Δe`` (``e_ij += Δe``), a scalar message ``m_s`` and the
    per-channel coefficients of the vector and tensor messages

        ``Σ_j a_v r̂_ij + W Σ_j b_h v_j``  and  ``Σ_j a_t r̂_ij⊗r̂_ij + W' Σ_j b'_h T_j``

    (``b_h``: ``n_heads`` scalar weights per edge; ``W`` mixes heads × channels). The sums
    (divided by a fixed ``n̄_l``) are added to the node features (residual updates, as in
    the paper's ResNet), then ``s_i += MLP(s_i, Σ m_s, |v_i|², tr T_i, tr T_i²)``, followed
    by the gated equivariant couplings ``v_i ← W v_i + g ⊙ W(T_i W v_i)`` and
    ``T_i ← W T_i + g' ⊙ T_i² + g'' ⊙ sym(W v_i ⊗ W' v_i)`` with gates
    ``tanh(Dense(s_i))``. Atomic energies are ``MLP(s_i)`` after the last layer.

    How this maps to the papers: rank-0/1/2 node features propagated between atoms by
    graph convolution with residual updates ("iterative electronic relaxation"), edge
    features updated every layer, angular interaction without explicit triplets: the trace
    of the tensor built from ``Σ_j a r̂⊗r̂`` is an embedded-atom density, ``tr T²`` holds
    ``cos² θ_jik`` of neighbour pairs and ``r̂_ijᵀ T_i r̂_ij = Σ_k w_ik cos² θ_jik`` is a
    Tersoff-like bond-order term of bond ``ij``. Only contractions (dot products, traces,
    ``r̂ᵀTr̂``), channel mixings and products of equivariant quantities are used, so the
    energy is rotation invariant and the forces are equivariant by construction. PFP's
    per-layer cutoffs (short first, long later) and C∞ energy surface are kept. The exact
    update equations of TeaNet/PFP are not public as code; these are our reading of the
    papers, arranged for speed on CPUs: neighbours are held in a dense, distance-sorted
    ``(n_atoms, max_neighbours)`` layout so that every neighbour sum is a slot sum or a
    batched matrix product (no per-edge vector/tensor intermediates), and per-layer cutoffs
    are prefixes of each row.

    Parameters
    ----------
    elements
        Atomic numbers or symbols covered.
    layer_cutoffs
        Cutoff of each layer in Å (the number of layers is their count). Default PFP's
        ``[3, 3, 4, 6, 6]``; a light model for distillation may use e.g. ``[3.5, 5]``
        (see :data:`LIGHT_SETTINGS`).
    n_scalar, n_vector, n_tensor
        Channels of scalar, vector and tensor features. Defaults 32, 16, 8.
    n_rbf
        Gaussians of the distance expansion in each layer (spread over ``[0, rc_l]``).
    n_heads
        Edge weights per neighbour for propagating neighbours' vectors and tensors.
    activation
        Activation of the MLPs (``"silu"`` default).
    cutoff
        Neighbour cutoff; must equal ``max(layer_cutoffs)`` when both are given. Given
        alone, the default layer cutoffs are clipped to it.
    seed
        Seed of the weight initialisation (``None``: torch's global generator, as usual).
        Not part of :attr:`config`.
    """

    def __init__(
        self,
        elements: Iterable[int | str] = ("H", "C", "N", "O"),
        layer_cutoffs: Sequence[float] | None = None,
        n_scalar: int = 32,
        n_vector: int = 16,
        n_tensor: int = 8,
        n_rbf: int = 8,
        n_heads: int = 2,
        activation: str = "silu",
        cutoff: float | None = None,
        seed: int | None = None,
    ) -> None:
        if layer_cutoffs is None:
            layer_cutoffs = list(DEFAULT_LAYER_CUTOFFS)
            if cutoff is not None:
                layer_cutoffs = [min(c, float(cutoff)) for c in layer_cutoffs]
        layer_cutoffs = as_float_list(layer_cutoffs)
        if not layer_cutoffs or min(layer_cutoffs) <= 0:
            raise InputError(f"layer_cutoffs must be positive and non-empty, got {layer_cutoffs}")
        rc = max(layer_cutoffs)
        if cutoff is not None and abs(float(cutoff) - rc) > 1e-12:
            raise InputError(
                f"cutoff {cutoff} differs from max(layer_cutoffs) = {rc}; give one of them"
            )
        super().__init__(elements, rc)
        F, V, T, K, H = int(n_scalar), int(n_vector), int(n_tensor), int(n_rbf), int(n_heads)
        if min(F, V, T, H) < 1 or K < 2:
            raise InputError("TeaNet needs >= 1 channel of each kind, n_heads >= 1 and n_rbf >= 2")
        self.config.update(
            layer_cutoffs=layer_cutoffs,
            n_scalar=F,
            n_vector=V,
            n_tensor=T,
            n_rbf=K,
            n_heads=H,
            activation=str(activation),
        )
        self.layer_cutoffs = tuple(layer_cutoffs)
        self.sizes = (F, V, T)
        n_layers = len(layer_cutoffs)
        with seeded(seed):
            self.embedding = torch.nn.Embedding(self.n_elements, F)
            self.layers = torch.nn.ModuleList(
                _TeaLayer(c, F, V, T, K, H, activation, first=(k == 0), last=(k == n_layers - 1))
                for k, c in enumerate(layer_cutoffs)
            )
            self.readout = torch.nn.Sequential(
                torch.nn.Linear(F, F), make_activation(activation), torch.nn.Linear(F, 1)
            )

    def atomic_outputs(
        self,
        species: torch.Tensor,
        edge_index: torch.Tensor,
        edge_vectors: torch.Tensor,
        n_atoms: int,
    ) -> torch.Tensor:
        """Readout MLP of the scalar features after the last layer, ``(n_atoms,)``."""
        F, V, T = self.sizes
        dtype, device = edge_vectors.dtype, edge_vectors.device
        nb = _Neighbours(edge_index, edge_vectors, n_atoms, self.cutoff)
        s = self.embedding(species).to(dtype)
        v = torch.zeros((n_atoms, 3, V), dtype=dtype, device=device)
        t = torch.zeros((n_atoms, 9, T), dtype=dtype, device=device)
        e = None
        slots: dict[float, _Slots] = {}
        for layer in cast("Iterable[_TeaLayer]", self.layers):
            rc = layer.cutoff
            if rc not in slots:
                slots[rc] = _Slots(nb, rc, layer.centres, layer.gamma)
            g = slots[rc]
            if layer.first:
                s, v, t, e_new = layer(s, v, t, None, g)
            else:
                assert e is not None  # the first layer has made edge features
                s, v, t, e_new = layer(s, v, t, e[:, : g.D], g)
            if layer.last:
                break
            if e is None or g.D >= e.shape[1]:
                e = e_new
            else:
                e = torch.cat([e_new, e[:, g.D :]], dim=1)
            if e.shape[1] < nb.D:  # slots this layer did not reach keep e = 0
                e = torch.cat([e, e.new_zeros((n_atoms, nb.D - e.shape[1], F))], dim=1)
        return self.readout(s).squeeze(1)
