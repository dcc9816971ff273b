"""What :func:`nnp_lab.models.distill` did and how good the distilled model is."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from nnp_lab.errors import InputError
from nnp_lab.models._common import jsonable

__all__ = ["DistillReport"]


@dataclass(frozen=True)
class DistillReport:
    """The result of :func:`~nnp_lab.models.distill` beside the model (like :class:`TrainReport`).

    Errors are those of the returned model on the held-out teacher frames (NaN without
    any); force errors are over Cartesian components. The same report is saved in the
    model file's metadata; :meth:`from_model_file` reads it back.

    Attributes
    ----------
    force_mae, force_rmse : float
        Held-out force MAE and RMSE, eV/Å.
    energy_mae_per_atom, energy_rmse_per_atom : float
        Held-out energy MAE and RMSE per atom, eV/atom.
    n_test : int
        Held-out frames.
    temperatures_K, test_temperatures_K : list of float
        Temperatures of the active-learning MD and of the teacher test MD.
    validation_force_mae, validation_energy_mae_per_atom : float
        Errors on the validation frames of the last training call.
    rounds : list of dict
        One dict per active-learning round: ``round``, ``n_frames``, ``n_new``,
        ``max_disagreement``, ``mean_disagreement`` (eV/Å), ``md_steps``,
        ``stopped_trajectories``, ``val_force_mae``, ``val_energy_mae_per_atom``,
        ``test_force_mae``, ``time_s``.
    n_rounds, n_frames, n_teacher_evaluations : int
        Rounds run, frames in the training set, teacher calls (frames labelled).
    converged : bool
        A whole round of MD stayed below ``force_threshold``.
    stop_reason : str
        Why the loop ended (``"converged"``, ``"max_rounds"``, ``"time budget"``,
        ``"interrupted"`` ...).
    interrupted : bool
        Ctrl-C ended it (the best model so far was tested and saved).
    architecture, architecture_options, n_parameters
        The student's architecture, its constructor options and its parameter count.
    committee_size : int
    force_threshold : float
        Committee disagreement threshold, eV/Å.
    teacher, teacher_version, teacher_level_of_theory : str
    timing_s : dict
        Seconds per stage and ``"total"``.
    wall_time_s : float
    seed : int
    path, dataset, test_dataset : str
        The model file and the ``ase.db`` files of the training and test frames.
    """

    force_mae: float
    force_rmse: float
    energy_mae_per_atom: float
    energy_rmse_per_atom: float
    n_test: int
    temperatures_K: list[float]
    test_temperatures_K: list[float]
    validation_force_mae: float
    validation_energy_mae_per_atom: float
    rounds: list[dict[str, Any]]
    n_rounds: int
    n_frames: int
    n_teacher_evaluations: int
    converged: bool
    stop_reason: str
    interrupted: bool
    architecture: str
    architecture_options: dict[str, Any]
    n_parameters: int
    committee_size: int
    force_threshold: float
    teacher: str
    teacher_version: str
    teacher_level_of_theory: str
    timing_s: dict[str, float] = field(default_factory=dict)
    wall_time_s: float = float("nan")
    seed: int = 0
    path: str = ""
    dataset: str = ""
    test_dataset: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DistillReport:
        """A report from :meth:`to_dict`'s output (e.g. a model file's ``metadata["report"]``);
        unknown keys are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def from_model_file(cls, path: str | os.PathLike) -> DistillReport:
        """The report saved in a distilled model file (the ``path`` distill wrote).

        Raises
        ------
        InputError
            The file is not a model file or holds no distillation report.
        """
        import torch

        try:
            payload = torch.load(Path(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same advice
            raise InputError(f"cannot read model file {path}: {exc}") from None
        report = payload.get("metadata", {}).get("report") if isinstance(payload, dict) else None
        if not isinstance(report, Mapping):
            raise InputError(f"{path} holds no distillation report (not written by distill?)")
        return cls.from_dict(report)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (NaN kept as float NaN)."""
        return jsonable(asdict(self))

    def summary(self) -> str:
        """A few lines: held-out errors, data, rounds, time, why it stopped."""
        return "\n".join(
            [
                f"distilled {self.architecture} ({self.n_parameters:,} parameters) from "
                f"{self.teacher} in {self.wall_time_s:.0f} s, stopped: {self.stop_reason}",
                f"  held-out ({self.n_test} teacher frames at {self.test_temperatures_K} K): "
                f"force MAE {self.force_mae:.4f} eV/Å, energy MAE "
                f"{1000 * self.energy_mae_per_atom:.2f} meV/atom",
                f"  {self.n_frames} training frames, {self.n_rounds} rounds, "
                f"{self.n_teacher_evaluations} teacher evaluations",
                f"  saved: {self.path}",
            ]
        )

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (
            f"DistillReport(force_mae={self.force_mae:.4g} eV/Å, "
            f"energy_mae_per_atom={self.energy_mae_per_atom:.3g} eV, n_frames={self.n_frames}, "
            f"n_rounds={self.n_rounds}, stop_reason={self.stop_reason!r})"
        )
