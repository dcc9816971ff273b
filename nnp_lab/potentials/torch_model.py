"""Our own torch models behind the :class:`Potential` interface, and their file format.

An :class:`EnergyModel` maps a batch of graphs (atoms + neighbour pairs) to one energy per
structure; :class:`TorchModelPotential` builds the neighbour lists (vesin), differentiates
the energy for forces and stress (strain derivative), and batches structures.

File format (one ``.pt`` file, loaded with ``torch.load(weights_only=True)``)::

    {"format": "nnp_lab.model", "format_version": 1,
     "architecture": "nnp_lab.some.module:ClassName",   # an EnergyModel subclass
     "config": {...},                                   # plain JSON-able constructor args
     "state_dict": {...},                               # tensors
     "metadata": {"name", "version", "level_of_theory", "citation", "licence", ...}}

Only architectures inside the ``nnp_lab`` package load, so a model file can never import
arbitrary code.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms

from nnp_lab.errors import InputError
from nnp_lab.potentials.base import Potential, has_stress

__all__ = [
    "EnergyModel",
    "LennardJones",
    "TorchModelPotential",
    "GraphBatch",
    "save_model",
    "load_model_file",
    "FORMAT",
    "MEMORY_MODELS",
]

FORMAT = "nnp_lab.model"
FORMAT_VERSION = 1

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class EnergyModel(torch.nn.Module):
    """Base class of nnp_lab's trainable architectures.

    Subclasses store their constructor arguments in ``self.config`` (JSON-able) and set
    ``cutoff`` (Å) and ``elements`` (atomic numbers covered), then implement
    :meth:`atomic_energies` (:meth:`forward` sums them per structure) or :meth:`forward`
    itself.
    """

    cutoff: float
    elements: tuple[int, ...]
    config: dict[str, Any]
    #: Peak-memory constants of the architecture for :class:`TorchModelPotential`'s memory
    #: check (bytes per atom, per neighbour pair within ``cutoff``, per call, per angle
    #: within ``memory_triplet_cutoff``); None: the measured defaults of
    #: :data:`MEMORY_MODELS` (see :mod:`nnp_lab.potentials.memory`).
    memory_per_atom_bytes: float | None = None
    memory_per_pair_bytes: float | None = None
    memory_overhead_bytes: float | None = None
    memory_per_triplet_bytes: float | None = None
    memory_triplet_cutoff: float | None = None

    def forward(
        self,
        numbers: torch.Tensor,
        edge_index: torch.Tensor,
        edge_vectors: torch.Tensor,
        batch: torch.Tensor,
        n_structures: int,
    ) -> torch.Tensor:
        """Energies (eV) of ``n_structures`` structures, shape ``(n_structures,)``.

        Parameters
        ----------
        numbers
            Atomic numbers, shape ``(n_atoms,)``.
        edge_index
            ``(2, n_edges)``: pair ``(i, j)`` with ``j`` a neighbour of ``i`` within cutoff
            (both directions present).
        edge_vectors
            ``r_j - r_i`` (including the periodic shift), shape ``(n_edges, 3)``; forces and
            stress flow back through these.
        batch
            Structure index of each atom, shape ``(n_atoms,)``.
        n_structures
            Number of structures in the batch.
        """
        atomic = self.atomic_energies(numbers, edge_index, edge_vectors)
        energy = torch.zeros(n_structures, dtype=atomic.dtype, device=atomic.device)
        return energy.index_add(0, batch, atomic)

    def atomic_energies(
        self,
        numbers: torch.Tensor,
        edge_index: torch.Tensor,
        edge_vectors: torch.Tensor,
    ) -> torch.Tensor:
        """Per-atom energies (eV), shape ``(n_atoms,)``, that :meth:`forward` sums.

        Parameters
        ----------
        numbers, edge_index, edge_vectors
            As in :meth:`forward`.
        """
        raise NotImplementedError(
            f"{type(self).__name__} implements neither atomic_energies nor forward"
        )

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> EnergyModel:
        """Build an untrained model from its config."""
        return cls(**config)


class LennardJones(EnergyModel):
    """Lennard-Jones pair potential with trainable ε and σ, shifted to zero at the cutoff.

    The smallest model that exercises the whole stack (training, saving, loading, running).

    Parameters
    ----------
    epsilon
        Well depth in eV.
    sigma
        Zero-crossing distance in Å.
    cutoff
        Cutoff in Å (energy shifted so that it is 0 there).
    elements
        Atomic numbers the model accepts.
    """

    def __init__(
        self,
        epsilon: float = 0.01,
        sigma: float = 3.4,
        cutoff: float = 8.0,
        elements: tuple[int, ...] | list[int] = tuple(range(1, 119)),
    ) -> None:
        super().__init__()
        self.config = {
            "epsilon": float(epsilon),
            "sigma": float(sigma),
            "cutoff": float(cutoff),
            "elements": [int(z) for z in elements],
        }
        self.cutoff = float(cutoff)
        self.elements = tuple(int(z) for z in elements)
        self.log_epsilon = torch.nn.Parameter(torch.tensor(np.log(epsilon), dtype=torch.float64))
        self.log_sigma = torch.nn.Parameter(torch.tensor(np.log(sigma), dtype=torch.float64))

    def atomic_energies(self, numbers, edge_index, edge_vectors):
        eps = self.log_epsilon.exp()
        sigma = self.log_sigma.exp()
        r2 = (edge_vectors * edge_vectors).sum(dim=1)
        sr6 = (sigma * sigma / r2) ** 3
        src6 = (sigma / self.cutoff) ** 6
        pair = 4 * eps * ((sr6 * sr6 - sr6) - (src6 * src6 - src6))
        # Each pair appears twice (i->j and j->i): half of it belongs to atom i.
        atomic = torch.zeros(numbers.shape[0], dtype=pair.dtype, device=pair.device)
        return atomic.index_add(0, edge_index[0], 0.5 * pair)


def _neighbours(atoms: Atoms, cutoff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full neighbour list (i, j, integer shifts S) with r_ij = r_j - r_i + S @ cell."""
    from nnp_lab.potentials.neighbours import neighbour_list

    i, j, shifts = neighbour_list(atoms, cutoff, full=True, quantities="ijS")
    return i, j, shifts.astype(np.float64)


