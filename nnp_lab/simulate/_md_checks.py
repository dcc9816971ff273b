"""Blow-up detection for MD: is the state after a step still physical?

After every step :class:`~nnp_lab.simulate.MolecularDynamics` checks that the energy and
forces are finite, that no atom feels a force above ``max_force`` (default
:data:`DEFAULT_MAX_FORCE` = 50 eV/Å, far above anything a sane structure at MD temperatures
has) and that the instantaneous temperature stays below ``max_temperature_K`` (default:
``max(10 × target, 3000 K)``, following the target when
:meth:`~nnp_lab.simulate.MolecularDynamics.set_temperature` changes it). The first violation
raises :class:`~nnp_lab.errors.SimulationError` naming the step, the cause and the trajectory
file, which is closed cleanly first and holds every frame recorded before the failure.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from ase import Atoms

from nnp_lab import validation

__all__ = [
    "DEFAULT_MAX_FORCE",
    "TEMPERATURE_LIMIT_FACTOR",
    "TEMPERATURE_LIMIT_FLOOR_K",
    "checked_temperature_limit",
    "default_temperature_limit",
    "instability",
    "unstable_message",
]

#: Default blow-up threshold on the largest atomic force, eV/Å.
DEFAULT_MAX_FORCE = 50.0
#: Default temperature limit: this many times the target temperature ...
TEMPERATURE_LIMIT_FACTOR = 10.0
#: ... but never below this many kelvin.
TEMPERATURE_LIMIT_FLOOR_K = 3000.0


def checked_temperature_limit(max_temperature_K: Any) -> float | None:
    """The ``max_temperature_K`` option: None (follow the target), ``math.inf`` (no check) or
    a positive number of kelvin."""
    if isinstance(max_temperature_K, float) and max_temperature_K == math.inf:
        return max_temperature_K
    return validation.number(
        "max_temperature_K", max_temperature_K, strict=True, allow_none=True, unit="K"
    )


def default_temperature_limit(target_K: float) -> float:
    """The temperature limit for a target when ``max_temperature_K`` is not given."""
    return max(TEMPERATURE_LIMIT_FACTOR * target_K, TEMPERATURE_LIMIT_FLOOR_K)


def instability(atoms: Atoms, max_force: float, max_temperature_K: float) -> str | None:
    """Why the state of ``atoms`` (its calculator's latest results) is unphysical, or None.

    Parameters
    ----------
    atoms
        The MD structure, with the results of the step just done.
    max_force
        Largest acceptable force norm, eV/Å.
    max_temperature_K
        Largest acceptable instantaneous temperature, K.
    """
    results = atoms.calc.results
    energy = results.get("energy")
    forces = results.get("forces")
    if energy is None or not np.isfinite(energy):
        return f"the potential returned a non-finite energy ({energy})"
    if forces is None or not np.all(np.isfinite(forces)):
        bad = np.flatnonzero(~np.all(np.isfinite(np.asarray(forces)), axis=1))
        return f"the potential returned non-finite forces on atoms {bad[:10].tolist()}"
    norms = np.linalg.norm(forces, axis=1)
    i = int(np.argmax(norms))
    if norms[i] > max_force:
        return (
            f"the force on atom {i} ({atoms.get_chemical_symbols()[i]}) is "
            f"{norms[i]:.1f} eV/Å, above max_force={max_force:g} eV/Å"
        )
    temperature = atoms.get_temperature()
    if not np.isfinite(temperature) or temperature > max_temperature_K:
        return (
            f"the temperature reached {temperature:.0f} K, above "
            f"max_temperature_K={max_temperature_K:g} K"
        )
    return None


def unstable_message(step: int, timestep_fs: float, cause: Any, kept_note: str) -> str:
    """The message of the :class:`~nnp_lab.errors.SimulationError` for a blown-up run.

    Parameters
    ----------
    step, timestep_fs
        Where it happened.
    cause
        What happened (a sentence, or the exception that stopped the integrator).
    kept_note
        Where the frames recorded so far are (``Run._kept_note()``; ends with a space).
    """
    return (
        f"MD became unstable at step {step} (t = {step * timestep_fs / 1000:.4f} ps): "
        f"{cause}. {kept_note}"
        f"Try: relax the structure first (nnp_lab.simulate.relax), a smaller timestep_fs "
        f"(now {timestep_fs:g}), or a model that covers this chemistry; if large "
        "forces or temperatures are expected, raise max_force= / max_temperature_K=."
    )
