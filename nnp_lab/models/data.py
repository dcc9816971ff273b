"""Training data: structures labelled by a teacher potential, kept in an ``ase.db`` file.

:func:`sample` makes structures to learn from around the ones you give it — rattled copies,
randomly strained cells, snapshots of short NVT runs with the teacher at several
temperatures, and (for molecules) ANI-1 style normal-mode displacements — labels them with
the teacher in batches (one :meth:`~nnp_lab.potentials.Potential.evaluate` call per batch)
and writes every labelled batch to a :class:`Dataset` as soon as it is labelled, so an
interrupted sampling run keeps everything labelled so far.

A :class:`Dataset` is an SQLite ``ase.db`` file: energies, forces and stresses are stored as
the single-point results of each row, so ``ase db data.db`` and :func:`ase.db.connect` read
them too. Each row also records the teacher (name, version, level of theory), the sampling
kind and, where it applies, the temperature.

Examples
--------
>>> from nnp_lab import build
>>> from nnp_lab.models import sample, Dataset
>>> cu = build.supercell(build.bulk("Cu", "fcc", a=3.61, cubic=True), 2)
>>> data = sample(cu, "emt", rattle=(0.05, 0.1), strain=0.02, md_temperatures_K=(300, 900),
...               n_per_structure=20, path="cu.db")              # doctest: +SKIP
>>> len(data), data.kinds()                                       # doctest: +SKIP
(61, {'input': 1, 'rattle': 20, 'strain': 20, 'md': 20})
>>> Dataset("cu.db")[5].get_potential_energy()                     # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator

from nnp_lab.errors import InputError, StructureError
from nnp_lab.potentials.base import PROPERTIES, Potential, has_stress

__all__ = [
    "Dataset",
    "sample",
    "KINDS",
    "LangevinReplicas",
    "compute_normal_modes",
    "normal_mode_displaced",
    "rattled",
    "strained",
    "min_distance",
]

logger = logging.getLogger(__name__)

#: Sampling kinds recorded in the ``kind`` column of a dataset row.
KINDS = ("input", "rattle", "strain", "md", "normal_mode", "active", "given")

#: Format tag stored in the ``ase.db`` metadata of every dataset written here.
DATASET_FORMAT = "nnp_lab.dataset"

#: Row columns that are not copied into ``atoms.info`` (ase.db bookkeeping).
_RESERVED = {"id", "unique_id", "ctime", "mtime", "user", "calculator", "energy", "natoms"}

#: Default number of structures per teacher call.
DEFAULT_BATCH_SIZE = 8


# ----------------------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------------------
def _labels(atoms: Atoms) -> dict[str, Any]:
    """Energy, raw (unconstrained) forces and stress attached to ``atoms``, if any."""
    calc = atoms.calc
    if calc is None or not getattr(calc, "results", None):
        return {}
    return {k: calc.results[k] for k in ("energy", "forces", "stress") if k in calc.results}


class Dataset:
    """Labelled structures stored in an ``ase.db`` SQLite file.

    ``Dataset(path)`` opens the file, creating it when it does not exist; ``Dataset()``
    uses a temporary file that disappears with the object (pass a path to keep the data
    beyond the kernel). Frames are read lazily and cached in memory.

    Parameters
    ----------
    path
        ``.db`` file (created if missing), or None for a temporary file.

    Attributes
    ----------
    path : pathlib.Path
        The SQLite file.

    Notes
    -----
    ``dataset[i]`` returns a new :class:`ase.Atoms` with a
    :class:`~ase.calculators.singlepoint.SinglePointCalculator` holding the teacher's
    ``energy`` (eV), ``forces`` (eV/Å, raw: constraints are *not* applied, so read them with
    ``atoms.calc.results["forces"]`` or ``get_forces(apply_constraint=False)``) and, for
    periodic cells, ``stress`` (eV/Å³, Voigt). ``atoms.info`` holds the row's metadata:
    ``kind``, ``teacher``, ``teacher_version``, ``level_of_theory``, ``temperature_K`` where
    it applies, ``source`` (index of the input structure it came from) and anything else
    passed to :meth:`add`.

    Examples
    --------
    >>> data = Dataset("cu.db")                      # doctest: +SKIP
    >>> train, validation = data.split(0.1, seed=0)  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        from ase.db import connect

        self._tmpdir: tempfile.TemporaryDirectory | None = None
        if path is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="nnp_lab-dataset-")
            path = Path(self._tmpdir.name) / "dataset.db"
        path = Path(path).expanduser()
        if path.suffix != ".db":
            raise InputError(
                f"a Dataset is an ase.db SQLite file and its name must end in .db, got {path}"
            )
        if path.exists() and path.is_dir():
            raise InputError(f"{path} is a directory; give the path of a .db file")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = connect(str(path), type="db", append=True)
        self._ids: list[int] = [row.id for row in self._db.select(columns=["id"])]
        self._cache: dict[int, Atoms] = {}
        self._indices: list[int] | None = None  # a subset view of a parent dataset
        self._parent: Dataset | None = None
        if not self._ids and not self._db.metadata:
            self._db.metadata = {"format": DATASET_FORMAT, "format_version": 1}

    # -- views -----------------------------------------------------------------------------
    def _root(self) -> Dataset:
        return self if self._parent is None else self._parent

    def _row_ids(self) -> list[int]:
        root = self._root()
        if self._indices is None:
            return root._ids
        return [root._ids[i] for i in self._indices]

    def subset(self, indices: Sequence[int]) -> Dataset:
        """A read-only view of some frames of this dataset (same file, no copy).

        Parameters
        ----------
        indices
            Positions in this dataset (negative values count from the end).
        """
        n = len(self)
        idx = []
        for i in indices:
            i = int(i)
            if not -n <= i < n:
                raise InputError(f"index {i} out of range for a dataset of {n} frames")
            idx.append(i % n)
        view = object.__new__(Dataset)
        view._tmpdir = None
        view.path = self.path
        view._db = self._db
        view._cache = {}
        view._parent = self._root()
        base = self._indices
        view._indices = idx if base is None else [base[i] for i in idx]
        view._ids = []
        return view

    @property
    def is_view(self) -> bool:
        """Whether this is a subset view (from :meth:`split` or :meth:`subset`)."""
        return self._parent is not None

    def split(
        self, validation_fraction: float = 0.1, seed: int | None = 0
    ) -> tuple[Dataset, Dataset]:
        """Random split into a training and a validation view.

        Parameters
        ----------
        validation_fraction
            Fraction of frames (0 ≤ f < 1) in the validation part; at least one frame goes
            there when the fraction is positive and the dataset has two or more frames.
        seed
            Seed of the shuffle (same seed, same split).

        Returns
        -------
        (Dataset, Dataset)
            Training and validation views of this dataset.
        """
        if isinstance(validation_fraction, bool) or not isinstance(
            validation_fraction, (int, float, np.floating)
        ) or not 0 <= validation_fraction < 1:
            raise InputError(
                f"validation_fraction must be a number in [0, 1), got {validation_fraction!r}"
            )
        n = len(self)
        n_val = int(round(validation_fraction * n))
        if validation_fraction > 0 and n >= 2:
            n_val = min(max(n_val, 1), n - 1)
        order = np.random.default_rng(seed).permutation(n)
        return self.subset(np.sort(order[n_val:])), self.subset(np.sort(order[:n_val]))

    # -- reading ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._row_ids())

    def __iter__(self) -> Iterator[Atoms]:
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, index: int | slice | Sequence[int]) -> Atoms | list[Atoms]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if isinstance(index, (list, tuple, np.ndarray)):
            return [self[int(i)] for i in index]
        ids = self._row_ids()
        n = len(ids)
        i = int(index)
        if not -n <= i < n:
            raise IndexError(f"index {index} out of range for a dataset of {n} frames")
        return self._root()._frame(ids[i]).copy_with_results()  # type: ignore[attr-defined]

    def _frame(self, row_id: int) -> Any:
        cached = self._cache.get(row_id)
        if cached is None:
            cached = _CachedFrame(self._db.get(id=row_id))
            self._cache[row_id] = cached
        return cached

    def _load_all(self) -> None:
        root = self._root()
        if len(root._cache) == len(root._ids):
            return
        # rows are only ever appended: read the ones after the last cached row in one pass
        missing = [i for i in root._ids if i not in root._cache]
        query = f"id>={min(missing)}" if missing else None
        for row in root._db.select(query):
            if row.id not in root._cache:
                root._cache[row.id] = _CachedFrame(row)

    def frames(self) -> list[Atoms]:
        """All frames as new :class:`ase.Atoms` with their labels (read in one pass)."""
        self._load_all()
        root = self._root()
        return [root._cache[i].copy_with_results() for i in self._row_ids()]

    def records(self) -> list[dict[str, Any]]:
        """Labels and metadata of every frame without building Atoms copies.

        Returns
        -------
        list of dict
            ``numbers``, ``positions``, ``cell``, ``pbc``, ``energy``, ``forces``,
            ``stress`` (or None) and ``info`` per frame; arrays are shared with the
            cache, do not modify them.
        """
        self._load_all()
        root = self._root()
        return [root._cache[i].record for i in self._row_ids()]

    @property
    def elements(self) -> list[int]:
        """Sorted atomic numbers present in the dataset."""
        zs: set[int] = set()
        for rec in self.records():
            zs.update(np.unique(rec["numbers"]).tolist())
        return sorted(int(z) for z in zs)

    @property
    def n_atoms(self) -> int:
        """Total number of atoms over all frames."""
        return int(sum(len(r["numbers"]) for r in self.records()))

    def kinds(self) -> dict[str, int]:
        """Number of frames per sampling kind, e.g. ``{"rattle": 20, "md": 40}``."""
        counts: dict[str, int] = {}
        for rec in self.records():
            kind = str(rec["info"].get("kind", "given"))
            counts[kind] = counts.get(kind, 0) + 1
        return counts

    def teachers(self) -> list[str]:
        """Names of the teachers that labelled the frames (in order of appearance)."""
        names: dict[str, None] = {}
        for rec in self.records():
            name = rec["info"].get("teacher")
            if name is not None:
                names[str(name)] = None
        return list(names)

    @property
    def metadata(self) -> dict[str, Any]:
        """Dataset-level metadata stored in the file (format tag, teachers)."""
        return dict(self._db.metadata)

    def __repr__(self) -> str:
        view = " (view)" if self.is_view else ""
        return f"<Dataset {str(self.path)!r}{view}: {len(self)} frames>"

    # -- writing ---------------------------------------------------------------------------
    def add(
        self,
        structures: Atoms | Sequence[Atoms],
        teacher: Potential | str | None = None,
        *,
        kind: str = "given",
        temperature_K: float | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: bool = False,
        **info: Any,
    ) -> list[int]:
        """Label ``structures`` with ``teacher`` (or take their attached labels) and store them.

        Each batch is written to the file as soon as it is labelled.

        Parameters
        ----------
        structures
            Structures to add (not modified).
        teacher
            A :class:`~nnp_lab.potentials.Potential` or registered name that labels the
            structures (one ``evaluate`` call per ``batch_size`` structures). None: every
            structure must carry energy and forces already (e.g. from a
            ``SinglePointCalculator``); they are stored as they are.
        kind
            Sampling kind recorded with the frames (see :data:`KINDS`; other strings are
            allowed).
        temperature_K
            Temperature recorded with the frames (MD, normal modes), or None.
        batch_size
            Structures per teacher call.
        progress
            Show a tqdm progress bar.
        **info
            Extra metadata per frame (str, int, float or bool values), e.g. ``round=3``.

        Returns
        -------
        list of int
            Indices of the new frames in this dataset.
        """
        if self.is_view:
            raise InputError("cannot add frames to a view (split/subset); add to the full Dataset")
        if isinstance(structures, Atoms):
            structures = [structures]
        structures = list(structures)
        for k, atoms in enumerate(structures):
            if not isinstance(atoms, Atoms):
                raise InputError(f"structure {k} is a {type(atoms).__name__}, not an ase.Atoms")
        batch_size = _positive_int("batch_size", batch_size)
        start = len(self)
        if not structures:
            return []
        if teacher is None:
            for k, atoms in enumerate(structures):
                labels = _labels(atoms)
                if "energy" not in labels or "forces" not in labels:
                    raise InputError(
                        f"structure {k} has no energy/forces attached; pass teacher= to label "
                        "it (e.g. teacher='sevennet-0')"
                    )
            self._write(structures, [_labels(a) for a in structures], None,
                        kind=kind, temperature_K=temperature_K, info=info)
            return list(range(start, len(self)))

        pot = _resolve(teacher)
        for atoms in structures:
            pot.check(atoms)
        bar = _progress(len(structures), f"labelling with {pot.name}", progress)
        try:
            for b in range(0, len(structures), batch_size):
                chunk = structures[b : b + batch_size]
                results = pot.evaluate(chunk, PROPERTIES)
                self._write(chunk, results, pot, kind=kind, temperature_K=temperature_K, info=info)
                bar.update(len(chunk))
        finally:
            bar.close()
        return list(range(start, len(self)))

    def _write(
        self,
        structures: Sequence[Atoms],
        results: Sequence[dict[str, Any]],
        teacher: Potential | None,
        *,
        kind: str,
        temperature_K: float | None = None,
        info: dict[str, Any] | None = None,
        per_frame: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        """Write labelled frames in one transaction."""
        base: dict[str, Any] = {"kind": str(kind)}
        if teacher is not None:
            base.update(
                teacher=teacher.name,
                teacher_version=str(teacher.version),
                level_of_theory=str(teacher.level_of_theory),
            )
        if temperature_K is not None:
            base["temperature_K"] = float(temperature_K)
        for key, value in (info or {}).items():
            base[key] = value
        new_ids = []
        with self._db:
            for k, (atoms, res) in enumerate(zip(structures, results)):
                kv = dict(base)
                if per_frame is not None:
                    kv.update(per_frame[k])
                if teacher is None:
                    # keep what the frame says about where it came from
                    for key in ("teacher", "teacher_version", "level_of_theory", "source"):
                        if key in atoms.info and key not in kv:
                            kv[key] = atoms.info[key]
                kv = _clean_key_values(kv)
                frame = atoms.copy()
                frame.calc = None
                keep = {key: res[key] for key in ("energy", "forces", "stress") if key in res}
                if not has_stress(frame):
                    keep.pop("stress", None)
                frame.calc = SinglePointCalculator(frame, **keep)
                new_ids.append(self._db.write(frame, key_value_pairs=kv))
        self._ids.extend(new_ids)
        if teacher is not None:
            meta = dict(self._db.metadata)
            teachers = list(meta.get("teachers", []))
            if teacher.name not in teachers:
                teachers.append(teacher.name)
                meta["teachers"] = teachers
                meta.setdefault("format", DATASET_FORMAT)
                self._db.metadata = meta


class _CachedFrame:
    """One row, parsed once: arrays for training and a template to copy Atoms from."""

    __slots__ = ("atoms", "record")

    def __init__(self, row: Any) -> None:
        atoms = row.toatoms()
        results = dict(atoms.calc.results) if atoms.calc is not None else {}
        atoms.calc = None
        info = {k: v for k, v in row.key_value_pairs.items() if k not in _RESERVED}
        atoms.info.update(info)
        self.atoms = atoms
        forces = results.get("forces")
        stress = results.get("stress")
        self.record = {
            "numbers": atoms.numbers,
            "positions": atoms.positions,
            "cell": np.asarray(atoms.cell),
            "pbc": atoms.pbc,
            "energy": float(results["energy"]) if "energy" in results else float("nan"),
            "forces": None if forces is None else np.asarray(forces, dtype=np.float64),
            "stress": None if stress is None else np.asarray(stress, dtype=np.float64),
            "info": info,
            "atoms": atoms,
        }

    def copy_with_results(self) -> Atoms:
        atoms = self.atoms.copy()
        rec = self.record
        keep: dict[str, Any] = {}
        if np.isfinite(rec["energy"]):
            keep["energy"] = rec["energy"]
        if rec["forces"] is not None:
            keep["forces"] = rec["forces"].copy()
        if rec["stress"] is not None:
            keep["stress"] = rec["stress"].copy()
        atoms.calc = SinglePointCalculator(atoms, **keep)
        return atoms


def _clean_key_values(kv: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in kv.items():
        if value is None:
            continue
        if isinstance(value, (np.integer,)):
            value = int(value)
        elif isinstance(value, (np.floating,)):
            value = float(value)
        elif isinstance(value, np.bool_):
            value = bool(value)
        if not isinstance(value, (str, int, float, bool)):
            raise InputError(
                f"metadata {key}={value!r}: ase.db columns hold str, int, float or bool values"
            )
        if not key.isidentifier() or key in _RESERVED:
            raise InputError(f"{key!r} cannot be a dataset column (reserved or not a name)")
        out[key] = value
    return out


# ----------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------
def _resolve(potential: Potential | str | os.PathLike | None) -> Potential:
    from nnp_lab.potentials.registry import resolve_potential

    return resolve_potential(potential)


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _nonneg_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise InputError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def _float_list(name: str, value: Any) -> list[float]:
    """None/0/() -> []; a number -> [number]; a sequence -> list of numbers (all >= 0)."""
    if value is None or value is False:
        return []
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return [] if value == 0 else [_nonneg_float(name, value)]
    if isinstance(value, (str, bytes)):
        raise InputError(f"{name} must be a number or a list of numbers, got {value!r}")
    try:
        items = list(value)
    except TypeError:
        raise InputError(f"{name} must be a number or a list of numbers, got {value!r}") from None
    return [_nonneg_float(name, v) for v in items]


class _NullBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, *_: Any, **__: Any) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int | None, desc: str, enabled: bool, unit: str = "frame") -> Any:
    if not enabled:
        return _NullBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=True)


