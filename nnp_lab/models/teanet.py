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

import torch

from nnp_lab.errors import InputError
from nnp_lab.models._base import AtomicEnergyModel, as_float_list, bump_cutoff, make_activation

__all__ = ["TeaNet", "DEFAULT_LAYER_CUTOFFS", "LIGHT_SETTINGS"]

#: PFP's layer cutoffs (Å).
DEFAULT_LAYER_CUTOFFS = (3.0, 3.0, 4.0, 6.0, 6.0)

#: Settings of a light TeaNet for distillation (a few ms per step for ~60 atoms on 2 cores).
LIGHT_SETTINGS = {
    "layer_cutoffs": [3.0, 4.0, 5.0],
    "n_scalar": 32,
    "n_vector": 8,
    "n_tensor": 8,
    "n_rbf": 8,
}


class _Edges:
    """Edges within one cutoff and everything about them that layers with that cutoff share."""

    def __init__(self, idx, centre, neigh, r, rhat, cutoff, centres, gamma):
        self.idx = idx  # positions in the full edge list, or None for all of them
        self.centre, self.neigh = centre, neigh
        self.n = r.shape[0]
        self.fc = bump_cutoff(r, cutoff)[:, None]  # (E, 1)
        d = r[:, None] - centres
        self.rbf = torch.exp(-gamma * d * d)  # (E, K)
        self.rhat = rhat[:, :, None]  # (E, 3, 1): broadcasts over channels
        self.rr = (rhat[:, :, None] * rhat[:, None, :]).reshape(-1, 9, 1)  # r̂ ⊗ r̂, (E, 9, 1)


class _TeaLayer(torch.nn.Module):
    """One TeaNet convolution with its own cutoff (see :class:`TeaNet` for the equations).

    Layout is channels-last — vectors ``(n, 3, V)``, tensors ``(n, 9, T)`` (row-major
    3 × 3) — so that channel mixing is one matrix product and per-channel coefficients
    broadcast. Per-edge work is kept to what needs the bond direction; products of node
    features with each other happen per atom. ``first``: the layer that sees zero
    vector/tensor/edge features (their terms are skipped; the result is the same).
    """

    def __init__(
        self, cutoff: float, F: int, V: int, T: int, K: int, activation: str, first: bool
    ) -> None:
        super().__init__()
        self.cutoff = float(cutoff)
        self.first = bool(first)
        self.sizes = (F, V, T)
        self.register_buffer(
            "centres", torch.linspace(0.0, self.cutoff, K, dtype=torch.get_default_dtype())
        )
        self.gamma = 0.5 / (self.cutoff / max(K - 1, 1)) ** 2
        # Rough neighbour count within the cutoff weighted by the bump: messages are summed
        # and divided by it so that features stay of order one for any cutoff.
        self.norm = 1.0 / max(1.0, 0.02 * 4.0 / 3.0 * math.pi * self.cutoff**3)
        n_in = K if first else F + K + 3 * V + 2 * T
        # Edge MLP; its first dense layer is Dense(edge invariants) + Dense(s_i) + Dense(s_j).
        self.edge_in = torch.nn.Linear(n_in, F)
        self.node_in = torch.nn.Linear(F, 2 * F, bias=False)
        self.act = make_activation(activation)
        # Outputs (times the cutoff function): Δe, scalar message (F each); vector message
        # a_v, b_v, d_v; edge-vector update a_u, b_u; tensor message a_t, b_t.
        self.split = [F, F, V, V, V, V, V, T, T]
        self.edge_out = torch.nn.Linear(F, sum(self.split), bias=False)
        self.node_mlp = torch.nn.Sequential(
            torch.nn.Linear(2 * F + V + 2 * T, F), make_activation(activation), torch.nn.Linear(F, F)
        )
        self.gates = torch.nn.Linear(F, V + 2 * T)
        # Channel mixings (no bias: a constant vector/tensor would break equivariance).
        self.tv_in = torch.nn.Linear(V, T, bias=False)
        self.tv_out = torch.nn.Linear(T, V, bias=False)
        self.vv = torch.nn.Linear(V, 2 * T, bias=False)
        self.v_mix = torch.nn.Linear(V, V, bias=False)
        self.t_mix = torch.nn.Linear(T, T, bias=False)

    def forward(self, s, v, t, e, u, g: _Edges):
        F, V, T = self.sizes
        n_atoms, E = s.shape[0], g.n
        rh, rr = g.rhat, g.rr
        sp = self.node_in(s)
        s_i = sp[:, :F].index_select(0, g.centre)
        s_j = sp[:, F:].index_select(0, g.neigh)
        if self.first:
            h = self.edge_in(g.rbf) + s_i + s_j
        else:
            v_i, v_j = v.index_select(0, g.centre), v.index_select(0, g.neigh)
            t_i, t_j = t.index_select(0, g.centre), t.index_select(0, g.neigh)
            # Edge invariants: v·r̂ of both ends, u·r̂, r̂ᵀ T r̂ of both ends.
            inv = torch.cat(
                [
                    e,
                    g.rbf,
                    (v_i * rh).sum(1),
                    (v_j * rh).sum(1),
                    (u * rh).sum(1),
                    (t_i * rr).sum(1),
                    (t_j * rr).sum(1),
                ],
                dim=1,
            )
            h = self.edge_in(inv) + s_i + s_j
        # Every edge update and message is switched on smoothly by the cutoff function.
        coef = self.edge_out(self.act(h) * g.fc)
        de, ms, av, bv, dv, au, bu, at, bt = torch.split(coef, self.split, dim=1)
        # Edge updates: e += Δe, u += a_u r̂ + b_u v_j.
        e = de if self.first else e + de
        u = au[:, None] * rh if self.first else u + au[:, None] * rh + bu[:, None] * v_j
        # Messages j -> i: scalar m_s, vector a_v r̂ + b_v v_j + d_v u, tensor a_t r̂⊗r̂ + b_t T_j.
        msg_v = av[:, None] * rh + dv[:, None] * u
        msg_t = at[:, None] * rr
        if not self.first:
            msg_v = msg_v + bv[:, None] * v_j
            msg_t = msg_t + bt[:, None] * t_j
        msg = torch.cat([ms, msg_v.flatten(1), msg_t.flatten(1)], dim=1)
        agg = torch.zeros((n_atoms, msg.shape[1]), dtype=s.dtype, device=s.device)
        agg = agg.index_add(0, g.centre, msg, alpha=self.norm)
        v = v + agg[:, F : F + 3 * V].view(n_atoms, 3, V)
        t = t + agg[:, F + 3 * V :].view(n_atoms, 9, T)
        # Node invariants: |v|², tr T (EAM-like density), tr T² = Σ T_ab² (T is symmetric;
        # angular, bond-order-like information).
        inv = [s, agg[:, :F], (v * v).sum(1), t[:, 0::4].sum(1), (t * t).sum(1)]
        s = s + self.node_mlp(torch.cat(inv, dim=1))
        # Equivariant couplings gated by the new scalars:
        # v ← W v + g ⊙ W(T W v);  T ← W T + g' ⊙ T² + g'' ⊙ sym(W v ⊗ W' v).
        gates = torch.tanh(self.gates(s))[:, None]
        t3 = t.view(n_atoms, 3, 3, T)
        tv = (t3 * self.tv_in(v)[:, None, :, :]).sum(2)  # T (W v), (n, 3, T)
        tt = (t3[:, :, :, None, :] * t3[:, None, :, :, :]).sum(2)  # T², (n, 3, 3, T)
        w1, w2 = torch.split(self.vv(v), [T, T], dim=2)
        vv = w1[:, :, None, :] * w2[:, None, :, :]
        vv = vv + vv.transpose(1, 2)
        v = self.v_mix(v) + gates[..., :V] * self.tv_out(tv)
        t = (
            self.t_mix(t)
            + gates[..., V : V + T] * tt.reshape(n_atoms, 9, T)
            + gates[..., V + T :] * vv.reshape(n_atoms, 9, T)
        )
        return s, v, t, e, u


