"""Training frames: graphs and labels built once, batched, predicted and scored.

The data side of :func:`nnp_lab.models.train` (and of the error measurements of
:func:`nnp_lab.models.distill`): every labelled structure becomes a :class:`Frame` holding
its :class:`~nnp_lab.potentials.torch_model.GraphBatch` and labels; :func:`collate` joins
frames into one batch; :func:`predict` evaluates a model on it; :func:`frame_errors` and
:func:`evaluate_model` measure errors; :func:`fit_reference_energies` fits per-element
energies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from nnp_lab.errors import InputError
from nnp_lab.models.dataset import Dataset
from nnp_lab.potentials.torch_model import EnergyModel, GraphBatch

__all__ = [
    "Frame",
    "build_frames",
    "collate",
    "predict",
    "frame_errors",
    "evaluate_model",
    "fit_reference_energies",
    "reference_table",
]


@dataclass
class Frame:
    """One structure's graph and labels, built once and reused every epoch."""

    graph: GraphBatch
    energy: float
    forces: torch.Tensor
    stress: torch.Tensor | None  # (6,) Voigt, eV/Å³
    volume: float
    n_atoms: int
    numbers: np.ndarray


def build_frames(
    data: Dataset | Sequence[Any], cutoff: float, dtype: torch.dtype, device: str
) -> list[Frame]:
    """One :class:`Frame` per labelled structure of a Dataset or a list of Atoms."""
    records = data.records() if isinstance(data, Dataset) else [_record(a) for a in data]
    out = []
    for k, rec in enumerate(records):
        if rec["forces"] is None or not np.isfinite(rec["energy"]):
            raise InputError(f"frame {k} has no energy or forces; label it with a teacher first")
        atoms = rec["atoms"]
        graph = GraphBatch.from_structures([atoms], cutoff, dtype=dtype, device=device)
        stress = rec["stress"]
        periodic = bool(atoms.pbc.any()) and abs(atoms.cell.volume) > 1e-8
        out.append(
            Frame(
                graph=graph,
                energy=float(rec["energy"]),
                forces=torch.as_tensor(rec["forces"], dtype=dtype, device=device),
                stress=None
                if stress is None or not periodic
                else torch.as_tensor(stress, dtype=dtype, device=device),
                volume=float(atoms.get_volume()) if periodic else float("nan"),
                n_atoms=len(atoms),
                numbers=np.asarray(rec["numbers"]),
            )
        )
    return out


def _record(atoms: Any) -> dict[str, Any]:
    res = atoms.calc.results if atoms.calc is not None else {}
    return {
        "numbers": atoms.numbers,
        "energy": float(res.get("energy", float("nan"))),
        "forces": None if "forces" not in res else np.asarray(res["forces"], dtype=float),
        "stress": None if "stress" not in res else np.asarray(res["stress"], dtype=float),
        "atoms": atoms,
    }


def collate(frames: Sequence[Frame]) -> tuple[GraphBatch, dict[str, torch.Tensor]]:
    """Concatenate per-frame graphs into one batch (offsets added) plus stacked labels."""
    g0 = frames[0].graph
    device, dtype = g0.positions.device, g0.positions.dtype
    if len(frames) == 1:
        graph = g0
    else:
        n_atoms = torch.tensor([f.n_atoms for f in frames], device=device)
        atom_offset = torch.cumsum(n_atoms, 0) - n_atoms
        edge_counts = [f.graph.edge_index.shape[1] for f in frames]
        graph = GraphBatch(
            numbers=torch.cat([f.graph.numbers for f in frames]),
            positions=torch.cat([f.graph.positions for f in frames]),
            cells=torch.cat([f.graph.cells for f in frames]),
            batch=torch.repeat_interleave(torch.arange(len(frames), device=device), n_atoms),
            edge_index=torch.cat(
                [f.graph.edge_index + atom_offset[k] for k, f in enumerate(frames)], dim=1
            ),
            shifts=torch.cat([f.graph.shifts for f in frames]),
            edge_batch=torch.repeat_interleave(
                torch.arange(len(frames), device=device),
                torch.tensor(edge_counts, device=device),
            ),
            n_structures=len(frames),
        )
    labels = {
        "energy": torch.tensor([f.energy for f in frames], dtype=dtype, device=device),
        "n_atoms": torch.tensor([f.n_atoms for f in frames], dtype=dtype, device=device),
        "forces": torch.cat([f.forces for f in frames]),
    }
    with_stress = [k for k, f in enumerate(frames) if f.stress is not None]
    if with_stress:
        labels["stress_index"] = torch.tensor(with_stress, device=device)
        labels["stress"] = torch.stack(
            [s for s in (frames[k].stress for k in with_stress) if s is not None]
        )
        labels["volume"] = torch.tensor(
            [frames[k].volume for k in with_stress], dtype=dtype, device=device
        )
    return graph, labels


_VOIGT = ([0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1])


