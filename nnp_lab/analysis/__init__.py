"""Analysis of simulation results (NumPy + ASE): thermochemistry, and more to come.

:mod:`nnp_lab.analysis.thermochemistry` wraps :mod:`ase.thermochemistry` with unit-labelled
arguments (eV, K, Pa) and nnp_lab's convention for imaginary modes (negative numbers).
"""

from nnp_lab.analysis.thermochemistry import (
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

__all__ = [
    "harmonic_entropy",
    "harmonic_free_energy",
    "harmonic_thermo",
    "ideal_gas_enthalpy",
    "ideal_gas_entropy",
    "ideal_gas_gibbs",
    "ideal_gas_thermo",
    "molecule_geometry",
    "to_complex_energies",
    "zero_point_energy",
]
