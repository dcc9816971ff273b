"""Batched Langevin dynamics: several NVT replicas, one potential call per step.

:class:`LangevinReplicas` is the small integrator that the training-data tools drive
(:func:`nnp_lab.models.sample` runs the teacher with it, :func:`nnp_lab.models.distill` the
student committee); :func:`nnp_lab.simulate.md` is the full-featured MD run of the package.
This module imports only the potentials layer and the shared option checks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator

from nnp_lab import validation
from nnp_lab.errors import InputError
from nnp_lab.potentials.base import Potential

__all__ = ["LangevinReplicas", "free_mask"]


def free_mask(atoms: Atoms) -> np.ndarray:
    """True for atoms that may move (not fixed by ``FixAtoms``)."""
    from ase.constraints import FixAtoms

    mask = np.ones(len(atoms), dtype=bool)
    for constraint in atoms.constraints:
        if isinstance(constraint, FixAtoms):
            mask[np.asarray(constraint.get_indices(), dtype=int)] = False
    return mask


class LangevinReplicas:
    """Independent NVT Langevin trajectories advanced in lock step.

    Every step evaluates all active replicas with **one**
    :meth:`~nnp_lab.potentials.Potential.evaluate` call (``validate=False``: finiteness
    only), so a batching teacher labels several trajectories for little more than the cost
    of one. The integrator is BAOAB (Leimkuhler & Matthews): half kick, half drift, exact
    Ornstein–Uhlenbeck velocity update, half drift, force call, half kick. Atoms fixed by
    ``FixAtoms`` do not move; other constraints are ignored.

    Used by :func:`nnp_lab.models.sample` (teacher MD) and :func:`nnp_lab.models.distill`
    (student MD); :func:`nnp_lab.md` is the full-featured MD run of the package.

    Parameters
    ----------
    structures
        Starting structures (copied; velocities taken from them when ``keep_velocities``
        and they have some).
    potential
        The potential driving the dynamics.
    temperatures_K
        Target temperature of each replica.
    timestep_fs
        Time step in fs.
    friction_per_fs
        Langevin friction in 1/fs.
    rng
        Random generator for the initial velocities and the noise.
    keep_velocities
        Keep non-zero input velocities instead of drawing Maxwell–Boltzmann ones.
    initial_temperature_factor
        Draw the initial velocities at this multiple of the target temperature. 2 suits a
        structure at an energy minimum: equipartition moves half of the kinetic energy into
        the potential energy within a few vibrations, so the run starts near the target
        instead of at half of it.
    """

    def __init__(
        self,
        structures: Sequence[Atoms],
        potential: Potential,
        temperatures_K: Sequence[float],
        *,
        timestep_fs: float = 1.0,
        friction_per_fs: float = 0.01,
        rng: np.random.Generator,
        keep_velocities: bool = False,
        initial_temperature_factor: float = 1.0,
    ) -> None:
        if len(structures) != len(temperatures_K):
            raise InputError("one temperature per replica is needed")
        timestep_fs = validation.number("timestep_fs", timestep_fs, strict=True, unit="fs")
        friction_per_fs = validation.number("friction_per_fs", friction_per_fs, unit="1/fs")
        self.potential = potential
        self.atoms = []
        self.masses = []
        self.free = []
        self.velocities = []
        self.temperatures_K = [
            validation.number("temperatures_K", t, unit="K") for t in temperatures_K
        ]
        self.rng = rng
        self.dt = float(timestep_fs) * units.fs
        self.gamma = float(friction_per_fs) / units.fs
        for atoms, T in zip(structures, self.temperatures_K):
            a = atoms.copy()
            a.calc = None
            m = a.get_masses()[:, None]
            free = free_mask(a)
            v = a.get_velocities() if keep_velocities and a.has("momenta") else None
            if v is None or not np.any(v):
                v = rng.normal(size=(len(a), 3)) * np.sqrt(
                    units.kB * T * initial_temperature_factor / m
                )
                v[~free] = 0.0
                if free.all() and len(a) > 1:
                    v -= (m * v).sum(0) / m.sum()  # no centre-of-mass drift
            self.atoms.append(a)
            self.masses.append(m)
            self.free.append(free[:, None].astype(float))
            self.velocities.append(np.asarray(v, dtype=float) * self.free[-1])
        self.active = [True] * len(self.atoms)
        self.n_steps = 0
        self.results: list[dict[str, Any] | None] = [None] * len(self.atoms)
        self.evaluate(("energy", "forces"))

    def evaluate(self, properties: Sequence[str]) -> list[dict[str, Any] | None]:
        """Evaluate the active replicas at their current positions (one call)."""
        idx = [k for k, on in enumerate(self.active) if on]
        if idx:
            res = self.potential.evaluate([self.atoms[k] for k in idx], properties, validate=False)
            for k, r in zip(idx, res):
                self.results[k] = r
        return self.results

    def step(self, properties: Sequence[str] = ("energy", "forces")) -> list[dict[str, Any] | None]:
        """Advance every active replica by one time step; returns the new results."""
        dt = self.dt
        c1 = math.exp(-self.gamma * dt)
        c2 = math.sqrt(max(1.0 - c1 * c1, 0.0))
        for k, on in enumerate(self.active):
            if not on:
                continue
            a, m, free = self.atoms[k], self.masses[k], self.free[k]
            v = self.velocities[k] + 0.5 * dt * self._forces(k) / m * free
            pos = a.positions + 0.5 * dt * v
            sigma = np.sqrt(units.kB * self.temperatures_K[k] / m)
            v = (c1 * v + c2 * sigma * self.rng.normal(size=v.shape)) * free
            a.positions = pos + 0.5 * dt * v
            self.velocities[k] = v
        self.evaluate(properties)
        for k, on in enumerate(self.active):
            if on:
                kick = 0.5 * dt * self._forces(k) / self.masses[k] * self.free[k]
                self.velocities[k] = self.velocities[k] + kick
        self.n_steps += 1
        return self.results

    def _forces(self, k: int) -> np.ndarray:
        """Forces on replica ``k`` at its current positions (active replicas always have
        results: :meth:`evaluate` runs at the start, after every step and on reset)."""
        results = self.results[k]
        if results is None:
            raise RuntimeError(f"replica {k} has not been evaluated")
        return np.asarray(results["forces"])

    def temperature(self, k: int) -> float:
        """Instantaneous kinetic temperature (K) of replica ``k``."""
        ndof = 3 * int(self.free[k].sum())
        if ndof == 0:
            return 0.0
        ekin = 0.5 * float((self.masses[k] * self.velocities[k] ** 2).sum())
        return 2 * ekin / (ndof * units.kB)

    def reset(self, k: int, atoms: Atoms, *, temperature_factor: float = 2.0) -> None:
        """Restart replica ``k`` from the positions of ``atoms`` (same atoms, same cell)
        with fresh Maxwell–Boltzmann velocities at ``temperature_factor`` × its target."""
        a = self.atoms[k]
        a.positions = atoms.positions
        m, free = self.masses[k], self.free[k]
        v = self.rng.normal(size=(len(a), 3)) * np.sqrt(
            units.kB * self.temperatures_K[k] * temperature_factor / m
        )
        v *= free
        if free.all() and len(a) > 1:
            v -= (m * v).sum(0) / m.sum()
        self.velocities[k] = v
        self.active[k] = True
        self.results[k] = self.potential.evaluate([a], ("energy", "forces"), validate=False)[0]

    def snapshot(self, k: int, results: dict[str, Any] | None = None) -> Atoms:
        """A copy of replica ``k`` with velocities and its latest results attached."""
        a = self.atoms[k].copy()
        a.set_velocities(self.velocities[k])
        res = self.results[k] if results is None else results
        if res:
            keep = {key: res[key] for key in ("energy", "forces", "stress") if key in res}
            a.calc = SinglePointCalculator(a, **keep)
        return a
