"""Measure the 3D viewer's frame rate in a real JupyterLab + headless Chromium (software WebGL).

For each system size and kind — ``cu``: fcc Cu supercells, ~5.5 bonds per atom, the bond-heavy
case; ``water``: a box of H2O molecules, ~0.7 bonds per atom, typical of molecular systems;
``slab``: a 4-layer Pt(111) slab, the editing case —
this opens the viewer in a notebook and measures, from the page:

* ``stream 10 Hz``  — frames drawn per second while the kernel streams ``viewer.update()`` at
  the default throttle (``max_rate_hz=10``; the ceiling is 10);
* ``stream 30 Hz``  — the same with ``max_rate_hz=30``: the most
  frames per second the browser draws while new coordinates keep arriving (each frame: decode,
  upload, bond search, draw). Unthrottled streaming is not measured: it only piles messages up
  in the websocket;
* ``drag``          — editing: the top tenth of the atoms (by z) selected and dragged in the
  view plane in a circle (a real mouse press, then one pointer move per animation frame
  dispatched in the page; the browser moves them locally every frame and sends one exact
  move to Python on release, checked as one edit in the kernel's history);
* ``spin``          — pure rendering: no new coordinates, the camera rotating every animation
  frame (``viewer.spin = True``). While moving, the viewer lowers its resolution (down to 40%
  per axis) and, if still too slow, leaves bonds out; the reported render scale and "lod" say
  what it did. A still view is always redrawn at full resolution with bonds;

plus the browser's main-thread milliseconds per frame (total, and the bond search). Nothing is
installed: it needs /usr/bin/chromium and the playwright Python package, like the browser tests.

Usage::

    python bench/viewer_fps.py [--sizes 500 5000 20000] [--systems cu water slab] [--seconds 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "browser"))

import lab_harness  # noqa: E402
from lab_harness import LabServer, NotebookPage, chromium_page, write_notebook  # noqa: E402

SETUP = """import math, time
import numpy as np
from ase.build import bulk
from nnp_lab.widgets import Viewer
rng = np.random.default_rng(0)
def cu(n):
    reps = [1, 1, 1]
    k = 0
    while 4 * reps[0] * reps[1] * reps[2] < n:
        reps[k % 3] += 1
        k += 1
    return bulk("Cu", "fcc", a=3.61, cubic=True).repeat(reps)
def water(n):
    from ase import Atoms
    from ase.build import molecule
    m = int(np.ceil((n / 3) ** (1 / 3)))
    h2o = molecule("H2O")
    atoms = Atoms(cell=[3.1 * m] * 3, pbc=True)
    for i in range(m):
        for j in range(m):
            for k in range(m):
                if len(atoms) >= n:
                    break
                w = h2o.copy()
                w.rotate(rng.uniform(0, 360), rng.normal(size=3))
                w.translate(np.array([i, j, k]) * 3.1 + 1.5)
                atoms += w
    return atoms
def slab(n):
    from nnp_lab import build
    m = int(np.ceil((n / 4) ** 0.5))
    return build.surface(build.bulk("Pt"), (1, 1, 1), 4, size=(m, m), vacuum=8.0, fixed_layers=2)
def stream(v, seconds):
    p0 = v.positions.astype(float)
    noise = [rng.normal(0, 0.03, p0.shape) for _ in range(8)]
    t_end = time.monotonic() + seconds
    k = 0
    while time.monotonic() < t_end:
        v.update(p0 + noise[k % 8], label=f"frame {k}")
        k += 1
        time.sleep(0.002)
    v.flush()
    return k
print("READY")"""


def cells_for(system: str, n: int, seconds: float) -> list[str]:
    warm = 2.0
    return [
        f"""v = Viewer({system}({n}), height=480, editable=True)
display(v)
print("ATOMS", v.n_atoms)""",
        # stream at the default 10 Hz
        f"""time.sleep({warm})
