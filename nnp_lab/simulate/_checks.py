"""Input checks shared by the runs: numeric options and optimizer names."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nnp_lab.errors import InputError

__all__ = ["check_number", "resolve_optimizer"]


def check_number(name: str, value: Any, *, positive: bool, integer: bool = False) -> None:
    """Raise :class:`InputError` unless ``value`` is a finite (integer) number, > 0 or >= 0."""
    kind = "an integer" if integer else "a number"
    if integer:
        ok = isinstance(value, (int, np.integer))
    else:
        ok = isinstance(value, (int, float, np.integer, np.floating))
    if isinstance(value, bool) or not ok or not np.isfinite(value):
        raise InputError(f"{name} must be {kind}, got {value!r}")
    if positive and not value > 0:
        raise InputError(f"{name} must be > 0, got {value!r}")
    if not positive and value < 0:
        raise InputError(f"{name} must be >= 0, got {value!r}")


def resolve_optimizer(
    optimizer: str | type,
    classes: dict[str, type],
    names: Sequence[str],
    *,
    unknown_message: str,
) -> tuple[str, type]:
    """Turn an optimizer name (case, ``-`` and ``_`` ignored) or class into ``(name, class)``.

    Parameters
    ----------
    optimizer
        A name from ``names`` or an :class:`ase.optimize.optimize.Optimizer` subclass.
    classes
        Lower-case key without ``-``/``_`` -> optimizer class.
    names
        The names shown in error messages.
    unknown_message
        Message for an unknown name; ``{optimizer!r}`` and ``{names}`` are filled in.
    """
    from ase.optimize.optimize import Optimizer

    if isinstance(optimizer, type) and issubclass(optimizer, Optimizer):
        return optimizer.__name__, optimizer
    if not isinstance(optimizer, str):
        raise InputError(
            f"optimizer must be a name ({', '.join(names)}) or an ase.optimize.Optimizer "
            f"subclass, not {type(optimizer).__name__}"
        )
    key = optimizer.strip().lower().replace("-", "").replace("_", "")
    if key not in classes:
        raise InputError(unknown_message.format(optimizer=optimizer, names=", ".join(names)))
    cls = classes[key]
    return cls.__name__, cls
