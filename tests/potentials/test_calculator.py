"""The ASE calculator around a Potential: its change detection must match ASE's."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.calculator import compare_atoms

from nnp_lab.potentials import load_potential


def _variants(base):
    """(name, modified copy) pairs, each changing one thing ASE tracks (or nothing)."""
    out = [("same", base.copy())]
    a = base.copy()
    a.positions[3, 1] += 1e-12
    out.append(("tiny move", a))
    a = base.copy()
    a.set_cell(a.cell * 1.01, scale_atoms=False)
    out.append(("cell", a))
    a = base.copy()
    a.numbers[0] = 13
    out.append(("numbers", a))
    a = base.copy()
    a.pbc = [True, True, False]
    out.append(("pbc", a))
    a = base.copy()
    a.set_initial_magnetic_moments(np.ones(len(a)))
    out.append(("magmoms", a))
    a = base.copy()
    a.set_initial_charges(np.linspace(-0.1, 0.1, len(a)))
    out.append(("charges", a))
    return out


@pytest.mark.parametrize("index", range(7))
def test_check_state_agrees_with_ase(index):
    base = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    base.rattle(0.02, seed=1)
    calc = load_potential("emt").calculator()
    base.calc = calc
    base.get_potential_energy()
    name, other = _variants(base)[index]
    ours = calc.check_state(other)
    assert sorted(ours) == sorted(compare_atoms(calc.atoms, other)), name
    assert bool(ours) == (name != "same")


def test_energy_is_recomputed_after_a_move_and_cached_otherwise(monkeypatch):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    atoms.calc = load_potential("emt").calculator()
    e0 = atoms.get_potential_energy()
    calls = []
    original = atoms.calc.potential.evaluate
    # The potential is the shared, cached "emt" instance: undo the spy after the test.
    monkeypatch.setattr(
        atoms.calc.potential, "evaluate", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    atoms.get_forces()
    assert calls == []  # cached
    atoms.positions[0, 0] += 0.05
    assert atoms.get_potential_energy() != e0
    assert calls == [1]
