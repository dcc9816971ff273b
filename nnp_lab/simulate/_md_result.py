"""What an MD run emits (:class:`MDStep`, one per recorded frame) and returns (:class:`MDResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from nnp_lab.simulate._run import Event, RunResult

__all__ = ["MDStep", "MDResult"]


@dataclass(frozen=True)
class MDStep(Event):
    """One recorded MD frame (every ``interval`` steps, plus step 0 and the last step).

    ``energy`` (inherited) is the potential energy in eV.

    Attributes
    ----------
    time_ps : float
        Simulated time in ps.
    temperature_K : float
        Instantaneous kinetic temperature in K, ``2 K / (n k_B)`` over the run's
        :attr:`~nnp_lab.simulate.MolecularDynamics.degrees_of_freedom`.
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
        One value per recorded frame (ps, eV, eV, eV, K). The temperature counts the run's
        degrees of freedom (``provenance["parameters"]["degrees_of_freedom"]``: the
        centre-of-mass motion the run held at zero excluded), so it can differ slightly
        from ASE's ``frame.get_temperature()``.
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
        return self._summary_text(lines, f" ({len(self.frames)} frames)")

    def __repr__(self) -> str:
        t = float(self.time_ps[-1]) if len(self.time_ps) else 0.0
        return (
            f"MDResult({self.atoms.get_chemical_formula()}, n_steps={self.n_steps}, "
            f"time={t:.3f} ps, frames={len(self.frames)}, stopped={self.stopped}, "
            f"trajectory={self._trajectory_repr})"
        )