class TeaNet(AtomicEnergyModel):
    """TeaNet-style potential with scalar, vector and rank-2 tensor atom features.

    State: per atom a scalar ``s_i`` (``n_scalar`` channels, initialised from an element
    embedding), vectors ``v_i`` (``n_vector`` × 3) and symmetric tensors ``T_i``
    (``n_tensor`` × 3 × 3), both zero initially; per edge a scalar ``e_ij`` (``n_scalar``)
    and vectors ``u_ij`` (``n_vector`` × 3), zero initially. Layer ``l`` only sees edges with
    ``r < rc_l`` and weighs everything by the C∞ bump cutoff
    ``f_l(r) = exp(1 - 1 / (1 - (r/rc_l)²))`` (see :func:`nnp_lab.models._base.bump_cutoff`).
    On every edge, a small MLP of the invariants

        ``e_ij, s_i, s_j, Gaussians(r_ij), v_i·r̂, v_j·r̂, u_ij·r̂, r̂ᵀT_i r̂, r̂ᵀT_j r̂``

    gives the coefficients (``a``, ``b``, … below, per channel) of

    - edge updates: ``e_ij += f Δe``, ``u_ij += f (a_u r̂ + b_u v_j)``;
    - messages: scalar ``m_s``; vector ``a_v r̂ + b_v v_j + d_v u_ij``;
      tensor ``a_t r̂⊗r̂ + b_t T_j + c_t (ṽ_j⊗r̂ + r̂⊗ṽ_j)`` (``ṽ = W v``);

    and the node update sums ``f · message / n̄_l`` over neighbours,
    ``v_i += Σ``, ``T_i += Σ``, then ``s_i += MLP(s_i, Σ m_s, |v_i|², tr T_i, tr T_i²)`` and
    the gated equivariant couplings ``v_i ← W v_i + g ⊙ W(T_i W v_i)``,
    ``T_i ← W T_i + g' ⊙ T_i T_i`` (gates ``g = tanh(Dense(s_i))``). Atomic energies are
    ``MLP(s_i)`` after the last layer.

    How this maps to the paper: rank-0/1/2 node features and scalar/vector edge features
    propagated by graph convolution with residual updates ("iterative relaxation"); the
    trace of the tensor summed from ``r̂⊗r̂`` is an embedded-atom density, while its
    contractions (``tr T²``, ``r̂ᵀ T r̂``) carry ``cos² θ`` of neighbour pairs — the
    angular (Tersoff-like) bond-order information obtained without explicit triplets. All
    operations are contractions, channel mixings and products of equivariant quantities,
    so the energy is invariant and forces are equivariant by construction.

    Parameters
    ----------
    elements
        Atomic numbers or symbols covered.
    layer_cutoffs
        Cutoff of each layer in Å (the number of layers is their count). Default PFP's
        ``[3, 3, 4, 6, 6]``; a light model for distillation may use e.g. ``[3, 4, 5]``
        (see :data:`LIGHT_SETTINGS`).
    n_scalar, n_vector, n_tensor
        Channels of scalar, vector and tensor features. Defaults 32, 16, 8.
    n_rbf
        Gaussians of the distance expansion in each layer (spread over ``[0, rc_l]``).
    activation
        Activation of the MLPs (``"silu"`` default).
    cutoff
        Neighbour cutoff; must equal ``max(layer_cutoffs)`` when both are given. Given
        alone, the default layer cutoffs are clipped to it.
    """

    def __init__(
        self,
        elements: Iterable[int | str] = ("H", "C", "N", "O"),
        layer_cutoffs: Sequence[float] | None = None,
        n_scalar: int = 32,
        n_vector: int = 16,
        n_tensor: int = 8,
        n_rbf: int = 8,
        activation: str = "silu",
        cutoff: float | None = None,
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
        F, V, T, K = int(n_scalar), int(n_vector), int(n_tensor), int(n_rbf)
        if min(F, V, T) < 1 or K < 2:
            raise InputError("TeaNet needs >= 1 channel of each kind and n_rbf >= 2")
        self.config.update(
            layer_cutoffs=layer_cutoffs,
            n_scalar=F,
            n_vector=V,
            n_tensor=T,
            n_rbf=K,
            activation=str(activation),
        )
        self.layer_cutoffs = tuple(layer_cutoffs)
        self.sizes = (F, V, T)
        self.embedding = torch.nn.Embedding(self.n_elements, F)
        self.layers = torch.nn.ModuleList(
            _TeaLayer(c, F, V, T, K, activation, first=(k == 0))
            for k, c in enumerate(layer_cutoffs)
        )
        self.readout = torch.nn.Sequential(
            torch.nn.Linear(F, F), make_activation(activation), torch.nn.Linear(F, 1)
        )

    def atomic_outputs(self, species, edge_index, edge_vectors, n_atoms):
        """Readout MLP of the scalar features after the last layer, ``(n_atoms,)``."""
        F, V, T = self.sizes
        dtype, device = edge_vectors.dtype, edge_vectors.device
        r = torch.linalg.vector_norm(edge_vectors, dim=1)
        mask = r < self.cutoff
        if not bool(mask.all()):
            keep = torch.nonzero(mask).squeeze(1)
            edge_index, edge_vectors, r = edge_index[:, keep], edge_vectors[keep], r[keep]
        rhat = edge_vectors / r[:, None]
        n_edges = r.shape[0]
        s = self.embedding(species).to(dtype)
        v = torch.zeros((n_atoms, 3, V), dtype=dtype, device=device)
        t = torch.zeros((n_atoms, 9, T), dtype=dtype, device=device)
        e = torch.zeros((n_edges, F), dtype=dtype, device=device)
        u = torch.zeros((n_edges, 3, V), dtype=dtype, device=device)
        edges: dict[float, _Edges] = {}
        for layer in self.layers:
            rc = layer.cutoff
            if rc not in edges:
                inside = r < rc
                if bool(inside.all()):
                    edges[rc] = _Edges(
                        None, edge_index[0], edge_index[1], r, rhat, rc, layer.centres, layer.gamma
                    )
                else:
                    idx = torch.nonzero(inside).squeeze(1)
                    edges[rc] = _Edges(
                        idx, edge_index[0, idx], edge_index[1, idx], r[idx], rhat[idx], rc,
                        layer.centres, layer.gamma,
                    )
            g = edges[rc]
            if g.idx is None:
                s, v, t, e, u = layer(s, v, t, e, u, g)
            else:
                s, v, t, e_sub, u_sub = layer(
                    s, v, t, e.index_select(0, g.idx), u.index_select(0, g.idx), g
                )
                e = e.index_copy(0, g.idx, e_sub)
                u = u.index_copy(0, g.idx, u_sub)
        return self.readout(s).squeeze(1)
