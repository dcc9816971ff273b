"""Exceptions raised by nnp_lab.

Every error raised for bad user input is a :class:`ValueError` subclass whose message says
what was wrong and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "InputError",
    "UnknownModelError",
    "UncoveredElementsError",
    "StructureError",
    "SimulationError",
]


class InputError(ValueError):
    """Bad user input; the message says what was wrong and how to fix it."""


class UnknownModelError(InputError):
    """A potential name that is not registered (the message lists the registered names)."""


class UncoveredElementsError(InputError):
    """The structure contains elements the potential was not trained on."""


class StructureError(InputError):
    """A structure that cannot be evaluated (empty, NaN positions, overlapping atoms, bad cell)."""


class SimulationError(RuntimeError):
    """A run that became unphysical (NaN energies, exploding forces); its trajectory is kept.

    Attributes
    ----------
    result : object or None
        The run's partial result up to the last good step (a ``RelaxResult``, ``MDResult``
        or ``NEBResult``), attached by the run that raised; None when raised elsewhere.
    """

    result: object | None = None
