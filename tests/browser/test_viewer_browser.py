"""The viewer in a real JupyterLab + Chromium: it draws, and updates while the cell still runs.

One notebook; each test runs the cells it needs (any order):

1. a cell creates a Viewer (Pt(111) slab + CO, force arrows), displays it and streams
   ``update()`` calls every 0.1 s until the test creates a file, then sends a burst of 500
   updates and waits for a second file — so the cell is running, by the test's own control,
   while the test checks that the canvas is not blank, the label advances and
   ``data-frames-drawn`` grows, and that the burst ends with its last frame shown before the
   cell finishes (trailing edge of the throttle);
2. clicking an atom shows its index and element; shift-click adds; ``viewer.selected`` in the
   kernel matches;
3. ``viewer.save_png(path)`` writes a non-blank PNG;
4. the trajectory player plays in the browser; the NEB band view overlays all images;
5. the style changes from Python (spacefill: no bonds);
6. after each: no console errors from our module.

Screenshots go to test-artifacts/ (look at them).
"""

from __future__ import annotations

import math
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

#: Console messages that come from our modules or the libraries the page uses.
OURS = r"nnp|viewer|webgl|GL_|shader|anywidget"
NOTEBOOK = "viewer_browser_test.ipynb"
O_INDEX = 27  # molecule("CO") is [O, C]; add_adsorbate puts C down, so O (27) is on top
PT_INDEX = 18  # a top-layer Pt atom away from the CO
HELPERS = Path(__file__).resolve().parents[1] / "simulate"  # potentials_for_tests.py
BURST_GATE, END_GATE = "viewer_gate_burst", "viewer_gate_end"

CELLS = [
    # 0: set-up
    f"""import os, sys, time
sys.path.insert(0, {str(HELPERS)!r})
import numpy as np
from potentials_for_tests import wait_for_gate  # the test creates the file to let a cell go on
from ase.build import fcc111, add_adsorbate, molecule
from nnp_lab.widgets import Viewer, TrajectoryPlayer
slab = fcc111("Pt", size=(3, 3, 3), vacuum=6.0)
add_adsorbate(slab, molecule("CO"), 1.9, "fcc")
rng = np.random.default_rng(0)
print("READY", len(slab))""",
    # 1: live view created and streamed in the same cell (the case nglview fails), for as long
    # as the test wants
    f"""v = Viewer(slab, show_forces=True, height=420)
display(v)
p0 = slab.positions.copy()
t0, calls = time.perf_counter(), 0
while not os.path.exists({BURST_GATE!r}) and calls < 6000:
    v.update(p0 + rng.normal(0, 0.02, p0.shape), forces=rng.normal(0, 0.4, p0.shape),
             label=f"step {{calls}}  E = {{-100 + 0.01 * calls:.3f}} eV")
    calls += 1
    time.sleep(0.1)
for i in range(500):
    v.update(p0, label=f"burst {{i}}")
    calls += 1
wait_for_gate({END_GATE!r})
print("LOOP DONE", v.frame_seq, calls, round(time.perf_counter() - t0, 3))""",
    # 2: a viewer to pick atoms in and restyle (independent of the streaming one)
    """v2 = Viewer(slab, height=420)
v2""",
    # 3: selection read back in the kernel
    """print("SELECTED", v2.selected, "FRAMES_DRAWN", v2.frames_drawn)""",
    # 4: PNG request (the reply arrives when this cell has finished)
    """png_future = v2.save_png(os.path.join(os.getcwd(), "view.png"))
print("REQUESTED")""",
    # 5: PNG written
    """data = open("view.png", "rb").read()
print("PNG", png_future.done(), len(data), data[:8] == b"\\x89PNG\\r\\n\\x1a\\n")""",
    # 6: trajectory player
    """frames = []
for k in range(30):
    a = slab.copy()
    a.positions[-2:, 2] += 0.08 * k
    frames.append(a)
tp = TrajectoryPlayer(frames, fps=30, height=300)
tp""",
    # 7: NEB band overlay
    """band = Viewer(height=300).show_band(frames[::6], overlay=True)
band""",
    # 8: a viewer restyled from Python
    """v3 = Viewer(slab, height=420)
display(v3)""",
    """v3.style = "spacefill"
v3.reset_view()
print("STYLED")""",
]


@pytest.fixture(scope="module")
def nb(lab: lab_harness.LabServer, page: Any) -> NotebookPage:
    write_notebook(lab.root / NOTEBOOK, CELLS)
    notebook = NotebookPage(page)
    notebook.open(lab.notebook_url(NOTEBOOK))
    notebook.run_cell(0, retry_s=8)
    notebook.wait_output(0, "READY 29", timeout_s=300)
    return notebook


