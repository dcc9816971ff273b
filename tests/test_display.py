"""nnp_lab.display: the engine asks for live displays; the widgets register them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nnp_lab import display

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> dict:
    """An empty registry for the test (the real one is restored afterwards)."""
    fresh: dict = {}
    monkeypatch.setattr(display, "_DISPLAYS", fresh)
    monkeypatch.setattr(display, "_entry_points_loaded", False)
    return fresh


def test_no_display_outside_a_notebook(registry: dict) -> None:
    display.register_display("run", print)
    assert not display.in_notebook()
    assert display.live_display("run") is None  # scripts and the CLI get a tqdm bar instead


def test_registered_display_is_used_in_a_notebook(registry: dict, monkeypatch) -> None:
    monkeypatch.setattr(display, "in_notebook", lambda: True)
    display.register_display("run", print)
    assert display.live_display("run") is print
    assert display.live_display("nothing-registered") is None


def test_entry_point_registers_nnp_lab_widgets(registry: dict, monkeypatch) -> None:
    """Inside a kernel the engine reaches the widgets only through the entry point."""
    pytest.importorskip("anywidget")
    monkeypatch.setattr(display, "in_notebook", lambda: True)
    import importlib
    from importlib.metadata import entry_points

    names = [ep.value for ep in entry_points(group=display.ENTRY_POINT_GROUP)]
    assert "nnp_lab.widgets" in names, "reinstall nnp_lab (pip install -e .) to register it"
    import nnp_lab.widgets

    importlib.reload(nnp_lab.widgets)  # registration happens at import, into this registry
    from nnp_lab.widgets import watch
    from nnp_lab.widgets.plots import TrainingPlot

    assert display.live_display("run") is watch
    assert display.live_display("training") is TrainingPlot


def test_importing_the_engine_loads_no_display() -> None:
    code = (
        "import sys, nnp_lab, nnp_lab.simulate, nnp_lab.models\n"
        "print(sorted(m for m in sys.modules if m.startswith('nnp_lab.widgets')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        check=True,
    )
    assert out.stdout.strip() == "[]"
