"""The viewer in a real JupyterLab + Chromium: it draws, and updates while the cell still runs.

One notebook, run cell by cell; the tests run in file order and share it:

1. a cell creates a Viewer (Pt(111) slab + CO, force arrows), displays it and streams
   ``update()`` calls with ``time.sleep`` for ~10 s — while it runs, the canvas is not blank, the
   label advances and ``data-frames-drawn`` grows; a burst of 500 updates ends with its last
   frame shown before the cell finishes (trailing edge of the throttle);
2. clicking an atom shows its index and element; shift-click adds; ``viewer.selected`` in the
   kernel matches;
3. ``viewer.save_png(path)`` writes a non-blank PNG;
4. the trajectory player plays in the browser; the NEB band view overlays all images;
5. the style changes from Python (spacefill: no bonds);
6. no console errors from our module.

Screenshots go to test-artifacts/ (look at them).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

import lab_harness
from lab_harness import NotebookPage, count_foreground, write_notebook

NOTEBOOK = "viewer_browser_test.ipynb"
O_INDEX = 27  # molecule("CO") is [O, C]; add_adsorbate puts C down, so O (27) is on top
PT_INDEX = 18  # a top-layer Pt atom away from the CO

CELLS = [
    # 0: set-up
    """import os, time
import numpy as np
from ase.build import fcc111, add_adsorbate, molecule
from nnp_lab.widgets import Viewer, TrajectoryPlayer
slab = fcc111("Pt", size=(3, 3, 3), vacuum=6.0)
add_adsorbate(slab, molecule("CO"), 1.9, "fcc")
rng = np.random.default_rng(0)
print("READY", len(slab))""",
    # 1: live view created and streamed in the same cell (the case nglview fails)
    """v = Viewer(slab, show_forces=True, height=420)
display(v)
p0 = slab.positions.copy()
for i in range(100):
    v.update(p0 + rng.normal(0, 0.02, p0.shape), forces=rng.normal(0, 0.4, p0.shape),
             label=f"step {i}  E = {-100 + 0.01 * i:.3f} eV")
    time.sleep(0.1)
for i in range(500):
    v.update(p0, label=f"burst {i}")
time.sleep(4)
print("LOOP DONE", v.frame_seq)""",
    # 2: selection read back in the kernel
    """print("SELECTED", v.selected, "FRAMES_DRAWN", v.frames_drawn)""",
    # 3: PNG request (the reply arrives when this cell has finished)
    """png_future = v.save_png(os.path.join(os.getcwd(), "view.png"))
print("REQUESTED")""",
    # 4: PNG written
    """data = open("view.png", "rb").read()
print("PNG", png_future.done(), len(data), data[:8] == b"\\x89PNG\\r\\n\\x1a\\n")""",
    # 5: trajectory player
    """frames = []
for k in range(30):
    a = slab.copy()
    a.positions[-2:, 2] += 0.08 * k
    frames.append(a)
tp = TrajectoryPlayer(frames, fps=30, height=300)
tp""",
    # 6: NEB band overlay
    """band = Viewer(height=300).show_band(frames[::6], overlay=True)
band""",
    # 7: restyle the live viewer from Python
    """v.style = "spacefill"
