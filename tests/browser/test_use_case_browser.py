"""A use-case notebook in a real JupyterLab + Chromium: its live swap Monte Carlo view draws.

The code cells of ``notebooks/use_cases/hea_nanoparticle.ipynb`` up to the live
``swap_mc(..., live=True)`` cell run as they are, in quick mode (``NNP_LAB_QUICK=1``, set by
the test suite's conftest and inherited by the kernel: a 38-atom particle, 300 trials). After
that cell: the viewer shows the 38 atoms on a non-blank canvas with the swap label, the plot
holds every trial (trial energies, energy after each decision, acceptance), the status says
finished, and the browser console has no errors from our modules.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat

import lab_harness
from lab_harness import (
    NotebookPage,
    assert_no_console_errors,
    count_foreground,
    wait_until,
    write_notebook,
)

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "notebooks" / "use_cases" / "hea_nanoparticle.ipynb"
OURS = r"nnp|viewer|plotly|webgl|GL_|shader|anywidget|widget"
QUICK_TRIALS = 300  # the notebook's quick-mode chain length

_TRACE_POINTS = """(el) => {
  const gd = el.querySelector('.js-plotly-plot');
  if (!gd || !gd.data) return null;
  return gd.data.map((t) => (t.x ? t.x.length : 0));
}"""


def _cells_up_to_live_chain() -> list[str]:
    nb = nbformat.read(SOURCE, as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    live = next(i for i, src in enumerate(code) if "live=True" in src and "swap_mc(" in src)
    return code[: live + 1]


def test_hea_notebook_live_swap_view_draws(
    lab: lab_harness.LabServer,
    page: Any,
    artifacts: Path,
    browser_logs: dict[str, list[str]],
) -> None:
    cells = _cells_up_to_live_chain()
    name = "hea_use_case_browser_test.ipynb"
    write_notebook(lab.root / name, cells)
    nb = NotebookPage(page)
    nb.open(lab.notebook_url(name))
    nb.run_cell(0, retry_s=8)
    nb.wait_output(0, "quick mode", timeout_s=300)
    for i in range(1, len(cells)):
        nb.run_cell(i)
        nb.wait_done(i, timeout_s=600)
        assert "Traceback" not in nb.output_text(i), nb.output_text(i)

    live = len(cells) - 1
    cell = nb.cell(live)
    root = nb.viewer_root(live)
    root.wait_for(state="visible", timeout=120_000)
    assert root.get_attribute("data-n-atoms") == "38"
    wait_until(lambda: "finished" in cell.locator(".nnp-lab-live").inner_text(), 120, "the status")
    wait_until(
        lambda: (cell.evaluate(_TRACE_POINTS) or [0])[0] == QUICK_TRIALS,
        120,
        "every trial plotted",
    )
    trial, energy, acceptance = cell.evaluate(_TRACE_POINTS)
    assert (trial, energy, acceptance) == (QUICK_TRIALS, QUICK_TRIALS + 1, QUICK_TRIALS)
    label = root.locator(".nnpv-label").inner_text()
    assert re.search(r"trial \d+ +E = -?\d+\.\d+ eV +accepted \d+", label), label
    png = root.locator("canvas").screenshot(path=str(artifacts / "hea_swap_mc_live.png"))
    fg, total = count_foreground(png)
    assert fg > 0.01 * total, f"viewer canvas looks blank: {fg}/{total}"
    cell.locator(".nnp-lab-live").screenshot(path=str(artifacts / "hea_swap_mc_done.png"))
    assert_no_console_errors(browser_logs, OURS)
