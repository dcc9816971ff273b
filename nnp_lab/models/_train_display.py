"""What :func:`nnp_lab.models.train` shows while it runs, kept apart from the training.

Inside Jupyter the live display registered for ``"training"`` in :mod:`nnp_lab.display`
(nnp_lab's own: the loss plot :class:`nnp_lab.widgets.plots.TrainingPlot`); elsewhere a tqdm
bar; nothing with ``live=False``. :class:`TrainDisplay` chooses and drives one of them; the
trainer only calls :meth:`TrainDisplay.epoch_done` and :meth:`TrainDisplay.close`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from nnp_lab import display

__all__ = ["TrainDisplay"]

# the training messages keep their logger name (scripts filter on it)
logger = logging.getLogger("nnp_lab.models.training")


class TrainDisplay:
    """A live loss plot in Jupyter, a tqdm bar elsewhere, or nothing.

    Parameters
    ----------
    title
        Title of the plot, description of the bar.
    epochs
        Length of the bar.
    live
        None or True: show something; False: nothing (log messages only).
    """

    def __init__(self, title: str, epochs: int, live: bool | None) -> None:
        self.bar: Any = None
        self.plot: Any = None
        show = live is None or bool(live)
        plot = display.live_display("training") if show else None
        if plot is not None:
            try:
                self.plot = plot(title)
            except Exception as exc:  # noqa: BLE001 - a missing front end must not stop training
                logger.info("train: no live plot (%s)", exc)
        elif show:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=epochs, desc=title, unit="epoch")

    def epoch_done(
        self,
        history: Mapping[str, list[float]],
        train_loss: float,
        val_loss: float,
        force_mae: float,
    ) -> None:
        """Show the epoch that has just been added to ``history``."""
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(
                f"loss {train_loss:.3g}/{val_loss:.3g} F-MAE {force_mae:.3f}",
                refresh=False,
            )
        if self.plot is not None:
            self.plot.update(history)

    def close(self, history: Mapping[str, list[float]]) -> None:
        """Close the bar; draw the plot's last epochs."""
        if self.bar is not None:
            self.bar.close()
        if self.plot is not None:
            self.plot.update(history, final=True)
