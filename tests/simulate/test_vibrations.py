"""Vibrations: ASE's frequencies from one batched call; saddle points; SevenNet-0 water."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import add_adsorbate, fcc100, molecule
from ase.calculators.emt import EMT
from ase.cluster import Icosahedron
from ase.constraints import FixAtoms
from ase.optimize import BFGS
from ase.thermochemistry import HarmonicThermo
from ase.vibrations import Vibrations

from nnp_lab.errors import InputError
from nnp_lab.potentials import Potential, load_potential
from nnp_lab.simulate import neb
from nnp_lab.simulate import VibrationsResult, vibrations

ADATOM = 12


class CountingPotential(Potential):
    """EMT behind the Potential interface, recording the size of every evaluate call."""

    name = "counting-emt"
    dtype = "float64"

    def __init__(self) -> None:
        super().__init__()
        self.inner = load_potential("emt")
        self.elements = self.inner.elements
        self.calls: list[int] = []

    def _evaluate(self, structures, properties):
        self.calls.append(len(structures))
        return self.inner._evaluate(structures, properties)


def _relaxed(atoms: Atoms, fmax: float = 1e-4) -> Atoms:
    atoms = atoms.copy()
    atoms.calc = EMT()
    BFGS(atoms, logfile=None).run(fmax=fmax, steps=1000)
    atoms.calc = None
    return atoms


def _ase_vibrations(atoms: Atoms, tmp_path, **kwargs):
    """ASE's own finite-difference run (file cache in tmp_path) -> VibrationsData."""
    work = atoms.copy()
    work.calc = EMT()
    vib = Vibrations(work, name=str(tmp_path / f"vib{len(list(tmp_path.iterdir()))}"), **kwargs)
    vib.run()
    return vib.get_vibrations()


def _signed(freqs: np.ndarray) -> np.ndarray:
    return np.where(np.abs(freqs.imag) > np.abs(freqs.real), -np.abs(freqs.imag), freqs.real)


@pytest.fixture(scope="module")
def cluster() -> Atoms:
    atoms = Icosahedron("Cu", 2)
    atoms.rattle(0.05, seed=1)
    return _relaxed(atoms)


@pytest.fixture(scope="module")
def hop() -> tuple[Atoms, Atoms]:
    """Au adatom on Al(100): a relaxed hollow site and the NEB saddle (climbing image)."""
    slab = fcc100("Al", size=(2, 2, 3))
    add_adsorbate(slab, "Au", 1.7, "hollow")
    slab.center(axis=2, vacuum=4.0)
    slab.set_constraint(FixAtoms(mask=[atom.tag > 1 for atom in slab]))
    initial = _relaxed(slab, fmax=0.005)
    final = initial.copy()
    final.positions[ADATOM, 0] += final.cell[0, 0] / 2
    final = _relaxed(final, fmax=0.005)
    result = neb(initial, final, "emt", n_images=3, fmax=0.005, steps=500)
    assert result.converged
    saddle = result.transition_state.copy()
    saddle.calc = None
    return initial, saddle


@pytest.mark.parametrize("nfree", [2, 4])
def test_cluster_matches_ase_vibrations(cluster, tmp_path, nfree):
    ours = vibrations(cluster, "emt", nfree=nfree)
    ref = _ase_vibrations(cluster, tmp_path, nfree=nfree)
    ref_freqs = _signed(ref.get_frequencies())
    print(
        f"nfree={nfree}: max |ours - ASE| = {np.abs(ours.frequencies_cm1 - ref_freqs).max():.2e} "
        f"cm-1; highest {ours.frequencies_cm1[-1]:.2f} vs {ref_freqs[-1]:.2f} cm-1"
    )
    assert isinstance(ours, VibrationsResult)
    np.testing.assert_allclose(ours.frequencies_cm1, ref_freqs, atol=0.01)
    assert ours.zero_point_energy == pytest.approx(ref.get_zero_point_energy(), abs=1e-6)
    np.testing.assert_allclose(ours.hessian, ref.get_hessian_2d(), atol=1e-6)
    # A relaxed free cluster: 6 near-zero translations/rotations, nothing clearly imaginary.
    near_zero = np.abs(ours.frequencies_cm1) < 10
    assert near_zero.sum() == 6
    assert ours.n_imaginary(threshold_cm1=10) == 0
    assert np.all(ours.frequencies_cm1[~near_zero] > 50)
    assert ours.frequencies_cm1.shape == ours.energies_eV.shape == ours.imaginary.shape == (39,)


