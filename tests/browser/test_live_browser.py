"""``relax(..., live=True)`` and ``md(..., live=True)`` in a real JupyterLab + Chromium.

One notebook, run cell by cell (the tests run in file order and share it):

1. a relaxation (EMT, rattled Cu147 icosahedron, 400 FIRE steps, ~10-20 s) with
   ``live=True`` — while the cell is still running: the viewer canvas is not blank, the
   viewer's frames-drawn counter grows, and the energy plot (read from plotly's graph div,
   ``gd.data[0].x.length``) gains points; after the cell: the plot holds every step (the
   final state is shown) and the printed result is correct;
2. an MD run with ``steps=100000`` and ``live=True`` — Pause holds it (no new points),
   Resume continues, and a Stop click ends the cell early with ``stopped=True``;
3. no console errors from our modules or plotly.

Screenshots go to test-artifacts/ (look at them).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

import lab_harness
from lab_harness import NotebookPage, count_foreground, wait_until, write_notebook

NOTEBOOK = "live_browser_test.ipynb"
RELAX_STEPS = 400

CELLS = [
    # 0: set-up: imports, structures, and one small FigureWidget so the browser has loaded
    # plotly's front end (a 5 MB module) before the timed cells
    """import time
import plotly.graph_objects as go
from ase.cluster import Icosahedron
from nnp_lab.simulate import relax, md
cluster = Icosahedron("Cu", 4)
cluster.rattle(0.2, seed=0)
small = Icosahedron("Cu", 3)
warm = go.FigureWidget(go.Figure(go.Scatter(x=[0, 1], y=[0, 1])), layout=None)
display(warm)
print("READY", len(cluster))""",
    # 1: live relaxation (the view is shown before the first step and moves while it runs)
    f"""t0 = time.perf_counter()
res = relax(cluster, "emt", fmax=1e-30, steps={RELAX_STEPS}, live=True)
print("RELAX DONE", res.n_steps, res.stopped, round(time.perf_counter() - t0, 1))""",
    # 2: live MD that would take hours; ended by the Stop button
    """t0 = time.perf_counter()
res_md = md(small, "emt", temperature_K=500, steps=100000, interval=5, live=True)
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
    notebook.wait_output(0, "READY 147", timeout_s=120)
    notebook.cell(0).locator(".js-plotly-plot").first.wait_for(state="visible", timeout=60_000)
    return notebook


def _points(cell: Any) -> list[int] | None:
    return cell.evaluate(_TRACE_POINTS)


def _energy_points(cell: Any) -> int:
    pts = _points(cell)
    return pts[0] if pts else 0


def _frames_drawn(root: Any) -> int:
    return int(root.get_attribute("data-frames-drawn") or 0)