def _attr(root: Any, key: str) -> str:
    return root.get_attribute(f"data-{key}") or ""


def _label(root: Any) -> str:
    return root.locator(".nnpv-label").inner_text()


def _step(label: str) -> int:
    m = re.search(r"step (\d+)", label)
    return int(m.group(1)) if m else -1


@pytest.fixture(scope="module")
def picker(nb: NotebookPage) -> Any:
    """The root element of a plain viewer (cell 2), shown once for the tests that use it."""
    nb.run_cell(2)
    root = nb.viewer_root(2)
    root.wait_for(state="visible", timeout=120_000)
    wait_until(lambda: int(_attr(root, "frames-drawn") or 0) > 0, 120, "the first frame")
    return root


def test_live_view_updates_while_cell_runs(
    nb: NotebookPage,
    lab: lab_harness.LabServer,
    artifacts: Path,
    browser_logs: dict[str, list[str]],
) -> None:
    nb.run_cell(1)
    root = nb.viewer_root(1)
    root.wait_for(state="visible", timeout=120_000)
    wait_until(lambda: _step(_label(root)) >= 3, 120, "the first streamed frames")
    assert nb.is_running(1)  # the cell streams until this test creates the burst gate

    frames1, step1 = int(_attr(root, "frames-drawn")), _step(_label(root))
    seq1 = int(_attr(root, "frame-seq"))
    canvas = root.locator("canvas")
    box = canvas.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 300
    png = canvas.screenshot(path=str(artifacts / "viewer_live.png"))
    fg, total = count_foreground(png)
    assert fg > 0.03 * total, (
        f"canvas looks blank while the cell runs: {fg}/{total} non-background pixels"
    )

    wait_until(
        lambda: (
            int(_attr(root, "frames-drawn")) >= frames1 + 8
            and _step(_label(root)) >= step1 + 8
            and int(_attr(root, "frame-seq")) >= seq1 + 8
        ),
        120,
        "eight more frames drawn while the cell runs",
    )
    assert nb.is_running(1)
    assert int(_attr(root, "n-atoms")) == 29
    assert int(_attr(root, "n-bonds")) > 40  # Pt-Pt bonds plus C-O

    # The last frame of a 500-update burst arrives while the cell still runs (it waits for
    # the end gate): the throttle's trailing edge, not the end of the cell, delivers it.
    (lab.root / BURST_GATE).touch()
    wait_until(lambda: _label(root) == "burst 499", 120, "the last frame of the burst")
    assert nb.is_running(1), "the final frame should arrive before the cell ends"
    root.locator(".nnpv-stage").screenshot(path=str(artifacts / "viewer_live_stage.png"))

    (lab.root / END_GATE).touch()
    out = nb.wait_output(1, "LOOP DONE", timeout_s=120)
    sent, calls, elapsed = out.split("LOOP DONE")[1].split()[:3]
    sent, calls, elapsed = int(sent), int(calls), float(elapsed)
    # At most one frame per 0.1 s of the cell's own run time (+ leading edge, final frame).
    assert sent <= 2 + math.ceil(10 * elapsed), (
        f"throttle sent {sent} frames in {elapsed} s at 10 Hz"
    )
    assert sent < calls - 400, (sent, calls)  # the burst was coalesced
    assert_no_console_errors(browser_logs, OURS, gl_warnings=True)


def test_click_picks_atom_and_syncs_selection(
    nb: NotebookPage,
    picker: Any,
    page: Any,
    artifacts: Path,
    browser_logs: dict[str, list[str]],
) -> None:
    root = picker
    root.locator(".nnpv-stage").scroll_into_view_if_needed()
    xy = root.evaluate(f"(r) => r.nnpViewer.project({O_INDEX})")
    page.mouse.click(xy["x"], xy["y"])
    pick = root.locator(".nnpv-pick")
    pick.wait_for(state="visible", timeout=60_000)
    # the label is redrawn on the next animation frame after the click: wait for it
    wait_until(lambda: pick.inner_text().startswith(f"#{O_INDEX} O"), 60, "the picked atom's label")

    xy = root.evaluate(f"(r) => r.nnpViewer.project({PT_INDEX})")
    page.keyboard.down("Shift")
    page.mouse.click(xy["x"], xy["y"])
    page.keyboard.up("Shift")
    wait_until(lambda: "2 selected" in pick.inner_text(), 60, "the second selected atom")
    assert pick.inner_text().startswith(f"#{PT_INDEX} Pt") and "2 selected" in pick.inner_text()
    root.locator(".nnpv-stage").screenshot(path=str(artifacts / "viewer_picked.png"))

    nb.run_cell(3)
    out = nb.wait_output(3, "SELECTED", timeout_s=120)
    assert f"SELECTED [{O_INDEX}, {PT_INDEX}]" in out, out
    drawn = int(out.split("FRAMES_DRAWN")[1].split()[0])
    assert drawn > 0, out  # the browser reports its drawn frames back to Python
    assert_no_console_errors(browser_logs, OURS, gl_warnings=True)


