"""Molecular dynamics (NVE, NVT, NPT) with ASE's integrators, streamed as it runs.

:func:`md` is the one-call entry point; :class:`MolecularDynamics` is the run object behind it.
The integrators are ASE's; this module chooses and configures them, seeds every random number
generator (same ``seed`` → same trajectory), emits a frozen :class:`MDStep` every ``interval``
steps, writes those frames to the trajectory as they are produced, lets the target temperature
change while the run goes on (:meth:`MolecularDynamics.set_temperature`, e.g. from a slider),
and stops with a :class:`~nnp_lab.errors.SimulationError` when the run blows up.

Ensembles and the ASE classes used
----------------------------------
- ``ensemble="nve"``: :class:`ase.md.verlet.VelocityVerlet`.
- ``ensemble="nvt"`` (default) with ``thermostat=``

  - ``"langevin"`` (default): :class:`ase.md.langevin.Langevin`, ``friction`` in 1/fs;
  - ``"bussi"``: :class:`ase.md.bussi.Bussi` (stochastic velocity rescaling), ``taut_fs``;
  - ``"nose-hoover"``: :class:`ase.md.nose_hoover_chain.NoseHooverChainNVT`, ``taut_fs``;
  - ``"berendsen"``: :class:`ase.md.nvtberendsen.NVTBerendsen` (quick equilibration only:
    it does not sample the canonical ensemble), ``taut_fs``.

- ``ensemble="npt"``: Martyna–Tobias–Klein barostat with a Nose–Hoover chain thermostat,
  :class:`ase.md.nose_hoover_chain.IsotropicMTKNPT` (``barostat="isotropic"``, default:
  the volume fluctuates, the cell shape is kept) or
  :class:`ase.md.nose_hoover_chain.MTKNPT` (``barostat="anisotropic"``: full cell
  fluctuations); ``pressure_bar`` (converted to eV/Å³), ``taut_fs``, ``taup_fs``.

Blow-up detection
-----------------
After every step the run checks that the energy and forces are finite, that no atom feels a
force above ``max_force`` (default :data:`DEFAULT_MAX_FORCE` = 50 eV/Å, far above anything a
sane structure at MD temperatures has) and that the instantaneous temperature stays below
``max_temperature_K`` (default: ``max(10 × target, 3000 K)``, following the target when
:meth:`~MolecularDynamics.set_temperature` changes it). The first violation raises
:class:`~nnp_lab.errors.SimulationError` naming the step, the cause and the trajectory file,
which is closed cleanly first and holds every frame recorded before the failure.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms, units

from nnp_lab.errors import InputError, SimulationError, StructureError
from nnp_lab.potentials import Potential, has_stress
from nnp_lab.simulate._run import (
    Event,
    Run,
    RunResult,
    frozen_array,
    run_to_end,
    snapshot,
)

__all__ = [
    "ENSEMBLES",
    "THERMOSTATS",
    "DEFAULT_FRICTION",
    "DEFAULT_TAUT_FS",
    "DEFAULT_TAUP_FS",
    "DEFAULT_MAX_FORCE",
    "MDStep",
    "MDResult",
    "MolecularDynamics",
    "md",
]

logger = logging.getLogger(__name__)

#: Accepted ``ensemble`` values.
ENSEMBLES = ("nve", "nvt", "npt")
#: Accepted ``thermostat`` values (``"csvr"`` is an alias of ``"bussi"``; ``"nhc"`` and
#: ``"nosehoover"`` of ``"nose-hoover"``).
THERMOSTATS = ("langevin", "bussi", "nose-hoover", "berendsen")
_THERMOSTAT_ALIASES = {
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
_BAROSTATS = ("isotropic", "anisotropic")

#: Default Langevin friction in 1/fs (0.01 fs⁻¹ = 10 ps⁻¹, i.e. a 100 fs relaxation time).
DEFAULT_FRICTION = 0.01
#: Default thermostat time constant in fs (Bussi, Berendsen, Nose–Hoover chain ``tdamp``).
DEFAULT_TAUT_FS = 100.0
#: Default barostat time constant in fs (MTK ``pdamp``).
DEFAULT_TAUP_FS = 1000.0
#: Default blow-up threshold on the largest atomic force, eV/Å.
DEFAULT_MAX_FORCE = 50.0
#: Default temperature limit: this many times the target temperature ...
TEMPERATURE_LIMIT_FACTOR = 10.0
#: ... but never below this many kelvin.
TEMPERATURE_LIMIT_FLOOR_K = 3000.0

#: Options of :class:`MolecularDynamics` that :func:`md` accepts through ``**options``.
_OPTIONS = (
    "friction",
    "taut_fs",
    "taup_fs",
    "barostat",
    "velocities",
    "max_force",
    "max_temperature_K",
)


@dataclass(frozen=True)
class MDStep(Event):
    """One recorded MD frame (every ``interval`` steps, plus step 0 and the last step).

    ``energy`` (inherited) is the potential energy in eV.

    Attributes
    ----------
    time_ps : float
        Simulated time in ps.
    temperature_K : float
        Instantaneous kinetic temperature in K.
    kinetic_energy : float
        Kinetic energy in eV.
    total_energy : float
        Potential plus kinetic energy in eV (conserved in NVE).
    target_temperature_K : float or None
        Thermostat target at this step (None for NVE).
    pressure_GPa : float or None
        Instantaneous pressure including the kinetic term, GPa (None without a periodic cell).
    velocities : numpy.ndarray or None
        Velocities in ASE units (Å / ASE time), shape ``(n, 3)``; read-only.
    """

    time_ps: float
    temperature_K: float
    kinetic_energy: float
    total_energy: float
    target_temperature_K: float | None = None
    pressure_GPa: float | None = None
    velocities: np.ndarray | None = None


@dataclass(repr=False)
class MDResult(RunResult):
    """Outcome of a molecular dynamics run.

    Attributes
    ----------
    atoms : ase.Atoms
        Final structure (new object) with velocities and single-point energy/forces/stress.
    frames : list of ase.Atoms
        Recorded frames (every ``interval`` steps, step 0 first), with velocities and
        single-point results; ``frame.info`` holds ``step`` and ``time_ps``.
    time_ps, potential_energy, kinetic_energy, total_energy, temperature_K : numpy.ndarray
        One value per recorded frame (ps, eV, eV, eV, K).
    pressure_GPa : numpy.ndarray
        Instantaneous pressure per frame in GPa, kinetic term included (NaN when the
        structure has no periodic cell).
    volume : numpy.ndarray
        Cell volume per frame in Å³ (NaN when the structure has no periodic cell).
    n_steps : int
        MD steps done.
    trajectory, stopped, provenance
        See :class:`~nnp_lab.simulate._run.RunResult`.
    """

    atoms: Atoms
    frames: list[Atoms]
    time_ps: np.ndarray
    potential_energy: np.ndarray
    kinetic_energy: np.ndarray
    total_energy: np.ndarray
    temperature_K: np.ndarray
    n_steps: int
    pressure_GPa: np.ndarray = field(default_factory=lambda: np.zeros(0))
    volume: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def summary(self) -> str:
        """A few lines describing the run (ensemble, length, mean temperature, drift)."""
        params = self.provenance.get("parameters", {})
        model = self.provenance.get("model", "?")
        n = len(self.atoms)
        lines = [
            f"MD of {self.atoms.get_chemical_formula()} ({n} atoms) with {model}: "
            f"{params.get('ensemble', '?').upper()}"
            + (f"/{params['thermostat']}" if params.get("thermostat") else "")
            + f", {self.n_steps} steps of {params.get('timestep_fs', '?')} fs"
            + (" (stopped early)" if self.stopped else ""),
        ]
        if len(self.time_ps):
            half = len(self.temperature_K) // 2
            lines.append(
                f"  {self.time_ps[-1]:.3f} ps simulated; T mean over 2nd half "
                f"{np.mean(self.temperature_K[half:]):.1f} K "
                f"(target {params.get('temperature_K', '?')} K)"
            )
            drift = (self.total_energy[-1] - self.total_energy[0]) / n
            lines.append(f"  total energy change {drift:+.2e} eV/atom")
        if self.trajectory is not None:
            lines.append(f"  trajectory: {self.trajectory} ({len(self.frames)} frames)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        t = float(self.time_ps[-1]) if len(self.time_ps) else 0.0
        return (
            f"MDResult({self.atoms.get_chemical_formula()}, n_steps={self.n_steps}, "
            f"time={t:.3f} ps, frames={len(self.frames)}, stopped={self.stopped}, "
            f"trajectory={None if self.trajectory is None else str(self.trajectory)!r})"
        )

    def __str__(self) -> str:
        return self.summary()


# ----------------------------------------------------------------------------------------
def _number(name: str, value: Any, *, minimum: float | None = 0.0, strict: bool = False,
            integer: bool = False, allow_none: bool = False) -> Any:
    if value is None and allow_none:
        return None
    types: tuple = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, types) or not np.isfinite(value):
        kind = "an integer" if integer else "a finite number"
        raise InputError(f"{name} must be {kind}, got {value!r}")
    if minimum is not None:
        if strict and not value > minimum:
            raise InputError(f"{name} must be > {minimum:g}, got {value!r}")
        if not strict and value < minimum:
            raise InputError(f"{name} must be >= {minimum:g}, got {value!r}")
    return int(value) if integer else float(value)


def _choice(name: str, value: Any, choices: dict[str, str] | tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise InputError(f"{name} must be one of {list(dict.fromkeys(choices))}, got {value!r}")
    key = value.strip().lower()
    if isinstance(choices, dict):
        if key in choices:
            return choices[key]
        listed = list(dict.fromkeys(choices.values()))
    else:
        if key in choices:
            return key
        listed = list(choices)
    raise InputError(f"unknown {name} {value!r}; choose one of {', '.join(listed)}")


def _retarget_nhc(thermostat: Any, ratio: float) -> None:
    """Scale a NoseHooverChainThermostat's kT and masses by ``ratio`` (ASE 3.29 internals).

    The chain masses Q are proportional to kT; scaling the chain momenta by the same ratio
    keeps the chain velocities p/Q continuous, so the change is smooth.
    """
    thermostat._kT *= ratio
    thermostat._Q = thermostat._Q * ratio
    thermostat._p_eta = thermostat._p_eta * ratio


def _retarget_barostat(barostat: Any, ratio: float) -> None:
    """Scale an MTK barostat's kT, cell mass W and chain masses R by ``ratio``."""
    barostat._kT *= ratio
    barostat._W = barostat._W * ratio
    barostat._R = barostat._R * ratio
    barostat._p_xi = barostat._p_xi * ratio


