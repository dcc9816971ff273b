"""The run engine shared by relax, MD and NEB: events, subscribers, trajectories, provenance.

A run is a generator. :meth:`Run.irun` yields one small frozen event per step; live widgets,
progress bars and trajectory writers are all consumers of that stream (subscribers are
called with every event before it is yielded). :meth:`Run.run` drains the generator and
returns the result. A run ends early, cleanly, when :meth:`Run.stop` is called (from another
thread or a subscriber), and on ``KeyboardInterrupt`` it closes its trajectory first, so the
frames written so far are readable.
"""

from __future__ import annotations

import abc
import datetime as _dt
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from nnp_lab import display
from nnp_lab.errors import SimulationError
from nnp_lab.potentials import Potential, resolve_potential

__all__ = [
    "Event",
    "Run",
    "RunResult",
    "TrajectoryWriter",
    "snapshot",
    "frozen_array",
    "attach_progress",
    "run_to_end",
]

logger = logging.getLogger(__name__)


def frozen_array(values: Any, dtype: Any = np.float64) -> np.ndarray:
    """A read-only copy of ``values`` (events must not change after they are emitted)."""
    arr = np.array(values, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True)
class Event:
    """One step of a run.

    Attributes
    ----------
    run : str
        ``"relax"``, ``"md"``, ``"neb"``.
    step : int
        0 for the starting structure, then 1, 2, ...
    positions : numpy.ndarray
        Cartesian positions in Å, shape ``(n, 3)`` (for NEB: ``(n_images, n, 3)``); read-only.
    cell : numpy.ndarray
        Cell (3, 3) in Å, ASE row vectors; read-only.
    energy : float
        Potential energy in eV (for NEB: the highest image energy).
    """

    run: str
    step: int
    positions: np.ndarray
    cell: np.ndarray
    energy: float


def snapshot(atoms: Atoms, results: dict[str, Any] | None = None) -> Atoms:
    """A detached copy of ``atoms`` with its energy/forces/stress attached as a single point.

    Parameters
    ----------
    atoms
        Structure (its calculator, if any, is not copied).
    results
        ``{"energy": ..., "forces": ..., "stress": ...}`` to attach; taken from
        ``atoms.calc.results`` when omitted.
    """
    copy = atoms.copy()
    copy.calc = None
    if results is None and atoms.calc is not None:
        results = atoms.calc.results
    if results:
        keep = {
            k: results[k] for k in ("energy", "forces", "stress", "free_energy") if k in results
        }
        copy.calc = SinglePointCalculator(copy, **keep)
    return copy


