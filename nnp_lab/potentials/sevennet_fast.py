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

References
----------
.. [1] S. Batzner et al., "E(3)-equivariant graph neural networks for data-efficient and
   accurate interatomic potentials", Nat. Commun. 13, 2453 (2022).
.. [2] Y. Park, J. Kim, S. Hwang, S. Han, "Scalable Parallel Algorithm for Graph Neural
   Network Interatomic Potentials in Molecular Dynamics Simulations", J. Chem. Theory
   Comput. 20, 4857 (2024).
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms

from nnp_lab.errors import InputError
from nnp_lab.potentials.base import Potential, has_stress
from nnp_lab.potentials.memory import batch_bounds

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


def _stage(name: str):
    """A named ``torch.profiler`` range when a profiler runs (``bench/profile_sevennet.py``
    reads them); a no-op otherwise, so the ~1,000 ranges of a call cost nothing."""
    if torch.autograd._profiler_enabled():
        return torch.profiler.record_function(name)
    return contextlib.nullcontext()


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
        raise InputError(f"{path} is not a SevenNet checkpoint (no 'model_state_dict')")
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
            "evaluate it with the upstream sevenn model "
            "(nnp_lab.potentials.sevennet.SevenNetPotential)"
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

    Symbols with an ``l = 0`` leg are ``delta / sqrt(2l+1)``. The others are read from the
    checkpoint, which stores the ones its tensor products use (``..._w3j_{l1}_{l2}_{l3}``)
    and which the upstream model loads over its own: they are the coefficients the network
    was trained with. e3nn 0.6.0's ``wigner_3j`` returns the opposite sign for (1, 2, 2),
    (2, 1, 2) and (2, 2, 1), so computing them afresh would give a different potential. Only
    a checkpoint without the buffers falls back to e3nn (with a warning). Reading them also
    avoids importing e3nn (~1.6 s).
    """
    if 0 in (l1, l2, l3):
        l = max(l1, l2, l3)
        eye = torch.eye(2 * l + 1, dtype=torch.float64) / math.sqrt(2 * l + 1)
        return eye.reshape(2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1)
    suffix = f"_w3j_{l1}_{l2}_{l3}"
    for key, value in state.items():
        if key.endswith(suffix):
            return value.detach().to(torch.float64)
    logger.warning(
        "checkpoint has no Wigner-3j buffer for (%d, %d, %d); using e3nn's, whose sign "
        "convention may differ from the one the model was trained with",
        l1,
        l2,
        l3,
    )
    from e3nn.o3 import wigner_3j  # slow import, only for checkpoints without the buffers

    return wigner_3j(l1, l2, l3).to(torch.float64)


# ---------------------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------------------
#: Edges per block in the convolution: temporaries stay at ~EDGE_CHUNK * rows * channels
#: floats (about 1 MB), small enough to stay in cache between the fused steps.
EDGE_CHUNK = 256


@dataclass(frozen=True)
class _PathBlock:
    """The convolution paths ``(l1, l2) -> l3`` that start from input features with one l1.

    Rows enumerate the output components ``(l3, m3, path)`` with ``l3`` slowest and the
    paths (sorted by ``l2``) fastest. Two properties follow: the rows of one ``l3`` reshape
    without a copy to ``(2l3+1, n_paths * mul)``, the layout the next linear layer
    multiplies; and a layer whose outputs stop at ``l3 <= k`` uses a prefix of the rows, so
    one edge matrix ``A`` per ``l1`` serves every layer.
    """

    l1: int
    paths: tuple[tuple[int, int], ...]  # (l2, l3), sorted by (l3, l2)
    rows: tuple[tuple[int, int, int], ...]  # (path index, l3, m3)

    @classmethod
    def build(cls, l1: int, lmax: int) -> _PathBlock:
        """All paths from ``l1`` through edge harmonics ``l2 <= 2`` to outputs ``l3 <= lmax``."""
        paths = tuple(
            (l2, l3)
            for l3 in range(lmax + 1)
            for l2 in range(_LMAX + 1)
            if abs(l1 - l2) <= l3 <= l1 + l2
        )
        rows = []
        for l3 in range(lmax + 1):
            idx = [k for k, p in enumerate(paths) if p[1] == l3]
            for m3 in range(2 * l3 + 1):
                rows.extend((k, l3, m3) for k in idx)
        return cls(l1, paths, tuple(rows))

    def n_rows(self, lmax_out: int) -> int:
        """Rows used by a layer with outputs ``l3 <= lmax_out``."""
        return sum(1 for _, l3, _ in self.rows if l3 <= lmax_out)

    def segments(self, lmax_out: int) -> tuple[tuple[int, int, int, int, int], ...]:
        """Per ``l3 <= lmax_out``: (first row, end row, first path, number of paths, 2l3+1)."""
        out, row, path = [], 0, 0
        for l3 in range(lmax_out + 1):
            n_p = sum(1 for _, b in self.paths if b == l3)
            if n_p:
                out.append((row, row + n_p * (2 * l3 + 1), path, n_p, 2 * l3 + 1))
            row += n_p * (2 * l3 + 1)
            path += n_p
        return tuple(out)

    def coupling(self, state: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(9, rows * (2l1+1))``: ``A(edge) = (Y(edge) @ this).view(rows, 2l1+1)``.

        ``A[row, m1] = sqrt(2l3+1) sum_m2 C[m1, m2, m3] Y[l2, m2]`` with ``C`` e3nn's real
        Wigner-3j symbol; ``sqrt(2l3+1)`` is e3nn's ``component`` path normalisation.
        """
        cg = torch.zeros(_N_SH, len(self.rows), 2 * self.l1 + 1, dtype=torch.float64)
        for r, (k, l3, m3) in enumerate(self.rows):
            l2 = self.paths[k][0]
            w3j = _wigner_3j(self.l1, l2, l3, state)
            cg[l2 * l2 : (l2 + 1) ** 2, r, :] = math.sqrt(2 * l3 + 1) * w3j[:, :, m3].T
        return cg.reshape(_N_SH, -1)


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

    def __init__(self, state: dict[str, torch.Tensor], config: dict[str, Any]) -> None:
        super().__init__()
        _check_supported(config)
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

        # One edge matrix A per input l1, shared by all layers (each uses a prefix of rows).
        l1s = sorted({l for ir in irreps[:-1] for _, l in ir})
        self.blocks = [_PathBlock.build(l1, _LMAX) for l1 in l1s]
        if l1s != list(range(len(l1s))):
            raise NotImplementedError(f"input irreps with l = {l1s}")
        self.couplings = _BufferList([b.coupling(state).to(f32) for b in self.blocks])

        self.layers = torch.nn.ModuleList()
        scale_in = 1.0  # the previous gate's activation constant, folded into the next linears
        for t in range(int(config["num_convolution_layer"])):
            layer = _Layer(state, f"{t}_", irreps[t], irreps[t + 1], scale_in, self.blocks)
            self.layers.append(layer)
            scale_in = SILU_SECOND_MOMENT_CONSTANT
        # Readout: two bias-free linear layers without activation = one vector.
        mul_last = irreps[-1][0][0]
        w1 = state["reduce_input_to_hidden.linear.weight"].view(mul_last, -1)
        w2 = state["reduce_hidden_to_energy.linear.weight"].view(w1.shape[1], 1)
        readout = (w1.double() / math.sqrt(w1.shape[0])) @ (w2.double() / math.sqrt(w2.shape[0]))
        self.register_buffer("readout", (scale_in * readout).to(f32))
        # Species-wise shift and scale (a single value applies to every species).
        for name in ("shift", "scale"):
            value = state[f"rescale_atomic_energy.{name}"].to(f32).reshape(-1)
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
        with _stage("sevennet.edge_embedding"):
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
        with _stage("sevennet.readout"):
            out = (x[0].squeeze(1) @ self.readout).squeeze(-1)
            scale = self.atomic_scale.index_select(0, species)
            return out * scale + self.atomic_shift.index_select(0, species)


