"""Many relaxations advancing together: one model call per optimizer step for the whole batch.

Each structure keeps its own ASE optimizer (FIRE by default) — the field's implementation,
unchanged — and its own cell filter for a cell relaxation. Between optimizer steps the
forces (and stresses) of every structure in flight come from one batched
:meth:`~nnp_lab.potentials.Potential.evaluate` call and are handed to the structures as
single-point results, so each optimizer reads exactly what a calculator would have given
it. Converged (or exhausted) structures leave the batch and the next ones enter
(in-flight batching): the batch stays full while there is work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from nnp_lab.errors import InputError
from nnp_lab.potentials import Potential
from nnp_lab.simulate._optimizers import OPTIMIZERS, resolve_optimizer

__all__ = ["RelaxOutcome", "relax_in_batches"]


@dataclass
class RelaxOutcome:
    """How one structure's relaxation in the batch ended.

    Attributes
    ----------
    index : int
        Position of the structure in the input stream.
    atoms : ase.Atoms or None
        The relaxed structure with its final energy/forces(/stress) as single-point results
        (None when it failed).
    energy : float
    fmax : float
        Final largest force (eV/Å; with ``cell=True`` the cell filter's forces included).
    n_steps : int
    converged : bool
    error : str or None
        Why it failed (it never entered the batch, or the model returned NaN).
    """

    index: int
    atoms: Atoms | None
    energy: float = float("nan")
    fmax: float = float("nan")
    n_steps: int = 0
    converged: bool = False
    error: str | None = None


@dataclass
class _InFlight:
    index: int
    atoms: Atoms
    optimizer: Any
    n_steps: int = 0
    last: dict[str, Any] = field(default_factory=dict)


def relax_in_batches(
    items: Iterable[tuple[int, Atoms]],
    potential: Potential,
    *,
    fmax: float = 0.05,
    steps: int = 500,
    cell: bool = False,
    optimizer: str | type = "FIRE",
    max_structures: int = 64,
    max_atoms: int = 4096,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[RelaxOutcome]:
    """Relax a stream of structures in batches; yields each outcome as soon as it is done.

    Parameters
    ----------
    items
        ``(index, atoms)`` pairs, consumed lazily (the structures are copied on entry).
    potential
        The model (one batched call per optimizer step).
    fmax, steps, cell, optimizer
        As in :func:`nnp_lab.simulate.relax`.
    max_structures, max_atoms
        The batch holds at most this many structures and atoms at once.
    should_stop
        Checked before every step; when it returns True the structures in flight are
        abandoned (not yielded) and the generator ends.

    Yields
    ------
    RelaxOutcome
        In completion order (not input order).
    """
    _, opt_cls = resolve_optimizer(optimizer, OPTIMIZERS)
    source = iter(items)
    batch: list[_InFlight] = []
    exhausted = False
    while True:
        if should_stop():
            return
        # fill the batch
        while not exhausted and len(batch) < max_structures:
            if sum(len(b.atoms) for b in batch) >= max_atoms and batch:
                break
            try:
                index, atoms = next(source)
            except StopIteration:
                exhausted = True
                break
            entered = _enter(index, atoms, potential, opt_cls, cell, fmax)
            if isinstance(entered, RelaxOutcome):
                yield entered
            else:
                batch.append(entered)
        if not batch:
            return
        yield from _advance(batch, potential, cell, steps)


def _enter(
    index: int, atoms: Atoms, potential: Potential, opt_cls: Any, cell: bool, fmax: float
) -> _InFlight | RelaxOutcome:
    """A structure checked and given its optimizer, or the reason it cannot enter."""
    try:
        potential.check(atoms)
        if cell and not atoms.pbc.all():
            raise InputError("a cell relaxation needs a structure periodic in 3D")
    except Exception as exc:  # noqa: BLE001 - a bad structure is a failed row, not a crash
        return RelaxOutcome(index, None, error=f"{type(exc).__name__}: {exc}")
    a = atoms.copy()
    a.calc = None
    target: Any = a
    if cell:
        from ase.filters import FrechetCellFilter

        target = FrechetCellFilter(a)
    opt = opt_cls(target, logfile=None)
    opt.fmax = fmax
    return _InFlight(index, a, opt)


def _advance(
    batch: list[_InFlight], potential: Potential, cell: bool, steps: int
) -> Iterator[RelaxOutcome]:
    """One batched evaluation, then one optimizer step per structure; finished ones leave."""
    props = ("energy", "forces", "stress") if cell else ("energy", "forces")
    results = potential.evaluate([b.atoms for b in batch], props, validate=False)
    keep = []
    for b, res in zip(batch, results):
        if not np.isfinite(res["energy"]) or not np.all(np.isfinite(res["forces"])):
            yield RelaxOutcome(b.index, None, n_steps=b.n_steps, error="the model returned NaN")
            continue
        b.atoms.calc = SinglePointCalculator(b.atoms, **res)
        b.last = res
        gradient = b.optimizer.optimizable.get_gradient()
        fmax_now = float(np.sqrt((gradient.reshape(-1, 3) ** 2).sum(axis=1).max()))
        converged = bool(b.optimizer.converged())
        if converged or b.n_steps >= steps:
            yield _finished(b, fmax_now, converged)
            continue
        b.optimizer.step()
        b.optimizer.nsteps += 1
        b.n_steps += 1
        keep.append(b)
    batch[:] = keep


def _finished(b: _InFlight, fmax_now: float, converged: bool) -> RelaxOutcome:
    out = b.atoms.copy()
    out.calc = SinglePointCalculator(out, **b.last)
    return RelaxOutcome(
        index=b.index,
        atoms=out,
        energy=float(b.last["energy"]),
        fmax=fmax_now,
        n_steps=b.n_steps,
        converged=converged,
    )