def predict(
    model: EnergyModel,
    graph: GraphBatch,
    labels: dict[str, torch.Tensor],
    *,
    stress: bool,
    create_graph: bool,
) -> dict[str, torch.Tensor]:
    """Energies, forces and (where labelled and asked for) Voigt stresses of a batch."""
    want_stress = stress and "stress" in labels
    energy, forces, virial = graph.energy_forces_virial(
        model, stress=want_stress, create_graph=create_graph
    )
    out = {"energy": energy, "forces": forces}
    if want_stress:
        assert virial is not None  # asked for with stress=True
        idx = labels["stress_index"]
        sigma = virial[idx] / labels["volume"][:, None, None]
        out["stress"] = sigma[:, _VOIGT[0], _VOIGT[1]]
    return out


# ----------------------------------------------------------------------------------------
# Reference energies
# ----------------------------------------------------------------------------------------
def fit_reference_energies(
    numbers: Sequence[np.ndarray], energies: Sequence[float], elements: Sequence[int]
) -> dict[int, float]:
    """Per-element energies ``e_Z`` minimising ``Σ_k (E_k − Σ_Z n_kZ e_Z)²``.

    When the compositions do not determine every element's energy (e.g. all frames share
    one stoichiometry), the minimum-norm least-squares solution is taken: any solution
    predicts the same energies for those compositions.

    Parameters
    ----------
    numbers
        Atomic numbers of each frame.
    energies
        Energy of each frame (eV).
    elements
        Atomic numbers to fit (columns of the composition matrix).

    Returns
    -------
    dict
        ``{Z: eV}``.
    """
    elements = [int(z) for z in elements]
    col = {z: j for j, z in enumerate(elements)}
    counts = np.zeros((len(numbers), len(elements)))
    for k, zs in enumerate(numbers):
        for z, c in zip(*np.unique(zs, return_counts=True)):
            counts[k, col[int(z)]] = c
    e = np.asarray(energies, dtype=float)
    solution, *_ = np.linalg.lstsq(counts, e, rcond=None)
    return {z: float(solution[j]) for j, z in enumerate(elements)}


def reference_table(model: EnergyModel) -> dict[int, float] | None:
    """The model's ``{Z: eV}`` reference energies, or None when it has none."""
    getter = getattr(model, "get_reference_energies", None)
    return getter() if callable(getter) else None


# ----------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------
def frame_errors(
    model: EnergyModel, frames: Sequence[Frame], batch_size: int, stress: bool = True
) -> dict[str, Any]:
    """MAE/RMSE of energy per atom, force components and stress over ``frames``.

    All values are floats but ``stress_mae``, which is None without stress labels.
    """
    if not frames:
        nan = float("nan")
        return {
            "energy_mae_per_atom": nan,
            "energy_rmse_per_atom": nan,
            "force_mae": nan,
            "force_rmse": nan,
            "stress_mae": None,
        }
    e_err, f_abs, f_sq, s_abs = [], 0.0, 0.0, []
    n_f = 0
    for b in range(0, len(frames), batch_size):
        chunk = frames[b : b + batch_size]
        graph, labels = collate(chunk)
        pred = predict(model, graph, labels, stress=stress, create_graph=False)
        de = ((pred["energy"].detach() - labels["energy"]) / labels["n_atoms"]).double()
        e_err.append(de.cpu().numpy())
        df = (pred["forces"].detach() - labels["forces"]).double()
        f_abs += float(df.abs().sum())
        f_sq += float((df * df).sum())
        n_f += df.numel()
        if "stress" in pred:
            s_abs.append((pred["stress"].detach() - labels["stress"]).abs().double().cpu().numpy())
    e = np.concatenate(e_err)
    return {
        "energy_mae_per_atom": float(np.mean(np.abs(e))),
        "energy_rmse_per_atom": float(np.sqrt(np.mean(e * e))),
        "force_mae": f_abs / max(n_f, 1),
        "force_rmse": math.sqrt(f_sq / max(n_f, 1)),
        "stress_mae": float(np.mean(np.concatenate(s_abs))) if s_abs else None,
    }


def evaluate_model(
    model: EnergyModel,
    data: Dataset | Sequence[Any],
    *,
    batch_size: int = 16,
    device: str | None = None,
    stress: bool = True,
) -> dict[str, Any]:
    """Errors of ``model`` against the labels of ``data`` (NaN when it has no frames).

    Parameters
    ----------
    model
        The model (its dtype and device are used unless ``device`` is given).
    data
        A :class:`Dataset` (or view) or a list of Atoms carrying energy and forces.
    batch_size
        Frames per forward pass.
    device
        Torch device; None: the model's.
    stress
        Also compare stresses where frames have them (False: energies and forces only).

    Returns
    -------
    dict
        ``energy_mae_per_atom``, ``energy_rmse_per_atom`` (eV/atom), ``force_mae``,
        ``force_rmse`` (eV/Å, over components), ``stress_mae`` (eV/Å³ or None).
    """
    param = next(iter(model.parameters()), None)
    dtype = param.dtype if param is not None else torch.float32
    dev = device or (str(param.device) if param is not None else "cpu")
    frames = build_frames(data, float(model.cutoff), dtype, dev)
    return frame_errors(model, frames, batch_size, stress=stress)


# ----------------------------------------------------------------------------------------
# train()
