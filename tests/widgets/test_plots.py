"""widgets.plots: the training loss plot (the live display of nnp_lab.models.train)."""

from __future__ import annotations

import pytest

pytest.importorskip("plotly")

from nnp_lab.widgets.plots import TrainingPlot


def _history(n: int) -> dict[str, list[float]]:
    return {
        "epoch": list(range(1, n + 1)),
        "train_loss": [1.0 / k for k in range(1, n + 1)],
        "val_loss": [2.0 / k for k in range(1, n + 1)],
        "val_force_mae": [0.1] * n,
        "val_energy_mae_per_atom": [0.002] * n,
    }


def test_training_plot_redraws_at_most_twice_a_second_and_always_at_the_end(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    plot = TrainingPlot("training TeaNet")
    assert shown == [plot.figure]  # displayed before the first epoch
    now = [100.0]
    plot._clock = lambda: now[0]  # a clock only the test moves
    plot.update(_history(1))
    plot.update(_history(2))  # same instant: skipped
    assert plot.n_draws == 1 and list(plot.figure.data[0].x) == [1]
    now[0] += TrainingPlot.MIN_INTERVAL_S
    plot.update(_history(3))
    assert plot.n_draws == 2 and list(plot.figure.data[0].x) == [1, 2, 3]
    plot.update(_history(4), final=True)  # the last epochs are always drawn
    assert plot.n_draws == 3
    assert list(plot.figure.data[1].y) == pytest.approx([2.0, 1.0, 2 / 3, 0.5])
    assert list(plot.figure.data[3].y) == pytest.approx([2.0] * 4)  # meV/atom
    assert [t.name for t in plot.figure.data] == [
        "train loss",
        "validation loss",
        "force MAE (eV/Å)",
        "energy MAE (meV/atom)",
    ]
