"""Training an :class:`~nnp_lab.potentials.torch_model.EnergyModel` on a labelled :class:`Dataset`.

:func:`train` fits per-element reference energies by least squares, sets the energy
normalisation, and minimises a weighted energy + force (+ optional stress) loss with Adam,
a learning-rate schedule and early stopping on a validation split; the best weights are
restored at the end, after an early stop and after Ctrl-C. A live loss plot (plotly) shows
inside Jupyter, a tqdm bar elsewhere. The result is the trained model and a
:class:`TrainReport`.

Loss
----
For a minibatch of structures with ``N_k`` atoms::

    L = w_E · mean_k ((E_k − Ê_k) / N_k)² / σ²  +  w_F · mean_{i,α} (F_iα − F̂_iα)² / σ²
        [+ w_S · mean_k,v (S_kv − Ŝ_kv)² / σ_S²]

with ``σ`` the RMS of the training force components (eV/Å; the same number that scales the
network output, so the loss is of order one) and ``σ_S`` the RMS of the training stresses.
Forces are the negative gradient of the energy, taken with ``create_graph=True`` so the
force loss can be differentiated with respect to the weights.

Examples
--------
>>> from nnp_lab.models import SchNet, sample, train
>>> data = sample(cu_cells, "emt", rattle=(0.05, 0.1), md_temperatures_K=(600,))  # doctest: +SKIP
>>> model, report = train(SchNet(["Cu"], cutoff=4.5), data, epochs=200,
...                       path="cu.pt")                                  # doctest: +SKIP
>>> print(report)                                                                  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase.data import chemical_symbols

from nnp_lab.errors import InputError
from nnp_lab.models.data import Dataset
from nnp_lab.potentials.torch_model import EnergyModel, GraphBatch
from nnp_lab.threads import threads_for, torch_threads

__all__ = [
    "TrainReport",
    "train",
    "evaluate_model",
    "fit_reference_energies",
    "forget_cached_model",
]

logger = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_SCHEDULES = ("plateau", "cosine", "none")


# ----------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------
@dataclass
class TrainReport:
    """What :func:`train` did and how good the result is.

    Errors are measured on the validation frames with the returned (best) weights; force
    errors are over Cartesian components.

    Attributes
    ----------
    energy_mae_per_atom : float
        Validation energy MAE per atom, eV/atom (NaN without validation frames).
    energy_rmse_per_atom : float
        Validation energy RMSE per atom, eV/atom.
    force_mae : float
        Validation force MAE, eV/Å.
    force_rmse : float
        Validation force RMSE, eV/Å.
    stress_mae : float or None
        Validation stress MAE in eV/Å³ (periodic frames only; None when there are none).
    train_energy_mae_per_atom, train_force_mae : float
        The same errors on the training frames (best weights).
    history : dict of lists
        Per epoch: ``epoch``, ``train_loss``, ``val_loss``, ``val_energy_mae_per_atom``,
        ``val_force_mae``, ``lr``, ``time_s`` (since the start).
    epochs : int
        Epochs run.
    best_epoch : int
        Epoch (1-based) whose weights were kept; 0 when no epoch beat the starting weights
        on the validation frames.
    wall_time_s : float
        Wall time of the whole call.
    stopped_early : bool
        True when training ended before ``epochs``: patience ran out, the time budget was
        used up, or it was interrupted.
    stop_reason : str
        ``"epochs"``, ``"patience"``, ``"time budget"``, ``"min_lr"`` or ``"interrupted"``.
    interrupted : bool
        Ctrl-C ended it (the best weights so far were kept).
    n_train, n_validation : int
        Frames in each part.
    initial_force_mae, initial_energy_mae_per_atom : float
        Validation errors of the starting weights (after the reference energies and the
        normalisation were set), for comparison.
    reference_energies : dict
        ``{symbol: eV}`` per-element reference energies of the model.
    energy_shift, energy_scale : float
        Per-atom normalisation of the network output (eV/atom, eV).
    path : str or None
        Where the best model was saved.
    """

    energy_mae_per_atom: float
    energy_rmse_per_atom: float
    force_mae: float
    force_rmse: float
    stress_mae: float | None
    train_energy_mae_per_atom: float
    train_force_mae: float
    history: dict[str, list[float]]
    epochs: int
    best_epoch: int
    wall_time_s: float
    stopped_early: bool
    stop_reason: str
    interrupted: bool
    n_train: int
    n_validation: int
    initial_force_mae: float = float("nan")
    initial_energy_mae_per_atom: float = float("nan")
    reference_energies: dict[str, float] = field(default_factory=dict)
    energy_shift: float = 0.0
    energy_scale: float = 1.0
    path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (NaN kept as float NaN)."""
        return _jsonable(asdict(self))

    def summary(self) -> str:
        """A few lines: errors, epochs, time, why it stopped."""
        lines = [
            f"trained {self.epochs} epochs ({self.wall_time_s:.1f} s) on {self.n_train} frames, "
            f"best epoch {self.best_epoch}, stopped: {self.stop_reason}",
            f"  validation ({self.n_validation} frames): energy MAE "
            f"{1000 * self.energy_mae_per_atom:.2f} meV/atom, force MAE {self.force_mae:.4f} "
            f"eV/Å, force RMSE {self.force_rmse:.4f} eV/Å"
            + ("" if self.stress_mae is None else f", stress MAE {self.stress_mae:.2e} eV/Å³"),
            f"  training: energy MAE {1000 * self.train_energy_mae_per_atom:.2f} meV/atom, "
            f"force MAE {self.train_force_mae:.4f} eV/Å",
        ]
        if self.path:
            lines.append(f"  saved: {self.path}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    return value


# ----------------------------------------------------------------------------------------
# Data preparation
# ----------------------------------------------------------------------------------------
@dataclass
class _Frame:
    """One structure's graph and labels, built once and reused every epoch."""

    graph: GraphBatch
    energy: float
    forces: torch.Tensor
    stress: torch.Tensor | None  # (6,) Voigt, eV/Å³
    volume: float
    n_atoms: int
    numbers: np.ndarray


def _frames(data: Dataset | Sequence[Any], cutoff: float, dtype: torch.dtype,
            device: str) -> list[_Frame]:
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
            _Frame(
                graph=graph,
                energy=float(rec["energy"]),
                forces=torch.as_tensor(rec["forces"], dtype=dtype, device=device),
                stress=None if stress is None or not periodic
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


def _collate(frames: Sequence[_Frame]) -> tuple[GraphBatch, dict[str, torch.Tensor]]:
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
        labels["stress"] = torch.stack([frames[k].stress for k in with_stress])
        labels["volume"] = torch.tensor([frames[k].volume for k in with_stress], dtype=dtype,
                                        device=device)
    return graph, labels


_VOIGT = ([0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1])


def _predict(model: EnergyModel, graph: GraphBatch, labels: dict[str, torch.Tensor], *,
             stress: bool, create_graph: bool) -> dict[str, torch.Tensor]:
    want_stress = stress and "stress" in labels
    energy, forces, virial = graph.energy_forces_virial(
        model, stress=want_stress, create_graph=create_graph
    )
    out = {"energy": energy, "forces": forces}
    if want_stress:
        idx = labels["stress_index"]
        sigma = virial[idx] / labels["volume"][:, None, None]
        out["stress"] = sigma[:, _VOIGT[0], _VOIGT[1]]
    return out


# ----------------------------------------------------------------------------------------
# Reference energies and normalisation
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


def _reference_table(model: EnergyModel) -> dict[int, float] | None:
    getter = getattr(model, "get_reference_energies", None)
    return getter() if callable(getter) else None


# ----------------------------------------------------------------------------------------
# Live display
# ----------------------------------------------------------------------------------------
def _in_notebook() -> bool:
    """Inside a Jupyter kernel with plotly and ipywidgets importable."""
    import importlib.util
    import sys

    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or getattr(shell, "kernel", None) is None:
        return False
    return all(importlib.util.find_spec(m) is not None for m in ("plotly", "ipywidgets"))


class _LossPlot:
    """A plotly FigureWidget with the training/validation loss and validation MAEs.

    Created (and displayed) before the first epoch; redrawn at most twice per second in one
    ``batch_update``.
    """

    def __init__(self, title: str) -> None:
        import plotly.graph_objects as go
        from IPython.display import display
        from plotly.subplots import make_subplots

        fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "validation MAE"),
                            specs=[[{}, {"secondary_y": True}]])
        fig.add_scatter(name="train loss", x=[], y=[], mode="lines", row=1, col=1)
        fig.add_scatter(name="validation loss", x=[], y=[], mode="lines", row=1, col=1)
        fig.add_scatter(name="force MAE (eV/Å)", x=[], y=[], mode="lines", row=1, col=2)
        fig.add_scatter(name="energy MAE (meV/atom)", x=[], y=[], mode="lines", row=1, col=2,
                        secondary_y=True)
        fig.update_yaxes(type="log", row=1, col=1)
        fig.update_xaxes(title_text="epoch")
        fig.update_layout(height=320, title=title, template="plotly_white",
                          margin=dict(l=50, r=50, t=50, b=40), uirevision="nnp_lab-train")
        self.figure = go.FigureWidget(fig)
        self._last = 0.0
        display(self.figure)

    def update(self, history: Mapping[str, list[float]], force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last < 0.5:
            return
        self._last = now
        x = history["epoch"]
        with self.figure.batch_update():
            data = self.figure.data
            data[0].x, data[0].y = x, history["train_loss"]
            data[1].x, data[1].y = x, history["val_loss"]
            data[2].x, data[2].y = x, history["val_force_mae"]
            data[3].x, data[3].y = x, [1000 * v for v in history["val_energy_mae_per_atom"]]


# ----------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------
def _errors(model: EnergyModel, frames: Sequence[_Frame], batch_size: int,
            stress: bool = True) -> dict[str, float]:
    """MAE/RMSE of energy per atom, force components and stress over ``frames``."""
    if not frames:
        nan = float("nan")
        return {"energy_mae_per_atom": nan, "energy_rmse_per_atom": nan, "force_mae": nan,
                "force_rmse": nan, "stress_mae": None}
    e_err, f_abs, f_sq, s_abs = [], 0.0, 0.0, []
    n_f = 0
    for b in range(0, len(frames), batch_size):
        chunk = frames[b : b + batch_size]
        graph, labels = _collate(chunk)
        pred = _predict(model, graph, labels, stress=stress, create_graph=False)
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
) -> dict[str, float]:
    """Errors of ``model`` against the labels of ``data``.

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

    Returns
    -------
    dict
        ``energy_mae_per_atom``, ``energy_rmse_per_atom`` (eV/atom), ``force_mae``,
        ``force_rmse`` (eV/Å, over components), ``stress_mae`` (eV/Å³ or None).
    """
    param = next(iter(model.parameters()), None)
    dtype = param.dtype if param is not None else torch.float32
    dev = device or (str(param.device) if param is not None else "cpu")
    frames = _frames(data, float(model.cutoff), dtype, dev)
    return _errors(model, frames, batch_size)


