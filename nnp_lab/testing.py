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
    eps, delta = tol.eps, tol.delta
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

    # Magnitudes the tolerances scale with.
    sum_scale = max(abs(e0), n * tol.atomic_energy)  # size of the rounded sum over atoms
    cutoff = float(getattr(potential, "cutoff", 0.0) or _DEFAULT_CUTOFF)
    n_nb = _max_neighbours(atoms, cutoff)
    accumulation = float(np.sqrt(1 + n_nb))

    base = _bare(atoms)

    def central(make: Any, keys: list[Any], step: float) -> tuple[np.ndarray, ...]:
        """Energies of ``make(key, +step)`` and ``make(key, -step)`` for every key, and of
        the undisplaced structure, in one batch."""
        structures = [make(key, sign * step) for key in keys for sign in (1, -1)] + [base]
        e = np.array([r["energy"] for r in potential.evaluate(structures, ("energy",))])
        return e[0:-1:2], e[1:-1:2], e[-1]

    def compare_fd(
        key: str, make: Any, keys: list[Any], exact: np.ndarray, factor: float, rounding: float
    ) -> tuple[np.ndarray, ...]:
        """Record max |central difference - exact|; components beyond the rounding bound are
        given their truncation error, from the same difference with twice the step."""
        plus, minus, centre = central(make, keys, delta)
        fd = factor * (plus - minus) / (2 * delta)
        dev = np.abs(fd - exact)
        limit = rounding
        refine = np.flatnonzero(dev > rounding)
        if len(refine):
            plus2, minus2, _ = central(make, [keys[j] for j in refine], 2 * delta)
            fd2 = factor * (plus2 - minus2) / (4 * delta)
            limit += 2.0 * float(np.max(np.abs(fd2 - fd[refine])))
        record(key, float(np.max(dev)), limit)
        return plus, minus, centre

    # Forces = -dE/dr by central differences.
    def displace(key: tuple[int, int], step: float) -> Atoms:
        d = base.copy()
        d.positions[key] += step
        return d

    picks = rng.choice(n, size=min(n_fd_atoms, n), replace=False)
    fd_rounding = tol.fd_ulps * eps * sum_scale / delta
    keys = [(int(i), c) for i in picks for c in range(3)]
    plus, minus, centre = compare_fd(
        "forces_vs_fd", displace, keys, f0[picks].reshape(-1), -1.0, fd_rounding
    )
    # max |d²E/dx²|, all three energies from one batch (a batch-vs-single discrepancy must
    # not pass for curvature and loosen the force tolerances)
    curvature = float(np.max(np.abs(plus + minus - 2 * centre))) / delta**2

    # Stress = (1/V) dE/d(strain) by central differences.
    volume = atoms.get_volume() if has_stress(atoms) else None
    if volume is not None and "stress" in ref:

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
        compare_fd(
            "stress_vs_fd",
            strain,
            pairs,
            np.asarray(ref["stress"]),
            1.0 / volume,
            fd_rounding / volume,
        )

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
    perm = rng.permutation(n)
    permuted = base[perm]

    extent = _extent([base, rotated, translated])
    energy_scale = sum_scale + extent * float(np.abs(f0).sum())
    force_terms = max(float(np.abs(f0).max()), tol.atomic_energy / _BOND_LENGTH)
    force_scale = force_terms * accumulation + curvature * extent
    e_tol = tol.energy_ulps * eps * energy_scale
    f_tol = tol.force_ulps * eps * force_scale
    report.scales.update(
        eps=eps,
        energy=energy_scale,
        forces=force_scale,
        neighbours=n_nb,
        extent=extent,
        curvature=curvature,
    )

    batch = potential.evaluate([rotated, translated, permuted, base])
    record("rotation_energy", abs(batch[0]["energy"] - e0), e_tol)
    record("rotation_forces", np.max(np.abs(batch[0]["forces"] - f0 @ rot.T)), f_tol)
    record("translation_energy", abs(batch[1]["energy"] - e0), e_tol)
    record("translation_forces", np.max(np.abs(batch[1]["forces"] - f0)), f_tol)
    record("permutation_energy", abs(batch[2]["energy"] - e0), e_tol)
    record("permutation_forces", np.max(np.abs(batch[2]["forces"] - f0[perm])), f_tol)

    # Batch equals singles (the un-transformed structure sits last in the batch).
    same = rounding_tolerances(atoms, ref, potential.dtype, cutoff=cutoff, tolerances=tol)
    record("batch_vs_single_energy", abs(batch[3]["energy"] - e0), same["energy"])
    record("batch_vs_single_forces", np.max(np.abs(batch[3]["forces"] - f0)), same["forces"])
    if "stress" in ref and "stress" in same:
        report.scales["stress"] = same["stress"] / (tol.stress_ulps * eps)
        record(
            "batch_vs_single_stress",
            np.max(np.abs(batch[3]["stress"] - ref["stress"])),
            same["stress"],
        )

    # The ASE calculator gives the same numbers.
    probe = atoms.copy()
    probe.calc = potential.calculator()
    record("calculator_vs_evaluate", abs(probe.get_potential_energy() - e0), same["energy"])

    if raise_on_failure and not report.passed:
        raise AssertionError(str(report))
    return report
