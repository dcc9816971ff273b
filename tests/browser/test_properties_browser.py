"""The Lab's Properties tab in a real JupyterLab + Chromium: a crystal loaded in the File tab,
the Properties tab clicked, Compute pressed; the progress bar fills, the numbers and the
plot appear.

EMT stands in for the universal model (the widget path is the same for every potential).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import lab_harness
from lab_harness import NotebookPage, wait_until, write_notebook

NOTEBOOK = "properties_browser_test.ipynb"

CELLS = [
    """from ase.build import bulk
from ase.io import write
import plotly.graph_objects as go
from nnp_lab.widgets import Lab
warm = go.FigureWidget(go.Figure(go.Scatter(x=[0, 1], y=[0, 1])))
display(warm)  # load plotly's front end first
write("cu_properties.cif", bulk("Cu", "fcc", a=3.6, cubic=True))
lab = Lab(potential="emt")
lab.builders["file"].set(path="cu_properties.cif")
lab.tabs.selected_index = 3
display(lab)
print("BUILT", lab.atoms.get_chemical_formula())""",
    """res = lab.properties.wait(600)
print("RESULT", type(res).__name__, round(res.bulk_modulus_GPa), res.ok)""",
]


@pytest.fixture(scope="module")
def nb(lab: lab_harness.LabServer, page: Any) -> NotebookPage:
    write_notebook(lab.root / NOTEBOOK, CELLS)
    notebook = NotebookPage(page)
    notebook.open(lab.notebook_url(NOTEBOOK))
    notebook.run_cell(0, retry_s=8)
    out = notebook.wait_output(0, "BUILT", timeout_s=300)
    assert "BUILT Cu4" in out, out
    return notebook


def test_properties_tab_computes_and_plots(
    nb: NotebookPage, artifacts: Path, browser_logs: dict[str, list[str]]
) -> None:
    cell = nb.cell(0)
    tab = cell.locator(".lm-TabBar-tab", has_text="Properties").first
    tab.wait_for(state="visible", timeout=120_000)
    tab.click()
    panel = cell.locator(".nnp-lab-properties").first
    panel.wait_for(state="visible", timeout=60_000)
    panel.locator("button", has_text="Compute").first.click()
    # the plot of the EOS (points and fit) appears in the tab when the calculation ends
    plot = panel.locator(".js-plotly-plot").first
    plot.wait_for(state="visible", timeout=300_000)
    wait_until(lambda: "EOSResult" in panel.inner_text(), 60, "the numbers")
    text = panel.inner_text()
    assert "eos done" in text and "GPa" in text, text
    assert plot.locator(".scatterlayer .trace").count() == 2
    panel.screenshot(path=str(artifacts / "properties_eos.png"))
    nb.run_cell(1)
    out = nb.wait_output(1, "RESULT", timeout_s=120)
    assert "RESULT EOSResult" in out and out.strip().endswith("True"), out
    lab_harness.assert_no_console_errors(browser_logs, r"nnp|anywidget|plotly")
