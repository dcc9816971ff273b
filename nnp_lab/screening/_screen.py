"""``screen``: one task over many structures, batched, stored row by row, resumable."""

from __future__ import annotations

import glob
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ase import Atoms

from nnp_lab import validation
from nnp_lab.display import live_display
from nnp_lab.errors import InputError
from nnp_lab.potentials import Potential
from nnp_lab.potentials.registry import resolve_potential
from nnp_lab.screening._compute import TASKS, compute, task_function
from nnp_lab.screening._store import Store, content_key, task_name

__all__ = ["ScreenResult", "ScreenRun", "RowEvent", "screen", "load", "TASKS"]

logger = logging.getLogger(__name__)

#: Row keys that describe the screen, not the structure's numbers.
_META_KEYS = frozenset({"key", "status", "error", "task", "model", "model_version"})


@dataclass
class ScreenResult:
    """A screen's rows, read from its database.

    Attributes
    ----------
    db : str
        The database (path or URL).
    keys : list of str
        The content keys of the input structures, in input order (empty for :func:`load`).
    n_done, n_failed, n_skipped : int
        Rows written by this call as done / failed, and inputs found already in the
        database (not recomputed).
    wall_time_s : float
    stopped : bool
        The screen was stopped before every input was handled (run it again for the rest).
    """

    db: str
    keys: list[str]
    n_done: int = 0
    n_failed: int = 0
    n_skipped: int = 0
    wall_time_s: float = 0.0
    stopped: bool = False

    def to_dataframe(self) -> Any:
        """One row per input structure (input order; for :func:`load`: database order):
        ``key``, ``formula``, ``n_atoms``, ``status``, ``error``, ``energy`` (eV),
        ``energy_per_atom`` (eV/atom), ``row_id`` and every number the task stored."""
        import pandas as pd

        by_key: dict[str, dict[str, Any]] = {}
        for row in Store(self.db).rows():
            record = _record(row)
            by_key.setdefault(row.key, record)
        order = self.keys or list(by_key)
        return pd.DataFrame([by_key[k] for k in order if k in by_key])

    @property
    def failed(self) -> list[dict[str, Any]]:
        """The failed rows: ``key``, ``formula``, ``error``, ``input_index``."""
        return [
            {
                "key": r.key,
                "formula": r.formula,
                "error": r.get("error"),
                "input_index": r.get("input_index"),
            }
            for r in Store(self.db).rows()
            if r.get("status") == "failed"
        ]

    def atoms(self, row_id: int) -> Atoms:
        """The structure of a row (relaxed for a relaxation), with its single-point results."""
        return Store(self.db).db.get_atoms(id=int(row_id))

    def __repr__(self) -> str:
        return (
            f"ScreenResult({self.db!r}: {len(self.keys)} inputs, {self.n_done} done, "
            f"{self.n_failed} failed, {self.n_skipped} already there, {self.wall_time_s:.1f} s)"
        )


def load(db: str | os.PathLike) -> ScreenResult:
    """A finished or half-finished screen's rows (see :class:`ScreenResult`)."""
    if "://" not in str(db) and not Path(db).exists():
        raise InputError(f"no screen database at {str(db)!r}")
    return ScreenResult(str(db), keys=[])


@dataclass
class RowEvent:
    """One row of a running screen, sent to subscribers as it is committed (or, with
    ``resumed=True``, as an input is found already done in the database).

    Attributes
    ----------
    index : int
        Position of the structure in the input.
    record : dict
        The row's columns, as in :meth:`ScreenResult.to_dataframe` (``key``, ``row_id``,
        ``formula``, ``n_atoms``, ``status``, ``error``, ``energy``, ``energy_per_atom`` and
        the task's numbers).
    resumed : bool
    n_seen, n_done, n_failed, n_skipped : int
        Counts so far in this call (``n_seen`` = inputs handled, resumed ones included).
    """

    index: int
    record: dict[str, Any]
    resumed: bool
    n_seen: int
    n_done: int
    n_failed: int
    n_skipped: int


