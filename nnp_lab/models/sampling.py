"""Sampling training data: structures around the ones you give, labelled by a teacher.

:func:`sample` makes structures to learn from around the ones you give it — rattled copies,
randomly strained cells, snapshots of short NVT runs with the teacher at several
temperatures, and (for molecules) ANI-1 style normal-mode displacements — labels them with
the teacher in batches (one :meth:`~nnp_lab.potentials.Potential.evaluate` call per batch)
and writes every labelled batch to a :class:`~nnp_lab.models.Dataset` as soon as it is
labelled, so an interrupted sampling run keeps everything labelled so far. The structure
generators (:func:`rattled`, :func:`strained`, :func:`normal_mode_displaced`) and
:func:`min_distance` are shared with :func:`nnp_lab.models.distill`.

Examples
--------
>>> from nnp_lab import build
>>> from nnp_lab.models import sample, Dataset
>>> cu = build.supercell(build.bulk("Cu", "fcc", a=3.61, cubic=True), 2)
>>> data = sample(cu, "emt", rattle=(0.05, 0.1), strain=0.02, md_temperatures_K=(300, 900),
...               n_per_structure=20, path="cu.db")              # doctest: +SKIP
>>> len(data), data.kinds()                                       # doctest: +SKIP
(61, {'input': 1, 'rattle': 20, 'strain': 20, 'md': 20})
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from ase import Atoms, units

from nnp_lab.errors import InputError, StructureError
from nnp_lab.models._common import progress_bar, resolve_teacher, structure_list
from nnp_lab.models.dataset import DEFAULT_BATCH_SIZE, Dataset
from nnp_lab.potentials.base import PROPERTIES, Potential, has_stress
from nnp_lab.simulate._replicas import LangevinReplicas, free_mask
from nnp_lab.validation import integer, number, number_list

__all__ = [
    "sample",
    "compute_normal_modes",
    "normal_mode_displaced",
    "rattled",
    "strained",
    "min_distance",
]

# the name this module's messages had before the split of nnp_lab.models.data (scripts
# filter on it)
logger = logging.getLogger("nnp_lab.models.data")


def min_distance(atoms: Atoms, cutoff: float = 3.0) -> float:
    """Smallest interatomic distance in Å, periodic images included (``inf`` when none is
    within ``cutoff``).

    Parameters
    ----------
    atoms
        The structure.
    cutoff
        Search radius in Å.
    """
    from vesin import NeighborList

    box = np.asarray(atoms.cell) if atoms.pbc.any() else np.zeros((3, 3))
    d = NeighborList(cutoff=cutoff, full_list=False).compute(
        atoms.positions, box, bool(atoms.pbc.any()), quantities="d"
    )
    d = np.asarray(d)
    return float(d.min()) if d.size else math.inf


# ----------------------------------------------------------------------------------------
# Structure generators
# ----------------------------------------------------------------------------------------
def rattled(atoms: Atoms, amplitude: float, rng: np.random.Generator) -> Atoms:
    """A copy with Gaussian displacements of standard deviation ``amplitude`` Å per
    Cartesian component on every atom not fixed by ``FixAtoms``."""
    new = atoms.copy()
    new.calc = None
    mask = free_mask(atoms)
    disp = rng.normal(scale=amplitude, size=(len(atoms), 3))
    disp[~mask] = 0.0
    new.positions = atoms.positions + disp
    return new


def strained(
    atoms: Atoms, max_strain: float, rng: np.random.Generator, rattle: float = 0.0
) -> Atoms:
    """A copy in a randomly deformed cell: symmetric strain with components uniform in
    ``[-max_strain, max_strain]`` (atoms follow the cell), then an optional rattle."""
    eps = rng.uniform(-max_strain, max_strain, size=(3, 3))
    eps = 0.5 * (eps + eps.T)
    new = atoms.copy()
    new.calc = None
    new.set_cell(np.asarray(atoms.cell) @ (np.eye(3) + eps), scale_atoms=True)
    if rattle > 0:
        new = rattled(new, rattle, rng)
    return new


def compute_normal_modes(
    atoms: Atoms, teacher: Potential, *, delta: float = 0.01
) -> tuple[np.ndarray, np.ndarray]:
    """Vibrational normal modes of a molecule from the teacher's finite-difference Hessian.

    All ``6 n`` displaced copies are evaluated in one batched call (the same recipe as
    :func:`nnp_lab.simulate.vibrations`, kept here so that :mod:`nnp_lab.models` does not
    depend on the run layer). Translations and rotations (the 6, or 5 for a linear
    molecule, modes of smallest curvature) are dropped.

    Parameters
    ----------
    atoms
        A molecule, ideally at a minimum of the teacher.
    teacher
        The potential.
    delta
        Finite-difference displacement in Å.

    Returns
    -------
    (modes, force_constants)
        Cartesian displacement patterns ``(m, n, 3)``, each of unit length, and their force
        constants ``q^T H q`` in eV/Å² (negative for imaginary modes).
    """
    n = len(atoms)
    displaced = []
    for i in range(n):
        for c in range(3):
            for sign in (1.0, -1.0):
                new = atoms.copy()
                new.calc = None
                new.positions[i, c] += sign * delta
                displaced.append(new)
    results = teacher.evaluate(displaced, ("forces",))
    hessian = np.zeros((3 * n, 3 * n))
    for k in range(3 * n):
        f_plus = results[2 * k]["forces"].ravel()
        f_minus = results[2 * k + 1]["forces"].ravel()
        hessian[k] = -(f_plus - f_minus) / (2 * delta)
    hessian = 0.5 * (hessian + hessian.T)
    inv_sqrt_m = np.repeat(1.0 / np.sqrt(atoms.get_masses()), 3)
    mw = hessian * inv_sqrt_m[:, None] * inv_sqrt_m[None, :]
    evals, evecs = np.linalg.eigh(mw)
    n_rigid = 3 if n == 1 else (5 if _is_linear(atoms) else 6)
    order = np.argsort(np.abs(evals))[n_rigid:]
    modes = []
    constants = []
    for k in sorted(order, key=lambda j: evals[j]):
        q = evecs[:, k] * inv_sqrt_m
        q /= np.linalg.norm(q)
        modes.append(q.reshape(n, 3))
        constants.append(float(q @ hessian @ q))
    return np.array(modes).reshape(-1, n, 3), np.array(constants)


def _is_linear(atoms: Atoms) -> bool:
    if len(atoms) <= 2:
        return True
    moments = atoms.get_moments_of_inertia()
    return bool(moments.min() < 1e-3 * max(moments.max(), 1e-12))


def normal_mode_displaced(
    atoms: Atoms,
    modes: np.ndarray,
    force_constants: np.ndarray,
    temperature_K: float,
    rng: np.random.Generator,
    *,
    max_amplitude: float = 1.0,
) -> Atoms:
    """ANI-1 normal-mode sampling: one random displacement along the normal modes.

    Draws ``N_f`` uniform numbers ``c_i`` scaled so that ``Σ c_i`` is uniform in [0, 1],
    and displaces along mode ``i`` by ``R_i = ±sqrt(3 c_i N_a k_B T / K_i)`` (Smith, Isayev
    and Roitberg, Chem. Sci. 8, 3192 (2017)); ``|K_i|`` is used for imaginary modes and each
    ``|R_i|`` is capped at ``max_amplitude`` Å.
    """
    nf = len(force_constants)
    new = atoms.copy()
    new.calc = None
    if nf == 0:
        return new
    c = rng.random(nf)
    c = c / c.sum() * rng.random()
    kT = units.kB * temperature_K
    k_abs = np.maximum(np.abs(force_constants), 1e-3)
    amplitude = np.sqrt(3.0 * c * len(atoms) * kT / k_abs)
    amplitude = np.minimum(amplitude, max_amplitude) * rng.choice((-1.0, 1.0), size=nf)
    new.positions = atoms.positions + np.tensordot(amplitude, modes, axes=1)
    return new


# ----------------------------------------------------------------------------------------
# sample()
# ----------------------------------------------------------------------------------------
def sample(
    structures: Atoms | Sequence[Atoms],
    teacher: Potential | str | None = None,
    *,
    include_inputs: bool = True,
    rattle: float | Sequence[float] | None = 0.05,
    strain: float | None = 0.02,
    md_temperatures_K: float | Sequence[float] | None = None,
    md_steps: int = 200,
    timestep_fs: float = 1.0,
    normal_modes: float | Sequence[float] | None = None,
    n_per_structure: int = 10,
    batch_size: int = DEFAULT_BATCH_SIZE,
    seed: int | None = 0,
    path: str | os.PathLike | Dataset | None = None,
    progress: bool = True,
) -> Dataset:
    """Sample structures around ``structures`` and label them with ``teacher``.

    For every input structure and every enabled kind, ``n_per_structure`` frames are made
    (spread evenly over that kind's settings) and labelled with energy, forces and — for
    periodic cells — stress, one teacher call per ``batch_size`` frames. Each labelled batch
    is written to the dataset at once: interrupting the call (Ctrl-C) keeps everything
    labelled so far.

    Kinds
    -----
    ``input``
        The structures as given.
    ``rattle``
        Gaussian displacements of every free atom (std ``rattle`` Å per component; one value
        or several amplitudes).
    ``strain``
        Periodic structures only: a random symmetric strain with components uniform in
        ``[-strain, strain]`` (atoms follow the cell), plus a 0.02 Å rattle so that forces
        are not zero by symmetry.
    ``md``
        Snapshots of NVT Langevin runs (friction 0.01 fs⁻¹) of ``md_steps`` steps with the
        teacher, one replica per structure and temperature, all replicas advanced with one
        batched teacher call per step; velocities start at twice the target temperature
        (equipartition halves it within a few vibrations); snapshots are taken at evenly
        spaced steps of the second half of each run, and their labels are the MD's own
        force calls.
    ``normal_mode``
        Non-periodic structures (molecules) only: ANI-1 normal-mode sampling at the given
        temperature(s) along the teacher's normal modes (finite-difference Hessian). Relax
        the molecule with the teacher first.

    Parameters
    ----------
    structures
        One structure or a list (not modified).
    teacher
        A :class:`~nnp_lab.potentials.Potential`, a registered name or a model path; None
        means the default universal model.
    include_inputs
        Also label the input structures themselves.
    rattle
        Rattle amplitude(s) in Å; None or 0 switches rattling off.
    strain
        Largest strain component; None or 0 switches strained cells off.
    md_temperatures_K
        Temperature(s) in K of the teacher MD runs; None switches MD off.
    md_steps
        Steps per MD run.
    timestep_fs
        MD time step in fs.
    normal_modes
        Temperature(s) in K of normal-mode sampling; None switches it off.
    n_per_structure
        Frames per input structure for each enabled kind.
    batch_size
        Structures per teacher call.
    seed
        Seed of every random choice (same seed, same frames).
    path
        ``.db`` file to write (appended to when it exists), an open :class:`Dataset`, or
        None for a temporary dataset.
    progress
        Show a tqdm progress bar.

    Returns
    -------
    Dataset
        The dataset with the new frames (and any it held before).

    Raises
    ------
    InputError
        No structures, bad options, elements the teacher does not cover, or a structure the
        teacher cannot evaluate.

    Examples
    --------
    >>> data = sample(build.molecule("CCO"), "sevennet-0", rattle=None, strain=None,
    ...               normal_modes=(300, 600), n_per_structure=50)   # doctest: +SKIP
    """
    structures = structure_list(
        structures,
        "sample needs an ase.Atoms or a list of them",
        empty="sample needs at least one structure; got an empty list",
    )
    rattles = number_list("rattle", rattle)
    strain_max = number_list("strain", strain)
    if len(strain_max) > 1:
        raise InputError(f"strain must be one number (the largest component), got {strain!r}")
    md_temps = number_list("md_temperatures_K", md_temperatures_K)
    nm_temps = number_list("normal_modes", normal_modes)
    n_per = integer("n_per_structure", n_per_structure)
    batch_size = integer("batch_size", batch_size)
    md_steps = integer("md_steps", md_steps)
    timestep_fs = number("timestep_fs", timestep_fs, strict=True, unit="fs")
    if md_temps and any(t <= 0 for t in md_temps):
        raise InputError(f"md_temperatures_K must be > 0 K, got {md_temps}")
    integer("seed", seed, minimum=None, allow_none=True)

    pot = resolve_teacher(teacher)
    for atoms in structures:
        pot.check(atoms)  # elements covered, sane geometry: fail before any work

    dataset = path if isinstance(path, Dataset) else Dataset(path)
    if dataset.is_view:
        raise InputError("sample cannot write into a dataset view; pass the full Dataset")
    rng = np.random.default_rng(seed)

    periodic = [has_stress(a) for a in structures]
    molecules = [not a.pbc.any() for a in structures]
    if strain_max and not any(periodic):
        warnings.warn("strain is ignored: none of the structures is periodic", stacklevel=2)
    if nm_temps and not any(molecules):
        warnings.warn(
            "normal_modes is ignored: normal-mode sampling applies to molecules "
            "(non-periodic structures) only",
            stacklevel=2,
        )
    total = 0
    for k in range(len(structures)):
        total += int(include_inputs) + n_per * (
            bool(rattles)
            + bool(strain_max and periodic[k])
            + bool(md_temps)
            + bool(nm_temps and molecules[k])
        )
    if total == 0:
        raise InputError(
            "nothing to sample: every kind is switched off (pass rattle=, strain=, "
            "md_temperatures_K=, normal_modes= or include_inputs=True)"
        )
    bar = progress_bar(total, f"sampling with {pot.name}", progress)
    batch = _Batches(pot, dataset, batch_size, bar)
    queue, checked = batch.queue, batch.checked
    try:
        for k, atoms in enumerate(structures):
            if include_inputs:
                queue(atoms.copy(), kind="input", source=k)
            for j in range(n_per if rattles else 0):
                amp = rattles[j % len(rattles)]
                frame = checked(lambda: rattled(atoms, amp, rng), "rattle")
                if frame is not None:
                    queue(frame, kind="rattle", source=k, rattle=amp)
            if strain_max and periodic[k]:
                for _ in range(n_per):
                    frame = checked(lambda: strained(atoms, strain_max[0], rng, 0.02), "strain")
                    if frame is not None:
                        queue(frame, kind="strain", source=k, strain=strain_max[0])
            if nm_temps and molecules[k]:
                modes, consts = compute_normal_modes(atoms, pot)
                if np.any(consts < -1e-2):
                    warnings.warn(
                        f"structure {k} has {int(np.sum(consts < -1e-2))} imaginary normal "
                        "mode(s) with the teacher: relax it first for meaningful normal-mode "
                        "sampling",
                        stacklevel=2,
                    )
                for j in range(n_per):
                    T = nm_temps[j % len(nm_temps)]
                    frame = checked(
                        lambda: normal_mode_displaced(atoms, modes, consts, T, rng),
                        "normal-mode",
                    )
                    if frame is not None:
                        queue(frame, kind="normal_mode", source=k, temperature_K=T)
        batch.flush()
        if md_temps:
            _sample_md(structures, pot, md_temps, md_steps, timestep_fs, n_per, rng, dataset, bar)
    finally:
        bar.close()
    logger.info("sample: %s now holds %d frames (%s)", dataset.path, len(dataset), dataset.kinds())
    return dataset


class _Batches:
    """Frames waiting for the teacher: labelled and written ``batch_size`` at a time."""

    def __init__(self, pot: Potential, dataset: Dataset, batch_size: int, bar: Any) -> None:
        self.pot = pot
        self.dataset = dataset
        self.batch_size = batch_size
        self.bar = bar
        self.pending: list[tuple[Atoms, dict[str, Any]]] = []

    def queue(self, frame: Atoms, **meta: Any) -> None:
        """Add a frame with its row metadata (``kind``, ``source``...); label when full."""
        self.pending.append((frame, meta))
        if len(self.pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Label the waiting frames in one teacher call and write them, grouped by metadata."""
        if not self.pending:
            return
        frames = [f for f, _ in self.pending]
        results = self.pot.evaluate(frames, PROPERTIES)
        groups: dict[tuple, list[int]] = {}
        for j, (_, meta) in enumerate(self.pending):
            groups.setdefault(tuple(sorted(meta.items())), []).append(j)
        for key, js in groups.items():
            meta = dict(key)
            kind = meta.pop("kind")
            temp = meta.pop("temperature_K", None)
            self.dataset.write(
                [frames[j] for j in js],
                [results[j] for j in js],
                self.pot,
                kind=kind,
                temperature_K=temp,
                info=meta,
            )
        self.bar.update(len(self.pending))
        self.pending.clear()

    def checked(self, make: Callable[[], Atoms], what: str) -> Atoms | None:
        """Draw a frame, retrying a few times if atoms come too close."""
        for _ in range(10):
            frame = make()
            try:
                self.pot.check(frame)
                return frame
            except StructureError:
                continue
        # stacklevel 3: this method, sample(), its caller
        warnings.warn(f"skipped a {what} frame: atoms kept coming too close", stacklevel=3)
        return None


def _sample_md(
    structures: list[Atoms],
    pot: Potential,
    temps: list[float],
    md_steps: int,
    timestep_fs: float,
    n_per: int,
    rng: np.random.Generator,
    dataset: Dataset,
    bar: Any,
) -> None:
    """Teacher MD for every (structure, temperature), snapshots written as they come."""
    replicas, meta, counts = [], [], []
    for k, atoms in enumerate(structures):
        for j, T in enumerate(temps):
            n_frames = n_per // len(temps) + (1 if j < n_per % len(temps) else 0)
            if n_frames == 0:
                continue
            replicas.append(atoms)
            meta.append({"source": k, "temperature_K": T})
            counts.append(n_frames)
    if not replicas:
        return
    # snapshot steps: evenly spaced over the second half of the run (the first half
    # equilibrates from the given structure)
    steps_at = []
    for n_frames in counts:
        first = md_steps // 2
        picked = np.unique(np.linspace(first, md_steps, n_frames + 1)[1:].round().astype(int))
        steps_at.append(set(np.clip(picked, 1, md_steps).tolist()))
    all_steps = set().union(*steps_at)
    dyn = LangevinReplicas(
        replicas,
        pot,
        [m["temperature_K"] for m in meta],
        timestep_fs=timestep_fs,
        rng=rng,
        initial_temperature_factor=2.0,
    )
    for step in range(1, md_steps + 1):
        props = PROPERTIES if step in all_steps else ("energy", "forces")
        results = dyn.step(props)
        if step not in all_steps:
            continue
        # one transaction per snapshot step
        for r, at in enumerate(steps_at):
            if step in at:
                frame = dyn.snapshot(r)
                frame.calc = None
                result = results[r]
                assert result is not None  # sampling runs stop no replica
                dataset.write(
                    [frame],
                    [result],
                    pot,
                    kind="md",
                    temperature_K=meta[r]["temperature_K"],
                    info={"source": meta[r]["source"], "md_step": step},
                )
                bar.update(1)
