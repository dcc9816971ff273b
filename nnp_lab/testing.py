"""Contract checks that every :class:`~nnp_lab.potentials.Potential` must pass.

:func:`check_potential` measures, on one structure: forces against the finite-difference
gradient of the energy, stress against the finite-difference strain derivative, invariance of
the energy under rotation, translation and permutation, rotation of the forces with the
structure, batch-equals-singles, and that the input is not modified.

Every tolerance is a small multiple of the resolution ``eps = np.finfo(dtype).eps`` of the
potential's floating point type times the magnitude of the compared quantity (see
:func:`check_potential` for the rule), never an absolute number: a float32 model with large
per-atom energies is allowed its few ulp of rounding, a float64 one is held to float64
accuracy, and a real bug (a wrong sign, a missing term, structures leaking into each other
in a batch, a frame-dependent energy) is orders of magnitude above either.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list
from scipy.spatial.transform import Rotation

from nnp_lab.potentials.base import Potential, has_stress

__all__ = [
    "ContractReport",
    "check_potential",
    "Tolerances",
    "resolution",
    "rounding_tolerances",
]

#: Neighbour-count radius (Å) for potentials that do not say what their cutoff is.
_DEFAULT_CUTOFF = 6.0
#: Length (Å) over which per-atom energies change (a bond length): the terms summed into a
#: force are up to ``atomic_energy / _BOND_LENGTH`` even where they cancel to a small net
#: force (a molecule near its minimum).
_BOND_LENGTH = 1.0


def resolution(dtype: Any) -> float:
    """Machine epsilon of a floating point type given as ``"float32"``, ``torch.float64``,
    ``np.float16``, ``"bfloat16"``... (float32's when the name is not recognised)."""
    name = str(dtype).lower().replace("torch.", "").replace("numpy.", "")
    if "bfloat16" in name:
        return 2.0**-7
    for key, np_type in (
        ("64", np.float64),
        ("double", np.float64),
        ("16", np.float16),
        ("half", np.float16),
    ):
        if key in name:
            return float(np.finfo(np_type).eps)
    return float(np.finfo(np.float32).eps)


@dataclass(frozen=True)
class Tolerances:
    """How many units of rounding each check accepts (the rule: :func:`check_potential`).

    Attributes
    ----------
    eps : float
        Resolution of the potential's floating point type (``np.finfo(dtype).eps``).
    delta : float
        Finite-difference step in Å (positions) and strain units (stress).
    atomic_energy : float
        Magnitude (eV/atom) of the per-atom energies a potential adds up: the total energy
        of a model whose per-atom terms are large but nearly cancel is rounded at the
        scale of those terms, not of the small total. Raise it for such a model.
    energy_ulps, force_ulps, stress_ulps, fd_ulps : float
        Multipliers of ``eps × scale`` for the energy, force and stress comparisons and for
        the rounding part of the finite-difference checks.
    """

    eps: float
    delta: float
    atomic_energy: float = 10.0
    energy_ulps: float = 16.0
    force_ulps: float = 16.0
    stress_ulps: float = 16.0
    fd_ulps: float = 8.0

    @classmethod
    def for_dtype(cls, dtype: Any, **overrides: float) -> Tolerances:
        """Defaults for a model's floating point type; keyword arguments override fields.

        The step balances rounding (``eps · E / delta``) against the truncation error of
        central differences (``~delta²``): 1e-4 Å for float64, 1e-2 Å otherwise.
        """
        eps = resolution(dtype)
        delta = 1e-4 if eps < 1e-12 else 1e-2
        return replace(cls(eps=eps, delta=delta), **overrides)


@dataclass
class ContractReport:
    """What :func:`check_potential` measured (largest deviations) and which checks failed.

    ``scales`` holds the magnitudes the tolerances were derived from (see
    :func:`check_potential`).
    """

    potential: str
    measured: dict[str, float] = field(default_factory=dict)
    tolerances: dict[str, float] = field(default_factory=dict)
    scales: dict[str, float] = field(default_factory=dict)
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
        if self.scales:
            lines.append("  scales: " + ", ".join(f"{k} {v:.3g}" for k, v in self.scales.items()))
        lines += [f"  FAILED: {f}" for f in self.failures]
        return "\n".join(lines)


def _bare(atoms: Atoms) -> Atoms:
    return Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)


def _max_neighbours(atoms: Atoms, cutoff: float) -> int:
    """Most neighbours of any atom within ``cutoff`` (periodic images included)."""
    if len(atoms) < 2 and not atoms.pbc.any():
        return 0
    centres = neighbor_list("i", _bare(atoms), float(cutoff))
    return int(np.bincount(centres, minlength=len(atoms)).max()) if len(centres) else 0


