"""Distil a light, fast potential from a universal one by active learning (LightPFP style).

:func:`distill` turns an expensive teacher (SevenNet-0 by default) into a small model of
one of our architectures that is fast enough for long MD of the system you care about:

1. **Held-out test frames**: a short NVT run with the *teacher* at the test temperature(s);
   its frames are stored apart and never trained on.
2. **Initial data**: the input structure(s), rattled copies and strained cells, labelled by
   the teacher in batches.
3. **Committee**: ``committee_size`` copies of the architecture with different random
   initialisations, trained on the same data.
4. **Rounds**: MD with the first committee member at the training temperature(s), several
   trajectories advanced together; every ``check_interval`` steps all members evaluate the
   current frames and their disagreement — the largest per-atom RMS deviation of the
   members' force vectors, eV/Å (DP-GEN's ``max_devi_f``) — is recorded. A trajectory
   whose disagreement exceeds ``stop_factor × force_threshold`` (or that becomes
   unphysical) restarts from its last trusted frame (disagreement below
   ``force_threshold``) with new velocities, up to :data:`MAX_RESTARTS` times per round.
   Up to ``frames_per_round`` frames above ``force_threshold`` are picked — within the
   trust window ``(force_threshold, stop_factor × force_threshold]`` first, largest
   disagreement first — labelled by the teacher in one batch and added to the dataset,
   and the committee is retrained from its current weights.
5. **Stop** when a whole round of MD stays below ``force_threshold``, after ``max_rounds``,
   or when the time budget runs out; the best member (validation force error) is then
   trained further with what is left of the budget (or until its validation error stops
   improving for :data:`FINAL_PATIENCE` epochs), tested on the held-out frames, and saved
   with its metadata and report, so ``nnp_lab.load_potential(path)`` loads it.

Every labelled frame is written to an ``ase.db`` file as soon as it is labelled, and Ctrl-C
ends the run cleanly: the best model so far is tested, saved and returned.

Examples
--------
>>> from nnp_lab import build
>>> from nnp_lab.models import distill
>>> cell = build.vacancy(build.supercell(build.crystal("LiFePO4"), (1, 1, 2)), 0)
>>> light, report = distill(cell, "sevennet-0", temperatures_K=(600, 1000),
...                         test_temperatures_K=(800,), time_budget_s=1800,
...                         path="lfp-light.pt")                      # doctest: +SKIP
>>> report.force_mae, report.n_rounds                                 # doctest: +SKIP
>>> nnp_lab.md(cell, light, temperature_K=800, steps=10_000)          # doctest: +SKIP
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ase import Atoms

from nnp_lab.errors import InputError
from nnp_lab.models._committee import (
    ARCHITECTURES,
    MAX_RESTARTS,
    build_model,
    committee_disagreement,
)
from nnp_lab.models._common import structure_list
from nnp_lab.models._distill_report import DistillReport
from nnp_lab.models._distill_run import FINAL_PATIENCE, MAX_LABEL_FORCE, DistillRun
from nnp_lab.potentials.base import Potential
from nnp_lab.potentials.torch_model import TorchModelPotential
from nnp_lab.validation import integer, number, number_list

__all__ = [
    "distill",
    "DistillConfig",
    "DistillReport",
    "ARCHITECTURES",
    "committee_disagreement",
    "build_model",
    "MAX_LABEL_FORCE",
    "MAX_RESTARTS",
    "FINAL_PATIENCE",
]


@dataclass
class DistillConfig:
    """The options of :func:`distill`, checked in one place and in canonical types.

    :func:`distill` builds it from its keywords (their defaults and meaning are there);
    construction checks every option and raises :class:`~nnp_lab.errors.InputError` naming
    the first bad one. Temperatures become lists (``test_temperatures_K`` None: the
    training temperatures), ``rattle`` a non-empty list (0.05 Å when switched off), and
    epoch counts given as None their defaults: 150, 40 and 300, ten times as many with a
    time budget.
    """

    temperatures_K: list[float]
    test_temperatures_K: list[float] | None
    architecture: str | type
    time_budget_s: float | None
    committee_size: int
    force_threshold: float
    stop_factor: float
    max_rounds: int
    md_steps_per_round: int
    timestep_fs: float
    friction_per_fs: float
    check_interval: int
    frames_per_round: int
    replicas_per_temperature: int
    n_initial: int
    rattle: list[float]
    strain: float | None
    n_test: int
    test_md_steps: int
    epochs_initial: int | None
    epochs_per_round: int | None
    final_epochs: int | None
    batch_size: int
    lr: float
    force_weight: float
    energy_weight: float
    validation_fraction: float
    path: str | os.PathLike | None
    seed: int
    device: str
    threads: int | None
    progress: bool
    architecture_options: dict[str, Any]

    def __post_init__(self) -> None:
        temps = number_list("temperatures_K", self.temperatures_K)
        if not temps or min(temps) <= 0:
            raise InputError(
                f"temperatures_K must hold temperatures > 0 K, got {self.temperatures_K!r}"
            )
        self.temperatures_K = temps
        if self.test_temperatures_K is None:
            self.test_temperatures_K = temps
        else:
            self.test_temperatures_K = number_list("test_temperatures_K", self.test_temperatures_K)
        if self.test_temperatures_K and min(self.test_temperatures_K) <= 0:
            raise InputError("test_temperatures_K must be > 0 K")
        self._check_counts()
        for name in ("force_threshold", "timestep_fs", "stop_factor", "friction_per_fs"):
            setattr(self, name, number(name, getattr(self, name), strict=True))
        self.time_budget_s = number(
            "time_budget_s", self.time_budget_s, strict=True, allow_none=True, unit="s"
        )
        self.rattle = number_list("rattle", self.rattle) or [0.05]
        self.strain = number("strain", self.strain, allow_none=True)
        self._check_training_options()

    def _check_counts(self) -> None:
        """Integer options, and the epoch counts' defaults."""
        for name, minimum in (
            ("committee_size", 2),
            ("max_rounds", 0),
            ("md_steps_per_round", 1),
            ("check_interval", 1),
            ("frames_per_round", 1),
            ("replicas_per_temperature", 1),
            ("n_initial", 0),
            ("n_test", 0),
            ("test_md_steps", 1),
        ):
            setattr(self, name, integer(name, getattr(self, name), minimum=minimum))
        factor = 1 if self.time_budget_s is None else 10
        for name, default in (
            ("epochs_initial", 150),
            ("final_epochs", 300),
            ("epochs_per_round", 40),
        ):
            value = getattr(self, name)
            value = default * factor if value is None else value
            setattr(self, name, integer(name, value, minimum=0))

    def _check_training_options(self) -> None:
        """The options handed to :func:`~nnp_lab.models.train`, checked before any work."""
        self.batch_size = integer("batch_size", self.batch_size)
        self.lr = number("lr", self.lr, strict=True)
        self.force_weight = number("force_weight", self.force_weight)
        self.energy_weight = number("energy_weight", self.energy_weight)
        if not number("validation_fraction", self.validation_fraction) < 1:
            raise InputError(
                f"validation_fraction must be a number in [0, 1), got {self.validation_fraction!r}"
            )
        self.seed = integer("seed", self.seed, minimum=None)
        self.threads = integer("threads", self.threads, minimum=1, allow_none=True)
        self.architecture_options = dict(self.architecture_options)


