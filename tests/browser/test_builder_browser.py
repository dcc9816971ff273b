"""The issue's end-to-end path in a real JupyterLab + Chromium: build CO on Pt(111) in the
SlabBuilder, press Relax, watch the energy curve grow while the run goes on, then scrub the
trajectory.

EMT stands in for the universal model (it covers Pt, C and O), wrapped so that the test holds
the run open at two steps until it has seen what it checks; the widget path is the same for
every potential.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import lab_harness
from lab_harness import NotebookPage, count_foreground, wait_until, write_notebook

NOTEBOOK = "builder_browser_test.ipynb"
STEPS = 2000
HELPERS = Path(__file__).resolve().parents[1] / "simulate"  # potentials_for_tests.py
# The test holds the run open itself at two evaluation calls (a stand-in potential waits for
# a file the test creates), so "while the run goes on" never depends on the machine's speed.
GATES = {30: "builder_gate_1", 1000: "builder_gate_2"}

CELLS = [
    f"""import sys
sys.path.insert(0, {str(HELPERS)!r})
import plotly.graph_objects as go
from nnp_lab.widgets import SlabBuilder
from potentials_for_tests import HeldPotential
warm = go.FigureWidget(go.Figure(go.Scatter(x=[0, 1], y=[0, 1])))
display(warm)  # load plotly's front end before the timed part
sb = SlabBuilder(potential=HeldPotential({GATES!r}), relax_options={{"fmax": 1e-30, "steps": {STEPS}}})
sb.set(element="Pt", miller=(1, 1, 1), layers=3, size=(3, 3), fixed_layers=1, vacuum=6.0,
       adsorbate="CO", site="fcc", height=2.2)
display(sb)
print("BUILT", sb.atoms.get_chemical_formula(), sb.error_message or "ok")""",
    """res = sb.live.wait()
print("RESULT", res.n_steps, res.energy < res.initial_energy, res.stopped)""",
]

_TRACE_POINTS = """(el) => {
  const gd = el.querySelector('.nnp-lab-live .js-plotly-plot');
  if (!gd || !gd.data) return 0;
  return gd.data[0].x ? gd.data[0].x.length : 0;
}"""


@pytest.fixture(scope="module")
def nb(lab: lab_harness.LabServer, page: Any) -> NotebookPage:
    write_notebook(lab.root / NOTEBOOK, CELLS)
    notebook = NotebookPage(page)
    notebook.open(lab.notebook_url(NOTEBOOK))
    notebook.run_cell(0, retry_s=8)
    out = notebook.wait_output(0, "BUILT", timeout_s=300)
    assert "C1O1Pt27 ok" in out.replace("CO", "C1O1") or "CPt27O ok" in out, out
    return notebook


def test_slab_builder_relax_button_live_and_scrub(
    nb: NotebookPage, lab: lab_harness.LabServer, artifacts: Path
) -> None:
    gate_1, gate_2 = (lab.root / name for name in GATES.values())
    cell = nb.cell(0)
    cell.locator(".nnp-builder").first.wait_for(state="visible", timeout=120_000)
    cell.locator("button", has_text="Relax").first.click()
    live = cell.locator(".nnp-lab-live")
    live.wait_for(state="visible", timeout=120_000)
    wait_until(lambda: cell.evaluate(_TRACE_POINTS) >= 3, 120, "the first energy points")
    n1 = cell.evaluate(_TRACE_POINTS)
    gate_1.touch()  # the run goes on to its second gate
    wait_until(
        lambda: cell.evaluate(_TRACE_POINTS) > n1 + 5,
        120,
        "the energy curve to grow while the run goes on",
    )
    assert "running" in live.inner_text(), live.inner_text()  # held at the second gate
    root = cell.locator(".nnp-builder .nnpv-root").first  # the run plays in the preview
    png = root.locator("canvas").screenshot(path=str(artifacts / "builder_relax_running.png"))
    fg, total = count_foreground(png)
    assert fg > 0.03 * total, f"live viewer looks blank: {fg}/{total}"

    gate_2.touch()
    wait_until(lambda: "finished" in live.inner_text(), 300, "the relaxation to finish")
    slider = root.locator("input.nnpv-slider")
    # The frames reach the front end in their own message, possibly after the status text:
    # wait for the player. Long runs are thinned, so it spans >= 100 frames, not all steps.
    wait_until(
        lambda: slider.count() == 1 and slider.get_attribute("max") is not None,
        120,
        "the trajectory player",
    )
    assert int(slider.get_attribute("max")) >= 100
    label = root.locator(".nnpv-label")
    last = label.inner_text()
    slider.fill("0")  # scrub back to the start
    wait_until(lambda: label.inner_text() != last, 120, "the viewer to show another frame")
    live.screenshot(path=str(artifacts / "builder_relax_scrubbed.png"))

    nb.run_cell(1)
    out = nb.wait_output(1, "RESULT", timeout_s=120)
    assert f"RESULT {STEPS} True False" in out, out
