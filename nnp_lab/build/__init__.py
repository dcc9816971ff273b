"""Structure builders: molecules, bulk crystals, surfaces, adsorbates and nanoparticles.

Every builder returns a new :class:`ase.Atoms` (inputs are never modified) and records how
it was made in ``atoms.info["built_by"]`` (plain JSON-able values, so ``.traj`` and
``.extxyz`` files keep it). Lengths are in Å. Bad input raises
:class:`nnp_lab.errors.InputError` with a message that says how to fix it.

Examples
--------
>>> from nnp_lab import build
>>> slab = build.surface(build.bulk("Pt"), (1, 1, 1), 4, size=(3, 3), fixed_layers=2)
>>> slab = build.add_adsorbate(slab, "CO", "fcc")
>>> particle = build.nanoparticle({"Pt": 0.5, "Ni": 0.5}, shape="icosahedron", size=3, seed=1)

Edits with undo and a code record (:mod:`nnp_lab.build.editing`, what the 3D viewer uses):

>>> ed = build.editing.StructureEditor(slab)
>>> _ = ed.delete(ed.select(element="O"))
"""

from __future__ import annotations

from nnp_lab.build import editing
from nnp_lab.build.adsorption import SITE_KINDS, Site, add_adsorbate, adsorption_sites, site_xy
from nnp_lab.build.composition import parse_composition
from nnp_lab.build.crystals import (
    CRYSTAL_STRUCTURES,
    bulk,
    crystal,
    list_crystals,
    supercell,
    vacancy,
)
from nnp_lab.build.molecules import molecule, molecule_names
from nnp_lab.build.nanoparticles import (
    DEFAULT_SURFACE_ENERGIES,
    NANOPARTICLE_SHAPES,
    nanoparticle,
)
from nnp_lab.build.surfaces import surface

__all__ = [
    "CRYSTAL_STRUCTURES",
    "DEFAULT_SURFACE_ENERGIES",
    "NANOPARTICLE_SHAPES",
    "SITE_KINDS",
    "Site",
    "add_adsorbate",
    "adsorption_sites",
    "bulk",
    "crystal",
    "editing",
    "list_crystals",
    "molecule",
    "molecule_names",
    "nanoparticle",
    "parse_composition",
    "site_xy",
    "supercell",
    "surface",
    "vacancy",
]
