"""Materials properties in one call each: batched, checked, plotted.

Every function has the shape ``name(atoms, potential=None, *, keyword=...) -> NameResult``:
ASE units, units in the field names, the input never modified, every structure evaluated at
fixed positions in one batched model call, relaxations through :func:`nnp_lab.simulate.relax`.
Results are frozen dataclasses with ``.to_dict()`` (JSON-safe), ``.plot()`` (a plotly
figure), ``provenance`` and ``flags`` — the quality checks that failed, each also issued as a
:class:`PropertyWarning` in plain language.

- :func:`eos` — energy–volume curve, Birch–Murnaghan (or another ASE form) fit.
- :func:`elastic` — the 6×6 elastic tensor from independent strains (pymatgen's fit), the
  Voigt/Reuss/Hill moduli, Born stability.
- :func:`phonons` — band structure, DOS, thermal properties (phonopy); :func:`qha` —
  thermal expansion, B(T) and G(T) in the quasi-harmonic approximation.
- :func:`vacancy_formation` — vacancy formation energy at constant volume.
- :func:`surface_energy` — γ of a facet, per slab thickness (the convergence shown).
- :func:`adsorption_energy` — E_ads at one site or every symmetry-distinct one, sorted.
- :func:`grain_boundary_energy` — γ of a CSL boundary (pymatgen's GrainBoundaryGenerator).
- :func:`binding_energy` — guest molecules in a host (MOF pores), per molecule.
- From MD trajectories: :func:`diffusion` (MSD, tracer diffusivity with its error,
  Nernst–Einstein conductivity; pymatgen's DiffusionAnalyzer) and :func:`arrhenius`
  (activation energy, extrapolation to 300 K), :func:`rdf` (partial g(r), coordination)
  and :func:`vibrational_dos` (from the velocity autocorrelation).
"""

from __future__ import annotations

from nnp_lab.properties._binding import BindingResult, binding_energy
from nnp_lab.properties._common import PropertyProgress, PropertyResult, PropertyWarning
from nnp_lab.properties._correlations import RDFResult, VDOSResult, rdf, vibrational_dos
from nnp_lab.properties._defects import VacancyResult, vacancy_formation
from nnp_lab.properties._arrhenius import ArrheniusResult, arrhenius
from nnp_lab.properties._diffusion import DiffusionResult, diffusion
from nnp_lab.properties._elastic import ElasticResult, elastic
from nnp_lab.properties._eos import EOSResult, eos
from nnp_lab.properties._interfaces import GrainBoundaryResult, grain_boundary_energy
from nnp_lab.properties._phonons import PhononResult, QHAResult, phonons, qha
from nnp_lab.properties._surfaces import (
    AdsorptionResult,
    AdsorptionSite,
    SurfaceEnergyResult,
    adsorption_energy,
    surface_energy,
)

__all__ = [
    "PropertyProgress",
    "PropertyResult",
    "PropertyWarning",
    "EOSResult",
    "eos",
    "ElasticResult",
    "elastic",
    "PhononResult",
    "phonons",
    "QHAResult",
    "qha",
    "VacancyResult",
    "vacancy_formation",
    "SurfaceEnergyResult",
    "surface_energy",
    "AdsorptionSite",
    "AdsorptionResult",
    "adsorption_energy",
    "GrainBoundaryResult",
    "grain_boundary_energy",
    "BindingResult",
    "binding_energy",
    "DiffusionResult",
    "diffusion",
    "ArrheniusResult",
    "arrhenius",
    "RDFResult",
    "rdf",
    "VDOSResult",
    "vibrational_dos",
]
