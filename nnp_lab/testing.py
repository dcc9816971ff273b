"""Contract checks that every :class:`~nnp_lab.potentials.Potential` must pass.

:func:`check_potential` measures, on one structure: forces against the finite-difference
gradient of the energy, stress against the finite-difference strain derivative, invariance of
the energy under rotation, translation and permutation, rotation of the forces with the
structure, batch-equals-singles, and that the input is not modified. Tolerances scale with
the model's dtype (float32 models are checked at float32-appropriate accuracy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms
from scipy.spatial.transform import Rotation

from nnp_lab.potentials.base import Potential, has_stress

__all__ = ["ContractReport", "check_potential", "Tolerances"]


@dataclass(frozen=True)
class Tolerances:
    """Largest accepted deviations.

    Attributes
    ----------
    force_fd : float
        Forces vs. finite differences, eV/Å (max abs).
    stress_fd : float
        Stress vs. finite differences, eV/Å³ (max abs).
    energy_per_atom : float
        Energy invariances and batch-vs-single, eV/atom.
    force : float
        Force equivariance / permutation / batch, eV/Å (max abs).
    delta : float
        Finite-difference step in Å (positions) and strain units (stress).
    """

    force_fd: float
    stress_fd: float
    energy_per_atom: float
    force: float
    delta: float

    @classmethod
    def for_dtype(cls, dtype: str) -> Tolerances:
        """Defaults for a model's floating point type."""
        if "64" in str(dtype):
            return cls(force_fd=1e-4, stress_fd=1e-6, energy_per_atom=1e-8, force=1e-7, delta=1e-4)
        # float32: energy rounding of ~1e-7 relative over a ±0.01 Å step.
        return cls(force_fd=1e-2, stress_fd=5e-4, energy_per_atom=1e-5, force=2e-3, delta=1e-2)