class _Layer(torch.nn.Module):
    """One interaction block: self-connection, linear, convolution, linear, gate."""

    def __init__(
        self,
        state: dict[str, torch.Tensor],
        prefix: str,
        irreps_in: list[tuple[int, int]],
        irreps_out: list[tuple[int, int]],
        scale_in: float,
        blocks: list[_PathBlock],
    ) -> None:
        super().__init__()
        f32 = torch.float32
        c = SILU_SECOND_MOMENT_CONSTANT
        self.ls_in = [l for _, l in irreps_in]
        mul_in = {l: m for m, l in irreps_in}
        mul_out = {l: m for m, l in irreps_out}
        self.ls_out = sorted(mul_out)
        lmax_out = self.ls_out[-1]
        if self.ls_out != list(range(lmax_out + 1)):
            raise NotImplementedError(f"{prefix}: output irreps with l = {self.ls_out}")
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
            out, offset = [], 0
            for l in sorted(muls_in):
                if l not in muls_out:
                    continue
                n = muls_in[l] * muls_out[l]
                block = flat[offset : offset + n].view(muls_in[l], muls_out[l]).double()
                out.append((factor / math.sqrt(muls_in[l]) * block).to(f32))
                offset += n
            if offset != flat.numel():
                raise InputError(f"{prefix}{name}: unexpected weight size {flat.numel()}")
            return out

        self.sc = _BufferList(linear("self_connection_intro", mul_in, pre_gate, scale_in))
        self.sc_ls = [l for l in self.ls_in if l in pre_gate]
        self.si1 = _BufferList(linear("self_interaction_1", mul_in, mul_in, scale_in))

        # The checkpoint's paths (l1, l2, l3): its radial network emits their weights in
        # (l1, l2, l3) order, its convolution output (the next linear's input) is ordered by
        # (l3, l1, l2).
        paths = sorted(
            (l1, l2, l3)
            for l1 in self.ls_in
            for l2 in range(_LMAX + 1)
            for l3 in self.ls_out
            if abs(l1 - l2) <= l3 <= l1 + l2
        )
        w_offset, off = {}, 0
        for p in paths:
            w_offset[p] = off
            off += mul_in[p[0]]
        mid_offset, mid_mul = {}, dict.fromkeys(self.ls_out, 0)
        for p in sorted(paths, key=lambda p: (p[2], p[0], p[1])):
            mid_offset[p] = mid_mul[p[2]]
            mid_mul[p[2]] += mul_in[p[0]]

        w0 = state[f"{prefix}convolution.weight_nn.layer0.weight"].double()
        w1 = state[f"{prefix}convolution.weight_nn.layer1.weight"].double()
        w2 = state[f"{prefix}convolution.weight_nn.layer2.weight"].double()
        if w2.shape[1] != off:
            raise InputError(f"{prefix}convolution: {w2.shape[1]} radial weights, expected {off}")
        self.register_buffer("radial_w0", (w0 / math.sqrt(w0.shape[0])).to(f32))
        self.register_buffer("radial_w1", (c * w1 / math.sqrt(w1.shape[0])).to(f32))

        denominator = float(state[f"{prefix}convolution.denominator"].reshape(-1)[0])
        si2 = linear("self_interaction_2", mid_mul, pre_gate, 1.0 / denominator)
        si2 = dict(zip([l for l in sorted(mid_mul) if l in pre_gate], si2))

        # Our order: block by block (l1), paths by (l3, l2) inside a block.
        columns: list[int] = []
        layout = []
        self.si2_keys: list[tuple[int, int, int, int]] = []  # (block, l3, first row, end row)
        si2_blocks = []
        for k, block in enumerate(blocks[: len(self.ls_in)]):
            l1, m = block.l1, mul_in[block.l1]
            used = [(l2, l3) for l2, l3 in block.paths if l3 <= lmax_out]
            start = len(columns)
            for l2, l3 in used:
                columns.extend(range(w_offset[(l1, l2, l3)], w_offset[(l1, l2, l3)] + m))
            layout.append((start, block.n_rows(lmax_out), block.segments(lmax_out)))
            for first, last, p0, n_p, n_m in block.segments(lmax_out):
                l3 = (n_m - 1) // 2
                rows = []
                for l2, _ in used[p0 : p0 + n_p]:
                    o = mid_offset[(l1, l2, l3)]
                    rows.extend(range(o, o + m))
                self.si2_keys.append((k, l3, first, last))
                si2_blocks.append(si2[l3][rows].contiguous())
        self.layout = tuple(layout)
        self.register_buffer("radial_w2", (c * w2[:, columns] / math.sqrt(w2.shape[0])).to(f32))
        self.si2 = _BufferList(si2_blocks)
        # Path index of every row (rows are (l3, m3, path)): expands the radial weights.
        self.row_paths = _BufferList([_row_path(segs) for _, _, segs in self.layout])

    def forward(
        self,
        x: list[torch.Tensor],
        radial: torch.Tensor,
        edge_a: list[torch.Tensor],
        sender: torch.Tensor,
        receiver: torch.Tensor,
    ) -> list[torch.Tensor]:
        n_atoms = x[0].shape[0]
        with _stage("sevennet.linear"):
            sc = {l: x[l] @ w for l, w in zip(self.sc_ls, self.sc)}
            h = [xl @ w for xl, w in zip(x, self.si1)]
        with _stage("sevennet.radial_mlp"):
            weights = torch.nn.functional.silu(radial @ self.radial_w0)
            weights = torch.nn.functional.silu(weights @ self.radial_w1)
            weights = weights @ self.radial_w2
        with _stage("sevennet.tensor_product"):
            aggs = _Convolution.apply(
                self.layout, sender, receiver, weights, *h, *edge_a[: len(h)], *self.row_paths
            )
        with _stage("sevennet.linear"):
            pre: dict[int, torch.Tensor | None] = {l: sc.get(l) for l in self.ls_out}
            for (k, l3, first, last), w_lin in zip(self.si2_keys, self.si2):
                block = aggs[k][:, first:last].reshape(n_atoms, 2 * l3 + 1, -1)
                term = block @ w_lin
                pre[l3] = term if pre[l3] is None else pre[l3] + term
        with _stage("sevennet.gate"):
            # SiLU; e3nn's normalisation constant is folded into the next layer's weights.
            s = pre[0]
            out = [torch.nn.functional.silu(s[..., : self.n_scalars])]
            for l in self.ls_out[1:]:
                a, b = self.gate_slices[l]
                out.append(pre[l] * torch.nn.functional.silu(s[..., a:b]))
        return out


