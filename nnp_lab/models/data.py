"""Training data: the names this module held before it was split, kept importable.

- :mod:`nnp_lab.models.dataset`: :class:`Dataset`, the ``ase.db`` store of labelled frames.
- :mod:`nnp_lab.models.sampling`: :func:`sample` and the structure generators.
- :class:`LangevinReplicas` (an MD integrator) lives in the run layer now,
  ``nnp_lab.simulate._replicas``.

New code imports from :mod:`nnp_lab.models` (``Dataset``, ``sample``) or from the modules
above.
"""

from __future__ import annotations

from nnp_lab.models.dataset import DATASET_FORMAT, DEFAULT_BATCH_SIZE, KINDS, Dataset
from nnp_lab.models.sampling import (
    compute_normal_modes,
    min_distance,
    normal_mode_displaced,
    rattled,
    sample,
    strained,
)
from nnp_lab.simulate._replicas import LangevinReplicas

__all__ = [
    "Dataset",
    "sample",
    "KINDS",
    "DATASET_FORMAT",
    "DEFAULT_BATCH_SIZE",
    "LangevinReplicas",
    "compute_normal_modes",
    "normal_mode_displaced",
    "rattled",
    "strained",
    "min_distance",
]
