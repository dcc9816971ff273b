"""MD options: the accepted ensembles, thermostats and barostats, their defaults, and the
checks of the settings that go together (which thermostat and pressure an ensemble takes).

:class:`~nnp_lab.simulate.MolecularDynamics` validates its keywords here; the integrators
these settings select are built in :mod:`nnp_lab.simulate._integrators`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from ase import Atoms

from nnp_lab import validation
from nnp_lab.errors import InputError
from nnp_lab.simulate._keywords import RenamedKeyword, user_stacklevel

__all__ = [
    "ENSEMBLES",
    "THERMOSTATS",
    "THERMOSTAT_ALIASES",
    "BAROSTATS",
    "VELOCITIES",
    "DEFAULT_FRICTION",
    "DEFAULT_TAUT_FS",
    "DEFAULT_TAUP_FS",
    "FRICTION",
    "ensemble_settings",
    "checked_seed",
]

#: Accepted ``ensemble`` values.
ENSEMBLES = ("nve", "nvt", "npt")
#: Accepted ``thermostat`` values (``"csvr"`` is an alias of ``"bussi"``; ``"nhc"`` and
#: ``"nosehoover"`` of ``"nose-hoover"``).
THERMOSTATS = ("langevin", "bussi", "nose-hoover", "berendsen")
#: Every accepted spelling -> the canonical thermostat name.
THERMOSTAT_ALIASES = {
    "langevin": "langevin",
    "bussi": "bussi",
    "csvr": "bussi",
    "nose-hoover": "nose-hoover",
    "nosehoover": "nose-hoover",
    "nose_hoover": "nose-hoover",
    "nhc": "nose-hoover",
    "nose-hoover-chain": "nose-hoover",
    "berendsen": "berendsen",
}
#: Accepted ``barostat`` values (NPT).
BAROSTATS = ("isotropic", "anisotropic")
#: Accepted ``velocities`` values.
VELOCITIES = ("auto", "thermalize", "keep")

#: Default Langevin friction in 1/fs (0.01 fs⁻¹ = 10 ps⁻¹, i.e. a 100 fs relaxation time).
DEFAULT_FRICTION = 0.01
#: Default thermostat time constant in fs (Bussi, Berendsen, Nose–Hoover chain ``tdamp``).
DEFAULT_TAUT_FS = 100.0
#: Default barostat time constant in fs (MTK ``pdamp``).
DEFAULT_TAUP_FS = 1000.0

#: ``friction=`` -> ``friction_per_fs=`` (same value; ASE's ``friction`` is in ASE units).
FRICTION = RenamedKeyword("friction", "friction_per_fs", "the same value, in 1/fs")


def _thermostat(ensemble: str, thermostat: str | None) -> str | None:
    """The canonical thermostat of an ensemble (None for NVE, with a warning if one was given)."""
    if ensemble == "nve":
        if thermostat is not None:
            warnings.warn(
                f"thermostat={thermostat!r} is ignored for ensemble='nve'",
                stacklevel=user_stacklevel(),
            )
        return None
    if thermostat is None:
        thermostat = "langevin" if ensemble == "nvt" else "nose-hoover"
    return validation.choice("thermostat", thermostat, THERMOSTAT_ALIASES)


def _check_npt(atoms: Atoms, thermostat: str | None, pressure_GPa: float | None) -> float:
    """The pressure of a valid NPT set-up, in GPa."""
    if thermostat != "nose-hoover":
        raise InputError(
            f"ensemble='npt' uses ASE's MTK barostat with a Nose–Hoover chain "
            f"thermostat; thermostat={thermostat!r} is not available for NPT. Pass "
            "thermostat='nose-hoover' or leave it None"
        )
    if pressure_GPa is None:
        raise InputError(
            "ensemble='npt' needs pressure_GPa= (e.g. pressure_GPa=1e-4 for ambient "
            "pressure, 1 bar)"
        )
    pressure_GPa = validation.number("pressure_GPa", pressure_GPa, minimum=None, unit="GPa")
    if not bool(np.all(atoms.pbc)):
        raise InputError(
            f"ensemble='npt' needs a structure periodic in all three directions, but "
            f"pbc is {atoms.pbc.tolist()}; use ensemble='nvt' for molecules, clusters "
            "and slabs"
        )
    if atoms.constraints:
        raise InputError(
            "ensemble='npt' (ASE's MTK integrators) does not support constraints; "
            "remove them (del atoms.constraints) or use ensemble='nvt'"
        )
    return pressure_GPa


def _fixes_atoms(atoms: Atoms) -> bool:
    """Whether a constraint other than ``FixCom`` (which only holds the centre of mass, a
    motion the chain conserves anyway) restricts the atoms."""
    from ase.constraints import FixCom

    return any(not isinstance(c, FixCom) for c in atoms.constraints)


def ensemble_settings(
    atoms: Atoms,
    ensemble: str,
    thermostat: str | None,
    pressure_GPa: float | None,
    temperature_K: float,
) -> tuple[str | None, float | None]:
    """The thermostat (canonical name, or None for NVE) and pressure (GPa) of an ensemble.

    Raises
    ------
    InputError
        A thermostat or pressure the ensemble does not take, NPT without a pressure, a 3D
        periodic cell or with constraints, a Nose–Hoover chain with constraints, or
        Nose–Hoover at 0 K.
    """
    thermostat = _thermostat(ensemble, thermostat)
    if ensemble == "npt":
        pressure_GPa = _check_npt(atoms, thermostat, pressure_GPa)
    elif pressure_GPa is not None:
        raise InputError(f"pressure_GPa only applies to ensemble='npt' (got ensemble={ensemble!r})")
    if ensemble == "nvt" and thermostat == "nose-hoover" and _fixes_atoms(atoms):
        # ASE 3.29's chain integrates its own copy of the momenta, where fixed atoms gather
        # momentum from their forces and the thermostat counts it as heat: a Cu(111) slab with
        # half its atoms fixed cools to ~0.01 K at a 300 K target.
        raise InputError(
            "thermostat='nose-hoover' (ASE's NoseHooverChainNVT) does not handle constraints: "
            "it counts the fixed atoms' momenta as heat and drives the moving atoms to the "
            "wrong temperature; use thermostat='bussi' (canonical, constraint-aware) or "
            "'langevin'"
        )
    if thermostat == "nose-hoover" and temperature_K <= 0:
        raise InputError(
            "the Nose–Hoover thermostat needs temperature_K > 0; use thermostat='langevin' "
            "to quench towards 0 K"
        )
    return thermostat, pressure_GPa


def checked_seed(seed: Any) -> int:
    """``seed`` as an int, or a fresh one (recorded by the run) when it is None."""
    if seed is None:
        entropy = np.random.SeedSequence().entropy
        assert isinstance(entropy, int)  # a SeedSequence made without entropy draws an int
        return entropy
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative integer or None, got {seed!r}")
    return int(seed)
