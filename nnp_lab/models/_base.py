"""What every trainable atomistic architecture in :mod:`nnp_lab.models` shares.

:class:`AtomicEnergyModel` turns a per-atom network output into structure energies,

.. math::

    E = \\sum_i \\left[ E^\\mathrm{ref}(Z_i) + \\mathrm{scale} \\cdot \\mathrm{NN}_i
        + \\mathrm{shift} \\right],

maps atomic numbers to species indices (and refuses elements the model was not built for),
and keeps the reference energies and the target normalisation in the ``state_dict`` so that a
saved model reproduces its predictions exactly. Architectures only implement
:meth:`AtomicEnergyModel.atomic_outputs`.

Also here: smooth cutoff functions, element-list normalisation and the construction of
edge pairs (angle triplets) from an edge list, shared by the architectures.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.data import atomic_numbers as _ATOMIC_NUMBERS
from ase.data import chemical_symbols

from nnp_lab.errors import InputError, UncoveredElementsError
from nnp_lab.potentials.base import format_elements
from nnp_lab.potentials.torch_model import EnergyModel, GraphBatch
from nnp_lab.validation import integer

__all__ = [
    "AtomicEnergyModel",
    "normalise_elements",
    "cosine_cutoff",
    "bump_cutoff",
    "edge_pairs",
    "seeded",
    "graph_inputs",
    "shifted_softplus",
    "ACTIVATIONS",
]

#: Number of entries of per-element tables (index = atomic number, 0 unused).
N_TABLE = 119


def normalise_elements(elements: Iterable[int | str]) -> list[int]:
    """Sorted, unique atomic numbers from atomic numbers and/or chemical symbols.

    Parameters
    ----------
    elements
        E.g. ``["Cu", "Au"]``, ``[29, 79]`` or ``("H", 8)``.

    Returns
    -------
    list of int
        Sorted unique atomic numbers.

    Raises
    ------
    InputError
        For unknown symbols, numbers outside 1–118, or an empty list.
    """
    if isinstance(elements, (str, int)):
        elements = [elements]
    zs = set()
    for item in elements:
        if isinstance(item, str):
            z = _ATOMIC_NUMBERS.get(item.strip())
            if z is None or z == 0:
                raise InputError(f"unknown chemical symbol {item!r} in elements; use e.g. 'Cu'")
        else:
            z = int(item)
            if not 1 <= z < N_TABLE:
                raise InputError(f"atomic number {item!r} in elements is outside 1–118")
        zs.add(int(z))
    if not zs:
        raise InputError("elements is empty; give the elements the model should cover")
    return sorted(zs)


def _element_number(key: int | str) -> int:
    return normalise_elements([key])[0]


def cosine_cutoff(r: torch.Tensor, cutoff: float) -> torch.Tensor:
    """Behler's cosine cutoff ``0.5 (cos(π r / rc) + 1)`` for ``r < rc``, else 0.

    Continuous with a continuous first derivative (zero) at ``rc``: forces are continuous.

    Parameters
    ----------
    r
        Distances (Å).
    cutoff
        Cutoff radius ``rc`` (Å).
    """
    inside = r < cutoff
    value = 0.5 * (torch.cos(r * (math.pi / cutoff)) + 1.0)
    return torch.where(inside, value, torch.zeros_like(r))


def bump_cutoff(r: torch.Tensor, cutoff: float) -> torch.Tensor:
    """Infinitely differentiable (C∞) cutoff ``exp(1 - 1 / (1 - (r/rc)²))`` for ``r < rc``.

    Equal to 1 at ``r = 0`` and 0 beyond ``rc``; every derivative vanishes at ``rc``, so the
    energy is C∞ in the positions (as required for PFP's energy surface). Evaluated with a
    double ``where`` so that no infinity or NaN reaches the gradient where it underflows.

    Parameters
    ----------
    r
        Distances (Å).
    cutoff
        Cutoff radius ``rc`` (Å).
    """
    x = r / cutoff
    u = 1.0 - x * x
    # exp(1 - 1/u) < 1e-43 for u < 0.01: treat as 0 (also keeps 1/u² finite in float32).
    ok = u > 0.01
    u_safe = torch.where(ok, u, torch.ones_like(u))
    return torch.where(ok, torch.exp(1.0 - 1.0 / u_safe), torch.zeros_like(u))


def shifted_softplus(x: torch.Tensor) -> torch.Tensor:
    """``softplus(x) - log 2`` (SchNet's activation: 0 at 0, smooth everywhere)."""
    return torch.nn.functional.softplus(x) - math.log(2.0)


class _ShiftedSoftplus(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return shifted_softplus(x)


#: Activation names accepted by the architectures' ``activation`` arguments.
ACTIVATIONS: dict[str, Callable[[], torch.nn.Module]] = {
    "tanh": torch.nn.Tanh,
    "silu": torch.nn.SiLU,
    "celu": lambda: torch.nn.CELU(alpha=0.1),
    "ssp": _ShiftedSoftplus,
}


def make_activation(name: str) -> torch.nn.Module:
    """A fresh activation module by name (see :data:`ACTIVATIONS`)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise InputError(
            f"unknown activation {name!r}; choose from {sorted(ACTIVATIONS)}"
        ) from None


def mlp(sizes: Sequence[int], activation: str) -> torch.nn.Sequential:
    """Dense layers ``sizes[0] -> ... -> sizes[-1]`` with ``activation`` between them
    (none after the last)."""
    layers: list[torch.nn.Module] = []
    for k in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[k], sizes[k + 1]))
        if k < len(sizes) - 2:
            layers.append(make_activation(activation))
    return torch.nn.Sequential(*layers)


def edge_pairs(centres: torch.Tensor, n_atoms: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All unordered pairs of edges that share their centre atom (angle triplets j–i–k).

    Vectorised (no Python loop over atoms): edges are grouped by centre, and for a centre
    with ``c`` edges the ``c (c - 1) / 2`` pairs ``a < b`` are enumerated with integer
    arithmetic.

    Parameters
    ----------
    centres
        Centre atom ``i`` of every edge, shape ``(n_edges,)``.
    n_atoms
        Number of atoms.

    Returns
    -------
    (first, second)
        Edge indices of the two edges of every pair, each of shape ``(n_pairs,)``.
    """
    device = centres.device
    order = torch.argsort(centres, stable=True)
    counts = torch.bincount(centres, minlength=n_atoms)
    starts = torch.cumsum(counts, 0) - counts
    # Pairs a < b of a centre with c edges: c (c - 1) / 2; enumerate rows a of the strict
    # upper triangle via the full c x c square, then keep a < b.
    squares = counts * counts
    total = int(squares.sum())
    if total == 0:
        empty = torch.zeros(0, dtype=torch.long, device=device)
        return empty, empty
    owner = torch.repeat_interleave(torch.arange(n_atoms, device=device), squares)
    local = torch.arange(total, device=device) - (torch.cumsum(squares, 0) - squares)[owner]
    c = counts[owner]
    a = torch.div(local, c, rounding_mode="floor")
    b = local - a * c
    keep = a < b
    base = starts[owner[keep]]
    return order[base + a[keep]], order[base + b[keep]]


def graph_inputs(
    data: GraphBatch | Atoms | Sequence[Atoms],
    cutoff: float,
    dtype: torch.dtype,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """``(numbers, edge_index, edge_vectors, batch, n_structures)`` of a graph or structures.

    Parameters
    ----------
    data
        A :class:`~nnp_lab.potentials.torch_model.GraphBatch`, one :class:`ase.Atoms` or a
        list of them (neighbour lists built with ``cutoff``).
    cutoff
        Neighbour cutoff (Å) used when structures are given.
    dtype, device
        Floating point type and device of the returned tensors.
    """
    if isinstance(data, Atoms):
        data = [data]
    if not isinstance(data, GraphBatch):
        data = GraphBatch.from_structures(list(data), cutoff, dtype=dtype, device=device)
    pos = data.positions.to(dtype)
    shift = torch.bmm(
        data.shifts.to(dtype).unsqueeze(1), data.cells.to(dtype)[data.edge_batch]
    ).squeeze(1)
    vec = pos[data.edge_index[1]] - pos[data.edge_index[0]] + shift
    return data.numbers, data.edge_index, vec, data.batch, data.n_structures


class AtomicEnergyModel(EnergyModel):
    """Base of the architectures: species lookup, reference energies, normalisation, sum.

    The energy of a structure is
    ``E = Σ_i [reference_energies[Z_i] + energy_scale * NN_i + energy_shift]`` where
    ``NN_i`` is the architecture's per-atom output (:meth:`atomic_outputs`). Reference
    energies (eV/atom, one per element, zero by default), scale (1) and shift (0, eV/atom)
    are buffers, saved with the weights.

    Parameters
    ----------
    elements
        Atomic numbers or chemical symbols the model covers (stored sorted as numbers).
    cutoff
        Neighbour cutoff in Å (the largest distance any part of the model looks at).

    Attributes
    ----------
    elements : tuple of int
        Covered atomic numbers, sorted; species index ``k`` is ``elements[k]``.
    cutoff : float
        Neighbour cutoff (Å).
    config : dict
        JSON-able constructor arguments: ``type(model)(**model.config)`` rebuilds it.
    """

    # buffers (register_buffer in __init__), declared for type checkers
    species_table: torch.Tensor
    reference_energies: torch.Tensor
    energy_scale: torch.Tensor
    energy_shift: torch.Tensor

    def __init__(self, elements: Iterable[int | str], cutoff: float) -> None:
        super().__init__()
        zs = normalise_elements(elements)
        cutoff = float(cutoff)
        if not cutoff > 0:
            raise InputError(f"cutoff must be positive, got {cutoff}")
        self.elements = tuple(zs)
        self.cutoff = cutoff
        self.config: dict[str, Any] = {"elements": list(zs), "cutoff": cutoff}
        table = torch.full((N_TABLE,), -1, dtype=torch.long)
        table[torch.tensor(zs)] = torch.arange(len(zs))
        dtype = torch.get_default_dtype()
        self.register_buffer("species_table", table)
        self.register_buffer("reference_energies", torch.zeros(N_TABLE, dtype=dtype))
        self.register_buffer("energy_scale", torch.tensor(1.0, dtype=dtype))
        self.register_buffer("energy_shift", torch.tensor(0.0, dtype=dtype))

    # -- bookkeeping ----------------------------------------------------------------------
    @property
    def n_elements(self) -> int:
        """Number of covered elements (species)."""
        return len(self.elements)

    @property
    def dtype(self) -> torch.dtype:
        """Floating point type of the model's buffers and weights."""
        return self.reference_energies.dtype

    @property
    def device(self) -> torch.device:
        """Device of the model."""
        return self.reference_energies.device

    def n_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def species(self, numbers: torch.Tensor) -> torch.Tensor:
        """Species indices (0 … n_elements - 1) of atomic numbers.

        Parameters
        ----------
        numbers
            Atomic numbers, shape ``(n_atoms,)``.

        Raises
        ------
        UncoveredElementsError
            When an atomic number is not among :attr:`elements`.
        """
        valid = (numbers > 0) & (numbers < N_TABLE)
        species = self.species_table[numbers.clamp(0, N_TABLE - 1)]
        bad = (species < 0) | ~valid
        if bool(bad.any()):
            missing = sorted(set(numbers[bad].tolist()))
            names = ", ".join(chemical_symbols[z] if 0 < z < N_TABLE else str(z) for z in missing)
            raise UncoveredElementsError(
                f"element(s) {names} not covered by this {type(self).__name__} model; "
                f"covered: {format_elements(self.elements)}; build or train a model whose "
                "`elements` include them"
            )
        return species

    # -- energy ---------------------------------------------------------------------------
    def set_reference_energies(self, mapping: Mapping[int | str, float]) -> None:
        """Set the per-element reference energies (eV/atom) added to every atom's energy.

        Parameters
        ----------
        mapping
            ``{element: energy}`` with elements as atomic numbers or symbols. Elements not in
            ``mapping`` get 0 (the table is replaced, not updated).
        """
        table = torch.zeros(N_TABLE, dtype=torch.float64)
        for key, value in mapping.items():
            table[_element_number(key)] = float(value)
        with torch.no_grad():
            self.reference_energies.copy_(table.to(self.reference_energies))

    def get_reference_energies(self) -> dict[int, float]:
        """Reference energies of the covered elements, ``{Z: eV}``."""
        ref = self.reference_energies.detach().cpu().double()
        return {z: float(ref[z]) for z in self.elements}

    def set_normalisation(self, shift: float, scale: float) -> None:
        """Set the per-atom output normalisation: ``E_i = ref + scale * NN_i + shift``.

        Training sets these from the statistics of its targets (e.g. the mean residual
        energy per atom after the reference energies and the force RMS), so the network
        learns numbers of order one.

        Parameters
        ----------
        shift
            eV/atom added to every atom.
        scale
            eV multiplying the network's output.
        """
        with torch.no_grad():
            self.energy_shift.fill_(float(shift))
            self.energy_scale.fill_(float(scale))

    def atomic_outputs(
        self,
        species: torch.Tensor,
        edge_index: torch.Tensor,
        edge_vectors: torch.Tensor,
        n_atoms: int,
    ) -> torch.Tensor:
        """The network's per-atom output ``NN_i`` (before scale, shift and references).

        Parameters
        ----------
        species
            Species index of every atom (position in :attr:`elements`), ``(n_atoms,)``.
        edge_index
            ``(2, n_edges)`` pairs ``(i, j)``; both directions present. Edges longer than
            the model's cutoff may be present and must be ignored.
        edge_vectors
            ``r_j - r_i`` including the periodic shift, ``(n_edges, 3)``.
        n_atoms
            Number of atoms.

        Returns
        -------
        torch.Tensor
            Shape ``(n_atoms,)``.
        """
        raise NotImplementedError

    def atomic_energies(
        self,
        numbers: torch.Tensor,
        edge_index: torch.Tensor,
        edge_vectors: torch.Tensor,
    ) -> torch.Tensor:
        """Per-atom energies ``ref(Z_i) + scale * NN_i + shift`` (eV), shape ``(n_atoms,)``.

        Parameters
        ----------
        numbers, edge_index, edge_vectors
            As in :meth:`EnergyModel.forward`, which sums these per structure.
        """
        species = self.species(numbers)
        out = self.atomic_outputs(species, edge_index, edge_vectors, numbers.shape[0])
        return self.reference_energies[numbers] + self.energy_scale * out + self.energy_shift

    # -- loading --------------------------------------------------------------------------
    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ):
        """Load weights, adopting their floating point type first.

        A model built from its config is float32; loading float64 weights into it would
        round them. The module is cast to the dtype of the incoming floating point tensors
        before copying, so a float64 model reloads bit for bit.
        """
        floats = [v for v in state_dict.values() if torch.is_tensor(v) and v.is_floating_point()]
        if floats and floats[0].dtype != self.dtype:
            self.to(floats[0].dtype)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def extra_repr(self) -> str:
        return (
            f"elements={[chemical_symbols[z] for z in self.elements]}, cutoff={self.cutoff}, "
            f"parameters={self.n_parameters()}"
        )


@contextlib.contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Inside the block torch's CPU generator is seeded with ``seed``; afterwards it is back
    in the state it had (``None``: the block draws from it as usual).

    The architectures wrap their weight initialisation in this, so ``SchNet(..., seed=0)``
    gives the same weights as ``torch.manual_seed(0); SchNet(...)`` without touching the
    global random state.
    """
    if seed is None:
        yield
        return
    seed = integer("seed", seed, minimum=None)
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)
        yield


def as_float_list(values: Iterable[float] | np.ndarray) -> list[float]:
    """Plain list of Python floats (JSON-able config values)."""
    return [float(v) for v in np.asarray(list(values), dtype=float).ravel()]
