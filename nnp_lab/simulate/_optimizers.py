"""ASE's optimizers by name: the one table that relax and NEB both choose from."""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from nnp_lab.errors import InputError

__all__ = ["OPTIMIZERS", "NEB_OPTIMIZERS", "resolve_optimizer"]

#: Every optimizer nnp_lab offers by name -> (module, class) in ASE.
_TABLE = {
    "FIRE": ("ase.optimize", "FIRE"),
    "FIRE2": ("ase.optimize.fire2", "FIRE2"),
    "BFGS": ("ase.optimize", "BFGS"),
    "LBFGS": ("ase.optimize", "LBFGS"),
    "BFGSLineSearch": ("ase.optimize", "BFGSLineSearch"),
    "GPMin": ("ase.optimize", "GPMin"),
    "MDMin": ("ase.optimize", "MDMin"),
}

#: Optimizer names accepted by :func:`~nnp_lab.simulate.relax` (case-insensitive).
OPTIMIZERS = ("FIRE", "FIRE2", "BFGS", "LBFGS", "BFGSLineSearch", "GPMin")

#: Optimizer names accepted by :func:`~nnp_lab.simulate.neb`: line-search optimizers do not
#: suit a band (it has no single energy to search along).
NEB_OPTIMIZERS = ("FIRE", "FIRE2", "BFGS", "LBFGS", "MDMin")


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "").replace("_", "")


def resolve_optimizer(
    optimizer: str | type, names: Sequence[str], *, what: str = "optimizer", hint: str = ""
) -> tuple[str, type]:
    """Turn an optimizer name (case, ``-`` and ``_`` ignored) or class into ``(name, class)``.

    Parameters
    ----------
    optimizer
        One of ``names`` or an :class:`ase.optimize.optimize.Optimizer` subclass.
    names
        The names accepted here (a subset of the table above).
    what
        What the optimizer is for, in the error message (``"optimizer"``, ``"NEB optimizer"``).
    hint
        Extra advice appended to the message for an unknown name.
    """
    from ase.optimize.optimize import Optimizer

    if isinstance(optimizer, type) and issubclass(optimizer, Optimizer):
        return optimizer.__name__, optimizer
    if not isinstance(optimizer, str):
        raise InputError(
            f"{what} must be a name ({', '.join(names)}) or an ase.optimize.Optimizer "
            f"subclass, not {type(optimizer).__name__}"
        )
    by_key = {_key(name): name for name in names}
    name = by_key.get(_key(optimizer))
    if name is None:
        raise InputError(
            f"unknown {what} {optimizer!r}; choose one of {', '.join(names)} "
            f"(case-insensitive), or pass an ase.optimize.Optimizer subclass{hint}"
        )
    module, cls = _TABLE[name]
    return name, getattr(importlib.import_module(module), cls)
