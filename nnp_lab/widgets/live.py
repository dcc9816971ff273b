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
  While it waits, :meth:`LiveRun.wait` therefore handles them itself, every 20 ms: it reads
  the shell messages queued for the main thread (ipykernel 7: the inproc socket from the
  shell-channel thread; ipykernel 6: the shell stream), runs the kernel's own handlers for
  ``comm_open`` / ``comm_msg`` / ``comm_close`` at once (button clicks, slider moves,
  frontend state echoes), and hands every other message (the next cell's
  ``execute_request``, completions, ...) back to the kernel's normal dispatch, in order, to
  run after the cell. See :class:`_KernelPump`.
* ``KeyboardInterrupt`` (the notebook's interrupt button) during :meth:`LiveRun.wait` stops
  the run cleanly and returns the partial result.
"""

from __future__ import annotations

import asyncio
import html
import inspect
import logging
import math
import sys
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import numpy as np

from nnp_lab.errors import InputError
from nnp_lab.widgets._throttle import FrameThrottle
from nnp_lab.widgets.plots import LivePlot, make_live_plot

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
#: Width of the plots in CSS pixels (the viewer takes the rest of the row).
PLOT_WIDTH_PX = 460


# ---------------------------------------------------------------------------------------------
# Processing widget messages while the kernel's main thread is blocked
# ---------------------------------------------------------------------------------------------


class _KernelPump:
    """Handle widget (comm) messages that arrive while the kernel's main thread is busy.

    A Jupyter kernel executes a cell on its main thread inside its asyncio event loop; shell
    messages (including the frontend's ``comm_msg`` for a button click) are read by that
    same loop, so none is handled until the cell returns. This pump is called from the
    blocked cell itself (on the thread that runs it) and drains the socket that feeds that
    thread:

    * ipykernel >= 7 (subshells): the shell-channel thread forwards messages for the main
      shell over an inproc ``PAIR`` socket whose receiving ``ZMQStream`` lives on the main
      thread (``shell_channel_thread.manager.get_shell_channel_to_subshell_pair(None)``;
      for a cell running in a subshell, that subshell's pair);
    * ipykernel 6 (and 7 without a shell-channel thread): ``kernel.shell_stream``.

    Each message's header is read without verifying/recording its signature digest; comm
    messages are then deserialized and passed to the kernel's registered handler
    (``kernel.shell_handlers[msg_type]``, i.e. the comm manager) with the message set as the
    kernel's parent and framed by busy/idle status messages, exactly as the kernel's
    ``dispatch_shell`` would (the browser's ipywidgets code needs the idle status of one
    state update before it sends the next); every other message is handed to the stream's
    own receive callback (what the event loop would have called), so it is queued behind the
    running cell in arrival order.

    Everything here touches kernel internals that differ between ipykernel versions, so
    :meth:`create` returns ``None`` (no pumping; clicks are handled after the cell) when the
    expected objects are missing, and a pump that fails disables itself with a warning.
    Tested with ipykernel 7.4 (subshell path).
    """

    COMM_TYPES = frozenset({"comm_open", "comm_msg", "comm_close"})

    def __init__(self, kernel: Any, stream: Any, reply_stream: Any, mechanism: str) -> None:
        self.kernel = kernel
        self.stream = stream
        self.reply_stream = reply_stream
        self.mechanism = mechanism
        self.loop = None
        try:
            self.loop = asyncio.get_event_loop()
        except RuntimeError:
            self.loop = None
        #: Comm messages handled / other messages handed back, for diagnostics and tests.
        self.n_comm = 0
        self.n_forwarded = 0
        self.broken = False

    @classmethod
    def create(cls) -> _KernelPump | None:
        """A pump for the calling thread's kernel shell, or None outside a kernel."""
        try:
            ipython = sys.modules.get("IPython")
            if ipython is None:
                return None
            shell = ipython.get_ipython()
            kernel = getattr(shell, "kernel", None)
            if kernel is None or getattr(kernel, "session", None) is None:
                return None
            sct = getattr(kernel, "shell_channel_thread", None)
            if sct is not None:  # ipykernel >= 7 with subshell support
                manager = sct.manager
                subshell_id = None
                if threading.current_thread() is not threading.main_thread():
                    subshell_id = manager.subshell_id_from_thread_id(threading.get_ident())
                pair = manager.get_shell_channel_to_subshell_pair(subshell_id)
                stream = pair.to_stream
                reply = manager.get_subshell_to_shell_channel_socket(subshell_id)
                mechanism = "ipykernel>=7 inproc subshell socket" + (
                    f" (subshell {subshell_id})" if subshell_id else " (main shell)"
                )
            else:
                if threading.current_thread() is not threading.main_thread():
                    return None
                stream = getattr(kernel, "shell_stream", None)
                reply = stream
                mechanism = "shell stream (ipykernel 6 style)"
            if stream is None or getattr(stream, "_recv_callback", None) is None:
                return None
            if not hasattr(stream, "socket") or not hasattr(stream, "_run_callback"):
                return None
            return cls(kernel, stream, reply, mechanism)
        except Exception as exc:  # unknown kernel layout: no pumping
            logger.warning(
                "cannot process widget events while the cell runs (%s: %s); Stop/Pause "
                "clicks will act only after the cell ends — use the notebook's interrupt "
                "button to stop the run",
                type(exc).__name__,
                exc,
            )
            return None

    def poll(self, limit: int = 200) -> int:
        """Handle up to ``limit`` queued messages; returns how many were read."""
        if self.broken:
            return 0
        import zmq

        n = 0
        socket = self.stream.socket
        copy = bool(getattr(self.stream, "_recv_copy", False))
        try:
            while n < limit:
                try:
                    frames = socket.recv_multipart(zmq.NOBLOCK, copy=copy)
                except zmq.Again:
                    break
                n += 1
                self._handle(frames)
        except Exception as exc:
            self.broken = True
            warnings.warn(
                f"nnp_lab stopped processing widget events during the run ({type(exc).__name__}: "
                f"{exc}); controls act after the cell ends. Please report this with your "
                "ipykernel version.",
                RuntimeWarning,
                stacklevel=2,
            )
        return n

    def _handle(self, frames: list[Any]) -> None:
        session = self.kernel.session
        msg_type = None
        try:
            idents, parts = session.feed_identities(frames, copy=False)
            header = session.deserialize(parts, content=False, copy=False)["header"]
            msg_type = header.get("msg_type")
        except Exception:
            idents, parts = None, None
        if msg_type not in self.COMM_TYPES:
            self._forward(frames)
            return
        msg = session.deserialize(parts, content=True, copy=False)
        handler = self.kernel.shell_handlers.get(msg_type)
        if handler is None:
            return
        self.n_comm += 1
        kernel = self.kernel
        # As the kernel's dispatch_shell does: the message is the parent while its handler
        # runs, framed by busy/idle status messages. The browser relies on both: ipywidgets
        # sends a widget's next state update only after the idle status *of the previous
        # update* arrives, and matches echo_update replies by their parent's msg_id.
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
        saved_parent = kernel.get_parent("shell")
        saved_ident = kernel._parent_ident["shell"]
        kernel.set_parent(idents, msg, channel="shell")
        kernel._publish_status("busy", "shell")
        try:
            result = handler(self.reply_stream, idents, msg)
            if inspect.isawaitable(result):
                asyncio.ensure_future(result, loop=self.loop)
        except Exception:
            logger.exception("widget message handler failed (%s)", msg_type)
        finally:
            for stream in (sys.stdout, sys.stderr):
                if stream is not None:
                    stream.flush()
            kernel._publish_status("idle", "shell")
            kernel.set_parent(saved_ident, saved_parent, channel="shell")
            # The cell is still running: say so again (the frontend's kernel indicator).
            kernel._publish_status("busy", "shell")

    def _forward(self, frames: list[Any]) -> None:
        """Give a message back to the kernel's own dispatch (runs after the current cell)."""
        self.n_forwarded += 1
        self.stream._run_callback(self.stream._recv_callback, frames)


# ---------------------------------------------------------------------------------------------
# The widget
# ---------------------------------------------------------------------------------------------


def _start_atoms(run: Any) -> Any:
    atoms = getattr(run, "atoms", None)
    if atoms is None:
        atoms = getattr(run, "initial", None)
    return atoms


def _preview_band(run: Any) -> np.ndarray | None:
    """Linear interpolation between a NEB run's endpoints, (n_images + 2, n, 3)."""
    initial = getattr(run, "initial", None)
    final = getattr(run, "final", None)
    n_images = getattr(run, "n_images", None)
    if initial is None or final is None or n_images is None:
        return None
    d = final.positions - initial.positions
    if initial.pbc.any() and getattr(run, "mic", None) is not False:
        from ase.geometry import find_mic

        d, _ = find_mic(d, initial.cell, initial.pbc)
    t = np.linspace(0.0, 1.0, int(n_images) + 2)[:, None, None]
    return initial.positions[None] + t * d[None]


def _fmt_elapsed(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


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
    ) -> None:
        from nnp_lab.simulate._run import Run
        from nnp_lab.widgets.viewer import Viewer

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
            raise TypeError(
                f"viewer must be an nnp_lab.widgets.Viewer, got {type(viewer).__name__}"
            )

        self.run = run
        self.kind: str = getattr(run, "kind", "run")
        self.total = int(total) if total is not None else getattr(run, "steps", None)
        self.max_rate_hz = rate
        self.result: Any = None
        self.error: BaseException | None = None
        self.n_updates = 0

        self._ui_lock = threading.RLock()  # serialises every UI update and the event pump
        self._data_lock = threading.Lock()
        self._pending: list[Any] = []
        self._scheduled = False  # an update was submitted and not delivered yet
        self._latest: Any = None
        self._first: Any = None
        self._n_events = 0
        self._thread: threading.Thread | None = None
        self._started_at: float | None = None
        self._ended_at: float | None = None
        self._finished = False
        self._done_event = threading.Event()
        self._callbacks: list[Callable[[LiveRun], None]] = []
        self._band_loaded = False
        self._own_viewer = viewer is None

        # -- viewer: the starting structure (NEB: an interpolated preview band) ----------------
        start = _start_atoms(run)
        if viewer is None:
            viewer = Viewer(height=440)
        self.viewer = viewer
        self._template = None if start is None else start.copy()
        if self._template is not None:
            self._template.calc = None
        if start is not None:
            if self.kind == "neb":
                band = _preview_band(run)
                if band is not None:
                    self._show_band(band, None, "interpolated start")
                else:
                    viewer.atoms = self._template
            else:
                viewer.atoms = self._template
                viewer.label = f"{self.kind}: starting structure"

        # -- plots ----------------------------------------------------------------------------
        self.plot: LivePlot = make_live_plot(run)

        # -- controls -------------------------------------------------------------------------
        self.stop_button = widgets.Button(
            description="Stop",
            icon="stop",
            button_style="danger",
            tooltip="End the run after the current step (result and trajectory are kept)",
            layout=widgets.Layout(width="auto", min_width="80px"),
        )
        self.pause_button = widgets.ToggleButton(
            value=False,
            description="Pause",
            icon="pause",
            tooltip="Hold the run after the current step",
            layout=widgets.Layout(width="auto", min_width="100px"),
        )
        self.stop_button.on_click(self._on_stop_click)
        self.pause_button.observe(self._on_pause_toggle, names="value")
        controls: list[Any] = [self.stop_button, self.pause_button]
        self.temperature_slider: widgets.FloatSlider | None = None
        if (
            self.kind == "md"
            and getattr(run, "ensemble", "nve") != "nve"
            and hasattr(run, "set_temperature")
        ):
            t0 = float(run.temperature_K)
            low = (
                1.0
                if getattr(run, "thermostat", None) == "nose-hoover" or run.ensemble == "npt"
                else 0.0
            )
            self.temperature_slider = widgets.FloatSlider(
                value=t0,
                min=low,
                max=float(max(1000.0, 10 * round(3 * t0 / 10))),
                step=10.0,
                description="T (K)",
                continuous_update=False,
                readout_format=".0f",
                tooltip="Thermostat target temperature",
                style={"description_width": "40px"},
                layout=widgets.Layout(width="360px", margin="0 0 0 16px"),
            )
            self.temperature_slider.observe(self._on_temperature, names="value")
            controls.append(self.temperature_slider)
        self.status = widgets.HTML(
            value=self._status_html("ready"), layout=widgets.Layout(width="100%")
        )

        # Viewer and plots side by side (wrapping on narrow outputs). The figure gets a
        # fixed width: plotly sizes an autosized figure when it first renders, before the
        # box has its width, and then falls back to 700 px.
        self.plot.figure.layout.width = PLOT_WIDTH_PX
        self.viewer.layout = widgets.Layout(flex="1 1 320px", min_width="280px")
        plot_box = widgets.Box(
            [self.plot.figure],
            layout=widgets.Layout(flex=f"0 0 {PLOT_WIDTH_PX}px", overflow="hidden"),
        )
        top = widgets.HBox(
            [self.viewer, plot_box], layout=widgets.Layout(width="100%", flex_flow="row wrap")
        )
        bar = widgets.HBox(controls, layout=widgets.Layout(align_items="center", width="100%"))
        super().__init__([top, bar, self.status])
        self.add_class("nnp-lab-live")

        self._throttle: FrameThrottle[bool] = FrameThrottle(self._deliver, rate, lock=self._ui_lock)
        self._plot_throttle: FrameThrottle[bool] = FrameThrottle(
            self._draw_plots, min(rate, MAX_PLOT_RATE_HZ), lock=self._ui_lock
        )
        run.subscribe(self._on_event)

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
        return self._n_events

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
        self._set_status("running", "starting …")
        self._thread = threading.Thread(target=self._drive, name="nnp_lab-live-run", daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the run ends, handling widget events meanwhile; return the result.

        Starts the run if :meth:`start` was not called. Inside a Jupyter kernel, clicks on
        Stop / Pause and slider moves are handled while this blocks (see
        :class:`_KernelPump`). ``KeyboardInterrupt`` (the notebook's interrupt button) stops
        the run cleanly and returns the partial result (``stopped=True``) with a warning.

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
        pump = _KernelPump.create() if not self._done_event.is_set() else None
        deadline = None if timeout is None else time.monotonic() + float(timeout)
        try:
            while not self._done_event.wait(POLL_INTERVAL_S):
                if pump is not None:
                    with self._ui_lock:
                        pump.poll()
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(
                        f"the {self.kind} run did not end within {timeout} s; it goes on in the "
                        "background (call .wait() again, or .run.stop())"
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
        if pump is not None:
            logger.debug(
                "live run: handled %d widget messages during the run (%s), handed back %d",
                pump.n_comm,
                pump.mechanism,
                pump.n_forwarded,
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
        with self._data_lock:
            self._pending.append(event)
            self._latest = event
            if self._first is None:
                self._first = (event, time.perf_counter())
            self._n_events += 1
            if self._scheduled:  # an update is already due; it will take this event too
                return
            self._scheduled = True
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
        self._finished = True
        for callback in self._callbacks:
            try:
                callback(self)
            except Exception:
                logger.exception("an on_finished callback failed")
        self._done_event.set()

    # ------------------------------------------------------------------ UI updates (throttled)
    def _deliver(self, _token: bool) -> None:
        with self._data_lock:
            events, self._pending = self._pending, []
            latest = self._latest
            self._scheduled = False
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
            forces = getattr(event, "forces", None) if viewer.show_forces else None
            # Frames already arrive at most max_rate_hz times per second; throttle again only
            # if the viewer was set up for a lower rate than ours.
            now = viewer.max_rate_hz >= self.max_rate_hz
            viewer.update(
                event.positions, cell=event.cell, forces=forces, label=self._label(event), final=now
            )
        except ValueError as exc:  # e.g. the viewer was given other atoms meanwhile
            logger.debug("live view not updated: %s", exc)

    def _show_band(self, positions: np.ndarray, energies: Any, what: str) -> None:
        n_img = len(positions)
        if energies is not None:
            e = np.asarray(energies, dtype=float)
            labels = [
                f"image {i}/{n_img - 1}  E − E0 = {e[i] - e[0]:+.3f} eV  ({what})"
                for i in range(n_img)
            ]
        else:
            labels = [f"image {i}/{n_img - 1}  ({what})" for i in range(n_img)]
        viewer = self.viewer
        same_shape = (
            self._band_loaded
            and viewer.n_frames == n_img
            and viewer.n_atoms == positions.shape[1]
            and getattr(viewer, "_mode", None) == "band"
        )
        if same_shape and hasattr(viewer, "_locked_sync") and hasattr(viewer, "_traj_positions"):
            # Replace the band's coordinates in place: keeps the camera, the image shown and
            # the overlay toggle (show_band would reset all three on every iteration).
            # TODO: use a public Viewer.update_band() once the viewer has one.
            arr = np.ascontiguousarray(positions, dtype="<f4")
            with viewer._locked_sync():
                viewer._traj_array = arr
                viewer._traj_positions = arr.tobytes()
                viewer._traj_labels = labels
            return
        images = []
        for p in positions:
            image = self._template.copy()
            image.positions = p
            images.append(image)
        viewer.show_band(images, overlay=True, labels=labels)
        self._band_loaded = True

    def _label(self, event: Any) -> str:
        if self.kind == "md":
            return (
                f"t = {event.time_ps:.3f} ps  T = {event.temperature_K:.0f} K  "
                f"E = {event.energy:.3f} eV"
            )
        fmax = getattr(event, "fmax", None)
        text = f"step {event.step}  E = {event.energy:.4f} eV"
        if fmax is not None:
            text += f"  fmax {fmax:.3g}"
        return text

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
            elif result is not None and len(getattr(result, "frames", None) or []) > 1:
                frames = list(result.frames)
                n = len(frames)
                if n > MAX_SCRUB_FRAMES:
                    idx = list(range(0, n, math.ceil(n / MAX_SCRUB_FRAMES)))
                    if idx[-1] != n - 1:
                        idx.append(n - 1)
                    frames = [frames[i] for i in idx]
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
        try:
            self.run.set_temperature(float(change["new"]))
        except Exception as exc:
            self._set_status("running", f"temperature not changed: {exc}")

    # ------------------------------------------------------------------ status line
    def _set_status(self, state: str, note: str | None = None) -> None:
        with self._ui_lock:
            self.status.value = self._status_html(state, note)

    def _status_html(self, state: str, note: str | None = None) -> str:
        if self.run.paused and state == "running":
            state = "paused" if self.run.held else "pausing"
        colors = {
            "running": "#1f77b4",
            "paused": "#b8860b",
            "pausing": "#b8860b",
            "stopping": "#b8860b",
            "stopped": "#b8860b",
            "finished": "#2ca02c",
            "failed": "#d62728",
            "ready": "#555",
        }
        parts = [f"<b style='color:{colors.get(state, '#555')}'>{state}</b>"]
        with self._data_lock:
            latest = self._latest
            first = self._first
        if latest is not None:
            step = f"step {latest.step}"
            if self.total:
                step += f"/{self.total}" if self.kind == "md" else f" (max {self.total})"
            parts.append(step)
            if self.kind == "md":
                parts.append(f"t = {latest.time_ps:.3f} ps")
                parts.append(f"E<sub>pot</sub> = {latest.energy:.4f} eV")
                target = getattr(latest, "target_temperature_K", None)
                parts.append(
                    f"T = {latest.temperature_K:.0f} K"
                    + (f" (target {target:.0f} K)" if target is not None else "")
                )
            else:
                parts.append(f"E = {latest.energy:.4f} eV")
                fmax = getattr(latest, "fmax", None)
                if fmax is not None:
                    parts.append(f"fmax = {fmax:.4g} eV/Å")
        parts.append(_fmt_elapsed(self.elapsed))
        if latest is not None and first is not None:
            dt = (self._ended_at or time.perf_counter()) - first[1]
            dsteps = latest.step - first[0].step
            if dt > 0 and dsteps > 0:
                parts.append(f"{dsteps / dt:.1f} steps/s")
        if note:
            parts.append(html.escape(note))
        return (
            "<span style='font-family:var(--jp-code-font-family,monospace);font-size:12px'>"
            + " · ".join(parts)
            + "</span>"
        )

    def __repr__(self) -> str:
        state = "done" if self._finished else ("running" if self._thread else "not started")
        return f"LiveRun({type(self.run).__name__}, {state}, events={self._n_events})"


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