class MolecularDynamics(Run):
    """A molecular dynamics run (NVE, NVT or NPT) that yields an :class:`MDStep` per frame.

    The caller's Atoms is never modified: the run works on a copy (constraints kept).

    Parameters
    ----------
    atoms
        Starting structure (not modified).
    potential
        A :class:`~nnp_lab.potentials.Potential`, a registered name or None (default model).
    ensemble
        ``"nve"``, ``"nvt"`` (default) or ``"npt"`` (case-insensitive).
    temperature_K
        Target temperature in K (NVT/NPT); for every ensemble also the temperature of the
        Maxwell–Boltzmann velocities drawn at the start.
    timestep_fs
        Time step in fs (1 fs is safe with hydrogen; 2–5 fs for heavy atoms only).
    steps
        Number of MD steps.
    thermostat
        NVT: ``"langevin"`` (default), ``"bussi"``, ``"nose-hoover"`` or ``"berendsen"``.
        NPT: ``"nose-hoover"`` (the MTK barostat's chain thermostat; the default there).
        Ignored (with a warning) for NVE.
    pressure_bar
        External pressure in bar; required for, and only allowed with, ``ensemble="npt"``.
    interval
        Record (event + trajectory frame) every ``interval`` steps; step 0 and the last step
        are always recorded.
    trajectory
        ``.traj`` path to write the recorded frames to while the run goes on.
    seed
        Seed of the one :func:`numpy.random.default_rng` used for the initial velocities and
        the stochastic thermostats: the same seed gives the same trajectory. None draws a
        fresh seed, which is stored in ``provenance["parameters"]["seed"]`` so the run can be
        repeated.
    friction
        Langevin friction in 1/fs (default 0.01 fs⁻¹ = 10 ps⁻¹, 100 fs relaxation time; use
        ~0.001–0.002 fs⁻¹ for dynamics closer to NVE, e.g. diffusion coefficients).
    taut_fs
        Thermostat time constant in fs for Bussi, Berendsen and Nose–Hoover (``tdamp``);
        default 100 fs.
    taup_fs
        Barostat time constant in fs (MTK ``pdamp``); default 1000 fs.
    barostat
        NPT only: ``"isotropic"`` (volume fluctuates, shape kept; default) or
        ``"anisotropic"`` (full cell fluctuations).
    velocities
        ``"auto"`` (default): keep the input's velocities if it has non-zero ones (e.g.
        continuing from a previous ``MDResult.atoms``), otherwise draw Maxwell–Boltzmann
        velocities at ``temperature_K``; ``"thermalize"``: always draw new ones;
        ``"keep"``: always use the input's (zero if it has none). Drawn velocities have the
        centre-of-mass motion removed (and, for non-periodic structures, the rotation) when
        the structure has no constraints.
    max_force
        Blow-up threshold on the largest atomic force in eV/Å (default 50).
    max_temperature_K
        Blow-up threshold on the instantaneous temperature in K (default
        ``max(10 × target, 3000 K)``).

    Raises
    ------
    InputError
        Unknown ensemble/thermostat, bad numbers, NPT without ``pressure_bar`` or without a
        3D periodic cell, or a structure the potential cannot evaluate.
    """

    kind = "md"

    def __init__(
        self,
        atoms: Atoms,
        potential: Potential | str | None = None,
        *,
        ensemble: str = "nvt",
        temperature_K: float = 300.0,
        timestep_fs: float = 1.0,
        steps: int = 1000,
        thermostat: str | None = None,
        pressure_bar: float | None = None,
        interval: int = 10,
        trajectory: str | os.PathLike | None = None,
        seed: int | None = None,
        friction: float = DEFAULT_FRICTION,
        taut_fs: float = DEFAULT_TAUT_FS,
        taup_fs: float = DEFAULT_TAUP_FS,
        barostat: str = "isotropic",
        velocities: str = "auto",
        max_force: float = DEFAULT_MAX_FORCE,
        max_temperature_K: float | None = None,
    ) -> None:
        if not isinstance(atoms, Atoms):
            raise InputError(
                f"md needs an ase.Atoms, got {type(atoms).__name__}; build one with "
                "nnp_lab.build or ase.io.read"
            )
        ensemble = _choice("ensemble", ensemble, ENSEMBLES)
        temperature_K = _number("temperature_K", temperature_K)
        timestep_fs = _number("timestep_fs", timestep_fs, strict=True)
        steps = _number("steps", steps, integer=True)
        interval = _number("interval", interval, minimum=1, integer=True)
        friction = _number("friction", friction, strict=True)
        taut_fs = _number("taut_fs", taut_fs, strict=True)
        taup_fs = _number("taup_fs", taup_fs, strict=True)
        max_force = _number("max_force", max_force, strict=True)
        if not (isinstance(max_temperature_K, float) and max_temperature_K == math.inf):
            # inf switches the temperature check off; anything else must be a finite number
            max_temperature_K = _number(
                "max_temperature_K", max_temperature_K, strict=True, allow_none=True
            )
        velocities = _choice("velocities", velocities, ("auto", "thermalize", "keep"))
        barostat = _choice("barostat", barostat, _BAROSTATS)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or seed < 0):
            raise InputError(f"seed must be a non-negative integer or None, got {seed!r}")
        if timestep_fs > 10:
            warnings.warn(
                f"timestep_fs={timestep_fs} is very large; atomic MD needs 0.5–5 fs",
                stacklevel=2,
            )

        if ensemble == "nve":
            if thermostat is not None:
                warnings.warn(
                    f"thermostat={thermostat!r} is ignored for ensemble='nve'", stacklevel=2
                )
            thermostat = None
        else:
            if thermostat is None:
                thermostat = "langevin" if ensemble == "nvt" else "nose-hoover"
            thermostat = _choice("thermostat", thermostat, _THERMOSTAT_ALIASES)
        if ensemble == "npt":
            if thermostat != "nose-hoover":
                raise InputError(
                    f"ensemble='npt' uses ASE's MTK barostat with a Nose–Hoover chain "
                    f"thermostat; thermostat={thermostat!r} is not available for NPT. Pass "
                    "thermostat='nose-hoover' or leave it None"
                )
            if pressure_bar is None:
                raise InputError(
                    "ensemble='npt' needs pressure_bar= (e.g. pressure_bar=1.0 for ambient "
                    "pressure)"
                )
            pressure_bar = _number("pressure_bar", pressure_bar, minimum=None)
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
        elif pressure_bar is not None:
            raise InputError(
                f"pressure_bar only applies to ensemble='npt' (got ensemble={ensemble!r})"
            )
        if thermostat == "nose-hoover" and temperature_K <= 0:
            raise InputError(
                "the Nose–Hoover thermostat needs temperature_K > 0; use thermostat='langevin' "
                "to quench towards 0 K"
            )

        super().__init__(potential, trajectory=trajectory)
        self.potential.check(atoms)

        self.atoms = atoms.copy()
        self.atoms.calc = self.potential.calculator()
        if self.atoms.get_number_of_degrees_of_freedom() <= 0:
            raise InputError("every atom is fixed by constraints; nothing can move in MD")

        self.ensemble = ensemble
        self.thermostat = thermostat
        self.barostat = barostat if ensemble == "npt" else None
        self._target_T = float(temperature_K)
        self._applied_T = float(temperature_K)
        self.timestep_fs = timestep_fs
        self.steps = steps
        self.interval = interval
        self.pressure_bar = pressure_bar
        self.friction = friction
        self.taut_fs = taut_fs
        self.taup_fs = taup_fs
        self.max_force = max_force
        self._max_temperature_K = max_temperature_K
        if seed is None:
            seed = int(np.random.SeedSequence().entropy)
        self.seed = int(seed)
        self._rng = np.random.default_rng(self.seed)

        self.velocities = self._init_velocities(velocities, temperature_K)
        if thermostat == "bussi" and self.atoms.get_kinetic_energy() <= 1e-12:
            raise InputError(
                "thermostat='bussi' cannot start from zero kinetic energy; use "
                "temperature_K > 0 (or give the atoms velocities), or thermostat='langevin'"
            )
        self._dyn = self._make_dynamics()

        self.frames: list[Atoms] = []
        self._step = 0
        self._blown_up = False
        self.parameters = {
            "ensemble": ensemble,
            "thermostat": thermostat,
            "barostat": self.barostat,
            "integrator": type(self._dyn).__name__,
            "temperature_K": float(temperature_K),
            "timestep_fs": timestep_fs,
            "steps": steps,
            "interval": interval,
            "pressure_bar": pressure_bar,
            "seed": self.seed,
            "friction_per_fs": friction if thermostat == "langevin" else None,
            "taut_fs": taut_fs if thermostat in ("bussi", "nose-hoover", "berendsen") else None,
            "taup_fs": taup_fs if ensemble == "npt" else None,
            "velocities": self.velocities,
            "max_force": max_force,
            "n_atoms": len(atoms),
            "formula": atoms.get_chemical_formula(),
        }

    # -- set-up -------------------------------------------------------------------------
    def _init_velocities(self, mode: str, temperature_K: float) -> str:
        atoms = self.atoms
        has_velocities = atoms.has("momenta") and bool(np.any(atoms.get_momenta() != 0))
        if mode == "keep" or (mode == "auto" and has_velocities):
            if has_velocities:
                logger.info("md: keeping the input's velocities (T = %.1f K)",
                            atoms.get_temperature())
            return "kept"
        from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta

        thermalize_momenta(atoms, temperature_K, rng=self._rng)
        if temperature_K > 0 and not atoms.constraints and len(atoms) > 1:
            Stationary(atoms)
            if not atoms.pbc.any() and len(atoms) > 2:
                ZeroRotation(atoms)
        return "maxwell-boltzmann"

    def _make_dynamics(self) -> Any:
        atoms = self.atoms
        dt = self.timestep_fs * units.fs
        T = self._target_T
        if self.ensemble == "nve":
            from ase.md.verlet import VelocityVerlet

            return VelocityVerlet(atoms, timestep=dt)
        if self.ensemble == "npt":
            from ase.md.nose_hoover_chain import IsotropicMTKNPT, MTKNPT

            cls = IsotropicMTKNPT if self.barostat == "isotropic" else MTKNPT
            return cls(
                atoms,
                timestep=dt,
                temperature_K=T,
                pressure_au=self.pressure_bar * units.bar,
                tdamp=self.taut_fs * units.fs,
                pdamp=self.taup_fs * units.fs,
            )
        if self.thermostat == "langevin":
            from ase.md.langevin import Langevin

            # fixcm=False: ASE deprecates fixcm=True (it does not sample NVT exactly).
            return Langevin(
                atoms,
                timestep=dt,
                temperature_K=T,
                friction=self.friction / units.fs,
                fixcm=False,
                rng=self._rng,
            )
        if self.thermostat == "bussi":
            from ase.md.bussi import Bussi

            return Bussi(atoms, timestep=dt, temperature_K=T, taut=self.taut_fs * units.fs,
                         rng=self._rng)
        if self.thermostat == "nose-hoover":
            from ase.md.nose_hoover_chain import NoseHooverChainNVT

            return NoseHooverChainNVT(atoms, timestep=dt, temperature_K=T,
                                      tdamp=self.taut_fs * units.fs)
        from ase.md.nvtberendsen import NVTBerendsen

        return NVTBerendsen(atoms, timestep=dt, temperature_K=T, taut=self.taut_fs * units.fs)

    # -- control ------------------------------------------------------------------------
    @property
    def temperature_K(self) -> float:
        """Current target temperature in K (what :meth:`set_temperature` last set)."""
        return self._target_T

    def set_temperature(self, temperature_K: float) -> None:
        """Change the thermostat's target temperature; takes effect before the next step.

        Safe to call from another thread (e.g. a widget slider) or from a subscriber while
        the run goes on. Works for every thermostat (Langevin, Bussi, Nose–Hoover chain,
        Berendsen) and for NPT; with NVE there is no thermostat, so it raises.

        Each change is recorded as ``(step, temperature_K)`` in
        ``provenance["parameters"]["temperature_schedule"]`` (the new target applies from the
        step after ``step``), so the run can be repeated.

        Parameters
        ----------
        temperature_K
            New target in K (>= 0; > 0 for Nose–Hoover and NPT).
        """
        value = _number("temperature_K", temperature_K)
        if self.ensemble == "nve":
            raise InputError(
                "an NVE run has no thermostat; use ensemble='nvt' to change the temperature"
            )
        if self.thermostat == "nose-hoover" and value <= 0:
            raise InputError("the Nose–Hoover thermostat needs temperature_K > 0")
        self._target_T = value

    def _apply_temperature(self) -> None:
        target = self._target_T
        if target == self._applied_T:
            return
        dyn = self._dyn
        old = self._applied_T
        if self.thermostat in ("langevin", "berendsen"):
            dyn.set_temperature(temperature_K=target)
        elif self.thermostat == "bussi":
            dyn.temp = target * units.kB
            dyn.target_kinetic_energy = 0.5 * dyn.temp * dyn.ndof
        elif self.thermostat == "nose-hoover":
            ratio = target / old
            _retarget_nhc(dyn._thermostat, ratio)
            if self.ensemble == "npt":
                _retarget_barostat(dyn._barostat, ratio)
                if hasattr(dyn, "_p_eps"):
                    dyn._p_eps = dyn._p_eps * ratio
                if hasattr(dyn, "_p_g"):
                    dyn._p_g = dyn._p_g * ratio
                dyn._temperature_K = target
                dyn._kT = units.kB * target
        self._applied_T = target
        self.parameters.setdefault("temperature_schedule", [(0, old)]).append(
            (self._step, target)
        )
        logger.info("md: target temperature %.1f K -> %.1f K at step %d", old, target,
                    self._step)

    @property
    def max_temperature_K(self) -> float:
        """Temperature above which the run is declared blown up (follows the target)."""
        if self._max_temperature_K is not None:
            return self._max_temperature_K
        return max(TEMPERATURE_LIMIT_FACTOR * self._target_T, TEMPERATURE_LIMIT_FLOOR_K)

    # -- the run ------------------------------------------------------------------------
    def run(self) -> MDResult:
        """Run to the end (or until stopped) and return the :class:`MDResult`.

        Raises
        ------
        SimulationError
            When the run blows up. The partial result (frames up to the last good one) is
            attached to the exception as ``exc.result``; the trajectory file is closed and
            readable.
        """
        try:
            return super().run()
        except SimulationError as exc:
            exc.result = self.result  # type: ignore[attr-defined]
            raise

    def _steps(self) -> Iterator[MDStep]:
        atoms = self.atoms
        dyn = self._dyn
        logger.info(
            "md: %s%s of %s (%d atoms), %d steps of %g fs, T=%g K, seed=%d",
            self.ensemble, f"/{self.thermostat}" if self.thermostat else "",
            atoms.get_chemical_formula(), len(atoms), self.steps, self.timestep_fs,
            self._target_T, self.seed,
        )
        generator = dyn.irun(steps=self.steps)
        self._advance(generator, 0)
        self._check(0)
        yield self._record(0)
        for step in range(1, self.steps + 1):
            self._apply_temperature()
            if not self._advance(generator, step):
                break
            self._step = step
            self._check(step)
            if step % self.interval == 0 or step == self.steps or self.stop_requested:
                yield self._record(step)

    def _advance(self, generator: Iterator[bool], step: int) -> bool:
        try:
            next(generator)
        except StopIteration:
            return False
        except StructureError as exc:
            self._blown_up = True
            raise SimulationError(
                f"MD became unstable at step {step} "
                f"(t = {step * self.timestep_fs / 1000:.4f} ps): {exc}. {self._where()}"
                f"{self._advice()}"
            ) from exc
        return True

    def _check(self, step: int) -> None:
        atoms = self.atoms
        results = atoms.calc.results
        energy = results.get("energy")
        forces = results.get("forces")
        cause = None
        if energy is None or not np.isfinite(energy):
            cause = f"the potential returned a non-finite energy ({energy})"
        elif forces is None or not np.all(np.isfinite(forces)):
            bad = np.flatnonzero(~np.all(np.isfinite(np.asarray(forces)), axis=1))
            cause = f"the potential returned non-finite forces on atoms {bad[:10].tolist()}"
        else:
            norms = np.linalg.norm(forces, axis=1)
            i = int(np.argmax(norms))
            if norms[i] > self.max_force:
                cause = (
                    f"the force on atom {i} ({atoms.get_chemical_symbols()[i]}) is "
                    f"{norms[i]:.1f} eV/Å, above max_force={self.max_force:g} eV/Å"
                )
            else:
                temperature = atoms.get_temperature()
                if not np.isfinite(temperature) or temperature > self.max_temperature_K:
                    cause = (
                        f"the temperature reached {temperature:.0f} K, above "
                        f"max_temperature_K={self.max_temperature_K:g} K"
                    )
        if cause is not None:
            self._blown_up = True
            raise SimulationError(
                f"MD became unstable at step {step} "
                f"(t = {step * self.timestep_fs / 1000:.4f} ps): {cause}. {self._where()}"
                f"{self._advice()}"
            )

    def _where(self) -> str:
        if self.trajectory_path is None:
            return "No trajectory was written (pass trajectory='md.traj' to keep frames). "
        n = len(self.frames)
        last = self.frames[-1].info.get("step", 0) if self.frames else None
        return (
            f"The trajectory {self.trajectory_path} holds the {n} frames recorded before "
            f"(last good: step {last}). "
        )

    def _advice(self) -> str:
        return (
            f"Try: relax the structure first (nnp_lab.simulate.relax), a smaller timestep_fs "
            f"(now {self.timestep_fs:g}), or a model that covers this chemistry; if large "
            "forces or temperatures are expected, raise max_force= / max_temperature_K=."
        )

    def _record(self, step: int) -> MDStep:
        atoms = self.atoms
        epot = float(atoms.get_potential_energy())
        ekin = float(atoms.get_kinetic_energy())
        temperature = float(atoms.get_temperature())
        time_ps = step * self.timestep_fs / 1000.0
        pressure = None
        if has_stress(atoms) and "stress" in atoms.calc.results:
            stress = atoms.get_stress(voigt=True, include_ideal_gas=True)
            pressure = float(-np.mean(stress[:3]) / units.GPa)
        frame = snapshot(atoms)
        frame.info["step"] = step
        frame.info["time_ps"] = time_ps
        self.frames.append(frame)
        self.write_frame(frame)
        self._step = step
        return MDStep(
            run=self.kind,
            step=step,
            positions=frozen_array(atoms.positions),
            cell=frozen_array(atoms.cell[:]),
            energy=epot,
            time_ps=time_ps,
            temperature_K=temperature,
            kinetic_energy=ekin,
            total_energy=epot + ekin,
            target_temperature_K=None if self.ensemble == "nve" else self._applied_T,
            pressure_GPa=pressure,
            velocities=frozen_array(atoms.get_velocities()),
        )

    def _result(self) -> MDResult:
        frames = list(self.frames)
        atoms = self.atoms
        calc = atoms.calc
        consistent = (
            not self._blown_up
            and calc is not None
            and bool(calc.results)
            and not calc.check_state(atoms)
        )
        if consistent:
            final = snapshot(atoms)
            n_steps = self._step
        elif frames:
            final = frames[-1].copy()
            final.calc = frames[-1].calc
            n_steps = int(frames[-1].info.get("step", 0))
        else:
            final = atoms.copy()
            final.calc = None
            n_steps = 0
        final.info.pop("step", None)
        final.info.pop("time_ps", None)

        def column(fn: Any) -> np.ndarray:
            return np.array([fn(f) for f in frames], dtype=float)

        def pressure(f: Atoms) -> float:
            if has_stress(f) and "stress" in f.calc.results:
                return float(-np.mean(f.get_stress(include_ideal_gas=True)[:3]) / units.GPa)
            return float("nan")

        epot = column(lambda f: f.get_potential_energy())
        ekin = column(lambda f: f.get_kinetic_energy())
        return MDResult(
            atoms=final,
            frames=frames,
            time_ps=column(lambda f: f.info["time_ps"]),
            potential_energy=epot,
            kinetic_energy=ekin,
            total_energy=epot + ekin,
            temperature_K=column(lambda f: f.get_temperature()),
            n_steps=n_steps,
            pressure_GPa=column(pressure),
            volume=column(lambda f: f.get_volume() if has_stress(f) else float("nan")),
        )