def test_save_png_from_python(
    nb: NotebookPage,
    picker: Any,
    lab: lab_harness.LabServer,
    artifacts: Path,
    browser_logs: dict[str, list[str]],
) -> None:
    nb.run_cell(4)
    nb.wait_output(4, "REQUESTED", timeout_s=120)
    path = lab.root / "view.png"
    wait_until(path.exists, 120, "the browser's PNG")
    data = path.read_bytes()
    (artifacts / "viewer_save_png.png").write_bytes(data)
    fg, total = count_foreground(data)
    assert fg > 0.03 * total, f"saved PNG looks blank: {fg}/{total}"
    nb.run_cell(5)
    out = nb.wait_output(5, "PNG", timeout_s=120)
    assert f"PNG True {len(data)} True" in out, out
    assert_no_console_errors(browser_logs, OURS, gl_warnings=True)


def test_trajectory_player_and_band_overlay(
    nb: NotebookPage,
    page: Any,
    artifacts: Path,
    browser_logs: dict[str, list[str]],
) -> None:
    nb.run_cell(6)
    root = nb.viewer_root(6)
    root.wait_for(state="visible", timeout=120_000)
    player = root.locator(".nnpv-player")
    assert player.is_visible()
    assert root.locator(".nnpv-slider").get_attribute("max") == "29"
    wait_until(lambda: _label(root).startswith("frame 0/29"), 120, "the first frame's label")
    root.locator(".nnpv-play").click()
    wait_until(lambda: _attr(root, "frame-index") not in ("", "0"), 120, "the player to advance")
    f1 = _attr(root, "frame-index")
    wait_until(lambda: _attr(root, "frame-index") != f1, 120, "the player to keep playing")
    root.locator(".nnpv-play").click()  # pause: the click handler stops the player at once
    f3 = int(_attr(root, "frame-index"))
    time.sleep(0.5)
    assert int(_attr(root, "frame-index")) == f3, "still playing after pause"
    # the label is redrawn on the next animation frame, after the frame index changes
    wait_until(lambda: _label(root).startswith(f"frame {f3}/29"), 120, "the paused frame's label")
    root.screenshot(path=str(artifacts / "viewer_trajectory.png"))

    nb.run_cell(7)
    band = nb.viewer_root(7)
    band.wait_for(state="visible", timeout=120_000)
    assert band.locator(".nnpv-overlay").is_visible()
    assert band.locator(".nnpv-overlay input").is_checked()
    wait_until(lambda: int(_attr(band, "frames-drawn") or 0) > 0, 120, "the band to be drawn")
    png = band.locator("canvas").screenshot(path=str(artifacts / "viewer_band_overlay.png"))
    fg, total = count_foreground(png)
    assert fg > 0.02 * total
    band.locator(".nnpv-slider").evaluate(
        "(s) => { s.value = '3'; s.dispatchEvent(new Event('input', { bubbles: true })); }"
    )
    wait_until(lambda: _attr(band, "frame-index") == "3", 120, "the band slider to show image 3")
    wait_until(lambda: _label(band).startswith("image 3/4"), 120, "the label of image 3")
    assert_no_console_errors(browser_logs, OURS, gl_warnings=True)


def test_spacefill_from_python(
    nb: NotebookPage,
    artifacts: Path,
    browser_logs: dict[str, list[str]],
) -> None:
    nb.run_cell(8)
    root = nb.viewer_root(8)
    root.wait_for(state="visible", timeout=120_000)
    wait_until(lambda: int(_attr(root, "n-bonds") or 0) > 40, 120, "the ball-and-stick bonds")
    root.locator(".nnpv-stage").scroll_into_view_if_needed()
    drawn = int(_attr(root, "frames-drawn"))
    nb.run_cell(9)
    nb.wait_output(9, "STYLED", timeout_s=120)
    wait_until(
        lambda: _attr(root, "n-bonds") == "0" and int(_attr(root, "frames-drawn")) > drawn,
        120,
        "spacefill (no bonds) drawn",
    )
    png = root.locator("canvas").screenshot(path=str(artifacts / "viewer_spacefill.png"))
    fg, total = count_foreground(png)
    assert fg > 0.05 * total
    assert_no_console_errors(browser_logs, OURS, gl_warnings=True)
