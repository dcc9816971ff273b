"""Our own neural network potentials: architectures, data, training and distillation.

Architectures (plain torch, periodic-aware, forces and stress by autograd through
:class:`nnp_lab.potentials.torch_model.GraphBatch`):

- :class:`BehlerParrinello` — atom-centred symmetry functions + per-element MLPs (2007; ANI).
- :class:`SchNet` — continuous-filter convolutions over radial basis functions (2017).
- :class:`TeaNet` — scalar, vector and rank-2 tensor features, per-layer cutoffs (2019; PFP).

Workflow: :func:`sample` structures and label them with a teacher potential into a
:class:`Dataset` (an ``ase.db`` file), :func:`train` a model on it, or :func:`distill` a
light potential from a universal one by active learning.

Modules: :mod:`~nnp_lab.models.dataset` (the store), :mod:`~nnp_lab.models.sampling`
(:func:`sample` and the structure generators), :mod:`~nnp_lab.models.training`
(:func:`train`), :mod:`~nnp_lab.models.distillation` (:func:`distill`); no module shares
its dotted name with a function (``nnp_lab.models.distill`` is the function).
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> module that defines it (imported on first use: torch models load fast)
_EXPORTS = {
    "BehlerParrinello": "nnp_lab.models.behler_parrinello",
    "SchNet": "nnp_lab.models.schnet",
    "TeaNet": "nnp_lab.models.teanet",
    "Dataset": "nnp_lab.models.dataset",
    "sample": "nnp_lab.models.sampling",
    "train": "nnp_lab.models.training",
    "TrainReport": "nnp_lab.models.training",
    "distill": "nnp_lab.models.distillation",
    "DistillReport": "nnp_lab.models.distillation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nnp_lab.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