v.reset_view()
print("STYLED")""",
]


@pytest.fixture(scope="module")
def nb(lab: lab_harness.LabServer, page: Any) -> NotebookPage:
    write_notebook(lab.root / NOTEBOOK, CELLS)
    notebook = NotebookPage(page)
    notebook.open(lab.notebook_url(NOTEBOOK))
    notebook.run_cell(0, retry_s=8)
    notebook.wait_output(0, "READY 29", timeout_s=120)
    return notebook


def _attr(root: Any, key: str) -> str:
    return root.get_attribute(f"data-{key}") or ""


def _label(root: Any) -> str:
    return root.locator(".nnpv-label").inner_text()


def _step(label: str) -> int:
    m = re.search(r"step (\d+)", label)
    return int(m.group(1)) if m else -1


def test_live_view_updates_while_cell_runs(nb: NotebookPage, artifacts: Path) -> None:
    nb.run_cell(1)
    root = nb.viewer_root(1)
    root.wait_for(state="visible", timeout=60_000)
    deadline = time.monotonic() + 30
    while _step(_label(root)) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert nb.is_running(1), "the live cell finished before the checks started"

    frames1, step1 = int(_attr(root, "frames-drawn")), _step(_label(root))
    seq1 = int(_attr(root, "frame-seq"))
    canvas = root.locator("canvas")
    box = canvas.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 300
    png = canvas.screenshot(path=str(artifacts / "viewer_live.png"))
    fg, total = count_foreground(png)
    assert fg > 0.03 * total, f"canvas looks blank while the cell runs: {fg}/{total} non-background pixels"
    assert nb.is_running(1)

    time.sleep(2.0)
    frames2, step2 = int(_attr(root, "frames-drawn")), _step(_label(root))
    seq2 = int(_attr(root, "frame-seq"))
    assert nb.is_running(1), "the cell should still be running"
    assert frames2 >= frames1 + 8, f"frames drawn grew only {frames1} -> {frames2} in 2 s"
    assert step2 >= step1 + 8 and seq2 >= seq1 + 8, (step1, step2, seq1, seq2)
    assert int(_attr(root, "n-atoms")) == 29
    assert int(_attr(root, "n-bonds")) > 40  # Pt-Pt bonds plus C-O

    # The last frame of a 500-update burst arrives while the cell still sleeps (trailing edge).
    deadline = time.monotonic() + 30
    while _label(root) != "burst 499" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _label(root) == "burst 499", f"final frame not shown; label is {_label(root)!r}"
    assert nb.is_running(1), "the final frame should arrive before the cell ends"
    root.locator(".nnpv-stage").screenshot(path=str(artifacts / "viewer_live_stage.png"))

    out = nb.wait_output(1, "LOOP DONE", timeout_s=60)
    sent = int(out.split("LOOP DONE")[1].split()[0])
    assert sent <= 1 + 10 * 15 + 5, f"throttle sent {sent} frames for ~15 s at 10 Hz"


def test_click_picks_atom_and_syncs_selection(nb: NotebookPage, page: Any, artifacts: Path) -> None:
    root = nb.viewer_root(1)
    root.locator(".nnpv-stage").scroll_into_view_if_needed()
    xy = root.evaluate(f"(r) => r.nnpViewer.project({O_INDEX})")
    page.mouse.click(xy["x"], xy["y"])
    pick = root.locator(".nnpv-pick")
    pick.wait_for(state="visible", timeout=10_000)
    assert pick.inner_text().startswith(f"#{O_INDEX} O"), pick.inner_text()

    xy = root.evaluate(f"(r) => r.nnpViewer.project({PT_INDEX})")
    page.keyboard.down("Shift")
    page.mouse.click(xy["x"], xy["y"])
    page.keyboard.up("Shift")
    deadline = time.monotonic() + 10
    while "2 selected" not in pick.inner_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pick.inner_text().startswith(f"#{PT_INDEX} Pt") and "2 selected" in pick.inner_text()
    root.locator(".nnpv-stage").screenshot(path=str(artifacts / "viewer_picked.png"))

    nb.run_cell(2)
    out = nb.wait_output(2, "SELECTED", timeout_s=30)
    assert f"SELECTED [{O_INDEX}, {PT_INDEX}]" in out, out
    drawn = int(out.split("FRAMES_DRAWN")[1].split()[0])
    assert drawn > 50, out


def test_save_png_from_python(nb: NotebookPage, lab: lab_harness.LabServer, artifacts: Path) -> None:
    nb.run_cell(3)
    nb.wait_output(3, "REQUESTED", timeout_s=30)
    path = lab.root / "view.png"
    deadline = time.monotonic() + 30
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert path.exists(), "the browser's PNG never arrived"
    data = path.read_bytes()
    (artifacts / "viewer_save_png.png").write_bytes(data)
    fg, total = count_foreground(data)
    assert fg > 0.03 * total, f"saved PNG looks blank: {fg}/{total}"
    nb.run_cell(4)
    out = nb.wait_output(4, "PNG", timeout_s=30)
    assert f"PNG True {len(data)} True" in out, out


def test_trajectory_player_and_band_overlay(nb: NotebookPage, page: Any, artifacts: Path) -> None:
    nb.run_cell(5)
    root = nb.viewer_root(5)
    root.wait_for(state="visible", timeout=30_000)
    player = root.locator(".nnpv-player")
    assert player.is_visible()
    assert root.locator(".nnpv-slider").get_attribute("max") == "29"
    assert _label(root).startswith("frame 0/29")
    root.locator(".nnpv-play").click()
    time.sleep(1.0)
    f1 = int(_attr(root, "frame-index"))
    time.sleep(0.5)
    f2 = int(_attr(root, "frame-index"))
    assert f1 != f2 and (f1 > 0 or f2 > 0), (f1, f2)
    root.locator(".nnpv-play").click()  # pause
    time.sleep(0.2)
    f3 = int(_attr(root, "frame-index"))
    time.sleep(0.5)
    assert int(_attr(root, "frame-index")) == f3, "still playing after pause"
    assert _label(root).startswith(f"frame {f3}/29")
    root.screenshot(path=str(artifacts / "viewer_trajectory.png"))

    nb.run_cell(6)
    band = nb.viewer_root(6)
    band.wait_for(state="visible", timeout=30_000)
    assert band.locator(".nnpv-overlay").is_visible()
    assert band.locator(".nnpv-overlay input").is_checked()
    time.sleep(0.5)
    png = band.locator("canvas").screenshot(path=str(artifacts / "viewer_band_overlay.png"))
    fg, total = count_foreground(png)
    assert fg > 0.02 * total
    band.locator(".nnpv-slider").evaluate(
        "(s) => { s.value = '3'; s.dispatchEvent(new Event('input', { bubbles: true })); }"
    )
    time.sleep(0.3)
    assert _attr(band, "frame-index") == "3"
    assert _label(band).startswith("image 3/4")


def test_spacefill_from_python(nb: NotebookPage, artifacts: Path) -> None:
    root = nb.viewer_root(1)
    nb.run_cell(7)
    nb.wait_output(7, "STYLED", timeout_s=30)
    deadline = time.monotonic() + 10
    while _attr(root, "n-bonds") != "0" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _attr(root, "n-bonds") == "0"  # no bonds in spacefill
    root.locator(".nnpv-stage").scroll_into_view_if_needed()
    time.sleep(0.3)
    png = root.locator("canvas").screenshot(path=str(artifacts / "viewer_spacefill.png"))
    fg, total = count_foreground(png)
    assert fg > 0.05 * total


def test_no_console_errors_from_viewer(nb: NotebookPage, browser_logs: dict[str, list[str]]) -> None:
    ours = re.compile(r"nnp|viewer|webgl|GL_|shader|anywidget", re.I)
    errors = [m for m in browser_logs["console"] if m.startswith("error") and ours.search(m)]
    assert not errors, "\n".join(errors)
    assert not browser_logs["page_errors"], "\n".join(browser_logs["page_errors"])
    gl_warnings = [m for m in browser_logs["console"] if "GL_INVALID" in m]
    assert not gl_warnings, "\n".join(gl_warnings[:5])