@dataclass
class GraphBatch:
    """Structures turned into one batched graph: the input of :class:`EnergyModel`.

    Build it once per set of positions with :meth:`from_structures`; training code keeps one
    per frame (the neighbour list does not change while the weights do).

    Attributes
    ----------
    numbers, positions, cells, batch
        Per atom: atomic numbers, Cartesian positions (Å), and structure index; ``cells`` is
        ``(n_structures, 3, 3)`` (zeros for non-periodic structures).
    edge_index, shifts, edge_batch
        Per edge ``(i, j)``: the integer cell shift ``S`` with ``r_ij = r_j - r_i + S @ cell``
        and the structure index.
    n_structures
        Number of structures.
    """

    numbers: torch.Tensor
    positions: torch.Tensor
    cells: torch.Tensor
    batch: torch.Tensor
    edge_index: torch.Tensor
    shifts: torch.Tensor
    edge_batch: torch.Tensor
    n_structures: int

    @classmethod
    def from_structures(
        cls,
        structures: list[Atoms],
        cutoff: float,
        *,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> GraphBatch:
        """Neighbour lists (vesin, full, periodic images included) of ``structures`` within
        ``cutoff`` Å, stacked into one batch."""
        numbers, positions, cells, batch, edges, shifts, edge_batch = [], [], [], [], [], [], []
        offset = 0
        for k, atoms in enumerate(structures):
            i, j, s = _neighbours(atoms, cutoff)
            numbers.append(atoms.numbers)
            positions.append(atoms.positions)
            cells.append(np.asarray(atoms.cell) if atoms.pbc.any() else np.zeros((3, 3)))
            batch.append(np.full(len(atoms), k))
            edges.append(np.stack([i, j]) + offset)
            shifts.append(s)
            edge_batch.append(np.full(len(i), k))
            offset += len(atoms)

        def t(x: np.ndarray, dt: torch.dtype) -> torch.Tensor:
            return torch.as_tensor(x, dtype=dt, device=device)

        return cls(
            numbers=t(np.concatenate(numbers), torch.long),
            positions=t(np.concatenate(positions), dtype),
            cells=t(np.stack(cells), dtype),
            batch=t(np.concatenate(batch), torch.long),
            edge_index=t(np.concatenate(edges, axis=1), torch.long),
            shifts=t(np.concatenate(shifts), dtype),
            edge_batch=t(np.concatenate(edge_batch), torch.long),
            n_structures=len(structures),
        )

    @property
    def n_atoms(self) -> torch.Tensor:
        """Atoms per structure, shape ``(n_structures,)``."""
        return torch.bincount(self.batch, minlength=self.n_structures)

    def energy_forces_virial(
        self,
        model: EnergyModel,
        *,
        stress: bool = True,
        create_graph: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Energies ``(n,)``, forces ``(n_atoms, 3)`` and the strain derivative ``dE/dε``
        ``(n, 3, 3)`` (divide by the volume for the stress; ``None`` unless ``stress``).

        ``create_graph=True`` keeps the graph of the forces so a force loss can be
        differentiated with respect to the weights (training).
        """
        dtype = self.positions.dtype
        # Strain trick: positions and cells are deformed by (1 + eps); dE/deps / V = stress.
        strain = torch.zeros(
            (self.n_structures, 3, 3),
            dtype=dtype,
            device=self.positions.device,
            requires_grad=stress,
        )
        pos = self.positions.detach().requires_grad_(True)
        if stress:
            deform = torch.eye(3, dtype=dtype, device=pos.device) + 0.5 * (
                strain + strain.transpose(1, 2)
            )
            pos_d = torch.bmm(pos.unsqueeze(1), deform[self.batch]).squeeze(1)
            cell_d = torch.bmm(self.cells, deform)
        else:
            pos_d, cell_d = pos, self.cells
        shift_vec = torch.bmm(self.shifts.unsqueeze(1), cell_d[self.edge_batch]).squeeze(1)
        vec = pos_d[self.edge_index[1]] - pos_d[self.edge_index[0]] + shift_vec
        energy = model(self.numbers, self.edge_index, vec, self.batch, self.n_structures)
        grads = torch.autograd.grad(
            energy.sum(), [pos, strain] if stress else [pos], create_graph=create_graph
        )
        return energy, -grads[0], (grads[1] if stress else None)


#: Peak-memory constants ``(per atom, per pair, overhead, per angle)`` in bytes of
#: :func:`nnp_lab.models.distill`'s architectures at its light default settings (six
#: elements; random weights), measured with ``bench/memory_model.py`` on diamond Si and C,
#: fcc Cu and bcc Na, 64-4,096 atoms (fit x 1.25 + 50 MB; rms residuals 6.2 %, 4.3 % and
#: 6.9 %). Other architectures get the largest of each (``"default"``); angles count within
#: the model's ``angular_cutoff`` (Behler–Parrinello). Wider or deeper settings need more:
#: set ``memory_*_bytes`` on the :class:`EnergyModel` subclass. Measured in float32; a
#: float64 :class:`TorchModelPotential` doubles the per-atom, per-pair and per-angle terms.
MEMORY_MODELS: dict[str, tuple[float, float, float, float]] = {
    "SchNet": (0.0, 6.84e3, 63.1e6, 0.0),
    "TeaNet": (0.77e3, 4.90e3, 66.3e6, 0.0),
    "BehlerParrinello": (0.52e3, 1.14e3, 64.1e6, 0.69e3),
    "default": (0.77e3, 6.84e3, 66.3e6, 0.69e3),
}


class TorchModelPotential(Potential):
    """A :class:`Potential` around an :class:`EnergyModel`: forces and stress by autograd.

    Parameters
    ----------
    model
        The energy model.
    name, version, level_of_theory, citation, licence
        Metadata.
    device
        Torch device string.
    dtype
        ``"float32"`` or ``"float64"``.
    """

    package = "torch"

    def __init__(
        self,
        model: EnergyModel,
        *,
        name: str = "torch-model",
        version: str = "1",
        level_of_theory: str = "unknown",
        citation: str = "",
        licence: str = "unknown",
        device: str = "cpu",
        dtype: str = "float32",
    ) -> None:
        super().__init__()
        if dtype not in _DTYPES:
            raise InputError(f"dtype must be one of {list(_DTYPES)}, got {dtype!r}")
        self.model = model.to(device=device, dtype=_DTYPES[dtype])
        self.model.eval()
        self.name = name
        self.version = version
        self.level_of_theory = level_of_theory
        self.citation = citation
        self.licence = licence
        self.device = device
        self.dtype = dtype
        self.cutoff = float(model.cutoff)
        self.elements = frozenset(model.elements)
        self._set_memory_model(model)

    def _set_memory_model(self, model: EnergyModel) -> None:
        """Memory constants: the model's own, else those measured for its architecture."""
        defaults = MEMORY_MODELS.get(type(model).__name__, MEMORY_MODELS["default"])
        angular = getattr(model, "angular", "none") != "none"
        triplet_cutoff = model.memory_triplet_cutoff or (
            getattr(model, "angular_cutoff", None) if angular else None
        )
        # Measured in float32; float64 tensors take twice the bytes.
        scale = 2.0 if self.dtype == "float64" else 1.0
        names = ("per_atom", "per_pair", "overhead", "per_triplet")
        for name, default in zip(names, defaults):
            own = getattr(model, f"memory_{name}_bytes", None)
            if own is None:
                own = default if name == "overhead" else default * scale
            setattr(self, f"memory_{name}_bytes", float(own))
        self.memory_triplet_cutoff = triplet_cutoff
        if not triplet_cutoff:
            self.memory_per_triplet_bytes = 0.0

    def _evaluate(self, structures: list[Atoms], properties: tuple[str, ...]) -> list[dict]:
        graph = GraphBatch.from_structures(
            structures, self.cutoff, dtype=_DTYPES[self.dtype], device=self.device
        )
        want_stress = "stress" in properties
        energy, forces, virial = graph.energy_forces_virial(self.model, stress=want_stress)
        e = energy.detach().cpu().numpy().astype(np.float64)
        f = forces.detach().cpu().numpy().astype(np.float64)
        v = None if virial is None else virial.detach().cpu().numpy().astype(np.float64)
        results = []
        start = 0
        for k, atoms in enumerate(structures):
            res = {"energy": float(e[k]), "forces": f[start : start + len(atoms)].copy()}
            if v is not None and has_stress(atoms):
                sigma = v[k] / atoms.get_volume()
                res["stress"] = sigma[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
            results.append(res)
            start += len(atoms)
        return results


def save_model(
    model: EnergyModel,
    path: str | os.PathLike,
    *,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Save ``model`` (weights + config + metadata) to one file that :func:`load_potential` reads.

    Parameters
    ----------
    model
        An :class:`EnergyModel` whose class lives in the ``nnp_lab`` package.
    path
        Output file (``.pt``).
    metadata
        ``name``, ``version``, ``level_of_theory``, ``citation``, ``licence``, ``dtype`` and
        anything else JSON-able (reference energies, training report ...).
    """
    cls = type(model)
    if not cls.__module__.startswith("nnp_lab."):
        raise InputError(
            f"only architectures defined in nnp_lab can be saved, not {cls.__module__}.{cls.__name__}"
        )
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": f"{cls.__module__}:{cls.__qualname__}",
        "config": dict(model.config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metadata": dict(metadata or {}),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    return path


def load_model_file(path: str | os.PathLike, *, device: str = "cpu") -> TorchModelPotential:
    """Load a model file written by :func:`save_model` (``weights_only=True``: no pickled code).

    Parameters
    ----------
    path
        The ``.pt`` file.
    device
        Torch device string.
    """
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same advice
        raise InputError(
            f"{path} is not a model file nnp_lab can read ({exc.__class__.__name__}: {exc}); "
            "save models with nnp_lab.potentials.torch_model.save_model"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(
            f"{path} is not an nnp_lab model file (no 'format': '{FORMAT}' entry); "
            "save models with nnp_lab.potentials.torch_model.save_model"
        )
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise InputError(
            f"{path} was written by a newer nnp_lab (format {payload['format_version']}); upgrade"
        )
    module_name, _, class_name = str(payload["architecture"]).partition(":")
    if not module_name.startswith("nnp_lab."):
        raise InputError(f"{path}: architecture {payload['architecture']!r} is not part of nnp_lab")
    cls = getattr(importlib.import_module(module_name), class_name, None)
    if cls is None or not (isinstance(cls, type) and issubclass(cls, EnergyModel)):
        raise InputError(f"{path}: unknown architecture {payload['architecture']!r}")
    model = cls.from_config(payload["config"])
    model.load_state_dict(payload["state_dict"])
    meta = payload.get("metadata", {})
    return TorchModelPotential(
        model,
        name=str(meta.get("name", path.stem)),
        version=str(meta.get("version", "1")),
        level_of_theory=str(meta.get("level_of_theory", "unknown")),
        citation=str(meta.get("citation", "")),
        licence=str(meta.get("licence", "unknown")),
        device=device,
        dtype=str(meta.get("dtype", "float32")),
    )
