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
  fluctuations); ``pressure_GPa`` (converted to eV/Å³), ``taut_fs``, ``taup_fs``.

Temperature and degrees of freedom
----------------------------------
Drawn velocities have the centre-of-mass motion removed (and, in vacuum, the rotation);
kept velocities without it (a run continued from an ``MDResult``) count the same way.
Verlet, Bussi, Nose–Hoover and Berendsen keep that motion at zero, so the heat is shared by
``3N - 3`` (``3N - 6`` for a molecule in vacuum, ``3N - 5`` if linear) degrees of freedom,
minus what constraints remove: :attr:`MolecularDynamics.degrees_of_freedom`. The
thermostats target that count (ASE's own count is ``3N`` minus constraints, which runs a
small cell hot: 8 Cu atoms at 14 % above the target) and every reported temperature is
``2 K / (n k_B)`` with it; frames carry it in ``info["degrees_of_freedom"]``. Langevin
dynamics thermalises the centre of mass too and keeps ``3N`` minus constraints.
ASE's Nose–Hoover chain does not handle fixed atoms, so ``thermostat="nose-hoover"`` with
constraints other than ``FixCom`` raises; use ``"bussi"``.

Blow-up detection
-----------------
After every step the run checks that energy and forces are finite and that forces and
temperature stay below ``max_force`` and ``max_temperature_K``
(:mod:`nnp_lab.simulate._md_checks`); the first violation raises
:class:`~nnp_lab.errors.SimulationError` with the trajectory so far kept.

The accepted options, their defaults and the checks of which go together are in
:mod:`nnp_lab.simulate._md_options`.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
from ase import Atoms, units

from nnp_lab import validation
from nnp_lab.errors import InputError, SimulationError, StructureError
from nnp_lab.potentials import Potential, has_stress
from nnp_lab.simulate._integrators import (
    IntegratorSettings,
    degrees_of_freedom,
    make_integrator,
    retarget,
)
from nnp_lab.simulate._keywords import PRESSURE_BAR, forwarded, user_stacklevel
from nnp_lab.simulate._md_checks import (
    DEFAULT_MAX_FORCE,
    checked_temperature_limit,
    default_temperature_limit,
    instability,
    unstable_message,
)
from nnp_lab.simulate._md_options import (
    BAROSTATS,
    DEFAULT_FRICTION,
    DEFAULT_TAUP_FS,
    DEFAULT_TAUT_FS,
    ENSEMBLES,
    FRICTION,
    THERMOSTATS,
    VELOCITIES,
    checked_seed,
    ensemble_settings,
)
from nnp_lab.simulate._md_result import MDResult, MDStep
from nnp_lab.simulate._run import Run, frozen_array, run_to_end, snapshot

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
    "pressure_GPa_of",
    "kinetic_temperature",
]

logger = logging.getLogger(__name__)


def pressure_GPa_of(atoms: Atoms) -> float | None:
    """Instantaneous pressure in GPa, kinetic term included, from the stress of the latest
    results (None without a 3D periodic cell or a stress)."""
    if has_stress(atoms) and "stress" in atoms.calc.results:
        stress = atoms.get_stress(voigt=True, include_ideal_gas=True)
        return float(-np.mean(stress[:3]) / units.GPa)
    return None


def kinetic_temperature(kinetic_energy: Any, degrees_of_freedom: int) -> np.ndarray:
    """Temperature in K of a kinetic energy in eV (a number or an array) shared by
    ``degrees_of_freedom``: ``2 K / (n k_B)``."""
    return 2.0 * np.asarray(kinetic_energy, dtype=float) / (degrees_of_freedom * units.kB)