def _extent(structures: list[Atoms]) -> float:
    """Largest Cartesian coordinate or cell vector (Å): the scale at which positions and
    edge vectors are rounded."""
    out = 1.0
    for a in structures:
        out = max(out, float(np.abs(a.positions).max(initial=0.0)))
        if a.pbc.any():
            out = max(out, float(np.linalg.norm(np.asarray(a.cell), axis=1).max()))
    return out


def rounding_tolerances(
    atoms: Atoms,
    result: dict[str, Any],
    dtype: Any,
    *,
    cutoff: float | None = None,
    tolerances: Tolerances | None = None,
) -> dict[str, float]:
    """Largest differences to accept between two evaluations of the *same* structure
    (batch vs. single call, cached vs. fresh neighbour list, energy-only vs. full request,
    a model vs. its saved copy): they differ only in the order of the floating point
    operations, by a few units of rounding of the sums involved.

    ``result`` is one evaluation (``energy``, ``forces``, optionally ``stress``); with
    ``eps = np.finfo(dtype).eps``, ``k`` the multipliers of ``tolerances`` (default
    :meth:`Tolerances.for_dtype`) and ``n_nb`` the most neighbours of an atom within
    ``cutoff`` (default 6 Å):

    - energy: ``k_E · eps · max(|E|, n_atoms · atomic_energy)``;
    - forces: ``k_F · eps · max(max|F|, atomic_energy / 1 Å) · sqrt(1 + n_nb)``;
    - stress: ``k_S · eps · max(max|σ|, S_E / V) · sqrt(1 + n_nb)``, ``S_E`` the energy
      scale above.

    These are the batch-vs-single tolerances of :func:`check_potential`.
    """
    tol = tolerances or Tolerances.for_dtype(dtype)
    n = len(atoms)
    energy_scale = max(abs(float(result["energy"])), n * tol.atomic_energy)
    n_nb = _max_neighbours(atoms, cutoff or _DEFAULT_CUTOFF)
    accumulation = float(np.sqrt(1 + n_nb))
    out = {"energy": tol.energy_ulps * tol.eps * energy_scale}
    if "forces" in result:
        f_scale = max(
            float(np.abs(result["forces"]).max(initial=0.0)), tol.atomic_energy / _BOND_LENGTH
        )
        out["forces"] = tol.force_ulps * tol.eps * f_scale * accumulation
    if "stress" in result and has_stress(atoms):
        s_scale = max(float(np.abs(result["stress"]).max()), energy_scale / atoms.get_volume())
        out["stress"] = tol.stress_ulps * tol.eps * s_scale * accumulation
    return out


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

    Tolerances (``eps``: resolution of the potential's dtype, :class:`Tolerances` holds
    the multipliers ``k``; every scale is recorded in ``report.scales``):

    - Energies under rotation, translation and permutation:
      ``k_E · eps · S_E`` with ``S_E = max(|E|, n_atoms · atomic_energy) + L · Σ_i |F_i|``.
      The first term is the size of the sum over atoms being rounded (not the total alone:
      per-atom terms may cancel), the second the energy change caused by rounding the
      coordinates, whose magnitude ``L`` (largest coordinate or cell vector of the compared
      structures) changes with the frame.
    - Forces: ``k_F · eps · S_F`` with
      ``S_F = max(max|F|, atomic_energy / 1 Å) · sqrt(1 + n_nb) + K · L``: a force is
      accumulated over the ``n_nb`` neighbours of an atom within the potential's cutoff
      (rounding grows like the square root of the number of terms) from terms that can be
      much larger than the net force (gradients of per-atom energies, ~``atomic_energy``
      per bond length), and a coordinate rounded by ``eps · L`` moves it by the curvature
      ``K`` (largest diagonal Hessian element, taken from the second differences of the
      finite-difference energies).
    - Batch vs. single call, and the ASE calculator vs. :meth:`~Potential.evaluate` (same
      coordinates, so without the ``L`` terms): :func:`rounding_tolerances`, i.e.
      ``k_E · eps · max(|E|, n_atoms · atomic_energy)``,
      ``k_F · eps · max(max|F|, atomic_energy / 1 Å) · sqrt(1 + n_nb)`` and, for the stress,
      ``k_S · eps · max(max|σ|, S_E / V) · sqrt(1 + n_nb)``.
    - Finite differences (forces; stress divided by the volume ``V``), step ``delta``:
      ``k_fd · eps · max(|E|, n_atoms · atomic_energy) / delta``, the rounding of the
      energy differences. Where a component is off by more than that, the truncation error
      of its central difference is added, estimated from the same difference with twice
      the step: ``2 · max|fd(2·delta) − fd(delta)|``. The error of ``fd(h)`` grows like
      ``h²`` for a smooth energy and like ``h`` where pair distances cross a cutoff whose
      second derivative jumps, so ``|fd(2h) − fd(h)|`` is at least about the error at
      ``h``. The estimate never involves the forces or stress under test: a wrong force is
      still measured against the energy's own derivative.
    - Input unchanged: exact.

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
        Measured deviations, tolerances, the scales behind them, and failures.
    """
    tol = tolerances or Tolerances.for_dtype(potential.dtype)
    check = _ContractCheck(potential, atoms, tol, np.random.default_rng(seed))
    if check.reference_is_usable():
        curvature = check.forces_vs_fd(n_fd_atoms)
        check.stress_vs_fd()
        base = check.invariances(curvature)
        check.batch_vs_single(base)
        check.calculator_vs_evaluate()
    if raise_on_failure and not check.report.passed:
        raise AssertionError(str(check.report))
    return check.report


class _ContractCheck:
    """The steps of :func:`check_potential`, sharing the reference evaluation, the scales
    and the report. The steps draw from ``rng`` in the order they are called."""

    def __init__(
        self, potential: Potential, atoms: Atoms, tol: Tolerances, rng: np.random.Generator
    ) -> None:
        self.potential = potential
        self.atoms = atoms
        self.tol = tol
        self.rng = rng
        self.report = ContractReport(potential=potential.name)
        self.base = _bare(atoms)
        self.cutoff = float(getattr(potential, "cutoff", 0.0) or _DEFAULT_CUTOFF)

    def record(self, key: str, value: float, limit: float) -> None:
        report = self.report
        report.measured[key] = float(value)
        report.tolerances[key] = float(limit)
        if not value <= limit:  # also catches NaN
            report.failures.append(f"{key} = {value:.3e} > {limit:.1e}")

    def reference_is_usable(self) -> bool:
        """Evaluate the input (which must not change) and check the output's shape and
        finiteness; sets the scales the tolerances grow with. False: nothing to compare."""
        atoms, report = self.atoms, self.report
        before = atoms.copy()
        info_before = dict(atoms.info)
        self.ref = ref = self.potential.evaluate([atoms])[0]
        unchanged = (
            np.array_equal(before.positions, atoms.positions)
            and np.array_equal(before.numbers, atoms.numbers)
            and np.array_equal(np.asarray(before.cell), np.asarray(atoms.cell))
            and np.array_equal(before.pbc, atoms.pbc)
            and atoms.info == info_before
        )
        if not unchanged:
            report.failures.append("evaluate() modified the input Atoms")
        self.e0, self.f0 = e0, f0 = ref["energy"], ref["forces"]
        n = len(atoms)
        if f0.shape != (n, 3) or not np.all(np.isfinite(f0)) or not np.isfinite(e0):
            report.failures.append(f"bad output: energy {e0}, forces shape {f0.shape}")
            return False
        # Magnitudes the tolerances scale with.
        self.sum_scale = max(abs(e0), n * self.tol.atomic_energy)  # size of the rounded sum
        self.n_nb = _max_neighbours(atoms, self.cutoff)
        self.accumulation = float(np.sqrt(1 + self.n_nb))
        self.fd_rounding = self.tol.fd_ulps * self.tol.eps * self.sum_scale / self.tol.delta
        return True

    # -- finite differences ---------------------------------------------------------------
    def central(self, make: Any, keys: list[Any], step: float) -> tuple[np.ndarray, ...]:
        """Energies of ``make(key, +step)`` and ``make(key, -step)`` for every key, and of
        the undisplaced structure, in one batch."""
        structures = [make(key, sign * step) for key in keys for sign in (1, -1)] + [self.base]
        e = np.array([r["energy"] for r in self.potential.evaluate(structures, ("energy",))])
        return e[0:-1:2], e[1:-1:2], e[-1]

    def compare_fd(
        self,
        key: str,
        make: Any,
        keys: list[Any],
        exact: np.ndarray,
        factor: float,
        rounding: float,
    ) -> tuple[np.ndarray, ...]:
        """Record max |central difference - exact|; components beyond the rounding bound are
        given their truncation error, from the same difference with twice the step."""
        delta = self.tol.delta
        plus, minus, centre = self.central(make, keys, delta)
        fd = factor * (plus - minus) / (2 * delta)
        dev = np.abs(fd - exact)
        limit = rounding
        refine = np.flatnonzero(dev > rounding)
        if len(refine):
            plus2, minus2, _ = self.central(make, [keys[j] for j in refine], 2 * delta)
            fd2 = factor * (plus2 - minus2) / (4 * delta)
            limit += 2.0 * float(np.max(np.abs(fd2 - fd[refine])))
        self.record(key, float(np.max(dev)), limit)
        return plus, minus, centre

    def forces_vs_fd(self, n_fd_atoms: int) -> float:
        """Forces = -dE/dr by central differences; returns the largest curvature
        ``|d²E/dx²|`` seen, from the same energies."""
        base, n, delta = self.base, len(self.base), self.tol.delta

        def displace(key: tuple[int, int], step: float) -> Atoms:
            d = base.copy()
            d.positions[key] += step
            return d

        picks = self.rng.choice(n, size=min(n_fd_atoms, n), replace=False)
        keys = [(int(i), c) for i in picks for c in range(3)]
        exact = self.f0[picks].reshape(-1)
        plus, minus, centre = self.compare_fd(
            "forces_vs_fd", displace, keys, exact, -1.0, self.fd_rounding
        )
        # max |d²E/dx²|, all three energies from one batch (a batch-vs-single discrepancy must
        # not pass for curvature and loosen the force tolerances)
        return float(np.max(np.abs(plus + minus - 2 * centre))) / delta**2

    def stress_vs_fd(self) -> None:
        """Stress = (1/V) dE/d(strain) by central differences (3D periodic cells)."""
        base = self.base
        volume = self.atoms.get_volume() if has_stress(self.atoms) else None
        if volume is None or "stress" not in self.ref:
            return

        def strain(key: tuple[int, int], step: float) -> Atoms:
            a, b = key
            eps_ab = np.zeros((3, 3))
            if a == b:
                eps_ab[a, a] = step
            else:
                eps_ab[a, b] = eps_ab[b, a] = step / 2
            d = base.copy()
            d.set_cell(np.asarray(base.cell) @ (np.eye(3) + eps_ab), scale_atoms=True)
            return d

        pairs = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]
        stress = np.asarray(self.ref["stress"])
        self.compare_fd(
            "stress_vs_fd", strain, pairs, stress, 1.0 / volume, self.fd_rounding / volume
        )

    # -- symmetry, batching, calculator ---------------------------------------------------
    def invariances(self, curvature: float) -> dict[str, Any]:
        """Energy invariant and forces covariant under a random rotation, translation and
        permutation (one batch that also holds the untransformed structure, whose result
        is returned)."""
        base, tol, rng, f0, e0 = self.base, self.tol, self.rng, self.f0, self.e0
        eps = tol.eps
        # Rotation: energy invariant, forces rotate with the structure.
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
        perm = rng.permutation(len(base))
        permuted = base[perm]

        extent = _extent([base, rotated, translated])
        energy_scale = self.sum_scale + extent * float(np.abs(f0).sum())
        force_terms = max(float(np.abs(f0).max()), tol.atomic_energy / _BOND_LENGTH)
        force_scale = force_terms * self.accumulation + curvature * extent
        e_tol = tol.energy_ulps * eps * energy_scale
        f_tol = tol.force_ulps * eps * force_scale
        self.report.scales.update(
            eps=eps,
            energy=energy_scale,
            forces=force_scale,
            neighbours=self.n_nb,
            extent=extent,
            curvature=curvature,
        )

        batch = self.potential.evaluate([rotated, translated, permuted, base])
        for key, (res, expected) in {
            "rotation": (batch[0], f0 @ rot.T),
            "translation": (batch[1], f0),
            "permutation": (batch[2], f0[perm]),
        }.items():
            self.record(f"{key}_energy", abs(res["energy"] - e0), e_tol)
            self.record(f"{key}_forces", np.max(np.abs(res["forces"] - expected)), f_tol)
        return batch[3]

    def batch_vs_single(self, in_batch: dict[str, Any]) -> None:
        """The structure evaluated within a batch equals it evaluated alone."""
        tol, ref = self.tol, self.ref
        self.same = same = rounding_tolerances(
            self.atoms, ref, self.potential.dtype, cutoff=self.cutoff, tolerances=tol
        )
        self.record("batch_vs_single_energy", abs(in_batch["energy"] - self.e0), same["energy"])
        self.record(
            "batch_vs_single_forces", np.max(np.abs(in_batch["forces"] - self.f0)), same["forces"]
        )
        if "stress" in ref and "stress" in same:
            self.report.scales["stress"] = same["stress"] / (tol.stress_ulps * tol.eps)
            self.record(
                "batch_vs_single_stress",
                np.max(np.abs(in_batch["stress"] - ref["stress"])),
                same["stress"],
            )

    def calculator_vs_evaluate(self) -> None:
        """The ASE calculator gives the same numbers as :meth:`Potential.evaluate`."""
        probe = self.atoms.copy()
        probe.calc = self.potential.calculator()
        energy = probe.get_potential_energy()
        self.record("calculator_vs_evaluate", abs(energy - self.e0), self.same["energy"])
