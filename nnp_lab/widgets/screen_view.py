"""Watch a screen live: progress with rate and ETA, a sortable table, a scatter, a viewer.

:class:`ScreenView` is what ``nnp_lab.screen(..., live=True)`` shows inside Jupyter (through
:func:`watch_screen`, registered as the ``"screen"`` display). The screen runs in a background
thread; its rows are recorded as they are committed and the widgets are refreshed at most
``max_rate_hz`` times per second (:class:`~nnp_lab.widgets._throttle.FrameThrottle`), so a
screen of thousands of small structures never floods the browser:

* a progress bar and a status line: rows so far, rate (structures per second of this call),
  ETA when the number of inputs is known, failed rows, rows found already done;
* :class:`ScreenTable`: the best rows on top (sorted in the kernel by any column, default
  energy per atom, lowest first; click a header to sort by it, again to reverse), at most
  ``max_rows`` of them sent to the browser;
* a plotly scatter of two numeric columns chosen in two dropdowns (one point per finished row);
* a :class:`~nnp_lab.widgets.Viewer`: clicking a table row or a scatter point shows that row's
  structure (relaxed, for a relaxation), read from the screen's database;
* Stop: rows committed stay, the structures in flight are abandoned, and running the same
  ``screen`` again does the rest. The notebook's interrupt button does the same.

The cell stays blocked while the screen runs (like any ``live=True`` run), but clicks are
handled meanwhile (:func:`~nnp_lab.widgets._kernel_pump.wait_handling_widgets`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import warnings
from typing import Any

import anywidget
import ipywidgets as widgets
import numpy as np
import traitlets

from nnp_lab.errors import InputError
from nnp_lab.screening import RowEvent, ScreenResult, ScreenRun
from nnp_lab.widgets._frontend import frontend_file
from nnp_lab.widgets._kernel_pump import wait_handling_widgets
from nnp_lab.widgets._throttle import FrameThrottle
from nnp_lab.widgets.viewer import Viewer

__all__ = ["ScreenTable", "ScreenView", "watch_screen"]

logger = logging.getLogger(__name__)

#: How often :meth:`ScreenView.wait` handles incoming widget messages (seconds).
POLL_INTERVAL_S = 0.02
#: Columns never offered as scatter axes (identifiers, not results).
NOT_AXES = frozenset({"row_id", "input_index"})
#: First columns of the table, in this order; the task's numbers follow.
LEADING = ("row_id", "input_index", "formula", "n_atoms", "status", "energy", "energy_per_atom")

_CSS = """
.nnp-screen-table { font-size: 12px; }
.nnp-screen-caption { color: #555; margin: 2px 0 4px; }
.nnp-screen-scroll { max-height: 320px; overflow: auto; border: 1px solid #ddd; }
.nnp-screen-table table { border-collapse: collapse; width: 100%; }
.nnp-screen-table th { position: sticky; top: 0; background: #f3f3f3; cursor: pointer;
  text-align: left; padding: 2px 6px; white-space: nowrap; user-select: none; }
.nnp-screen-table td { padding: 1px 6px; white-space: nowrap; font-variant-numeric: tabular-nums; }
.nnp-screen-table tbody tr { cursor: pointer; }
.nnp-screen-table tbody tr:hover { background: #eef4ff; }
.nnp-screen-table tr.selected { background: #cfe0ff; }
.nnp-screen-table tr.failed td { color: #a33; }
"""


def _table_esm() -> Any:
    path = frontend_file("screen_table.js")
    if path is None:
        return (
            "export default { render({ el }) { el.textContent = 'nnp_lab: screen_table.js is "
            "missing from this installation'; } };"
        )
    return path


class ScreenTable(anywidget.AnyWidget):
    """A table of screen rows: sorted in the kernel, the first ``max_rows`` shown in the page.

    Traits synced with the browser: ``columns`` and ``rows`` (what is shown), ``sort_by`` and
    ``ascending`` (set by header clicks), ``selected`` (the ``row_id`` of a clicked row, -1
    for none) and ``n_rows`` (all rows, shown or not). Call :meth:`set_records` with every row
    as a dict; the sorting happens there and whenever ``sort_by``/``ascending`` change.

    Parameters
    ----------
    max_rows
        Most rows sent to the browser (the best ones by the current sort).
    sort_by, ascending
        The initial sort (``None``: input order).
    """

    _esm = _table_esm()
    _css = _CSS
    columns = traitlets.List(traitlets.Unicode()).tag(sync=True)
    rows: Any = traitlets.List().tag(sync=True)
    sort_by = traitlets.Unicode(allow_none=True, default_value=None).tag(sync=True)
    ascending = traitlets.Bool(True).tag(sync=True)
    selected = traitlets.Int(-1).tag(sync=True)
    n_rows = traitlets.Int(0).tag(sync=True)

    def __init__(
        self, *, max_rows: int = 50, sort_by: str | None = None, ascending: bool = True
    ) -> None:
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
            raise InputError(f"max_rows must be a positive integer, got {max_rows!r}")
        super().__init__(sort_by=sort_by, ascending=ascending)
        self.max_rows = max_rows
        self._records: list[dict[str, Any]] = []
        self.observe(lambda _change: self._show(), names=["sort_by", "ascending"])

    def set_records(self, records: list[dict[str, Any]]) -> None:
        """Show these rows (all of them counted, the best ``max_rows`` sent)."""
        self._records = records
        self._show()

    def sorted_records(self) -> list[dict[str, Any]]:
        """Every row in the current order (rows without a value for the sort key last)."""
        key = self.sort_by
        if not key:
            return list(self._records)
        have = [r for r in self._records if _sortable(r.get(key))]
        missing = [r for r in self._records if not _sortable(r.get(key))]
        # numbers before strings if a column mixes them (never compare the two)
        have.sort(key=lambda r: (isinstance(r[key], str), r[key]), reverse=not self.ascending)
        return have + missing

    def _show(self) -> None:
        columns = _columns(self._records)
        top = self.sorted_records()[: self.max_rows]
        with self.hold_sync():
            self.columns = columns
            self.rows = [[_plain(r.get(c)) for c in columns] for r in top]
            self.n_rows = len(self._records)


class ScreenView(widgets.VBox):
    """Live view of a :class:`~nnp_lab.screening.ScreenRun` (see the module docstring).

    Parameters
    ----------
    job
        A screen that has not run yet (``nnp_lab.screening.ScreenRun(...)``).
    max_rows
        Most table rows shown in the page (all are kept, and sorted, in the kernel).
    max_rate_hz
        Most refreshes of the table, scatter and status per second (default 4; the final
        state is always shown).
    sort_by
        Initial sort column (default ``"energy_per_atom"``, lowest first).
    x, y
        Initial scatter columns (default: ``n_atoms`` and ``energy_per_atom``).

    Attributes
    ----------
    job, progress, status, stop_button, table, x_axis, y_axis, figure, viewer
    records : list of dict
        Every row seen so far, in arrival order.
    result : ScreenResult or None
    error : BaseException or None
    """

    def __init__(
        self,
        job: ScreenRun,
        *,
        max_rows: int = 50,
        max_rate_hz: float = 4.0,
        sort_by: str = "energy_per_atom",
        x: str = "n_atoms",
        y: str = "energy_per_atom",
    ) -> None:
        import plotly.graph_objects as go

        if not isinstance(job, ScreenRun):
            raise TypeError(
                f"ScreenView needs a nnp_lab.screening.ScreenRun, got {type(job).__name__}"
            )
        if job.result is not None:
            raise RuntimeError("this screen has already run; create a new ScreenRun")
        self.job = job
        self.records: list[dict[str, Any]] = []
        self.result: ScreenResult | None = None
        self.error: BaseException | None = None
        self.n_refreshes = 0
        self._lock = threading.RLock()
        self._last: RowEvent | None = None
        self._started_at: float | None = None
        self._ended = False
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

        total = job.total
        self.progress = widgets.IntProgress(
            value=0, min=0, max=max(1, total or 1), bar_style="info"
        )
        self.progress.layout.width = "320px"
        self.status = widgets.HTML()
        self.stop_button = widgets.Button(description="Stop", icon="stop", button_style="danger")
        self.stop_button.on_click(lambda _b: self.stop())
        self.table = ScreenTable(max_rows=max_rows, sort_by=sort_by)
        self.table.observe(self._on_select, names="selected")
        self.x_axis = widgets.Dropdown(description="x", options=[x], value=x)
        self.y_axis = widgets.Dropdown(description="y", options=[y], value=y)
        for dropdown in (self.x_axis, self.y_axis):
            dropdown.layout.width = "240px"
            dropdown.observe(lambda _c: self._draw_scatter(), names="value")
        self.figure = go.FigureWidget(
            go.Figure(
                go.Scatter(x=[], y=[], mode="markers", customdata=[], name="rows"),
                layout=go.Layout(
                    height=320,
                    width=440,
                    margin=dict(l=60, r=10, t=30, b=50),
                    title=dict(text="click a point to view it", font=dict(size=12)),
                    xaxis_title=x,
                    yaxis_title=y,
                ),
            )
        )
        self.figure.data[0].on_click(self._on_point_click)
        self.viewer = Viewer(height=320)
        self.viewer.layout.width = "420px"
        self._throttle: FrameThrottle[bool] = FrameThrottle(
            self._refresh, max_rate_hz, lock=self._lock
        )
        job.subscribe(self._on_row)
        self._set_status("ready")
        super().__init__(
            [
                widgets.HBox([self.progress, self.stop_button, self.status]),
                self.table,
                widgets.HBox(
                    [
                        widgets.VBox([widgets.HBox([self.x_axis, self.y_axis]), self.figure]),
                        self.viewer,
                    ]
                ),
            ]
        )
        self.add_class("nnp-lab-screen")

    # ------------------------------------------------------------------ control
    def start(self) -> ScreenView:
        """Run the screen in a background thread and return at once (idempotent)."""
        if self._thread is None:
            self._started_at = time.perf_counter()
            self._set_status("running")
            self._thread = threading.Thread(target=self._drive, name="nnp_lab-screen", daemon=True)
            self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> ScreenResult:
        """Block until the screen ends, handling clicks meanwhile; return its result.

        ``KeyboardInterrupt`` stops the screen cleanly (the rows committed stay) and returns
        the partial result (``stopped=True``) with a warning.

        Raises
        ------
        TimeoutError
            ``timeout`` seconds passed first (the screen goes on).
        Exception
            Whatever the screen raised.
        """
        self.start()
        deadline = None if timeout is None else time.monotonic() + float(timeout)
        try:
            done = wait_handling_widgets(
                self._done, self._lock, interval_s=POLL_INTERVAL_S, deadline=deadline
            )
        except KeyboardInterrupt:
            self.stop()
            self._done.wait()
            warnings.warn(
                f"screen interrupted; {len(self.records)} rows are in {self.job.db} — run the "
                "same screen again to do the rest",
                stacklevel=2,
            )
            done = True
        if not done:
            raise TimeoutError(f"the screen did not end within {timeout} s; it goes on")
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result

    def stop(self) -> None:
        """End the screen early (same as clicking Stop)."""
        self.job.stop()
        self.stop_button.disabled = True
        self._set_status("stopping")

    def show_row(self, row_id: int) -> None:
        """Show the structure of a database row in the viewer (and select it in the table)."""
        from nnp_lab.screening import load

        row_id = int(row_id)
        atoms = load(self.job.db).atoms(row_id)
        record = next((r for r in self.records if r["row_id"] == row_id), {})
        with self._lock:
            self.viewer.atoms = atoms
            energy = record.get("energy")
            self.viewer.label = f"row {row_id}: {atoms.get_chemical_formula()}" + (
                f", E = {energy:.4f} eV" if isinstance(energy, float) else ""
            )
            if self.table.selected != row_id:
                self.table.selected = row_id

    # ------------------------------------------------------------------ screen thread
    def _drive(self) -> None:
        try:
            self.result = self.job.run()
        except BaseException as exc:  # re-raised in wait()
            self.error = exc
            self.result = self.job.result
        self._ended = True
        try:
            self._throttle.cancel()
            with self._lock:
                self._refresh(True)
        except Exception:
            logger.exception("updating the screen view at the end failed")
        self._done.set()

    def _on_row(self, event: RowEvent) -> None:
        with self._lock:
            self.records.append(event.record)
            self._last = event
        self._throttle.submit(True)

    # ------------------------------------------------------------------ UI (throttled)
    def _refresh(self, _token: bool) -> None:
        with self._lock:
            records = list(self.records)
            self.table.set_records(records)
            axes = _numeric_columns(records)
            if axes and list(self.x_axis.options) != axes:
                x = self.x_axis.value if self.x_axis.value in axes else axes[0]
                # y: the chosen column, else the task's last number (not the x column)
                others = [c for c in axes if c != x] or axes
                y = self.y_axis.value if self.y_axis.value in axes else others[-1]
                for dropdown, value in ((self.x_axis, x), (self.y_axis, y)):
                    dropdown.options = axes
                    dropdown.value = value
            self._draw_scatter()
            seen = self._last.n_seen if self._last is not None else 0
            self.progress.value = min(seen, self.progress.max)
            if self._ended:
                self.progress.bar_style = "warning" if self.job.stopping else "success"
                self.stop_button.disabled = True
            if not self._ended:
                self._set_status("running")
            else:
                self._set_status("stopped" if self.job.stopping else "finished")
            self.n_refreshes += 1

    def _draw_scatter(self) -> None:
        x, y = self.x_axis.value, self.y_axis.value
        points = [
            (r[x], r[y], r["row_id"])
            for r in self.records
            if r.get("status") == "done" and _sortable(r.get(x)) and _sortable(r.get(y))
        ]
        trace = self.figure.data[0]
        with self.figure.batch_update():
            trace.x = [p[0] for p in points]
            trace.y = [p[1] for p in points]
            trace.customdata = [p[2] for p in points]
            self.figure.layout.xaxis.title.text = x
            self.figure.layout.yaxis.title.text = y

    def _set_status(self, state: str) -> None:
        self.status.value = f"<span class='nnp-screen-status'>{self.status_text(state)}</span>"

    def status_text(self, state: str = "running") -> str:
        """The status line: state, rows, rate, ETA, failures and resumed rows."""
        last, total = self._last, self.job.total
        seen = last.n_seen if last is not None else 0
        parts = [state, f"{seen}/{total}" if total is not None else f"{seen} structures"]
        computed = last.n_done + last.n_failed if last is not None else 0  # not resumed
        if self._started_at is not None and computed:
            elapsed = time.perf_counter() - self._started_at
            rate = computed / max(elapsed, 1e-9)
            parts.append(f"{rate:.2f} structures/s")
            if total is not None and not self._ended and rate > 0:
                parts.append(f"ETA {_duration((total - seen) / rate)}")
            if self._ended:
                parts.append(f"in {_duration(elapsed)}")
        if last is not None and last.n_failed:
            parts.append(f"{last.n_failed} failed")
        if last is not None and last.n_skipped:
            parts.append(f"{last.n_skipped} already in the database")
        return " · ".join(parts)

    # ------------------------------------------------------------------ clicks
    def _on_select(self, change: dict[str, Any]) -> None:
        row_id = change["new"]
        if row_id is None or row_id < 0:
            return
        try:
            self.show_row(row_id)
        except Exception as exc:  # a click must never raise into the kernel
            logger.exception("showing row %s failed", row_id)
            self.viewer.label = f"row {row_id}: could not be read ({exc})"

    def _on_point_click(self, trace: Any, points: Any, _state: Any) -> None:
        if points.point_inds:
            self.table.selected = int(trace.customdata[points.point_inds[0]])

    def close(self) -> None:
        """Close the widgets (does not stop the screen)."""
        throttle = getattr(self, "_throttle", None)
        if throttle is not None:
            throttle.close()
        for name in ("table", "figure", "viewer", "progress", "status", "stop_button"):
            w = getattr(self, name, None)
            if w is not None:
                w.close()
        super().close()

    def __repr__(self) -> str:
        state = "finished" if self._ended else ("running" if self._thread else "ready")
        return f"ScreenView({self.job.db!r}, {state}, rows={len(self.records)})"


def watch_screen(job: ScreenRun, **options: Any) -> ScreenResult:
    """Display a :class:`ScreenView` of ``job``, run it and return its result (what
    ``screen(..., live=True)`` calls inside Jupyter). ``options``: see :class:`ScreenView`."""
    from IPython.display import display

    view = ScreenView(job, **options)
    display(view)
    return view.start().wait()


# -------------------------------------------------------------------------------------------
def _sortable(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return True
    if isinstance(value, (int, float, np.integer, np.floating)):
        return math.isfinite(float(value))
    return isinstance(value, str)


def _plain(value: Any) -> Any:
    """A JSON-friendly value for the browser."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _columns(records: list[dict[str, Any]]) -> list[str]:
    """The table's columns: the leading ones present, then the others in first-seen order
    (the error last); columns without a value in any row are left out."""
    seen: dict[str, None] = {}
    for r in records:
        for k, v in r.items():
            if v is not None:  # a column no row has a value for is left out
                seen.setdefault(k, None)
    seen.pop("key", None)
    lead = [c for c in LEADING if c in seen]
    return (
        lead
        + [c for c in seen if c not in lead and c != "error"]
        + (["error"] if "error" in seen else [])
    )


def _numeric_columns(records: list[dict[str, Any]]) -> list[str]:
    """Columns with a number in at least one row (scatter axes)."""
    out: dict[str, None] = {}
    for r in records:
        for k, v in r.items():
            if k in NOT_AXES or isinstance(v, (bool, np.bool_)):
                continue
            if isinstance(v, (int, float, np.integer, np.floating)):
                out.setdefault(k, None)
    lead = [c for c in LEADING if c in out]
    return lead + [c for c in out if c not in lead]


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
