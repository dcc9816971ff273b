"""Every registered potential passes the contract check (nnp_lab.testing.check_potential)."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule

from nnp_lab.potentials import Potential, load_potential, registered_names
from nnp_lab.testing import check_potential


def rattled(atoms, seed=1, stdev=0.05):
    atoms = atoms.copy()
    atoms.rattle(stdev, seed=seed)
    return atoms


def structure_for(name):
    if name == "emt":
        return rattled(bulk("Cu", "fcc", 3.6, cubic=True))
    return rattled(bulk("Si", "diamond", 5.43, cubic=True))


@pytest.mark.parametrize("name", registered_names())
def test_registered_potential_passes_contract(name):
    pot = load_potential(name, device="cpu")
    report = check_potential(pot, structure_for(name))
    assert report.passed
    assert "stress_vs_fd" in report.measured  # periodic structure: stress was checked


@pytest.mark.slow
def test_default_model_contract_on_a_molecule():
    report = check_potential(load_potential("sevennet-0"), molecule("CH3CH2OH"))
    assert report.passed
    assert "stress_vs_fd" not in report.measured  # no stress for a molecule


@pytest.mark.slow
def test_d3_corrected_potential_passes_contract():
    pot = load_potential("sevennet-0", dispersion="d3")
    report = check_potential(pot, structure_for("sevennet-0"))
    assert report.passed


class WrongSignForces(Potential):
    """EMT with the force sign flipped: the contract must catch it."""

    name = "broken"
    dtype = "float64"

    def __init__(self):
        super().__init__()
        self.inner = load_potential("emt")
        self.elements = self.inner.elements

    def _evaluate(self, structures, properties):
        out = self.inner._evaluate(structures, properties)
        for r in out:
            r["forces"] = -r["forces"]
        return out


class NotInvariant(WrongSignForces):
    """Energy depends on absolute position: translation invariance must fail."""

    def _evaluate(self, structures, properties):
        out = self.inner._evaluate(structures, properties)
        for a, r in zip(structures, out):
            r["energy"] += 0.1 * float(a.positions[:, 0].sum())
            r["forces"] = r["forces"] - np.array([0.1, 0.0, 0.0])
        return out


def test_contract_catches_wrong_force_sign():
    report = check_potential(WrongSignForces(), structure_for("emt"), raise_on_failure=False)
    assert not report.passed
    assert any("forces_vs_fd" in f for f in report.failures)
    with pytest.raises(AssertionError, match="forces_vs_fd"):
        check_potential(WrongSignForces(), structure_for("emt"))


def test_contract_catches_broken_translation_invariance():
    report = check_potential(NotInvariant(), structure_for("emt"), raise_on_failure=False)
    assert any("translation_energy" in f for f in report.failures)
    assert any("rotation" in f for f in report.failures)


def test_batch_equals_singles_for_default_model():
    pot = load_potential("sevennet-0")
    structures = [
        structure_for("sevennet-0"),
        rattled(bulk("Cu", "fcc", 3.6, cubic=True), seed=3),
        molecule("H2O"),
        rattled(bulk("NaCl", "rocksalt", 5.64), seed=4),
    ]
    batch = pot.evaluate(structures)
    for atoms, res in zip(structures, batch):
        single = pot.evaluate([atoms])[0]
        assert abs(single["energy"] - res["energy"]) < 1e-5
        np.testing.assert_allclose(single["forces"], res["forces"], atol=1e-5)
    assert "stress" not in batch[2] and batch[0]["stress"].shape == (6,)


def test_input_atoms_not_mutated_by_calculator():
    atoms = structure_for("emt")
    atoms.info["tag"] = "x"
    snapshot = atoms.copy()
    atoms.calc = load_potential("emt").calculator()
    atoms.get_potential_energy()
    atoms.get_stress()
    assert np.array_equal(atoms.positions, snapshot.positions)
    assert atoms.info == {"tag": "x"}


def test_empty_list_evaluates_to_empty():
    assert load_potential("emt").evaluate([]) == []


def test_single_atoms_accepted_in_place_of_list():
    res = load_potential("emt").evaluate(Atoms("Cu", cell=[3, 3, 3], pbc=True))
    assert len(res) == 1 and np.isfinite(res[0]["energy"])
