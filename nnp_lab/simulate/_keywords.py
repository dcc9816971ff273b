"""Keyword plumbing shared by the runs: renamed keywords and wrapper-to-run forwarding.

- :class:`RenamedKeyword`: a keyword whose name changed (usually to put its unit in the
  name) keeps working for one release with a :class:`DeprecationWarning`;
  :data:`PRESSURE_BAR` (``pressure_bar=`` -> ``pressure_GPa=``) is the one shared by
  :class:`~nnp_lab.simulate.Relaxation` and :class:`~nnp_lab.simulate.MolecularDynamics`.
- :func:`forwarded`: the function forms (``relax``, ``md``, ``neb``) name the common keywords
  in their own signatures, for users and IDEs; this passes them on to the run class without
  writing the list a third time.
"""

from __future__ import annotations

import inspect
import sys
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any

from nnp_lab import validation
from nnp_lab.errors import InputError

__all__ = ["RenamedKeyword", "PRESSURE_BAR", "GPA_PER_BAR", "forwarded", "user_stacklevel"]

#: 1 bar = 1e5 Pa = 1e-4 GPa.
GPA_PER_BAR = 1e-4


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning issued by the *caller* of this function point
    at the first frame outside nnp_lab (the user's ``relax(...)`` or ``Relaxation(...)``
    line, however many nnp_lab functions lie between)."""
    frame: FrameType | None = sys._getframe(1)  # the function that will call warnings.warn
    level = 1
    while frame is not None:
        name = str(frame.f_globals.get("__name__", ""))
        if name != "nnp_lab" and not name.startswith("nnp_lab."):
            break
        frame = frame.f_back
        level += 1
    return level


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class RenamedKeyword:
    """A keyword renamed from ``old`` to ``new``; the old name works for one release.

    Attributes
    ----------
    old, new : str
        The deprecated and the current keyword.
    note : str
        How an old value maps to a new one, for the warning (``"the same value, in 1/fs"``).
    convert : callable
        Old value -> new value (identity by default); it may raise
        :class:`~nnp_lab.errors.InputError` for a bad old value.
    """

    old: str
    new: str
    note: str
    convert: Callable[[Any], Any] = _same

    def resolve(self, owner: str, old_value: Any, new_value: Any, default: Any) -> Any:
        """The value to use: ``new_value``, or the converted ``old_value`` with a warning.

        Parameters
        ----------
        owner
            The class or function the keywords were given to (for the messages).
        old_value
            The deprecated keyword's value; None when it was not given.
        new_value, default
            The new keyword's value and its default; a value other than the default counts
            as given.

        Raises
        ------
        InputError
            Both keywords were given.
        """
        if old_value is None:
            return new_value
        if new_value != default:
            raise InputError(
                f"{owner}() got both {self.old}= and {self.new}=; pass only {self.new}= "
                f"({self.old}= is deprecated; {self.note})"
            )
        warnings.warn(
            f"{owner}({self.old}=...) is deprecated: use {self.new}= ({self.note})",
            DeprecationWarning,
            stacklevel=user_stacklevel(),
        )
        return self.convert(old_value)


def _bar_to_GPa(pressure_bar: Any) -> float:
    bar = validation.number("pressure_bar", pressure_bar, minimum=None, unit="bar")
    return bar * GPA_PER_BAR


#: ``pressure_bar=`` (bar) -> ``pressure_GPa=`` (GPa), for relaxations and MD.
PRESSURE_BAR = RenamedKeyword(
    "pressure_bar", "pressure_GPa", "in GPa: 1 bar = 1e-4 GPa", convert=_bar_to_GPa
)


def forwarded(
    run_cls: type,
    arguments: Mapping[str, Any],
    options: Mapping[str, Any] | None = None,
    *,
    what: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``run_cls`` from a wrapper function's own keywords.

    Parameters
    ----------
    run_cls
        The run class the wrapper builds.
    arguments
        The wrapper's ``locals()`` at its start: every keyword-only parameter of
        ``run_cls`` found there is passed on.
    options
        The wrapper's ``**options``, passed on as they are.
    what
        When given, options that ``run_cls`` does not take raise
        :class:`~nnp_lab.errors.InputError` naming the ``what`` option(s) and listing the
        accepted ones (otherwise the class raises its usual ``TypeError``).
    """
    params = inspect.signature(run_cls).parameters
    accepted = [name for name, p in params.items() if p.kind is p.KEYWORD_ONLY]
    options = dict(options or {})
    if what is not None:
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise InputError(f"unknown {what} option(s) {unknown}; accepted: {', '.join(accepted)}")
    return {**{name: arguments[name] for name in accepted if name in arguments}, **options}
