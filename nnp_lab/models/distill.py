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
>>> light = distill("sevennet-0", cell, temperatures_K=(600, 1000),
...                 test_temperatures_K=(800,), time_budget_s=1800,
...                 path="lfp-light.pt")                              # doctest: +SKIP
>>> light.report["force_mae"], len(light.report["rounds"])            # doctest: +SKIP
>>> nnp_lab.md(cell, light, temperature_K=800, steps=10_000)          # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms

from nnp_lab.errors import InputError, StructureError
from nnp_lab.models.data import (
    Dataset,
    LangevinReplicas,
    _float_list,
    _positive_int,
    _progress,
    min_distance,
    rattled,
    strained,
)
from nnp_lab.models.training import (
    TrainReport,
    _errors,
    _frames,
    forget_cached_model,
    train,
)
from nnp_lab.potentials.base import PROPERTIES, Potential, has_stress
from nnp_lab.potentials.torch_model import (
    EnergyModel,
    GraphBatch,
    TorchModelPotential,
    load_model_file,
    save_model,
)
from nnp_lab.threads import torch_threads

__all__ = ["distill", "ARCHITECTURES", "committee_disagreement"]

logger = logging.getLogger(__name__)

#: Architectures :func:`distill` can build, with light default settings chosen for speed
#: (~10 ms per MD step for ~60 atoms on one CPU core). A module's own ``LIGHT_SETTINGS``
#: (TeaNet has them) replace the settings here; ``**architecture_options`` override both.
ARCHITECTURES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "teanet": (
        "nnp_lab.models.teanet",
        "TeaNet",
        {"layer_cutoffs": [3.5, 5.0], "n_scalar": 32, "n_vector": 8, "n_tensor": 4, "n_rbf": 8},
    ),
    "schnet": (
        "nnp_lab.models.schnet",
        "SchNet",
        {"cutoff": 5.0, "n_features": 32, "n_interactions": 2, "n_rbf": 16},
    ),
    "behler-parrinello": ("nnp_lab.models.behler_parrinello", "BehlerParrinello", {}),
}
_ALIASES = {"behler_parrinello": "behler-parrinello", "bp": "behler-parrinello",
            "behlerparrinello": "behler-parrinello"}

#: Largest teacher force (eV/Å) of a frame that is still added to the training data.
MAX_LABEL_FORCE = 30.0
#: Restarts (from the last trusted frame) of one student trajectory per round.
MAX_RESTARTS = 4
#: The final training stops after this many epochs without a better validation error (so
#: a converged distillation does not spend the rest of its budget on it).
FINAL_PATIENCE = 100


def _build_model(architecture: Any, elements: list[int], options: dict[str, Any],
                 seed: int) -> tuple[EnergyModel, str, dict[str, Any]]:
    if isinstance(architecture, type) and issubclass(architecture, EnergyModel):
        cls, name, opts = architecture, architecture.__name__, dict(options)
    else:
        if not isinstance(architecture, str):
            raise InputError(
                f"architecture must be a name ({', '.join(ARCHITECTURES)}) or an EnergyModel "
                f"class, got {architecture!r}"
            )
        key = architecture.strip().lower()
        key = _ALIASES.get(key, key)
        if key not in ARCHITECTURES:
            raise InputError(
                f"unknown architecture {architecture!r}; choose one of "
                f"{', '.join(ARCHITECTURES)}"
            )
        module, clsname, defaults = ARCHITECTURES[key]
        try:
            mod = importlib.import_module(module)
            cls = getattr(mod, clsname)
        except (ImportError, AttributeError) as exc:
            raise InputError(f"architecture {key!r} is not available here ({exc})") from None
        # an architecture's own light settings, when it publishes them, win over ours
        defaults = dict(getattr(mod, "LIGHT_SETTINGS", defaults))
        name = key
        opts = dict(defaults)
        if key == "teanet" and "cutoff" in options and "layer_cutoffs" not in options:
            rc = float(options["cutoff"])
            opts["layer_cutoffs"] = [min(c, rc) for c in opts["layer_cutoffs"]]
            opts["layer_cutoffs"][-1] = rc
            opts.pop("cutoff", None)
            options = {k: v for k, v in options.items() if k != "cutoff"}
        opts.update(options)
    torch.manual_seed(seed)
    try:
        model = cls(elements=elements, **opts)
    except TypeError as exc:
        raise InputError(f"bad options for {name}: {exc}") from None
    return model, name, opts