# ----------------------------------------------------------------------------------------
# train()
# ----------------------------------------------------------------------------------------
def _number(name: str, value: Any, *, minimum: float = 0.0, strict: bool = False,
            integer: bool = False, allow_none: bool = False) -> Any:
    if value is None and allow_none:
        return None
    types: tuple = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, types) or not np.isfinite(value):
        raise InputError(f"{name} must be {'an integer' if integer else 'a finite number'}, "
                         f"got {value!r}")
    if (strict and not value > minimum) or (not strict and value < minimum):
        raise InputError(f"{name} must be {'>' if strict else '>='} {minimum:g}, got {value!r}")
    return int(value) if integer else float(value)


def _resolve_device(device: str) -> str:
    from nnp_lab.potentials.registry import resolve_device

    return resolve_device(device)


def train(
    model: EnergyModel,
    dataset: Dataset | Sequence[Any],
    *,
    epochs: int = 200,
    batch_size: int = 8,
    lr: float = 3e-3,
    energy_weight: float = 1.0,
    force_weight: float = 1.0,
    stress_weight: float = 0.0,
    validation_fraction: float = 0.1,
    validation: Dataset | Sequence[Any] | None = None,
    patience: int | None = 40,
    schedule: str = "plateau",
    min_lr: float | None = None,
    reference_energies: str | Mapping[int | str, float] = "auto",
    weight_decay: float = 0.0,
    seed: int | None = 0,
    device: str = "auto",
    dtype: str = "float32",
    threads: int | str | None = "auto",
    live: bool | None = None,
    time_budget_s: float | None = None,
    path: str | os.PathLike | None = None,
    metadata: Mapping[str, Any] | None = None,
    callback: Callable[[dict[str, float]], Any] | None = None,
) -> tuple[EnergyModel, TrainReport]:
    """Train ``model`` on the energies and forces of ``dataset``.

    Steps: split off validation frames; fit per-element reference energies by least
    squares on the training energies and set them on the model; set the normalisation
    (shift = mean per-atom residual, scale = RMS of the training force components) and,
    for models with input standardisation (``BehlerParrinello.fit_descriptor_scaling``),
    the descriptor mean and std of the training frames; then
    minimise the weighted loss (see the module docstring) with Adam over shuffled
    minibatches, evaluate the validation loss after every epoch, lower the learning rate
    on plateaus (or along a cosine), stop after ``patience`` epochs without improvement,
    and restore the best weights.

    Parameters
    ----------
    model
        An :class:`~nnp_lab.potentials.torch_model.EnergyModel`, e.g. a
        :class:`~nnp_lab.models.SchNet` or :class:`~nnp_lab.models.TeaNet` covering the
        dataset's elements. Trained in place (moved to ``device`` and ``dtype``).
    dataset
        A :class:`~nnp_lab.models.Dataset` (or a view of one) or a list of Atoms with
        energy and forces attached.
    epochs
        Largest number of passes over the training frames.
    batch_size
        Structures per optimiser step.
    lr
        Initial learning rate of Adam.
    energy_weight, force_weight, stress_weight
        Loss weights (see the module docstring). Stress only counts for periodic frames
        that have a stress label.
    validation_fraction
        Fraction of ``dataset`` held out for validation (ignored when ``validation`` is
        given). 0 trains on everything and selects the best epoch by training loss.
    validation
        Explicit validation frames (then all of ``dataset`` is used for training).
    patience
        Stop after this many epochs without a better validation loss (None: never).
    schedule
        ``"plateau"`` (halve the rate after ``max(patience // 4, 5)`` epochs without
        improvement), ``"cosine"`` (cosine decay to ``min_lr``, updated every minibatch,
        over ``epochs`` — or over ``time_budget_s`` when that ends first, so a run cut by
        its budget still ends at a low rate) or ``"none"``.
    min_lr
        Smallest learning rate (default ``lr / 100``); with ``"plateau"`` training stops
        when it is reached and the loss still does not improve.
    reference_energies
        ``"auto"`` (default): fit them — and the normalisation — unless the model already
        has non-zero reference energies (a trained model is fine-tuned without changing
        its energy zero); ``"fit"``: always fit; ``"keep"``: never; or a mapping
        ``{element: eV}`` to set (the normalisation is then fitted).
    weight_decay
        L2 penalty of Adam (AdamW style, decoupled).
    seed
        Seed of the split, the weight initialisation is *not* redone (build the model with
        ``torch.manual_seed`` for that) but minibatch order is seeded.
    device
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``...
    dtype
        ``"float32"`` (default, fast) or ``"float64"``.
    threads
        Torch CPU threads while training: ``"auto"`` (default) applies nnp_lab's policy
        (:mod:`nnp_lab.threads`) to the atoms of one minibatch (1 thread below 1,000 atoms),
        an integer fixes it, None leaves torch's setting. 1 is fastest for small models on
        a shared CPU.
    live
        None (default) or True: a live loss plot inside Jupyter, a tqdm bar elsewhere;
        False: only log messages.
    time_budget_s
        Stop (keeping the best weights) once this many seconds have passed.
    path
        Save the best model here (:func:`~nnp_lab.potentials.torch_model.save_model`, so
        :func:`nnp_lab.load_potential` reads it) while training — at most every 30 s when
        it improves — and at the end.
    metadata
        Extra metadata for the saved file (``name``, ``level_of_theory``, ...).
    callback
        Called after every epoch with that epoch's history entry (a dict).

    Returns
    -------
    (model, TrainReport)
        The model with the best weights, and the report.

    Raises
    ------
    InputError
        Empty dataset, frames without labels, elements the model does not cover, bad
        options.

    Notes
    -----
    Ctrl-C (``KeyboardInterrupt``) ends training cleanly: the best weights so far are
    restored (and saved to ``path``), the report says ``interrupted=True``, a warning is
    issued and the model is returned.
    """
    t_start = time.perf_counter()
    if not isinstance(model, torch.nn.Module) or not hasattr(model, "cutoff"):
        raise InputError(
            f"train needs an EnergyModel (e.g. nnp_lab.models.SchNet), got {type(model).__name__}"
        )
    epochs = _number("epochs", epochs, minimum=1, integer=True)
    batch_size = _number("batch_size", batch_size, minimum=1, integer=True)
    lr = _number("lr", lr, strict=True)
    min_lr = lr / 100 if min_lr is None else _number("min_lr", min_lr)
    energy_weight = _number("energy_weight", energy_weight)
    force_weight = _number("force_weight", force_weight)
    stress_weight = _number("stress_weight", stress_weight)
    weight_decay = _number("weight_decay", weight_decay)
    if energy_weight == 0 and force_weight == 0 and stress_weight == 0:
        raise InputError("all loss weights are 0; set energy_weight and/or force_weight > 0")
    patience = _number("patience", patience, minimum=1, integer=True, allow_none=True)
    time_budget_s = _number("time_budget_s", time_budget_s, strict=True, allow_none=True)
    if not isinstance(schedule, str) or schedule.lower() not in _SCHEDULES:
        raise InputError(f"unknown schedule {schedule!r}; choose one of {', '.join(_SCHEDULES)}")
    schedule = schedule.lower()
    if dtype not in _DTYPES:
        raise InputError(f"dtype must be one of {list(_DTYPES)}, got {dtype!r}")
    if threads != "auto":
        threads = _number("threads", threads, minimum=1, integer=True, allow_none=True)
    if isinstance(reference_energies, str) and reference_energies not in ("auto", "fit", "keep"):
        raise InputError(
            f"reference_energies must be 'auto', 'fit', 'keep' or a mapping, got "
            f"{reference_energies!r}"
        )
    torch_dtype = _DTYPES[dtype]
    dev = _resolve_device(device)

    # -- data ------------------------------------------------------------------------------
    if isinstance(dataset, Dataset):
        train_data: Any = dataset
    else:
        train_data = list(dataset)
    if len(train_data) == 0:
        raise InputError("the dataset is empty; add labelled frames first (nnp_lab.models.sample)")
    if validation is not None:
        val_data: Any = validation if isinstance(validation, Dataset) else list(validation)
    elif validation_fraction and len(train_data) >= 2:
        if isinstance(train_data, Dataset):
            train_data, val_data = train_data.split(validation_fraction, seed)
        else:
            order = np.random.default_rng(seed).permutation(len(train_data))
            n_val = min(max(int(round(validation_fraction * len(train_data))), 1),
                        len(train_data) - 1)
            val_data = [train_data[i] for i in order[:n_val]]
            train_data = [train_data[i] for i in order[n_val:]]
    else:
        val_data = []
    if isinstance(train_data, Dataset):
        teachers = train_data.teachers()
        if len(teachers) > 1:
            warnings.warn(
                f"the dataset mixes labels from several teachers ({', '.join(teachers)}); "
                "their energy zeros may differ", stacklevel=2,
            )

    model.to(device=dev, dtype=torch_dtype)
    cutoff = float(model.cutoff)
    covered = set(int(z) for z in getattr(model, "elements", ()))
    with torch_threads(1 if threads == "auto" else threads):
        train_frames = _frames(train_data, cutoff, torch_dtype, dev)
        val_frames = _frames(val_data, cutoff, torch_dtype, dev)
    if threads == "auto":
        threads = threads_for(batch_size * max(f.n_atoms for f in train_frames))
    present = set()
    for f in train_frames + val_frames:
        present.update(np.unique(f.numbers).tolist())
    if covered and present - covered:
        missing = ", ".join(chemical_symbols[z] for z in sorted(present - covered))
        raise InputError(
            f"the dataset contains element(s) {missing} that the model does not cover; build "
            f"the model with elements={sorted(chemical_symbols[z] for z in present)}"
        )

    # -- reference energies and normalisation ---------------------------------------------
    table = _reference_table(model)
    fit = reference_energies == "fit" or (
        reference_energies == "auto" and table is not None
        and not any(abs(v) > 0 for v in table.values())
    )
    refs: dict[int, float] | None = None
    if table is not None:
        elements = sorted(covered or present)
        if isinstance(reference_energies, Mapping):
            refs = {int(_z(k)): float(v) for k, v in reference_energies.items()}
            model.set_reference_energies(refs)
            fit_norm = True
        elif fit:
            refs = fit_reference_energies([f.numbers for f in train_frames],
                                          [f.energy for f in train_frames], elements)
            model.set_reference_energies(refs)
            fit_norm = True
        else:
            fit_norm = False
        if fit_norm and hasattr(model, "set_normalisation"):
            refs_now = model.get_reference_energies()
            resid = [
                (f.energy - sum(refs_now.get(int(z), 0.0) for z in f.numbers)) / f.n_atoms
                for f in train_frames
            ]
            f_all = torch.cat([f.forces for f in train_frames]).double()
            scale = float(torch.sqrt((f_all * f_all).mean())) if f_all.numel() else 1.0
            if not scale > 1e-6:
                scale = max(float(np.std(resid)), 1e-3)
            model.set_normalisation(float(np.mean(resid)), scale)
            logger.info("train: reference energies %s, shift %.4f eV/atom, scale %.4f eV",
                        {chemical_symbols[z]: round(v, 4) for z, v in refs_now.items()},
                        float(np.mean(resid)), scale)
        if fit_norm and hasattr(model, "fit_descriptor_scaling"):
            # Standardised inputs (Behler–Parrinello descriptors) are part of a fresh fit,
            # like the normalisation; a fine-tuned model keeps its own.
            with torch_threads(threads):
                model.fit_descriptor_scaling([f.graph for f in train_frames])
    f_all = torch.cat([f.forces for f in train_frames]).double()
    sigma_f = float(torch.sqrt((f_all * f_all).mean())) if f_all.numel() else 1.0
    sigma_f = sigma_f if sigma_f > 1e-6 else 1.0
    stresses = [f.stress for f in train_frames if f.stress is not None]
    sigma_s = float(torch.stack(stresses).double().pow(2).mean().sqrt()) if stresses else 1.0
    sigma_s = sigma_s if sigma_s > 1e-9 else 1.0
    use_stress = stress_weight > 0 and bool(stresses)

    # -- optimisation ----------------------------------------------------------------------
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise InputError("the model has no trainable parameters")
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay) if weight_decay \
        else torch.optim.Adam(params, lr=lr)
    if schedule == "plateau":
        plateau = max((patience or 40) // 4, 5)
        scheduler: Any = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=0.5, patience=plateau, min_lr=min_lr, eps=0.0
        )
    else:
        scheduler = None
    rng = np.random.default_rng(seed)

    def loss_of(pred: dict[str, torch.Tensor], labels: dict[str, torch.Tensor]) -> torch.Tensor:
        loss = pred["energy"].new_zeros(())
        if energy_weight:
            de = (pred["energy"] - labels["energy"]) / labels["n_atoms"]
            loss = loss + energy_weight * (de * de).mean() / sigma_f**2
        if force_weight:
            df = pred["forces"] - labels["forces"]
            loss = loss + force_weight * (df * df).mean() / sigma_f**2
        if use_stress and "stress" in pred:
            ds = pred["stress"] - labels["stress"]
            loss = loss + stress_weight * (ds * ds).mean() / sigma_s**2
        return loss

    def val_loss_of(frames: Sequence[_Frame]) -> tuple[float, dict[str, float]]:
        errs = _errors(model, frames, max(batch_size, 16), stress=use_stress)
        value = (energy_weight * errs["energy_rmse_per_atom"] ** 2
                 + force_weight * errs["force_rmse"] ** 2) / sigma_f**2
        if use_stress and errs["stress_mae"] is not None:
            value += stress_weight * (errs["stress_mae"] / sigma_s) ** 2
        return float(value), errs

    history: dict[str, list[float]] = {k: [] for k in (
        "epoch", "train_loss", "val_loss", "val_energy_mae_per_atom", "val_force_mae", "lr",
        "time_s")}
    best_state = _state(model)
    best_loss = math.inf
    best_epoch = 0
    stale = 0
    stop_reason = "epochs"
    interrupted = False
    last_save = time.perf_counter()
    bar = None
    plot = None
    show = live is None or bool(live)
    if show and _in_notebook():
        try:
            plot = _LossPlot(f"training {type(model).__name__}")
        except Exception as exc:  # noqa: BLE001 - a missing front end must not stop training
            logger.info("train: no live plot (%s)", exc)
    elif show:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, desc=f"training {type(model).__name__}", unit="epoch")
    path = None if path is None else Path(path)
    n_train = len(train_frames)
    epoch = 0

    def save() -> None:
        if path is not None:
            _save(model, path, metadata, None)

    initial_errors: dict[str, float] = {}
    if val_frames:
        # the starting weights compete too: a fine-tuning run never returns a worse model
        with torch_threads(threads):
            best_loss, initial_errors = val_loss_of(val_frames)
        if not np.isfinite(best_loss):
            best_loss = math.inf
    model.train()
    try:
        with torch_threads(threads):
            for epoch in range(1, epochs + 1):
                order = rng.permutation(n_train)
                total, count = 0.0, 0
                out_of_time = False
                for b in range(0, n_train, batch_size):
                    if schedule == "cosine":
                        # progress through the run: by epochs or, with a budget, by time
                        progress = (epoch - 1 + b / n_train) / epochs
                        if time_budget_s is not None:
                            progress = max(progress,
                                           (time.perf_counter() - t_start) / time_budget_s)
                        lr_now = min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(
                            math.pi * min(progress, 1.0)))
                        for group in optimizer.param_groups:
                            group["lr"] = lr_now
                    chunk = [train_frames[i] for i in order[b : b + batch_size]]
                    graph, labels = _collate(chunk)
                    pred = _predict(model, graph, labels, stress=use_stress, create_graph=True)
                    loss = loss_of(pred, labels)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    total += float(loss.detach()) * len(chunk)
                    count += len(chunk)
                    if time_budget_s is not None and time.perf_counter() - t_start > time_budget_s:
                        out_of_time = True
                        break
                train_loss = total / max(count, 1)
                if val_frames:
                    vloss, verr = val_loss_of(val_frames)
                else:
                    vloss, verr = train_loss, {"energy_mae_per_atom": float("nan"),
                                               "force_mae": float("nan")}
                if not np.isfinite(vloss):
                    raise FloatingPointError(
                        f"the loss became {vloss} at epoch {epoch}; lower lr (now {lr:g})"
                    )
                current_lr = optimizer.param_groups[0]["lr"]
                entry = {
                    "epoch": epoch,
                    "train_loss": train_loss,
                    "val_loss": vloss,
                    "val_energy_mae_per_atom": verr["energy_mae_per_atom"],
                    "val_force_mae": verr["force_mae"],
                    "lr": current_lr,
                    "time_s": time.perf_counter() - t_start,
                }
                for key, value in entry.items():
                    history[key].append(float(value))
                improved = vloss < best_loss * (1 - 1e-4)
                if improved:
                    best_loss, best_epoch, stale = vloss, epoch, 0
                    best_state = _state(model)
                    if path is not None and time.perf_counter() - last_save > 30:
                        save()
                        last_save = time.perf_counter()
                else:
                    stale += 1
                if scheduler is not None:
                    scheduler.step(vloss)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix_str(
                        f"loss {train_loss:.3g}/{vloss:.3g} F-MAE {verr['force_mae']:.3f}",
                        refresh=False,
                    )
                if plot is not None:
                    plot.update(history)
                if callback is not None:
                    callback(dict(entry))
                logger.debug("epoch %d: train %.4g val %.4g F-MAE %.4f lr %.2g", epoch,
                             train_loss, vloss, verr["force_mae"], current_lr)
                if out_of_time or (
                    time_budget_s is not None and time.perf_counter() - t_start > time_budget_s
                ):
                    stop_reason = "time budget"
                    break
                if patience is not None and stale >= patience:
                    stop_reason = "patience"
                    break
                if (schedule == "plateau" and current_lr <= min_lr * (1 + 1e-9)
                        and stale >= max((patience or 40) // 4, 5)):
                    stop_reason = "min_lr"
                    break
    except KeyboardInterrupt:
        interrupted = True
        stop_reason = "interrupted"
        warnings.warn(
            f"training interrupted at epoch {epoch}; keeping the best weights (epoch "
            f"{best_epoch})" + (f", saved to {path}" if path else ""),
            stacklevel=2,
        )
    finally:
        if bar is not None:
            bar.close()
        if plot is not None:
            plot.update(history, force=True)
    model.load_state_dict(best_state)
    model.eval()

    with torch_threads(threads):
        val = _errors(model, val_frames, max(batch_size, 16))
        tr = _errors(model, train_frames, max(batch_size, 16), stress=False)
    refs_final = _reference_table(model) or {}
    report = TrainReport(
        energy_mae_per_atom=val["energy_mae_per_atom"],
        energy_rmse_per_atom=val["energy_rmse_per_atom"],
        force_mae=val["force_mae"],
        force_rmse=val["force_rmse"],
        stress_mae=val["stress_mae"],
        train_energy_mae_per_atom=tr["energy_mae_per_atom"],
        train_force_mae=tr["force_mae"],
        history=history,
        epochs=len(history["epoch"]),
        best_epoch=best_epoch,
        wall_time_s=time.perf_counter() - t_start,
        stopped_early=stop_reason != "epochs",
        stop_reason=stop_reason,
        interrupted=interrupted,
        n_train=len(train_frames),
        n_validation=len(val_frames),
        initial_force_mae=initial_errors.get("force_mae", float("nan")),
        initial_energy_mae_per_atom=initial_errors.get("energy_mae_per_atom", float("nan")),
        reference_energies={chemical_symbols[z]: v for z, v in refs_final.items()},
        energy_shift=float(getattr(model, "energy_shift", torch.tensor(0.0))),
        energy_scale=float(getattr(model, "energy_scale", torch.tensor(1.0))),
        path=None if path is None else str(path),
    )
    if path is not None:
        _save(model, path, metadata, report)
    logger.info("train: %s", report.summary())
    return model, report


def _z(key: int | str) -> int:
    from ase.data import atomic_numbers

    if isinstance(key, str):
        if key not in atomic_numbers:
            raise InputError(f"unknown element {key!r} in reference_energies")
        return atomic_numbers[key]
    return int(key)


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _save(model: EnergyModel, path: Path, metadata: Mapping[str, Any] | None,
          report: TrainReport | None) -> None:
    from nnp_lab.potentials.torch_model import save_model

    meta = {"name": path.stem, "version": "1"}
    param = next(iter(model.parameters()), None)
    if param is not None:
        meta["dtype"] = str(param.dtype).replace("torch.", "")
    meta.update(_jsonable(dict(metadata or {})))
    if report is not None:
        meta["training"] = report.to_dict()
    # a model on another device is saved from a CPU copy (save_model moves tensors to CPU)
    save_model(model, path, metadata=meta)
    forget_cached_model(path)


def forget_cached_model(path: str | os.PathLike) -> None:
    """Drop a model file from :func:`nnp_lab.load_potential`'s cache after rewriting it.

    The registry caches model files by resolved path, so without this a second
    ``load_potential(path)`` in the same process would return the weights of the file's
    previous version.
    """
    from nnp_lab.potentials import registry

    resolved = str(Path(path).expanduser().resolve())
    with registry._CACHE_LOCK:
        for key in [k for k in registry._CACHE if k[0] == resolved]:
            del registry._CACHE[key]

