"""Potentials: the :class:`Potential` interface, the registry and the model adapters."""

from nnp_lab.potentials.base import (
    MIN_DISTANCE,
    PROPERTIES,
    Potential,
    PotentialCalculator,
    has_stress,
    validate_structure,
)
from nnp_lab.potentials.registry import (
    DEFAULT_MODEL,
    ModelSpec,
    clear_cache,
    list_potentials,
    load_potential,
    register_potential,
    registered_names,
    resolve_device,
    resolve_potential,
)

__all__ = [
    "DEFAULT_MODEL",
    "MIN_DISTANCE",
    "PROPERTIES",
    "ModelSpec",
    "Potential",
    "PotentialCalculator",
    "clear_cache",
    "has_stress",
    "list_potentials",
    "load_potential",
    "register_potential",
    "registered_names",
    "resolve_device",
    "resolve_potential",
    "validate_structure",
]
