"""Editing in the 3D view, in a real JupyterLab + Chromium: every gesture reaches Python.

One editable Viewer of a Pt(111) slab. The test clicks and Alt-drags to select, drags a selected
atom with the mouse and checks in the kernel that it moved by the drag in the view plane (its
new screen position is where the pointer let go), adds CO on a picked atom from the edit bar,
deletes, undoes and redoes, measures a distance and fixes atoms, reading the kernel's state
after each step through a probe cell. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import lab_harness
from lab_harness import NotebookPage, assert_no_console_errors, wait_until, write_notebook

OURS = r"nnp|viewer|webgl|GL_|shader|anywidget"
NOTEBOOK = "editing_browser_test.ipynb"
PROBE_CELL = 4
RESET_CELL = 3

CELLS = [
    """import json
import numpy as np
from nnp_lab import build
from nnp_lab.widgets import Viewer
slab = build.surface(build.bulk("Pt"), (1, 1, 1), 3, size=(3, 3), vacuum=6.0)
v = Viewer(slab, editable=True, height=420)
v.potential = "emt"  # the Relax and NEB buttons' model (fast, in ASE)
probes = 0
display(v)
print("READY", v.n_atoms)""",
    # the probe: the kernel's view of the edit state, numbered so a re-run is never confused
    # with the previous output
    # 2: a slab builder whose preview marks the adsorption sites (atoms with Z = 0)
    """from nnp_lab.widgets import SlabBuilder
sb = SlabBuilder("Pt")
sb.set(miller=(1, 1, 1), layers=3, size=(2, 2), fixed_layers=1, vacuum=8.0)
n_slab = len(sb.atoms)
site_marker = {s.kind: n_slab + k for k, s in enumerate(sb.sites)}
fcc_xy = next(s for s in sb.sites if s.kind == "fcc").position[:2].tolist()
print("SITES", json.dumps({"n_slab": n_slab, "marker": site_marker, "fcc_xy": fcc_xy}))
sb""",
    # 3: the builder's structure after the edit
    """a = sb.atoms
print("BUILT", json.dumps({"n": len(a), "symbols": a.get_chemical_symbols()[-2:],
      "co_xy": a.positions[-2, :2].tolist(), "markers_left": int((a.numbers == 0).sum())}))""",
    # 4: back to the bare slab, so each test starts the same whatever ran before it
    """v.atoms = slab.copy()
v.neb_start = v.neb_end = None
v.has_neb_start = v.has_neb_end = False
resets = globals().get("resets", 0) + 1
print(f"RESET{resets}", v.n_atoms)""",
    """probes += 1
