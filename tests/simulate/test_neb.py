"""NEB: same barrier as ASE's own NEB, one model call per iteration, events, stop, files."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from ase import Atoms
from ase.build import add_adsorbate, fcc100
from ase.calculators.emt import EMT
from ase.constraints import FixAtoms
from ase.io import read
from ase.mep import NEB, NEBTools
from ase.optimize import BFGS, FIRE

from nnp_lab.errors import InputError
from nnp_lab.potentials import Potential, load_potential
from nnp_lab.simulate import NEBResult, NEBRun, NEBStep, neb

N_IMAGES = 5
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


def _slab() -> Atoms:
    # ASE's tutorial system: an Au adatom hopping between hollow sites of Al(100).
    slab = fcc100("Al", size=(2, 2, 3))
    add_adsorbate(slab, "Au", 1.7, "hollow")
    slab.center(axis=2, vacuum=4.0)
    slab.set_constraint(FixAtoms(mask=[atom.tag > 1 for atom in slab]))
    return slab


def _relaxed(atoms: Atoms) -> Atoms:
    atoms = atoms.copy()
    atoms.calc = EMT()
    BFGS(atoms, logfile=None).run(fmax=0.01)
    atoms.calc = None
    return atoms


@pytest.fixture(scope="module")
def endpoints() -> tuple[Atoms, Atoms]:
    initial = _slab()
    final = initial.copy()
    final.positions[ADATOM, 0] += final.cell[0, 0] / 2
    return _relaxed(initial), _relaxed(final)


def _ase_reference(initial, final, *, optimizer, interpolation, climb_after):
    """The same NEB done the plain ASE way: one EMT calculator per image."""
    images = [initial.copy() for _ in range(N_IMAGES + 1)] + [final.copy()]
    for image in images:
        image.calc = EMT()
    band = NEB(images, k=0.1, climb=False, method="improvedtangent")
    band.interpolate(method=interpolation, mic=False)
    steps = 0
    if climb_after is not None:
        opt = optimizer(band, logfile=None)
        opt.run(fmax=climb_after, steps=300)
        steps += opt.nsteps
    band.climb = True
    opt = optimizer(band, logfile=None)
    opt.run(fmax=0.05, steps=300 - steps)
    steps += opt.nsteps
    energies = np.array([image.get_potential_energy() for image in images])
    return energies, steps


@pytest.mark.parametrize(
    "optimizer, interpolation, climb_after",
    [(FIRE, "idpp", 0.5), (BFGS, "linear", None)],
    ids=["FIRE-idpp-staged", "BFGS-linear-climb-from-start"],
)
def test_barrier_matches_ase_neb(endpoints, optimizer, interpolation, climb_after):
    initial, final = endpoints
    ref_energies, ref_steps = _ase_reference(
        initial, final, optimizer=optimizer, interpolation=interpolation, climb_after=climb_after
    )
    ref_barrier = ref_energies.max() - ref_energies[0]

    result = neb(
        initial,
        final,
        "emt",
        n_images=N_IMAGES,
        fmax=0.05,
        interpolation=interpolation,
        optimizer=optimizer.__name__,
        climb_after_fmax=climb_after,
    )
    print(
        f"barrier: nnp_lab {result.forward_barrier:.6f} eV, ASE {ref_barrier:.6f} eV; "
        f"iterations {result.n_steps} vs {ref_steps}"
    )
    assert isinstance(result, NEBResult)
    assert result.converged and not result.stopped
    assert abs(result.forward_barrier - ref_barrier) < 1e-3
    np.testing.assert_allclose(result.energies, ref_energies, atol=1e-3)
    assert abs(result.n_steps - ref_steps) <= 1
    # Symmetric hop: the saddle is the middle image, the climbing one, 0.37 eV up (EMT).
    assert result.highest_image == N_IMAGES // 2 + 1 == result.climbing
    assert 0.3 < result.forward_barrier < 0.45
    assert abs(result.forward_barrier - result.backward_barrier) < 5e-3
    assert result.fmax < 0.05
    # Reaction coordinate and smooth profile.
    rc = result.reaction_coordinate
    assert rc.shape == (N_IMAGES + 2,) and rc[0] == 0 and np.all(np.diff(rc) > 0)
    x, e = result.profile
    assert x[0] == 0 and x[-1] == pytest.approx(rc[-1])
    assert e.max() >= result.forward_barrier - 1e-9
    assert e.max() - result.forward_barrier < 0.02
    assert "forward_barrier=" in repr(result)
    assert result.provenance["model"] == "emt"


def test_one_evaluate_call_per_iteration(endpoints):
    initial, final = endpoints
    pot = CountingPotential()
    run = NEBRun(initial, final, pot, n_images=N_IMAGES, fmax=0.05)
    events = list(run.irun())
    result = run.result
    assert result.converged
    # First call: the whole band (endpoints are evaluated once, there); then only the
    # moving images, together, once per iteration.
    assert pot.calls[0] == N_IMAGES + 2
    assert pot.calls[1:] == [N_IMAGES] * (len(pot.calls) - 1)
    assert len(pot.calls) == result.n_steps + 1 == len(events) == run.n_evaluate_calls
    assert [ev.step for ev in events] == list(range(result.n_steps + 1))


def test_events(endpoints):
    initial, final = endpoints
    run = NEBRun(initial, final, "emt", n_images=N_IMAGES, fmax=0.05)
    events = list(run.irun())
    n_total = N_IMAGES + 2
    for ev in events:
        assert isinstance(ev, NEBStep)
        assert ev.run == "neb"
        assert ev.positions.shape == (n_total, len(initial), 3)
        assert ev.energies.shape == (n_total,)
        assert ev.energy == pytest.approx(ev.energies.max())
        assert not ev.positions.flags.writeable and not ev.energies.flags.writeable
        np.testing.assert_allclose(ev.positions[0], initial.positions)
        np.testing.assert_allclose(ev.positions[-1], final.positions)
    # Staged climbing: off at first (rough band), on at the end (the middle image).
    assert events[0].climbing is None
    assert events[-1].climbing == N_IMAGES // 2 + 1
    assert events[-1].converged and not any(ev.converged for ev in events[:-1])
    assert events[-1].fmax < 0.05 < events[0].fmax
    with pytest.raises(AttributeError):
        events[0].fmax = 0.0  # frozen


def test_stop_after_two_iterations_returns_band_and_trajectory(endpoints, tmp_path):
    initial, final = endpoints
    path = tmp_path / "band.traj"
    run = NEBRun(initial, final, "emt", n_images=N_IMAGES, trajectory=path)

    def stop_at_two(event):
        if event.step == 2:
            run.stop()

    run.subscribe(stop_at_two)
    result = run.run()
    n_total = N_IMAGES + 2
    assert result.stopped and not result.converged
    assert result.n_steps == 2
    assert len(result.images) == n_total
    assert np.all(np.isfinite(result.energies))
    assert result.images[3].get_potential_energy() == pytest.approx(result.energies[3])
    assert result.energy_history.shape == (3, n_total)
    # The file holds every band written so far, n_images + 2 frames each.
    frames = read(path, ":")
    assert len(frames) == 3 * n_total
    last_band = read(path, f"-{n_total}:")
    for frame, image in zip(last_band, result.images):
        np.testing.assert_allclose(frame.positions, image.positions)
        assert frame.get_potential_energy() == pytest.approx(image.get_potential_energy())
    barrier, _ = NEBTools(last_band).get_barrier(fit=False)
    assert barrier == pytest.approx(result.forward_barrier)


def test_input_not_mutated(endpoints):
    initial, final = endpoints
    initial, final = initial.copy(), final.copy()
    initial.calc = EMT()
    before = [a.positions.copy() for a in (initial, final)]
    calc = initial.calc
    with pytest.warns(UserWarning, match="not converged"):
        neb(initial, final, "emt", n_images=3, steps=5)
    for atoms, positions in zip((initial, final), before):
        np.testing.assert_array_equal(atoms.positions, positions)
        assert len(atoms.constraints) == 1
    assert initial.calc is calc and final.calc is None


def test_mismatched_endpoints_raise(endpoints):
    initial, final = endpoints
    fewer = final.copy()
    del fewer[0]
    with pytest.raises(InputError, match="13 atoms.*12.*same atoms in the same order"):
        neb(initial, fewer, "emt")
    swapped = final[[ADATOM] + list(range(ADATOM))]
    with pytest.raises(InputError, match="different order.*0 \\(Al vs Au\\)"):
        neb(initial, swapped, "emt")
    other = final.copy()
    other.numbers[ADATOM] = 29  # Cu instead of Au
    with pytest.raises(InputError, match="different compositions"):
        neb(initial, other, "emt")
    stretched = final.copy()
    stretched.set_cell(final.cell * [1.01, 1, 1], scale_atoms=False)
    with pytest.raises(InputError, match="different cells.*set_cell"):
        neb(initial, stretched, "emt")
    with pytest.raises(InputError, match="n_images"):
        neb(initial, final, "emt", n_images=0)
    with pytest.raises(InputError, match="interpolation"):
        neb(initial, final, "emt", interpolation="spline")
    with pytest.raises(InputError, match="optimizer"):
        neb(initial, final, "emt", optimizer="BFGSLineSearch")


def test_relax_endpoints_and_not_converged_warning():
    initial = _slab()  # unrelaxed
    final = initial.copy()
    final.positions[ADATOM, 0] += final.cell[0, 0] / 2
    unrelaxed = load_potential("emt").evaluate([initial])[0]["energy"]
    with pytest.warns(UserWarning, match="not converged after 3 iterations"):
        result = neb(initial, final, "emt", n_images=3, steps=3, relax_endpoints=True, live=True)
    assert result.n_steps == 3 and not result.converged
    # The endpoints were relaxed (to fmax) before the band was built.
    assert result.energies[0] < unrelaxed - 0.005
    for image in (result.images[0], result.images[-1]):
        assert np.linalg.norm(image.get_forces(), axis=1).max() < 0.05
    assert result.provenance["parameters"]["relax_endpoints"] is True


def test_linear_interpolation_is_a_straight_line(endpoints):
    initial, final = endpoints
    run = NEBRun(initial, final, "emt", n_images=4, interpolation="linear", steps=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (first,) = list(run.irun())
    expected = np.linspace(0, 1, 6)[:, None, None] * (final.positions - initial.positions)
    np.testing.assert_allclose(first.positions - initial.positions, expected, atol=1e-12)
