"""No builder may modify the Atoms it is given."""

from __future__ import annotations

import numpy as np
from ase.constraints import FixAtoms
from helpers_build import assert_unchanged, snapshot

from nnp_lab.build import (
    add_adsorbate,
    adsorption_sites,
    bulk,
    molecule,
    supercell,
    surface,
    vacancy,
)


def test_builders_do_not_mutate_inputs() -> None:
    cu = bulk("Cu", cubic=True)
    cu.set_constraint(FixAtoms(indices=[1]))
    cu.info["user"] = {"keep": [1, 2]}
    cu.arrays["mine"] = np.arange(len(cu))
    before = snapshot(cu)
    supercell(cu, 2)
    supercell(cu, [[1, 1, 0], [0, 1, 0], [0, 0, 1]])
    vacancy(cu, 1)
    vacancy(cu, -1)
    surface(cu, (1, 1, 1), 4, fixed_layers=1)
    assert_unchanged(cu, before)

    slab = surface(bulk("Pt"), (1, 1, 1), 3, size=(2, 2), fixed_layers=1)
    slab_before = snapshot(slab)
    co = molecule("CO")
    co.rotate(45, "x")
    co_before = snapshot(co)
    adsorption_sites(slab)
    adsorption_sites(slab, unique=False, height=1.0)
    with_co = add_adsorbate(slab, co, "hcp", binding_atom=0, rotation=30)
    add_adsorbate(with_co, co, "top")
    assert_unchanged(slab, slab_before)
    assert_unchanged(co, co_before)
    assert with_co is not slab
    assert with_co.info["built_by"]["parent"] == slab.info["built_by"]
