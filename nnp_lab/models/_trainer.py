"""The stages of :func:`nnp_lab.models.train`, one method each (see there for the procedure).

:class:`Trainer` is built from a model, the data and a checked
:class:`~nnp_lab.models.TrainConfig`; :meth:`Trainer.run` goes through the stages: split and
build the frames, set reference energies and the normalisation, set up the optimiser, run
the epochs (validation, early stopping, learning-rate schedule, Ctrl-C), restore the best
weights, and report and save.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from ase.data import atomic_numbers, chemical_symbols

from nnp_lab.errors import InputError
from nnp_lab.models._common import forget_cached_model, jsonable
from nnp_lab.models._frames import (
    Frame,
    build_frames,
    collate,
    fit_reference_energies,
    frame_errors,
    predict,
    reference_table,
)
from nnp_lab.models._train_display import TrainDisplay
from nnp_lab.models._train_types import TrainConfig, TrainReport
from nnp_lab.models.dataset import Dataset
from nnp_lab.potentials.torch_model import EnergyModel
from nnp_lab.threads import threads_for, torch_threads

__all__ = ["Trainer", "save_trained_model"]

# the training messages keep their logger name (scripts filter on it)
logger = logging.getLogger("nnp_lab.models.training")

#: Seconds between saves of an improved model to ``path`` while training.
SAVE_INTERVAL_S = 30

# warnings point at the caller of train(): <stage method> <- Trainer.run <- train <- caller
_CALLER = 4


class Trainer:
    """One training run of ``model`` on ``dataset`` (trained in place).

    Parameters
    ----------
    model
        The :class:`~nnp_lab.potentials.torch_model.EnergyModel`.
    dataset
        A :class:`~nnp_lab.models.Dataset` (or view) or a list of labelled Atoms.
    validation
        Explicit validation frames, or None to split them off ``dataset``.
    config
        The checked options.
    """

    def __init__(
        self,
        model: EnergyModel,
        dataset: Dataset | Sequence[Any],
        validation: Dataset | Sequence[Any] | None,
        config: TrainConfig,
    ) -> None:
        self.t_start = time.perf_counter()
        from nnp_lab.potentials.registry import resolve_device

        self.model = model
        self.dataset = dataset
        self.validation = validation
        self.config = config
        self.dtype = config.torch_dtype
        self.device = resolve_device(config.device)
        # torch threads of the training loop; "auto" (the only string) is settled by build_frames
        threads = config.threads
        self.threads: int | None = None if isinstance(threads, str) else threads
        self.history: dict[str, list[float]] = {
            k: []
            for k in (
                "epoch",
                "train_loss",
                "val_loss",
                "val_energy_mae_per_atom",
                "val_force_mae",
                "lr",
                "time_s",
            )
        }
        self.epoch = 0
        self.best_loss = math.inf
        self.best_epoch = 0
        self.stale = 0
        self.stop_reason = "epochs"
        self.interrupted = False
        self.initial_errors: dict[str, float] = {}

    def run(self) -> tuple[EnergyModel, TrainReport]:
        """All stages; returns the model with its best weights and the report."""
        self.build_frames(*self.split())
        self.set_reference_energies()
        self.set_loss_scales()
        self.set_up_optimiser()
        self.run_epochs()
        self.restore_best()
        return self.model, self.report()

    # -- data -------------------------------------------------------------------------------
    def split(self) -> tuple[Any, Any]:
        """Training and validation data: the explicit validation set, a random split of
        ``dataset`` (``validation_fraction``), or no validation frames."""
        cfg = self.config
        train_data: Any = self.dataset if isinstance(self.dataset, Dataset) else list(self.dataset)
        if len(train_data) == 0:
            raise InputError(
                "the dataset is empty; add labelled frames first (nnp_lab.models.sample)"
            )
        validation = self.validation
        if validation is not None:
            val_data: Any = validation if isinstance(validation, Dataset) else list(validation)
        elif cfg.validation_fraction and len(train_data) >= 2:
            if isinstance(train_data, Dataset):
                train_data, val_data = train_data.split(cfg.validation_fraction, cfg.seed)
            else:
                order = np.random.default_rng(cfg.seed).permutation(len(train_data))
                n_val = min(
                    max(int(round(cfg.validation_fraction * len(train_data))), 1),
                    len(train_data) - 1,
                )
                val_data = [train_data[i] for i in order[:n_val]]
                train_data = [train_data[i] for i in order[n_val:]]
        else:
            val_data = []
        if isinstance(train_data, Dataset):
            teachers = train_data.teachers()
            if len(teachers) > 1:
                warnings.warn(
                    f"the dataset mixes labels from several teachers ({', '.join(teachers)}); "
                    "their energy zeros may differ",
                    stacklevel=_CALLER,
                )
        return train_data, val_data

    def build_frames(self, train_data: Any, val_data: Any) -> None:
        """Move the model to the device and dtype, build the frames once, settle the
        thread count and check that the model covers every element."""
        model = self.model
        model.to(device=self.device, dtype=self.dtype)
        cutoff = float(model.cutoff)
        self.covered = set(int(z) for z in getattr(model, "elements", ()))
        auto = self.config.threads == "auto"
        with torch_threads(1 if auto else self.threads):
            self.train_frames: list[Frame] = build_frames(
                train_data, cutoff, self.dtype, self.device
            )
            self.val_frames: list[Frame] = build_frames(val_data, cutoff, self.dtype, self.device)
        if auto:
            self.threads = threads_for(
                self.config.batch_size * max(f.n_atoms for f in self.train_frames)
            )
        present: set[int] = set()
        for f in self.train_frames + self.val_frames:
            present.update(np.unique(f.numbers).tolist())
        self.present = present
        if self.covered and present - self.covered:
            missing = ", ".join(chemical_symbols[z] for z in sorted(present - self.covered))
            raise InputError(
                f"the dataset contains element(s) {missing} that the model does not cover; "
                f"build the model with elements={sorted(chemical_symbols[z] for z in present)}"
            )

    # -- reference energies and normalisation --------------------------------------------
    def set_reference_energies(self) -> None:
        """Set (or fit) per-element reference energies; on a fresh fit also set the energy
        normalisation and, for models that have it, the descriptor standardisation."""
        frames = self.train_frames
        # duck-typed: any EnergyModel with AtomicEnergyModel's reference/normalisation methods
        model: Any = self.model
        mode = self.config.reference_energies
        table = reference_table(model)
        if table is None:
            return
        fit = mode == "fit" or (mode == "auto" and not any(abs(v) > 0 for v in table.values()))
        if isinstance(mode, Mapping):
            model.set_reference_energies({int(_z(k)): float(v) for k, v in mode.items()})
        elif fit:
            elements = sorted(self.covered or self.present)
            model.set_reference_energies(
                fit_reference_energies(
                    [f.numbers for f in frames], [f.energy for f in frames], elements
                )
            )
        else:
            return  # a fine-tuned model keeps its energy zero and normalisation
        if hasattr(model, "set_normalisation"):
            refs_now = model.get_reference_energies()
            resid = [
                (f.energy - sum(refs_now.get(int(z), 0.0) for z in f.numbers)) / f.n_atoms
                for f in frames
            ]
            f_all = torch.cat([f.forces for f in frames]).double()
            scale = float(torch.sqrt((f_all * f_all).mean())) if f_all.numel() else 1.0
            if not scale > 1e-6:
                scale = max(float(np.std(resid)), 1e-3)
            model.set_normalisation(float(np.mean(resid)), scale)
            logger.info(
                "train: reference energies %s, shift %.4f eV/atom, scale %.4f eV",
                {chemical_symbols[z]: round(v, 4) for z, v in refs_now.items()},
                float(np.mean(resid)),
                scale,
            )
        if hasattr(model, "fit_descriptor_scaling"):
            # Standardised inputs (Behler–Parrinello descriptors) are part of a fresh fit,
            # like the normalisation; a fine-tuned model keeps its own.
            with torch_threads(self.threads):
                model.fit_descriptor_scaling([f.graph for f in frames])

    def set_loss_scales(self) -> None:
        """σ (RMS training force component) and σ_S (RMS training stress) of the loss."""
        frames = self.train_frames
        f_all = torch.cat([f.forces for f in frames]).double()
        sigma_f = float(torch.sqrt((f_all * f_all).mean())) if f_all.numel() else 1.0
        self.sigma_f = sigma_f if sigma_f > 1e-6 else 1.0
        stresses = [f.stress for f in frames if f.stress is not None]
        sigma_s = float(torch.stack(stresses).double().pow(2).mean().sqrt()) if stresses else 1.0
        self.sigma_s = sigma_s if sigma_s > 1e-9 else 1.0
        self.use_stress = self.config.stress_weight > 0 and bool(stresses)

    # -- optimisation ----------------------------------------------------------------------
    def set_up_optimiser(self) -> None:
        """Adam (AdamW with weight decay), the plateau scheduler, the minibatch order."""
        cfg = self.config
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise InputError("the model has no trainable parameters")
        self.optimizer = (
            torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
            if cfg.weight_decay
            else torch.optim.Adam(params, lr=cfg.lr)
        )
        self.plateau = max((cfg.patience or 40) // 4, 5)
        self.scheduler: Any = None
        if cfg.schedule == "plateau":
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer, factor=0.5, patience=self.plateau, min_lr=cfg.lr_floor, eps=0.0
            )
        self.rng = np.random.default_rng(cfg.seed)

    def loss(self, pred: dict[str, torch.Tensor], labels: dict[str, torch.Tensor]) -> torch.Tensor:
        """The weighted minibatch loss of the module docstring of nnp_lab.models.training."""
        cfg, sigma_f = self.config, self.sigma_f
        loss = pred["energy"].new_zeros(())
        if cfg.energy_weight:
            de = (pred["energy"] - labels["energy"]) / labels["n_atoms"]
            loss = loss + cfg.energy_weight * (de * de).mean() / sigma_f**2
        if cfg.force_weight:
            df = pred["forces"] - labels["forces"]
            loss = loss + cfg.force_weight * (df * df).mean() / sigma_f**2
        if self.use_stress and "stress" in pred:
            ds = pred["stress"] - labels["stress"]
            loss = loss + cfg.stress_weight * (ds * ds).mean() / self.sigma_s**2
        return loss

    def validation_loss(self, frames: Sequence[Frame]) -> tuple[float, dict[str, float]]:
        """The loss over ``frames`` from their RMS errors, and the errors."""
        cfg = self.config
        errs = frame_errors(self.model, frames, max(cfg.batch_size, 16), stress=self.use_stress)
        value = (
            cfg.energy_weight * errs["energy_rmse_per_atom"] ** 2
            + cfg.force_weight * errs["force_rmse"] ** 2
        ) / self.sigma_f**2
        if self.use_stress and errs["stress_mae"] is not None:
            value += cfg.stress_weight * (errs["stress_mae"] / self.sigma_s) ** 2
        return float(value), errs

    def out_of_time(self) -> bool:
        """The time budget (if any) is used up."""
        budget = self.config.time_budget_s
        return budget is not None and time.perf_counter() - self.t_start > budget

    # -- the epoch loop --------------------------------------------------------------------
    def run_epochs(self) -> None:
        """Epochs until ``epochs``, patience, the time budget, the smallest learning rate
        or Ctrl-C; the best weights are kept in :attr:`best_state`."""
        cfg = self.config
        self.best_state = _state(self.model)
        self.last_save = time.perf_counter()
        display = TrainDisplay(f"training {type(self.model).__name__}", cfg.epochs, cfg.live)
        if self.val_frames:
            # the starting weights compete too: a fine-tuning run never returns a worse model
            with torch_threads(self.threads):
                self.best_loss, self.initial_errors = self.validation_loss(self.val_frames)
            if not np.isfinite(self.best_loss):
                self.best_loss = math.inf
        self.model.train()
        try:
            with torch_threads(self.threads):
                for epoch in range(1, cfg.epochs + 1):
                    self.epoch = epoch
                    train_loss, out_of_time = self.train_epoch(epoch)
                    if self.end_epoch(epoch, train_loss, out_of_time, display):
                        break
        except KeyboardInterrupt:
            self.interrupted = True
            self.stop_reason = "interrupted"
            warnings.warn(
                f"training interrupted at epoch {self.epoch}; keeping the best weights (epoch "
                f"{self.best_epoch})" + (f", saved to {cfg.path}" if cfg.path else ""),
                stacklevel=_CALLER,
            )
        finally:
            display.close(self.history)

    def train_epoch(self, epoch: int) -> tuple[float, bool]:
        """One pass over the shuffled training frames; returns the mean training loss and
        whether the time budget ran out during it."""
        cfg = self.config
        frames = self.train_frames
        n_train = len(frames)
        order = self.rng.permutation(n_train)
        total, count = 0.0, 0
        for b in range(0, n_train, cfg.batch_size):
            if cfg.schedule == "cosine":
                self.set_cosine_lr((epoch - 1 + b / n_train) / cfg.epochs)
            chunk = [frames[i] for i in order[b : b + cfg.batch_size]]
            graph, labels = collate(chunk)
            pred = predict(self.model, graph, labels, stress=self.use_stress, create_graph=True)
            loss = self.loss(pred, labels)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += float(loss.detach()) * len(chunk)
            count += len(chunk)
            if self.out_of_time():
                return total / max(count, 1), True
        return total / max(count, 1), False

    def set_cosine_lr(self, progress: float) -> None:
        """Cosine decay from ``lr`` to ``min_lr`` at ``progress`` through the run (by
        epochs or, with a budget, by time, whichever is further)."""
        cfg = self.config
        if cfg.time_budget_s is not None:
            progress = max(progress, (time.perf_counter() - self.t_start) / cfg.time_budget_s)
        lr_now = cfg.lr_floor + 0.5 * (cfg.lr - cfg.lr_floor) * (
            1 + math.cos(math.pi * min(progress, 1.0))
        )
        for group in self.optimizer.param_groups:
            group["lr"] = lr_now

    def end_epoch(
        self, epoch: int, train_loss: float, out_of_time: bool, display: TrainDisplay
    ) -> bool:
        """Validate, record, keep the weights if better, step the schedule, show and log;
        True when training should stop (:attr:`stop_reason` says why)."""
        cfg = self.config
        if self.val_frames:
            vloss, verr = self.validation_loss(self.val_frames)
        else:
            vloss, verr = (
                train_loss,
                {"energy_mae_per_atom": float("nan"), "force_mae": float("nan")},
            )
        if not np.isfinite(vloss):
            raise FloatingPointError(
                f"the loss became {vloss} at epoch {epoch}; lower lr (now {cfg.lr:g})"
            )
        current_lr = self.optimizer.param_groups[0]["lr"]
        entry = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": vloss,
            "val_energy_mae_per_atom": verr["energy_mae_per_atom"],
            "val_force_mae": verr["force_mae"],
            "lr": current_lr,
            "time_s": time.perf_counter() - self.t_start,
        }
        for key, value in entry.items():
            self.history[key].append(float(value))
        self.keep_if_better(epoch, vloss)
        if self.scheduler is not None:
            self.scheduler.step(vloss)
        display.epoch_done(self.history, train_loss, vloss, verr["force_mae"])
        if cfg.callback is not None:
            cfg.callback(dict(entry))
        logger.debug(
            "epoch %d: train %.4g val %.4g F-MAE %.4f lr %.2g",
            epoch,
            train_loss,
            vloss,
            verr["force_mae"],
            current_lr,
        )
        return self.should_stop(out_of_time, current_lr)

    def keep_if_better(self, epoch: int, val_loss: float) -> None:
        """Early-stopping bookkeeping: remember better weights (saving them now and then)."""
        if val_loss < self.best_loss * (1 - 1e-4):
            self.best_loss, self.best_epoch, self.stale = val_loss, epoch, 0
            self.best_state = _state(self.model)
            if self.config.path is not None and (
                time.perf_counter() - self.last_save > SAVE_INTERVAL_S
            ):
                self.save()
                self.last_save = time.perf_counter()
        else:
            self.stale += 1

    def should_stop(self, out_of_time: bool, current_lr: float) -> bool:
        """Time budget, patience or the smallest learning rate reached: set the reason."""
        cfg = self.config
        if out_of_time or self.out_of_time():
            self.stop_reason = "time budget"
        elif cfg.patience is not None and self.stale >= cfg.patience:
            self.stop_reason = "patience"
        elif (
            cfg.schedule == "plateau"
            and current_lr <= cfg.lr_floor * (1 + 1e-9)
            and self.stale >= self.plateau
        ):
            self.stop_reason = "min_lr"
        else:
            return False
        return True

    # -- the end ---------------------------------------------------------------------------
    def restore_best(self) -> None:
        """Load the best weights; evaluation mode."""
        self.model.load_state_dict(self.best_state)
        self.model.eval()

    def report(self) -> TrainReport:
        """Errors of the best weights, the report, and the final save to ``path``."""
        cfg, model = self.config, self.model
        with torch_threads(self.threads):
            val = frame_errors(model, self.val_frames, max(cfg.batch_size, 16))
            tr = frame_errors(model, self.train_frames, max(cfg.batch_size, 16), stress=False)
        refs_final = reference_table(model) or {}
        report = TrainReport(
            energy_mae_per_atom=val["energy_mae_per_atom"],
            energy_rmse_per_atom=val["energy_rmse_per_atom"],
            force_mae=val["force_mae"],
            force_rmse=val["force_rmse"],
            stress_mae=val["stress_mae"],
            train_energy_mae_per_atom=tr["energy_mae_per_atom"],
            train_force_mae=tr["force_mae"],
            history=self.history,
            epochs=len(self.history["epoch"]),
            best_epoch=self.best_epoch,
            wall_time_s=time.perf_counter() - self.t_start,
            stopped_early=self.stop_reason != "epochs",
            stop_reason=self.stop_reason,
            interrupted=self.interrupted,
            n_train=len(self.train_frames),
            n_validation=len(self.val_frames),
            initial_force_mae=self.initial_errors.get("force_mae", float("nan")),
            initial_energy_mae_per_atom=self.initial_errors.get(
                "energy_mae_per_atom", float("nan")
            ),
            reference_energies={chemical_symbols[z]: v for z, v in refs_final.items()},
            energy_shift=float(getattr(model, "energy_shift", torch.tensor(0.0))),
            energy_scale=float(getattr(model, "energy_scale", torch.tensor(1.0))),
            path=None if cfg.path is None else str(cfg.path),
        )
        if cfg.path is not None:
            self.save(report)
        logger.info("train: %s", report.summary())
        return report

    def save(self, report: TrainReport | None = None) -> None:
        """Write the model (with its report, at the end) to ``path``."""
        if self.config.path is not None:
            save_trained_model(self.model, self.config.path, self.config.metadata, report)


def save_trained_model(
    model: EnergyModel, path: Any, metadata: Mapping[str, Any] | None, report: TrainReport | None
) -> None:
    """Save ``model`` to ``path`` with its metadata (and the training report) so that
    :func:`nnp_lab.load_potential` reads it, and drop the path's cached potential."""
    from nnp_lab.potentials.torch_model import save_model

    meta = {"name": path.stem, "version": "1"}
    param = next(iter(model.parameters()), None)
    if param is not None:
        meta["dtype"] = str(param.dtype).replace("torch.", "")
    meta.update(jsonable(dict(metadata or {})))
    if report is not None:
        meta["training"] = report.to_dict()
    # a model on another device is saved from a CPU copy (save_model moves tensors to CPU)
    save_model(model, path, metadata=meta)
    forget_cached_model(path)


def _z(key: int | str) -> int:
    if isinstance(key, str):
        if key not in atomic_numbers:
            raise InputError(f"unknown element {key!r} in reference_energies")
        return atomic_numbers[key]
    return int(key)


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