class _Convolution(torch.autograd.Function):
    """The ``uvu`` convolution of one layer, edge block by edge block, with its own backward.

    For every input block ``k`` (angular momentum ``l1``)::

        agg_k[i] = sum over edges e = (i, j) of  w_e[paths of k] * (A_k[e] @ x_k[j])

    with ``x_k`` ``(n_atoms, 2l1+1, mul)``, ``A_k`` ``(n_edges, rows, 2l1+1)`` (edge
    harmonics contracted with Wigner-3j symbols) and ``w`` ``(n_pairs, n_weights)`` the
    radial weights, which multiply all rows of their path; edges are the neighbour pairs
    followed by the reversed pairs, and both directions of a pair share its weights. The
    backward pass recomputes the per-edge products block by block instead of storing them:
    memory stays linear in the number of edges with a small constant (no
    ``(n_edges, rows, mul)`` tensor is kept) and the temporaries stay in cache. First
    derivatives only (forces and stress).

    ``layout`` holds per block ``(first weight column, rows used, segments)`` where a
    segment is ``(first row, end row, first path, number of paths, 2l3+1)``; the tensors are
    the blocks' inputs ``x``, their edge matrices ``A`` and their row-to-path indices.
    """

    @staticmethod
    def forward(ctx, layout, sender, receiver, w, *tensors):  # noqa: D102
        n = len(layout)
        xs, edge_a, row_paths = tensors[:n], tensors[n : 2 * n], tensors[2 * n :]
        n_atoms = xs[0].shape[0]
        aggs = [x.new_zeros((n_atoms, rows, x.shape[2])) for x, (_, rows, _) in zip(xs, layout)]
        for e, p in _edge_blocks(w.shape[0]):
            send, recv, w_e = sender[e], receiver[e], w[p]
            for x, a, agg, rp, (col, rows, segs) in zip(xs, edge_a, aggs, row_paths, layout):
                t = _edge_products(a[e, :rows], x.index_select(0, send))
                t.mul_(_row_weights(w_e, col, rp, _n_paths(segs), t.shape[2]))
                agg.index_add_(0, recv, t)
        ctx.save_for_backward(sender, receiver, w, *tensors)
        ctx.layout = layout
        return tuple(aggs)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grad_aggs):  # noqa: D102
        sender, receiver, w, *tensors = ctx.saved_tensors
        layout = ctx.layout
        n = len(layout)
        need = ctx.needs_input_grad
        need_w, need_x, need_a = need[3], need[4 : 4 + n], need[4 + n : 4 + 2 * n]
        with _stage("sevennet.tensor_product_backward"):
            grads = _Convolution._backward(
                layout, sender, receiver, w, tensors, grad_aggs, need_w, need_x, need_a
            )
        return (None, None, None, *grads, *([None] * n))

    @staticmethod
    def _backward(layout, sender, receiver, w, tensors, grad_aggs, need_w, need_x, need_a):
        n = len(layout)
        xs, edge_a, row_paths = tensors[:n], tensors[n : 2 * n], tensors[2 * n :]
        grad_w = torch.zeros_like(w) if need_w else None
        grad_x = [torch.zeros_like(x) if nx else None for x, nx in zip(xs, need_x)]
        grad_a = []
        for a, na, (_, rows, _) in zip(edge_a, need_a, layout):
            if not na:
                grad_a.append(None)
            else:
                grad_a.append(a.new_empty(a.shape) if rows == a.shape[1] else torch.zeros_like(a))
        for e, p in _edge_blocks(w.shape[0]):
            send, recv, w_e = sender[e], receiver[e], w[p]
            for k, (col, rows, segments) in enumerate(layout):
                x, a, rp = xs[k], edge_a[k][e, :rows], row_paths[k]
                c, mul, n_p = a.shape[0], x.shape[2], _n_paths(segments)
                g = grad_aggs[k].index_select(0, recv)  # (c, rows, mul)
                x_e = x.index_select(0, send)
                if need_w:
                    # d/dw[path] = sum over the path's rows of g * (A @ x); both directions
                    # of a pair add into its row of grad_w.
                    t = _edge_products(a, x_e).mul_(g)
                    grad_w[p, col : col + n_p * mul].view(c, n_p, mul).index_add_(1, rp, t)
                g.mul_(_row_weights(w_e, col, rp, n_p, mul))  # now d(loss)/d(A @ x)
                if need_x[k]:
                    grad_x[k].index_add_(0, send, torch.bmm(a.transpose(1, 2), g))
                if need_a[k]:
                    grad_a[k][e, :rows] = torch.bmm(g, x_e.transpose(1, 2))
        return (grad_w, *grad_x, *grad_a)


