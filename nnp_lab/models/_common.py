"""Small helpers shared by the data, training and distillation modules of nnp_lab.models."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from ase import Atoms

from nnp_lab.errors import InputError
from nnp_lab.potentials.base import Potential

__all__ = [
    "NullBar",
    "dtype_name",
    "forget_cached_model",
    "jsonable",
    "progress_bar",
    "resolve_teacher",
    "structure_list",
]


def resolve_teacher(potential: Potential | str | os.PathLike | None) -> Potential:
    """A :class:`~nnp_lab.potentials.Potential`, a registered name, a model path or None
    (the default model) -> the potential."""
    from nnp_lab.potentials.registry import resolve_potential

    return resolve_potential(potential)


def structure_list(
    atoms: Any, missing: str, *, empty: str | None = None, allow_empty: bool = False
) -> list[Atoms]:
    """One Atoms or a sequence of them -> a new list of them.

    ``missing`` is the message for no structures at all (None, a string), ``empty``
    (default: ``missing``) the one for an empty sequence unless ``allow_empty``.
    """
    if isinstance(atoms, Atoms):
        return [atoms]
    if atoms is None or isinstance(atoms, (str, bytes)):
        raise InputError(missing)
    structures = list(atoms)
    if not structures and not allow_empty:
        raise InputError(empty or missing)
    for k, a in enumerate(structures):
        if not isinstance(a, Atoms):
            raise InputError(f"structure {k} is a {type(a).__name__}, not an ase.Atoms")
    return structures


def jsonable(value: Any) -> Any:
    """``value`` with NumPy scalars and arrays turned into plain Python (NaN kept)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    return value


def dtype_name(model: torch.nn.Module) -> str:
    """``"float32"`` or ``"float64"``: the dtype of the model's first parameter."""
    p = next(iter(model.parameters()))
    return str(p.dtype).replace("torch.", "")


class NullBar:
    """A progress bar that shows nothing (``progress=False``)."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, *_: Any, **__: Any) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int | None, desc: str, enabled: bool, unit: str = "frame") -> Any:
    """A tqdm bar (kept on screen when done), or a :class:`NullBar` when not ``enabled``."""
    if not enabled:
        return NullBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=True)


def forget_cached_model(path: str | os.PathLike) -> None:
    """Drop a model file from :func:`nnp_lab.load_potential`'s cache after rewriting it.

    The registry caches model files by resolved path, so without this a second
    ``load_potential(path)`` in the same process would return the weights of the file's
    previous version.
    """
    from nnp_lab.potentials import registry

    registry.forget(path)
