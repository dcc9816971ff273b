"""nnp_lab: universal neural network potentials in your notebook.

Build structures (:mod:`nnp_lab.build`), evaluate them with an embedded universal potential
(:func:`load_potential`), and relax, run MD, NEB or swap Monte Carlo (:mod:`nnp_lab.simulate`)
with every step streamed to whoever listens; answer materials questions in one call each
(:mod:`nnp_lab.properties`: equation of state, elastic tensor, phonons, defect, surface,
adsorption, grain-boundary and binding energies, diffusion).
"""

from importlib.metadata import PackageNotFoundError, version

from nnp_lab import build, properties
from nnp_lab.errors import (
    InputError,
    SimulationError,
    StructureError,
    UncoveredElementsError,
    UnknownModelError,
)
from nnp_lab.potentials import Potential, list_potentials, load_potential
from nnp_lab.screening import screen
from nnp_lab.simulate import md, neb, relax, swap_mc, vibrations
from nnp_lab.threads import get_threads, set_threads

try:
    __version__ = version("nnp_lab")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = [
    "__version__",
    "build",
    "properties",
    "InputError",
    "SimulationError",
    "StructureError",
    "UncoveredElementsError",
    "UnknownModelError",
    "Potential",
    "list_potentials",
    "load_potential",
    "relax",
    "md",
    "neb",
    "vibrations",
    "swap_mc",
    "screen",
    "set_threads",
    "get_threads",
]
