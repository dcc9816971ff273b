"""``screen``: one task over many structures, batched, stored row by row, resumable."""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ase import Atoms

from nnp_lab import validation
from nnp_lab.errors import InputError
from nnp_lab.potentials import Potential
from nnp_lab.potentials.registry import resolve_potential
from nnp_lab.screening._compute import TASKS, compute, task_function
from nnp_lab.screening._store import Store, content_key

__all__ = ["ScreenResult", "screen", "load", "TASKS"]


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
    """

    db: str
    keys: list[str]
    n_done: int = 0
    n_failed: int = 0
    n_skipped: int = 0
    wall_time_s: float = 0.0

    def to_dataframe(self) -> Any:
        """One row per input structure (input order; for :func:`load`: database order):
        ``key``, ``formula``, ``n_atoms``, ``status``, ``error``, ``energy`` (eV), ``row_id``
        and every number the task stored."""
        import pandas as pd

        by_key: dict[str, dict[str, Any]] = {}
        for row in Store(self.db).rows():
            record = {
                "key": row.key,
                "row_id": row.id,
                "formula": row.formula,
                "n_atoms": row.natoms,
                "status": row.get("status"),
                "error": row.get("error"),
                "energy": row.get("energy"),
            }
            record.update(
                {k: v for k, v in row.key_value_pairs.items() if k not in record and k != "key"}
            )
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
        Show a progress bar.
    **task_options
        Keywords of a property task.

    Returns
    -------
    ScreenResult
        ``to_dataframe()``, ``failed``, ``atoms(row_id)``.

    Raises
    ------
    InputError
        An unknown task, bad options, no structures.
    """
    started = time.perf_counter()
    pot = resolve_potential(potential)
    spec = _spec(task, task_options, fmax=fmax, steps=steps, cell=cell)
    function = task_function(task, task_options)
    model = {"name": pot.name, "version": str(pot.version)}
    gpu = str(pot.device).startswith("cuda")
    n_batch = (512 if gpu else 64) if batch == "auto" else validation.integer("batch", batch)
    atom_bound = max_batch_atoms or (32768 if gpu else 4096)
    store = Store(db)
    done = store.keys()
    if retry_failed:
        done = {k: i for k, i in done.items() if _status(store, i) == "done"}
    result = ScreenResult(str(db), keys=[])
    meta = {"task": spec["name"], "model": pot.name, "model_version": str(pot.version)}

    def todo() -> Iterator[tuple[int, Atoms, str]]:
        for index, atoms in enumerate(_inputs(structures)):
            key = content_key(atoms, spec, model)
            result.keys.append(key)
            if key in done:
                result.n_skipped += 1
                continue
            yield index, atoms, key

    own_client = client == "local"
    if own_client:
        from nnp_lab.screening._dask import local_client

        client = local_client()
    if client is None:
        outcomes = compute(todo(), pot, spec, function, n_batch=n_batch, atom_bound=atom_bound)
    else:
        from nnp_lab.screening._dask import run_on_cluster

        # a registered model is loaded by name on each worker; an object is sent once
        shared = pot if isinstance(potential, Potential) else pot.name
        outcomes = run_on_cluster(
            client,
            todo(),
            shared,
            spec,
            task,
            task_options,
            chunk_size=validation.integer("chunk_size", chunk_size, minimum=1),
            n_batch=n_batch,
            atom_bound=atom_bound,
        )
    bar = _progress(live)
    try:
        for o in outcomes:
            if o.error is None:
                store.write_done(o.key, o.atoms, o.index, o.numbers, o.arrays, meta)
                result.n_done += 1
            else:
                store.write_failed(o.key, o.atoms, o.index, o.error, meta)
                result.n_failed += 1
            bar.update(1)
    finally:
        bar.close()
        if own_client:
            client.close()  # local_client's close stops its cluster too
    result.wall_time_s = time.perf_counter() - started
    return result


def _spec(
    task: Any, options: dict[str, Any], *, fmax: float, steps: int, cell: bool
) -> dict[str, Any]:
    """The task's name and options: part of every row key."""
    if callable(task):
        name = getattr(task, "__qualname__", repr(task))
        return {"name": f"callable:{getattr(task, '__module__', '')}.{name}", **options}
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


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(live: bool) -> Any:
    if not live:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(desc="screen", unit="structure")
