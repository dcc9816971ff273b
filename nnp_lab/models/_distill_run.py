"""The stages of :func:`nnp_lab.models.distill`, one method each (see there for the procedure).

:class:`DistillRun` is built from the teacher, the structures and a checked
:class:`~nnp_lab.models.distillation.DistillConfig`; :meth:`DistillRun.run` goes through
the stages: set-up (teacher, architecture, files), held-out test frames, initial data,
committee training, active-learning rounds, final training, test and save.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from ase import Atoms

from nnp_lab.errors import InputError, StructureError
from nnp_lab.models._committee import build_model, pick_frames, student_md
from nnp_lab.models._common import (
    dtype_name,
    forget_cached_model,
    jsonable,
    progress_bar,
    resolve_teacher,
)
from nnp_lab.models._distill_report import DistillReport
from nnp_lab.models._frames import evaluate_model
from nnp_lab.models.dataset import Dataset
from nnp_lab.models.sampling import min_distance, rattled, strained
from nnp_lab.models.training import TrainReport, train
from nnp_lab.potentials.base import PROPERTIES, Potential, has_stress
from nnp_lab.potentials.torch_model import (
    EnergyModel,
    TorchModelPotential,
    load_model_file,
    save_model,
)
from nnp_lab.simulate._replicas import LangevinReplicas
from nnp_lab.threads import torch_threads

if TYPE_CHECKING:
    from nnp_lab.models.distillation import DistillConfig

__all__ = ["DistillRun", "MAX_LABEL_FORCE", "FINAL_PATIENCE", "teacher_md_frames"]

# distill's messages keep their logger name (scripts filter on it)
logger = logging.getLogger("nnp_lab.models.distill")

#: Largest teacher force (eV/Å) of a frame that is still added to the training data.
MAX_LABEL_FORCE = 30.0
#: The final training stops after this many epochs without a better validation error (so
#: a converged distillation does not spend the rest of its budget on it).
FINAL_PATIENCE = 100

# warnings point at the caller of distill(): DistillRun.run <- distill <- caller
_CALLER = 3


class DistillRun:
    """One distillation of ``teacher`` on ``structures`` with the options ``config``."""

    def __init__(
        self, teacher: Potential | str | None, structures: list[Atoms], config: DistillConfig
    ) -> None:
        self.t0 = time.perf_counter()
        self.teacher = teacher
        self.structures = structures
        self.config = config
        self.timing = {"teacher_s": 0.0, "training_s": 0.0, "md_s": 0.0}
        self.n_labelled = 0
        self.rounds: list[dict[str, Any]] = []
        self.stop_reason = "max_rounds"
        self.converged = False
        self.interrupted = False
        self.log = logger.info if config.progress else logger.debug
        self.committee: list[EnergyModel] = []
        self.val_ids: list[int] = []
        self.reports: list[TrainReport | None] = []
        self.rounds_bar: Any = None
        self.left_after_init = math.inf

    def run(self) -> tuple[TorchModelPotential, DistillReport]:
        """All stages; returns the distilled model loaded from its file and its report."""
        self.set_up()
        try:
            self.make_test_frames()
            self.label_initial_data()
            self.train_committee()
            self.active_learning()
            self.train_final_model()
        except KeyboardInterrupt:
            self.interrupted = True
            self.stop_reason = "interrupted"
            warnings.warn(
                "distill interrupted: testing and saving the best model so far", stacklevel=_CALLER
            )
        finally:
            if self.rounds_bar is not None:
                self.rounds_bar.close()
        if not self.committee or self.reports[0] is None:
            if self.interrupted:
                raise KeyboardInterrupt("distill interrupted before any model was trained")
            raise InputError("no model was trained")
        return self.test_and_save()

    # -- set-up ----------------------------------------------------------------------------
    def set_up(self) -> None:
        """Resolve and check the teacher, build a first model (fails fast on a bad
        architecture), open fresh data files."""
        cfg = self.config
        pot = self.pot = resolve_teacher(self.teacher)
        for a in self.structures:
            pot.check(a)  # covered elements and a sane geometry, before any work
        self.elements = sorted(set(int(z) for a in self.structures for z in np.unique(a.numbers)))
        # quick validation of the architecture before spending teacher time
        self.probe, self.arch_name, self.arch_opts = build_model(
            cfg.architecture, self.elements, cfg.architecture_options, cfg.seed
        )
        path = cfg.path
        if path is None:
            path = Path(tempfile.mkdtemp(prefix="nnp_lab-distill-")) / "distilled.pt"
        path = Path(path).expanduser()
        if path.suffix != ".pt":
            path = path.with_suffix(".pt")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.data_path = path.with_suffix(".db")
        self.test_path = path.with_name(path.stem + "-test.db")
        for p in (self.data_path, self.test_path):
            if p.exists():
                p.unlink()  # a fresh run: never mix data of an earlier one
        self.dataset = Dataset(self.data_path)
        self.test_set = Dataset(self.test_path)
        self.rng = np.random.default_rng(cfg.seed)

    def remaining(self) -> float:
        """Seconds left of the time budget (inf without one)."""
        if self.config.time_budget_s is None:
            return math.inf
        return self.config.time_budget_s - (time.perf_counter() - self.t0)

    # -- labels and the training/validation split -------------------------------------------
    def label(self, frames: list[Atoms], **meta: Any) -> list[int]:
        """Teacher labels in one batch; drops unphysical frames; writes them at once."""
        pot, dataset = self.pot, self.dataset
        good = []
        for f in frames:
            try:
                pot.check(f)
                good.append(f)
            except StructureError as exc:
                logger.debug("distill: skipping a frame the teacher refuses: %s", exc)
        if not good:
            return []
        t = time.perf_counter()
        results = pot.evaluate(good, PROPERTIES)
        self.timing["teacher_s"] += time.perf_counter() - t
        self.n_labelled += len(good)
        keep = [
            (f, r)
            for f, r in zip(good, results)
            if np.all(np.isfinite(r["forces"])) and np.abs(r["forces"]).max() < MAX_LABEL_FORCE
        ]
        if len(keep) < len(good):
            logger.info(
                "distill: %d frame(s) with teacher forces above %g eV/Å not used",
                len(good) - len(keep),
                MAX_LABEL_FORCE,
            )
        if not keep:
            return []
        start = len(dataset)
        per_frame = []
        for f, _ in keep:
            row = {"source": int(f.info.get("source", 0))}
            for key in ("kind", "temperature_K", "md_step"):
                if key in f.info:
                    row[key] = f.info[key]
            per_frame.append(row)
        dataset.write(
            [f for f, _ in keep],
            [r for _, r in keep],
            pot,
            kind=meta.pop("kind"),
            info=meta,
            per_frame=per_frame,
        )
        return list(range(start, len(dataset)))

    def assign_validation(self, new: list[int]) -> None:
        """Send each new frame to the validation part with ``validation_fraction``."""
        for i in new:
            if self.rng.random() < self.config.validation_fraction:
                self.val_ids.append(i)

    def split_views(self) -> tuple[Dataset, Dataset]:
        """Training and validation views of the dataset."""
        all_ids = set(range(len(self.dataset)))
        val = sorted(set(self.val_ids) & all_ids)
        return self.dataset.subset(sorted(all_ids - set(val))), self.dataset.subset(val)

    def train_member(
        self, k: int, epochs: int | None, budget: float | None, *, final: bool = False
    ) -> None:
        """Train committee member ``k`` (from its current weights) on the current data."""
        cfg = self.config
        assert epochs is not None  # DistillConfig turns None into the default count
        t = time.perf_counter()
        train_view, val_view = self.split_views()
        use_val = val_view if len(val_view) else None
        first = self.reports[k] is None
        # cosine decay over each call (over its time budget when it has one): a fresh
        # committee starts at lr, warm-started rounds at lr / 2, the final model at lr
        model, rep = train(
            self.committee[k],
            train_view,
            validation=use_val,
            validation_fraction=0.0 if use_val is None else 0.1,
            epochs=max(epochs, 1),
            batch_size=cfg.batch_size,
            lr=cfg.lr if (first or final) else cfg.lr * 0.5,
            energy_weight=cfg.energy_weight,
            force_weight=cfg.force_weight,
            patience=FINAL_PATIENCE if final else None,
            schedule="cosine",
            min_lr=cfg.lr / 100,
            seed=cfg.seed + 1000 * k + len(self.rounds),
            device=cfg.device,
            threads=cfg.threads,
            live=False,
            time_budget_s=budget,
            reference_energies="auto",
        )
        self.committee[k] = model
        self.reports[k] = rep
        self.timing["training_s"] += time.perf_counter() - t
        if rep.interrupted:
            raise KeyboardInterrupt

    # -- 1. held-out test frames from teacher MD -------------------------------------------
    def make_test_frames(self) -> None:
        """Teacher NVT at the test temperatures; frames stored apart, never trained on."""
        cfg = self.config
        test_temps = cfg.test_temperatures_K
        if not (cfg.n_test and test_temps):
            return
        t = time.perf_counter()
        teacher_md_frames(
            self.structures,
            self.pot,
            test_temps,
            cfg.test_md_steps,
            cfg.n_test,
            cfg.timestep_fs,
            cfg.friction_per_fs,
            self.rng,
            self.test_set,
            cfg.progress,
        )
        self.timing["teacher_s"] += time.perf_counter() - t
        self.n_labelled += len(self.structures) * len(test_temps) * cfg.test_md_steps
        self.log(
            "distill: %d held-out test frames from teacher MD at %s K (%.0f s)",
            len(self.test_set),
            test_temps,
            time.perf_counter() - t,
        )

    # -- 2. initial data -------------------------------------------------------------------
    def label_initial_data(self) -> None:
        """The inputs, rattled copies and strained cells, labelled in batches of 8."""
        cfg, rng = self.config, self.rng
        rattles = cfg.rattle
        initial: list[Atoms] = []
        for k, a in enumerate(self.structures):
            base = a.copy()
            base.info = {"source": k, "kind": "input"}
            initial.append(base)
            strain = cfg.strain if has_stress(a) else None
            n_strain = cfg.n_initial // 4 if strain else 0
            for j in range(cfg.n_initial - n_strain):
                f = rattled(a, rattles[j % len(rattles)], rng)
                f.info = {"source": k, "kind": "rattle"}
                initial.append(f)
            for _ in range(n_strain):
                f = strained(a, float(strain or 0.0), rng, rattle=min(rattles))
                f.info = {"source": k, "kind": "strain"}
                initial.append(f)
        bar = progress_bar(len(initial), f"labelling with {self.pot.name}", cfg.progress)
        new_ids: list[int] = []
        for b in range(0, len(initial), 8):
            new_ids += self.label(initial[b : b + 8], kind="rattle")
            bar.update(len(initial[b : b + 8]))
        bar.close()
        if not new_ids:
            raise InputError("the teacher could not label any initial frame")
        self.assign_validation(new_ids)
        if len(self.val_ids) == 0 and len(self.dataset) >= 5:
            self.val_ids.append(int(rng.integers(len(self.dataset))))
        self.log("distill: %d initial frames labelled by %s", len(self.dataset), self.pot.name)

    # -- 3. committee ----------------------------------------------------------------------
    def train_committee(self) -> None:
        """Build the other members (new seeds) and fit all of them."""
        cfg = self.config
        self.committee = [self.probe] + [
            build_model(cfg.architecture, self.elements, cfg.architecture_options, cfg.seed + k)[0]
            for k in range(1, cfg.committee_size)
        ]
        self.reports = [None] * cfg.committee_size
        # time plan (with a budget): of what is left now, ~15 % for the first committee
        # fit, ~8 % per round (training; MD and labels come on top), the rest (>= 35 %)
        # for the final training of the best model
        self.left_after_init = self.remaining()
        budget_train = None
        if cfg.time_budget_s is not None:
            budget_train = max(0.15 * self.left_after_init, 1.0) / cfg.committee_size
        for k in range(cfg.committee_size):
            self.train_member(k, cfg.epochs_initial, budget_train)

    # -- 4. active-learning rounds -----------------------------------------------------------
    def active_learning(self) -> None:
        """Rounds until one stays below the threshold, ``max_rounds`` or the budget."""
        cfg = self.config
        replicas_init = []
        self.replica_temp = []
        for k, a in enumerate(self.structures):
            for T in cfg.temperatures_K:
                for _ in range(cfg.replicas_per_temperature):
                    start = a.copy()
                    start.info = {"source": k}
                    replicas_init.append(start)
                    self.replica_temp.append(T)
        self.state: list[Atoms] = [a.copy() for a in replicas_init]
        self.trusted: list[Atoms] = [a.copy() for a in replicas_init]
        self.ref_min = [0.7 * min_distance(a, 4.0) for a in replicas_init]
        self.rounds_bar = progress_bar(cfg.max_rounds, "distill rounds", cfg.progress, "round")
        round_time = 0.0
        for r in range(1, cfg.max_rounds + 1):
            if cfg.time_budget_s is not None and (
                self.remaining() < 1.2 * round_time + 0.35 * self.left_after_init
            ):
                self.stop_reason = "time budget"
                return
            took = self.active_round(r)
            if took is None:
                return  # converged
            round_time = took
        self.stop_reason = "max_rounds"

    def active_round(self, r: int) -> float | None:
        """Student MD, pick and label frames, retrain the committee; the round's time in s,
        or None when the round converged (nothing left to learn)."""
        cfg = self.config
        t_round = time.perf_counter()
        t = time.perf_counter()
        with torch_threads(cfg.threads):
            student_pot = TorchModelPotential(
                self.committee[0], dtype=dtype_name(self.committee[0]), device=cfg.device
            )
            cands, scores, n_steps, stopped = student_md(
                student_pot,
                self.committee,
                self.state,
                self.trusted,
                self.replica_temp,
                self.ref_min,
                cfg.md_steps_per_round,
                cfg.check_interval,
                cfg.timestep_fs,
                cfg.friction_per_fs,
                cfg.force_threshold,
                cfg.stop_factor,
                self.rng,
            )
        self.timing["md_s"] += time.perf_counter() - t
        max_dis = float(max(scores)) if scores else 0.0
        mean_dis = float(np.mean(scores)) if scores else 0.0
        picked = pick_frames(
            cands,
            scores,
            cfg.force_threshold,
            cfg.frames_per_round,
            2 * cfg.check_interval,
            cfg.stop_factor * cfg.force_threshold,
        )
        info = {
            "round": r,
            "md_steps": int(n_steps),
            "stopped_trajectories": int(stopped),
            "max_disagreement": max_dis,
            "mean_disagreement": mean_dis,
            "n_candidates": int(sum(s > cfg.force_threshold for s in scores)),
        }
        if not picked and stopped == 0:
            self.converged = True
            self.stop_reason = "converged"
            info.update(n_new=0, n_frames=len(self.dataset), time_s=time.perf_counter() - t_round)
            self.record_errors(info)
            self.rounds.append(info)
            self.rounds_bar.update(1)
            self.log(
                "distill: round %d converged (max disagreement %.3f eV/Å < %.3f)",
                r,
                max_dis,
                cfg.force_threshold,
            )
            return None
        new_ids = self.label([cands[i] for i in picked], kind="active", round=r)
        self.assign_validation(new_ids)
        # retrain the committee from its current weights
        budget_round = None
        if cfg.time_budget_s is not None:
            budget_round = max(0.08 * self.left_after_init, 1.0) / cfg.committee_size
        for k in range(cfg.committee_size):
            self.train_member(k, cfg.epochs_per_round, budget_round)
        info.update(
            n_new=len(new_ids), n_frames=len(self.dataset), time_s=time.perf_counter() - t_round
        )
        self.record_errors(info)
        self.rounds.append(info)
        self.rounds_bar.update(1)
        self.rounds_bar.set_postfix_str(
            f"frames {len(self.dataset)} dis {max_dis:.2f} val F {info['val_force_mae']:.3f}",
            refresh=False,
        )
        self.log(
            "distill: round %d: %d steps, %d stopped, max/mean disagreement %.3f/%.3f "
            "eV/Å, +%d frames (%d), val force MAE %.3f, test %.3f eV/Å, %.0f s",
            r,
            n_steps,
            stopped,
            max_dis,
            mean_dis,
            len(new_ids),
            len(self.dataset),
            info["val_force_mae"],
            info.get("test_force_mae", float("nan")),
            info["time_s"],
        )
        return info["time_s"]

    def record_errors(self, info: dict[str, Any]) -> None:
        """Validation and held-out errors of the first member, into a round's ``info``."""
        rep = self.reports[0]
        info["val_force_mae"] = float("nan") if rep is None else rep.force_mae
        info["val_energy_mae_per_atom"] = float("nan") if rep is None else rep.energy_mae_per_atom
        if len(self.test_set):
            with torch_threads(1):
                err = evaluate_model(
                    self.committee[0],
                    self.test_set,
                    batch_size=max(self.config.batch_size, 8),
                    stress=False,
                )
            info["test_force_mae"] = err["force_mae"]
            info["test_energy_mae_per_atom"] = err["energy_mae_per_atom"]

    # -- 5. final training of the best member ---------------------------------------------
    def train_final_model(self) -> None:
        """Put the best member (validation force error) first and train it further."""
        cfg, reports = self.config, self.reports
        best = int(
            np.argmin(
                [
                    rep.force_mae if rep is not None and np.isfinite(rep.force_mae) else math.inf
                    for rep in reports
                ]
            )
        )
        self.committee = [self.committee[best]] + [
            m for k, m in enumerate(self.committee) if k != best
        ]
        self.reports = [reports[best]] + [rep for k, rep in enumerate(reports) if k != best]
        if cfg.final_epochs and self.remaining() > 5:
            budget = None if cfg.time_budget_s is None else max(self.remaining() - 10.0, 1.0)
            self.train_member(0, cfg.final_epochs, budget, final=True)

    # -- 6. test and save ------------------------------------------------------------------
    def test_and_save(self) -> tuple[TorchModelPotential, DistillReport]:
        """Test the first member on the held-out frames, save it with its report, load it."""
        cfg, pot, path = self.config, self.pot, self.path
        model = self.committee[0]
        model.eval()
        with torch_threads(cfg.threads):
            test_err = evaluate_model(
                model, self.test_set, batch_size=max(cfg.batch_size, 8), stress=False
            )
        report = DistillReport.from_dict(jsonable(self.report_fields(model, test_err)))
        metadata = {
            "name": path.stem,
            "version": "1",
            "level_of_theory": f"distilled from {pot.name} ({pot.level_of_theory})",
            "citation": pot.citation,
            "licence": f"derived from {pot.name} ({pot.licence})",
            "dtype": dtype_name(model),
            "teacher": pot.name,
            "teacher_version": str(pot.version),
            "system": self.structures[0].get_chemical_formula(),
            "report": report.to_dict(),
        }
        with torch_threads(cfg.threads):
            save_model(model, path, metadata=metadata)
        forget_cached_model(path)
        light = load_model_file(path, device=cfg.device)
        self.log(
            "distill: %s -> %s in %.0f s (%s): test force MAE %.3f eV/Å, energy MAE "
            "%.1f meV/atom, %d frames, %d rounds",
            pot.name,
            path,
            report.wall_time_s,
            self.stop_reason,
            report.force_mae,
            1000 * report.energy_mae_per_atom,
            len(self.dataset),
            len(self.rounds),
        )
        return light, report

    def report_fields(self, model: EnergyModel, test_err: dict[str, float]) -> dict[str, Any]:
        """The fields of the distilled model's :class:`DistillReport`."""
        cfg, pot, rep0 = self.config, self.pot, self.reports[0]
        assert rep0 is not None  # run() raises before testing when no member was trained
        return {
            "force_mae": test_err["force_mae"],
            "force_rmse": test_err["force_rmse"],
            "energy_mae_per_atom": test_err["energy_mae_per_atom"],
            "energy_rmse_per_atom": test_err["energy_rmse_per_atom"],
            "n_test": len(self.test_set),
            "test_temperatures_K": cfg.test_temperatures_K,
            "temperatures_K": cfg.temperatures_K,
            "validation_force_mae": rep0.force_mae,
            "validation_energy_mae_per_atom": rep0.energy_mae_per_atom,
            "rounds": self.rounds,
            "n_rounds": len(self.rounds),
            "n_frames": len(self.dataset),
            "n_teacher_evaluations": self.n_labelled,
            "converged": self.converged,
            "stop_reason": self.stop_reason,
            "interrupted": self.interrupted,
            "architecture": self.arch_name,
            "architecture_options": self.arch_opts,
            "n_parameters": int(sum(p.numel() for p in model.parameters())),
            "committee_size": cfg.committee_size,
            "force_threshold": cfg.force_threshold,
            "teacher": pot.name,
            "teacher_version": str(pot.version),
            "teacher_level_of_theory": str(pot.level_of_theory),
            "timing_s": {**self.timing, "total": time.perf_counter() - self.t0},
            "wall_time_s": time.perf_counter() - self.t0,
            "seed": cfg.seed,
            "path": str(self.path),
            "dataset": str(self.data_path),
            "test_dataset": str(self.test_path),
        }


