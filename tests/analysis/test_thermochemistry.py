"""Thermochemistry helpers give exactly what ase.thermochemistry gives for the same input."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.thermochemistry import HarmonicThermo, IdealGasThermo

from nnp_lab.analysis import (
    harmonic_entropy,
    harmonic_free_energy,
    harmonic_thermo,
    ideal_gas_enthalpy,
    ideal_gas_entropy,
    ideal_gas_gibbs,
    ideal_gas_thermo,
    molecule_geometry,
    to_complex_energies,
    zero_point_energy,
)
from nnp_lab.errors import InputError

# Adsorbate-like mode energies (eV) and an N2 molecule's 6 modes (5 near zero + stretch).
ADSORBATE = [0.0048, 0.0123, 0.0186, 0.0307, 0.0457, 0.2624]
N2_MODES = [1e-4, 2e-4, 3e-4, 0.0011, 0.0012, 0.2903]
TEMPERATURES = [50.0, 298.15, 1000.0]


@pytest.mark.parametrize("T", TEMPERATURES)
def test_harmonic_matches_ase(T):
    ref = HarmonicThermo(ADSORBATE, potentialenergy=-1.5)
    assert harmonic_free_energy(ADSORBATE, T, potential_energy=-1.5) == pytest.approx(
        ref.get_helmholtz_energy(T, verbose=False), rel=0, abs=1e-12
    )
    assert harmonic_entropy(ADSORBATE, T) == pytest.approx(
        ref.get_entropy(T, verbose=False), rel=0, abs=1e-15
    )
    assert harmonic_thermo(ADSORBATE).get_internal_energy(T, verbose=False) == pytest.approx(
        HarmonicThermo(ADSORBATE).get_internal_energy(T, verbose=False)
    )


def test_imaginary_modes_in_both_conventions():
    signed = [-0.01] + ADSORBATE  # nnp_lab: imaginary as negative
    ase_style = [0.01j] + ADSORBATE
    np.testing.assert_allclose(to_complex_energies(signed), np.array(ase_style, dtype=complex))
    np.testing.assert_allclose(to_complex_energies(ase_style), np.array(ase_style, dtype=complex))
    with pytest.raises(InputError, match="1 imaginary mode.*ignore_imag_modes=True"):
        harmonic_free_energy(signed, 300.0)
    with pytest.warns(UserWarning):
        thermo = HarmonicThermo(ase_style, ignore_imag_modes=True)
    ref = thermo.get_helmholtz_energy(300.0, verbose=False)
    assert harmonic_free_energy(signed, 300.0, ignore_imag_modes=True) == pytest.approx(ref)
    assert harmonic_free_energy(ase_style, 300.0, ignore_imag_modes=True) == pytest.approx(ref)
    assert zero_point_energy(signed) == pytest.approx(0.5 * sum(ADSORBATE))


@pytest.mark.parametrize("T", TEMPERATURES)
@pytest.mark.parametrize("pressure_Pa", [101325.0, 1e3])
def test_ideal_gas_matches_ase(T, pressure_Pa):
    n2 = molecule("N2")
    ref = IdealGasThermo(
        N2_MODES, geometry="linear", potentialenergy=-16.5, atoms=n2, symmetrynumber=2, spin=0
    )
    g = ideal_gas_gibbs(
        N2_MODES, T, pressure_Pa, atoms=n2, symmetrynumber=2, spin=0, potential_energy=-16.5
    )
    assert g == pytest.approx(ref.get_gibbs_energy(T, pressure_Pa, verbose=False), rel=0, abs=1e-12)
    assert ideal_gas_enthalpy(N2_MODES, T, atoms=n2, potential_energy=-16.5) == pytest.approx(
        ref.get_enthalpy(T, verbose=False), rel=0, abs=1e-12
    )
    assert ideal_gas_entropy(N2_MODES, T, pressure_Pa, atoms=n2, symmetrynumber=2) == pytest.approx(
        ref.get_entropy(T, pressure_Pa, verbose=False), rel=0, abs=1e-15
    )


def test_ideal_gas_geometry_detection_and_periodic_box():
    assert molecule_geometry(molecule("H2O")) == "nonlinear"
    assert molecule_geometry(molecule("CO2")) == "linear"
    assert molecule_geometry(Atoms("Ar")) == "monatomic"
    water = molecule("H2O")
    modes = [0.0, 0.0, 0.0, 0.001, 0.002, 0.003, 0.198, 0.454, 0.466]
    ref = IdealGasThermo(modes, geometry="nonlinear", atoms=water, symmetrynumber=2, spin=0)
    boxed = water.copy()
    boxed.center(vacuum=5.0)
    boxed.pbc = True  # as a periodic model sees it
    thermo = ideal_gas_thermo(modes, boxed, symmetrynumber=2)
    assert thermo.geometry == "nonlinear"
    assert thermo.get_gibbs_energy(300.0, 1e5, verbose=False) == pytest.approx(
        ref.get_gibbs_energy(300.0, 1e5, verbose=False), rel=0, abs=1e-12
    )
    assert boxed.pbc.all()  # the caller's Atoms is untouched


def test_bad_input():
    with pytest.raises(InputError, match="temperature_K"):
        harmonic_free_energy(ADSORBATE, -10.0)
    with pytest.raises(InputError, match="temperature_K"):
        harmonic_free_energy(ADSORBATE, "hot")
    with pytest.raises(InputError, match="pressure_Pa"):
        ideal_gas_gibbs(N2_MODES, 300.0, 0.0, atoms=molecule("N2"), symmetrynumber=2)
    with pytest.raises(InputError, match="symmetrynumber"):
        ideal_gas_gibbs(N2_MODES, 300.0, atoms=molecule("N2"), symmetrynumber=0)
    with pytest.raises(InputError, match="imaginary"):
        # the one N2 vibration is imaginary (translations/rotations are cut first)
        ideal_gas_gibbs([-0.29], 300.0, atoms=molecule("N2"), symmetrynumber=2)
