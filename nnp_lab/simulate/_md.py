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

  - ``"langevin"`` (default): :class:`ase.md.langevin.Langevin`, ``friction_per_fs``;
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

import inspect
import logging
import math
import os
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
from ase import Atoms, units

from nnp_lab import validation
from nnp_lab.errors import InputError, SimulationError, StructureError
from nnp_lab.potentials import Potential, has_stress
from nnp_lab.simulate._md_result import MDResult, MDStep
from nnp_lab.simulate._integrators import IntegratorSettings, make_integrator, retarget
from nnp_lab.simulate._run import (
    Run,
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


def _ensemble_settings(
    atoms: Atoms,
    ensemble: str,
    thermostat: str | None,
    pressure_bar: float | None,
    temperature_K: float,
) -> tuple[str | None, float | None]:
    """The thermostat (canonical name, or None for NVE) and pressure of a valid ensemble."""
    if ensemble == "nve":
        if thermostat is not None:
            warnings.warn(f"thermostat={thermostat!r} is ignored for ensemble='nve'", stacklevel=3)
        thermostat = None
    else:
        if thermostat is None:
            thermostat = "langevin" if ensemble == "nvt" else "nose-hoover"
        thermostat = validation.choice("thermostat", thermostat, _THERMOSTAT_ALIASES)
    if ensemble == "npt":
        if thermostat != "nose-hoover":
            raise InputError(
                f"ensemble='npt' uses ASE's MTK barostat with a Nose–Hoover chain "
                f"thermostat; thermostat={thermostat!r} is not available for NPT. Pass "
                "thermostat='nose-hoover' or leave it None"
            )
        if pressure_bar is None:
            raise InputError(
                "ensemble='npt' needs pressure_bar= (e.g. pressure_bar=1.0 for ambient pressure)"
            )
        pressure_bar = validation.number("pressure_bar", pressure_bar, minimum=None, unit="bar")
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
        raise InputError(f"pressure_bar only applies to ensemble='npt' (got ensemble={ensemble!r})")
    if thermostat == "nose-hoover" and temperature_K <= 0:
        raise InputError(
            "the Nose–Hoover thermostat needs temperature_K > 0; use thermostat='langevin' "
            "to quench towards 0 K"
        )
    return thermostat, pressure_bar


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
    friction_per_fs
        Langevin friction in 1/fs (default 0.01 fs⁻¹ = 10 ps⁻¹, 100 fs relaxation time; use
        ~0.001–0.002 fs⁻¹ for dynamics closer to NVE, e.g. diffusion coefficients). The unit
        is in the name because ASE's ``Langevin(friction=...)`` takes ASE time units.
    friction
        Deprecated spelling of ``friction_per_fs`` (same unit); warns.
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
        friction_per_fs: float = DEFAULT_FRICTION,
        taut_fs: float = DEFAULT_TAUT_FS,
        taup_fs: float = DEFAULT_TAUP_FS,
        barostat: str = "isotropic",
        velocities: str = "auto",
        max_force: float = DEFAULT_MAX_FORCE,
        max_temperature_K: float | None = None,
        friction: float | None = None,
    ) -> None:
        if friction is not None:
            warnings.warn(
                "MolecularDynamics(friction=...) is deprecated: use friction_per_fs= "
                "(the same value, in 1/fs)",
                DeprecationWarning,
                stacklevel=2,
            )
            friction_per_fs = friction
        if not isinstance(atoms, Atoms):
            raise InputError(
                f"md needs an ase.Atoms, got {type(atoms).__name__}; build one with "
                "nnp_lab.build or ase.io.read"
            )
        ensemble = validation.choice("ensemble", ensemble, ENSEMBLES)
        temperature_K = validation.number("temperature_K", temperature_K, unit="K")
        timestep_fs = validation.number("timestep_fs", timestep_fs, strict=True, unit="fs")
        steps = validation.integer("steps", steps, minimum=0)
        interval = validation.integer("interval", interval, minimum=1)
        friction_per_fs = validation.number(
            "friction_per_fs", friction_per_fs, strict=True, unit="1/fs"
        )
        taut_fs = validation.number("taut_fs", taut_fs, strict=True, unit="fs")
        taup_fs = validation.number("taup_fs", taup_fs, strict=True, unit="fs")
        max_force = validation.number("max_force", max_force, strict=True, unit="eV/Å")
        if not (isinstance(max_temperature_K, float) and max_temperature_K == math.inf):
            # inf switches the temperature check off; anything else must be a finite number
            max_temperature_K = validation.number(
                "max_temperature_K", max_temperature_K, strict=True, allow_none=True, unit="K"
            )
        velocities = validation.choice("velocities", velocities, ("auto", "thermalize", "keep"))
        barostat = validation.choice("barostat", barostat, _BAROSTATS)
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0
        ):
            raise InputError(f"seed must be a non-negative integer or None, got {seed!r}")
        if timestep_fs > 10:
            warnings.warn(
                f"timestep_fs={timestep_fs} is very large; atomic MD needs 0.5–5 fs",
                stacklevel=2,
            )

        thermostat, pressure_bar = _ensemble_settings(
            atoms, ensemble, thermostat, pressure_bar, temperature_K
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
        self.friction_per_fs = friction_per_fs
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
            "friction_per_fs": friction_per_fs if thermostat == "langevin" else None,
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
                logger.info(
                    "md: keeping the input's velocities (T = %.1f K)", atoms.get_temperature()
                )
            return "kept"
        from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta

        thermalize_momenta(atoms, temperature_K, rng=self._rng)
        if temperature_K > 0 and not atoms.constraints and len(atoms) > 1:
            Stationary(atoms)
            if not atoms.pbc.any() and len(atoms) > 2:
                ZeroRotation(atoms)
        return "maxwell-boltzmann"

    def _make_dynamics(self) -> Any:
        return make_integrator(
            self.atoms,
            IntegratorSettings(
                ensemble=self.ensemble,
                thermostat=self.thermostat,
                barostat=self.barostat,
                timestep_fs=self.timestep_fs,
                temperature_K=self._target_T,
                friction_per_fs=self.friction_per_fs,
                taut_fs=self.taut_fs,
                taup_fs=self.taup_fs,
                pressure_bar=self.pressure_bar,
                rng=self._rng,
            ),
        )

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
        value = validation.number("temperature_K", temperature_K, unit="K")
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
        old = self._applied_T
        retarget(self._dyn, self.ensemble, self.thermostat, old, target)
        self._applied_T = target
        self.parameters.setdefault("temperature_schedule", [(0, old)]).append((self._step, target))
        logger.info("md: target temperature %.1f K -> %.1f K at step %d", old, target, self._step)

    @property
    def max_temperature_K(self) -> float:
        """Temperature above which the run is declared blown up (follows the target)."""
        if self._max_temperature_K is not None:
            return self._max_temperature_K
        return max(TEMPERATURE_LIMIT_FACTOR * self._target_T, TEMPERATURE_LIMIT_FLOOR_K)

    # -- the run ------------------------------------------------------------------------

    def _steps(self) -> Iterator[MDStep]:
        atoms = self.atoms
        dyn = self._dyn
        logger.info(
            "md: %s%s of %s (%d atoms), %d steps of %g fs, T=%g K, seed=%d",
            self.ensemble,
            f"/{self.thermostat}" if self.thermostat else "",
            atoms.get_chemical_formula(),
            len(atoms),
            self.steps,
            self.timestep_fs,
            self._target_T,
            self.seed,
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
                f"(t = {step * self.timestep_fs / 1000:.4f} ps): {exc}. {self._kept_note()}"
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
                f"(t = {step * self.timestep_fs / 1000:.4f} ps): {cause}. {self._kept_note()}"
                f"{self._advice()}"
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
        ``friction_per_fs``, ``taut_fs``, ``taup_fs``, ``barostat``, ``velocities``,
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
    # The option list has one home, MolecularDynamics' signature (a test checks that md's
    # named keywords have its defaults).
    accepted = [
        name
        for name in inspect.signature(MolecularDynamics).parameters
        if name not in ("atoms", "potential")
    ]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InputError(f"unknown md option(s) {unknown}; accepted: {', '.join(accepted)}")
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
