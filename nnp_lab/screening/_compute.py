"""What a screen computes, as a stream of :class:`Outcome` objects: the same code in the
screening process and on a Dask worker (which returns a chunk's outcomes to the client, where
the rows are written)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from nnp_lab.errors import InputError
from nnp_lab.potentials import Potential
from nnp_lab.screening._batched_relax import relax_in_batches

__all__ = ["Outcome", "compute", "task_function", "TASKS"]

#: Built-in task names (besides the names of :mod:`nnp_lab.properties` and callables).
TASKS = ("energy", "relax")

Item = tuple[int, Atoms, str]  # (input index, structure, row key)


@dataclass
class Outcome:
    """One structure's result: a row to write.

    Attributes
    ----------
    index, key
        Input position and content key.
    atoms
        The structure to store (relaxed / with single-point results; the input when failed).
    numbers
        Scalar results (key-value pairs of the row).
    arrays
        Array results (the row's data).
    error
        None, or why it failed.
    """

    index: int
    key: str
    atoms: Atoms
    numbers: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def task_function(task: Any, options: dict[str, Any]) -> Callable[[Atoms, Potential], Any] | None:
    """The per-structure function of a property or callable task (None for the batched
    built-ins ``"energy"`` and ``"relax"``)."""
    if callable(task):
        return task
    if task in TASKS:
        return None
    from nnp_lab import properties

    function = getattr(properties, str(task), None) if isinstance(task, str) else None
    if function is None or isinstance(function, type) or not callable(function):
        names = [n for n in properties.__all__ if n[0].islower()]
        raise InputError(
            f"unknown task {task!r}; choose 'energy', 'relax', a property ({', '.join(names)}) "
            "or a callable (atoms, potential) -> dict"
        )

    def run_property(atoms: Atoms, pot: Potential) -> Any:
        return function(atoms, pot, **options)

    return run_property


def compute(
    items: Iterable[Item],
    potential: Potential,
    spec: dict[str, Any],
    function: Callable[[Atoms, Potential], Any] | None,
    *,
    n_batch: int,
    atom_bound: int,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[Outcome]:
    """The outcomes of ``items`` under the task ``spec`` (in completion order).

    ``should_stop`` is checked before every batched relaxation step (the structures in
    flight are then abandoned, not yielded); single points and property tasks end at the
    next structure or batch when the consumer stops pulling.
    """
    if spec["name"] == "relax":
        yield from _relax(items, potential, spec, n_batch, atom_bound, should_stop)
    elif spec["name"] == "energy":
        yield from _energies(items, potential, n_batch, atom_bound)
    else:
        assert function is not None
        for index, atoms, key in items:
            yield _one(function, index, atoms, key, potential)


def _failed(index: int, atoms: Atoms, key: str, exc: BaseException | str) -> Outcome:
    a = atoms.copy()
    a.calc = None
    error = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return Outcome(index, key, a, error=error)


def _energies(
    items: Iterable[Item], pot: Potential, n_batch: int, atom_bound: int
) -> Iterator[Outcome]:
    """Single points in batches bounded by structure count and atoms."""
    chunk: list[Item] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= n_batch or sum(len(a) for _, a, _ in chunk) >= atom_bound:
            yield from _energy_chunk(chunk, pot)
            chunk = []
    if chunk:
        yield from _energy_chunk(chunk, pot)


def _energy_chunk(chunk: list[Item], pot: Potential) -> Iterator[Outcome]:
    good = []
    for index, atoms, key in chunk:
        try:
            pot.check(atoms)
            good.append((index, atoms, key))
        except Exception as exc:  # noqa: BLE001 - a bad structure is a failed row
            yield _failed(index, atoms, key, exc)
    if not good:
        return
    results = pot.evaluate([a for _, a, _ in good], validate=False)
    for (index, atoms, key), res in zip(good, results):
        out = atoms.copy()
        out.calc = SinglePointCalculator(out, **res)
        fmax = float(np.sqrt((res["forces"] ** 2).sum(axis=1).max())) if len(atoms) else 0.0
        yield Outcome(index, key, out, {"fmax": fmax})


def _relax(
    items: Iterable[Item],
    pot: Potential,
    spec: dict[str, Any],
    n_batch: int,
    atom_bound: int,
    should_stop: Callable[[], bool],
) -> Iterator[Outcome]:
    inputs: dict[int, tuple[Atoms, str]] = {}

    def stream() -> Iterator[tuple[int, Atoms]]:
        for index, atoms, key in items:
            inputs[index] = (atoms, key)
            yield index, atoms

    for o in relax_in_batches(
        stream(),
        pot,
        fmax=spec["fmax"],
        steps=spec["steps"],
        cell=spec["cell"],
        max_structures=n_batch,
        max_atoms=atom_bound,
        should_stop=should_stop,
    ):
        atoms, key = inputs.pop(o.index)
        if o.atoms is None:
            yield _failed(o.index, atoms, key, o.error or "failed")
        else:
            numbers = {"fmax": o.fmax, "n_steps": o.n_steps, "converged": o.converged}
            yield Outcome(o.index, key, o.atoms, numbers)


def _one(
    function: Callable[..., Any], index: int, atoms: Atoms, key: str, pot: Potential
) -> Outcome:
    """A property or a callable on one structure; its scalar numbers become the row's."""
    try:
        out = function(atoms, pot)
        numbers = out.to_dict() if hasattr(out, "to_dict") else dict(out)
    except Exception as exc:  # noqa: BLE001 - a failing structure is a failed row
        return _failed(index, atoms, key, exc)
    a = atoms.copy()
    a.calc = None
    flat = {k: v for k, v in numbers.items() if not isinstance(v, (dict, list))}
    arrays = {k: v for k, v in numbers.items() if isinstance(v, list) and _numeric(v)}
    return Outcome(index, key, a, flat, arrays)


def _numeric(values: list) -> bool:
    try:
        np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return False
    return True