@dataclass
class ContractReport:
    """What :func:`check_potential` measured (largest deviations) and which checks failed."""

    potential: str
    measured: dict[str, float] = field(default_factory=dict)
    tolerances: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every check was within tolerance."""
        return not self.failures

    def __str__(self) -> str:
        lines = [f"contract check of {self.potential}: {'PASSED' if self.passed else 'FAILED'}"]
        for key, value in self.measured.items():
            tol = self.tolerances.get(key)
            mark = "" if tol is None else f"  (tolerance {tol:.1e})"
            lines.append(f"  {key:28s} {value:.3e}{mark}")
        lines += [f"  FAILED: {f}" for f in self.failures]
        return "\n".join(lines)


def _bare(atoms: Atoms) -> Atoms:
    return Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)


def check_potential(
    potential: Potential,
    atoms: Atoms,
    *,
    n_fd_atoms: int = 3,
    tolerances: Tolerances | None = None,
    seed: int = 0,
    raise_on_failure: bool = True,
) -> ContractReport:
    """Check the potential contract on ``atoms``.

    Parameters
    ----------
    potential
        The potential under test.
    atoms
        A small structure the potential covers (rattled, so forces are not zero by symmetry).
        Stress is checked when it is periodic with a 3D cell.
    n_fd_atoms
        Number of atoms whose forces are compared with finite differences (all 3 components).
    tolerances
        Overrides :meth:`Tolerances.for_dtype` of the potential's dtype.
    seed
        Seed for the random rotation, translation and permutation.
    raise_on_failure
        Raise :class:`AssertionError` with the report when a check fails.

    Returns
    -------
    ContractReport
        Measured deviations, tolerances and failures.
    """
    tol = tolerances or Tolerances.for_dtype(potential.dtype)
    rng = np.random.default_rng(seed)
    report = ContractReport(potential=potential.name)
    n = len(atoms)

    def record(key: str, value: float, limit: float) -> None:
        report.measured[key] = float(value)
        report.tolerances[key] = float(limit)
        if not value <= limit:  # also catches NaN
            report.failures.append(f"{key} = {value:.3e} > {limit:.1e}")

    # Input must not be modified.
    before = atoms.copy()
    info_before = dict(atoms.info)
    ref = potential.evaluate([atoms])[0]
    unchanged = (
        np.array_equal(before.positions, atoms.positions)
        and np.array_equal(before.numbers, atoms.numbers)
        and np.array_equal(np.asarray(before.cell), np.asarray(atoms.cell))
        and np.array_equal(before.pbc, atoms.pbc)
        and atoms.info == info_before
    )
    if not unchanged:
        report.failures.append("evaluate() modified the input Atoms")
    e0, f0 = ref["energy"], ref["forces"]
    if f0.shape != (n, 3) or not np.all(np.isfinite(f0)) or not np.isfinite(e0):
        report.failures.append(f"bad output: energy {e0}, forces shape {f0.shape}")
        if raise_on_failure:
            raise AssertionError(str(report))
        return report

    # Forces = -dE/dr by central differences; all displaced structures in one batch.
    base = _bare(atoms)
    picks = rng.choice(n, size=min(n_fd_atoms, n), replace=False)
    displaced = []
    for i in picks:
        for c in range(3):
            for sign in (1, -1):
                d = base.copy()
                d.positions[i, c] += sign * tol.delta
                displaced.append(d)
    energies = [r["energy"] for r in potential.evaluate(displaced, ("energy",))]
    fd = -(np.array(energies[0::2]) - np.array(energies[1::2])) / (2 * tol.delta)
    record("forces_vs_fd", np.max(np.abs(fd - f0[picks].reshape(-1))), tol.force_fd)

    # Stress = (1/V) dE/d(strain) by central differences.
    if has_stress(atoms) and "stress" in ref:
        volume = atoms.get_volume()
        pairs = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]
        strained = []
        for a, b in pairs:
            for sign in (1, -1):
                eps = np.zeros((3, 3))
                eps[a, b] += sign * tol.delta / 2 if a != b else sign * tol.delta
                if a != b:
                    eps[b, a] += sign * tol.delta / 2
                d = base.copy()
                d.set_cell(np.asarray(base.cell) @ (np.eye(3) + eps), scale_atoms=True)
                strained.append(d)
        es = np.array([r["energy"] for r in potential.evaluate(strained, ("energy",))])
        fd_stress = (es[0::2] - es[1::2]) / (2 * tol.delta) / volume
        record("stress_vs_fd", np.max(np.abs(fd_stress - ref["stress"])), tol.stress_fd)

    # Rotation: energy invariant, forces rotate (and stress rotates for periodic cells).
    rot = Rotation.random(random_state=int(rng.integers(1 << 31))).as_matrix()
    rotated = base.copy()
    rotated.positions = base.positions @ rot.T
    if base.pbc.any():
        rotated.set_cell(np.asarray(base.cell) @ rot.T, scale_atoms=False)
    # Translation: a random shift.
    shift = rng.normal(size=3)
    translated = base.copy()
    translated.positions = base.positions + shift
    # Permutation.
    perm = rng.permutation(n)
    permuted = base[perm]

    batch = potential.evaluate([rotated, translated, permuted, base])
    scale = max(n, 1)
    record("rotation_energy_per_atom", abs(batch[0]["energy"] - e0) / scale, tol.energy_per_atom)
    record("rotation_forces", np.max(np.abs(batch[0]["forces"] - f0 @ rot.T)), tol.force)
    record("translation_energy_per_atom", abs(batch[1]["energy"] - e0) / scale, tol.energy_per_atom)
    record("translation_forces", np.max(np.abs(batch[1]["forces"] - f0)), tol.force)
    record("permutation_energy_per_atom", abs(batch[2]["energy"] - e0) / scale, tol.energy_per_atom)
    record("permutation_forces", np.max(np.abs(batch[2]["forces"] - f0[perm])), tol.force)

    # Batch equals singles (the un-transformed structure sits last in the batch).
    record("batch_vs_single_energy", abs(batch[3]["energy"] - e0), max(1e-5, tol.energy_per_atom))
    record("batch_vs_single_forces", np.max(np.abs(batch[3]["forces"] - f0)), tol.force)
    if "stress" in ref:
        record("batch_vs_single_stress", np.max(np.abs(batch[3]["stress"] - ref["stress"])), 1e-5)

    # The ASE calculator gives the same numbers.
    probe = atoms.copy()
    probe.calc = potential.calculator()
    record("calculator_vs_evaluate", abs(probe.get_potential_energy() - e0), 1e-6 * max(1, abs(e0)))

    if raise_on_failure and not report.passed:
        raise AssertionError(str(report))
    return report