def _edge_blocks(n_pairs: int):
    """Blocks of at most ``EDGE_CHUNK`` edges: (edge slice, pair slice). Edge ``e`` is pair
    ``e`` for ``e < n_pairs`` and the reverse of pair ``e - n_pairs`` after that."""
    for offset in (0, n_pairs):
        for start in range(0, n_pairs, EDGE_CHUNK):
            stop = min(start + EDGE_CHUNK, n_pairs)
            yield slice(offset + start, offset + stop), slice(start, stop)


def _edge_products(a: torch.Tensor, x_e: torch.Tensor) -> torch.Tensor:
    """``A @ x`` per edge: ``(c, rows, 2l1+1) @ (c, 2l1+1, mul)``."""
    if a.shape[2] == 1:  # l1 = 0: an outer product; broadcasting beats a K=1 bmm
        return a * x_e
    return torch.bmm(a, x_e)


def _row_path(segments) -> torch.Tensor:
    """Path index of every row of a block (rows are ``(l3, m3, path)``)."""
    return torch.tensor(
        [p0 + (r - first) % n_p for first, end, p0, n_p, _ in segments for r in range(first, end)]
    )


def _n_paths(segments) -> int:
    """Number of paths of a block (segments: see :class:`_Convolution`)."""
    return segments[-1][2] + segments[-1][3]


