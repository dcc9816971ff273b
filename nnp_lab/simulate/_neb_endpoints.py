"""NEB endpoints: can two structures be joined by a band, and relaxing them first."""

from __future__ import annotations

import logging
import warnings

import numpy as np
from ase import Atoms

from nnp_lab.errors import InputError
from nnp_lab.potentials import Potential
from nnp_lab.simulate._keywords import user_stacklevel

__all__ = ["check_endpoints", "relaxed_endpoint"]

logger = logging.getLogger(__name__)


def check_endpoints(initial: Atoms, final: Atoms) -> None:
    """Raise :class:`~nnp_lab.errors.InputError` unless two structures can be NEB endpoints.

    NEB interpolates atom ``i`` of the initial state to atom ``i`` of the final state, so both
    must hold the same atoms in the same order, with the same periodicity and the same cell.

    Parameters
    ----------
    initial, final
        The two endpoint structures (not modified).
    """
    for label, atoms in (("initial", initial), ("final", final)):
        if not isinstance(atoms, Atoms):
            raise InputError(
                f"the {label} state must be an ase.Atoms, got {type(atoms).__name__}; build it "
                "with nnp_lab.build or ase.io.read"
            )
    fix = (
        "NEB endpoints must contain the same atoms in the same order; build the final state "
        "from a copy of the initial one and move atoms (final = initial.copy(); "
        "final.positions[i] = ...)"
    )
    if len(initial) != len(final):
        raise InputError(
            f"the initial state has {len(initial)} atoms ({initial.get_chemical_formula()}) but "
            f"the final state has {len(final)} ({final.get_chemical_formula()}). {fix}"
        )
    zi, zf = initial.numbers, final.numbers
    if np.any(zi != zf):
        si, sf = initial.get_chemical_symbols(), final.get_chemical_symbols()
        if sorted(zi.tolist()) != sorted(zf.tolist()):
            raise InputError(
                f"the endpoints have different compositions: initial "
                f"{initial.get_chemical_formula()}, final {final.get_chemical_formula()}. {fix}"
            )
        bad = np.flatnonzero(zi != zf)
        shown = ", ".join(f"{i} ({si[i]} vs {sf[i]})" for i in bad[:5])
        raise InputError(
            f"the endpoints have the same elements but in a different order: atoms {shown}"
            f"{' ...' if len(bad) > 5 else ''} differ (initial vs final). {fix}; to reorder "
            "an existing final state use final = final[order] with the index array that "
            "maps each initial atom to its final counterpart"
        )
    if np.any(initial.pbc != final.pbc):
        raise InputError(
            f"the endpoints have different periodicity: pbc {initial.pbc.tolist()} (initial) vs "
            f"{final.pbc.tolist()} (final); set final.pbc = initial.pbc"
        )
    ci, cf = np.asarray(initial.cell), np.asarray(final.cell)
    diff = np.abs(ci - cf).max(axis=1)
    bad_axes = ["abc"[i] for i in range(3) if initial.pbc[i] and diff[i] > 1e-6]
    if bad_axes:
        raise InputError(
            f"the endpoints have different cells along the periodic direction(s) "
            f"{', '.join(bad_axes)} (largest difference {diff.max():.3g} Å); NEB needs one "
            "fixed cell. If the difference is just noise from a separate relaxation, use "
            "final.set_cell(initial.cell, scale_atoms=False); a real volume change needs a "
            "variable-cell method, which this NEB does not do"
        )


def relaxed_endpoint(label: str, atoms: Atoms, potential: Potential, fmax: float) -> Atoms:
    """``atoms`` relaxed (positions only, FIRE, up to 500 steps) to ``fmax``, without a
    calculator; warns when it does not converge (the NEB then continues from it).

    Parameters
    ----------
    label
        ``"initial"`` or ``"final"``, for the messages.
    atoms
        The endpoint (not modified).
    potential
        The NEB's potential.
    fmax
        The NEB's force target, eV/Å.
    """
    from nnp_lab.simulate._relax import relax

    res = relax(atoms, potential, fmax=fmax, steps=500, optimizer="FIRE")
    if not res.converged:
        warnings.warn(
            f"the {label} state did not relax to fmax {fmax} eV/Å "
            f"(reached {res.fmax:.3f}); the NEB continues from it",
            stacklevel=user_stacklevel(),
        )
    relaxed = res.atoms.copy()
    relaxed.calc = None
    logger.info("relaxed the %s state: E = %.6f eV", label, res.energy)
    return relaxed
