"""Every registered potential passes the contract check (nnp_lab.testing.check_potential)."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule

from nnp_lab.potentials import Potential, load_potential, registered_names
from nnp_lab.testing import check_potential, rounding_tolerances


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


class EMTWithReference(Potential):
    """EMT plus a cohesive-energy-like -3.5 eV/atom (so |E| is that of a real potential), in
    float64 or rounded to float32 like a float32 model's output; ``tamper`` lets subclasses
    break it."""

    name = "emt-ref"

    def __init__(self, dtype="float64"):
        super().__init__()
        self.inner = load_potential("emt")
        self.elements = self.inner.elements
        self.cutoff = self.inner.cutoff
        self.dtype = dtype

    def _evaluate(self, structures, properties):
        out = self.inner._evaluate(structures, properties)
        for atoms, r in zip(structures, out):
            r["energy"] -= 3.5 * len(atoms)
            if self.dtype == "float32":
                for key, value in r.items():
                    r[key] = np.asarray(value, dtype=np.float32).astype(np.float64)
                r["energy"] = float(r["energy"])
        self.tamper(structures, out)
        return out

    def tamper(self, structures, out):
        pass


class BatchEnergyOff(EMTWithReference):
    """In a batch of several structures every energy is 1e-3 (relative) too large."""

    def tamper(self, structures, out):
        if len(structures) > 1:
            for r in out:
                r["energy"] *= 1 + 1e-3


class BatchForcesOff(EMTWithReference):
    """In a batch of several structures every force is 1e-3 (relative) too large."""

    def tamper(self, structures, out):
        if len(structures) > 1:
            for r in out:
                r["forces"] = r["forces"] * (1 + 1e-3)


class WeakField(EMTWithReference):
    """A uniform 1e-3 eV/Å field along (1, 1, 1) with consistent forces and stress (still
    -dE/dr and (1/V) dE/dε), but the energy depends on where the structure is and how it
    is turned."""

    def tamper(self, structures, out):
        g = 1e-3
        for atoms, r in zip(structures, out):
            r["energy"] += g * float(atoms.positions.sum())
            if "forces" in r:
                r["forces"] = r["forces"] - g
            if "stress" in r:  # dE/dε_ab = g Σ_i r_ib, symmetrised; Voigt xx yy zz yz xz xy
                col = g * atoms.positions.sum(axis=0) / atoms.get_volume()
                r["stress"] = r["stress"] + np.array(
                    [
                        col[0],
                        col[1],
                        col[2],
                        (col[1] + col[2]) / 2,
                        (col[0] + col[2]) / 2,
                        (col[0] + col[1]) / 2,
                    ]
                )


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_contract_tolerances_accept_rounding_and_flag_small_bugs(dtype):
    """The contract's tolerances are a few ulp of the dtype (nnp_lab.testing): the intact
    potential passes in both dtypes, and bugs of 1e-3 (relative) or 1e-3 eV/Å, far below
    what a user would notice in one number but real, are flagged in float32 too."""
    atoms = structure_for("emt")
    assert check_potential(EMTWithReference(dtype), atoms).passed

    batch = check_potential(BatchEnergyOff(dtype), atoms, raise_on_failure=False)
    assert any(f.startswith("batch_vs_single_energy") for f in batch.failures), str(batch)

    forces = check_potential(BatchForcesOff(dtype), atoms, raise_on_failure=False)
    assert any(f.startswith("batch_vs_single_forces") for f in forces.failures), str(forces)
    assert not any("energy" in f for f in forces.failures), str(forces)  # energies are right

    field = check_potential(WeakField(dtype), atoms, raise_on_failure=False)
    assert any(f.startswith("rotation_forces") for f in field.failures), str(field)
    assert any(f.startswith("translation_energy") for f in field.failures), str(field)
    assert not any("batch" in f or "fd" in f for f in field.failures), str(field)


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
        # float32: a few ulp of the energy sum and of the force sums, not an absolute 1e-5
        tol = rounding_tolerances(atoms, single, pot.dtype, cutoff=pot.cutoff)
        assert abs(single["energy"] - res["energy"]) <= tol["energy"]
        np.testing.assert_allclose(single["forces"], res["forces"], rtol=0, atol=tol["forces"])
        if "stress" in single:
            np.testing.assert_allclose(single["stress"], res["stress"], rtol=0, atol=tol["stress"])
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
