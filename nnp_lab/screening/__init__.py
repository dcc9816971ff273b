"""Screening: one task over many structures — batched, stored row by row, resumable.

:func:`screen` runs ``"energy"``, ``"relax"``, any property of :mod:`nnp_lab.properties` or a
callable over a list, an iterator, a glob of files or an ``ase.db``, writing one row per
structure to an ``ase.db`` as results arrive; run it again and it does only what is missing.
Relaxations advance together, one batched model call per optimizer step for every structure
in flight (:mod:`._batched_relax`). :func:`load` reads a finished or half-finished screen.
"""

from __future__ import annotations

from nnp_lab.screening._screen import TASKS, RowEvent, ScreenResult, ScreenRun, load, screen

__all__ = ["screen", "load", "ScreenResult", "ScreenRun", "RowEvent", "TASKS"]