class ScreenRun:
    """A screen set up and ready to run: what :func:`screen` builds (same arguments).

    Everything is checked in the constructor, so bad arguments raise before anything is
    displayed. :meth:`run` does the work in the calling thread (a live display calls it in a
    background thread); :meth:`stop` asks it to end early from any thread; subscribers get a
    :class:`RowEvent` per row.

    Attributes
    ----------
    total : int or None
        Number of inputs when known in advance (a list or tuple), else None.
    result : ScreenResult or None
        Set when :meth:`run` returns.
    """

    def __init__(
        self,
        structures: Any,
        task: str | Callable[[Atoms, Potential], dict[str, Any]] = "energy",
        potential: Potential | str | None = None,
        *,
        db: str | os.PathLike = "screen.db",
        fmax: float = 0.05,
        steps: int = 500,
        cell: bool = False,
        batch: int | str = "auto",
        max_batch_atoms: int | None = None,
        retry_failed: bool = False,
        client: Any = None,
        chunk_size: int = 16,
        **task_options: Any,
    ) -> None:
        self.structures = structures
        self.task = task
        self.task_options = task_options
        self.potential = resolve_potential(potential)
        self._shared = self.potential if isinstance(potential, Potential) else self.potential.name
        self.spec = _spec(task, task_options, fmax=fmax, steps=steps, cell=cell)
        self.function = task_function(task, task_options)
        gpu = str(self.potential.device).startswith("cuda")
        if batch == "auto":
            self.n_batch = 512 if gpu else 64
        else:
            self.n_batch = validation.integer("batch", batch, minimum=1)
        if max_batch_atoms is None:
            self.atom_bound = 32768 if gpu else 4096
        else:
            self.atom_bound = validation.integer("max_batch_atoms", max_batch_atoms, minimum=1)
        self.chunk_size = validation.integer("chunk_size", chunk_size, minimum=1)
        self.retry_failed = bool(retry_failed)
        self.client = client
        self.db = str(db)
        self.store = Store(db)
        self.total = len(structures) if isinstance(structures, (list, tuple)) else None
        self.result: ScreenResult | None = None
        self._subscribers: list[Callable[[RowEvent], None]] = []
        self._stop = threading.Event()

    # ------------------------------------------------------------------ control
    def subscribe(self, callback: Callable[[RowEvent], None]) -> None:
        """Call ``callback(event)`` for every row (in the thread that runs :meth:`run`)."""
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        self._subscribers.append(callback)

    def stop(self) -> None:
        """End the screen early: rows committed so far stay, the structures in flight are
        abandoned (a relaxation batch at its next step, a Dask chunk cancelled); running
        the same screen again does the rest."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # ------------------------------------------------------------------ the work
    def run(self) -> ScreenResult:
        """Do the screen; returns its :class:`ScreenResult` (``stopped=True`` after
        :meth:`stop`)."""
        started = time.perf_counter()
        store = self.store
        model = {"name": self.potential.name, "version": str(self.potential.version)}
        meta = {
            "task": self.spec["name"],
            "model": model["name"],
            "model_version": model["version"],
        }
        done = store.keys()
        if self.retry_failed:
            done = {k: i for k, i in done.items() if _status(store, i) == "done"}
        result = ScreenResult(self.db, keys=[])
        self.result = result

        def todo() -> Iterator[tuple[int, Atoms, str]]:
            for index, atoms in enumerate(_inputs(self.structures)):
                if self._stop.is_set():
                    return
                key = content_key(atoms, self.spec, model)
                result.keys.append(key)
                if key in done:
                    result.n_skipped += 1
                    if self._subscribers:
                        self._emit(index, store.db.get(id=done[key]), resumed=True)
                    continue
                yield index, atoms, key

        client, own_client = self.client, self.client == "local"
        if own_client:
            from nnp_lab.screening._dask import local_client

            client = local_client()
        if client is None:
            outcomes = compute(
                todo(),
                self.potential,
                self.spec,
                self.function,
                n_batch=self.n_batch,
                atom_bound=self.atom_bound,
                should_stop=self._stop.is_set,
            )
        else:
            from nnp_lab.screening._dask import run_on_cluster

            # a registered model is loaded by name on each worker; an object is sent once
            outcomes = run_on_cluster(
                client,
                todo(),
                self._shared,
                self.spec,
                self.task,
                self.task_options,
                chunk_size=self.chunk_size,
                n_batch=self.n_batch,
                atom_bound=self.atom_bound,
            )
        try:
            for o in outcomes:
                if o.error is None:
                    row_id = store.write_done(o.key, o.atoms, o.index, o.numbers, o.arrays, meta)
                    result.n_done += 1
                else:
                    row_id = store.write_failed(o.key, o.atoms, o.index, o.error, meta)
                    result.n_failed += 1
                if self._subscribers:
                    self._emit(o.index, store.db.get(id=row_id), resumed=False)
                if self._stop.is_set():
                    break
        finally:
            close = getattr(outcomes, "close", None)
            if close is not None:
                close()  # abandons what is in flight (cancels Dask chunks)
            if own_client:
                client.close()  # local_client's close stops its cluster too
            result.stopped = self._stop.is_set()
            result.wall_time_s = time.perf_counter() - started
        return result

    def _emit(self, index: int, row: Any, *, resumed: bool) -> None:
        r = self.result
        assert r is not None
        event = RowEvent(
            index=index,
            record=_record(row),
            resumed=resumed,
            n_seen=r.n_done + r.n_failed + r.n_skipped,
            n_done=r.n_done,
            n_failed=r.n_failed,
            n_skipped=r.n_skipped,
        )
        for callback in self._subscribers:
            try:
                callback(event)
            except Exception:  # a broken display must not lose the screen
                logger.exception("a screen subscriber failed")


def screen(
    structures: Any,
    task: str | Callable[[Atoms, Potential], dict[str, Any]] = "energy",
    potential: Potential | str | None = None,
    *,
    db: str | os.PathLike = "screen.db",
    fmax: float = 0.05,
    steps: int = 500,
    cell: bool = False,
    batch: int | str = "auto",
    max_batch_atoms: int | None = None,
    retry_failed: bool = False,
    client: Any = None,
    chunk_size: int = 16,
    live: bool = False,
    **task_options: Any,
) -> ScreenResult:
    """Run one task over many structures, batched, writing each result to a database.

    Running the same call again skips every structure already in the database (same
    structure, task, options and model: the row key is their content hash) and does only
    the rest, so a kernel restart, Ctrl-C or ``kill -9`` loses at most the structures in
    flight.

    Parameters
    ----------
    structures
        A list or iterator of Atoms (consumed lazily), a glob or folder of files ASE reads,
        or an ``ase.db`` path (``.db``) whose rows are the inputs.
    task
        ``"energy"`` (single points, batched), ``"relax"`` (every structure in flight
        advances with one batched model call per optimizer step; ``fmax``, ``steps``,
        ``cell``), the name of a function of :mod:`nnp_lab.properties` (e.g. ``"eos"``; its
        keywords in ``task_options``), or a callable ``(atoms, potential) -> dict`` of numbers.
    potential
        A :class:`~nnp_lab.potentials.Potential`, a registered name or None (default model).
    db
        The ``ase.db`` to write (a SQLite path, or any URL ase.db accepts).
    fmax, steps, cell
        Relaxation settings (``task="relax"``).
    batch
        Structures evaluated together: ``"auto"`` (64 on a CPU, 512 on a GPU, and never
        more than ``max_batch_atoms`` atoms) or a number.
    max_batch_atoms
        Atom bound of a batch (default 4,096 on a CPU, 32,768 on a GPU).
    retry_failed
        Run the structures that failed before again (default: keep their failed rows).
    client
        None: this process. A ``dask.distributed.Client`` (any cluster: a ``LocalCluster``,
        ``dask-jobqueue`` on SLURM/PBS, ``dask-cuda`` for a GPU per worker), or ``"local"``
        for a ``LocalCluster`` of one single-threaded worker process per core, closed at the
        end. Chunks of ``chunk_size`` structures go to the workers, each of which loads the
        potential once (a registered name is loaded there; a Potential object is sent once)
        and runs the same batched code; rows are written here as chunks finish.
    chunk_size
        Structures per Dask task.
    live
        In Jupyter: a progress bar with rate and ETA, a sortable table that fills in as rows
        arrive, a scatter of two chosen columns and a Viewer that shows the structure of a
        clicked row; Stop ends the screen cleanly (see
        :class:`nnp_lab.widgets.ScreenView`). Elsewhere: a tqdm bar.
    **task_options
        Keywords of a property task.

    Returns
    -------
    ScreenResult
        ``to_dataframe()``, ``failed``, ``atoms(row_id)``; ``stopped`` after Stop or Ctrl-C
        in a live view.

    Raises
    ------
    InputError
        An unknown task, bad options, no structures.
    """
    job = ScreenRun(
        structures,
        task,
        potential,
        db=db,
        fmax=fmax,
        steps=steps,
        cell=cell,
        batch=batch,
        max_batch_atoms=max_batch_atoms,
        retry_failed=retry_failed,
        client=client,
        chunk_size=chunk_size,
        **task_options,
    )
    if not live:
        return job.run()
    show = live_display("screen")
    if show is not None:
        return show(job)
    from tqdm.auto import tqdm

    with tqdm(total=job.total, desc="screen", unit="structure") as bar:

        def advance(event: RowEvent) -> None:
            bar.update(1)
            if event.n_failed:
                bar.set_postfix(failed=event.n_failed, refresh=False)

        job.subscribe(advance)
        return job.run()


def _spec(
    task: Any, options: dict[str, Any], *, fmax: float, steps: int, cell: bool
) -> dict[str, Any]:
    """The task's name and options: part of every row key."""
    if callable(task):
        # a function by its qualified name; an instance of a callable class by its class
        # (never by repr, which holds a memory address and would change every session)
        name = getattr(task, "__qualname__", None) or type(task).__qualname__
        module = getattr(task, "__module__", None) or type(task).__module__
        return {"name": f"callable:{module}.{name}", **options}
    if task == "relax":
        fmax = validation.number("fmax", fmax, strict=True, unit="eV/Å")
        steps = validation.integer("steps", steps, minimum=1)
        return {"name": "relax", "fmax": fmax, "steps": steps, "cell": bool(cell)}
    return {"name": str(task), **options}


