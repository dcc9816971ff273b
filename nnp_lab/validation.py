"""Checks of user-supplied options, shared by every layer (the one home of these helpers).

Each takes ``(name, value, ...)``, returns the value in its canonical type and raises
:class:`~nnp_lab.errors.InputError` with the option's name, what was expected and what was
given. This module imports nothing of nnp_lab but the errors, so any layer may use it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, overload

import numpy as np

from nnp_lab.errors import InputError

__all__ = ["number", "integer", "choice", "number_list"]

_REAL = (int, float, np.integer, np.floating)
_INT = (int, np.integer)


@overload
def number(
    name: str,
    value: Any,
    *,
    minimum: float | None = ...,
    strict: bool = ...,
    allow_none: Literal[False] = ...,
    unit: str | None = ...,
) -> float: ...
@overload
def number(
    name: str,
    value: Any,
    *,
    minimum: float | None = ...,
    strict: bool = ...,
    allow_none: bool,
    unit: str | None = ...,
) -> float | None: ...
def number(
    name: str,
    value: Any,
    *,
    minimum: float | None = 0.0,
    strict: bool = False,
    allow_none: bool = False,
    unit: str | None = None,
) -> float | None:
    """A finite real number ``>= minimum`` (``> minimum`` with ``strict``), as a float.

    Parameters
    ----------
    name
        The option's name, for the message.
    value
        What the user passed (bools are refused: ``True`` is not a number of anything).
    minimum
        Smallest accepted value; None for no bound.
    strict
        Require ``value > minimum``.
    allow_none
        Accept None (returned as None).
    unit
        Unit named in the message, e.g. ``"K"``.
    """
    if value is None and allow_none:
        return None
    of = f" (in {unit})" if unit else ""
    if isinstance(value, bool) or not isinstance(value, _REAL) or not np.isfinite(value):
        raise InputError(f"{name} must be a finite number{of}, got {value!r}")
    if minimum is not None:
        if strict and not value > minimum:
            raise InputError(f"{name} must be > {minimum:g}{of}, got {value!r}")
        if not strict and value < minimum:
            raise InputError(f"{name} must be >= {minimum:g}{of}, got {value!r}")
    return float(value)


@overload
def integer(
    name: str, value: Any, *, minimum: int | None = ..., allow_none: Literal[False] = ...
) -> int: ...
@overload
def integer(
    name: str, value: Any, *, minimum: int | None = ..., allow_none: bool
) -> int | None: ...
def integer(
    name: str, value: Any, *, minimum: int | None = 1, allow_none: bool = False
) -> int | None:
    """An integer ``>= minimum`` (None: no bound), as an int."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, _INT):
        raise InputError(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise InputError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def choice(name: str, value: Any, choices: Mapping[str, str] | Sequence[str]) -> str:
    """One of ``choices`` (case and surrounding blanks ignored), in its canonical spelling.

    ``choices`` is a sequence of lower-case names, or a mapping of accepted spellings
    (aliases) to canonical names.
    """
    listed = list(dict.fromkeys(choices.values() if isinstance(choices, Mapping) else choices))
    if not isinstance(value, str):
        raise InputError(f"{name} must be one of {', '.join(listed)}; got {value!r}")
    key = value.strip().lower()
    if isinstance(choices, Mapping):
        if key in choices:
            return choices[key]
    elif key in choices:
        return key
    raise InputError(f"unknown {name} {value!r}; choose one of {', '.join(listed)}")


def number_list(name: str, value: Any, *, minimum: float | None = 0.0) -> list[float]:
    """None, False, 0 or () -> ``[]``; a number -> ``[number]``; a sequence -> its numbers.

    Every number must be finite and ``>= minimum`` (None: any finite number).
    """
    if value is None or value is False:
        return []
    if isinstance(value, _REAL) and not isinstance(value, bool):
        return [] if value == 0 else [number(name, value, minimum=minimum)]
    if isinstance(value, (str, bytes)):
        raise InputError(f"{name} must be a number or a list of numbers, got {value!r}")
    try:
        items = list(value)
    except TypeError:
        raise InputError(f"{name} must be a number or a list of numbers, got {value!r}") from None
    return [number(name, v, minimum=minimum) for v in items]
