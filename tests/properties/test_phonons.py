"""phonons() and qha(): against phonopy driven directly with ASE's EMT, and their checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.calculators.emt import EMT
from phonopy import Phonopy
from phonopy.structure.atoms import PhonopyAtoms

from nnp_lab.errors import InputError
from nnp_lab.properties import PhononResult, PropertyWarning, QHAResult, phonons, qha

GAMMA_X = [[0.0, 0.0, 0.0], [0.5, 0.0, 0.5]]  # Γ and X of ASE's primitive fcc cell


@pytest.fixture(scope="module")
def cu():
    return phonons(bulk("Cu", "fcc", a=3.6), "emt", supercell=4, relax=False)


def test_same_frequencies_as_phonopy_with_ase_emt(cu):
    assert isinstance(cu, PhononResult)
    atoms = bulk("Cu", "fcc", a=3.6)
    unit = PhonopyAtoms(
        symbols=atoms.get_chemical_symbols(),
        cell=atoms.cell[:],
        scaled_positions=atoms.get_scaled_positions(),
    )
    ph = Phonopy(unit, supercell_matrix=np.diag([4, 4, 4]), primitive_matrix="auto")
    ph.generate_displacements(distance=0.01)
    forces = []
    for s in ph.supercells_with_displacements:
        a = atoms.__class__(s.symbols, cell=s.cell, scaled_positions=s.scaled_positions, pbc=True)
        a.calc = EMT()
        forces.append(a.get_forces())
    ph.forces = np.array(forces)
    ph.produce_force_constants()
    direct = np.asarray(ph.run_qpoints(GAMMA_X).frequencies)
    ours = cu.frequencies_at(GAMMA_X)
    # the same float64 forces through the same phonopy code: equal to rounding
    np.testing.assert_allclose(ours, direct, rtol=0, atol=1e-6)
    assert np.abs(ours[0]).max() < 1e-3  # acoustic modes at Γ
    assert 4.0 < ours[1].max() < 10.0  # EMT Cu at X: measured 8.14 THz (LA)
    assert cu.n_displacements == len(ph.supercells_with_displacements) == 1


def test_band_dos_thermal_and_json(cu):
    assert not cu.imaginary and cu.ok
    assert cu.labels[0] == "Γ" and len(cu.labels) == len(cu.label_distances)
    assert cu.frequencies_THz.shape == (len(cu.distances), 3)
    assert np.all(np.diff(cu.distances) >= -1e-12)
    assert cu.dos.shape == cu.dos_frequencies_THz.shape and cu.dos.max() > 0
    # Dulong-Petit at high T: Cv -> 3R per atom
    assert cu.heat_capacity_J_K_mol[-1] == pytest.approx(3 * 8.314462618, rel=0.02)
    assert cu.heat_capacity_J_K_mol[0] == pytest.approx(0.0, abs=1e-6)
    d = cu.to_dict()
    json.dumps(d)
    assert "phonopy" not in d and len(d["frequencies_THz"]) == len(cu.distances)
    fig = cu.plot()
    assert len(fig.data) == 4  # three branches + the DOS


def test_supercell_from_min_length_is_the_smallest_wide_enough():
    result = phonons(bulk("Al", "fcc", a=4.05), "emt", min_length=8.0, relax=False)
    n = int(result.supercell_matrix[0, 0])
    width = result.reference.cell.volume / np.linalg.norm(
        np.cross(result.reference.cell[1], result.reference.cell[2])
    )
    assert n * width >= 8.0 > (n - 1) * width
    assert np.array_equal(result.supercell_matrix, np.diag([n, n, n]))


def test_imaginary_modes_flagged_for_an_unstable_structure():
    # bcc Cu is mechanically unstable in EMT (see the elastic tests): imaginary branches
    with pytest.warns(PropertyWarning, match="imaginary modes"):
        unstable = phonons(bulk("Cu", "bcc", a=2.87), "emt", supercell=4, relax=False)
    assert unstable.imaginary and unstable.min_frequency_THz < -0.05
    assert "imaginary_modes" in unstable.flags


def test_bad_input_and_input_untouched():
    with pytest.raises(InputError, match="periodic in all three directions"):
        phonons(molecule("H2O"), "emt")
    with pytest.raises(InputError, match="supercell must be"):
        phonons(bulk("Cu"), "emt", supercell=(2, 2))
    with pytest.raises(InputError, match="supercell must be"):
        phonons(bulk("Cu"), "emt", supercell=0)
    atoms = bulk("Cu", "fcc", a=3.62)
    before = atoms.positions.copy(), atoms.cell[:].copy()
    phonons(atoms, "emt", supercell=2, mesh=8)
    assert np.array_equal(atoms.positions, before[0]) and np.array_equal(atoms.cell[:], before[1])


def test_qha_thermal_expansion_of_cu():
    result = qha(
        bulk("Cu", "fcc", a=3.6),
        "emt",
        n_volumes=5,
        supercell=3,
        mesh=10,
        temperatures_K=np.arange(0, 601, 50),
    )
    assert isinstance(result, QHAResult) and result.ok
    assert len(result.temperatures_K) == len(result.volume_A3) == 12  # phonopy drops the last
    assert np.all(np.diff(result.volume_A3) > 0)  # expands on heating
    beta = result.at(300)["thermal_expansion_per_K"]
    assert 1e-5 < beta < 2e-4  # volumetric; EMT Cu measured ~6e-5 /K
    assert result.bulk_modulus_GPa[-1] < result.bulk_modulus_GPa[0]  # softens
    json.dumps(result.to_dict())
    assert len(result.plot().data) == 3
