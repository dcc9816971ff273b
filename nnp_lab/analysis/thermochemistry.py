"""Thin thermochemistry helpers on top of :mod:`ase.thermochemistry`.

Harmonic free energies for adsorbates and solids (:func:`harmonic_free_energy`), ideal-gas
enthalpies and Gibbs energies for molecules (:func:`ideal_gas_gibbs`), and zero-point energies.
All the statistical mechanics is ASE's (:class:`ase.thermochemistry.HarmonicThermo`,
:class:`ase.thermochemistry.IdealGasThermo`); these functions only take care of unit-labelled
arguments, of our sign convention for imaginary modes, and of keeping ASE quiet.

Units: energies in eV, temperatures in K, pressures in Pa, entropies in eV/K.

Vibrational energies may be given as ASE returns them (complex, imaginary modes as ``1j*x``)
or in nnp_lab's real convention where an imaginary mode of magnitude ``x`` is stored as
``-x`` (see :class:`nnp_lab.simulate.vibrations.VibrationsResult`). Both are converted with
:func:`to_complex_energies`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from ase import Atoms

from nnp_lab import validation
from nnp_lab.errors import InputError

__all__ = [
    "to_complex_energies",
    "zero_point_energy",
    "molecule_geometry",
    "harmonic_thermo",
    "harmonic_free_energy",
    "harmonic_entropy",
    "ideal_gas_thermo",
    "ideal_gas_gibbs",
    "ideal_gas_enthalpy",
    "ideal_gas_entropy",
]

logger = logging.getLogger(__name__)

Geometry = Literal["monatomic", "linear", "nonlinear"]

#: Standard pressure (1 bar) in Pa.
STANDARD_PRESSURE_PA = 1.0e5


def to_complex_energies(energies_eV: Sequence[complex] | np.ndarray) -> np.ndarray:
    """Vibrational energies as ASE expects them: real modes real, imaginary modes ``1j*|x|``.

    Parameters
    ----------
    energies_eV
        Mode energies in eV, either complex (ASE's ``VibrationsData.get_energies()``) or
        real with imaginary modes as negative numbers (nnp_lab's convention).

    Returns
    -------
    numpy.ndarray
        Complex array of the same length.
    """
    arr = np.asarray(energies_eV)
    if arr.ndim != 1:
        raise InputError(f"energies_eV must be a 1-D sequence, got shape {arr.shape}")
    if np.iscomplexobj(arr):
        return arr.astype(complex)
    arr = arr.astype(float)
    return np.where(arr < 0, 1j * np.abs(arr), arr + 0j)


def zero_point_energy(energies_eV: Sequence[complex] | np.ndarray) -> float:
    """Zero-point energy ``sum(h nu)/2`` in eV over the real modes (imaginary modes add 0).

    Parameters
    ----------
    energies_eV
        Mode energies ``h nu`` in eV (complex, or real with imaginary modes negative).
    """
    e = to_complex_energies(energies_eV)
    return float(0.5 * e.real.sum())


def molecule_geometry(atoms: Atoms, *, tol: float = 1e-3) -> Geometry:
    """``"monatomic"``, ``"linear"`` or ``"nonlinear"`` from the moments of inertia.

    Parameters
    ----------
    atoms
        A molecule (periodicity is ignored; it must not be split across cell boundaries).
    tol
        A principal moment below ``tol`` times the largest one counts as zero (amu Å²
        ratio).
    """
    if len(atoms) == 1:
        return "monatomic"
    moments = np.sort(atoms.get_moments_of_inertia())
    if moments[-1] <= 0 or moments[0] < tol * moments[-1]:
        return "linear"
    return "nonlinear"


def _check_temperature(temperature_K: float) -> float:
    return validation.number("temperature_K", temperature_K, strict=True, unit="K")


def harmonic_thermo(
    energies_eV: Sequence[complex] | np.ndarray,
    *,
    potential_energy: float = 0.0,
    ignore_imag_modes: bool = False,
) -> Any:
    """An :class:`ase.thermochemistry.HarmonicThermo` (all degrees of freedom harmonic).

    Suits adsorbates and other bound systems where translations and rotations are
    frustrated. Every mode given is treated as a vibration.

    Parameters
    ----------
    energies_eV
        Mode energies in eV (complex, or real with imaginary modes negative).
    potential_energy
        Electronic/potential energy in eV added to U and F (0: corrections only).
    ignore_imag_modes
        Drop imaginary modes (with a warning from ASE) instead of raising.

    Returns
    -------
    ase.thermochemistry.HarmonicThermo

    Raises
    ------
    InputError
        Imaginary modes present and ``ignore_imag_modes=False``.
    """
    from ase.thermochemistry import HarmonicThermo

    e = to_complex_energies(energies_eV)
    n_imag = int(np.sum(np.abs(e.imag) > 0))
    if n_imag and not ignore_imag_modes:
        raise InputError(
            f"{n_imag} imaginary mode(s) present (largest {np.abs(e.imag).max() * 1e3:.2f} meV); "
            "a harmonic free energy needs a minimum. Relax the structure further, or pass "
            "ignore_imag_modes=True to drop them (tiny ones are translations/rotations of a "
            "free molecule or cluster; a large one is the reaction coordinate of a transition "
            "state)"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "n imag modes removed": we checked
        return HarmonicThermo(
            list(e), potentialenergy=float(potential_energy), ignore_imag_modes=ignore_imag_modes
        )


def harmonic_free_energy(
    energies_eV: Sequence[complex] | np.ndarray,
    temperature_K: float,
    *,
    potential_energy: float = 0.0,
    ignore_imag_modes: bool = False,
) -> float:
    """Harmonic Helmholtz free energy ``F = E_pot + ZPE + U_vib(T) - T S_vib(T)`` in eV.

    Parameters
    ----------
    energies_eV
        Mode energies in eV (complex, or real with imaginary modes negative).
    temperature_K
        Temperature in K.
    potential_energy
        Potential energy in eV (0 returns the vibrational correction only).
    ignore_imag_modes
        Drop imaginary modes instead of raising.

    Returns
    -------
    float
        Same value as ``HarmonicThermo(...).get_helmholtz_energy(T)``.
    """
    T = _check_temperature(temperature_K)
    thermo = harmonic_thermo(
        energies_eV, potential_energy=potential_energy, ignore_imag_modes=ignore_imag_modes
    )
    return float(thermo.get_helmholtz_energy(T, verbose=False))


def harmonic_entropy(
    energies_eV: Sequence[complex] | np.ndarray,
    temperature_K: float,
    *,
    ignore_imag_modes: bool = False,
) -> float:
    """Harmonic vibrational entropy in eV/K.

    Parameters
    ----------
    energies_eV
        Mode energies in eV (complex, or real with imaginary modes negative).
    temperature_K
        Temperature in K.
    ignore_imag_modes
        Drop imaginary modes instead of raising.
    """
    T = _check_temperature(temperature_K)
    thermo = harmonic_thermo(energies_eV, ignore_imag_modes=ignore_imag_modes)
    return float(thermo.get_entropy(T, verbose=False))


def ideal_gas_thermo(
    energies_eV: Sequence[complex] | np.ndarray,
    atoms: Atoms,
    *,
    symmetrynumber: int,
    spin: float = 0.0,
    geometry: Geometry | None = None,
    potential_energy: float = 0.0,
    ignore_imag_modes: bool = False,
) -> Any:
    """An :class:`ase.thermochemistry.IdealGasThermo` for a gas-phase molecule.

    The ``3N-6`` (``3N-5`` linear, 0 monatomic) highest modes are kept as vibrations (ASE's
    ``vib_selection="highest"``), so the near-zero translations and rotations of a full
    vibrational analysis can be passed in as they are.

    Parameters
    ----------
    energies_eV
        Mode energies in eV (complex, or real with imaginary modes negative), e.g. all
        ``3N`` of them.
    atoms
        The molecule (moments of inertia and mass). Periodic boundary conditions are
        switched off on a copy; the molecule must not be split across the cell boundary.
    symmetrynumber
        Rotational symmetry number σ (H2O 2, NH3 3, CH4 12, CO 1, N2/CO2 2, ...).
    spin
        Total electronic spin S (0 closed shell, 0.5 radical, 1 triplet O2).
    geometry
        ``"monatomic"``, ``"linear"`` or ``"nonlinear"``; None detects it from the moments of
        inertia (:func:`molecule_geometry`).
    potential_energy
        Potential energy in eV (0: thermal corrections only).
    ignore_imag_modes
        Drop imaginary modes that survive the selection instead of raising.

    Returns
    -------
    ase.thermochemistry.IdealGasThermo
    """
    from ase.thermochemistry import IdealGasThermo

    if not isinstance(atoms, Atoms):
        raise InputError(f"atoms must be an ase.Atoms (the molecule), got {type(atoms).__name__}")
    if (
        isinstance(symmetrynumber, bool)
        or not isinstance(symmetrynumber, (int, np.integer))
        or (symmetrynumber < 1)
    ):
        raise InputError(
            f"symmetrynumber must be a positive integer (H2O 2, NH3 3, CH4 12, CO 1), got "
            f"{symmetrynumber!r}"
        )
    molecule = atoms.copy()
    molecule.calc = None
    molecule.pbc = False
    geometry = geometry or molecule_geometry(molecule)
    if geometry not in ("monatomic", "linear", "nonlinear"):
        raise InputError(f"geometry must be 'monatomic', 'linear' or 'nonlinear', got {geometry!r}")
    e = to_complex_energies(energies_eV)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return IdealGasThermo(
                list(e),
                geometry=geometry,
                potentialenergy=float(potential_energy),
                atoms=molecule,
                symmetrynumber=int(symmetrynumber),
                spin=float(spin),
                ignore_imag_modes=ignore_imag_modes,
            )
    except ValueError as exc:
        if "maginary" in str(exc):
            raise InputError(
                "imaginary vibrational modes remain after removing translations and "
                "rotations; relax the molecule further, or pass ignore_imag_modes=True"
            ) from exc
        raise InputError(f"cannot build the ideal-gas model: {exc}") from exc


def ideal_gas_gibbs(
    energies_eV: Sequence[complex] | np.ndarray,
    temperature_K: float,
    pressure_Pa: float = STANDARD_PRESSURE_PA,
    *,
    atoms: Atoms,
    symmetrynumber: int,
    spin: float = 0.0,
    geometry: Geometry | None = None,
    potential_energy: float = 0.0,
    ignore_imag_modes: bool = False,
) -> float:
    """Ideal-gas Gibbs free energy ``G = H - T S`` in eV at ``temperature_K`` and ``pressure_Pa``.

    Parameters
    ----------
    energies_eV
        Mode energies in eV (complex, or real with imaginary modes negative).
    temperature_K
        Temperature in K.
    pressure_Pa
        Partial pressure in Pa (default 1 bar = 1e5 Pa).
    atoms, symmetrynumber, spin, geometry, potential_energy, ignore_imag_modes
        See :func:`ideal_gas_thermo`.

    Returns
    -------
    float
        Same value as ``IdealGasThermo(...).get_gibbs_energy(T, p)``.
    """
    T = _check_temperature(temperature_K)
    p = _check_pressure(pressure_Pa)
    thermo = ideal_gas_thermo(
        energies_eV,
        atoms,
        symmetrynumber=symmetrynumber,
        spin=spin,
        geometry=geometry,
        potential_energy=potential_energy,
        ignore_imag_modes=ignore_imag_modes,
    )
    return float(thermo.get_gibbs_energy(T, p, verbose=False))


def ideal_gas_enthalpy(
    energies_eV: Sequence[complex] | np.ndarray,
    temperature_K: float,
    *,
    atoms: Atoms,
    geometry: Geometry | None = None,
    potential_energy: float = 0.0,
    ignore_imag_modes: bool = False,
) -> float:
    """Ideal-gas enthalpy ``H = E_pot + ZPE + ∫Cp dT`` in eV (independent of pressure).

    Parameters
    ----------
    energies_eV
        Mode energies in eV (complex, or real with imaginary modes negative).
    temperature_K
        Temperature in K.
    atoms, geometry, potential_energy, ignore_imag_modes
        See :func:`ideal_gas_thermo` (no symmetry number or spin needed).
    """
    T = _check_temperature(temperature_K)
    thermo = ideal_gas_thermo(
        energies_eV,
        atoms,
        symmetrynumber=1,
        geometry=geometry,
        potential_energy=potential_energy,
        ignore_imag_modes=ignore_imag_modes,
    )
    return float(thermo.get_enthalpy(T, verbose=False))


def ideal_gas_entropy(
    energies_eV: Sequence[complex] | np.ndarray,
    temperature_K: float,
    pressure_Pa: float = STANDARD_PRESSURE_PA,
    *,
    atoms: Atoms,
    symmetrynumber: int,
    spin: float = 0.0,
    geometry: Geometry | None = None,
    ignore_imag_modes: bool = False,
) -> float:
    """Ideal-gas entropy (translation, rotation, vibration, electronic) in eV/K.

    Parameters
    ----------
    energies_eV
        Mode energies in eV (complex, or real with imaginary modes negative).
    temperature_K
        Temperature in K.
    pressure_Pa
        Partial pressure in Pa (default 1 bar).
    atoms, symmetrynumber, spin, geometry, ignore_imag_modes
        See :func:`ideal_gas_thermo`.
    """
    T = _check_temperature(temperature_K)
    p = _check_pressure(pressure_Pa)
    thermo = ideal_gas_thermo(
        energies_eV,
        atoms,
        symmetrynumber=symmetrynumber,
        spin=spin,
        geometry=geometry,
        ignore_imag_modes=ignore_imag_modes,
    )
    return float(thermo.get_entropy(T, p, verbose=False))


def _check_pressure(pressure_Pa: float) -> float:
    return validation.number("pressure_Pa", pressure_Pa, strict=True, unit="Pa")
