"""Tests of the viewer's JavaScript: the committed bundle against its sources, and unit tests of
its internals run with node (skipped without node).

``widgets/viewer.js`` is generated from the ES modules in ``widgets/src/`` by esbuild
(``make viewer``); the unit tests import ``_internals`` from the bundle, i.e. what ships.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WIDGETS = REPO / "widgets"
BUNDLE = WIDGETS / "viewer.js"
ESBUILD = WIDGETS / "node_modules" / ".bin" / "esbuild"
NODE = shutil.which("node")

needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")


def _build_command(outfile: Path) -> list[str]:
    """The package.json ``build`` script (what ``make viewer`` runs), writing to ``outfile``."""
    script = json.loads((WIDGETS / "package.json").read_text())["scripts"]["build"]
    args = shlex.split(script)
    assert args[0] == "esbuild" and args.count("--outfile=viewer.js") == 1, script
    return [str(ESBUILD)] + [
        f"--outfile={outfile}" if a == "--outfile=viewer.js" else a for a in args[1:]
    ]


@pytest.mark.skipif(
    not ESBUILD.exists(), reason="esbuild is not installed (make viewer installs it)"
)
def test_committed_bundle_matches_sources(tmp_path: Path) -> None:
    out = tmp_path / "viewer.js"
    run = subprocess.run(
        _build_command(out), cwd=WIDGETS, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    if out.read_bytes() != BUNDLE.read_bytes():
        pytest.fail(
            "widgets/viewer.js is not the bundle of widgets/src/: run `make viewer` "
            "and commit widgets/viewer.js"
        )


def test_bundle_contains_every_source_module() -> None:
    """Without esbuild, still catch a module added to (or renamed in) src/ without a rebuild."""
    bundle = BUNDLE.read_text(encoding="utf-8")
    assert bundle.startswith("// Generated from widgets/src/"), "widgets/viewer.js lost its banner"
    # esbuild marks the start of each module's code with a `// src/<path>` comment line.
    bundled = set(re.findall(r"^// (src/\S+\.js)$", bundle, flags=re.M))
    sources = {p.relative_to(WIDGETS).as_posix() for p in (WIDGETS / "src").rglob("*.js")}
    assert "src/index.js" in sources
    missing = sorted(sources - bundled)
    stale = sorted(bundled - sources)
    assert not missing and not stale, (
        f"widgets/viewer.js is out of date with widgets/src/ (not in the bundle: {missing}; "
        f"no longer in src/: {stale}): run `make viewer` (a module that nothing imports is "
        "never bundled)"
    )


def _run_node(tmp_path: Path, body: str) -> dict:
    module = tmp_path / "viewer.mjs"
    module.write_text(BUNDLE.read_text(encoding="utf-8"), encoding="utf-8")
    script = tmp_path / "t.mjs"
    script.write_text(f'import {{ _internals as I }} from "./viewer.mjs";\n{body}\n')
    out = subprocess.run([NODE, str(script)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@needs_node
def test_bond_finder_matches_brute_force(tmp_path: Path) -> None:
    result = _run_node(
        tmp_path,
        """
let seed = 7;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const n = 3000;
const pos = new Float32Array(3 * n);
const rcov = new Float32Array(n);
for (let i = 0; i < n; i++) {
  pos[3 * i] = rand() * 30; pos[3 * i + 1] = rand() * 25; pos[3 * i + 2] = rand() * 20;
  rcov[i] = [0.31, 0.76, 1.36][i % 3];
}
pos[0] = NaN; // non-finite positions are skipped, not crashed on
const tol = 0.4;
const bf = new I.BondFinder();
const np = bf.find(pos, n, rcov, tol);
const fast = new Set();
for (let k = 0; k < np; k++) fast.add(bf.pairs[2 * k] + "," + bf.pairs[2 * k + 1]);
const slow = new Set();
for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) {
  const dx = pos[3*j]-pos[3*i], dy = pos[3*j+1]-pos[3*i+1], dz = pos[3*j+2]-pos[3*i+2];
  const d2 = dx*dx + dy*dy + dz*dz, c = rcov[i] + rcov[j] + tol;
  if (d2 < c * c && d2 > 0.0025) slow.add(i + "," + j);
}
let same = fast.size === slow.size;
for (const p of slow) if (!fast.has(p)) same = false;
// A sparse system (two far-apart clusters) uses a coarser grid but still finds its bonds.
const far = new Float32Array([0,0,0, 0.74,0,0, 1e4,0,0, 1e4+0.74,0,0]);
const nf = bf.find(far, 4, new Float32Array([0.31,0.31,0.31,0.31]), 0.4);
console.log(JSON.stringify({ fast: fast.size, slow: slow.size, same, nf }));
""",
    )
    assert result["same"] and result["fast"] == result["slow"] > 100
    assert result["nf"] == 2


@needs_node
def test_camera_orbit_keeps_rotation_orthonormal(tmp_path: Path) -> None:
    result = _run_node(
        tmp_path,
        """
const cam = new I.Camera();
for (let k = 0; k < 5000; k++) cam.orbit(3.7, -2.1);
const R = cam.R;
let err = 0;
for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) {
  let d = 0; for (let k = 0; k < 3; k++) d += R[3*i+k] * R[3*j+k];
  err = Math.max(err, Math.abs(d - (i === j ? 1 : 0)));
}
const det = R[0]*(R[4]*R[8]-R[5]*R[7]) - R[1]*(R[3]*R[8]-R[5]*R[6]) + R[2]*(R[3]*R[7]-R[4]*R[6]);
// Fit then project: every point must land inside the normalised view.
const pts = new Float32Array([-5,-2,1,0.5, 7,3,-4,0.5, 0,9,2,0.5]);
cam.fit([1, 3.5, -1.5], pts, 1.6);
const th = Math.tan(22 * Math.PI / 360);
let inside = true;
for (let k = 0; k < pts.length; k += 4) {
  const v = cam.toView([pts[k], pts[k+1], pts[k+2]]);
  if (Math.abs(v[0] / -v[2]) > th * 1.6 || Math.abs(v[1] / -v[2]) > th) inside = false;
}
console.log(JSON.stringify({ err, det, inside, c: I.parseColor("#ff8000") }));
""",
    )
    assert result["err"] < 1e-9 and abs(result["det"] - 1) < 1e-9
    assert result["inside"]
    assert result["c"] == pytest.approx([1.0, 128 / 255, 0.0])


@needs_node
def test_bundle_exports_the_anywidget_entry(tmp_path: Path) -> None:
    result = _run_node(
        tmp_path,
        """
import * as M from "./viewer.mjs";
console.log(JSON.stringify({
  exports: Object.keys(M).sort(),
  render: typeof M.default.render,
  internals: Object.keys(I).sort(),
}));
""",
    )
    assert result["exports"] == ["_internals", "default"]
    assert result["render"] == "function"
    assert result["internals"] == ["BondFinder", "Camera", "asFloat32", "parseColor"]


def test_every_front_end_file_the_package_loads_goes_into_the_wheel():
    """``frontend_file("x.js")`` finds x.js in the wheel only if setup.py copies it there."""
    import ast

    source = (REPO / "setup.py").read_text()
    copied = next(
        ast.literal_eval(node.value)
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "FRONTEND_FILES"
    )
    loaded = set()
    for path in (REPO / "nnp_lab").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", "") == "frontend_file"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                loaded.add(node.args[0].value)
    assert {"viewer.js", "screen_table.js"} <= loaded
    assert loaded <= set(copied), f"not copied into the wheel by setup.py: {loaded - set(copied)}"