def _held_motion(atoms: Atoms) -> tuple[bool, bool]:
    """Whether the velocities carry no centre-of-mass motion and, in vacuum, no rotation
    (each at most 1e-6 of the kinetic energy), for a structure without constraints: true of
    drawn velocities and of those kept from an earlier md run."""
    if atoms.constraints or len(atoms) < 2:
        return False, False
    ekin = atoms.get_kinetic_energy()
    total = atoms.get_momenta().sum(axis=0)
    still = bool(total @ total / (2 * atoms.get_masses().sum()) <= 1e-6 * ekin)
    if not still or atoms.pbc.any() or len(atoms) < 3:
        return still, False
    # rotational kinetic energy about the principal axes (ASE: rows of the axes, angular
    # momentum about the centre of mass); a linear molecule has one zero moment
    moments, axes = atoms.get_moments_of_inertia(vectors=True)
    along = axes @ atoms.get_angular_momentum()
    turns = moments > 1e-8 * moments.max()
    return True, bool(0.5 * np.sum(along[turns] ** 2 / moments[turns]) <= 1e-6 * ekin)


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
    pressure_GPa
        External pressure in GPa (1 bar = 1e-4 GPa, the unit of the pressures MD reports);
        required for, and only allowed with, ``ensemble="npt"``.
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
    pressure_bar
        Deprecated: the pressure in bar (converted, 1 bar = 1e-4 GPa); use ``pressure_GPa``.
        Warns; giving both raises.
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

    Attributes
    ----------
    degrees_of_freedom : int
        How many degrees of freedom share the kinetic energy (see the module docstring):
        what the thermostat targets and what every reported temperature divides by.

    Raises
    ------
    InputError
        Unknown ensemble/thermostat, bad numbers, NPT without ``pressure_GPa`` or without a
        3D periodic cell, a Nose–Hoover chain with constraints, or a structure the
        potential cannot evaluate.
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
        pressure_GPa: float | None = None,
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
        pressure_bar: float | None = None,
    ) -> None:
        owner = type(self).__name__
        friction_per_fs = FRICTION.resolve(owner, friction, friction_per_fs, DEFAULT_FRICTION)
        pressure_GPa = PRESSURE_BAR.resolve(owner, pressure_bar, pressure_GPa, None)
        if not isinstance(atoms, Atoms):
            raise InputError(
                f"md needs an ase.Atoms, got {type(atoms).__name__}; build one with "
                "nnp_lab.build or ase.io.read"
            )
        self.ensemble = validation.choice("ensemble", ensemble, ENSEMBLES)
        temperature_K = validation.number("temperature_K", temperature_K, unit="K")
        self.timestep_fs = validation.number("timestep_fs", timestep_fs, strict=True, unit="fs")
        self.steps = validation.integer("steps", steps, minimum=0)
        self.interval = validation.integer("interval", interval, minimum=1)
        self.friction_per_fs = validation.number(
            "friction_per_fs", friction_per_fs, strict=True, unit="1/fs"
        )
        self.taut_fs = validation.number("taut_fs", taut_fs, strict=True, unit="fs")
        self.taup_fs = validation.number("taup_fs", taup_fs, strict=True, unit="fs")
        self.max_force = validation.number("max_force", max_force, strict=True, unit="eV/Å")
        self._max_temperature_K = checked_temperature_limit(max_temperature_K)
        velocities = validation.choice("velocities", velocities, VELOCITIES)
        barostat = validation.choice("barostat", barostat, BAROSTATS)
        self.seed = checked_seed(seed)
        if self.timestep_fs > 10:
            warnings.warn(
                f"timestep_fs={self.timestep_fs} is very large; atomic MD needs 0.5–5 fs",
                stacklevel=user_stacklevel(),
            )
        self.thermostat, self.pressure_GPa = ensemble_settings(
            atoms, self.ensemble, thermostat, pressure_GPa, temperature_K
        )
        self.barostat = barostat if self.ensemble == "npt" else None
        self._target_T = self._applied_T = float(temperature_K)

        super().__init__(potential, trajectory=trajectory)
        self.potential.check(atoms)
        self.atoms = atoms.copy()
        self.atoms.calc = self.potential.calculator()
        if self.atoms.get_number_of_degrees_of_freedom() <= 0:
            raise InputError("every atom is fixed by constraints; nothing can move in MD")
        self._rng = np.random.default_rng(self.seed)
        self.velocities = self._init_velocities(velocities, temperature_K)
        momentum_zeroed, rotation_zeroed = _held_motion(self.atoms)
        self.degrees_of_freedom = degrees_of_freedom(
            self.atoms,
            self.ensemble,
            self.thermostat,
            momentum_zeroed=momentum_zeroed,
            rotation_zeroed=rotation_zeroed,
        )
        if self.thermostat == "bussi" and self.atoms.get_kinetic_energy() <= 1e-12:
            raise InputError(
                "thermostat='bussi' cannot start from zero kinetic energy; use "
                "temperature_K > 0 (or give the atoms velocities), or thermostat='langevin'"
            )
        self._dyn = self._make_dynamics()
        self.frames: list[Atoms] = []
        self._step = 0
        self._blown_up = False
        self.parameters = self._initial_parameters(atoms)

    # -- set-up -------------------------------------------------------------------------
    def _initial_parameters(self, atoms: Atoms) -> dict[str, Any]:
        """The settings recorded in the provenance (those that apply to this ensemble)."""
        thermostat = self.thermostat
        return {
            "ensemble": self.ensemble,
            "thermostat": thermostat,
            "barostat": self.barostat,
            "integrator": type(self._dyn).__name__,
            "temperature_K": self._target_T,
            "timestep_fs": self.timestep_fs,
            "steps": self.steps,
            "interval": self.interval,
            "pressure_GPa": self.pressure_GPa,
            "seed": self.seed,
            "friction_per_fs": self.friction_per_fs if thermostat == "langevin" else None,
            "taut_fs": self.taut_fs
            if thermostat in ("bussi", "nose-hoover", "berendsen")
            else None,
            "taup_fs": self.taup_fs if self.ensemble == "npt" else None,
            "velocities": self.velocities,
            "degrees_of_freedom": self.degrees_of_freedom,
            "max_force": self.max_force,
            "n_atoms": len(atoms),
            "formula": atoms.get_chemical_formula(),
        }

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
                with np.errstate(divide="ignore", invalid="ignore"):  # a linear molecule's
                    ZeroRotation(atoms)  # zero moment: ASE divides, then discards it
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
                pressure_GPa=self.pressure_GPa,
                rng=self._rng,
                ndof=self.degrees_of_freedom,
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
        return default_temperature_limit(self._target_T)

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
            raise self._unstable(step, exc) from exc
        return True

    def _check(self, step: int) -> None:
        cause = instability(self.atoms, self.max_force, self.max_temperature_K)
        if cause is not None:
            raise self._unstable(step, cause)

    def _unstable(self, step: int, cause: Any) -> SimulationError:
        self._blown_up = True
        return SimulationError(unstable_message(step, self.timestep_fs, cause, self._kept_note()))

    def _record(self, step: int) -> MDStep:
        atoms = self.atoms
        epot = float(atoms.get_potential_energy())
        ekin = float(atoms.get_kinetic_energy())
        time_ps = step * self.timestep_fs / 1000.0
        ndof = self.degrees_of_freedom
        frame = self.keep_frame(atoms, step, time_ps=time_ps, degrees_of_freedom=ndof)
        self.frames.append(frame)
        self._step = step
        return MDStep(
            **self.event_fields(atoms, step),
            energy=epot,
            time_ps=time_ps,
            temperature_K=float(kinetic_temperature(ekin, ndof)),
            kinetic_energy=ekin,
            total_energy=epot + ekin,
            target_temperature_K=None if self.ensemble == "nve" else self._applied_T,
            pressure_GPa=pressure_GPa_of(atoms),
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
            value = pressure_GPa_of(f)
            return float("nan") if value is None else value

        epot = column(lambda f: f.get_potential_energy())
        ekin = column(lambda f: f.get_kinetic_energy())
        return MDResult(
            atoms=final,
            frames=frames,
            time_ps=column(lambda f: f.info["time_ps"]),
            potential_energy=epot,
            kinetic_energy=ekin,
            total_energy=epot + ekin,
            temperature_K=kinetic_temperature(ekin, self.degrees_of_freedom),
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
    pressure_GPa: float | None = None,
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
    pressure_GPa
        External pressure in GPa (NPT only, required there; 1 bar = 1e-4 GPa).
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
        The deprecated ``pressure_bar`` (bar) and ``friction`` still work, with a warning.

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
    keywords = forwarded(MolecularDynamics, locals(), options, what="md")
    return run_to_end(MolecularDynamics(atoms, potential, **keywords), live=live, total=steps)
