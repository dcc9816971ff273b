"""Watch a run live in a notebook: 3D view, plots, status and Stop / Pause / temperature controls.

:class:`LiveRun` is an ``ipywidgets.VBox`` that shows, *before the first step*, a
:class:`~nnp_lab.widgets.Viewer` of the starting structure (for NEB: the band, all images
overlaid) beside plotly ``FigureWidget`` plots (see :mod:`nnp_lab.widgets.plots`), a row of
controls and a status line. :meth:`LiveRun.start` runs the engine in a background thread;
:meth:`LiveRun.wait` blocks until it ends and returns the result. :func:`watch` does both,
and is what ``relax(..., live=True)``, ``md(..., live=True)`` and ``neb(..., live=True)`` call
inside a Jupyter kernel.

How the widgets stay live and the buttons stay clickable
--------------------------------------------------------
* The engine runs in a daemon thread. Its events are only *recorded* by a subscriber (a
  lock and a list append); the viewer and the status line are updated at most
  ``max_rate_hz`` times per second by a :class:`~nnp_lab.widgets._throttle.FrameThrottle`,
  the plots at most ``min(max_rate_hz, MAX_PLOT_RATE_HZ)`` times (every point is kept and
  sent in batches); the final state is always shown. Comm messages may be sent from any
  thread: ipykernel routes IOPub traffic through its thread-safe IOPub thread.
* A kernel whose main thread is busy (the cell that called :meth:`LiveRun.wait`) does not
  process incoming widget messages, so a Stop click would wait until the cell finishes.
  While it waits, :meth:`LiveRun.wait` therefore handles them itself, every 20 ms: widget
  (comm) messages at once, every other message (the next cell's ``execute_request``, ...)
  handed back to the kernel to run after the cell, in order. How, for ipykernel 6 and 7:
  :class:`~nnp_lab.widgets._kernel_pump.KernelPump`.
* ``KeyboardInterrupt`` (the notebook's interrupt button) during :meth:`LiveRun.wait` stops
  the run cleanly and returns the partial result.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import numpy as np
from ase import Atoms

from nnp_lab.errors import InputError
from nnp_lab.widgets._kernel_pump import wait_handling_widgets
from nnp_lab.widgets._live_view import PLOT_WIDTH_PX as PLOT_WIDTH_PX
from nnp_lab.widgets._live_view import (
    band_images,
    band_labels,
    control_buttons,
    event_label,
    preview_band,
    start_atoms,
    status_html,
    temperature_slider,
    thinned,
    view_row,
)
from nnp_lab.widgets._throttle import EventLog, FrameThrottle
from nnp_lab.widgets.plots import LivePlot, make_live_plot
from nnp_lab.widgets.viewer import Viewer

if TYPE_CHECKING:
    from nnp_lab.simulate import Run

__all__ = ["LiveRun", "watch"]

logger = logging.getLogger(__name__)

#: How often :meth:`LiveRun.wait` handles incoming widget messages (seconds).
POLL_INTERVAL_S = 0.02
#: Most frames loaded into the trajectory player after a run (evenly strided, last kept).
MAX_SCRUB_FRAMES = 1000
#: Most plot redraws per second (the viewer and status follow ``max_rate_hz``). Plotly
#: re-renders every panel on each update: ~0.1 s per update for a 3-panel figure in a
#: software-rendered browser on a busy 2-core machine, so 10 Hz saturated the page (6 fps)
#: while 2-4 Hz left it responsive (40+ fps). Points are batched, none is dropped.
MAX_PLOT_RATE_HZ = 4.0


# ---------------------------------------------------------------------------------------------
# The widget
# ---------------------------------------------------------------------------------------------


def _checked_arguments(run: Any, total: Any, viewer: Any, max_rate_hz: Any) -> float:
    """Check :class:`LiveRun`'s arguments; returns ``max_rate_hz`` as a float."""
    from nnp_lab.simulate import Run

    if not isinstance(run, Run):
        raise TypeError(
            f"LiveRun needs a run object (Relaxation, MolecularDynamics, NEBRun), got "
            f"{type(run).__name__}; create one with nnp_lab.simulate.Relaxation(atoms, ...)"
        )
    if getattr(run, "_started", None) is not None:
        raise RuntimeError(
            f"this {type(run).__name__} has already run; a run can be watched only once — "
            "create a new run object"
        )
    try:
        rate = float(max_rate_hz)
    except (TypeError, ValueError):
        raise InputError(f"max_rate_hz must be a number > 0, got {max_rate_hz!r}") from None
    if not rate > 0:
        raise InputError(f"max_rate_hz must be > 0 updates per second, got {max_rate_hz!r}")
    if total is not None and (
        isinstance(total, bool) or not isinstance(total, (int, np.integer)) or total < 0
    ):
        raise InputError(f"total must be a non-negative integer or None, got {total!r}")
    if viewer is not None and not isinstance(viewer, Viewer):
        raise TypeError(f"viewer must be an nnp_lab.widgets.Viewer, got {type(viewer).__name__}")
    return rate


