"""Every notebook executes headless in quick mode (NNP_LAB_QUICK=1)."""

import importlib.util
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
spec = importlib.util.spec_from_file_location("nb_runner", NOTEBOOKS / "run.py")
runner = importlib.util.module_from_spec(spec)
spec.loader.exec_module(runner)


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(NOTEBOOKS.rglob("*.ipynb")), ids=lambda p: p.name)
def test_notebook_runs_in_quick_mode(path, tmp_path):
    nb = runner.execute(path, quick=True, output=str(tmp_path / path.name))
    text = "".join(runner.text_outputs(nb))
    assert "Traceback" not in text
    assert "quick mode" in text  # every notebook reports which mode it ran in
