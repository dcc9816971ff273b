"""``screen(..., live=True)`` in a real JupyterLab + Chromium: rows appear in the table while
the cell runs, clicking a row shows its structure in the viewer, clicking a header sorts,
the scatter gains a point per finished row.

The screen is held open by the test itself (the task waits at structure 3 for a file the
test creates), so "while the cell is still running" never depends on the machine's speed.
EMT stands in for the universal model (the widget path is the same for every potential).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import lab_harness
from lab_harness import NotebookPage, assert_no_console_errors, wait_until, write_notebook

NOTEBOOK = "screen_browser_test.ipynb"
RELEASE = "screen_release"

CELLS = [
    f"""import os, time
import plotly.graph_objects as go
from ase import Atoms
from ase.build import bulk
from nnp_lab import screen
warm = go.FigureWidget(go.Figure(go.Scatter(x=[0, 1], y=[0, 1])))
display(warm)  # load plotly's front end first
structures = [bulk("Cu", "fcc", a=3.55 + 0.02 * k, cubic=True) * (1 + k % 3, 1, 1) for k in range(5)]
structures.append(Atoms("Fe2", positions=[[0, 0, 0], [0, 0, 2.0]]))  # EMT has no Fe: a failed row
for k, a in enumerate(structures):
    a.info["position"] = k

def held_energy(atoms, potential):
    if atoms.info.get("position") == 3:  # held here until the test creates the file
        while not os.path.exists({RELEASE!r}):
            time.sleep(0.05)
    return {{"e_total": float(potential.evaluate([atoms])[0]["energy"]), "volume": atoms.get_volume()}}
print("READY", len(structures))""",
    """res = screen(structures, held_energy, "emt", db="screen_browser.db", live=True)
print("SCREEN DONE", res.n_done, res.n_failed)""",
]

_SCATTER_POINTS = """(el) => {
  const gd = el.querySelector('.js-plotly-plot');
  return gd && gd.data && gd.data[0].x ? gd.data[0].x.length : -1;
}"""


@pytest.fixture(scope="module")
def nb(lab: lab_harness.LabServer, page: Any) -> NotebookPage:
    write_notebook(lab.root / NOTEBOOK, CELLS)
    notebook = NotebookPage(page)
    notebook.open(lab.notebook_url(NOTEBOOK))
    notebook.run_cell(0, retry_s=8)
    notebook.wait_output(0, "READY 6", timeout_s=300)
    notebook.cell(0).locator(".js-plotly-plot").first.wait_for(state="visible", timeout=120_000)
    return notebook


def test_live_screen_table_fills_in_and_a_click_shows_the_structure(
    nb: NotebookPage,
    lab: lab_harness.LabServer,
    artifacts: Path,
    browser_logs: dict[str, list[str]],
) -> None:
    release = lab.root / RELEASE
    release.unlink(missing_ok=True)
    nb.run_cell(1)
    cell = nb.cell(1)
    table = cell.locator(".nnp-screen-table").first
    table.wait_for(state="visible", timeout=300_000)
    # rows 0-2 arrive while the screen is held at structure 3: the cell is still running
    wait_until(lambda: table.get_attribute("data-n-rows") == "3", 300, "three rows")
    assert nb.is_running(1)
    rows = table.locator("tbody tr")
    assert rows.count() == 3
    headers = [h.inner_text().split(" ")[0] for h in table.locator("th").all()]
    n_col = headers.index("n_atoms")
    # clicking the third row shows its structure (Cu12) in the viewer, while the cell runs
    target = rows.nth(2)
    n_atoms = int(target.locator("td").nth(n_col).inner_text())
    assert n_atoms == 12
    target.click()
    viewer = cell.locator(".nnpv-root").first
    wait_until(
        lambda: viewer.get_attribute("data-n-atoms") == str(n_atoms), 120, "the clicked structure"
    )
    wait_until(lambda: "selected" in (target.get_attribute("class") or ""), 60, "the selection")
    assert nb.is_running(1)
    # a header click sorts by that column (Python sorts, the page redraws): largest first
    # after the second click
    header = table.locator("th", has_text="n_atoms").first
    header.click()
    wait_until(lambda: "▲" in header.inner_text(), 60, "ascending sort")
    header.click()
    wait_until(
        lambda: "▼" in table.locator("th", has_text="n_atoms").first.inner_text(), 60, "descending"
    )
    first = table.locator("tbody tr").first.locator("td").nth(n_col)
    wait_until(lambda: first.inner_text() == "12", 60, "the largest cell on top")
    assert cell.evaluate(_SCATTER_POINTS) == 3
    cell.screenshot(path=str(artifacts / "screen_live_held.png"))
    # let the screen finish
    release.write_text("go")
    out = nb.wait_output(1, "SCREEN DONE", timeout_s=300)
    assert "SCREEN DONE 5 1" in out, out
    wait_until(lambda: table.get_attribute("data-n-rows") == "6", 60, "all six rows")
    wait_until(lambda: cell.evaluate(_SCATTER_POINTS) == 5, 60, "five points")
    assert table.locator("tr.failed").count() == 1
    status = cell.locator(".nnp-screen-status").first.inner_text()
    assert "finished" in status and "6/6" in status and "1 failed" in status, status
    cell.screenshot(path=str(artifacts / "screen_live_done.png"))
    assert_no_console_errors(browser_logs, r"nnp|anywidget|plotly")
