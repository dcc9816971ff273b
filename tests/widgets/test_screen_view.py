"""ScreenView / watch_screen: the live table, scatter, progress and viewer of a screen.

No browser (widget comms are dummies; the real-browser test is
tests/browser/test_screen_browser.py). Runs are held open with events the test controls, so
"rows appear before the screen ends" never depends on the machine's speed.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

pytest.importorskip("anywidget")
pytest.importorskip("plotly")

from ase import Atoms
from ase.build import bulk

from nnp_lab import display
from nnp_lab.screening import ScreenRun, load, screen
from nnp_lab.widgets import ScreenView, watch_screen
from nnp_lab.widgets.screen_view import ScreenTable, _duration


def cells(n):
    out = []
    for k in range(n):
        a = bulk("Cu", "fcc", a=3.55 + 0.02 * k, cubic=True) * (1 + k % 2, 1, 1)
        a.rattle(0.03, seed=k)
        out.append(a)
    return out


def wait_for(predicate, what, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class Gate:
    """A screen task that computes the EMT energy, but waits at structure ``hold`` (by input
    position) until released."""

    def __init__(self, hold):
        self.hold = hold
        self.release = threading.Event()
        self.reached = threading.Event()

    def __call__(self, atoms, potential):
        if len(atoms) and atoms.info.get("position") == self.hold:
            self.reached.set()
            assert self.release.wait(120), "the test never released the screen"
        return {"e": float(potential.evaluate([atoms])[0]["energy"])}


def numbered(structures):
    for k, a in enumerate(structures):
        a.info["position"] = k
    return structures


def test_view_fills_in_sorts_and_shows_a_clicked_row(tmp_path):
    inputs = cells(6) + [Atoms("Fe2", positions=[[0, 0, 0], [0, 0, 2.0]])]  # EMT lacks Fe
    job = ScreenRun(inputs, "relax", "emt", db=tmp_path / "s.db", batch=3)
    view = ScreenView(job, max_rate_hz=50)
    assert view.status_text("ready").startswith("ready · 0/7")
    result = view.start().wait(timeout=300)
    assert result.n_done == 6 and result.n_failed == 1 and not result.stopped
    assert len(view.records) == 7 and view.table.n_rows == 7
    assert view.progress.value == 7 and view.progress.bar_style == "success"
    text = view.status.value
    assert "finished" in text and "7/7" in text and "1 failed" in text, text
    # default sort: energy per atom, lowest first; the failed row (no energy) last
    columns = view.table.columns
    e = columns.index("energy_per_atom")
    shown = [row[e] for row in view.table.rows]
    assert shown[:6] == sorted(shown[:6]) and shown[6] is None
    assert view.table.rows[6][columns.index("status")] == "failed"
    df = result.to_dataframe()
    assert min(df.energy_per_atom.dropna()) == pytest.approx(shown[0], rel=1e-12)
    # a header click asks for another sort: the largest cells first
    view.table.sort_by, view.table.ascending = "n_atoms", False
    n = columns.index("n_atoms")
    assert view.table.rows[0][n] == max(df.n_atoms)
    # the scatter has one point per finished row, x/y from the dropdowns
    trace = view.figure.data[0]
    assert len(trace.x) == 6 and sorted(trace.customdata) == sorted(df.row_id[df.status == "done"])
    view.y_axis.value = "fmax"
    assert "fmax" in view.y_axis.options and max(view.figure.data[0].y) < 0.05
    # clicking a row (what the browser sends) shows its relaxed structure in the viewer
    biggest = df.sort_values("n_atoms").iloc[-1]
    view.table.selected = int(biggest.row_id)
    assert view.viewer.n_atoms == biggest.n_atoms
    np.testing.assert_allclose(
        view.viewer.positions, result.atoms(int(biggest.row_id)).positions, atol=1e-6
    )
    assert f"row {int(biggest.row_id)}" in view.viewer.label
    view.close()


def test_rows_appear_while_the_screen_runs(tmp_path):
    gate = Gate(hold=3)
    job = ScreenRun(numbered(cells(6)), gate, "emt", db=tmp_path / "g.db")
    view = ScreenView(job, max_rate_hz=50).start()
    try:
        assert gate.reached.wait(120)
        # rows 0-2 are committed and shown while the screen is held at structure 3
        wait_for(lambda: view.table.n_rows == 3, "three rows in the table")
        assert not view._done.is_set() and "running" in view.status.value
        assert "3/6" in view.status.value and "ETA" in view.status.value
        assert len(view.figure.data[0].x) == 3
    finally:
        gate.release.set()
    result = view.wait(timeout=300)
    assert result.n_done == 6 and view.table.n_rows == 6


def test_stop_keeps_committed_rows_and_the_rerun_does_the_rest(tmp_path):
    gate = Gate(hold=2)
    db = tmp_path / "stop.db"
    job = ScreenRun(numbered(cells(8)), gate, "emt", db=db)
    view = ScreenView(job).start()
    assert gate.reached.wait(120)
    view.stop()
    assert view.stop_button.disabled and "stopping" in view.status.value
    gate.release.set()
    result = view.wait(timeout=300)
    # the structure in flight finished, nothing after it started
    assert result.stopped and result.n_done == 3
    assert "stopped" in view.status.value and view.progress.bar_style == "warning"
    again = screen(numbered(cells(8)), gate, "emt", db=db)
    assert again.n_skipped == 3 and again.n_done == 5 and not again.stopped
    keys = load(db).to_dataframe().key
    assert len(keys) == 8 and keys.is_unique


def test_a_resumed_screen_shows_the_rows_already_done(tmp_path):
    db = tmp_path / "resume.db"
    screen(cells(3), "energy", "emt", db=db)
    view = ScreenView(ScreenRun(cells(5), "energy", "emt", db=db))
    result = view.start().wait(timeout=300)
    assert result.n_skipped == 3 and result.n_done == 2
    assert view.table.n_rows == 5 and "3 already in the database" in view.status.value


def test_table_sorting_rules():
    table = ScreenTable(max_rows=2, sort_by="x")
    table.set_records(
        [
            {"row_id": 1, "x": 3.0},
            {"row_id": 2, "x": None},
            {"row_id": 3, "x": 1.0},
            {"row_id": 4, "x": float("nan")},
            {"row_id": 5, "x": 2.0},
        ]
    )
    assert [r["row_id"] for r in table.sorted_records()] == [3, 5, 1, 2, 4]
    assert table.n_rows == 5 and [r[0] for r in table.rows] == [3, 5]  # the best 2 shown
    table.ascending = False
    assert [r[0] for r in table.rows] == [1, 5]
    with pytest.raises(Exception, match="max_rows"):
        ScreenTable(max_rows=0)


def test_view_checks_its_job(tmp_path):
    with pytest.raises(TypeError, match="ScreenRun"):
        ScreenView(cells(2))
    job = ScreenRun(cells(1), "energy", "emt", db=tmp_path / "x.db")
    job.run()
    with pytest.raises(RuntimeError, match="already run"):
        ScreenView(job)


def test_durations():
    assert _duration(5.4) == "0:05" and _duration(125) == "2:05" and _duration(3725) == "1:02:05"


def test_watch_screen_is_the_registered_screen_display():
    # importing nnp_lab.widgets (above) registered it
    assert display._DISPLAYS["screen"] is watch_screen


def test_live_outside_a_notebook_shows_a_tqdm_bar(tmp_path, capsys):
    res = screen(cells(3), "energy", "emt", db=tmp_path / "t.db", live=True)
    assert res.n_done == 3
    err = capsys.readouterr().err
    assert "screen" in err and "3/3" in err, err
