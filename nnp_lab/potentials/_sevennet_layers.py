"""The layers of nnp_lab's SevenNet-0: :class:`SevenNetNetwork` and its interaction blocks.

Part of :mod:`nnp_lab.potentials.sevennet_fast`. The checkpoint's weights are rearranged once
at load time: per-``l`` blocks of e3nn's linear layers with their constant factors folded in,
and radial weights and convolution outputs reordered to the layout of
:class:`~nnp_lab.potentials._sevennet_convolution.Convolution`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from nnp_lab.errors import InputError
from nnp_lab.potentials._sevennet_checkpoint import LMAX, check_supported, parse_irreps
from nnp_lab.potentials._sevennet_convolution import Convolution, row_path, stage
from nnp_lab.potentials._sevennet_geometry import PathBlock, Segments, spherical_harmonics

__all__ = ["SILU_SECOND_MOMENT_CONSTANT", "BufferList", "InteractionLayer", "SevenNetNetwork"]

#: e3nn scales every activation ``f`` to unit second moment under a standard normal input
#: (``normalize2mom``); for SiLU its (Monte-Carlo, fixed-seed) constant is this number. The
#: network was trained with it, so we use the same value rather than the exact integral.
SILU_SECOND_MOMENT_CONSTANT = 1.6791767923989418

_F32 = torch.float32

#: A checkpoint path ``(l1, l2, l3)``: input features, edge harmonics, output features.
_Path = tuple[int, int, int]


class BufferList(torch.nn.Module):
    """A list of tensors registered as buffers (moved by ``.to(device)``)."""

    def __init__(self, tensors: list[torch.Tensor]) -> None:
        super().__init__()
        self.n = len(tensors)
        for k, t in enumerate(tensors):
            self.register_buffer(f"b{k}", t)

    def __iter__(self) -> Iterator[torch.Tensor]:
        return (getattr(self, f"b{k}") for k in range(self.n))

    def __getitem__(self, k: int) -> torch.Tensor:
        return getattr(self, f"b{k}")

    def __len__(self) -> int:
        return self.n


class SevenNetNetwork(torch.nn.Module):
    """SevenNet (NequIP-style) network with dense ``l <= 2`` tensor products.

    Built from a SevenNet checkpoint's state dict and config; all weights are buffers (the
    module is for inference: no parameters, no training). Configurations other than
    SevenNet-0's family (parity-even, ``lmax <= 2``, SiLU gates, Bessel basis with XPLOR
    cutoff, linear self-connection, no multi-fidelity heads) raise ``NotImplementedError``.

    Parameters
    ----------
    state
        The checkpoint's ``model_state_dict``.
    config
        The checkpoint's config.

    Attributes
    ----------
    cutoff : float
        Cutoff radius in Å.
    elements : tuple of int
        Atomic numbers the model covers.
    species_of_z : torch.Tensor
        Buffer mapping an atomic number to the model's species index (-1: not covered).
    """

    species_of_z: torch.Tensor
    bessel: torch.Tensor
    embedding: torch.Tensor
    readout: torch.Tensor
    atomic_shift: torch.Tensor
    atomic_scale: torch.Tensor

    def __init__(self, state: dict[str, torch.Tensor], config: dict[str, Any]) -> None:
        super().__init__()
        check_supported(config)
        self.cutoff = float(config["cutoff"])
        self.cutoff_on = float(config["cutoff_function"]["cutoff_on"])
        type_map = {int(z): int(i) for z, i in config["_type_map"].items()}
        table = torch.full((119,), -1, dtype=torch.long)
        for z, i in type_map.items():
            table[z] = i
        self.register_buffer("species_of_z", table)
        self.elements = tuple(sorted(type_map))
        self.register_buffer("bessel", state["edge_embedding.basis_function.coeffs"].to(_F32))

        irreps = [parse_irreps(t) for t in config["irreps_manual"]]
        n_species = len(type_map)
        w = state["onehot_to_feature_x.linear.weight"].view(n_species, irreps[0][0][0])
        self.register_buffer("embedding", (w / math.sqrt(n_species)).to(_F32))

        # One edge matrix A per input l1, shared by all layers (each uses a prefix of rows).
        l1s = sorted({l for ir in irreps[:-1] for _, l in ir})
        self.blocks = [PathBlock.build(l1, LMAX) for l1 in l1s]
        if l1s != list(range(len(l1s))):
            raise NotImplementedError(f"input irreps with l = {l1s}")
        self.couplings = BufferList([b.coupling(state).to(_F32) for b in self.blocks])

        self.layers = torch.nn.ModuleList()
        scale_in = 1.0  # the previous gate's activation constant, folded into the next linears
        for t in range(int(config["num_convolution_layer"])):
            layer = InteractionLayer(
                state, f"{t}_", irreps[t], irreps[t + 1], scale_in, self.blocks
            )
            self.layers.append(layer)
            scale_in = SILU_SECOND_MOMENT_CONSTANT
        self.register_buffer("readout", _readout(state, irreps[-1][0][0], scale_in))
        # Species-wise shift and scale (a single value applies to every species).
        for name in ("shift", "scale"):
            value = state[f"rescale_atomic_energy.{name}"].to(_F32).reshape(-1)
            self.register_buffer(f"atomic_{name}", value.expand(n_species).clone())

    def radial_embedding(self, vectors: torch.Tensor) -> torch.Tensor:
        """Radial embedding ``(n, n_basis)`` of edge vectors ``(n, 3)``.

        The Bessel basis ``(2/r_c) sin(k_n r) / r`` (trained ``k_n``) times the XPLOR
        switching function, which is exactly 0 at and beyond the cutoff.
        """
        r = torch.linalg.vector_norm(vectors, dim=-1, keepdim=True)
        basis = (2.0 / self.cutoff) * torch.sin(self.bessel * r) / r
        rc2, ron2, r2 = self.cutoff**2, self.cutoff_on**2, r * r
        switch = (rc2 - r2) ** 2 * (rc2 + 2 * r2 - 3 * ron2) / (rc2 - ron2) ** 3
        switch = torch.where(r < self.cutoff_on, torch.ones_like(r), switch)
        switch = torch.where(r < self.cutoff, switch, torch.zeros_like(r))
        return basis * switch

    def forward(
        self,
        species: torch.Tensor,
        pairs: torch.Tensor,
        vectors: torch.Tensor,
    ) -> torch.Tensor:
        """Atomic energies (eV), shape ``(n_atoms,)``.

        Parameters
        ----------
        species
            Species index of each atom (see ``species_of_z``), ``(n_atoms,)``.
        pairs
            ``(2, n_pairs)``: each neighbour pair ``(i, j)`` once; messages flow both ways
            (the network's edges are the pairs followed by the reversed pairs).
        vectors
            ``r_j - r_i`` including the periodic image shift, ``(n_pairs, 3)``; all pairs
            must be closer than the cutoff (farther ones contribute exactly nothing).
        """
        n_edges = 2 * vectors.shape[0]
        with stage("sevennet.edge_embedding"):
            # The radial part is the same for both directions of a pair: computed once.
            radial = self.radial_embedding(vectors)
            both = torch.cat([vectors, -vectors])
            sh = spherical_harmonics(both / torch.linalg.vector_norm(both, dim=-1, keepdim=True))
            edge_a = [
                (sh @ c).view(n_edges, len(b.rows), 2 * b.l1 + 1)
                for b, c in zip(self.blocks, self.couplings)
            ]
        x = [self.embedding.index_select(0, species).unsqueeze(1)]
        receiver = torch.cat([pairs[0], pairs[1]])
        sender = torch.cat([pairs[1], pairs[0]])
        for layer in self.layers:
            x = layer(x, radial, edge_a, sender, receiver)
        with stage("sevennet.readout"):
            out = (x[0].squeeze(1) @ self.readout).squeeze(-1)
            scale = self.atomic_scale.index_select(0, species)
            return out * scale + self.atomic_shift.index_select(0, species)


def _readout(state: dict[str, torch.Tensor], mul_last: int, scale_in: float) -> torch.Tensor:
    """The readout, two bias-free linear layers without activation, as one vector
    ``(mul_last, 1)``, times the last gate's activation constant ``scale_in``."""
    w1 = state["reduce_input_to_hidden.linear.weight"].view(mul_last, -1)
    w2 = state["reduce_hidden_to_energy.linear.weight"].view(w1.shape[1], 1)
    readout = (w1.double() / math.sqrt(w1.shape[0])) @ (w2.double() / math.sqrt(w2.shape[0]))
    return (scale_in * readout).to(_F32)


class InteractionLayer(torch.nn.Module):
    """One interaction block: self-connection, linear, convolution, linear, gate.

    Parameters
    ----------
    state
        The checkpoint's ``model_state_dict``.
    prefix
        The block's key prefix in ``state`` (``"0_"``, ``"1_"``, ...).
    irreps_in, irreps_out
        ``[(mul, l), ...]`` of the input and output features.
    scale_in
        The previous gate's activation constant (1 for the first block), folded into the
        linear layers that read the input.
    blocks
        The network's path blocks, one per input ``l1``.
    """

    radial_w0: torch.Tensor
    radial_w1: torch.Tensor
    radial_w2: torch.Tensor

    def __init__(
        self,
        state: dict[str, torch.Tensor],
        prefix: str,
        irreps_in: list[tuple[int, int]],
        irreps_out: list[tuple[int, int]],
        scale_in: float,
        blocks: list[PathBlock],
    ) -> None:
        super().__init__()
        self.ls_in = [l for _, l in irreps_in]
        mul_in = {l: m for m, l in irreps_in}
        mul_out = {l: m for m, l in irreps_out}
        self.ls_out = sorted(mul_out)
        lmax_out = self.ls_out[-1]
        if self.ls_out != list(range(lmax_out + 1)):
            raise NotImplementedError(f"{prefix}: output irreps with l = {self.ls_out}")
        self.n_scalars, self.gate_slices, pre_gate = _gate_layout(self.ls_out, mul_out)

        sc = _linear_blocks(state, f"{prefix}self_connection_intro", mul_in, pre_gate, scale_in)
        self.sc = BufferList(sc)
        self.sc_ls = [l for l in self.ls_in if l in pre_gate]
        si1 = _linear_blocks(state, f"{prefix}self_interaction_1", mul_in, mul_in, scale_in)
        self.si1 = BufferList(si1)

        paths = _CheckpointPaths.of(self.ls_in, self.ls_out, mul_in)
        w0, w1, w2 = _radial_network(state, f"{prefix}convolution", paths.n_weights)
        c = SILU_SECOND_MOMENT_CONSTANT
        self.register_buffer("radial_w0", (w0 / math.sqrt(w0.shape[0])).to(_F32))
        self.register_buffer("radial_w1", (c * w1 / math.sqrt(w1.shape[0])).to(_F32))

        denominator = float(state[f"{prefix}convolution.denominator"].reshape(-1)[0])
        si2 = _linear_blocks(
            state, f"{prefix}self_interaction_2", paths.mid_mul, pre_gate, 1.0 / denominator
        )
        si2_of_l3 = dict(zip([l for l in sorted(paths.mid_mul) if l in pre_gate], si2))

        order = _BlockOrder.of(blocks[: len(self.ls_in)], lmax_out, mul_in, paths, si2_of_l3)
        self.layout = order.layout
        self.si2_keys = order.si2_keys
        self.register_buffer(
            "radial_w2", (c * w2[:, order.columns] / math.sqrt(w2.shape[0])).to(_F32)
        )
        self.si2 = BufferList(order.si2_blocks)
        # Path index of every row (rows are (l3, m3, path)): expands the radial weights.
        self.row_paths = BufferList([row_path(segs) for _, _, segs in self.layout])

    def forward(
        self,
        x: list[torch.Tensor],
        radial: torch.Tensor,
        edge_a: list[torch.Tensor],
        sender: torch.Tensor,
        receiver: torch.Tensor,
    ) -> list[torch.Tensor]:
        n_atoms = x[0].shape[0]
        with stage("sevennet.linear"):
            sc = {l: x[l] @ w for l, w in zip(self.sc_ls, self.sc)}
            h = [xl @ w for xl, w in zip(x, self.si1)]
        with stage("sevennet.radial_mlp"):
            weights = torch.nn.functional.silu(radial @ self.radial_w0)
            weights = torch.nn.functional.silu(weights @ self.radial_w1)
            weights = weights @ self.radial_w2
        with stage("sevennet.tensor_product"):
            aggs = Convolution.apply(
                self.layout, sender, receiver, weights, *h, *edge_a[: len(h)], *self.row_paths
            )
        with stage("sevennet.linear"):
            pre: dict[int, torch.Tensor | None] = {l: sc.get(l) for l in self.ls_out}
            for (k, l3, first, last), w_lin in zip(self.si2_keys, self.si2):
                block = aggs[k][:, first:last].reshape(n_atoms, 2 * l3 + 1, -1)
                term = block @ w_lin
                previous = pre[l3]
                pre[l3] = term if previous is None else previous + term
            # Every output l has a self-connection or a convolution path.
            gate_in = {l: t for l, t in pre.items() if t is not None}
        with stage("sevennet.gate"):
            # SiLU; e3nn's normalisation constant is folded into the next layer's weights.
            s = gate_in[0]
            out = [torch.nn.functional.silu(s[..., : self.n_scalars])]
            for l in self.ls_out[1:]:
                a, b = self.gate_slices[l]
                out.append(gate_in[l] * torch.nn.functional.silu(s[..., a:b]))
        return out


def _gate_layout(
    ls_out: list[int], mul_out: dict[int, int]
) -> tuple[int, dict[int, tuple[int, int]], dict[int, int]]:
    """The gate's input: scalars, then one gate per gated channel (l >= 1, in order), then
    the gated features.

    Returns
    -------
    n_scalars, gate_slices, pre_gate
        Number of activated scalars; per ``l >= 1`` the ``(start, stop)`` of its gates among
        the scalar channels; channels per ``l`` before the gate.
    """
    n_scalars = mul_out[0]
    gate_slices = {}
    start = n_scalars
    for l in ls_out[1:]:
        gate_slices[l] = (start, start + mul_out[l])
        start += mul_out[l]
    pre_gate = {0: start, **{l: mul_out[l] for l in ls_out[1:]}}
    return n_scalars, gate_slices, pre_gate


def _linear_blocks(
    state: dict[str, torch.Tensor],
    name: str,
    muls_in: dict[int, int],
    muls_out: dict[int, int],
    factor: float,
) -> list[torch.Tensor]:
    """The per-``l`` ``(mul_in, mul_out)`` blocks of an e3nn ``Linear`` (weights flattened in
    ``l`` order), with e3nn's ``1/sqrt(mul_in)`` and ``factor`` folded in."""
    flat = state[f"{name}.linear.weight"]
    out, offset = [], 0
    for l in sorted(muls_in):
        if l not in muls_out:
            continue
        n = muls_in[l] * muls_out[l]
        block = flat[offset : offset + n].view(muls_in[l], muls_out[l]).double()
        out.append((factor / math.sqrt(muls_in[l]) * block).to(_F32))
        offset += n
    if offset != flat.numel():
        raise InputError(f"{name}: unexpected weight size {flat.numel()}")
    return out


def _radial_network(
    state: dict[str, torch.Tensor], name: str, n_weights: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The three weight matrices (float64) of a convolution's radial network."""
    w0, w1, w2 = (state[f"{name}.weight_nn.layer{k}.weight"].double() for k in range(3))
    if w2.shape[1] != n_weights:
        raise InputError(f"{name}: {w2.shape[1]} radial weights, expected {n_weights}")
    return w0, w1, w2


@dataclass(frozen=True)
class _CheckpointPaths:
    """Where the checkpoint puts each path ``(l1, l2, l3)`` of a layer.

    Its radial network emits the paths' weights in ``(l1, l2, l3)`` order; its convolution
    output (the next linear's input) is ordered by ``(l3, l1, l2)``.

    Attributes
    ----------
    weight_offset
        First radial-weight column of each path.
    mid_offset
        First channel of each path in the convolution output of its ``l3``.
    mid_mul
        Channels of the convolution output per ``l3``.
    n_weights
        Radial weights in all.
    """

    weight_offset: dict[_Path, int]
    mid_offset: dict[_Path, int]
    mid_mul: dict[int, int]
    n_weights: int

    @classmethod
    def of(cls, ls_in: list[int], ls_out: list[int], mul_in: dict[int, int]) -> _CheckpointPaths:
        """The paths from inputs ``ls_in`` through edge harmonics ``l2 <= LMAX`` to ``ls_out``."""
        paths = sorted(
            (l1, l2, l3)
            for l1 in ls_in
            for l2 in range(LMAX + 1)
            for l3 in ls_out
            if abs(l1 - l2) <= l3 <= l1 + l2
        )
        weight_offset, n_weights = {}, 0
        for p in paths:
            weight_offset[p] = n_weights
            n_weights += mul_in[p[0]]
        mid_offset, mid_mul = {}, dict.fromkeys(ls_out, 0)
        for p in sorted(paths, key=lambda p: (p[2], p[0], p[1])):
            mid_offset[p] = mid_mul[p[2]]
            mid_mul[p[2]] += mul_in[p[0]]
        return cls(weight_offset, mid_offset, mid_mul, n_weights)


@dataclass(frozen=True)
class _BlockOrder:
    """A layer's weights in our order: block by block (``l1``), paths by ``(l3, l2)`` inside
    a block.

    Attributes
    ----------
    columns
        The checkpoint's radial-weight columns, in our order.
    layout
        Per block ``(first weight column, rows used, segments)`` (see
        :class:`~nnp_lab.potentials._sevennet_convolution.Convolution`).
    si2_keys
        Per ``(block, l3)``: ``(block, l3, first row, end row)`` of the convolution output.
    si2_blocks
        The rows of the second linear layer that multiply those rows, one per key.
    """

    columns: list[int]
    layout: tuple[tuple[int, int, Segments], ...]
    si2_keys: list[tuple[int, int, int, int]]
    si2_blocks: list[torch.Tensor]

    @classmethod
    def of(
        cls,
        blocks: list[PathBlock],
        lmax_out: int,
        mul_in: dict[int, int],
        paths: _CheckpointPaths,
        si2_of_l3: dict[int, torch.Tensor],
    ) -> _BlockOrder:
        """Reorder a layer's checkpoint weights for ``blocks`` (those of its input ``l1``)."""
        columns: list[int] = []
        layout = []
        si2_keys: list[tuple[int, int, int, int]] = []
        si2_blocks = []
        for k, block in enumerate(blocks):
            l1, m = block.l1, mul_in[block.l1]
            used = [(l2, l3) for l2, l3 in block.paths if l3 <= lmax_out]
            start = len(columns)
            for l2, l3 in used:
                first_column = paths.weight_offset[(l1, l2, l3)]
                columns.extend(range(first_column, first_column + m))
            segments = block.segments(lmax_out)
            layout.append((start, block.n_rows(lmax_out), segments))
            for first, last, p0, n_p, n_m in segments:
                l3 = (n_m - 1) // 2
                rows: list[int] = []
                for l2, _ in used[p0 : p0 + n_p]:
                    o = paths.mid_offset[(l1, l2, l3)]
                    rows.extend(range(o, o + m))
                si2_keys.append((k, l3, first, last))
                si2_blocks.append(si2_of_l3[l3][rows].contiguous())
        return cls(columns, tuple(layout), si2_keys, si2_blocks)
