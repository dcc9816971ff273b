"""Harmonic vibrations from finite differences of forces, evaluated as one batch.

:func:`vibrations` displaces every selected atom by ``±delta`` (and ``±2 delta`` with
``nfree=4``) along x, y and z, evaluates the reference and all displaced structures with **one**
:meth:`Potential.evaluate` call (or a few, with ``batch_size``), builds and symmetrizes the
Hessian, and lets ASE's :class:`ase.vibrations.VibrationsData` diagonalise it. Nothing is
written to disk (ASE's :class:`ase.vibrations.Vibrations` keeps a file cache instead).

Sign convention
---------------
Frequencies and mode energies are returned as **real** arrays: an imaginary mode of magnitude
``x`` (negative curvature, e.g. the reaction coordinate at a saddle point) is stored as ``-x``,
and :attr:`VibrationsResult.imaginary` flags it. ASE's complex values are available from
:attr:`VibrationsResult.vibrations_data`.

For a free molecule, 6 modes (5 if linear) are translations and rotations and come out near
zero (a few cm⁻¹, possibly slightly imaginary from numerical noise); they are *included* in
``frequencies_cm1``. :meth:`VibrationsResult.gibbs` removes them for the ideal-gas model.

Examples
--------
>>> from ase.build import molecule
>>> vib = vibrations(relaxed_h2o, "sevennet-0")  # doctest: +SKIP
>>> vib.frequencies_cm1[-3:]  # the three real modes of water  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms, units

from nnp_lab import validation
from nnp_lab.analysis.thermochemistry import (
    STANDARD_PRESSURE_PA,
    Geometry,
    harmonic_free_energy,
    harmonic_thermo,
    ideal_gas_thermo,
)
from nnp_lab.errors import InputError
from nnp_lab.potentials import Potential, resolve_potential

__all__ = ["VibrationsResult", "vibrations", "default_indices"]

logger = logging.getLogger(__name__)

#: Residual force (eV/Å) on the vibrating atoms above which a warning says to relax first.
STATIONARY_FMAX = 0.1


def default_indices(atoms: Atoms) -> list[int]:
    """Atoms that vibrate by default: all except those fixed by ``FixAtoms`` (ASE's choice).

    Parameters
    ----------
    atoms
        The structure.
    """
    from ase.constraints import FixAtoms

    fixed: set[int] = set()
    for constraint in atoms.constraints:
        if isinstance(constraint, FixAtoms):
            fixed.update(int(i) for i in constraint.get_indices())
    return [i for i in range(len(atoms)) if i not in fixed]


@dataclass(repr=False)
class VibrationsResult:
    """Harmonic vibrational analysis of one structure.

    Attributes
    ----------
    atoms : ase.Atoms
        The reference structure (a copy) with a single-point calculator holding its energy
        and forces.
    energy : float
        Potential energy of the reference structure in eV.
    indices : numpy.ndarray
        Indices of the atoms that were displaced (the Hessian covers only these).
    hessian : numpy.ndarray
        Symmetrized Hessian in eV/Å², shape ``(3k, 3k)`` with ``k = len(indices)``, rows and
        columns ordered atom by atom (x, y, z).
    frequencies_cm1 : numpy.ndarray
        Harmonic frequencies in cm⁻¹, shape ``(3k,)``, ascending; **imaginary modes are
        given as negative numbers** (their magnitude is the imaginary frequency). Includes
        near-zero translations/rotations for free molecules.
    imaginary : numpy.ndarray
        Boolean mask of imaginary modes (negative curvature, any magnitude; see
        :meth:`n_imaginary` to ignore numerical noise).
    energies_eV : numpy.ndarray
        Mode energies ``h nu`` in eV, same convention and order as ``frequencies_cm1``.
    modes : numpy.ndarray
        Cartesian displacement pattern of each mode, shape ``(3k, len(atoms), 3)``: the
        eigenvectors of the mass-weighted Hessian converted to displacements (divided by
        sqrt(mass)) and normalized to unit length; zero for atoms that were not displaced.
    zero_point_energy : float
        ``sum(h nu)/2`` in eV over the real modes (imaginary modes contribute nothing; near-
        zero translations/rotations contribute their small real part, as in ASE).
    max_force : float
        Largest force on the displaced atoms at the reference geometry, eV/Å (should be ~0:
        the analysis assumes a stationary point).
    delta : float
        Displacement in Å.
    nfree : int
        2 (central differences) or 4 (five-point stencil).
    provenance : dict
        Model and package versions, parameters, timing.
    """

    atoms: Atoms
    energy: float
    indices: np.ndarray
    hessian: np.ndarray
    frequencies_cm1: np.ndarray
    imaginary: np.ndarray
    energies_eV: np.ndarray
    modes: np.ndarray
    zero_point_energy: float
    max_force: float = float("nan")
    delta: float = 0.01
    nfree: int = 2
    provenance: dict[str, Any] = field(default_factory=dict)

    # -- ASE objects ----------------------------------------------------------------------
    @property
    def vibrations_data(self) -> Any:
        """The same Hessian as an :class:`ase.vibrations.VibrationsData` (complex energies,
        ``tabulate()``, ``write_jmol()``, ``iter_animated_mode()``, DOS)."""
        from ase.vibrations import VibrationsData

        atoms = self.atoms.copy()
        atoms.calc = None
        return VibrationsData.from_2d(atoms, self.hessian, indices=self.indices.tolist())

    @property
    def complex_energies_eV(self) -> np.ndarray:
        """Mode energies in ASE's convention (imaginary modes as ``1j*x``), eV."""
        e = self.energies_eV
        return np.where(self.imaginary, 1j * np.abs(e), e + 0j)

    def n_imaginary(self, threshold_cm1: float = 20.0) -> int:
        """Number of imaginary modes whose magnitude exceeds ``threshold_cm1`` (cm⁻¹).

        Parameters
        ----------
        threshold_cm1
            Smaller imaginary frequencies are treated as numerical noise (near-zero
            translations/rotations, loose relaxation).
        """
        return int(np.sum(self.imaginary & (np.abs(self.frequencies_cm1) > threshold_cm1)))

    def animate_mode(
        self, index: int, *, temperature_K: float = 300.0, frames: int = 30
    ) -> list[Atoms]:
        """Frames of one mode oscillating with its classical amplitude at ``temperature_K``.

        Parameters
        ----------
        index
            Mode index (into ``frequencies_cm1``).
        temperature_K
            Sets the amplitude (``kT`` of energy in the mode).
        frames
            Number of frames over one period.
        """
        data = self.vibrations_data
        frames_iter = data.iter_animated_mode(
            index, temperature=units.kB * float(temperature_K), frames=int(frames)
        )
        return list(frames_iter)

    # -- thermochemistry ------------------------------------------------------------------
    def harmonic_thermo(self, *, ignore_imag_modes: bool = False) -> Any:
        """:class:`ase.thermochemistry.HarmonicThermo` of all modes (adsorbates, solids).

        Parameters
        ----------
        ignore_imag_modes
            Drop imaginary modes instead of raising.
        """
        return harmonic_thermo(
            self.energies_eV, potential_energy=self.energy, ignore_imag_modes=ignore_imag_modes
        )

    def ideal_gas_thermo(
        self,
        *,
        symmetrynumber: int,
        spin: float = 0.0,
        geometry: Geometry | None = None,
        ignore_imag_modes: bool = False,
    ) -> Any:
        """:class:`ase.thermochemistry.IdealGasThermo` for a free molecule.

        The ``3N-6`` (``3N-5``) highest modes are taken as vibrations; the analysis must
        cover all atoms of the molecule.

        Parameters
        ----------
        symmetrynumber
            Rotational symmetry number (H2O 2, NH3 3, CH4 12, CO 1, N2 2).
        spin
            Total electronic spin (0 closed shell, 1 for O2).
        geometry
            ``"monatomic"``, ``"linear"``, ``"nonlinear"``, or None to detect it.
        ignore_imag_modes
            Drop imaginary modes left after the selection instead of raising.
        """
        if len(self.indices) != len(self.atoms):
            raise InputError(
                f"an ideal-gas model needs every atom of the molecule vibrated, but only "
                f"{len(self.indices)} of {len(self.atoms)} were; run vibrations(..., indices=None) "
                "on the isolated molecule"
            )
        return ideal_gas_thermo(
            self.energies_eV,
            self.atoms,
            symmetrynumber=symmetrynumber,
            spin=spin,
            geometry=geometry,
            potential_energy=self.energy,
            ignore_imag_modes=ignore_imag_modes,
        )

    def helmholtz(
        self,
        temperature_K: float,
        *,
        include_potential_energy: bool = True,
        ignore_imag_modes: bool = False,
    ) -> float:
        """Harmonic Helmholtz free energy in eV (adsorbates, defects, solids).

        ``F = E_pot + ZPE + U_vib(T) - T S_vib(T)`` with every mode harmonic.

        Parameters
        ----------
        temperature_K
            Temperature in K.
        include_potential_energy
            Include the potential energy of the structure (False: vibrational correction).
        ignore_imag_modes
            Drop imaginary modes instead of raising.
        """
        return harmonic_free_energy(
            self.energies_eV,
            temperature_K,
            potential_energy=self.energy if include_potential_energy else 0.0,
            ignore_imag_modes=ignore_imag_modes,
        )

    def gibbs(
        self,
        temperature_K: float,
        pressure_Pa: float = STANDARD_PRESSURE_PA,
        *,
        symmetrynumber: int,
        spin: float = 0.0,
        geometry: Geometry | None = None,
        include_potential_energy: bool = True,
        ignore_imag_modes: bool = False,
    ) -> float:
        """Ideal-gas Gibbs free energy in eV of a free molecule.

        Parameters
        ----------
        temperature_K
            Temperature in K.
        pressure_Pa
            Partial pressure in Pa (default 1 bar).
        symmetrynumber, spin, geometry, ignore_imag_modes
            See :meth:`ideal_gas_thermo`.
        include_potential_energy
            Include the potential energy (False: thermal correction only).
        """
        thermo = self.ideal_gas_thermo(
            symmetrynumber=symmetrynumber,
            spin=spin,
            geometry=geometry,
            ignore_imag_modes=ignore_imag_modes,
        )
        value = float(
            thermo.get_gibbs_energy(
                validation.number("temperature_K", temperature_K, strict=True, unit="K"),
                validation.number("pressure_Pa", pressure_Pa, strict=True, unit="Pa"),
                verbose=False,
            )
        )
        return value if include_potential_energy else value - self.energy

    # -- display --------------------------------------------------------------------------
    def tabulate(self) -> str:
        """A table of modes (index, meV, cm⁻¹; imaginary marked ``i``) and the ZPE."""
        lines = ["  #      meV      cm^-1", "-" * 26]
        for n, (e, f, im) in enumerate(zip(self.energies_eV, self.frequencies_cm1, self.imaginary)):
            mark = "i" if im else " "
            lines.append(f"{n:3d} {abs(e) * 1e3:8.1f}{mark} {abs(f):9.1f}{mark}")
        lines.append("-" * 26)
        lines.append(f"zero-point energy: {self.zero_point_energy:.4f} eV")
        return "\n".join(lines)

    def __repr__(self) -> str:
        real = self.frequencies_cm1[~self.imaginary]
        top = ", ".join(f"{f:.0f}" for f in real[-3:][::-1])
        return (
            f"VibrationsResult({self.atoms.get_chemical_formula()}, {len(self.indices)} atoms "
            f"vibrated, {len(self.frequencies_cm1)} modes, highest [{top}] cm^-1, "
            f"n_imaginary={self.n_imaginary()} (>20 cm^-1), "
            f"zero_point_energy={self.zero_point_energy:.4f} eV)"
        )


def _check_indices(atoms: Atoms, indices: Sequence[int] | None) -> np.ndarray:
    if indices is None:
        idx = default_indices(atoms)
        if not idx:
            raise InputError(
                "every atom is fixed by FixAtoms, so nothing can vibrate; pass indices=[...] "
                "to choose the atoms to displace"
            )
        return np.array(idx, dtype=int)
    try:
        arr = np.asarray(list(indices))
    except TypeError as exc:
        raise InputError(f"indices must be a sequence of atom indices, got {indices!r}") from exc
    if arr.size == 0:
        raise InputError("indices is empty; pass at least one atom index (or None for all)")
    if arr.dtype == bool:
        raise InputError(
            "indices must be atom indices, not a boolean mask; use np.flatnonzero(mask)"
        )
    if not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"indices must be integers, got {indices!r}")
    n = len(atoms)
    bad = arr[(arr < -n) | (arr >= n)]
    if bad.size:
        raise InputError(f"indices {bad.tolist()} are out of range for {n} atoms")
    arr = np.where(arr < 0, arr + n, arr).astype(int)
    if len(set(arr.tolist())) != len(arr):
        raise InputError(f"indices contain duplicates: {arr.tolist()}; list each atom once")
    # Ascending: ASE's VibrationsData keeps the vibrated atoms as a mask (ascending order), so
    # a Hessian built in any other order would be paired with the wrong atoms' masses and rows.
    return np.sort(arr)


