"""eos(): the fit against ASE's own EquationOfState on the same energies, and its checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.calculators.emt import EMT
from ase.eos import EquationOfState
from ase.units import GPa

from nnp_lab.errors import InputError
from nnp_lab.potentials.emt import EMTPotential
from nnp_lab.properties import EOSResult, PropertyWarning, eos


class NoisyEMT(EMTPotential):
    """EMT with seeded random noise of ``sigma`` eV per atom on every energy."""

    def __init__(self, sigma: float, seed: int = 0) -> None:
        super().__init__()
        self.sigma = sigma
        self.rng = np.random.default_rng(seed)

    def _evaluate(self, structures, properties):
        results = super()._evaluate(structures, properties)
        for atoms, res in zip(structures, results):
            res["energy"] += self.sigma * len(atoms) * self.rng.standard_normal()
        return results


def test_matches_ase_equation_of_state_on_the_same_volumes():
    atoms = bulk("Cu", "fcc", a=3.6)
    before = atoms.copy()
    result = eos(atoms, "emt", relax=False, n_points=9)
    assert isinstance(result, EOSResult) and result.ok
    # the same volumes by hand, with ASE's EMT calculator, fitted by ASE
    volumes, energies = [], []
    for s in result.structures:
        a = s.copy()
        a.calc = EMT()
        volumes.append(a.get_volume())
        energies.append(a.get_potential_energy())
    v0, e0, b = EquationOfState(volumes, energies, eos="birchmurnaghan").fit()
    # EMT is float64 and the same code path: agreement to float rounding of the fit
    assert result.v0 == pytest.approx(v0, rel=1e-9)
    assert result.e0 == pytest.approx(e0, rel=1e-9, abs=1e-12)
    assert result.bulk_modulus_GPa == pytest.approx(b / GPa, rel=1e-9)
    assert result.volumes_A3.min() == pytest.approx(0.94 * atoms.get_volume(), rel=1e-12)
    assert result.volumes_A3.max() == pytest.approx(1.06 * atoms.get_volume(), rel=1e-12)
    assert result.bulk_modulus_derivative is not None and 3 < result.bulk_modulus_derivative < 6
    assert result.fit_residual_meV_per_atom < 0.1
    # the input is untouched
    assert np.array_equal(atoms.positions, before.positions)
    assert np.array_equal(atoms.cell[:], before.cell[:]) and atoms.calc is None


def test_relaxed_reference_puts_the_minimum_in_the_middle():
    result = eos(bulk("Cu", "fcc", a=3.4), "emt")  # compressed start, relaxed first
    mid = result.volumes_A3[len(result.volumes_A3) // 2]
    assert result.v0 == pytest.approx(mid, rel=2e-3)
    assert result.reference.get_volume() == pytest.approx(mid, rel=1e-9)


def test_other_forms_and_json_and_plot():
    result = eos(bulk("Al", "fcc", a=4.05), "emt", form="vinet", relax=False)
    assert result.form == "vinet"
    d = result.to_dict()
    json.dumps(d)  # JSON-safe
    assert d["type"] == "EOSResult" and len(d["volumes_A3"]) == 11
    assert d["provenance"]["property"] == "eos" and d["provenance"]["model"] == "emt"
    fig = result.plot()
    assert len(fig.data) == 2 and len(fig.data[0].x) == 11
    sj = eos(bulk("Al", "fcc", a=4.05), "emt", form="sj", relax=False)
    assert sj.bulk_modulus_derivative is None
    assert sj.bulk_modulus_GPa == pytest.approx(result.bulk_modulus_GPa, rel=0.05)
    assert "GPa" in repr(result) and "EOSResult" in str(result)


def test_flags_fire_on_cases_built_to_trigger_them():
    # a noisy model (3 meV/atom, seeded): the residual check fires
    with pytest.warns(PropertyWarning, match="misses the energies"):
        noisy = eos(bulk("Cu", "fcc", a=3.6), NoisyEMT(0.003), relax=False)
    assert "poor_fit" in noisy.flags and not noisy.ok
    # a strongly compressed cell, not relaxed: the minimum lies outside the sampled volumes
    with pytest.warns(PropertyWarning, match="outside the sampled volumes"):
        outside = eos(bulk("Cu", "fcc", a=3.3), "emt", relax=False)
    assert "minimum_outside" in outside.flags


def test_bad_input_says_what_to_do():
    with pytest.raises(InputError, match="periodic in all three directions"):
        eos(molecule("H2O"), "emt")
    with pytest.raises(InputError, match="n_points"):
        eos(bulk("Cu"), "emt", n_points=3)
    with pytest.raises(InputError, match="form"):
        eos(bulk("Cu"), "emt", form="quadratic")
    with pytest.raises(InputError, match="volume_range"):
        eos(bulk("Cu"), "emt", volume_range=0.7)


@pytest.mark.slow
def test_default_model_eos_and_elastic_of_silicon():
    """A short check with the default universal model: a sane, self-consistent answer."""
    from nnp_lab.properties import elastic

    si = bulk("Si", "diamond", a=5.43)
    e = eos(si, None, n_points=7)
    assert e.ok, e.flags
    a = (4 * e.v0 / len(si) * 2) ** (1 / 3)  # 8 atoms per conventional cell
    assert 5.3 < a < 5.6  # diamond Si, PBE-like: ~5.47 Å
    c = elastic(e.reference, None, strains=(-0.005, 0.005))
    assert c.ok and c.born_stable, c.flags
    # the EOS and the elastic constants are two routes to the same B
    assert e.bulk_modulus_GPa == pytest.approx(c.bulk_modulus_voigt_GPa, rel=0.05)