def _free_mask(atoms: Atoms) -> np.ndarray:
    """True for atoms that may move (not fixed by FixAtoms)."""
    from ase.constraints import FixAtoms

    mask = np.ones(len(atoms), dtype=bool)
    for constraint in atoms.constraints:
        if isinstance(constraint, FixAtoms):
            mask[np.asarray(constraint.get_indices(), dtype=int)] = False
    return mask


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
    mask = _free_mask(atoms)
    disp = rng.normal(scale=amplitude, size=(len(atoms), 3))
    disp[~mask] = 0.0
    new.positions = atoms.positions + disp
    return new


def strained(atoms: Atoms, max_strain: float, rng: np.random.Generator,
             rattle: float = 0.0) -> Atoms:
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
# Batched Langevin dynamics (several replicas, one evaluate per step)
# ----------------------------------------------------------------------------------------
class LangevinReplicas:
    """Independent NVT Langevin trajectories advanced in lock step.

    Every step evaluates all active replicas with **one**
    :meth:`~nnp_lab.potentials.Potential.evaluate` call (``validate=False``: finiteness
    only), so a batching teacher labels several trajectories for little more than the cost
    of one. The integrator is BAOAB (Leimkuhler & Matthews): half kick, half drift, exact
    Ornstein–Uhlenbeck velocity update, half drift, force call, half kick. Atoms fixed by
    ``FixAtoms`` do not move; other constraints are ignored.

    Used by :func:`sample` (teacher MD) and :func:`nnp_lab.models.distill` (student MD);
    :func:`nnp_lab.md` is the full-featured MD run of the package.

    Parameters
    ----------
    structures
        Starting structures (copied; velocities taken from them when ``keep_velocities``
        and they have some).
    potential
        The potential driving the dynamics.
    temperatures_K
        Target temperature of each replica.
    timestep_fs
        Time step in fs.
    friction_per_fs
        Langevin friction in 1/fs.
    rng
        Random generator for the initial velocities and the noise.
    keep_velocities
        Keep non-zero input velocities instead of drawing Maxwell–Boltzmann ones.
    initial_temperature_factor
        Draw the initial velocities at this multiple of the target temperature. 2 suits a
        structure at an energy minimum: equipartition moves half of the kinetic energy into
        the potential energy within a few vibrations, so the run starts near the target
        instead of at half of it.
    """

    def __init__(
        self,
        structures: Sequence[Atoms],
        potential: Potential,
        temperatures_K: Sequence[float],
        *,
        timestep_fs: float = 1.0,
        friction_per_fs: float = 0.01,
        rng: np.random.Generator,
        keep_velocities: bool = False,
        initial_temperature_factor: float = 1.0,
    ) -> None:
        if len(structures) != len(temperatures_K):
            raise InputError("one temperature per replica is needed")
        self.potential = potential
        self.atoms = []
        self.masses = []
        self.free = []
        self.velocities = []
        self.temperatures_K = [float(t) for t in temperatures_K]
        self.rng = rng
        self.dt = float(timestep_fs) * units.fs
        self.gamma = float(friction_per_fs) / units.fs
        for atoms, T in zip(structures, self.temperatures_K):
            a = atoms.copy()
            a.calc = None
            m = a.get_masses()[:, None]
            free = _free_mask(a)
            v = a.get_velocities() if keep_velocities and a.has("momenta") else None
            if v is None or not np.any(v):
                v = rng.normal(size=(len(a), 3)) * np.sqrt(
                    units.kB * T * initial_temperature_factor / m)
                v[~free] = 0.0
                if free.all() and len(a) > 1:
                    v -= (m * v).sum(0) / m.sum()  # no centre-of-mass drift
            self.atoms.append(a)
            self.masses.append(m)
            self.free.append(free[:, None].astype(float))
            self.velocities.append(np.asarray(v, dtype=float) * self.free[-1])
        self.active = [True] * len(self.atoms)
        self.n_steps = 0
        self.results: list[dict[str, Any] | None] = [None] * len(self.atoms)
        self.evaluate(("energy", "forces"))

    def evaluate(self, properties: Sequence[str]) -> list[dict[str, Any] | None]:
        """Evaluate the active replicas at their current positions (one call)."""
        idx = [k for k, on in enumerate(self.active) if on]
        if idx:
            res = self.potential.evaluate([self.atoms[k] for k in idx], properties, validate=False)
            for k, r in zip(idx, res):
                self.results[k] = r
        return self.results

    def step(self, properties: Sequence[str] = ("energy", "forces")) -> list[dict[str, Any] | None]:
        """Advance every active replica by one time step; returns the new results."""
        dt = self.dt
        c1 = math.exp(-self.gamma * dt)
        c2 = math.sqrt(max(1.0 - c1 * c1, 0.0))
        for k, on in enumerate(self.active):
            if not on:
                continue
            a, m, free = self.atoms[k], self.masses[k], self.free[k]
            v = self.velocities[k]
            f = self.results[k]["forces"]
            v = v + 0.5 * dt * f / m * free
            pos = a.positions + 0.5 * dt * v
            sigma = np.sqrt(units.kB * self.temperatures_K[k] / m)
            v = (c1 * v + c2 * sigma * self.rng.normal(size=v.shape)) * free
            a.positions = pos + 0.5 * dt * v
            self.velocities[k] = v
        self.evaluate(properties)
        for k, on in enumerate(self.active):
            if on:
                f = self.results[k]["forces"]
                kick = 0.5 * dt * f / self.masses[k] * self.free[k]
                self.velocities[k] = self.velocities[k] + kick
        self.n_steps += 1
        return self.results

    def temperature(self, k: int) -> float:
        """Instantaneous kinetic temperature (K) of replica ``k``."""
        ndof = 3 * int(self.free[k].sum())
        if ndof == 0:
            return 0.0
        ekin = 0.5 * float((self.masses[k] * self.velocities[k] ** 2).sum())
        return 2 * ekin / (ndof * units.kB)

    def reset(self, k: int, atoms: Atoms, *, temperature_factor: float = 2.0) -> None:
        """Restart replica ``k`` from the positions of ``atoms`` (same atoms, same cell)
        with fresh Maxwell–Boltzmann velocities at ``temperature_factor`` × its target."""
        a = self.atoms[k]
        a.positions = atoms.positions
        m, free = self.masses[k], self.free[k]
        v = self.rng.normal(size=(len(a), 3)) * np.sqrt(
            units.kB * self.temperatures_K[k] * temperature_factor / m)
        v *= free
        if free.all() and len(a) > 1:
            v -= (m * v).sum(0) / m.sum()
        self.velocities[k] = v
        self.active[k] = True
        self.results[k] = self.potential.evaluate([a], ("energy", "forces"), validate=False)[0]

    def snapshot(self, k: int, results: dict[str, Any] | None = None) -> Atoms:
        """A copy of replica ``k`` with velocities and its latest results attached."""
        a = self.atoms[k].copy()
        a.set_velocities(self.velocities[k])
        res = self.results[k] if results is None else results
        if res:
            keep = {key: res[key] for key in ("energy", "forces", "stress") if key in res}
            a.calc = SinglePointCalculator(a, **keep)
        return a


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
    if isinstance(structures, Atoms):
        structures = [structures]
    if structures is None or isinstance(structures, (str, bytes)):
        raise InputError("sample needs an ase.Atoms or a list of them")
    structures = list(structures)
    if not structures:
        raise InputError("sample needs at least one structure; got an empty list")
    for k, atoms in enumerate(structures):
        if not isinstance(atoms, Atoms):
            raise InputError(f"structure {k} is a {type(atoms).__name__}, not an ase.Atoms")
    rattles = _float_list("rattle", rattle)
    strain_max = _float_list("strain", strain)
    if len(strain_max) > 1:
        raise InputError(f"strain must be one number (the largest component), got {strain!r}")
    md_temps = _float_list("md_temperatures_K", md_temperatures_K)
    nm_temps = _float_list("normal_modes", normal_modes)
    n_per = _positive_int("n_per_structure", n_per_structure)
    batch_size = _positive_int("batch_size", batch_size)
    md_steps = _positive_int("md_steps", md_steps)
    timestep_fs = _nonneg_float("timestep_fs", timestep_fs)
    if timestep_fs == 0:
        raise InputError("timestep_fs must be > 0")
    if md_temps and any(t <= 0 for t in md_temps):
        raise InputError(f"md_temperatures_K must be > 0 K, got {md_temps}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise InputError(f"seed must be an integer or None, got {seed!r}")

    pot = _resolve(teacher)
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
            "(non-periodic structures) only", stacklevel=2,
        )
    total = 0
    for k in range(len(structures)):
        total += int(include_inputs) + n_per * (
            bool(rattles) + bool(strain_max and periodic[k]) + bool(md_temps)
            + bool(nm_temps and molecules[k])
        )
    if total == 0:
        raise InputError(
            "nothing to sample: every kind is switched off (pass rattle=, strain=, "
            "md_temperatures_K=, normal_modes= or include_inputs=True)"
        )
    bar = _progress(total, f"sampling with {pot.name}", progress)
    pending: list[tuple[Atoms, dict[str, Any]]] = []

    def flush() -> None:
        if not pending:
            return
        frames = [f for f, _ in pending]
        results = pot.evaluate(frames, PROPERTIES)
        groups: dict[tuple, list[int]] = {}
        for j, (_, meta) in enumerate(pending):
            groups.setdefault(tuple(sorted(meta.items())), []).append(j)
        for key, js in groups.items():
            meta = dict(key)
            kind = meta.pop("kind")
            temp = meta.pop("temperature_K", None)
            dataset._write([frames[j] for j in js], [results[j] for j in js], pot,
                           kind=kind, temperature_K=temp, info=meta)
        bar.update(len(pending))
        pending.clear()

    def queue(frame: Atoms, **meta: Any) -> None:
        pending.append((frame, meta))
        if len(pending) >= batch_size:
            flush()

    def checked(make: Any, what: str) -> Atoms | None:
        """Draw a frame, retrying a few times if atoms come too close."""
        for _ in range(10):
            frame = make()
            try:
                pot.check(frame)
                return frame
            except StructureError:
                continue
        warnings.warn(f"skipped a {what} frame: atoms kept coming too close", stacklevel=3)
        return None

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
                        "sampling", stacklevel=2,
                    )
                for j in range(n_per):
                    T = nm_temps[j % len(nm_temps)]
                    frame = checked(
                        lambda: normal_mode_displaced(atoms, modes, consts, T, rng),
                        "normal-mode",
                    )
                    if frame is not None:
                        queue(frame, kind="normal_mode", source=k, temperature_K=T)
        flush()
        if md_temps:
            _sample_md(structures, pot, md_temps, md_steps, timestep_fs, n_per, rng,
                       dataset, bar)
    finally:
        bar.close()
    logger.info("sample: %s now holds %d frames (%s)", dataset.path, len(dataset),
                dataset.kinds())
    return dataset


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
        at = np.unique(np.linspace(first, md_steps, n_frames + 1)[1:].round().astype(int))
        at = np.clip(at, 1, md_steps)
        steps_at.append(set(at.tolist()))
    all_steps = set().union(*steps_at)
    dyn = LangevinReplicas(replicas, pot, [m["temperature_K"] for m in meta],
                           timestep_fs=timestep_fs, rng=rng, initial_temperature_factor=2.0)
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
                dataset._write([frame], [results[r]], pot, kind="md",
                               temperature_K=meta[r]["temperature_K"],
                               info={"source": meta[r]["source"], "md_step": step})
                bar.update(1)