class TrajectoryWriter:
    """Write frames to an ASE ``.traj`` file as they are produced, flushing each one.

    A run killed at any point (``KeyboardInterrupt``, :meth:`Run.stop`, even ``kill -9``)
    leaves a file that ASE reads up to its last complete frame.

    Parameters
    ----------
    path
        Output path (``.traj``; other extensions ASE can append to, such as ``.extxyz``, also
        work but are slower).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._traj = None
        self.n_frames = 0
        if self.path.suffix == ".traj":
            from ase.io.trajectory import Trajectory

            self._traj = Trajectory(str(self.path), mode="w")
        else:
            self.path.write_text("")

    def write(self, atoms: Atoms) -> None:
        """Append one frame (with its single-point results) and flush it to disk."""
        if self._traj is not None:
            self._traj.write(atoms)  # ASE's ULM writer updates its item count per frame
            fd = getattr(getattr(self._traj, "backend", None), "fd", None)
            if fd is not None:
                fd.flush()
        else:
            from ase.io import write

            write(str(self.path), atoms, append=True)
        self.n_frames += 1

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._traj is not None:
            self._traj.close()
            self._traj = None

    def __enter__(self) -> TrajectoryWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@dataclass
class RunResult:
    """Fields every run result has.

    Attributes
    ----------
    trajectory : pathlib.Path or None
        The trajectory file written while the run went on (None when not asked for).
    stopped : bool
        True when the run ended early (``stop()``, ``KeyboardInterrupt``).
    provenance : dict
        Model name/version/device/dtype, package versions, run parameters, timing.
    """

    trajectory: Path | None = field(default=None, kw_only=True)
    stopped: bool = field(default=False, kw_only=True)
    provenance: dict[str, Any] = field(default_factory=dict, kw_only=True)

    def summary(self) -> str:
        """A few lines describing the outcome."""
        return self._summary_text([f"{type(self).__name__}"])

    def _summary_text(self, lines: list[str], trajectory_detail: str = "") -> str:
        """``lines`` and, when one was written, the trajectory line, as one text."""
        if self.trajectory is not None:
            lines = [*lines, f"  trajectory: {self.trajectory}{trajectory_detail}"]
        return "\n".join(lines)

    @property
    def _trajectory_repr(self) -> str:
        return repr(None if self.trajectory is None else str(self.trajectory))

    def __str__(self) -> str:
        return self.summary()


class Run(abc.ABC):
    """Base class of every run (relaxation, MD, NEB).

    Subclasses implement :meth:`_steps` (a generator of events that does the work) and
    :meth:`_result` (builds the result from the run's state). This class owns the stop flag,
    subscribers, trajectory file, timing and provenance.

    Parameters
    ----------
    potential
        A :class:`~nnp_lab.potentials.Potential`, a registered name, or None (default model).
    trajectory
        Path of a trajectory file to write while running, or None.
    """

    kind: str = "run"
    #: What one recorded frame is called in messages ("frames"; NEB: "bands").
    frame_noun: str = "frames"

    def __init__(
        self,
        potential: Potential | str | None = None,
        *,
        trajectory: str | os.PathLike | None = None,
    ) -> None:
        self.potential = resolve_potential(potential)
        self.trajectory_path = None if trajectory is None else Path(trajectory)
        self._writer: TrajectoryWriter | None = None
        self._stop = threading.Event()
        self._resume = threading.Event()  # cleared while paused
        self._resume.set()
        self._held = threading.Event()  # set while the run waits between steps (paused)
        self._held_step: int | None = None
        self._subscribers: list[Callable[[Event], None]] = []
        self._started: float | None = None
        self._wall_time = 0.0
        self.result: Any = None
        self.stopped = False
        self.parameters: dict[str, Any] = {}

    # -- control ------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the run to end after the current step (safe from any thread)."""
        self._stop.set()
        self._resume.set()  # a paused run must wake up to end

    def pause(self) -> None:
        """Hold the run after the current step until :meth:`resume` (safe from any thread).

        Only useful when the run is driven from another thread than the caller's (live
        widgets do that): a paused ``irun()`` blocks its thread between steps.
        """
        self._resume.clear()

    def resume(self) -> None:
        """Continue a paused run."""
        self._resume.set()

    @property
    def paused(self) -> bool:
        """Whether the run is paused."""
        return not self._resume.is_set()

    @property
    def held(self) -> bool:
        """Whether a paused run has finished its step in flight and now waits between steps.

        :attr:`paused` turns True at once when :meth:`pause` is called; ``held`` only once
        the step that was running then is done, so nothing more happens until :meth:`resume`.
        """
        return self._held.is_set()

    @property
    def held_step(self) -> int | None:
        """The step after which a held run waits (None while not held)."""
        return self._held_step if self._held.is_set() else None

    def wait_held(self, timeout: float | None = None) -> bool:
        """Block until the run is held (see :attr:`held`); returns whether it is."""
        return self._held.wait(timeout)

    @property
    def stop_requested(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stop.is_set()

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[Event], None]:
        """Call ``callback(event)`` for every event, before it is yielded. Returns callback."""
        self._subscribers.append(callback)
        return callback

    def unsubscribe(self, callback: Callable[[Event], None]) -> None:
        """Stop calling ``callback``."""
        self._subscribers.remove(callback)

    # -- driving ------------------------------------------------------------------------
    def irun(self) -> Iterator[Event]:
        """Run step by step, yielding one event per step; sets :attr:`result` at the end."""
        if self._started is not None:
            raise RuntimeError(f"this {type(self).__name__} already ran; create a new one")
        self._started = time.perf_counter()
        started_at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        if self.trajectory_path is not None:
            self._writer = TrajectoryWriter(self.trajectory_path)
        finished = False
        try:
            for event in self._steps():
                for callback in list(self._subscribers):
                    callback(event)
                yield event
                if not self._resume.is_set():
                    self._held_step = event.step
                    self._held.set()
                    self._resume.wait()
                    self._held.clear()
                if self._stop.is_set():
                    self.stopped = True
                    logger.info("%s stopped at step %d", self.kind, event.step)
                    break
            finished = True
        finally:
            if not finished:
                self.stopped = True
            if self._writer is not None:
                self._writer.close()
            self._wall_time = time.perf_counter() - self._started
            self.result = self._result()
            self.result.stopped = self.stopped
            self.result.trajectory = self.trajectory_path
            self.result.provenance = self.provenance(started_at)

    def run(self) -> Any:
        """Run to the end (or until stopped) and return the result.

        A ``KeyboardInterrupt`` ends the run cleanly: the trajectory is closed and the
        partial result (``stopped=True``) is returned with a warning.

        Raises
        ------
        SimulationError
            When the run becomes unphysical (non-finite energies or forces, for MD also
            runaway forces or temperatures). The partial result, up to the last good step,
            is attached as ``exc.result``; the trajectory file is closed and readable.
        """
        try:
            for _ in self.irun():
                pass
        except SimulationError as exc:
            exc.result = self.result
            raise
        except KeyboardInterrupt:
            import warnings

            warnings.warn(
                f"{self.kind} interrupted; returning the partial result (stopped=True)"
                + (f", trajectory kept in {self.trajectory_path}" if self.trajectory_path else ""),
                stacklevel=2,
            )
        return self.result

    def _kept_note(self) -> str:
        """Where the frames recorded so far are, for error messages (ends with a space)."""
        if self.trajectory_path is None:
            return (
                f"No trajectory was written (pass trajectory='{self.kind}.traj' to keep "
                f"the {self.frame_noun}). "
            )
        n = self._writer.n_frames if self._writer is not None else 0
        return (
            f"The trajectory {self.trajectory_path} holds the {n} {self.frame_noun} "
            "recorded before. "
        )

    def write_frame(self, atoms: Atoms) -> None:
        """Append a frame to the trajectory file, if one was asked for."""
        if self._writer is not None:
            self._writer.write(atoms)

    def keep_frame(self, atoms: Atoms, step: int, **info: Any) -> Atoms:
        """A :func:`snapshot` of ``atoms`` with ``step`` (and ``info``) in its ``info``,
        written to the trajectory; returns the frame."""
        frame = snapshot(atoms)
        frame.info["step"] = step
        frame.info.update(info)
        self.write_frame(frame)
        return frame

    def event_fields(self, atoms: Atoms, step: int) -> dict[str, Any]:
        """The :class:`Event` fields every run's event takes from its structure, but the
        energy: ``run``, ``step`` and read-only copies of the positions and the cell."""
        return {
            "run": self.kind,
            "step": step,
            "positions": frozen_array(atoms.positions),
            "cell": frozen_array(atoms.cell[:]),
        }

    def provenance(self, started_at: str | None = None) -> dict[str, Any]:
        """Model and package provenance plus this run's parameters and timing."""
        prov = self.potential.provenance()
        prov.update(
            {
                "run": self.kind,
                "parameters": dict(self.parameters),
                "started": started_at,
                "wall_time_s": round(self._wall_time, 3),
            }
        )
        return prov

    @abc.abstractmethod
    def _steps(self) -> Iterator[Event]:
        """Do the work, yielding an event per step."""

    @abc.abstractmethod
    def _result(self) -> Any:
        """Build the result object from the current state (also after an early stop)."""


def attach_progress(run: Run, total: int | None, *, desc: str | None = None) -> Callable[[], None]:
    """Show a tqdm progress bar fed by ``run``'s events; returns a function that closes it.

    This is what ``live=True`` shows when no notebook widget front end is available, and
    what the command line uses.

    Parameters
    ----------
    run
        The run to follow.
    total
        Expected number of steps (None: unknown).
    desc
        Bar label (defaults to the run kind).
    """
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc or run.kind, unit="step", leave=True)
    last = [0]

    def on_event(event: Event) -> None:
        # Advance by the step difference: MD reports only every `interval` steps.
        if event.step > last[0]:
            bar.update(event.step - last[0])
            last[0] = event.step
        bar.set_postfix_str(f"E={event.energy:.4f} eV", refresh=False)

    run.subscribe(on_event)

    def close() -> None:
        bar.close()
        if on_event in run._subscribers:
            run.unsubscribe(on_event)

    return close


def run_to_end(run: Run, *, live: bool = False, total: int | None = None) -> Any:
    """Drain ``run`` and return its result; with ``live=True`` show its progress meanwhile.

    The functional forms (``relax``, ``md``, ``neb``) end with this call.

    Parameters
    ----------
    run
        A run that has not started.
    live
        Show progress while running: inside a Jupyter kernel, the live display registered
        for runs (:mod:`nnp_lab.display`; nnp_lab's is the live view of
        :func:`nnp_lab.widgets.watch`: viewer, plots, Stop/Pause); elsewhere a tqdm bar.
    total
        Expected number of steps, for the progress display.
    """
    show = display.live_display("run") if live else None
    if show is not None:
        return show(run, total=total)
    close = attach_progress(run, total) if live else None
    try:
        return run.run()
    finally:
        if close is not None:
            close()