k = stream(v, {seconds})
print("SENT", k)""",
        # stream at one frame per display refresh
        f"""v.max_rate_hz = 30
time.sleep({warm})
k = stream(v, {seconds})
print("SENT", k)""",
        "z = v.atoms.positions[:, 2]\nsel = v.select(np.argsort(z)[-max(1, len(z) // 10):].tolist())\nprint('SELECTED', len(sel))",
        "print('MOVES', len(v.history))",
        "v.spin = True\nprint('SPIN')",
        "v.spin = False\nv.close()\nprint('CLOSED')",
    ]


def stats(root) -> dict:
    return root.evaluate("(r) => r.nnpViewer.stats()")


def sample(root, seconds: float) -> dict:
    a = stats(root)
    t0 = time.monotonic()
    time.sleep(seconds)
    b = stats(root)
    dt = time.monotonic() - t0
    frames = b["framesDrawn"] - a["framesDrawn"]
    searches = b["bondSearches"] - a["bondSearches"]
    return {
        "fps": round(frames / dt, 1),
        "cpu_ms_per_frame": round((b["cpuMs"] - a["cpuMs"]) / max(frames, 1), 2),
        "bond_ms_per_search": round((b["bondMs"] - a["bondMs"]) / max(searches, 1), 2)
        if searches
        else None,
        "bonds": b["nBonds"],
        "received_per_s": round((b["frameSeq"] - a["frameSeq"]) / dt, 1),
    }


def measure(nb: NotebookPage, first_cell: int, system: str, seconds: float) -> dict:
    c = first_cell
    nb.run_cell(c)
    out = nb.wait_output(c, "ATOMS", timeout_s=120)
    n_atoms = int(out.split("ATOMS")[1].split()[0])
    root = nb.viewer_root(c)
    root.wait_for(state="visible", timeout=60_000)
    root.locator(".nnpv-stage").scroll_into_view_if_needed()
    result: dict = {"n_atoms": n_atoms}
    for key, cell in (("stream_10hz", c + 1), ("stream_30hz", c + 2)):
        nb.run_cell(cell)
        time.sleep(2.0 + 0.5)  # warm-up inside the cell, then the stream starts
        result[key] = sample(root, seconds - 1.0)
        nb.wait_output(cell, "SENT", timeout_s=seconds + 300)
        time.sleep(0.5)
    result["drag"] = drag(nb, root, c + 3, seconds)
    nb.run_cell(c + 5)
    nb.wait_output(c + 5, "SPIN", timeout_s=60)
    time.sleep(4.0)  # let the adaptive resolution settle
    result["spin"] = sample(root, seconds)
    st = stats(root)
    result["spin"]["render_scale"] = round(st["renderScale"], 2)
    result["spin"]["lod"] = st["motionLod"]
    root.locator("canvas").screenshot(
        path=str(lab_harness.artifacts_dir() / f"bench_{system}_{n_atoms}.png")
    )
    nb.run_cell(c + 6)
    nb.wait_output(c + 6, "CLOSED", timeout_s=60)
    return result


def drag(nb: NotebookPage, root, select_cell: int, seconds: float) -> dict:
    """Frames drawn per second while the mouse drags the selected atoms in a circle."""
    nb.run_cell(select_cell)
    out = nb.wait_output(select_cell, "SELECTED", timeout_s=120)
    n_sel = int(out.split("SELECTED")[1].split()[0])
    time.sleep(1.0)
    # a selected atom on screen to grab: the one nearest the canvas centre
    xy = root.evaluate(
        """(r) => { const c = r.querySelector('canvas').getBoundingClientRect();
        const cx = c.left + c.width / 2, cy = c.top + c.height / 2; let best = null, d = 1e9;
        for (const i of r.nnpViewer.selection()) { const q = r.nnpViewer.project(i);
          const e = Math.hypot(q.x - cx, q.y - cy); if (e < d) { d = e; best = q; } }
        return best; }"""
    )
    page = nb.page
    page.mouse.move(xy["x"], xy["y"])
    page.mouse.down()  # a real press (pointer capture); the moves come from the page itself,
    # one per animation frame, since playwright's mouse.move round trips cap it at ~20/s
    a = stats(root)
    t0 = time.monotonic()
    k = root.evaluate(
        """(r, args) => new Promise((done) => {
          const c = r.querySelector('canvas'); const t0 = performance.now(); let k = 0;
          const step = () => {
            const ph = 2 * Math.PI * k / 90;
            c.dispatchEvent(new PointerEvent('pointermove', { bubbles: true, pointerId: 1,
              clientX: args.x + 40 * Math.sin(ph), clientY: args.y + 40 * (1 - Math.cos(ph)) }));
            k++;
            if (performance.now() - t0 < args.ms) requestAnimationFrame(step); else done(k);
          };
          requestAnimationFrame(step);
        })""",
        {"x": xy["x"], "y": xy["y"], "ms": seconds * 1000},
    )
    b = stats(root)
    dt = time.monotonic() - t0
    page.mouse.up()
    nb.run_cell(select_cell + 1)
    moves = nb.wait_output(select_cell + 1, "MOVES", timeout_s=120)
    frames = b["framesDrawn"] - a["framesDrawn"]
    return {
        "fps": round(frames / dt, 1),
        "pointer_moves_per_s": round(k / dt, 1),
        "selected": n_sel,
        "cpu_ms_per_frame": round((b["cpuMs"] - a["cpuMs"]) / max(frames, 1), 2),
        "edits_after_release": int(moves.split("MOVES")[1].split()[0]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 5000, 20000])
    parser.add_argument(
        "--systems", nargs="+", default=["cu", "water"], choices=["cu", "water", "slab"]
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    reason = lab_harness.missing_requirements()
    if reason:
        raise SystemExit(f"cannot run the browser benchmark: {reason}")

    cases = [(system, n) for system in args.systems for n in args.sizes]
    cells = [SETUP]
    for system, n in cases:
        cells += cells_for(system, n, args.seconds)
    results = []
    with LabServer() as lab:
        write_notebook(lab.root / "viewer_fps.ipynb", cells)
        console: list[str] = []
        with chromium_page(console) as page:
            nb = NotebookPage(page)
            nb.open(lab.notebook_url("viewer_fps.ipynb"))
            nb.run_cell(0, retry_s=8)
            nb.wait_output(0, "READY", timeout_s=120)
            for k, (system, _n) in enumerate(cases):
                r = measure(nb, 1 + 7 * k, system, args.seconds)
                r["system"] = system
                results.append(r)
                print(json.dumps(r), flush=True)

    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else "?"
    print()
    print(
        f"load average at the end: {' '.join(load)} (other processes slow software rendering down)"
    )
    print(
        f"viewer fps, headless Chromium + SwiftShader, {platform.processor() or platform.machine()}, "
        f"canvas ~{lab_harness.VIEWPORT['width'] - 430}x480 CSS px"
    )
    print(
        f"{'system':>6} {'atoms':>7} {'bonds':>7} | {'stream 10 Hz':>12} | {'stream 30 Hz':>12} {'recv/s':>6} {'ms/frame':>8} {'bonds ms':>8} | {'drag':>5} {'dragged':>7} | {'spin':>6} {'scale':>5} {'lod':>5}"
    )
    for r in results:
        s10, sm, sp, dr = r["stream_10hz"], r["stream_30hz"], r["spin"], r["drag"]
        print(
            f"{r['system']:>6} {r['n_atoms']:>7} {sm['bonds']:>7} | {s10['fps']:>12} | {sm['fps']:>12} {sm['received_per_s']:>6} "
            f"{sm['cpu_ms_per_frame']:>8} {sm['bond_ms_per_search'] or 0:>8} | {dr['fps']:>5} {dr['selected']:>7} | {sp['fps']:>6} "
            f"{sp['render_scale']:>5} {str(sp['lod']):>5}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
