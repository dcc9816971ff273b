"""Where live displays plug in: the engine emits events, a display layer registers here.

The engine (:mod:`nnp_lab.simulate`, :mod:`nnp_lab.models`) never imports a display. It
offers what ASE's dynamics offer — subscribers of its events — and asks this registry for a
display when the user passes ``live=True``. :mod:`nnp_lab.widgets` registers its displays when
it is imported (``"run"``: the live view of a relaxation, MD or NEB; ``"training"``: the loss
plot of :func:`nnp_lab.models.train`; ``"screen"``: the progress, table and scatter of
:func:`nnp_lab.screen`). Inside a Jupyter kernel a display that is not
registered yet is found through the package entry-point group ``nnp_lab.displays`` (nnp_lab's
own ``pyproject.toml`` names ``nnp_lab.widgets`` there), which is the one documented way the
engine reaches the display layer; another package can offer its own displays the same way.
Outside a kernel no display is used (the engine shows a tqdm bar instead).
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["register_display", "live_display", "in_notebook"]

logger = logging.getLogger(__name__)

#: Entry-point group in which packages name the module that registers their displays.
ENTRY_POINT_GROUP = "nnp_lab.displays"

_DISPLAYS: dict[str, Callable[..., Any]] = {}
_entry_points_loaded = False


def register_display(kind: str, show: Callable[..., Any]) -> None:
    """Make ``show`` the live display of ``kind`` (``"run"``, ``"training"``, ``"screen"``).

    ``show(run, total=...)`` for runs must drain the run and return its result;
    ``show(total_epochs)`` for training returns a subscriber of training progress events
    (see :mod:`nnp_lab.models.training`); ``show(screen_run)`` for screens runs the
    :class:`~nnp_lab.screening.ScreenRun` and returns its result.
    """
    _DISPLAYS[kind] = show


def in_notebook() -> bool:
    """Whether we run inside a Jupyter (IPython) kernel with ipywidgets/anywidget/plotly."""
    ipython = sys.modules.get("IPython")  # never import IPython just to find out
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or getattr(shell, "kernel", None) is None:
        return False
    return all(
        importlib.util.find_spec(m) is not None for m in ("ipywidgets", "anywidget", "plotly")
    )


def live_display(kind: str) -> Callable[..., Any] | None:
    """The registered live display of ``kind``, inside a notebook kernel; else None."""
    global _entry_points_loaded
    if not in_notebook():
        return None
    if kind not in _DISPLAYS and not _entry_points_loaded:
        _entry_points_loaded = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                ep.load()  # importing the module registers its displays
            except Exception:  # a broken plug-in must not break the run
                logger.exception("loading the display entry point %s failed", ep.value)
    return _DISPLAYS.get(kind)
