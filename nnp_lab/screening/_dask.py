"""A screen on a Dask cluster: chunks of structures go to the workers, each worker loads the
potential once and runs the same batched code as one process does, and the outcomes come back
as they finish (``as_completed``) to be written by the client.

No scheduler, queue or RPC of our own: a ``dask.distributed.Client`` — a ``LocalCluster``
(``client="local"``), or any cluster the user connects to (``dask-jobqueue`` on SLURM/PBS,
``dask-cuda`` for one GPU per worker on a multi-GPU node; the code path is the same).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from nnp_lab.errors import InputError
from nnp_lab.potentials import Potential

__all__ = ["local_client", "run_on_cluster", "worker_potential", "LOADS"]

logger = logging.getLogger(__name__)

#: Potentials loaded in this (worker) process: ``{spec: Potential}``.
_CACHE: dict[str, Potential] = {}
#: How many times this process loaded a potential (the tests read it on every worker).
LOADS = {"count": 0}


def worker_potential(spec: str) -> Potential:
    """The potential named ``spec``, loaded once per worker process and then reused."""
    pot = _CACHE.get(spec)
    if pot is None:
        from nnp_lab.potentials import load_potential

        name, _, dispersion = spec.partition("+")
        pot = load_potential(name, dispersion=dispersion or None)
        _CACHE[spec] = pot
        LOADS["count"] += 1
    return pot


def local_client(n_workers: int | None = None) -> Any:
    """A client of a new ``LocalCluster`` on loopback: ``n_workers`` single-threaded worker
    processes (default: one per usable core, so that the torch threads of different workers do
    not oversubscribe the cores). Closing the client closes the cluster too."""
    try:
        from distributed import Client
    except ImportError:
        raise InputError(
            "client='local' needs Dask: pip install 'nnp_lab[dask]' (dask[distributed])"
        ) from None
    from nnp_lab.threads import usable_cpus

    # a Client that starts its own LocalCluster owns it: closing the client stops it
    return Client(
        n_workers=n_workers or max(1, usable_cpus()),
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )


def _run_chunk(
    chunk: list[tuple[int, Any, str]],
    potential: str | Potential,
    spec: dict[str, Any],
    task: Any,
    options: dict[str, Any],
    n_batch: int,
    atom_bound: int,
) -> list[Any]:
    """On a worker: the outcomes of one chunk."""
    from nnp_lab.screening._compute import compute, task_function
    from nnp_lab.threads import set_threads

    set_threads(1)  # one core per worker process (the cluster is sized that way)
    pot = worker_potential(potential) if isinstance(potential, str) else potential
    function = task_function(task, options)
    return list(compute(chunk, pot, spec, function, n_batch=n_batch, atom_bound=atom_bound))


def run_on_cluster(
    client: Any,
    items: Iterator[tuple[int, Any, str]],
    potential: str | Potential,
    spec: dict[str, Any],
    task: Any,
    options: dict[str, Any],
    *,
    chunk_size: int,
    n_batch: int,
    atom_bound: int,
) -> Iterator[Any]:
    """Submit ``items`` in chunks and yield every outcome as its chunk finishes.

    ``potential`` is a registered name (each worker loads it once) or a Potential object
    (sent to every worker once, with ``client.scatter(..., broadcast=True)``).
    """
    from distributed import as_completed

    shared = potential if isinstance(potential, str) else client.scatter(potential, broadcast=True)
    futures = as_completed()
    pending: set[Any] = set()
    chunk: list[tuple[int, Any, str]] = []

    def submit(batch: list[tuple[int, Any, str]]) -> None:
        future = client.submit(
            _run_chunk, batch, shared, spec, task, options, n_batch, atom_bound, pure=False
        )
        pending.add(future)
        futures.add(future)

    def finished() -> list[Any]:
        future = next(futures)
        pending.discard(future)
        return list(future.result())

    # at most two chunks per worker in flight: the input stream is never all in memory
    limit = 2 * max(1, len(client.scheduler_info().get("workers", {})))
    try:
        for item in items:
            chunk.append(item)
            if len(chunk) >= chunk_size:
                submit(chunk)
                chunk = []
                while len(pending) >= limit:
                    yield from finished()
        if chunk:
            submit(chunk)
        while pending:
            yield from finished()
    finally:
        # stopped early (Stop, Ctrl-C, an error): the chunks still out are abandoned
        if pending:
            try:
                client.cancel(list(pending))
            except Exception:  # a closed client: nothing left to cancel there
                logger.debug("cancelling %d chunks failed", len(pending), exc_info=True)
