"""What goes into :func:`nnp_lab.models.train` and what comes out.

:class:`TrainConfig` holds train's options, checked in one place; :class:`TrainReport` is
its result.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from nnp_lab.errors import InputError
from nnp_lab.models._common import jsonable
from nnp_lab.validation import choice, integer, number

__all__ = ["TrainConfig", "TrainReport", "DTYPES", "SCHEDULES"]

#: ``dtype=`` names -> torch dtypes.
DTYPES = {"float32": torch.float32, "float64": torch.float64}
#: ``schedule=`` names.
SCHEDULES = ("plateau", "cosine", "none")
_REFERENCE_MODES = ("auto", "fit", "keep")


# ----------------------------------------------------------------------------------------
# Options
# ----------------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """The options of :func:`~nnp_lab.models.train`, checked and in canonical types.

    The fields are train's keywords with the same defaults and meaning (see there);
    constructing one checks them all and raises :class:`~nnp_lab.errors.InputError` naming
    the first bad one. ``min_lr`` None becomes ``lr / 100``; ``path`` becomes a
    :class:`~pathlib.Path`.
    """

    epochs: int = 200
    batch_size: int = 8
    lr: float = 3e-3
    energy_weight: float = 1.0
    force_weight: float = 1.0
    stress_weight: float = 0.0
    validation_fraction: float = 0.1
    patience: int | None = 40
    schedule: str = "plateau"
    min_lr: float | None = None
    reference_energies: str | Mapping[int | str, float] = "auto"
    weight_decay: float = 0.0
    seed: int | None = 0
    device: str = "auto"
    dtype: str = "float32"
    threads: int | str | None = "auto"
    live: bool | None = None
    time_budget_s: float | None = None
    path: str | os.PathLike | None = None
    metadata: Mapping[str, Any] | None = None
    callback: Callable[[dict[str, float]], Any] | None = None

    def __post_init__(self) -> None:
        self.epochs = integer("epochs", self.epochs, minimum=1)
        self.batch_size = integer("batch_size", self.batch_size, minimum=1)
        self.lr = number("lr", self.lr, strict=True)
        self.min_lr = self.lr / 100 if self.min_lr is None else number("min_lr", self.min_lr)
        self.energy_weight = number("energy_weight", self.energy_weight)
        self.force_weight = number("force_weight", self.force_weight)
        self.stress_weight = number("stress_weight", self.stress_weight)
        self.weight_decay = number("weight_decay", self.weight_decay)
        if self.energy_weight == 0 and self.force_weight == 0 and self.stress_weight == 0:
            raise InputError("all loss weights are 0; set energy_weight and/or force_weight > 0")
        self.patience = integer("patience", self.patience, minimum=1, allow_none=True)
        self.time_budget_s = number(
            "time_budget_s", self.time_budget_s, strict=True, allow_none=True, unit="s"
        )
        self.schedule = choice("schedule", self.schedule, SCHEDULES)
        self.dtype = choice("dtype", self.dtype, tuple(DTYPES))
        if self.threads != "auto":
            self.threads = integer("threads", self.threads, minimum=1, allow_none=True)
        if isinstance(self.reference_energies, str) and (
            self.reference_energies not in _REFERENCE_MODES
        ):
            raise InputError(
                f"reference_energies must be 'auto', 'fit', 'keep' or a mapping, got "
                f"{self.reference_energies!r}"
            )
        if self.path is not None:
            self.path = Path(self.path)

    @property
    def lr_floor(self) -> float:
        """:attr:`min_lr` as a number (``__post_init__`` has replaced None by ``lr / 100``)."""
        assert self.min_lr is not None
        return self.min_lr

    @property
    def torch_dtype(self) -> torch.dtype:
        """The torch dtype named by :attr:`dtype`."""
        return DTYPES[self.dtype]


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
        return jsonable(asdict(self))

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