def _check_options(delta: Any, nfree: Any, batch_size: Any) -> None:
    """Raise InputError for a bad ``delta``, ``nfree`` or ``batch_size``; warn for a large
    ``delta``."""
    if (
        isinstance(delta, bool)
        or not isinstance(delta, (int, float, np.integer, np.floating))
        or not np.isfinite(delta)
        or delta <= 0
    ):
        raise InputError(f"delta must be a positive displacement in Å, got {delta!r}")
    if delta > 0.1:
        warnings.warn(
            f"delta={delta} Å is large for a harmonic analysis; 0.005–0.02 Å is usual",
            stacklevel=3,
        )
    if nfree not in (2, 4) or isinstance(nfree, bool):
        raise InputError(f"nfree must be 2 (central differences) or 4 (five-point), got {nfree!r}")
    if batch_size is not None and (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise InputError(f"batch_size must be a positive integer or None, got {batch_size!r}")


def _displaced(atoms: Atoms, idx: np.ndarray, steps: list[int], delta: float) -> list[Atoms]:
    """The reference structure, then for every atom in ``idx``, every direction x, y, z and
    every step ``s`` a copy displaced by ``s * delta`` (constraints removed: displacements
    are applied to raw positions, as in ASE)."""
    reference = atoms.copy()
    reference.calc = None
    reference.set_constraint()
    structures: list[Atoms] = [reference]
    for a in idx:
        for i in range(3):
            for s in steps:
                displaced = reference.copy()
                displaced.positions[a, i] += s * delta
                structures.append(displaced)
    return structures


def _evaluate_in_chunks(
    pot: Potential, structures: list[Atoms], batch_size: int | None
) -> tuple[list[dict[str, Any]], int]:
    """Energies and forces of ``structures``, ``batch_size`` per call (None: one call);
    returns the results and the number of calls."""
    chunk = len(structures) if batch_size is None else int(batch_size)
    results: list[dict[str, Any]] = []
    n_calls = 0
    for start in range(0, len(structures), chunk):
        results.extend(pot.evaluate(structures[start : start + chunk], ("energy", "forces")))
        n_calls += 1
    return results, n_calls


def _hessian(
    displaced: list[dict[str, Any]], idx: np.ndarray, n_steps: int, delta: float
) -> tuple[np.ndarray, float]:
    """The symmetrized Hessian (eV/Å²) from the results of the displaced structures (in the
    order of :func:`_displaced`), and its largest asymmetry before symmetrizing."""
    forces = np.array([np.asarray(r["forces"], dtype=float)[idx] for r in displaced])
    forces = forces.reshape(len(idx), 3, n_steps, len(idx) * 3)
    # forces[a, i, k] = forces on the vibrated atoms (flattened) for displacement steps[k]
    if n_steps == 2:
        dfdx = (forces[:, :, 0] - forces[:, :, 1]) / (2 * delta)
    else:
        fp, fm, fpp, fmm = (forces[:, :, k] for k in range(4))
        dfdx = (8 * fp - 8 * fm - fpp + fmm) / (12 * delta)
    hessian = -dfdx.reshape(3 * len(idx), 3 * len(idx))
    asymmetry = float(np.abs(hessian - hessian.T).max())
    logger.debug("largest Hessian asymmetry before symmetrizing: %.3g eV/Å²", asymmetry)
    return 0.5 * (hessian + hessian.T), asymmetry


def _normal_modes(
    atoms: Atoms, hessian: np.ndarray, idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mode energies (eV, imaginary ones negative), the imaginary mask and the unit-length
    Cartesian modes, from ASE's mass-weighted diagonalisation."""
    from ase.vibrations import VibrationsData

    plain = atoms.copy()
    plain.calc = None
    data = VibrationsData.from_2d(plain, hessian, indices=idx.tolist())
    energies_c, modes = data.get_energies_and_modes(all_atoms=True)
    imaginary = np.abs(energies_c.imag) > np.abs(energies_c.real)
    energies = np.where(imaginary, -np.abs(energies_c.imag), energies_c.real).astype(float)
    norms = np.linalg.norm(modes.reshape(len(modes), -1), axis=1)
    modes = modes / np.where(norms > 0, norms, 1.0)[:, None, None]
    return energies, imaginary, modes


def vibrations(
    atoms: Atoms,
    potential: Potential | str | None = None,
    *,
    indices: Sequence[int] | None = None,
    delta: float = 0.01,
    nfree: int = 2,
    batch_size: int | None = None,
) -> VibrationsResult:
    """Harmonic frequencies and modes from finite differences of forces.

    All displaced structures (``3 * len(indices) * nfree`` of them) and the reference are
    evaluated with one :meth:`Potential.evaluate` call (``batch_size`` splits it), then the
    Hessian ``H_ij = -dF_j/dx_i`` is symmetrized, ``(H + H.T) / 2``, and diagonalised with
    mass weighting by :class:`ase.vibrations.VibrationsData`. The same recipe as ASE's
    :class:`ase.vibrations.Vibrations`, without its file cache.

    Parameters
    ----------
    atoms
        A relaxed structure (a minimum, or a saddle point from :func:`~nnp_lab.simulate.neb`);
        not modified. Masses are taken from ``atoms`` (set isotopes with ``set_masses``).
    potential
        A :class:`~nnp_lab.potentials.Potential`, a registered name, or None (default model).
    indices
        Atoms to displace, in any order (``result.indices`` lists them ascending); None means
        every atom not fixed by ``FixAtoms`` (e.g. just the adsorbate when the slab is fixed).
    delta
        Displacement in Å. 0.01 suits float64 models; float32 universal models are noisier,
        and 0.01–0.02 Å is a reasonable range.
    nfree
        2: central differences ``±delta``; 4: five-point stencil ``±delta, ±2 delta``.
    batch_size
        Largest number of structures per :meth:`Potential.evaluate` call (None: all in one
        call; the potential itself splits big batches to bound memory).

    Returns
    -------
    VibrationsResult
        Frequencies (cm⁻¹, imaginary as negative), mode energies, normalized modes, ZPE,
        the Hessian and thermochemistry helpers.

    Raises
    ------
    InputError
        Bad indices, ``delta`` or ``nfree``, zero masses, or a structure the potential cannot
        evaluate.

    Warns
    -----
    UserWarning
        When the reference structure is not stationary (force > 0.1 eV/Å on a displaced
        atom): relax it first, or the frequencies are unreliable.
    """
    if not isinstance(atoms, Atoms):
        raise InputError(
            f"vibrations needs an ase.Atoms, got {type(atoms).__name__}; build one with "
            "nnp_lab.build or ase.io.read"
        )
    _check_options(delta, nfree, batch_size)
    started = time.perf_counter()
    pot = resolve_potential(potential)
    pot.check(atoms)
    idx = _check_indices(atoms, indices)
    masses = atoms.get_masses()[idx]
    if np.any(masses <= 0):
        raise InputError(
            f"atoms {idx[masses <= 0].tolist()} have zero mass; set masses with "
            "atoms.set_masses(...)"
        )

    steps = [1, -1] if nfree == 2 else [1, -1, 2, -2]
    structures = _displaced(atoms, idx, steps, delta)
    results, n_calls = _evaluate_in_chunks(pot, structures, batch_size)
    logger.info(
        "vibrations of %s: %d displaced structures in %d evaluate call(s)",
        atoms.get_chemical_formula(),
        len(structures) - 1,
        n_calls,
    )
    ref = results[0]
    hessian, asymmetry = _hessian(results[1:], idx, len(steps), delta)
    ref_forces = np.asarray(ref["forces"], dtype=float)
    max_force = float(np.sqrt((ref_forces[idx] ** 2).sum(axis=1)).max())
    if max_force > STATIONARY_FMAX:
        warnings.warn(
            f"the structure is not at a stationary point: force {max_force:.3f} eV/Å on a "
            "displaced atom (> 0.1); relax it first (nnp_lab.simulate.relax) or the harmonic "
            "frequencies are unreliable",
            stacklevel=2,
        )
    energies, imaginary, modes = _normal_modes(atoms, hessian, idx)

    from ase.calculators.singlepoint import SinglePointCalculator

    stored = atoms.copy()
    stored.calc = SinglePointCalculator(stored, energy=float(ref["energy"]), forces=ref_forces)
    provenance = pot.provenance()
    provenance.update(
        {
            "run": "vibrations",
            "parameters": {
                "indices": idx.tolist(),
                "delta": float(delta),
                "nfree": int(nfree),
                "batch_size": batch_size,
                "n_structures": len(structures),
                "n_evaluate_calls": n_calls,
                "formula": atoms.get_chemical_formula(),
            },
            "hessian_asymmetry": asymmetry,
            "wall_time_s": round(time.perf_counter() - started, 3),
        }
    )
    return VibrationsResult(
        atoms=stored,
        energy=float(ref["energy"]),
        indices=idx,
        hessian=hessian,
        frequencies_cm1=energies / units.invcm,
        imaginary=imaginary,
        energies_eV=energies,
        modes=modes,
        zero_point_energy=float(0.5 * energies[~imaginary].sum()),
        max_force=max_force,
        delta=float(delta),
        nfree=int(nfree),
        provenance=provenance,
    )
