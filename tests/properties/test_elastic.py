"""elastic(): against finite differences of the stress computed here, and its checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.calculators.emt import EMT
from ase.units import GPa

from nnp_lab.errors import InputError
from nnp_lab.properties import ElasticResult, PropertyWarning, elastic, eos


def _stress_GPa(reference, deformation):
    a = reference.copy()
    a.set_cell(reference.cell[:] @ deformation.T, scale_atoms=True)
    a.calc = EMT()
    return a.get_stress(voigt=False) / GPa


@pytest.fixture(scope="module")
def cu():
    return elastic(bulk("Cu", "fcc", a=3.6), "emt", relax_ions=False)


def test_matches_central_differences_of_the_stress(cu):
    assert isinstance(cu, ElasticResult) and cu.ok
    ref, h = cu.reference, 1e-4
    # C11, C12: d sigma_xx / d eps_xx and d sigma_yy / d eps_xx
    fx = lambda e: _stress_GPa(ref, np.diag([1 + e, 1, 1]))  # noqa: E731
    d_normal = (fx(h) - fx(-h)) / (2 * h)
    # C44: d sigma_yz / d gamma_yz with the engineering shear gamma = 2 eps_yz
    shear = lambda g: _stress_GPa(ref, np.array([[1, 0, 0], [0, 1, g / 2], [0, g / 2, 1]]))  # noqa: E731
    d_shear = (shear(h) - shear(-h)) / (2 * h)
    # the fit uses ±0.5 % and ±1 % strains, the differences here 1e-4: EMT Cu's anharmonicity
    # shifts the fitted slopes by 0.01-0.11 GPa (measured), far inside 1 %
    assert cu.C_GPa[0, 0] == pytest.approx(d_normal[0, 0], rel=0.01)
    assert cu.C_GPa[0, 1] == pytest.approx(d_normal[1, 1], rel=0.01)
    assert cu.C_GPa[3, 3] == pytest.approx(d_shear[1, 2], rel=0.01)
    # cubic symmetry of the fitted tensor
    c = cu.C_GPa
    assert c[1, 1] == pytest.approx(c[0, 0], rel=1e-6) and c[2, 2] == pytest.approx(
        c[0, 0], rel=1e-6
    )
    assert np.abs(c[:3, 3:]).max() < 1e-6 * c[0, 0]
    assert cu.born_stable and cu.eigenvalues_GPa.min() > 0


def test_bulk_modulus_agrees_with_the_equation_of_state(cu):
    b_eos = eos(bulk("Cu", "fcc", a=3.6), "emt").bulk_modulus_GPa
    b_cubic = (cu.C_GPa[0, 0] + 2 * cu.C_GPa[0, 1]) / 3
    assert b_cubic == pytest.approx(b_eos, rel=0.02)
    assert cu.bulk_modulus_hill_GPa == pytest.approx(b_cubic, rel=1e-6)
    # Hill moduli lie between Reuss and Voigt; E and nu follow from K and G
    assert cu.shear_modulus_reuss_GPa <= cu.shear_modulus_hill_GPa <= cu.shear_modulus_voigt_GPa
    k, g = cu.bulk_modulus_hill_GPa, cu.shear_modulus_hill_GPa
    assert cu.youngs_modulus_GPa == pytest.approx(9 * k * g / (3 * k + g))
    assert 0 < cu.poisson_ratio < 0.5


def test_relaxed_ions_give_the_same_tensor_for_a_one_atom_cell(cu):
    relaxed = elastic(bulk("Cu", "fcc", a=3.6), "emt", strains=(-0.005, 0.005))
    assert relaxed.relax_ions and len(relaxed.structures) == 12
    np.testing.assert_allclose(relaxed.C_GPa, cu.C_GPa, atol=1.0)


def test_json_plot_and_input_untouched(cu):
    d = cu.to_dict()
    json.dumps(d)
    assert np.array(d["C_GPa"]).shape == (6, 6) and d["provenance"]["property"] == "elastic"
    fig = cu.plot()
    assert np.array(fig.data[0].z).shape == (6, 6)
    atoms = bulk("Al", "fcc", a=4.1)
    before = atoms.positions.copy(), atoms.cell[:].copy()
    elastic(atoms, "emt", relax_ions=False, strains=(-0.01, 0.01))
    assert np.array_equal(atoms.positions, before[0]) and np.array_equal(atoms.cell[:], before[1])


def test_flags_fire_on_cases_built_to_trigger_them():
    # an unrelaxed, strongly compressed cell keeps a large stress in the reference
    with pytest.warns(PropertyWarning, match="holds a stress"):
        strained = elastic(bulk("Cu", "fcc", a=3.45), "emt", relax=False, relax_ions=False)
    assert "reference_not_relaxed" in strained.flags
    # bcc Cu is mechanically unstable in EMT (C11 < C12: the Bain path goes downhill)
    with pytest.warns(PropertyWarning, match="not .*mechanically"):
        unstable = elastic(bulk("Cu", "bcc", a=2.87), "emt", relax_ions=False)
    assert "not_positive_definite" in unstable.flags and not unstable.born_stable


def test_bad_input_says_what_to_do():
    with pytest.raises(InputError, match="periodic in all three directions"):
        elastic(molecule("H2O"), "emt")
    with pytest.raises(InputError, match="non-zero amounts"):
        elastic(bulk("Cu"), "emt", strains=(0.0, 0.01))
    with pytest.raises(InputError, match="non-zero amounts"):
        elastic(bulk("Cu"), "emt", strains=(0.01,))
