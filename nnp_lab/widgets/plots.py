"""Live plotly figures fed by a run's events: energy/fmax, MD energies and temperature, NEB profiles.

Each plot object owns a :class:`plotly.graph_objects.FigureWidget` created up front (the first
FigureWidget in a kernel costs a few seconds, so it must exist before the run starts) and
two methods:

* :meth:`LivePlot.add` takes a batch of events and appends their values to in-memory buffers
  (cheap; no message is sent);
* :meth:`LivePlot.draw` pushes the buffers to the figure in **one** ``batch_update`` (one
  plotly update message, arrays sent as binary buffers).

:class:`~nnp_lab.widgets.live.LiveRun` calls ``add`` with every event batch and ``draw`` at
most ``max_rate_hz`` times per second. Buffers keep at most ``max_points`` points per trace:
past that, every second point of the history is dropped (the first and newest points always
stay), so a 100,000-step MD run costs bounded memory and bounded message size.

Trace names (what tests and users can rely on):

* relaxation: ``"energy"`` (eV, top), ``"fmax"`` (eV/Å, bottom, log scale) vs ``step``;
* MD: ``"potential"`` and ``"total"`` (eV, top), ``"kinetic"`` (eV, middle),
  ``"temperature"`` and, with a thermostat, ``"target"`` (K, bottom) vs time in ps;
* NEB: ``"latest"`` (bold profile, E - E(image 0) in eV vs image index), a few faded
  earlier profiles named ``"iteration k"`` (evenly spread over the run so far), and
  ``"fmax"`` (eV/Å, log) vs iteration;
* any other run: ``"energy"`` vs step.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from nnp_lab.errors import InputError

__all__ = [
    "DEFAULT_MAX_POINTS",
    "LivePlot",
    "RelaxPlot",
    "MDPlot",
    "NEBPlot",
    "SwapMCPlot",
    "EnergyPlot",
    "make_live_plot",
    "TrainingPlot",
]

logger = logging.getLogger(__name__)

#: Most points kept (and sent) per trace; older points are thinned beyond this.
DEFAULT_MAX_POINTS = 2000
#: Number of faded earlier profiles drawn behind the latest NEB profile.
NEB_HISTORY = 6

_BLUE = "#1f77b4"
_ORANGE = "#ff7f0e"
_GREEN = "#2ca02c"
_RED = "#d62728"
_GREY = "#555555"


class _Series:
    """An append-only (x, y) buffer that thins its history to stay below ``max_points``."""

    __slots__ = ("x", "y", "max_points")

    def __init__(self, max_points: int) -> None:
        self.x: list[float] = []
        self.y: list[float] = []
        self.max_points = max_points

    def append(self, x: float, y: float) -> None:
        self.x.append(x)
        self.y.append(y)
        if len(self.x) > self.max_points:
            # Keep every second point (index 0 included) plus the newest one.
            last_x, last_y = self.x[-1], self.y[-1]
            self.x = self.x[:-1:2]
            self.y = self.y[:-1:2]
            self.x.append(last_x)
            self.y.append(last_y)

    def __len__(self) -> int:
        return len(self.x)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.x, dtype=float), np.asarray(self.y, dtype=float)


def _figure(rows: int, titles: Sequence[str], height: int) -> Any:
    """A plain ``go.Figure`` with stacked subplots (wrapped in a FigureWidget once complete)."""
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=rows, cols=1, shared_xaxes=False, vertical_spacing=0.09 if rows < 3 else 0.07
    )
    fig.update_layout(
        height=height,
        margin=dict(l=60, r=15, t=30, b=40),
        template="plotly_white",
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0.0),
        # A constant uirevision keeps the user's zoom/pan while data streams in.
        uirevision="nnp_lab-live",
        hovermode="x unified",
    )
    for i, title in enumerate(titles, start=1):
        fig.update_yaxes(title_text=title, row=i, col=1)
    return fig


class LivePlot:
    """Base class: a FigureWidget plus buffers fed by events.

    Parameters
    ----------
    max_points
        Most points kept per trace (older ones are thinned).
    """

    kind = "run"

    def __init__(self, max_points: int = DEFAULT_MAX_POINTS) -> None:
        if not isinstance(max_points, int) or max_points < 10:
            raise InputError(f"max_points must be an integer >= 10, got {max_points!r}")
        self.max_points = max_points
        self.figure: Any = None
        self._series: dict[str, _Series] = {}
        self._dirty = False
        #: Number of events added so far.
        self.n_events = 0
        #: Number of figure updates (``draw`` calls that sent something).
        self.n_draws = 0

    def _widget(self, fig: Any) -> Any:
        """Wrap a complete ``go.Figure`` in a FigureWidget.

        Traces and layout must be in the widget's *initial* state: plotly's front end applies
        later ``addTraces``/``relayout`` messages only once its (large) JavaScript module has
        loaded, and drops those that arrive before — adding traces to a fresh FigureWidget
        leaves an empty plot whenever the module loads slowly.
        """
        import plotly.graph_objects as go

        return go.FigureWidget(fig)

    def sync_state(self) -> None:
        """Store the current traces and layout as the widget's state (for views created later).

        Plotly syncs a FigureWidget's full state only when it is displayed on its own; as a
        child of a box, a view rendered later (a slow front end, a re-displayed output, a
        reloaded page) would otherwise start from the initial, empty traces.
        """
        from copy import deepcopy

        fig = self.figure
        fig._widget_layout = deepcopy(fig._layout_obj._props)
        fig._widget_data = deepcopy(fig._data)

    @property
    def trace_names(self) -> list[str]:
        """Names of the figure's traces, in order."""
        return [trace.name for trace in self.figure.data]

    def series(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The buffered ``(x, y)`` of trace ``name`` (what the next draw sends)."""
        return self._series[name].arrays()

    def add(self, events: Sequence[Any]) -> None:
        """Append the values of ``events`` to the buffers (no message is sent)."""
        for event in events:
            self._add(event)
            self.n_events += 1
        if events:
            self._dirty = True

    def draw(self) -> bool:
        """Send the buffers to the figure (one batched update). Returns whether it sent."""
        if not self._dirty:
            return False
        self._dirty = False
        fig = self.figure
        with fig.batch_update():
            self._draw(fig)
        self.n_draws += 1
        return True

    # -- subclass hooks ------------------------------------------------------------------
    def _add(self, event: Any) -> None:
        raise NotImplementedError

    def _draw(self, fig: Any) -> None:
        by_name = {trace.name: trace for trace in fig.data}
        for name, series in self._series.items():
            trace = by_name.get(name)
            if trace is not None:
                trace.x, trace.y = series.arrays()


class EnergyPlot(LivePlot):
    """Energy vs step, for any run kind without a dedicated plot."""

    def __init__(self, max_points: int = DEFAULT_MAX_POINTS, *, height: int = 360) -> None:
        super().__init__(max_points)
        fig = _figure(1, ["energy (eV)"], height)
        fig.add_scatter(x=[], y=[], name="energy", mode="lines", line=dict(color=_BLUE))
        fig.update_xaxes(title_text="step", row=1, col=1)
        self.figure = self._widget(fig)
        self._series = {"energy": _Series(max_points)}

    def _add(self, event: Any) -> None:
        self._series["energy"].append(float(event.step), float(event.energy))


class RelaxPlot(LivePlot):
    """Relaxation: energy (top) and fmax on a log scale (bottom) vs optimizer step.

    Parameters
    ----------
    fmax_target
        Convergence target drawn as a dashed line on the fmax panel (None: no line).
    """

    kind = "relax"

    def __init__(
        self,
        max_points: int = DEFAULT_MAX_POINTS,
        *,
        fmax_target: float | None = None,
        height: int = 440,
    ) -> None:
        super().__init__(max_points)
        fig = _figure(2, ["energy (eV)", "fmax (eV/Å)"], height)
        # Lines only: markers add one SVG node per point to every redraw.
        fig.add_scatter(
            x=[], y=[], name="energy", mode="lines", line=dict(color=_BLUE), row=1, col=1
        )
        fig.add_scatter(
            x=[], y=[], name="fmax", mode="lines", line=dict(color=_ORANGE), row=2, col=1
        )
        fig.update_yaxes(type="log", row=2, col=1)
        fig.update_xaxes(title_text="step", row=2, col=1)
        if fmax_target is not None and math.isfinite(fmax_target) and fmax_target > 0:
            fig.add_hline(
                y=fmax_target, row=2, col=1, line_dash="dash", line_color=_GREY, line_width=1
            )
        self.figure = self._widget(fig)
        self._series = {"energy": _Series(max_points), "fmax": _Series(max_points)}

    def _add(self, event: Any) -> None:
        step = float(event.step)
        self._series["energy"].append(step, float(event.energy))
        fmax = float(getattr(event, "fmax", float("nan")))
        self._series["fmax"].append(step, fmax)


class MDPlot(LivePlot):
    """MD: potential and total energy (top), kinetic energy (middle), temperature (bottom).

    Parameters
    ----------
    thermostat
        Whether the run has a target temperature (adds the ``"target"`` trace).
    """

    kind = "md"

    def __init__(
        self,
        max_points: int = DEFAULT_MAX_POINTS,
        *,
        thermostat: bool = True,
        height: int = 480,
    ) -> None:
        super().__init__(max_points)
        fig = _figure(3, ["energy (eV)", "kinetic (eV)", "T (K)"], height)
        fig.add_scatter(
            x=[], y=[], name="potential", mode="lines", line=dict(color=_BLUE), row=1, col=1
        )
        fig.add_scatter(
            x=[], y=[], name="total", mode="lines", line=dict(color=_GREEN), row=1, col=1
        )
        fig.add_scatter(
            x=[], y=[], name="kinetic", mode="lines", line=dict(color=_ORANGE), row=2, col=1
        )
        fig.add_scatter(
            x=[], y=[], name="temperature", mode="lines", line=dict(color=_RED), row=3, col=1
        )
        names = ["potential", "total", "kinetic", "temperature"]
        if thermostat:
            fig.add_scatter(
                x=[],
                y=[],
                name="target",
                mode="lines",
                line=dict(color=_GREY, dash="dash", width=1, shape="hv"),
                row=3,
                col=1,
            )
            names.append("target")
        fig.update_xaxes(title_text="time (ps)", row=3, col=1)
        self.figure = self._widget(fig)
        self._series = {name: _Series(max_points) for name in names}

    def _add(self, event: Any) -> None:
        t = float(event.time_ps)
        s = self._series
        s["potential"].append(t, float(event.energy))
        s["total"].append(t, float(event.total_energy))
        s["kinetic"].append(t, float(event.kinetic_energy))
        s["temperature"].append(t, float(event.temperature_K))
        if "target" in s:
            target = event.target_temperature_K
            s["target"].append(t, float("nan") if target is None else float(target))


class NEBPlot(LivePlot):
    """NEB: energy profile of the band per iteration (latest bold, earlier faded) and fmax.

    The top panel shows ``E_i - E_0`` (eV) against the image index ``i`` (endpoints
    included) for the latest iteration (bold) and for up to :data:`NEB_HISTORY` earlier
    iterations spread evenly over the run so far (faded, older = fainter). The bottom panel
    shows the NEB fmax (eV/Å, log scale) vs iteration.

    Parameters
    ----------
    n_history
        Number of faded earlier profiles.
    """

    kind = "neb"

    def __init__(
        self,
        max_points: int = DEFAULT_MAX_POINTS,
        *,
        n_history: int = NEB_HISTORY,
        height: int = 440,
    ) -> None:
        super().__init__(max_points)
        fig = _figure(2, ["E − E(image 0) (eV)", "fmax (eV/Å)"], height)
        self.n_history = int(n_history)
        for k in range(self.n_history):
            opacity = 0.15 + 0.45 * (k + 1) / self.n_history
            fig.add_scatter(
                x=[],
                y=[],
                name=f"iteration (earlier {k + 1})",
                mode="lines+markers",
                line=dict(color=_GREY, width=1),
                marker=dict(size=4),
                opacity=opacity,
                showlegend=False,
                legendgroup="earlier",
                row=1,
                col=1,
            )
        fig.add_scatter(
            x=[],
            y=[],
            name="latest",
            mode="lines+markers",
            line=dict(color=_BLUE, width=3),
            marker=dict(size=8),
            row=1,
            col=1,
        )
        fig.add_scatter(
            x=[], y=[], name="fmax", mode="lines", line=dict(color=_ORANGE), row=2, col=1
        )
        fig.update_xaxes(title_text="image", dtick=1, row=1, col=1)
        fig.update_xaxes(title_text="iteration", row=2, col=1)
        fig.update_yaxes(type="log", row=2, col=1)
        self.figure = self._widget(fig)
        self._series = {"fmax": _Series(max_points)}
        #: (iteration, energies relative to image 0) of every event, thinned like a series.
        self.profiles: list[tuple[int, np.ndarray]] = []

    def _add(self, event: Any) -> None:
        energies = np.asarray(getattr(event, "energies", [event.energy]), dtype=float)
        self.profiles.append((int(event.step), energies - energies[0]))
        if len(self.profiles) > self.max_points:
            last = self.profiles[-1]
            self.profiles = self.profiles[:-1:2] + [last]
        self._series["fmax"].append(float(event.step), float(getattr(event, "fmax", np.nan)))

    def history_indices(self) -> list[int]:
        """Indices into :attr:`profiles` of the faded earlier profiles, oldest first."""
        n_earlier = len(self.profiles) - 1
        if n_earlier <= 0:
            return []
        if n_earlier <= self.n_history:
            return list(range(n_earlier))
        picks = np.linspace(0, n_earlier - 1, self.n_history).round().astype(int)
        return sorted(set(int(i) for i in picks))

    def _draw(self, fig: Any) -> None:
        traces = list(fig.data)
        earlier = traces[: self.n_history]
        latest = traces[self.n_history]
        fmax = traces[self.n_history + 1]
        picks = self.history_indices()
        # Fill the faintest slots with nothing so the newest earlier profile is darkest.
        slots = [None] * (self.n_history - len(picks)) + picks
        for trace, idx in zip(earlier, slots):
            if idx is None:
                trace.x, trace.y = [], []
                continue
            step, rel = self.profiles[idx]
            trace.x = np.arange(len(rel), dtype=float)
            trace.y = rel
            trace.name = f"iteration {step}"
        if self.profiles:
            step, rel = self.profiles[-1]
            latest.x = np.arange(len(rel), dtype=float)
            latest.y = rel
        fmax.x, fmax.y = self._series["fmax"].arrays()

    @property
    def trace_names(self) -> list[str]:
        """Names of the figure's traces (earlier profiles are named ``"iteration k"``)."""
        return [trace.name for trace in self.figure.data]


class SwapMCPlot(LivePlot):
    """Swap Monte Carlo: energy after each decision and of each trial (top), acceptance
    rate so far (bottom), vs trial."""

    kind = "swap_mc"

    def __init__(self, max_points: int = DEFAULT_MAX_POINTS, *, height: int = 440) -> None:
        super().__init__(max_points)
        fig = _figure(2, ["energy (eV)", "accepted (%)"], height)
        fig.add_scatter(
            x=[],
            y=[],
            name="trial",
            mode="markers",
            marker=dict(color=_GREY, size=3),
            row=1,
            col=1,
        )
        fig.add_scatter(
            x=[], y=[], name="energy", mode="lines", line=dict(color=_BLUE), row=1, col=1
        )
        fig.add_scatter(
            x=[], y=[], name="acceptance", mode="lines", line=dict(color=_ORANGE), row=2, col=1
        )
        fig.update_xaxes(title_text="trial", row=2, col=1)
        self.figure = self._widget(fig)
        self._series = {name: _Series(max_points) for name in ("trial", "energy", "acceptance")}

    def _add(self, event: Any) -> None:
        step = float(event.step)
        self._series["energy"].append(step, float(event.energy))
        if event.step > 0:
            self._series["trial"].append(step, float(event.trial_energy))
            self._series["acceptance"].append(step, 100.0 * float(event.acceptance_rate))


def make_live_plot(run: Any, *, max_points: int = DEFAULT_MAX_POINTS) -> LivePlot:
    """The plot that suits ``run`` (by its ``kind``): relax, md, neb, swap_mc, or energy vs
    step.

    Parameters
    ----------
    run
        A :class:`~nnp_lab.simulate._run.Run` (only ``kind`` and a few parameters are read).
    max_points
        Most points kept per trace.
    """
    kind = getattr(run, "kind", "run")
    if kind == "relax":
        return RelaxPlot(max_points, fmax_target=getattr(run, "fmax", None))
    if kind == "md":
        return MDPlot(max_points, thermostat=getattr(run, "ensemble", "nvt") != "nve")
    if kind == "neb":
        return NEBPlot(max_points)
    if kind == "swap_mc":
        return SwapMCPlot(max_points)
    return EnergyPlot(max_points)


class TrainingPlot:
    """Training and validation loss and the validation MAEs of :func:`nnp_lab.models.train`.

    The live display of training (registered as ``"training"`` in :mod:`nnp_lab.display`):
    ``train(..., live=None)`` creates one, displayed before the first epoch, and calls
    :meth:`update` with the history after every epoch. Redrawn at most twice per second in
    one ``batch_update``, and always at the end (``final=True``).

    Parameters
    ----------
    title
        Figure title, e.g. ``"training TeaNet"``.
    """

    #: Fewest seconds between two redraws (the final one is always drawn).
    MIN_INTERVAL_S = 0.5

    def __init__(self, title: str) -> None:
        import time

        import plotly.graph_objects as go
        from IPython.display import display
        from plotly.subplots import make_subplots

        fig = make_subplots(
            rows=1,
            cols=2,
            subplot_titles=("loss", "validation MAE"),
            specs=[[{}, {"secondary_y": True}]],
        )
        fig.add_scatter(name="train loss", x=[], y=[], mode="lines", row=1, col=1)
        fig.add_scatter(name="validation loss", x=[], y=[], mode="lines", row=1, col=1)
        fig.add_scatter(name="force MAE (eV/Å)", x=[], y=[], mode="lines", row=1, col=2)
        fig.add_scatter(
            name="energy MAE (meV/atom)", x=[], y=[], mode="lines", row=1, col=2, secondary_y=True
        )
        fig.update_yaxes(type="log", row=1, col=1)
        fig.update_xaxes(title_text="epoch")
        fig.update_layout(
            height=320,
            title=title,
            template="plotly_white",
            margin=dict(l=50, r=50, t=50, b=40),
            uirevision="nnp_lab-train",
        )
        self.figure = go.FigureWidget(fig)
        self._clock = time.perf_counter
        self._last = -math.inf
        self.n_draws = 0
        display(self.figure)

    def update(self, history: Any, final: bool = False) -> None:
        """Redraw from ``history`` (lists ``epoch``, ``train_loss``, ``val_loss``,
        ``val_force_mae``, ``val_energy_mae_per_atom``), at most every
        :attr:`MIN_INTERVAL_S` seconds unless ``final``."""
        now = self._clock()
        if not final and now - self._last < self.MIN_INTERVAL_S:
            return
        self._last = now
        x = history["epoch"]
        with self.figure.batch_update():
            data = self.figure.data
            data[0].x, data[0].y = x, history["train_loss"]
            data[1].x, data[1].y = x, history["val_loss"]
            data[2].x, data[2].y = x, history["val_force_mae"]
            data[3].x, data[3].y = x, [1000 * v for v in history["val_energy_mae_per_atom"]]
        self.n_draws += 1
