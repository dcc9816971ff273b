"""The training-data store: labelled structures in an ``ase.db`` file (:class:`Dataset`).

A :class:`Dataset` is an SQLite ``ase.db`` file: energies, forces and stresses are stored as
the single-point results of each row, so ``ase db data.db`` and :func:`ase.db.connect` read
them too. Each row also records the teacher (name, version, level of theory), the sampling
kind and, where it applies, the temperature. :func:`nnp_lab.models.sample` fills one.

Examples
--------
>>> from nnp_lab.models import Dataset
>>> data = Dataset("cu.db")                                        # doctest: +SKIP
>>> train, validation = data.split(0.1, seed=0)                    # doctest: +SKIP
>>> Dataset("cu.db")[5].get_potential_energy()                     # doctest: +SKIP
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from nnp_lab.errors import InputError
from nnp_lab.models._common import progress_bar, resolve_teacher, structure_list
from nnp_lab.potentials.base import PROPERTIES, Potential, has_stress
from nnp_lab.validation import integer, number

__all__ = ["Dataset", "KINDS", "DATASET_FORMAT", "DEFAULT_BATCH_SIZE"]

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
        self._cache: dict[int, _CachedFrame] = {}
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

    def subset(self, indices: Sequence[int] | np.ndarray) -> Dataset:
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
        if not number("validation_fraction", validation_fraction) < 1:
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

    @overload
    def __getitem__(self, index: int) -> Atoms: ...

    @overload
    def __getitem__(self, index: slice | Sequence[int] | np.ndarray) -> list[Atoms]: ...

    def __getitem__(self, index: int | slice | Sequence[int] | np.ndarray) -> Atoms | list[Atoms]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not isinstance(index, (int, np.integer)):
            return [self[int(i)] for i in index]
        ids = self._row_ids()
        n = len(ids)
        i = int(index)
        if not -n <= i < n:
            raise IndexError(f"index {index} out of range for a dataset of {n} frames")
        return self._root()._frame(ids[i]).copy_with_results()

    def _frame(self, row_id: int) -> _CachedFrame:
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
        structures = structure_list(
            structures, "add needs an ase.Atoms or a list of them", allow_empty=True
        )
        batch_size = integer("batch_size", batch_size)
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
            self.write(
                structures,
                [_labels(a) for a in structures],
                None,
                kind=kind,
                temperature_K=temperature_K,
                info=info,
            )
            return list(range(start, len(self)))

        pot = resolve_teacher(teacher)
        for atoms in structures:
            pot.check(atoms)
        bar = progress_bar(len(structures), f"labelling with {pot.name}", progress)
        try:
            for b in range(0, len(structures), batch_size):
                chunk = structures[b : b + batch_size]
                results = pot.evaluate(chunk, PROPERTIES)
                self.write(chunk, results, pot, kind=kind, temperature_K=temperature_K, info=info)
                bar.update(len(chunk))
        finally:
            bar.close()
        return list(range(start, len(self)))

    def write(
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
        """Store frames with labels computed already, in one transaction.

        The low-level half of :meth:`add` for callers that evaluate the teacher themselves
        (batched MD, active learning): no checks, no teacher call.

        Parameters
        ----------
        structures
            The frames (copied; their own calculators are ignored).
        results
            One result dict per frame (``energy``, ``forces``, ``stress``; stress is kept
            for periodic frames only).
        teacher
            The potential that computed ``results`` (recorded with each row), or None for
            labels that came with the frames.
        kind, temperature_K, info
            Metadata of every row (see :meth:`add`).
        per_frame
            Extra metadata per frame, one dict each; it wins over ``info``.
        """
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