class LiveRun(widgets.VBox):
    """Live view of a run: 3D viewer, plots, Stop / Pause / temperature controls and a status line.

    Everything is built in the constructor (the first plotly FigureWidget in a kernel takes
    a few seconds), so displaying the widget shows the starting structure and empty plots
    before the first step. :meth:`start` runs the engine in a background thread and returns
    at once (use it from button callbacks); :meth:`wait` blocks until the run ends while
    still handling clicks, and returns the result.

    Parameters
    ----------
    run
        A run that has not started: :class:`~nnp_lab.simulate.Relaxation`,
        :class:`~nnp_lab.simulate.MolecularDynamics`, :class:`~nnp_lab.simulate.NEBRun`
        (or any :class:`~nnp_lab.simulate.Run`; unknown kinds get an energy plot).
    total
        Expected number of steps, shown in the status line (default: the run's ``steps``).
    viewer
        A :class:`~nnp_lab.widgets.Viewer` to show the run in (it is set to the run's
        starting structure); default: a new one.
    max_rate_hz
        Most updates per second of the viewer and the status line (default 10); the plots
        redraw at most ``min(max_rate_hz, MAX_PLOT_RATE_HZ)`` (4) times per second, since
        plotly re-renders every panel on each update. The final state is always shown.
    in_view
        The run plays in ``viewer``, which is already on the page (a builder's preview, an
        editable view): this widget then holds the plots, controls and status only, the
        camera is kept, and ``viewer.running`` is True while the run goes.
    then_edit
        With ``in_view``, a relaxation ends by handing its result to the viewer's editor
        (:meth:`Viewer.resume_editing`) instead of loading its frames into the player.

    Attributes
    ----------
    run
        The run.
    viewer : Viewer
        The 3D view (live positions; after the run, its trajectory or final band to scrub).
    plot : nnp_lab.widgets.plots.LivePlot
        The plots; ``plot.figure`` is the plotly FigureWidget.
    stop_button, pause_button : ipywidgets.Button, ipywidgets.ToggleButton
        The controls (``pause_button.value`` is True while paused).
    temperature_slider : ipywidgets.FloatSlider or None
        Target temperature (K) for MD with a thermostat; moving it calls
        ``run.set_temperature``.
    status : ipywidgets.HTML
        Step, energy, fmax or temperature, elapsed time and steps per second.
    n_updates : int
        Number of throttled viewer/status updates sent so far (``plot.n_draws`` counts plot
        redraws).

    Examples
    --------
    >>> from nnp_lab.simulate import Relaxation
    >>> live = LiveRun(Relaxation(atoms, "emt"))    # doctest: +SKIP
    >>> display(live); live.start()                  # doctest: +SKIP
    >>> result = live.wait()                         # doctest: +SKIP
    """

    def __init__(
        self,
        run: Any,
        *,
        total: int | None = None,
        viewer: Any = None,
        max_rate_hz: float = 10.0,
        in_view: bool = False,
        then_edit: bool = False,
    ) -> None:
        rate = _checked_arguments(run, total, viewer, max_rate_hz)
        if in_view and viewer is None:
            raise InputError("in_view=True plays the run in an existing viewer: pass viewer=")
        # in_view: the run plays in a viewer the user already sees (a builder's preview, the
        # viewer's own Relax button): no second copy of the viewer in this box, the camera is
        # kept. then_edit: a relaxation hands its result back to the viewer's editor instead of
        # loading its frames into the player.
        self._in_view = bool(in_view)
        self._then_edit = bool(then_edit)
        self.run: Run = run
        self.kind: str = getattr(run, "kind", "run")
        self.total = int(total) if total is not None else getattr(run, "steps", None)
        self.max_rate_hz = rate
        self.result: Any = None
        self.error: BaseException | None = None
        self.n_updates = 0
        self._init_state(own_viewer=viewer is None)

        self.viewer: Viewer = viewer if viewer is not None else Viewer(height=440)
        self._show_start()
        self.plot: LivePlot = make_live_plot(run)
        bar = self._make_controls()
        self.status = widgets.HTML(
            value=self._status_html("ready"), layout=widgets.Layout(width="100%")
        )
        top = self.plot.figure if self._in_view else view_row(self.viewer, self.plot.figure)
        super().__init__([top, bar, self.status])
        self.add_class("nnp-lab-live")

        self._throttle: FrameThrottle[bool] = FrameThrottle(self._deliver, rate, lock=self._ui_lock)
        self._plot_throttle: FrameThrottle[bool] = FrameThrottle(
            self._draw_plots, min(rate, MAX_PLOT_RATE_HZ), lock=self._ui_lock
        )
        run.subscribe(self._on_event)

    def _init_state(self, *, own_viewer: bool) -> None:
        """Locks, the events received so far and the run's progress (nothing started yet)."""
        self._ui_lock = threading.RLock()  # serialises every UI update and the event pump
        self._events = EventLog()
        self._thread: threading.Thread | None = None
        self._started_at: float | None = None
        self._ended_at: float | None = None
        self._finished = False
        self._done_event = threading.Event()
        self._callbacks: list[Callable[[LiveRun], None]] = []
        self._band_loaded = False
        self._own_viewer = own_viewer

    def _show_start(self) -> None:
        """Show the starting structure (NEB: an interpolated preview band) in the viewer."""
        start = start_atoms(self.run)
        self._template: Atoms | None = None if start is None else start.copy()
        if self._template is None:
            return
        self._template.calc = None
        band = preview_band(self.run) if self.kind == "neb" else None
        if band is not None:
            self._show_band(band, None, "interpolated start")
        elif self._in_view and self.viewer.n_atoms == len(self._template):
            self.viewer.update(self._template, label=f"{self.kind}: starting structure", final=True)
        else:
            self.viewer.atoms = self._template
            if self.kind != "neb":
                self.viewer.label = f"{self.kind}: starting structure"

    def _make_controls(self) -> widgets.HBox:
        """Stop, Pause / Resume and (MD with a thermostat) the temperature slider, wired up."""
        self.stop_button, self.pause_button = control_buttons()
        self.stop_button.on_click(self._on_stop_click)
        self.pause_button.observe(self._on_pause_toggle, names="value")
        controls: list[widgets.Widget] = [self.stop_button, self.pause_button]
        self.temperature_slider = temperature_slider(self.run)
        if self.temperature_slider is not None:
            self.temperature_slider.observe(self._on_temperature, names="value")
            controls.append(self.temperature_slider)
        return widgets.HBox(controls, layout=widgets.Layout(align_items="center", width="100%"))

    # ------------------------------------------------------------------ public API
    @property
    def done(self) -> bool:
        """Whether the run has ended (finished, stopped or failed) and the view is final."""
        return self._finished

    @property
    def running(self) -> bool:
        """Whether the run was started and has not ended yet."""
        return self._thread is not None and not self._finished

    @property
    def elapsed(self) -> float:
        """Seconds since :meth:`start` (frozen at the end of the run)."""
        if self._started_at is None:
            return 0.0
        end = self._ended_at if self._ended_at is not None else time.perf_counter()
        return end - self._started_at

    @property
    def n_events(self) -> int:
        """Number of events received from the run."""
        return self._events.count

    def start(self) -> LiveRun:
        """Run the engine in a background thread and return at once (idempotent).

        Returns
        -------
        LiveRun
            ``self``.
        """
        if self._thread is not None:
            return self
        self._started_at = time.perf_counter()
        if self._in_view:
            self.viewer.running = True
        self._set_status("running", "starting …")
        self._thread = threading.Thread(target=self._drive, name="nnp_lab-live-run", daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the run ends, handling widget events meanwhile; return the result.

        Starts the run if :meth:`start` was not called. Inside a Jupyter kernel, clicks on
        Stop / Pause and slider moves are handled while this blocks (see
        :class:`~nnp_lab.widgets._kernel_pump.KernelPump`). ``KeyboardInterrupt`` (the
        notebook's interrupt button) stops the run cleanly and returns the partial result
        (``stopped=True``) with a warning.

        Parameters
        ----------
        timeout
            Give up after this many seconds (raises :class:`TimeoutError`; the run goes on).

        Returns
        -------
        The run's result (``RelaxResult``, ``MDResult``, ``NEBResult``).

        Raises
        ------
        Exception
            Whatever the run raised (e.g. :class:`~nnp_lab.errors.SimulationError`, with the
            partial result as ``exc.result``), re-raised in the caller.
        TimeoutError
            When ``timeout`` elapsed first.
        """
        if self._thread is not None and threading.current_thread() is self._thread:
            raise RuntimeError(
                "LiveRun.wait() was called from the run's own thread (e.g. in an on_finished "
                "callback), where it would wait for itself; read live.result there instead"
            )
        self.start()
        deadline = None if timeout is None else time.monotonic() + float(timeout)
        try:
            done = wait_handling_widgets(
                self._done_event, self._ui_lock, interval_s=POLL_INTERVAL_S, deadline=deadline
            )
        except KeyboardInterrupt:
            self.run.stop()
            self._done_event.wait()
            warnings.warn(
                f"{self.kind} interrupted; returning the partial result (stopped=True)"
                + (
                    f", trajectory kept in {self.run.trajectory_path}"
                    if getattr(self.run, "trajectory_path", None)
                    else ""
                ),
                stacklevel=2,
            )
            return self.result
        if not done:
            raise TimeoutError(
                f"the {self.kind} run did not end within {timeout} s; it goes on in the "
                "background (call .wait() again, or .run.stop())"
            )
        if self.error is not None:
            raise self.error
        return self.result

    def stop(self) -> None:
        """Ask the run to end after the current step (same as clicking Stop)."""
        self.run.stop()
        self._set_status("stopping", "stopping after this step …")

    def on_finished(self, callback: Callable[[LiveRun], None]) -> None:
        """Call ``callback(live_run)`` once the run has ended (finished, stopped or failed).

        The callback runs in the engine thread after the final state is shown and before
        :meth:`wait` returns; read ``live_run.result`` and ``live_run.error`` there. If the
        run has already ended, the callback is called at once.
        """
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        if self._finished:
            callback(self)
        else:
            self._callbacks.append(callback)

    def close(self) -> None:
        """Close the widgets (stops UI updates; does not stop the run)."""
        run = getattr(self, "run", None)
        if run is not None and self._on_event in run._subscribers:
            run.unsubscribe(self._on_event)
        for name in ("_throttle", "_plot_throttle"):
            throttle = getattr(self, name, None)
            if throttle is not None:
                throttle.close()
        plot = getattr(self, "plot", None)
        if plot is not None:
            plot.figure.close()
        if getattr(self, "_own_viewer", False):
            self.viewer.close()
        for name in ("stop_button", "pause_button", "temperature_slider", "status"):
            w = getattr(self, name, None)
            if w is not None:
                w.close()
        super().close()

    # ------------------------------------------------------------------ engine thread
    def _on_event(self, event: Any) -> None:
        if self._events.record(event):  # else an update is due already and takes it too
            self._throttle.submit(True)

    def _drive(self) -> None:
        logger.info("live %s run started", self.kind)
        try:
            self.result = self.run.run()
        except BaseException as exc:  # re-raised in wait()
            self.error = exc
            self.result = getattr(exc, "result", None) or self.run.result
            logger.info("live %s run failed: %s: %s", self.kind, type(exc).__name__, exc)
        self._ended_at = time.perf_counter()
        try:
            self._throttle.cancel()
            with self._ui_lock:
                self._deliver(True)
                self._plot_throttle.cancel()
                self._draw_plots()  # the final state, whatever the rates
                self._finish_view()
        except Exception:
            logger.exception("updating the live view at the end of the run failed")
        if self._in_view:
            self.viewer.running = False
        self._finished = True
        for callback in self._callbacks:
            try:
                callback(self)
            except Exception:
                logger.exception("an on_finished callback failed")
        self._done_event.set()

    # ------------------------------------------------------------------ UI updates (throttled)
    def _deliver(self, _token: bool) -> None:
        events, latest = self._events.take()
        if not events and latest is None:
            return
        with self._ui_lock:
            if events:
                self.plot.add(events)  # buffered; drawn by the plot throttle
                self._plot_throttle.submit(True)
            if latest is not None and events:
                self._show_event(latest)
            self._set_status("finished" if self._ended_at else "running")
            self.n_updates += 1

    def _draw_plots(self, _token: bool = True) -> None:
        with self._ui_lock:
            self.plot.draw()

    def _show_event(self, event: Any) -> None:
        viewer = self.viewer
        try:
            if self.kind == "neb":
                self._show_band(
                    np.asarray(event.positions),
                    getattr(event, "energies", None),
                    f"iteration {event.step}",
                )
                return
            numbers = getattr(event, "numbers", None)  # swap Monte Carlo changes elements
            if numbers is not None and not np.array_equal(numbers, viewer.numbers):
                viewer.set_numbers(numbers)
            forces = getattr(event, "forces", None) if viewer.show_forces else None
            # Frames already arrive at most max_rate_hz times per second; throttle again only
            # if the viewer was set up for a lower rate than ours.
            now = viewer.max_rate_hz >= self.max_rate_hz
            viewer.update(
                event.positions,
                cell=event.cell,
                forces=forces,
                label=event_label(self.kind, event),
                final=now,
            )
        except ValueError as exc:  # e.g. the viewer was given other atoms meanwhile
            logger.debug("live view not updated: %s", exc)

    def _show_band(self, positions: np.ndarray, energies: Any, what: str) -> None:
        n_img = len(positions)
        labels = band_labels(energies, n_img, what)
        viewer = self.viewer
        if (
            self._band_loaded
            and viewer.n_frames == n_img
            and viewer.n_atoms == positions.shape[1]
            and viewer._mode == "band"
        ):
            # Replace the band's coordinates in place: keeps the camera, the image shown and
            # the overlay toggle (show_band would reset all three on every iteration).
            viewer.update_frames(positions, labels=labels)
            return
        if self._template is None:  # no structure to draw the images with
            return
        viewer.show_band(band_images(self._template, positions), overlay=True, labels=labels)
        self._band_loaded = True

    def _finish_view(self) -> None:
        """After the run: controls off; load the frames into the viewer's player to scrub."""
        self.stop_button.disabled = True
        self.pause_button.disabled = True
        if self.temperature_slider is not None:
            self.temperature_slider.disabled = True
        self.plot.sync_state()
        result = self.result
        try:
            if self.kind == "neb" and result is not None and getattr(result, "images", None):
                images = list(result.images)
                if self._template is not None and len(images[0]) == len(self._template):
                    e = np.asarray(result.energies, dtype=float)
                    self._show_band(np.stack([im.positions for im in images]), e, "final")
            elif self.kind == "swap_mc":
                pass  # the frames' elements differ; the view keeps the last state shown
            elif self._then_edit and self.kind == "relax" and result is not None:
                state = "relaxed" if result.converged else "not converged"
                self.viewer.resume_editing(
                    result.atoms,
                    label=f"{state}: {result.n_steps} steps  E = {result.energy:.4f} eV  "
                    f"fmax {result.fmax:.3g}",
                )
            elif result is not None and len(getattr(result, "frames", None) or []) > 1:
                frames = thinned(list(result.frames), MAX_SCRUB_FRAMES)
                self.viewer.show_trajectory(frames, start=len(frames) - 1)
        except Exception as exc:  # the live view stays as it is
            logger.info("could not load the trajectory into the viewer: %s", exc)
        if self.error is not None:
            self._set_status("failed", f"{type(self.error).__name__}: {self.error}")
        elif getattr(result, "stopped", False):
            self._set_status("stopped")
        else:
            self._set_status("finished")

    # ------------------------------------------------------------------ controls
    def _on_stop_click(self, _button: Any = None) -> None:
        self.stop()

    def _on_pause_toggle(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self.run.pause()
            self.pause_button.description = "Resume"
            self.pause_button.icon = "play"
            self._set_status("running")  # "pausing" until the step in flight is done
            threading.Thread(
                target=self._report_held, name="nnp_lab-live-pause", daemon=True
            ).start()
        else:
            self.run.resume()
            self.pause_button.description = "Pause"
            self.pause_button.icon = "pause"
            self._set_status("running")

    def _report_held(self) -> None:
        """Say "paused" once the run really waits between steps (the status then names the
        last step done: nothing more happens until Resume)."""
        while self.run.paused and not self._finished:
            if self.run.wait_held(0.05):
                self._set_status("running")  # shown as "paused" now that the run is held
                return

    def _on_temperature(self, change: dict[str, Any]) -> None:
        from nnp_lab.simulate import MolecularDynamics

        run = self.run
        if not isinstance(run, MolecularDynamics):  # only MD runs have the slider
            return
        try:
            run.set_temperature(float(change["new"]))
        except Exception as exc:
            self._set_status("running", f"temperature not changed: {exc}")

    # ------------------------------------------------------------------ status line
    def _set_status(self, state: str, note: str | None = None) -> None:
        with self._ui_lock:
            self.status.value = self._status_html(state, note)

    def _status_html(self, state: str, note: str | None = None) -> str:
        if self.run.paused and state == "running":
            state = "paused" if self.run.held else "pausing"
        latest, first = self._events.ends()
        return status_html(
            state,
            note,
            kind=self.kind,
            total=self.total,
            latest=latest,
            first=first,
            elapsed=self.elapsed,
            now=self._ended_at or time.perf_counter(),
        )

    def __repr__(self) -> str:
        # Also the text a notebook keeps where no widget is drawn (a headless run, a viewer
        # without widgets): the view is displayed before the run starts, so say what it is.
        name = type(self.run).__name__
        if not self._thread and not self._finished:
            steps = f", {self.total} steps" if self.total else ""
            return f"LiveRun({name}{steps}: the live view; it draws where widgets are shown)"
        state = "done" if self._finished else "running"
        return f"LiveRun({name}, {state}, events={self._events.count})"


def watch(
    run: Any,
    *,
    total: int | None = None,
    viewer: Any = None,
    max_rate_hz: float = 10.0,
) -> Any:
    """Display a :class:`LiveRun` for ``run``, run it, and return its result.

    This is what ``relax(..., live=True)``, ``md(..., live=True)`` and ``neb(..., live=True)``
    call inside a Jupyter kernel. The call blocks (like a plain run) but Stop, Pause and the
    temperature slider work while it does.

    Parameters
    ----------
    run
        A run that has not started.
    total, viewer, max_rate_hz
        See :class:`LiveRun`.

    Returns
    -------
    The run's result (partial, with ``stopped=True``, after Stop or an interrupt).

    Raises
    ------
    Exception
        Whatever the run raised (e.g. :class:`~nnp_lab.errors.SimulationError`).
    """
    from IPython.display import display

    live = LiveRun(run, total=total, viewer=viewer, max_rate_hz=max_rate_hz)
    display(live)
    live.start()
    return live.wait()
