"""SevenNet-0 evaluated by our own dense torch code (no sevenn, e3nn or torch_geometric at run time).

SevenNet [2]_ is a NequIP-style [1]_ E(3)-equivariant message-passing network. This module
reads the weights of a SevenNet checkpoint (the ``.pth`` file shipped in the ``sevenn`` wheel,
loaded with ``torch.load(weights_only=True)``) and evaluates the same function with tensor
products specialised to ``l <= 2``:

* node features are kept per angular momentum ``l`` as ``(n_atoms, 2l+1, channels)`` blocks,
  so every equivariant linear layer is one plain ``matmul`` per ``l``;
* the ``uvu`` convolution of a layer is, for each input ``l1``, one batched product
  ``A(edge) @ x[neighbour]`` where ``A`` (rows: all output paths' components) is the edge's
  spherical harmonics contracted with precomputed Wigner-3j coefficients -- a ``(9, ...)``
  matrix product -- followed by an element-wise product with the radial weights and one
  ``index_add`` onto the atoms;
* constant factors (e3nn's second-moment normalisation of SiLU, the ``1/sqrt(fan_in)`` of
  linear layers, the ``sqrt(2l+1)`` path weights, the neighbour-count denominator) are folded
  into the weights once at load time;
* forces and stress come from one backward pass to the edge vectors
  (``F_i = sum_e dE/dr_e`` signs by endpoint, ``sigma = sum_e r_e (x) dE/dr_e / V``), so
  stress costs nothing extra and no strain graph is built.

Conventions that must match the checkpoint (checked against the upstream model in
``tests/potentials/test_sevennet_fast.py``): e3nn's real spherical harmonics (``component``
normalisation, Cartesian order ``(x, y, z)`` for ``l = 1``), e3nn's real Wigner-3j symbols,
features laid out like e3nn irreps (``mul`` major), the edge vector ``r_j - r_i`` of an edge
``(i, j)`` carrying a message from ``j`` to ``i``.

References
----------
.. [1] S. Batzner et al., "E(3)-equivariant graph neural networks for data-efficient and
   accurate interatomic potentials", Nat. Commun. 13, 2453 (2022).
.. [2] Y. Park, J. Kim, S. Hwang, S. Han, "Scalable Parallel Algorithm for Graph Neural
   Network Interatomic Potentials in Molecular Dynamics Simulations", J. Chem. Theory
   Comput. 20, 4857 (2024).
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.data import atomic_numbers

from nnp_lab.potentials.base import Potential, has_stress

__all__ = [
    "SevenNetFastPotential",
    "SevenNetNetwork",
    "NeighbourCache",
    "load_sevennet_checkpoint",
    "spherical_harmonics",
]

logger = logging.getLogger(__name__)

#: e3nn scales every activation ``f`` to unit second moment under a standard normal input
#: (``normalize2mom``); for SiLU its (Monte-Carlo, fixed-seed) constant is this number. The
#: network was trained with it, so we use the same value rather than the exact integral.
SILU_SECOND_MOMENT_CONSTANT = 1.6791767923989418

_LMAX = 2
_N_SH = (_LMAX + 1) ** 2


# ---------------------------------------------------------------------------------------
# Checkpoint
# ---------------------------------------------------------------------------------------
def load_sevennet_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read the weights and the config of a SevenNet checkpoint without importing sevenn.

    The file is a ``torch.save``-d dict whose config holds NumPy arrays; it is read with
    ``torch.load(weights_only=True)`` and only NumPy's array reconstruction allowed, so no
    pickled code runs.

    Parameters
    ----------
    path
        The ``.pth`` checkpoint.

    Returns
    -------
    state_dict, config
        The model's tensors (on CPU) and its configuration dict.
    """
    core = getattr(np, "_core", None) or np.core  # NumPy 2 renamed numpy.core
    allowed: list[Any] = [
        (core.multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
        np.ndarray,
        np.dtype,
    ]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        allowed += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType")]
    with torch.serialization.safe_globals(allowed):
        payload = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or "model_state_dict" not in payload:
        raise ValueError(f"{path} is not a SevenNet checkpoint (no 'model_state_dict')")
    return dict(payload["model_state_dict"]), dict(payload["config"])


def _parse_irreps(text: str) -> list[tuple[int, int]]:
    """``"128x0e+64x1e"`` -> ``[(128, 0), (64, 1)]`` (even parity only)."""
    out = []
    for term in str(text).replace(" ", "").split("+"):
        match = re.fullmatch(r"(\d+)x(\d+)([eo])", term)
        if match is None:
            raise NotImplementedError(f"cannot read irreps term {term!r}")
        mul, l, parity = int(match[1]), int(match[2]), match[3]
        if parity != "e":
            raise NotImplementedError("only parity-even (is_parity=False) SevenNet models")
        out.append((mul, l))
    ls = [l for _, l in out]
    if ls != sorted(set(ls)):
        raise NotImplementedError(f"irreps {text!r} are not one block per l in ascending order")
    return out


def _check_supported(config: dict[str, Any]) -> None:
    """Refuse configurations this implementation does not reproduce."""
    expect = {
        "_model_type": "E3_equivariant_model",
        "interaction_type": "nequip",
        "self_connection_type": "linear",
        "is_parity": False,
        "_normalize_sph": True,
        "use_bias_in_linear": False,
        "readout_as_fcn": False,
        "act_radial": "silu",
    }
    bad = [k for k, v in expect.items() if config.get(k, v) != v]
    if config.get("lmax", 0) > _LMAX:
        bad.append("lmax")
    for key in ("act_gate", "act_scalar"):
        if dict(config.get(key, {})).get("e", "silu") != "silu":
            bad.append(key)
    if config.get("radial_basis", {}).get("radial_basis_name") != "bessel":
        bad.append("radial_basis")
    if config.get("cutoff_function", {}).get("cutoff_function_name") != "XPLOR":
        bad.append("cutoff_function")
    if config.get("_modal_map") or config.get("use_modal_node_embedding"):
        bad.append("modal")
    if bad:
        raise NotImplementedError(
            f"this SevenNet checkpoint uses options the fast path does not implement: {bad}; "
            "use the upstream implementation (e.g. load_potential('sevennet-0-upstream'))"
        )


# ---------------------------------------------------------------------------------------
# Geometry: spherical harmonics and coupling coefficients
# ---------------------------------------------------------------------------------------
def spherical_harmonics(unit: torch.Tensor) -> torch.Tensor:
    """Real spherical harmonics ``l = 0, 1, 2`` of unit vectors in e3nn's convention.

    ``component`` normalisation (each ``l`` block has squared norm ``2l+1``); ``l = 1`` is
    ``sqrt(3) (x, y, z)``; ``l = 2`` uses ``y`` as the polar axis (e3nn's choice).

    Parameters
    ----------
    unit
        ``(n, 3)`` unit vectors.

    Returns
    -------
    torch.Tensor
        ``(n, 9)``.
    """
    x, y, z = unit.unbind(-1)
    s3, s5, s15 = math.sqrt(3.0), math.sqrt(5.0), math.sqrt(15.0)
    return torch.stack(
        [
            torch.ones_like(x),
            s3 * x,
            s3 * y,
            s3 * z,
            s15 * x * z,
            s15 * x * y,
            s5 * (y * y - 0.5 * (x * x + z * z)),
            s15 * y * z,
            0.5 * s15 * (z * z - x * x),
        ],
        dim=-1,
    )


def _wigner_3j(l1: int, l2: int, l3: int, state: dict[str, torch.Tensor]) -> torch.Tensor:
    """Real Wigner-3j symbol ``(2l1+1, 2l2+1, 2l3+1)`` in e3nn's basis (unit Frobenius norm).

    Symbols with an ``l = 0`` leg are ``delta / sqrt(2l+1)``; the others are read from the
    checkpoint, which stores the ones its tensor products use (``..._w3j_{l1}_{l2}_{l3}``),
    with e3nn (installed with sevenn) as the fallback. Reading them avoids importing e3nn
    (~1.6 s).
    """
    if 0 in (l1, l2, l3):
        l = max(l1, l2, l3)
        eye = torch.eye(2 * l + 1, dtype=torch.float64) / math.sqrt(2 * l + 1)
        shape = (2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1)
        return eye.reshape(shape)
    suffix = f"_w3j_{l1}_{l2}_{l3}"
    for key, value in state.items():
        if key.endswith(suffix):
            return value.detach().to(torch.float64)
    from e3nn.o3 import wigner_3j  # slow import, only for checkpoints without the buffers

    return wigner_3j(l1, l2, l3).to(torch.float64)


# ---------------------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------------------
@dataclass
class _Group:
    """The paths of one convolution that start from input features of angular momentum l1.

    ``rows`` enumerates the output components produced from this input block, ordered by
    ``(l3, m3, path)``; so for each ``l3`` the block of rows reshapes without a copy into
    ``(2l3+1, n_paths * mul)``, the layout the following linear layer multiplies.
    """

    l1: int
    mul: int
    weight_slice: tuple[int, int]  # columns of the radial network output (n_paths * mul)
    n_paths: int
    row_path: torch.Tensor  # (n_rows,) path index of each row (to expand the radial weights)
    l3_rows: dict[int, tuple[int, int, int]]  # l3 -> (first row, last row, paths with this l3)


class SevenNetNetwork(torch.nn.Module):
    """SevenNet (NequIP-style) network with dense ``l <= 2`` tensor products.

    Built from a SevenNet checkpoint's state dict and config; all weights are buffers (the
    module is for inference: no parameters, no training).

    Parameters
    ----------
    state
        The checkpoint's ``model_state_dict``.
    config
        The checkpoint's config.
    """

    def __init__(self, state: dict[str, torch.Tensor], config: dict[str, Any]) -> None:
        super().__init__()
        _check_supported(config)
        c = SILU_SECOND_MOMENT_CONSTANT
        f32 = torch.float32
        self.cutoff = float(config["cutoff"])
        self.cutoff_on = float(config["cutoff_function"]["cutoff_on"])
        type_map = {int(z): int(i) for z, i in config["_type_map"].items()}
        table = torch.full((119,), -1, dtype=torch.long)
        for z, i in type_map.items():
            table[z] = i
        self.register_buffer("species_of_z", table)
        self.elements = tuple(sorted(type_map))
        self.register_buffer("bessel", state["edge_embedding.basis_function.coeffs"].to(f32))

        irreps = [_parse_irreps(t) for t in config["irreps_manual"]]
        n_species = len(type_map)
        w = state["onehot_to_feature_x.linear.weight"].view(n_species, irreps[0][0][0])
        self.register_buffer("embedding", (w / math.sqrt(n_species)).to(f32))

        self.layers = torch.nn.ModuleList()
        scale_in = 1.0  # the previous gate's activation constant, folded into the next linears
        for t in range(int(config["num_convolution_layer"])):
            layer = _Layer(state, f"{t}_", irreps[t], irreps[t + 1], scale_in)
            self.layers.append(layer)
            scale_in = c
        # Readout: two bias-free linear layers without activation = one vector.
        mul_last = irreps[-1][0][0]
        w1 = state["reduce_input_to_hidden.linear.weight"].view(mul_last, -1)
        w2 = state["reduce_hidden_to_energy.linear.weight"].view(w1.shape[1], 1)
        readout = (w1.double() / math.sqrt(w1.shape[0])) @ (w2.double() / math.sqrt(w2.shape[0]))
        self.register_buffer("readout", (scale_in * readout).to(f32))
        self.register_buffer("atomic_shift", state["rescale_atomic_energy.shift"].to(f32))
        self.register_buffer("atomic_scale", state["rescale_atomic_energy.scale"].to(f32))

    def edge_features(self, vectors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Radial embedding ``(n_edges, n_basis)`` and spherical harmonics ``(n_edges, 9)``.

        The radial embedding is the Bessel basis ``(2/r_c) sin(k_n r) / r`` (trained ``k_n``)
        times the XPLOR switching function, which is exactly 0 at and beyond the cutoff.
        """
        r = torch.linalg.vector_norm(vectors, dim=-1, keepdim=True)
        basis = (2.0 / self.cutoff) * torch.sin(self.bessel * r) / r
        rc2, ron2, r2 = self.cutoff**2, self.cutoff_on**2, r * r
        switch = (rc2 - r2) ** 2 * (rc2 + 2 * r2 - 3 * ron2) / (rc2 - ron2) ** 3
        switch = torch.where(r < self.cutoff_on, torch.ones_like(r), switch)
        switch = torch.where(r < self.cutoff, switch, torch.zeros_like(r))
        return basis * switch, spherical_harmonics(vectors / r)

    def forward(
        self,
        species: torch.Tensor,
        edge_index: torch.Tensor,
        vectors: torch.Tensor,
    ) -> torch.Tensor:
        """Atomic energies (eV), shape ``(n_atoms,)``.

        Parameters
        ----------
        species
            Species index of each atom (see ``species_of_z``), ``(n_atoms,)``.
        edge_index
            ``(2, n_edges)`` pairs ``(i, j)``: ``j`` sends a message to ``i``.
        vectors
            ``r_j - r_i`` including the periodic image shift, ``(n_edges, 3)``; all edges
            must be shorter than the cutoff (longer ones contribute exactly nothing).
        """
        radial, sh = self.edge_features(vectors)
        x = [self.embedding.index_select(0, species).unsqueeze(1)]
        receiver, sender = edge_index[0], edge_index[1]
        for layer in self.layers:
            x = layer(x, radial, sh, sender, receiver)
        out = (x[0].squeeze(1) @ self.readout).squeeze(-1)
        return out * self.atomic_scale.index_select(0, species) + self.atomic_shift.index_select(
            0, species
        )


class _Layer(torch.nn.Module):
    """One interaction block: self-connection, linear, convolution, linear, gate."""

    def __init__(
        self,
        state: dict[str, torch.Tensor],
        prefix: str,
        irreps_in: list[tuple[int, int]],
        irreps_out: list[tuple[int, int]],
        scale_in: float,
    ) -> None:
        super().__init__()
        f32 = torch.float32
        self.ls_in = [l for _, l in irreps_in]
        mul_in = dict((l, m) for m, l in irreps_in)
        mul_out = dict((l, m) for m, l in irreps_out)
        self.ls_out = sorted(mul_out)
        # Gate: scalars, then one gate per gated channel (l >= 1, in order), then gated.
        self.n_scalars = mul_out[0]
        self.gate_slices = {}
        start = self.n_scalars
        for l in self.ls_out[1:]:
            self.gate_slices[l] = (start, start + mul_out[l])
            start += mul_out[l]
        pre_gate = {0: start, **{l: mul_out[l] for l in self.ls_out[1:]}}

        def linear(name: str, muls_in: dict, muls_out: dict, factor: float) -> list[torch.Tensor]:
            # e3nn Linear: one (mul_in, mul_out) block per l, flattened in l order, 1/sqrt(mul_in).
            flat = state[f"{prefix}{name}.linear.weight"]
            blocks, offset = [], 0
            for l in sorted(muls_in):
                if l not in muls_out:
                    continue
                n = muls_in[l] * muls_out[l]
                block = flat[offset : offset + n].view(muls_in[l], muls_out[l])
                blocks.append((factor / math.sqrt(muls_in[l]) * block.double()).to(f32))
                offset += n
            if offset != flat.numel():
                raise ValueError(f"{prefix}{name}: unexpected weight size {flat.numel()}")
            return blocks

        self.sc = _BufferList(linear("self_connection_intro", mul_in, pre_gate, scale_in))
        self.sc_ls = [l for l in self.ls_in if l in pre_gate]
        self.si1 = _BufferList(linear("self_interaction_1", mul_in, mul_in, scale_in))

        # Convolution paths (l1, l2, l3) in the checkpoint's order: sorted by l3, then (l1, l2).
        paths = [
            (l1, l2, l3)
            for l3 in self.ls_out
            for l1 in self.ls_in
            for l2 in range(_LMAX + 1)
            if abs(l1 - l2) <= l3 <= l1 + l2
        ]
        # The radial network's outputs follow the paths in (l1, l2, l3) order.
        offsets, off = {}, 0
        for p in sorted(paths):
            offsets[p] = off
            off += mul_in[p[0]]
        w0 = state[f"{prefix}convolution.weight_nn.layer0.weight"].double()
        w1 = state[f"{prefix}convolution.weight_nn.layer1.weight"].double()
        w2 = state[f"{prefix}convolution.weight_nn.layer2.weight"].double()
        if w2.shape[1] != off:
            raise ValueError(f"{prefix}convolution: {w2.shape[1]} radial weights, expected {off}")
        c = SILU_SECOND_MOMENT_CONSTANT
        self.register_buffer("radial_w0", (w0 / math.sqrt(w0.shape[0])).to(f32))
        self.register_buffer("radial_w1", (c * w1 / math.sqrt(w1.shape[0])).to(f32))

        # Group paths by input l1; within a group order them by (l3, l2).
        columns: list[int] = []
        self.groups: list[_Group] = []
        coupling = []
        state64 = state
        for l1 in self.ls_in:
            gpaths = sorted((p for p in paths if p[0] == l1), key=lambda p: (p[2], p[1]))
            if not gpaths:
                continue
            m = mul_in[l1]
            start = len(columns)
            for p in gpaths:
                columns.extend(range(offsets[p], offsets[p] + m))
            rows: list[tuple[int, int, int]] = []  # (path index, l3, m3)
            l3_rows = {}
            for l3 in self.ls_out:
                idx = [k for k, p in enumerate(gpaths) if p[2] == l3]
                first = len(rows)
                for m3 in range(2 * l3 + 1):
                    rows.extend((k, l3, m3) for k in idx)
                if idx:
                    l3_rows[l3] = (first, len(rows), len(idx))
            # A(edge)[row, m1] = sum_m2 Y[l2, m2] * sqrt(2l3+1) * C[m1, m2, m3]
            cg = torch.zeros(_N_SH, len(rows), 2 * l1 + 1, dtype=torch.float64)
            for r, (k, l3, m3) in enumerate(rows):
                _, l2, _ = gpaths[k]
                w3j = _wigner_3j(l1, l2, l3, state64)
                cg[l2 * l2 : (l2 + 1) ** 2, r, :] = math.sqrt(2 * l3 + 1) * w3j[:, :, m3].T
            coupling.append(cg.reshape(_N_SH, -1).to(f32))
            self.groups.append(
                _Group(
                    l1=l1,
                    mul=m,
                    weight_slice=(start, len(columns)),
                    n_paths=len(gpaths),
                    row_path=torch.tensor([k for k, _, _ in rows]),
                    l3_rows=l3_rows,
                )
            )
        self.register_buffer("radial_w2", (c * w2[:, columns] / math.sqrt(w2.shape[0])).to(f32))
        self.coupling = _BufferList(coupling)
        for g_i, g in enumerate(self.groups):
            self.register_buffer(f"row_path_{g_i}", g.row_path)

        # Linear after the convolution: rows of its (mid_mul_l3, out) block are the channels
        # of the paths with output l3 in checkpoint order; ours come group by group.
        denominator = float(state[f"{prefix}convolution.denominator"].reshape(-1)[0])
        mid_mul = {l3: sum(mul_in[p[0]] for p in paths if p[2] == l3) for l3 in self.ls_out}
        si2 = linear("self_interaction_2", mid_mul, pre_gate, 1.0 / denominator)
        si2 = dict(zip([l for l in sorted(mid_mul) if l in pre_gate], si2))
        self.si2_keys: list[tuple[int, int]] = []  # (group index, l3)
        si2_blocks = []
        for g_i, g in enumerate(self.groups):
            gpaths = sorted((p for p in paths if p[0] == g.l1), key=lambda p: (p[2], p[1]))
            for l3 in g.l3_rows:
                rows_l3 = []
                mid_offset = {}
                off3 = 0
                for p in paths:
                    if p[2] == l3:
                        mid_offset[p] = off3
                        off3 += mul_in[p[0]]
                for p in gpaths:
                    if p[2] == l3:
                        rows_l3.extend(range(mid_offset[p], mid_offset[p] + g.mul))
                self.si2_keys.append((g_i, l3))
                si2_blocks.append(si2[l3][rows_l3].contiguous())
        self.si2 = _BufferList(si2_blocks)
        self.scale_in = scale_in

    def forward(
        self,
        x: list[torch.Tensor],
        radial: torch.Tensor,
        sh: torch.Tensor,
        sender: torch.Tensor,
        receiver: torch.Tensor,
    ) -> list[torch.Tensor]:
        n_atoms = x[0].shape[0]
        n_edges = radial.shape[0]
        # Self-connection (into the pre-gate irreps) and the first linear.
        sc = {l: x[l] @ w for l, w in zip(self.sc_ls, self.sc)}
        h = [xl @ w for xl, w in zip(x, self.si1)]
        # Radial network: per-edge weights of every path and channel.
        weights = torch.nn.functional.silu(radial @ self.radial_w0)
        weights = torch.nn.functional.silu(weights @ self.radial_w1)
        weights = weights @ self.radial_w2
        pre: dict[int, torch.Tensor | None] = {l: sc.get(l) for l in self.ls_out}
        for g_i, g in enumerate(self.groups):
            xs = h[g.l1].index_select(0, sender)  # (E, 2l1+1, mul)
            a = (sh @ self.coupling[g_i]).view(n_edges, -1, 2 * g.l1 + 1)  # (E, rows, 2l1+1)
            if g.l1 == 0:
                t = a * xs
            else:
                t = torch.bmm(a, xs)
            w = weights[:, g.weight_slice[0] : g.weight_slice[1]].view(n_edges, g.n_paths, g.mul)
            msg = t * w.index_select(1, getattr(self, f"row_path_{g_i}"))
            agg = torch.zeros((n_atoms,) + msg.shape[1:], dtype=msg.dtype, device=msg.device)
            agg = agg.index_add(0, receiver, msg)
            for (gk, l3), w_lin in zip(self.si2_keys, self.si2):
                if gk != g_i:
                    continue
                first, last, _ = g.l3_rows[l3]
                block = agg[:, first:last].reshape(n_atoms, 2 * l3 + 1, -1)
                term = block @ w_lin
                pre[l3] = term if pre[l3] is None else pre[l3] + term
        # Gate (SiLU; its normalisation constant is folded into the next layer's weights).
        s = pre[0]
        out = [torch.nn.functional.silu(s[..., : self.n_scalars])]
        for l in self.ls_out[1:]:
            a, b = self.gate_slices[l]
            out.append(pre[l] * torch.nn.functional.silu(s[..., a:b]))
        return out


class _BufferList(torch.nn.Module):
    """A list of tensors registered as buffers (moved by ``.to(device)``)."""

    def __init__(self, tensors: list[torch.Tensor]) -> None:
        super().__init__()
        self.n = len(tensors)
        for k, t in enumerate(tensors):
            self.register_buffer(f"b{k}", t)

    def __iter__(self):
        return (getattr(self, f"b{k}") for k in range(self.n))

    def __getitem__(self, k: int) -> torch.Tensor:
        return getattr(self, f"b{k}")

    def __len__(self) -> int:
        return self.n


# ---------------------------------------------------------------------------------------
# Neighbour lists
# ---------------------------------------------------------------------------------------
@dataclass
class _Pairs:
    """Candidate pairs of one structure: ``r_ij = r_j - r_i + shift`` (Cartesian shift)."""

    i: np.ndarray
    j: np.ndarray
    shift: np.ndarray
    reference: np.ndarray  # positions the list was built for
    cell: np.ndarray
    pbc: np.ndarray


def _build_pairs(atoms: Atoms, radius: float) -> _Pairs:
    """Full neighbour list within ``radius`` (vesin), in a canonical order.

    Sorting by ``(i, j, shift)`` makes the edge order, and so the float32 rounding of the
    sums over neighbours, independent of how (and whether from a cache) the list was made.
    """
    from vesin import NeighborList

    positions = np.asarray(atoms.positions, dtype=np.float64)
    periodic = bool(atoms.pbc.any())
    box = np.asarray(atoms.cell, dtype=np.float64) if periodic else np.zeros((3, 3))
    i, j, s = NeighborList(cutoff=radius, full_list=True).compute(
        positions, box, atoms.pbc.tolist(), quantities="ijS"
    )
    i = i.astype(np.int64)
    j = j.astype(np.int64)
    s = s.astype(np.int64)
    order = np.lexsort((s[:, 2], s[:, 1], s[:, 0], j, i))
    i, j, s = i[order], j[order], s[order]
    shift = s.astype(np.float64) @ box if periodic else np.zeros((len(i), 3))
    return _Pairs(i, j, shift, positions.copy(), box.copy(), atoms.pbc.copy())


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
        self._slots: dict[int, _Pairs] = {}
        #: Number of neighbour lists built (for tests and benchmarks).
        self.n_builds = 0

    def clear(self) -> None:
        """Forget all cached lists."""
        self._slots.clear()

    def _valid(self, entry: _Pairs, atoms: Atoms) -> bool:
        positions = atoms.positions
        if positions.shape != entry.reference.shape or not np.array_equal(atoms.pbc, entry.pbc):
            return False
        if atoms.pbc.any() and not np.array_equal(np.asarray(atoms.cell), entry.cell):
            return False
        moved2 = np.max(np.sum((positions - entry.reference) ** 2, axis=1), initial=0.0)
        return bool(moved2 < (0.5 * self.skin) ** 2)

    def edges(self, slot: int, atoms: Atoms) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pairs ``(i, j)`` and edge vectors ``r_j - r_i + shift`` (Å) within the cutoff.

        Parameters
        ----------
        slot
            Position of ``atoms`` in the evaluated batch.
        atoms
            The structure.

        Returns
        -------
        i, j, vectors
            ``(n_edges,)``, ``(n_edges,)`` int64 and ``(n_edges, 3)`` float64.
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


# ---------------------------------------------------------------------------------------
# Potential
# ---------------------------------------------------------------------------------------
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
        Verlet skin in Å for reusing neighbour lists between calls (0 disables it); see
        :class:`NeighbourCache`.
    """

    package = "sevenn"
    licence = "MIT (sevenn)"
    dtype = "float32"

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
        start, n_chunk = 0, 0
        for k, atoms in enumerate(structures):
            if k > start and n_chunk + len(atoms) > _MAX_BATCH_ATOMS:
                results.extend(self._evaluate_batch(structures[start:k], start, properties))
                start, n_chunk = k, 0
            n_chunk += len(atoms)
        results.extend(self._evaluate_batch(structures[start:], start, properties))
        return results

    def _evaluate_batch(
        self, structures: list[Atoms], first_slot: int, properties: tuple[str, ...]
    ) -> list[dict]:
        device = self.device
        n_atoms = [len(a) for a in structures]
        offsets = np.concatenate([[0], np.cumsum(n_atoms)])
        senders, receivers, vectors, edge_batch = [], [], [], []
        for k, atoms in enumerate(structures):
            i, j, vec = self.neighbours.edges(first_slot + k, atoms)
            receivers.append(i + offsets[k])
            senders.append(j + offsets[k])
            vectors.append(vec)
            edge_batch.append(np.full(len(i), k))
        numbers = torch.as_tensor(np.concatenate([a.numbers for a in structures]), device=device)
        species = self.model.species_of_z.index_select(0, numbers)
        edge_index = torch.as_tensor(
            np.stack([np.concatenate(receivers), np.concatenate(senders)]), device=device
        )
        vec = torch.as_tensor(np.concatenate(vectors), dtype=torch.float32, device=device)
        batch = torch.repeat_interleave(
            torch.arange(len(structures), device=device),
            torch.as_tensor(n_atoms, device=device),
        )
        want_forces = "forces" in properties or "stress" in properties
        want_stress = "stress" in properties
        if want_forces:
            vec.requires_grad_(True)
            atomic = self.model(species, edge_index, vec)
            (grad,) = torch.autograd.grad(atomic.sum(), [vec])
        else:
            with torch.inference_mode():
                atomic = self.model(species, edge_index, vec)
        energy = torch.zeros(len(structures), dtype=torch.float64, device=device)
        energy = energy.index_add(0, batch, atomic.detach().double()).cpu().numpy()
        out: list[dict] = [{"energy": float(e)} for e in energy]
        if want_forces:
            # F_i = -dE/dr_i with r_e = r_j - r_i: the receiver i gets +g, the sender j -g.
            forces = torch.zeros((len(numbers), 3), dtype=grad.dtype, device=device)
            forces = forces.index_add(0, edge_index[0], grad).index_add(0, edge_index[1], -grad)
            forces = forces.cpu().numpy().astype(np.float64)
            for k, res in enumerate(out):
                res["forces"] = forces[offsets[k] : offsets[k + 1]].copy()
        if want_stress:
            # dE/d(strain)_ab = sum_e g_a r_b over the structure's edges.
            eb = torch.as_tensor(np.concatenate(edge_batch), device=device)
            outer = (grad.unsqueeze(2) * vec.detach().unsqueeze(1)).reshape(-1, 9).double()
            virial = torch.zeros((len(structures), 9), dtype=torch.float64, device=device)
            virial = virial.index_add(0, eb, outer).view(-1, 3, 3)
            virial = (0.5 * (virial + virial.transpose(1, 2))).cpu().numpy()
            for k, (atoms, res) in enumerate(zip(structures, out)):
                if has_stress(atoms):
                    sigma = virial[k] / atoms.get_volume()
                    res["stress"] = sigma[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        return out