def committee_disagreement(
    models: Sequence[EnergyModel], structures: Sequence[Atoms], *, batch_size: int = 16
) -> np.ndarray:
    """Largest per-atom force disagreement of a committee on each structure (eV/Å).

    For every atom, the RMS deviation of the members' force vectors from their mean,
    ``σ_i = sqrt(mean_k |F_ki − F̄_i|²)``; the value of a structure is ``max_i σ_i``
    (DP-GEN's ``max_devi_f``). One graph per batch is shared by all members.

    Parameters
    ----------
    models
        Two or more models (same cutoff).
    structures
        Structures to score.
    batch_size
        Structures per forward pass.

    Returns
    -------
    numpy.ndarray
        Shape ``(len(structures),)``.
    """
    if len(models) < 2:
        raise InputError("a committee needs at least two models")
    param = next(iter(models[0].parameters()))
    cutoff = max(float(m.cutoff) for m in models)
    out = []
    for b in range(0, len(structures), batch_size):
        chunk = list(structures[b : b + batch_size])
        graph = GraphBatch.from_structures(chunk, cutoff, dtype=param.dtype, device=param.device)
        forces = []
        for m in models:
            _, f, _ = graph.energy_forces_virial(m, stress=False)
            forces.append(f.detach().double())
        stack = torch.stack(forces)  # (K, n_atoms, 3)
        dev = stack - stack.mean(0, keepdim=True)
        sigma = torch.sqrt((dev * dev).sum(-1).mean(0))  # (n_atoms,)
        n = graph.n_atoms.tolist()
        for part in torch.split(sigma, n):
            out.append(float(part.max()) if part.numel() else 0.0)
    return np.asarray(out)


def _jsonable(value: Any) -> Any:
    from nnp_lab.models.training import _jsonable as j

    return j(value)