print(f"PROBE{probes}", json.dumps({"n": v.n_atoms, "selection": v.selection,
      "history": [e.kind for e in v.history], "positions": v.atoms.positions.tolist(),
      "mode": v._mode, "running": v.running, "label": v.label,
      "fixed": v._editor.fixed, "measurement": v.measurement, "message": v.edit_message}))""",
]


_RESETS = [0]


def reset(nb: NotebookPage) -> None:
    """Run the reset cell and wait for it."""
    _RESETS[0] += 1
    nb.run_cell(RESET_CELL)
    nb.wait_output(RESET_CELL, f"RESET{_RESETS[0]} 27", timeout_s=120)


class Probe:
    """Runs the probe cell and scrolls the viewer back into view (running a cell scrolls the
    page to it), so screen coordinates taken after a probe are those of the view."""

    count = 0  # runs of the probe cell in this notebook, over all tests (a class attribute)

    def __init__(self, nb: NotebookPage, root: Any) -> None:
        self.nb, self.root = nb, root

    def __call__(self) -> dict[str, Any]:
        Probe.count += 1
        self.nb.run_cell(PROBE_CELL)
        out = self.nb.wait_output(PROBE_CELL, f"PROBE{self.count} ", timeout_s=120)
        self.root.locator(".nnpv-stage").scroll_into_view_if_needed()
        return json.loads(out.split(f"PROBE{self.count} ", 1)[1].strip().splitlines()[0])

    def until(self, predicate: Any, what: str, tries: int = 30) -> dict[str, Any]:
        """Probe until ``predicate(state)``: edits reach the kernel asynchronously."""
        for _ in range(tries):
            state = self()
            if predicate(state):
                return state
        raise AssertionError(f"kernel state never showed {what}: {state}")


@pytest.fixture(scope="module")
def nb(lab: lab_harness.LabServer, page: Any) -> NotebookPage:
    write_notebook(lab.root / NOTEBOOK, CELLS)
    notebook = NotebookPage(page)
    notebook.open(lab.notebook_url(NOTEBOOK))
    notebook.run_cell(0, retry_s=8)
    notebook.wait_output(0, "READY 27", timeout_s=300)
    return notebook


def _project(root: Any, i: int) -> dict[str, float]:
    return root.evaluate(f"(r) => r.nnpViewer.project({i})")


def test_select_drag_add_delete_undo_measure_fix(
    nb: NotebookPage, page: Any, artifacts: Path, browser_logs: dict[str, list[str]]
) -> None:
    root = nb.viewer_root(0)
    root.wait_for(state="visible", timeout=120_000)
    wait_until(
        lambda: int(root.get_attribute("data-frames-drawn") or 0) > 0, 120, "the first frame"
    )
    reset(nb)
    root.locator(".nnpv-stage").scroll_into_view_if_needed()
    assert root.get_attribute("data-editable") == "1"
    assert root.locator(".nnpv-editbar").is_visible()
    probe = Probe(nb, root)
    start = probe()
    top = max(range(27), key=lambda i: (start["positions"][i][2], -i))  # a top-layer Pt

    # click selects, in the kernel too
    xy = _project(root, top)
    page.mouse.click(xy["x"], xy["y"])
    state = probe.until(lambda s: s["selection"] == [top], f"atom {top} selected")

    # drag the selected atom: it follows the pointer in the view plane
    dx, dy = 60.0, -35.0
    xy = _project(root, top)
    canvas0 = root.locator("canvas").bounding_box()
    page.mouse.move(xy["x"], xy["y"])
    page.mouse.down()
    for k in range(1, 6):
        page.mouse.move(xy["x"] + dx * k / 5, xy["y"] + dy * k / 5)
    page.mouse.up()
    state = probe.until(lambda s: s["history"] == ["move"], "one move edit")
    moved = [a - b for a, b in zip(state["positions"][top], start["positions"][top])]
    assert sum(m * m for m in moved) ** 0.5 > 0.5, moved  # a real displacement, in Å

    # where Python's new position is drawn, relative to the canvas: where the pointer let go
    def offset() -> tuple[float, float]:
        q, c = _project(root, top), root.locator("canvas").bounding_box()
        return q["x"] - c["x"] - (xy["x"] - canvas0["x"]), q["y"] - c["y"] - (
            xy["y"] - canvas0["y"]
        )

    wait_until(
        lambda: abs(offset()[0] - dx) < 2.5 and abs(offset()[1] - dy) < 2.5,
        60,
        "the dragged atom to sit where the pointer let go",
    )
    others = [i for i in range(27) if i != top]
    assert all(state["positions"][i] == start["positions"][i] for i in others)
    root.locator(".nnpv-stage").screenshot(path=str(artifacts / "editing_dragged.png"))

    # Alt-drag a box around the whole view: every atom is selected
    box = root.locator("canvas").bounding_box()
    page.keyboard.down("Alt")
    page.mouse.move(box["x"] + 3, box["y"] + 3)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.move(box["x"] + box["width"] - 3, box["y"] + box["height"] - 3)
    page.mouse.up()
    page.keyboard.up("Alt")
    inside = root.evaluate(
        """(r) => { const c = r.querySelector('canvas').getBoundingClientRect(); const out = [];
        for (let i = 0; i < 27; i++) { const q = r.nnpViewer.project(i);
          if (q.x >= c.left + 3 && q.x <= c.right - 3 && q.y >= c.top + 3 && q.y <= c.bottom - 3) out.push(i); }
        return out; }"""
    )
    assert len(inside) > 10
    probe.until(lambda s: s["selection"] == inside, "the box selection")

    # add CO on the picked (dragged) atom from the edit bar
    page.mouse.click(_project(root, top)["x"], _project(root, top)["y"])
    probe.until(lambda s: s["selection"] == [top], "the atom picked again")
    root.locator(".nnpv-add-input").fill("CO")
    root.locator("button[data-op='add']").click()
    state = probe.until(lambda s: s["n"] == 29, "CO added")
    assert state["selection"] == [27, 28] and state["history"] == ["move", "add"]
    wait_until(lambda: root.get_attribute("data-n-atoms") == "29", 60, "29 atoms drawn")
    root.locator(".nnpv-stage").screenshot(path=str(artifacts / "editing_added_co.png"))

    # measure the new C–O (both selected after add)
    root.locator("button[data-op='measure']").click()
    wait_until(
        lambda: (root.get_attribute("data-measurement") or "").startswith("distance"),
        60,
        "the measurement shown in the view",
    )
    assert "Å" in root.get_attribute("data-measurement")

    # delete, undo, redo
    root.locator("button[data-op='delete']").click()
    probe.until(lambda s: s["n"] == 27 and s["history"][-1] == "delete", "the CO deleted")
    root.locator("button[data-op='undo']").click()
    probe.until(lambda s: s["n"] == 29 and s["history"] == ["move", "add"], "the delete undone")
    root.locator("button[data-op='redo']").click()
    probe.until(lambda s: s["n"] == 27, "the delete redone")
    root.locator("button[data-op='undo']").click()
    probe.until(lambda s: s["n"] == 29, "undone again")

    # fix a picked atom (drawn hatched), then undo it from the keyboard
    page.mouse.click(_project(root, 0)["x"], _project(root, 0)["y"])
    probe.until(lambda s: s["selection"] == [0], "atom 0 picked")
    root.locator("button[data-op='fix']").click()
    probe.until(lambda s: s["fixed"] == [0], "atom 0 fixed")
    page.mouse.click(_project(root, 13)["x"], _project(root, 13)["y"])  # deselect: see the hatch
    probe.until(lambda s: s["selection"] == [13], "atom 13 picked")
    root.screenshot(path=str(artifacts / "editing_fixed_with_bar.png"))
    root.locator("canvas").focus()
    page.keyboard.press("Control+z")
    probe.until(lambda s: s["fixed"] == [], "the fix undone by Ctrl+Z")
    root.locator(".nnpv-stage").screenshot(path=str(artifacts / "editing_final.png"))
    assert_no_console_errors(browser_logs, OURS, gl_warnings=True)


def test_relax_and_neb_from_the_edit_bar(
    nb: NotebookPage, page: Any, artifacts: Path, browser_logs: dict[str, list[str]]
) -> None:
    root = nb.viewer_root(0)
    root.wait_for(state="visible", timeout=120_000)
    reset(nb)
    root.locator(".nnpv-stage").scroll_into_view_if_needed()
    probe = Probe(nb, root)
    start = probe()
    # Relax: the view runs it (the button reads Stop meanwhile), then editing resumes
    root.locator("button[data-op='relax']").click()
    state = probe.until(
        lambda s: not s["running"] and s["label"].startswith(("relaxed", "not converged")),
        "the relaxation to end in the view",
        tries=120,
    )
    assert state["mode"] == "live" and state["history"] == []  # a new history from the result
    assert state["positions"] != start["positions"]
    wait_until(lambda: root.get_attribute("data-running") == "", 60, "the Relax button back")

    # NEB: start here, move the picked top atom with the keyboard, end there, run
    top = max(range(27), key=lambda i: (state["positions"][i][2], -i))
    page.mouse.click(_project(root, top)["x"], _project(root, top)["y"])
    probe.until(lambda s: s["selection"] == [top], "the top atom picked")
    root.locator("button[data-op='set_neb_start']").click()
    root.locator("canvas").focus()
    for _ in range(3):
        page.keyboard.press("Shift+ArrowRight")  # 0.5 Å steps in the view plane
    moved = probe.until(lambda s: s["history"] == ["move"] * 3, "three keyboard moves")
    step = [a - b for a, b in zip(moved["positions"][top], state["positions"][top])]
    assert abs(sum(x * x for x in step) ** 0.5 - 1.5) < 1e-3, step
    root.locator("button[data-op='set_neb_end']").click()
    wait_until(lambda: root.locator("button[data-op='neb']").is_enabled(), 60, "the NEB button")
    root.locator("button[data-op='neb']").click()
    probe.until(lambda s: s["mode"] == "band" and not s["running"], "the NEB band", tries=120)
    root.screenshot(path=str(artifacts / "editing_neb_band.png"))
    root.locator("button[data-op='resume_editing']").click()
    back = probe.until(lambda s: s["mode"] == "live", "editing resumed")
    assert back["history"] == ["move"] * 3 and back["positions"] == moved["positions"]
    assert_no_console_errors(browser_logs, OURS, gl_warnings=True)


def test_add_co_on_a_site_marker_of_the_slab_builder(
    nb: NotebookPage, page: Any, artifacts: Path, browser_logs: dict[str, list[str]]
) -> None:
    nb.run_cell(1)
    out = nb.wait_output(1, "SITES", timeout_s=120)
    sites = json.loads(out.split("SITES", 1)[1].strip().splitlines()[0])
    root = nb.viewer_root(1)
    root.wait_for(state="visible", timeout=120_000)
    wait_until(lambda: int(root.get_attribute("data-frames-drawn") or 0) > 0, 120, "the preview")
    root.locator(".nnpv-stage").scroll_into_view_if_needed()
    marker = sites["marker"]["fcc"]
    xy = _project(root, marker)
    page.mouse.click(xy["x"], xy["y"])  # click the fcc site's marker
    wait_until(lambda: root.get_attribute("data-picked") == str(marker), 60, "the marker picked")
    root.locator(".nnpv-add-input").fill("CO")
    root.locator("button[data-op='add']").click()
    wait_until(
        lambda: (
            root.get_attribute("data-n-atoms") == str(sites["n_slab"] + len(sites["marker"]) + 2)
        ),
        60,
        "CO drawn in the preview",
    )
    nb.run_cell(2)
    built = json.loads(
        nb.wait_output(2, "BUILT", timeout_s=120).split("BUILT", 1)[1].split("\n")[0]
    )
    assert built["n"] == sites["n_slab"] + 2 and built["markers_left"] == 0
    assert built["symbols"] == ["C", "O"]
    assert abs(built["co_xy"][0] - sites["fcc_xy"][0]) < 1e-3
    assert abs(built["co_xy"][1] - sites["fcc_xy"][1]) < 1e-3
    root.screenshot(path=str(artifacts / "editing_co_on_site.png"))
    assert_no_console_errors(browser_logs, OURS, gl_warnings=True)