def _inputs(structures: Any) -> Iterator[Atoms]:
    """The input structures, one at a time."""
    from ase.io import iread

    if isinstance(structures, Atoms):
        yield structures
        return
    if isinstance(structures, (str, os.PathLike)):
        path = str(structures)
        if path.endswith(".db"):
            import ase.db

            for row in ase.db.connect(path).select():
                yield row.toatoms()
            return
        files = (
            sorted(glob.glob(os.path.join(path, "*")))
            if os.path.isdir(path)
            else sorted(glob.glob(path))
        )
        if not files:
            raise InputError(f"no structure files match {path!r}")
        for f in files:
            yield from iread(f, ":")
        return
    if isinstance(structures, Iterable):
        for k, atoms in enumerate(structures):
            if not isinstance(atoms, Atoms):
                raise InputError(f"structure {k} is a {type(atoms).__name__}, not an ase.Atoms")
            yield atoms
        return
    raise InputError(
        f"structures must be Atoms, a list or iterator of them, a glob/folder of files or an "
        f"ase.db path, not {type(structures).__name__}"
    )


def _status(store: Store, row_id: int) -> str | None:
    return store.db.get(id=row_id).get("status")


def _record(row: Any) -> dict[str, Any]:
    """A database row as the columns of :meth:`ScreenResult.to_dataframe`."""
    record = {
        "key": row.key,
        "row_id": row.id,
        "formula": row.formula,
        "n_atoms": row.natoms,
        "status": row.get("status"),
        "error": row.get("error"),
        "energy": row.get("energy"),
        "energy_per_atom": _per_atom(row.get("energy"), row.natoms),
    }
    record.update(_numbers(row, exclude=record))
    return record


def _numbers(row: Any, exclude: Any = ()) -> dict[str, Any]:
    """A row's task numbers under the task's own names (``fmax``, not the stored
    ``task_fmax``), leaving out the screen's bookkeeping and the names in ``exclude``."""
    out = {}
    for column, value in row.key_value_pairs.items():
        name = task_name(column)
        if column in _META_KEYS or name in exclude or column in exclude:
            continue
        out[name] = value
    return out


def _per_atom(energy: Any, n_atoms: int) -> float | None:
    return float(energy) / n_atoms if energy is not None and n_atoms else None