def _row_weights(w: torch.Tensor, col: int, row_path: torch.Tensor, n_p: int, mul: int):
    """The radial weights of every row, ``(c, rows, mul)``, from ``w`` ``(c, n_weights)``."""
    return w[:, col : col + n_p * mul].view(w.shape[0], n_p, mul).index_select(1, row_path)


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

    def pairs(self, slot: int, atoms: Atoms) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
        record = _stage
        device = self.device
        n_atoms = [len(a) for a in structures]
        offsets = np.concatenate([[0], np.cumsum(n_atoms)])
        with record("sevennet.neighbours"):
            found = [self.neighbours.pairs(first_slot + k, a) for k, a in enumerate(structures)]
        with record("sevennet.graph"):
            i = np.concatenate([i + offsets[k] for k, (i, _, _) in enumerate(found)])
            j = np.concatenate([j + offsets[k] for k, (_, j, _) in enumerate(found)])
            pairs = torch.as_tensor(np.stack([i, j]), device=device)
            vec = torch.as_tensor(
                np.concatenate([v for _, _, v in found]), dtype=torch.float32, device=device
            )
            numbers = np.concatenate([a.numbers for a in structures])
            species = self.model.species_of_z.index_select(
                0, torch.as_tensor(numbers, device=device)
            )
        want_stress = "stress" in properties
        want_forces = "forces" in properties or want_stress
        if want_forces:
            # Gradients are needed even if the caller runs under no_grad / inference_mode.
            with torch.inference_mode(False), torch.enable_grad():
                vec = vec.clone().requires_grad_(True)
                atomic = self.model(species, pairs, vec)
                with record("sevennet.backward"):
                    (grad,) = torch.autograd.grad(atomic.sum(), [vec])
        else:
            with torch.inference_mode():
                atomic = self.model(species, pairs, vec)
        with record("sevennet.forces_stress"):
            energy = np.add.reduceat(atomic.detach().double().cpu().numpy(), offsets[:-1])
            out: list[dict] = [{"energy": float(e)} for e in energy]
            if want_forces:
                # F = -dE/dr with r_ij = r_j - r_i: atom i gets +dE/dr_ij, atom j -dE/dr_ij.
                forces = torch.zeros((len(numbers), 3), dtype=grad.dtype, device=device)
                forces.index_add_(0, pairs[0], grad).index_add_(0, pairs[1], -grad)
                forces = forces.cpu().numpy().astype(np.float64)
                for k, res in enumerate(out):
                    res["forces"] = forces[offsets[k] : offsets[k + 1]].copy()
            if want_stress:
                # dE/d(strain)_ab = sum over the structure's pairs of (dE/dr)_a r_b.
                outer = (grad.unsqueeze(2) * vec.detach().unsqueeze(1)).reshape(-1, 9)
                outer = outer.double().cpu().numpy()
                edge_offsets = np.concatenate([[0], np.cumsum([len(i) for i, _, _ in found])])
                for k, (atoms, res) in enumerate(zip(structures, out)):
                    if has_stress(atoms):
                        a, b = edge_offsets[k], edge_offsets[k + 1]
                        virial = outer[a:b].sum(axis=0).reshape(3, 3)
                        sigma = 0.5 * (virial + virial.T) / atoms.get_volume()
                        res["stress"] = sigma[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        return out