def test_one_batched_evaluate_call(cluster):
    pot = CountingPotential()
    result = vibrations(cluster, pot)
    assert pot.calls == [1 + 6 * len(cluster)]  # reference + ±x,±y,±z per atom, one call
    pot.calls.clear()
    vibrations(cluster, pot, nfree=4, indices=[0, 1])
    assert pot.calls == [1 + 12 * 2]
    pot.calls.clear()
    chunked = vibrations(cluster, pot, batch_size=20)
    assert pot.calls == [20, 20, 20, 19]
    np.testing.assert_allclose(chunked.frequencies_cm1, result.frequencies_cm1, atol=1e-9)
    assert result.provenance["parameters"]["n_evaluate_calls"] == 1


def test_modes_are_normalized_displacements(cluster):
    result = vibrations(cluster, "emt", indices=[0, 3, 5])
    assert result.modes.shape == (9, len(cluster), 3)
    np.testing.assert_allclose(np.linalg.norm(result.modes.reshape(9, -1), axis=1), 1.0)
    others = np.setdiff1d(np.arange(len(cluster)), [0, 3, 5])
    assert np.all(result.modes[:, others] == 0)
    assert list(result.indices) == [0, 3, 5]
    assert len(result.animate_mode(8, frames=4)) == 4


def test_indices_in_any_order_give_the_same_modes(tmp_path):
    # Mixed masses, and an order that is not ascending: the Hessian must be paired with the
    # right atoms (ASE's VibrationsData keeps indices as an ascending mask).
    mol = _relaxed(molecule("CH3OH"))
    order = [5, 0, 2, 1]
    shuffled = vibrations(mol, "emt", indices=order)
    ascending = vibrations(mol, "emt", indices=sorted(order))
    assert list(shuffled.indices) == sorted(order)
    np.testing.assert_allclose(shuffled.frequencies_cm1, ascending.frequencies_cm1, atol=1e-8)
    np.testing.assert_allclose(np.abs(shuffled.modes), np.abs(ascending.modes), atol=1e-8)
    # ASE's own Vibrations is right for ascending indices (given unsorted ones it mispairs
    # them itself: 12 of 12 frequencies differ here, by up to 494 cm-1).
    ref = _ase_vibrations(mol, tmp_path, indices=sorted(order))
    np.testing.assert_allclose(shuffled.frequencies_cm1, _signed(ref.get_frequencies()), atol=0.01)
    big = np.argmax(np.abs(shuffled.modes[-1]).sum(axis=1))  # the highest mode: an X-H stretch
    assert mol.get_chemical_symbols()[big] == "H"


def test_saddle_point_has_one_imaginary_mode(hop, tmp_path):
    minimum, saddle = hop
    at_saddle = vibrations(saddle, "emt", indices=[ADATOM])
    at_minimum = vibrations(minimum, "emt", indices=[ADATOM])
    print(
        "Au adatom at the saddle:",
        np.round(at_saddle.frequencies_cm1, 1),
        "at the hollow site:",
        np.round(at_minimum.frequencies_cm1, 1),
        "cm-1",
    )
    # A heavy atom over a gentle barrier: a cosine profile with E_b = 0.37 eV and period
    # 2.86 Å has curvature 0.9 eV/Å² at the top, i.e. about 35i cm-1 for Au; EMT is float64,
    # so numerical noise is ~1e-3 cm-1 and 20 cm-1 separates the two clearly.
    assert at_saddle.imaginary.tolist() == [True, False, False]
    assert -50 < at_saddle.frequencies_cm1[0] < -20
    assert at_saddle.n_imaginary(threshold_cm1=10) == 1
    assert np.all(at_saddle.frequencies_cm1[1:] > 30)
    assert not at_minimum.imaginary.any() and at_minimum.frequencies_cm1.min() > 30
    # The unstable mode moves the adatom along the hop (x).
    mode = at_saddle.modes[0, ADATOM]
    assert abs(mode[0]) > 0.95
    # Same numbers as ASE's Vibrations on the same atom.
    ref = _ase_vibrations(saddle, tmp_path, indices=[ADATOM])
    np.testing.assert_allclose(at_saddle.frequencies_cm1, _signed(ref.get_frequencies()), atol=0.01)
    assert at_saddle.zero_point_energy == pytest.approx(ref.get_zero_point_energy(), abs=1e-8)
    assert at_saddle.zero_point_energy == pytest.approx(0.5 * at_saddle.energies_eV[1:].sum())
    # Default indices: everything not fixed by FixAtoms (adatom + top layer here).
    free = vibrations(minimum, "emt")
    assert list(free.indices) == [i for i in range(len(minimum)) if minimum[i].tag <= 1]