def teacher_md_frames(
    structures: list[Atoms],
    pot: Potential,
    temps: list[float],
    steps: int,
    n_frames: int,
    timestep_fs: float,
    friction: float,
    rng: np.random.Generator,
    out: Dataset,
    progress: bool,
) -> None:
    """Teacher NVT runs (all temperatures in one batch per step); ``n_frames`` evenly spaced
    frames of the second half of each run are written to ``out`` as they come."""
    replicas, meta = [], []
    for k, a in enumerate(structures):
        for T in temps:
            replicas.append(a)
            meta.append((k, T))
    at = set(np.unique(np.linspace(steps // 2, steps, n_frames + 1)[1:].round().astype(int)))
    bar = progress_bar(steps, f"teacher MD for test frames ({pot.name})", progress, "step")
    dyn = LangevinReplicas(
        replicas,
        pot,
        [T for _, T in meta],
        timestep_fs=timestep_fs,
        friction_per_fs=friction,
        rng=rng,
        initial_temperature_factor=2.0,
    )
    try:
        for step in range(1, steps + 1):
            props = PROPERTIES if step in at else ("energy", "forces")
            results = dyn.step(props)
            bar.update(1)
            if step in at:
                frames = []
                for r in range(len(replicas)):
                    f = dyn.snapshot(r)
                    f.calc = None
                    frames.append(f)
                labels = [r for r in results if r is not None]
                assert len(labels) == len(frames)  # a teacher run stops no replica
                out.write(
                    frames,
                    labels,
                    pot,
                    kind="test",
                    per_frame=[{"source": k, "temperature_K": T, "md_step": step} for k, T in meta],
                )
    finally:
        bar.close()
