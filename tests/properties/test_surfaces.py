"""surface_energy() and adsorption_energy(): against ASE calls, convergence, checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.calculators.emt import EMT

from nnp_lab import build
from nnp_lab.errors import InputError
from nnp_lab.properties import (
    AdsorptionResult,
    PropertyWarning,
    SurfaceEnergyResult,
    adsorption_energy,
    binding_energy,
    surface_energy,
)


def test_surface_energy_matches_ase_by_hand():
    cu = bulk("Cu", "fcc", a=3.6)
    result = surface_energy(cu, (1, 1, 1), "emt", layers=(3, 5), relax=False)
    assert isinstance(result, SurfaceEnergyResult)
    ref = cu.copy()
    ref.calc = EMT()
    e_bulk = ref.get_potential_energy() / len(ref)
    slab = result.structures[-1].copy()
    slab.calc = EMT()
    area = np.linalg.norm(np.cross(slab.cell[0], slab.cell[1]))
    gamma = (slab.get_potential_energy() - len(slab) * e_bulk) / (2 * area) * 16.02176634
    assert result.surface_energy_J_m2 == pytest.approx(gamma, rel=1e-10)
    assert len(slab) == 5 and result.layers == (3, 5)


def test_surface_energy_converges_in_thickness_and_relaxes_down():
    result = surface_energy(bulk("Cu", "fcc", a=3.6), (1, 0, 0), "emt", layers=(3, 5, 7))
    assert result.ok
    g = result.surface_energies_J_m2
    assert abs(g[-1] - g[-2]) < 0.02 and 0.5 < g[-1] < 2.0
    assert np.all(g <= result.unrelaxed_surface_energies_J_m2 + 1e-9)
    json.dumps(result.to_dict())
    assert len(result.plot().data) == 2


def test_surface_flags_and_bad_input():
    # two layers of a (111) slab are far from converged against thicker ones? EMT converges
    # fast; a 2-layer slab against 6 shows the change that the check is for
    with pytest.warns(PropertyWarning, match="add thicker slabs"):
        thin = surface_energy(bulk("Pt", "fcc", a=3.92), (1, 1, 0), "emt", layers=(2, 3))
    assert "not_converged" in thin.flags
    with pytest.raises(InputError, match="names no plane"):
        surface_energy(bulk("Cu"), (0, 0, 0), "emt")
    with pytest.raises(InputError, match="periodic in all three directions"):
        surface_energy(molecule("H2O"), (1, 1, 1), "emt")


@pytest.fixture(scope="module")
def pt_slab():
    return build.surface(bulk("Pt", "fcc", a=3.92), (1, 1, 1), 4, fixed_layers=2, size=(2, 2))


def test_adsorption_scans_every_distinct_site_sorted(pt_slab):
    result = adsorption_energy(pt_slab, "O", "emt")
    assert isinstance(result, AdsorptionResult)
    kinds = sorted(s.kind for s in result.sites)
    assert kinds == ["bridge", "fcc", "hcp", "top"]
    energies = [s.adsorption_energy_eV for s in result.sites]
    assert energies == sorted(energies) and result.best is result.sites[0]
    assert result.adsorption_energy_eV == energies[0] < 0

    # E_ads by hand for the best site, from the relaxed structures the result holds
    def e(atoms):
        a = atoms.copy()
        a.calc = EMT()
        return a.get_potential_energy()

    by_hand = e(result.best.structure) - e(result.slab) - e(result.gas)
    assert result.adsorption_energy_eV == pytest.approx(by_hand, abs=1e-9)
    # the fixed layers stayed fixed
    fixed = pt_slab.constraints[0].index
    np.testing.assert_array_equal(result.best.structure.positions[fixed], pt_slab.positions[fixed])
    json.dumps(result.to_dict())
    assert [b.name for b in result.plot().data] == ["relaxed", "as placed"]


def test_binding_energy_equals_adsorption_energy_for_the_same_structure(pt_slab):
    ads = adsorption_energy(pt_slab, "O", "emt", site="fcc")
    placed = build.add_adsorbate(pt_slab, build.molecule("O"), "fcc", height=2.0)
    bound = binding_energy(pt_slab, placed[len(pt_slab) :], "emt")
    assert bound.binding_energy_eV == pytest.approx(ads.adsorption_energy_eV, abs=1e-6)
    assert bound.binding_energy_kJ_mol == pytest.approx(bound.binding_energy_eV * 96.485, rel=1e-4)
    with pytest.raises(InputError, match="n_guests"):
        binding_energy(pt_slab, placed[len(pt_slab) :], "emt", n_guests=2)


def test_adsorption_bad_site(pt_slab):
    with pytest.raises(InputError, match="no adsorption site 'hollow'"):
        adsorption_energy(pt_slab, "O", "emt", site="hollow")


def test_d3_flows_through_every_energy_of_the_adsorption(pt_slab):
    from nnp_lab.potentials import load_potential

    plain = adsorption_energy(pt_slab, "O", "emt", site="fcc", relax=False)
    d3 = load_potential("emt", dispersion="d3")
    with_d3 = adsorption_energy(pt_slab, "O", d3, site="fcc", relax=False)
    # dispersion attracts the adatom to the surface: more binding, by a D3-sized amount
    shift = with_d3.adsorption_energy_eV - plain.adsorption_energy_eV
    assert -0.5 < shift < -0.01
    assert with_d3.provenance["dispersion"]["method"] == "DFT-D3(BJ)"
    # the slab reference carries D3 too (its energy differs from the plain one)
    assert with_d3.slab_energy_eV < plain.slab_energy_eV
