"""``relax(..., live=True)`` and ``md(..., live=True)`` in a real JupyterLab + Chromium.

One notebook; each test runs the cells it needs (any order):

1. a relaxation (EMT, rattled Cu147 icosahedron, 400 FIRE steps) with ``live=True``. The
   test holds the run open itself (a stand-in potential that waits at two chosen steps for
   a file the test creates), so "while the cell is still running" never depends on the
   machine's speed: while it runs, the viewer canvas is not blank, the viewer's
   frames-drawn counter grows and the energy plot (read from plotly's graph div,
   ``gd.data[0].x.length``) gains points; after the cell: the plot holds every step (the
   final state is shown) and the printed result is correct;
2. an MD run with ``steps=100000`` and ``live=True`` — Pause holds it (the status says
   "paused" once the run rests, and no new points come), Resume continues, and a Stop click
   ends the cell early with ``stopped=True``;
3. after each: no console errors from our modules or plotly.

Screenshots go to test-artifacts/ (look at them).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

import lab_harness
from lab_harness import (
    NotebookPage,
    assert_no_console_errors,
    count_foreground,
    wait_until,
    write_notebook,
)

HELPERS = Path(__file__).resolve().parents[1] / "simulate"  # potentials_for_tests.py
#: Console messages that come from our modules or the libraries the page uses.
OURS = r"nnp|viewer|plotly|webgl|GL_|shader|anywidget|widget"
NOTEBOOK = "live_browser_test.ipynb"
RELAX_STEPS = 400

MD_TIMESTEP_FS = 2.0
RELAX_GATES = {30: "relax_gate_1", 300: "relax_gate_2"}  # evaluation call -> release file
# Evaluation call k + 1 gives relaxation step k (call 1 is the starting structure), so the run
# rests after these steps until the test releases it.
RELAX_GATES_FIRST_STEP, RELAX_GATES_SECOND_STEP = (call - 2 for call in RELAX_GATES)

CELLS = [
    # 0: set-up: imports, structures, and one small FigureWidget so the browser has loaded
    # plotly's front end (a 5 MB module) before the live cells
    f"""import sys, time
sys.path.insert(0, {str(HELPERS)!r})
import plotly.graph_objects as go
from ase.cluster import Icosahedron
from nnp_lab.simulate import relax, md
from potentials_for_tests import HeldPotential
cluster = Icosahedron("Cu", 4)
cluster.rattle(0.2, seed=0)
small = Icosahedron("Cu", 3)
warm = go.FigureWidget(go.Figure(go.Scatter(x=[0, 1], y=[0, 1])), layout=None)
display(warm)
print("READY", len(cluster))""",
    # 1: live relaxation (the view is shown before the first step and moves while it runs),
    # held by the test at two steps
    f"""t0 = time.perf_counter()
res = relax(cluster, HeldPotential({RELAX_GATES!r}), fmax=1e-30, steps={RELAX_STEPS}, live=True)
print("RELAX DONE", res.n_steps, res.stopped, round(time.perf_counter() - t0, 1))""",
    # 2: live MD that would take hours; ended by the Stop button
    f"""MD_TIMESTEP_FS = {MD_TIMESTEP_FS}
t0 = time.perf_counter()
res_md = md(small, "emt", temperature_K=500, steps=100000, interval=5, timestep_fs=MD_TIMESTEP_FS,
            seed=0, live=True)