def distill(
    atoms: Atoms | Sequence[Atoms],
    teacher: Potential | str | None = None,
    *,
    temperatures_K: float | Sequence[float] = (300.0,),
    test_temperatures_K: float | Sequence[float] | None = None,
    architecture: str | type = "teanet",
    time_budget_s: float | None = None,
    committee_size: int = 3,
    force_threshold: float = 0.15,
    stop_factor: float = 4.0,
    max_rounds: int = 8,
    md_steps_per_round: int = 300,
    timestep_fs: float = 1.0,
    friction_per_fs: float = 0.01,
    check_interval: int = 10,
    frames_per_round: int = 24,
    replicas_per_temperature: int = 1,
    n_initial: int = 24,
    rattle: float | Sequence[float] = (0.03, 0.06, 0.1),
    strain: float | None = 0.02,
    n_test: int = 20,
    test_md_steps: int = 200,
    epochs_initial: int | None = None,
    epochs_per_round: int | None = None,
    final_epochs: int | None = None,
    batch_size: int = 4,
    lr: float = 3e-3,
    force_weight: float = 1.0,
    energy_weight: float = 1.0,
    validation_fraction: float = 0.1,
    path: str | os.PathLike | None = None,
    seed: int = 0,
    device: str = "cpu",
    threads: int | None = 1,
    progress: bool = True,
    **architecture_options: Any,
) -> tuple[TorchModelPotential, DistillReport]:
    """Distil a light potential for ``atoms`` from ``teacher`` by active learning.

    See the module docstring for the procedure.

    Parameters
    ----------
    atoms
        The system(s) to learn: one structure or a list (same elements are fine; all
        structures are sampled and simulated).
    teacher
        The reference :class:`~nnp_lab.potentials.Potential`, a registered name (e.g.
        ``"sevennet-0"``) or None for the default universal model. The order
        ``distill(teacher, atoms)`` of earlier releases still works for one release, with a
        ``DeprecationWarning``, and then returns the model alone with a ``.report`` dict.
    temperatures_K
        MD temperature(s) of the active-learning rounds.
    test_temperatures_K
        Temperature(s) of the teacher MD that makes the held-out test frames (default: the
        training temperatures). Use one that is not trained on to test transfer.
    architecture
        ``"teanet"`` (default), ``"schnet"``, ``"behler-parrinello"`` or an
        :class:`~nnp_lab.potentials.torch_model.EnergyModel` subclass taking
        ``elements=``; light defaults are in :data:`ARCHITECTURES`.
    time_budget_s
        Wall-time budget in s for the whole call (None: until convergence or
        ``max_rounds``, each training call running its full number of epochs). The test
        frames and initial labels are made first; of the time left then, about 15 % goes
        to the first committee fit, about 8 % to the training of each round (plus its MD
        and labels), and at least 35 % to the final training of the best model. With a
        budget, the epoch counts below are upper limits and every learning-rate schedule
        runs over its share of the time.
    committee_size
        Number of models trained with different seeds (>= 2).
    force_threshold
        Committee disagreement (eV/Å) above which an MD frame is worth labelling; a round
        whose frames all stay below it ends the loop.
    stop_factor
        A trajectory restarts from its last trusted frame when its disagreement exceeds
        ``stop_factor × force_threshold`` (it has left the region the models know); frames
        beyond that level are labelled only when the trust window has too few.
    max_rounds
        Largest number of active-learning rounds.
    md_steps_per_round
        MD steps per trajectory per round.
    timestep_fs, friction_per_fs
        Langevin MD time step (fs) and friction (1/fs), for the student and test runs.
    check_interval
        Steps between committee checks in the student MD.
    frames_per_round
        Largest number of frames labelled per round.
    replicas_per_temperature
        Independent trajectories per structure and temperature.
    n_initial
        Rattled and strained copies per input structure in the initial data.
    rattle
        Rattle amplitude(s) (Å) of the initial data.
    strain
        Largest strain component of the strained cells (periodic structures; None: none).
    n_test
        Held-out test frames per structure and test temperature (0: no test).
    test_md_steps
        Steps of each teacher test run; frames are taken from its second half.
    epochs_initial, epochs_per_round, final_epochs
        Largest numbers of training epochs for the first committee fit, per round (warm
        start) and for the final model. None: 150, 40 and 300 without a time budget; with
        a budget, 10 times as many (the time shares then end each call first).
    batch_size, lr, force_weight, energy_weight, validation_fraction
        Training settings (see :func:`nnp_lab.models.train`).
    path
        Model file to write (``.pt``); the training data go to ``<stem>.db`` and the test
        frames to ``<stem>-test.db`` beside it (all three are replaced if they exist).
        None: a temporary directory.
    seed
        Seed of everything random (models, sampling, MD).
    device
        Torch device of the student models.
    threads
        Torch CPU threads for the student models and their training (1 by default: small
        models gain nothing from more, and lose a lot on a shared CPU); teacher calls use
        torch's setting.
    progress
        Show progress bars (rounds, teacher labelling) and log each round.
    **architecture_options
        Constructor options of the architecture (e.g. ``layer_cutoffs=[3, 4.5]``,
        ``n_scalar=48`` for TeaNet; ``cutoff=``, ``n_features=`` for SchNet).

    Returns
    -------
    potential : TorchModelPotential
        The distilled model, loaded from the saved file.
    report : DistillReport
        Held-out errors, the rounds, the data files and timings (see
        :class:`~nnp_lab.models.DistillReport`); also saved in the model file's metadata.

    Raises
    ------
    InputError
        Bad options, an unknown architecture, or elements the teacher does not cover.
    """
    legacy = _is_legacy_order(atoms, teacher)
    if legacy:
        warnings.warn(
            "distill(teacher, atoms) is deprecated: call distill(atoms, teacher), which "
            "returns (potential, report) like train(); this order still returns the "
            "potential with a .report dict for one release",
            DeprecationWarning,
            stacklevel=2,
        )
        atoms, teacher = teacher, atoms  # type: ignore[assignment]
    structures = structure_list(atoms, "distill needs a structure (an ase.Atoms) or a list of them")
    config = DistillConfig(
        temperatures_K=number_list("temperatures_K", temperatures_K),
        test_temperatures_K=(
            None
            if test_temperatures_K is None
            else number_list("test_temperatures_K", test_temperatures_K)
        ),
        architecture=architecture,
        time_budget_s=time_budget_s,
        committee_size=committee_size,
        force_threshold=force_threshold,
        stop_factor=stop_factor,
        max_rounds=max_rounds,
        md_steps_per_round=md_steps_per_round,
        timestep_fs=timestep_fs,
        friction_per_fs=friction_per_fs,
        check_interval=check_interval,
        frames_per_round=frames_per_round,
        replicas_per_temperature=replicas_per_temperature,
        n_initial=n_initial,
        rattle=number_list("rattle", rattle),
        strain=strain,
        n_test=n_test,
        test_md_steps=test_md_steps,
        epochs_initial=epochs_initial,
        epochs_per_round=epochs_per_round,
        final_epochs=final_epochs,
        batch_size=batch_size,
        lr=lr,
        force_weight=force_weight,
        energy_weight=energy_weight,
        validation_fraction=validation_fraction,
        path=path,
        seed=seed,
        device=device,
        threads=threads,
        progress=progress,
        architecture_options=architecture_options,
    )
    potential, report = DistillRun(teacher, structures, config).run()
    if legacy:
        potential.report = report.to_dict()  # type: ignore[attr-defined]
        return potential  # type: ignore[return-value]
    return potential, report


def _is_legacy_order(atoms: Any, teacher: Any) -> bool:
    """``distill(teacher, atoms)``: a potential, name or None first, structures second."""

    def is_structures(value: Any) -> bool:
        return isinstance(value, Atoms) or (
            isinstance(value, (list, tuple)) and bool(value) and isinstance(value[0], Atoms)
        )

    return not is_structures(atoms) and is_structures(teacher)