def distill(
    teacher: Potential | str | None,
    atoms: Atoms | Sequence[Atoms],
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
) -> TorchModelPotential:
    """Distil a light potential for ``atoms`` from ``teacher`` by active learning.

    See the module docstring for the procedure.

    Parameters
    ----------
    teacher
        The reference :class:`~nnp_lab.potentials.Potential`, a registered name (e.g.
        ``"sevennet-0"``) or None for the default universal model.
    atoms
        The system(s) to learn: one structure or a list (same elements are fine; all
        structures are sampled and simulated).
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
    TorchModelPotential
        The distilled model, loaded from the saved file. ``potential.report`` is a dict
        with ``force_mae``, ``force_rmse`` (eV/Å), ``energy_mae_per_atom``,
        ``energy_rmse_per_atom`` (eV/atom) on the held-out frames, ``rounds`` (one dict per
        round: ``round``, ``n_frames``, ``n_new``, ``max_disagreement``,
        ``mean_disagreement``, ``md_steps``, ``stopped_trajectories`` (restarts and stops),
        ``val_force_mae``, ``val_energy_mae_per_atom``, ``test_force_mae``, ``time_s``),
        ``converged``,
        ``stop_reason``, timings, and the paths of the model and data files.

    Raises
    ------
    InputError
        Bad options, an unknown architecture, or elements the teacher does not cover.
    """
    t0 = time.perf_counter()
    from nnp_lab.potentials.registry import resolve_potential

    # -- inputs ------------------------------------------------------------------------------
    if isinstance(atoms, Atoms):
        structures = [atoms]
    else:
        structures = list(atoms) if atoms is not None else []
    if not structures:
        raise InputError("distill needs a structure (an ase.Atoms) or a list of them")
    for k, a in enumerate(structures):
        if not isinstance(a, Atoms):
            raise InputError(f"structure {k} is a {type(a).__name__}, not an ase.Atoms")
    temps = _float_list("temperatures_K", temperatures_K)
    if not temps or min(temps) <= 0:
        raise InputError(f"temperatures_K must hold temperatures > 0 K, got {temperatures_K!r}")
    test_temps = temps if test_temperatures_K is None else _float_list(
        "test_temperatures_K", test_temperatures_K)
    if test_temps and min(test_temps) <= 0:
        raise InputError("test_temperatures_K must be > 0 K")
    committee_size = _positive_int("committee_size", committee_size, 2)
    max_rounds = _positive_int("max_rounds", max_rounds, 0)
    md_steps_per_round = _positive_int("md_steps_per_round", md_steps_per_round)
    check_interval = _positive_int("check_interval", check_interval)
    frames_per_round = _positive_int("frames_per_round", frames_per_round)
    replicas_per_temperature = _positive_int("replicas_per_temperature",
                                             replicas_per_temperature)
    n_initial = _positive_int("n_initial", n_initial, 0)
    n_test = _positive_int("n_test", n_test, 0)
    test_md_steps = _positive_int("test_md_steps", test_md_steps)
    factor = 1 if time_budget_s is None else 10
    epochs_initial = 150 * factor if epochs_initial is None else epochs_initial
    epochs_per_round = 40 * factor if epochs_per_round is None else epochs_per_round
    final_epochs = 300 * factor if final_epochs is None else final_epochs
    for name, value in (("epochs_initial", epochs_initial), ("final_epochs", final_epochs),
                        ("epochs_per_round", epochs_per_round)):
        _positive_int(name, value, 0)
    for name, value in (("force_threshold", force_threshold), ("timestep_fs", timestep_fs),
                        ("stop_factor", stop_factor), ("friction_per_fs", friction_per_fs)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise InputError(f"{name} must be a number > 0, got {value!r}")
    if time_budget_s is not None and (
        isinstance(time_budget_s, bool) or not isinstance(time_budget_s, (int, float))
        or not time_budget_s > 0
    ):
        raise InputError(f"time_budget_s must be a number > 0 or None, got {time_budget_s!r}")
    rattles = _float_list("rattle", rattle) or [0.05]

    pot = resolve_potential(teacher)
    for a in structures:
        pot.check(a)  # covered elements and a sane geometry, before any work
    elements = sorted(set(int(z) for a in structures for z in np.unique(a.numbers)))

    # quick validation of the architecture before spending teacher time
    probe, arch_name, arch_opts = _build_model(architecture, elements, architecture_options, seed)
    cutoff = float(probe.cutoff)

    # -- files ----------------------------------------------------------------------------------
    tmpdir = None
    if path is None:
        tmpdir = tempfile.mkdtemp(prefix="nnp_lab-distill-")
        path = Path(tmpdir) / "distilled.pt"
    path = Path(path).expanduser()
    if path.suffix != ".pt":
        path = path.with_suffix(".pt")
    path.parent.mkdir(parents=True, exist_ok=True)
    data_path = path.with_suffix(".db")
    test_path = path.with_name(path.stem + "-test.db")
    for p in (data_path, test_path):
        if p.exists():
            p.unlink()  # a fresh run: never mix data of an earlier one
    dataset = Dataset(data_path)
    test_set = Dataset(test_path)

    def remaining() -> float:
        if time_budget_s is None:
            return math.inf
        return time_budget_s - (time.perf_counter() - t0)

    rng = np.random.default_rng(seed)
    timing = {"teacher_s": 0.0, "training_s": 0.0, "md_s": 0.0}
    n_labelled = 0
    rounds: list[dict[str, Any]] = []
    stop_reason = "max_rounds"
    converged = False
    interrupted = False
    log = logger.info if progress else logger.debug

    committee: list[EnergyModel] = []
    val_ids: list[int] = []
    reports: list[TrainReport | None] = []

    def split_views() -> tuple[Dataset, Dataset]:
        all_ids = set(range(len(dataset)))
        val = sorted(set(val_ids) & all_ids)
        return dataset.subset(sorted(all_ids - set(val))), dataset.subset(val)

    def assign_validation(new: list[int]) -> None:
        for i in new:
            if rng.random() < validation_fraction:
                val_ids.append(i)

    def label(frames: list[Atoms], **meta: Any) -> list[int]:
        """Teacher labels in one batch; drops unphysical frames; writes them at once."""
        nonlocal n_labelled
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
        timing["teacher_s"] += time.perf_counter() - t
        n_labelled += len(good)
        keep = [(f, r) for f, r in zip(good, results)
                if np.all(np.isfinite(r["forces"]))
                and np.abs(r["forces"]).max() < MAX_LABEL_FORCE]
        if len(keep) < len(good):
            logger.info("distill: %d frame(s) with teacher forces above %g eV/Å not used",
                        len(good) - len(keep), MAX_LABEL_FORCE)
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
        dataset._write([f for f, _ in keep], [r for _, r in keep], pot,
                       kind=meta.pop("kind"), info=meta, per_frame=per_frame)
        return list(range(start, len(dataset)))

    def train_member(k: int, epochs: int, budget: float | None, *, final: bool = False) -> None:
        t = time.perf_counter()
        train_view, val_view = split_views()
        use_val = val_view if len(val_view) else None
        first = reports[k] is None
        # cosine decay over each call (over its time budget when it has one): a fresh
        # committee starts at lr, warm-started rounds at lr / 2, the final model at lr
        model, rep = train(
            committee[k], train_view, validation=use_val,
            validation_fraction=0.0 if use_val is None else 0.1,
            epochs=max(epochs, 1), batch_size=batch_size,
            lr=lr if (first or final) else lr * 0.5,
            energy_weight=energy_weight, force_weight=force_weight,
            patience=FINAL_PATIENCE if final else None, schedule="cosine", min_lr=lr / 100,
            seed=seed + 1000 * k + len(rounds), device=device, threads=threads,
            live=False, time_budget_s=budget, reference_energies="auto",
        )
        committee[k] = model
        reports[k] = rep
        timing["training_s"] += time.perf_counter() - t
        if rep.interrupted:
            raise KeyboardInterrupt

    rounds_bar = None
    try:
        # -- 1. held-out test frames from teacher MD -------------------------------------
        if n_test and test_temps:
            t = time.perf_counter()
            _teacher_md_frames(structures, pot, test_temps, test_md_steps, n_test,
                               timestep_fs, friction_per_fs, rng, test_set, progress)
            timing["teacher_s"] += time.perf_counter() - t
            n_labelled += len(structures) * len(test_temps) * test_md_steps
            log("distill: %d held-out test frames from teacher MD at %s K (%.0f s)",
                len(test_set), test_temps, time.perf_counter() - t)

        # -- 2. initial data ----------------------------------------------------------------
        initial: list[Atoms] = []
        for k, a in enumerate(structures):
            base = a.copy()
            base.info = {"source": k, "kind": "input"}
            initial.append(base)
            periodic = has_stress(a) and strain
            n_strain = n_initial // 4 if periodic else 0
            for j in range(n_initial - n_strain):
                f = rattled(a, rattles[j % len(rattles)], rng)
                f.info = {"source": k, "kind": "rattle"}
                initial.append(f)
            for _ in range(n_strain):
                f = strained(a, float(strain), rng, rattle=min(rattles))
                f.info = {"source": k, "kind": "strain"}
                initial.append(f)
        bar = _progress(len(initial), f"labelling with {pot.name}", progress)
        new_ids: list[int] = []
        for b in range(0, len(initial), 8):
            new_ids += label(initial[b : b + 8], kind="rattle")
            bar.update(len(initial[b : b + 8]))
        bar.close()
        if not new_ids:
            raise InputError("the teacher could not label any initial frame")
        assign_validation(new_ids)
        if len(val_ids) == 0 and len(dataset) >= 5:
            val_ids.append(int(rng.integers(len(dataset))))
        log("distill: %d initial frames labelled by %s", len(dataset), pot.name)

        # -- 3. committee -------------------------------------------------------------------
        committee = [probe] + [
            _build_model(architecture, elements, architecture_options, seed + k)[0]
            for k in range(1, committee_size)
        ]
        reports = [None] * committee_size
        # time plan (with a budget): of what is left now, ~15 % for the first committee
        # fit, ~8 % per round (training; MD and labels come on top), the rest (>= 35 %)
        # for the final training of the best model
        left_after_init = remaining()
        budget_train = None
        if time_budget_s is not None:
            budget_train = max(0.15 * left_after_init, 1.0) / committee_size
        for k in range(committee_size):
            train_member(k, epochs_initial, budget_train)

        # -- 4. active-learning rounds ---------------------------------------------------------
        replicas_init = []
        replica_temp = []
        for k, a in enumerate(structures):
            for T in temps:
                for _ in range(replicas_per_temperature):
                    start = a.copy()
                    start.info = {"source": k}
                    replicas_init.append(start)
                    replica_temp.append(T)
        state: list[Atoms] = [a.copy() for a in replicas_init]
        trusted: list[Atoms] = [a.copy() for a in replicas_init]
        ref_min = [0.7 * min_distance(a, 4.0) for a in replicas_init]
        rounds_bar = _progress(max_rounds, "distill rounds", progress, "round")
        round_time = 0.0
        for r in range(1, max_rounds + 1):
            if time_budget_s is not None and (
                remaining() < 1.2 * round_time + 0.35 * left_after_init
            ):
                stop_reason = "time budget"
                break
            t_round = time.perf_counter()
            t = time.perf_counter()
            with torch_threads(threads):
                student_pot = TorchModelPotential(committee[0], dtype=_dtype_name(committee[0]),
                                                  device=device)
                cands, scores, n_steps, stopped = _student_md(
                    student_pot, committee, state, trusted, replica_temp, ref_min,
                    md_steps_per_round, check_interval, timestep_fs, friction_per_fs,
                    force_threshold, stop_factor, rng,
                )
            timing["md_s"] += time.perf_counter() - t
            max_dis = float(max(scores)) if scores else 0.0
            mean_dis = float(np.mean(scores)) if scores else 0.0
            picked = _pick(cands, scores, force_threshold, frames_per_round,
                           2 * check_interval, stop_factor * force_threshold)
            info = {
                "round": r,
                "md_steps": int(n_steps),
                "stopped_trajectories": int(stopped),
                "max_disagreement": max_dis,
                "mean_disagreement": mean_dis,
                "n_candidates": int(sum(s > force_threshold for s in scores)),
            }
            if not picked and stopped == 0:
                converged = True
                stop_reason = "converged"
                info.update(n_new=0, n_frames=len(dataset), time_s=time.perf_counter() - t_round)
                _round_errors(info, committee, reports, test_set, batch_size)
                rounds.append(info)
                rounds_bar.update(1)
                log("distill: round %d converged (max disagreement %.3f eV/Å < %.3f)", r,
                    max_dis, force_threshold)
                break
            frames = [cands[i] for i in picked]
            new_ids = label(frames, kind="active", round=r)
            assign_validation(new_ids)
            # retrain the committee from its current weights
            budget_round = None
            if time_budget_s is not None:
                budget_round = max(0.08 * left_after_init, 1.0) / committee_size
            for k in range(committee_size):
                train_member(k, epochs_per_round, budget_round)
            info.update(n_new=len(new_ids), n_frames=len(dataset),
                        time_s=time.perf_counter() - t_round)
            _round_errors(info, committee, reports, test_set, batch_size)
            rounds.append(info)
            round_time = info["time_s"]
            rounds_bar.update(1)
            rounds_bar.set_postfix_str(
                f"frames {len(dataset)} dis {max_dis:.2f} val F {info['val_force_mae']:.3f}",
                refresh=False,
            )
            log("distill: round %d: %d steps, %d stopped, max/mean disagreement %.3f/%.3f "
                "eV/Å, +%d frames (%d), val force MAE %.3f, test %.3f eV/Å, %.0f s", r,
                n_steps, stopped, max_dis, mean_dis, len(new_ids), len(dataset),
                info["val_force_mae"], info.get("test_force_mae", float("nan")),
                info["time_s"])
        else:
            stop_reason = "max_rounds"

        # -- 5. final training of the best member ------------------------------------------
        best = int(np.argmin([rep.force_mae if rep is not None and np.isfinite(rep.force_mae)
                              else math.inf for rep in reports]))
        committee = [committee[best]] + [m for k, m in enumerate(committee) if k != best]
        reports = [reports[best]] + [rep for k, rep in enumerate(reports) if k != best]
        if final_epochs and remaining() > 5:
            budget = None if time_budget_s is None else max(remaining() - 10.0, 1.0)
            train_member(0, final_epochs, budget, final=True)
    except KeyboardInterrupt:
        interrupted = True
        stop_reason = "interrupted"
        warnings.warn("distill interrupted: testing and saving the best model so far",
                      stacklevel=2)
    finally:
        if rounds_bar is not None:
            rounds_bar.close()

    if not committee or reports[0] is None:
        if interrupted:
            raise KeyboardInterrupt("distill interrupted before any model was trained")
        raise InputError("no model was trained")
    model = committee[0]
    model.eval()

    # -- 6. test and save -----------------------------------------------------------------
    with torch_threads(threads):
        test_err = _test_errors(model, test_set, batch_size)
    rep0 = reports[0]
    report: dict[str, Any] = {
        "force_mae": test_err["force_mae"],
        "force_rmse": test_err["force_rmse"],
        "energy_mae_per_atom": test_err["energy_mae_per_atom"],
        "energy_rmse_per_atom": test_err["energy_rmse_per_atom"],
        "n_test": len(test_set),
        "test_temperatures_K": test_temps,
        "temperatures_K": temps,
        "validation_force_mae": rep0.force_mae,
        "validation_energy_mae_per_atom": rep0.energy_mae_per_atom,
        "rounds": rounds,
        "n_rounds": len(rounds),
        "n_frames": len(dataset),
        "n_teacher_evaluations": n_labelled,
        "converged": converged,
        "stop_reason": stop_reason,
        "interrupted": interrupted,
        "architecture": arch_name,
        "architecture_options": arch_opts,
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
        "committee_size": committee_size,
        "force_threshold": force_threshold,
        "teacher": pot.name,
        "teacher_version": str(pot.version),
        "teacher_level_of_theory": str(pot.level_of_theory),
        "timing_s": {**timing, "total": time.perf_counter() - t0},
        "wall_time_s": time.perf_counter() - t0,
        "seed": seed,
        "path": str(path),
        "dataset": str(data_path),
        "test_dataset": str(test_path),
    }
    report = _jsonable(report)
    formula = structures[0].get_chemical_formula()
    metadata = {
        "name": path.stem,
        "version": "1",
        "level_of_theory": f"distilled from {pot.name} ({pot.level_of_theory})",
        "citation": pot.citation,
        "licence": f"derived from {pot.name} ({pot.licence})",
        "dtype": _dtype_name(model),
        "teacher": pot.name,
        "teacher_version": str(pot.version),
        "system": formula,
        "report": report,
    }
    with torch_threads(threads):
        save_model(model, path, metadata=metadata)
    forget_cached_model(path)
    light = load_model_file(path, device=device)
    light.report = report  # type: ignore[attr-defined]
    log("distill: %s -> %s in %.0f s (%s): test force MAE %.3f eV/Å, energy MAE %.1f "
        "meV/atom, %d frames, %d rounds", pot.name, path, report["wall_time_s"], stop_reason,
        report["force_mae"], 1000 * report["energy_mae_per_atom"], len(dataset), len(rounds))
    return light


def _dtype_name(model: torch.nn.Module) -> str:
    p = next(iter(model.parameters()))
    return str(p.dtype).replace("torch.", "")


def _test_errors(model: EnergyModel, test_set: Dataset, batch_size: int) -> dict[str, float]:
    if len(test_set) == 0:
        nan = float("nan")
        return {"force_mae": nan, "force_rmse": nan, "energy_mae_per_atom": nan,
                "energy_rmse_per_atom": nan}
    p = next(iter(model.parameters()))
    frames = _frames(test_set, float(model.cutoff), p.dtype, str(p.device))
    return _errors(model, frames, max(batch_size, 8), stress=False)


def _round_errors(info: dict[str, Any], committee: list[EnergyModel],
                  reports: list[TrainReport | None], test_set: Dataset, batch_size: int) -> None:
    rep = reports[0]
    info["val_force_mae"] = float("nan") if rep is None else rep.force_mae
    info["val_energy_mae_per_atom"] = float("nan") if rep is None else rep.energy_mae_per_atom
    if len(test_set):
        with torch_threads(1):
            err = _test_errors(committee[0], test_set, batch_size)
        info["test_force_mae"] = err["force_mae"]
        info["test_energy_mae_per_atom"] = err["energy_mae_per_atom"]


def _teacher_md_frames(structures: list[Atoms], pot: Potential, temps: list[float],
                       steps: int, n_frames: int, timestep_fs: float, friction: float,
                       rng: np.random.Generator, out: Dataset, progress: bool) -> None:
    """Teacher NVT runs (all temperatures in one batch per step); ``n_frames`` evenly spaced
    frames of the second half of each run are written to ``out`` as they come."""
    replicas, meta = [], []
    for k, a in enumerate(structures):
        for T in temps:
            replicas.append(a)
            meta.append((k, T))
    at = set(np.unique(np.linspace(steps // 2, steps, n_frames + 1)[1:].round().astype(int)))
    bar = _progress(steps, f"teacher MD for test frames ({pot.name})", progress, "step")
    dyn = LangevinReplicas(replicas, pot, [T for _, T in meta], timestep_fs=timestep_fs,
                           friction_per_fs=friction, rng=rng, initial_temperature_factor=2.0)
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
                out._write(frames, results, pot, kind="test",
                           per_frame=[{"source": k, "temperature_K": T, "md_step": step}
                                      for k, T in meta])
    finally:
        bar.close()


def _student_md(
    student: TorchModelPotential,
    committee: list[EnergyModel],
    state: list[Atoms],
    trusted: list[Atoms],
    temps: list[float],
    ref_min: list[float],
    steps: int,
    check_interval: int,
    timestep_fs: float,
    friction: float,
    threshold: float,
    stop_factor: float,
    rng: np.random.Generator,
) -> tuple[list[Atoms], list[float], int, int]:
    """Run the student MD for all replicas from ``state``; return candidate frames with their
    committee disagreement, the steps done and the number of stopped trajectories.
    ``state`` and ``trusted`` are updated in place for the next round."""
    for m in committee:
        m.eval()
    dyn = LangevinReplicas(state, student, temps, timestep_fs=timestep_fs,
                           friction_per_fs=friction, rng=rng, keep_velocities=True,
                           initial_temperature_factor=2.0)
    cands: list[Atoms] = []
    scores: list[float] = []
    n = len(state)
    stopped = 0
    restarts = [0] * n
    stop_level = stop_factor * threshold
    for step in range(1, steps + 1):
        results = dyn.step(("energy", "forces"))
        bad = []
        for k in range(n):
            if not dyn.active[k]:
                continue
            f = results[k]["forces"]
            if (not np.all(np.isfinite(f)) or np.abs(f).max() > 50.0
                    or dyn.temperature(k) > 4 * temps[k] + 500):
                bad.append(k)
        if step % check_interval and not bad and step != steps:
            continue
        active = [k for k in range(n) if dyn.active[k]]
        if not active:
            break
        frames = [dyn.snapshot(k) for k in active]
        for fr, k in zip(frames, active):
            fr.calc = None
            fr.info = {"source": state[k].info.get("source", 0), "temperature_K": temps[k],
                       "replica": k, "md_step": step}
        dis = committee_disagreement(committee, frames)
        for fr, k, d in zip(frames, active, dis):
            unphysical = k in bad or min_distance(fr, 2.0) < ref_min[k]
            if not unphysical:
                cands.append(fr)
                scores.append(float(d))
            if unphysical or d > stop_level:
                # left the region the committee knows: restart from the last trusted frame
                # with new velocities (a new direction), a few times per round
                stopped += 1
                logger.debug("distill: trajectory %d stopped at step %d (%s)", k, step,
                             "unphysical" if unphysical else f"disagreement {d:.2f} eV/Å")
                if restarts[k] < MAX_RESTARTS:
                    restarts[k] += 1
                    dyn.reset(k, trusted[k])
                else:
                    dyn.active[k] = False
            elif d < threshold:
                trusted[k] = dyn.snapshot(k)
                trusted[k].calc = None
                trusted[k].info = dict(state[k].info)
    for k in range(n):
        if dyn.active[k]:
            new = dyn.snapshot(k)
            new.calc = None
            new.info = dict(state[k].info)
            state[k] = new
        else:
            # restart from the last trusted frame with fresh velocities
            new = trusted[k].copy()
            new.set_velocities(np.zeros((len(new), 3)))
            new.info = dict(state[k].info)
            state[k] = new
    return cands, scores, dyn.n_steps, stopped


def _pick(cands: list[Atoms], scores: list[float], threshold: float, limit: int,
          min_gap: int, stop_level: float = math.inf) -> list[int]:
    """Indices of up to ``limit`` candidates above ``threshold``: those up to
    ``stop_level`` first, largest disagreement first (DP-GEN's trust window), then the ones
    beyond it, closest to it first (they are often far from anything physical); frames at
    least ``min_gap`` steps apart within one trajectory are preferred (consecutive checks
    are nearly the same structure)."""
    inside = [int(i) for i in np.argsort(scores)[::-1] if threshold < scores[i] <= stop_level]
    beyond = [int(i) for i in np.argsort(scores) if scores[i] > stop_level]
    order = inside + beyond
    picked: list[int] = []

    def close(i: int, j: int) -> bool:
        a, b = cands[i].info, cands[j].info
        return a["replica"] == b["replica"] and abs(a["md_step"] - b["md_step"]) < min_gap

    for i in order:
        if len(picked) >= limit:
            break
        if not any(close(i, j) for j in picked):
            picked.append(i)
    for i in order:  # fill up with the skipped ones if there is room
        if len(picked) >= limit:
            break
        if i not in picked:
            picked.append(i)
    return picked