def test_live_relax_updates_while_the_cell_runs(nb: NotebookPage, artifacts: Path) -> None:
    t_run = time.monotonic()
    nb.run_cell(1)
    cell = nb.cell(1)
    root = nb.viewer_root(1)
    root.wait_for(state="visible", timeout=60_000)
    cell.locator(".js-plotly-plot").first.wait_for(state="visible", timeout=60_000)
    t_shown = time.monotonic() - t_run
    wait_until(lambda: _energy_points(cell) >= 3, 60, "the first plotted points")
    assert nb.is_running(1), "the relaxation finished before the checks started; make it longer"

    n1, frames1 = _energy_points(cell), _frames_drawn(root)
    png = root.locator("canvas").screenshot(path=str(artifacts / "live_relax_canvas.png"))
    fg, total = count_foreground(png)
    assert fg > 0.03 * total, f"viewer canvas looks blank while the cell runs: {fg}/{total}"
    assert _points(cell)[:2] == [n1, n1] or _points(cell)[1] >= n1 - 1  # energy and fmax

    time.sleep(2.0)
    n2, frames2 = _energy_points(cell), _frames_drawn(root)
    label = root.locator(".nnpv-label").inner_text()
    status = cell.locator(".nnp-lab-live").inner_text()
    cell.locator(".nnp-lab-live").screenshot(path=str(artifacts / "live_relax_running.png"))
    assert nb.is_running(1), "the cell should still be running"
    assert n2 > n1 + 5, f"the energy plot did not grow while the cell ran: {n1} -> {n2}"
    assert frames2 > frames1 + 5, f"frames drawn grew only {frames1} -> {frames2} in 2 s"
    assert re.search(r"step \d+ +E = -?\d", label), label
    assert "running" in status and "steps/s" in status, status

    out = nb.wait_output(1, "RELAX DONE", timeout_s=120)
    n_steps = int(out.split("RELAX DONE")[1].split()[0])
    assert "False" in out.split("RELAX DONE")[1].split()[1]
    # The final state is shown: every step is plotted, the status says finished, and the
    # viewer holds the trajectory to scrub (slider over all frames).
    wait_until(lambda: _energy_points(cell) == n_steps + 1, 10, "the final point")
    wait_until(lambda: "finished" in cell.locator(".nnp-lab-live").inner_text(), 10, "the status")
    # The frames travel in their own message and may land after the status text.
    wait_until(lambda: root.locator(".nnpv-slider").get_attribute("max") == str(n_steps), 10,
          "the trajectory player over all frames")
    cell.locator(".nnp-lab-live").screenshot(path=str(artifacts / "live_relax_done.png"))
    print(f"\nrelax: view shown {t_shown:.1f} s after Run; points {n1} -> {n2} in 2 s; "
          f"frames drawn {frames1} -> {frames2}; {n_steps} steps; {out.split()[-1]} s")


def test_live_md_pause_resume_and_stop(nb: NotebookPage, artifacts: Path) -> None:
    nb.run_cell(2)
    cell = nb.cell(2)
    live = cell.locator(".nnp-lab-live")
    live.wait_for(state="visible", timeout=60_000)
    wait_until(lambda: _energy_points(cell) >= 5, 60, "MD points")
    assert nb.is_running(2)
    pts = _points(cell)
    assert len(pts) == 5, pts  # potential, total, kinetic, temperature, target

    # Pause: the run holds (no new points); Resume: it goes on.
    cell.get_by_role("button", name=re.compile("Pause")).click()
    wait_until(lambda: "paused" in live.inner_text(), 10, "the paused status")
    time.sleep(0.5)  # the step in flight and the last throttled update land
    held = _energy_points(cell)
    time.sleep(1.5)
    assert _energy_points(cell) == held, "MD went on while paused"
    live.screenshot(path=str(artifacts / "live_md_paused.png"))
    cell.get_by_role("button", name=re.compile("Resume")).click()
    wait_until(lambda: _energy_points(cell) > held + 2, 20, "MD to resume")
    assert nb.is_running(2)

    t_click = time.monotonic()
    cell.get_by_role("button", name=re.compile("Stop")).click()
    out = nb.wait_output(2, "MD DONE", timeout_s=60)
    latency = time.monotonic() - t_click
    assert "stopped=True" in out, out
    n_steps = int(out.split("MD DONE")[1].split()[1])
    assert 0 < n_steps < 100000
    nb.wait_done(2, timeout_s=30)
    assert latency < 15, f"Stop took {latency:.1f} s to end the cell"
    wait_until(lambda: "stopped" in live.inner_text(), 10, "the stopped status")
    live.screenshot(path=str(artifacts / "live_md_stopped.png"))
    print(f"\nmd: Stop click -> cell output in {latency:.2f} s after {n_steps} steps")


def test_no_console_errors_from_live_view(nb: NotebookPage, browser_logs: dict[str, list[str]]) -> None:
    ours = re.compile(r"nnp|viewer|plotly|webgl|GL_|shader|anywidget|widget", re.I)
    errors = [m for m in browser_logs["console"] if m.startswith("error") and ours.search(m)]
    assert not errors, "\n".join(errors)
    assert not browser_logs["page_errors"], "\n".join(browser_logs["page_errors"])