def test_thermochemistry_from_result(hop):
    minimum, saddle = hop
    result = vibrations(minimum, "emt", indices=[ADATOM])
    energies = result.vibrations_data.get_energies()
    ase_thermo = HarmonicThermo(energies, potentialenergy=result.energy)
    for T in (100.0, 300.0, 800.0):
        expected = ase_thermo.get_helmholtz_energy(T, verbose=False)
        assert result.helmholtz(T) == pytest.approx(expected, abs=1e-10)
        assert result.helmholtz(T, include_potential_energy=False) == pytest.approx(
            expected - result.energy, abs=1e-10
        )
    ts = vibrations(saddle, "emt", indices=[ADATOM])
    with pytest.raises(InputError, match="imaginary"):
        ts.helmholtz(300.0)
    assert np.isfinite(ts.helmholtz(300.0, ignore_imag_modes=True))
    with pytest.raises(InputError, match="every atom"):
        result.gibbs(300.0, symmetrynumber=1)


def test_bad_input_and_no_mutation(cluster):
    atoms = cluster.copy()
    atoms.calc = EMT()
    calc, positions = atoms.calc, atoms.positions.copy()
    vibrations(atoms, "emt", indices=[0])
    assert atoms.calc is calc
    np.testing.assert_array_equal(atoms.positions, positions)
    with pytest.raises(InputError, match="duplicates"):
        vibrations(cluster, "emt", indices=[0, 0])
    with pytest.raises(InputError, match="out of range"):
        vibrations(cluster, "emt", indices=[99])
    with pytest.raises(InputError, match="nfree"):
        vibrations(cluster, "emt", nfree=3)
    with pytest.raises(InputError, match="delta"):
        vibrations(cluster, "emt", delta=-0.01)
    fixed = cluster.copy()
    fixed.set_constraint(FixAtoms(indices=range(len(fixed))))
    with pytest.raises(InputError, match="nothing can vibrate"):
        vibrations(fixed, "emt")
    rattled = cluster.copy()
    rattled.positions[0] += 0.2
    with pytest.warns(UserWarning, match="not at a stationary point"):
        vibrations(rattled, "emt", indices=[0])


@pytest.mark.slow
def test_sevennet_water_frequencies():
    pot = load_potential("sevennet-0")
    water = molecule("H2O")
    water.calc = pot.calculator()
    BFGS(water, logfile=None).run(fmax=0.01, steps=100)
    water.calc = None
    result = vibrations(water, pot)
    freqs = result.frequencies_cm1
    bend, sym, asym = freqs[-3:]
    print(
        f"SevenNet-0 H2O: bend {bend:.0f}, symmetric stretch {sym:.0f}, asymmetric stretch "
        f"{asym:.0f} cm-1 (experiment 1595, 3657, 3756); near-zero modes "
        f"{np.round(freqs[:6], 1).tolist()}; ZPE {result.zero_point_energy:.3f} eV"
    )
    assert freqs.shape == (9,)
    assert result.n_imaginary(threshold_cm1=200) == 0  # float32 noise only
    assert np.all(np.abs(freqs[:6]) < 200)
    assert 1300 < bend < 1750
    assert 3400 < sym < asym < 3950
    g = result.gibbs(298.15, symmetrynumber=2)
    assert 0.0 < g - result.energy < 0.2  # ZPE 0.56 + H(T) - TS(T) ~ +0.07 eV