def md(
    atoms: Atoms,
    potential: Potential | str | None = None,
    *,
    ensemble: str = "nvt",
    temperature_K: float = 300.0,
    timestep_fs: float = 1.0,
    steps: int = 1000,
    thermostat: str | None = None,
    pressure_bar: float | None = None,
    interval: int = 10,
    trajectory: str | os.PathLike | None = None,
    seed: int | None = None,
    live: bool = False,
    **options: Any,
) -> MDResult:
    """Run molecular dynamics and return the recorded frames and energies.

    Parameters
    ----------
    atoms
        Starting structure; not modified.
    potential
        A :class:`~nnp_lab.potentials.Potential`, a registered name or None (default model).
    ensemble
        ``"nve"``, ``"nvt"`` or ``"npt"``.
    temperature_K
        Target (and initial-velocity) temperature in K.
    timestep_fs
        Time step in fs.
    steps
        Number of MD steps.
    thermostat
        ``"langevin"`` (NVT default), ``"bussi"``, ``"nose-hoover"`` (NPT default),
        ``"berendsen"``.
    pressure_bar
        External pressure in bar (NPT only, required there).
    interval
        Record a frame every ``interval`` steps.
    trajectory
        ``.traj`` path to write frames to as they are produced.
    seed
        Random seed: same seed, same trajectory.
    live
        Show live progress while running.
    **options
        ``friction`` (1/fs), ``taut_fs``, ``taup_fs``, ``barostat``, ``velocities``,
        ``max_force`` (eV/Å), ``max_temperature_K``; see :class:`MolecularDynamics`.

    Returns
    -------
    MDResult
        Frames, per-frame energies/temperatures, final structure and provenance
        (``stopped=True`` after Ctrl-C: the partial result is returned).

    Raises
    ------
    InputError
        Bad options (see :class:`MolecularDynamics`).
    SimulationError
        The run blew up (NaN or huge forces, runaway temperature); ``exc.result`` holds
        the partial result and the trajectory keeps every frame recorded before.

    Examples
    --------
    >>> from ase.build import bulk
    >>> res = md(bulk("Cu", cubic=True) * 3, "emt", temperature_K=500, steps=2000,
    ...          timestep_fs=2, seed=0)  # doctest: +SKIP
    >>> res.temperature_K[len(res.temperature_K) // 2:].mean()  # doctest: +SKIP
    """
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise InputError(
            f"unknown md option(s) {unknown}; accepted: {', '.join(_OPTIONS)} (plus the "
            "named arguments of md)"
        )
    run = MolecularDynamics(
        atoms,
        potential,
        ensemble=ensemble,
        temperature_K=temperature_K,
        timestep_fs=timestep_fs,
        steps=steps,
        thermostat=thermostat,
        pressure_bar=pressure_bar,
        interval=interval,
        trajectory=trajectory,
        seed=seed,
        **options,
    )
    return run_to_end(run, live=live, total=steps)
