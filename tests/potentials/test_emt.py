"""EMT adapter: reusing ASE's calculator between calls must not change any number."""

import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT

from nnp_lab.potentials.emt import EMTPotential


def fresh_emt(atoms):
    a = atoms.copy()
    a.calc = EMT()
    return a.get_potential_energy(), a.get_forces(), a.get_stress()


def test_reused_calculator_equals_fresh_one_as_atoms_move_and_change():
    pot = EMTPotential()
    cu = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    cual = cu.copy()
    cual.symbols[:8] = "Al"
    for step in range(6):
        for base in (cu, cual):  # alternate compositions: the cache holds both
            atoms = base.copy()
            atoms.rattle(0.05 * (step + 1), seed=step)
            if step == 3:
                atoms.set_cell(atoms.cell * 1.02, scale_atoms=True)
            res = pot.evaluate([atoms])[0]
            e, f, s = fresh_emt(atoms)
            assert abs(res["energy"] - e) < 1e-10
            np.testing.assert_allclose(res["forces"], f, atol=1e-10)
            np.testing.assert_allclose(res["stress"], s, atol=1e-12)
    assert len(pot._calcs) == 2
