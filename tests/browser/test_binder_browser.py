"""The Binder environment, built as Binder builds it, runs the notebooks (without Binder).

repo2docker installs ``binder/requirements.txt`` into a fresh environment and then runs
``binder/postBuild`` from the repository root. This test does exactly that in a new venv made
from the base interpreter (nothing from the test environment is visible in it), then

1. checks the environment: the CPU torch build, nnp_lab imported from the editable install,
   the widget front end (``widgets/viewer.js``) found by the installed package, ``pip check``;
2. runs ``notebooks/00_quickstart.ipynb`` headless in that venv's own kernel (quick mode), with
   one cell appended that reports the kernel's interpreter;
3. starts JupyterLab from that venv and runs the widgets tour up to its live relaxation in
   headless Chromium: the viewer draws the slab on a non-blank canvas and the run finishes.

It costs a few minutes (most of it ``pip install``, from the local wheel cache here; Binder
downloads the same packages). ``make binder-check`` runs only this test.
"""

from __future__ import annotations

import json
import os
import subprocess
import venv
from pathlib import Path
from typing import Any

import nbformat
import pytest

import lab_harness
from lab_harness import (
    NotebookPage,
    assert_no_console_errors,
    count_foreground,
    wait_until,
    write_notebook,
)

REPO = Path(__file__).resolve().parents[2]
BINDER = REPO / "binder"
OURS = r"nnp|viewer|plotly|webgl|GL_|shader|anywidget|widget"
REPORT_CELL = """import sys, json, torch, nnp_lab
print("BINDER-KERNEL " + json.dumps({"prefix": sys.prefix, "nnp_lab": nnp_lab.__file__,
      "torch": torch.__version__, "cuda_build": torch.version.cuda}))
"""

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]


def _clean_env(venv_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join([str(venv_dir / "bin"), env.get("PATH", "")])
    env["VIRTUAL_ENV"] = str(venv_dir)
    return env


def _run(cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    with log.open("a") as f:
        f.write(f"$ {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}\n")
    assert proc.returncode == 0, (
        f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    )
    return proc.stdout


@pytest.fixture(scope="module")
def binder_venv(tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> Path:
    """A fresh venv with binder/requirements.txt installed and binder/postBuild run."""
    root = tmp_path_factory.mktemp("binder")
    venv_dir = root / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(
        venv_dir
    )  # base interpreter, no site-packages
    env = _clean_env(venv_dir)
    log = artifacts / "binder_build.log"
    log.write_text("")
    pip = str(venv_dir / "bin" / "pip")
    _run([pip, "install", "-r", str(BINDER / "requirements.txt")], env, REPO, log)
    _run(["bash", str(BINDER / "postBuild")], env, REPO, log)
    return venv_dir


def _report(text: str) -> dict[str, Any]:
    line = next(ln for ln in text.splitlines() if ln.startswith("BINDER-KERNEL "))
    return json.loads(line.removeprefix("BINDER-KERNEL "))


def test_binder_environment_is_cpu_torch_and_the_editable_project(binder_venv: Path) -> None:
    env = _clean_env(binder_venv)
    python = str(binder_venv / "bin" / "python")
    out = subprocess.run(
        [
            python,
            "-c",
            "import sys, json, torch, nnp_lab; from nnp_lab.widgets._frontend import frontend_file;"
            "print(json.dumps({'prefix': sys.prefix, 'torch': torch.__version__,"
            " 'cuda': torch.version.cuda, 'nnp_lab': nnp_lab.__file__,"
            " 'viewer': str(frontend_file('viewer.js'))}))",
        ],
        cwd="/",
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    info = json.loads(out.strip().splitlines()[-1])
    assert Path(info["prefix"]) == binder_venv
    assert info["cuda"] is None, f"a CUDA build of torch was installed: {info['torch']}"
    assert Path(info["nnp_lab"]).resolve().is_relative_to(REPO), info["nnp_lab"]
    assert info["viewer"] == str(REPO / "widgets" / "viewer.js")  # the front end ships with it
    check = subprocess.run([python, "-m", "pip", "check"], env=env, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_quickstart_runs_headless_in_the_binder_env(binder_venv: Path, tmp_path: Path) -> None:
    nb = nbformat.read(REPO / "notebooks" / "00_quickstart.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(REPORT_CELL))
    copy = tmp_path / "quickstart_binder.ipynb"
    nbformat.write(nb, copy)
    env = _clean_env(binder_venv)
    env["NNP_LAB_QUICK"] = "1"
    proc = subprocess.run(
        [str(binder_venv / "bin" / "python"), str(REPO / "notebooks" / "run.py"), str(copy)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "quick mode" in proc.stdout
    assert "Traceback" not in proc.stdout
    report = _report(proc.stdout)
    assert Path(report["prefix"]) == binder_venv  # the notebook ran in the Binder env's kernel
    assert report["cuda_build"] is None


def test_widget_notebook_draws_in_jupyterlab_from_the_binder_env(
    binder_venv: Path, browser_requirements: None, artifacts: Path
) -> None:
    tour = nbformat.read(REPO / "notebooks" / "01_widgets_tour.ipynb", as_version=4)
    code = [c.source for c in tour.cells if c.cell_type == "code"]
    live = next(i for i, src in enumerate(code) if "relax(" in src and "live=True" in src)
    cells = [*code[: live + 1], REPORT_CELL]
    console: list[str] = []
    page_errors: list[str] = []
    with lab_harness.LabServer(python=binder_venv / "bin" / "python") as lab:
        name = "widgets_tour_binder.ipynb"
        write_notebook(lab.root / name, cells)
        with lab_harness.chromium_page(console, page_errors) as page:
            nb = NotebookPage(page)
            nb.open(lab.notebook_url(name))
            nb.run_cell(0, retry_s=8)
            nb.wait_output(0, "quick mode", timeout_s=300)
            for i in range(1, len(cells)):
                nb.run_cell(i)
                nb.wait_done(i, timeout_s=900)
                assert "Traceback" not in nb.output_text(i), nb.output_text(i)
            report = _report(nb.output_text(len(cells) - 1))
            assert Path(report["prefix"]) == binder_venv

            cell = nb.cell(live)
            root = nb.viewer_root(live)
            root.wait_for(state="visible", timeout=120_000)
            wait_until(
                lambda: "finished" in cell.locator(".nnp-lab-live").inner_text(), 120, "the status"
            )
            n_atoms = int(root.get_attribute("data-n-atoms") or 0)
            assert n_atoms > 2  # the Pt slab and the CO molecule
            png = root.locator("canvas").screenshot(path=str(artifacts / "binder_widgets_tour.png"))
            fg, total = count_foreground(png)
            assert fg > 0.01 * total, f"the viewer canvas is blank ({fg} of {total} pixels drawn)"
    assert_no_console_errors({"console": console, "page_errors": page_errors}, OURS)