print("MD DONE", "stopped=%s" % res_md.stopped, res_md.n_steps, round(time.perf_counter() - t0, 1))""",
]

# Number of points of each trace of the first plotly graph in an element.
_TRACE_POINTS = """(el) => {
  const gd = el.querySelector('.js-plotly-plot');
  if (!gd || !gd.data) return null;
  return gd.data.map((t) => (t.x ? t.x.length : 0));
}"""


@pytest.fixture(scope="module")
def nb(lab: lab_harness.LabServer, page: Any) -> NotebookPage:
    write_notebook(lab.root / NOTEBOOK, CELLS)
    notebook = NotebookPage(page)
    notebook.open(lab.notebook_url(NOTEBOOK))
    notebook.run_cell(0, retry_s=8)
    notebook.wait_output(0, "READY 147", timeout_s=300)
    notebook.cell(0).locator(".js-plotly-plot").first.wait_for(state="visible", timeout=120_000)
    return notebook


# x (MD: time in ps) of the newest point of the first trace; the buffer always keeps it.
_LAST_X = """(el) => {
  const gd = el.querySelector('.js-plotly-plot');
  if (!gd || !gd.data || !gd.data[0].x || !gd.data[0].x.length) return null;
  return gd.data[0].x[gd.data[0].x.length - 1];
}"""


def _points(cell: Any) -> list[int] | None:
    return cell.evaluate(_TRACE_POINTS)


def _energy_points(cell: Any) -> int:
    pts = _points(cell)
    return pts[0] if pts else 0


def _frames_drawn(root: Any) -> int:
    return int(root.get_attribute("data-frames-drawn") or 0)


def _label_step(root: Any) -> int:
    m = re.search(r"step (\d+)", root.locator(".nnpv-label").inner_text())
    return int(m.group(1)) if m else -1


def test_live_relax_updates_while_the_cell_runs(
    nb: NotebookPage,
    lab: lab_harness.LabServer,
    artifacts: Path,
    browser_logs: dict[str, list[str]],
) -> None:
    gate_1, gate_2 = (lab.root / name for name in RELAX_GATES.values())
    t_run = time.monotonic()
    nb.run_cell(1)
    cell = nb.cell(1)
    root = nb.viewer_root(1)
    root.wait_for(state="visible", timeout=120_000)
    cell.locator(".js-plotly-plot").first.wait_for(state="visible", timeout=120_000)
    t_shown = time.monotonic() - t_run
    wait_until(lambda: _energy_points(cell) >= 3, 120, "the first plotted points")
    # The run cannot pass its first gate (step ~29) until this test creates the file.
    assert nb.is_running(1)

    n1, frames1, step1 = _energy_points(cell), _frames_drawn(root), _label_step(root)
    png = root.locator("canvas").screenshot(path=str(artifacts / "live_relax_canvas.png"))
    fg, total = count_foreground(png)
    assert fg > 0.03 * total, f"viewer canvas looks blank while the cell runs: {fg}/{total}"
    assert n1 <= RELAX_GATES_FIRST_STEP + 1, n1
    pts = _points(cell)
    assert pts[1] >= pts[0] - 1, pts  # energy and fmax traces fill together

    gate_1.touch()  # on to the second gate (step ~299 of 400)
    wait_until(
        lambda: _energy_points(cell) >= RELAX_GATES_SECOND_STEP,
        120,
        "the energy plot to grow while the cell runs",
    )
    wait_until(
        lambda: _frames_drawn(root) > frames1 and _label_step(root) > step1,
        120,
        "the viewer to draw the new steps",
    )
    n2, frames2 = _energy_points(cell), _frames_drawn(root)
    label = root.locator(".nnpv-label").inner_text()
    status = cell.locator(".nnp-lab-live").inner_text()
    cell.locator(".nnp-lab-live").screenshot(path=str(artifacts / "live_relax_running.png"))
    assert nb.is_running(1), "the run is held at its second gate: the cell must be running"
    assert re.search(r"step \d+ +E = -?\d", label), label
    assert "running" in status and "steps/s" in status, status

    gate_2.touch()
    out = nb.wait_output(1, "RELAX DONE", timeout_s=300)
    n_steps = int(out.split("RELAX DONE")[1].split()[0])
    assert n_steps == RELAX_STEPS
    assert "False" in out.split("RELAX DONE")[1].split()[1]
    # The final state is shown: every step is plotted, the status says finished, and the
    # viewer holds the trajectory to scrub (slider over all frames).
    wait_until(lambda: _energy_points(cell) == n_steps + 1, 120, "the final point")
    wait_until(lambda: "finished" in cell.locator(".nnp-lab-live").inner_text(), 120, "the status")
    # The frames travel in their own message and may land after the status text.
    wait_until(
        lambda: root.locator(".nnpv-slider").get_attribute("max") == str(n_steps),
        120,
        "the trajectory player over all frames",
    )
    cell.locator(".nnp-lab-live").screenshot(path=str(artifacts / "live_relax_done.png"))
    print(
        f"\nrelax: view shown {t_shown:.1f} s after Run; points {n1} -> {n2} between the "
        f"gates; frames drawn {frames1} -> {frames2}; {n_steps} steps; {out.split()[-1]} s"
    )
    assert_no_console_errors(browser_logs, OURS)


def test_live_md_pause_resume_and_stop(
    nb: NotebookPage,
    artifacts: Path,
    browser_logs: dict[str, list[str]],
) -> None:
    nb.run_cell(2)
    cell = nb.cell(2)
    live = cell.locator(".nnp-lab-live")
    live.wait_for(state="visible", timeout=120_000)
    wait_until(lambda: _energy_points(cell) >= 5, 120, "MD points")
    assert nb.is_running(2)  # 100,000 steps: hours, and only Stop ends it
    pts = _points(cell)
    assert len(pts) == 5, pts  # potential, total, kinetic, temperature, target

    # Pause: the status says "paused" (not "pausing") once the run rests after the step in
    # flight, naming the last step done; every point up to it arrives, then no more.
    cell.get_by_role("button", name=re.compile("Pause")).click()
    wait_until(lambda: re.search(r"paused · step \d+", live.inner_text()), 120, "the paused status")
    held_step = int(re.search(r"paused · step (\d+)", live.inner_text()).group(1))
    held_ps = held_step * MD_TIMESTEP_FS / 1000

    def at_held_step() -> bool:
        x = cell.evaluate(_LAST_X)
        return x is not None and abs(x - held_ps) < 1e-9

    wait_until(at_held_step, 120, f"the point of step {held_step} (the last before the pause)")
    held = _energy_points(cell)
    time.sleep(1.5)
    assert _energy_points(cell) == held and at_held_step(), "MD went on while paused"
    live.screenshot(path=str(artifacts / "live_md_paused.png"))
    cell.get_by_role("button", name=re.compile("Resume")).click()
    wait_until(lambda: (cell.evaluate(_LAST_X) or 0) > held_ps, 120, "MD to resume")
    assert nb.is_running(2)

    t_click = time.monotonic()
    cell.get_by_role("button", name=re.compile("Stop")).click()
    # 100,000 steps take hours: only the Stop click ends the cell within this wait.
    out = nb.wait_output(2, "MD DONE", timeout_s=300)
    latency = time.monotonic() - t_click
    assert "stopped=True" in out, out
    n_steps = int(out.split("MD DONE")[1].split()[1])
    assert 0 < n_steps < 100000
    nb.wait_done(2, timeout_s=120)
    wait_until(lambda: "stopped" in live.inner_text(), 120, "the stopped status")
    live.screenshot(path=str(artifacts / "live_md_stopped.png"))
    print(f"\nmd: Stop click -> cell output in {latency:.2f} s after {n_steps} steps")
    assert_no_console_errors(browser_logs, OURS)
