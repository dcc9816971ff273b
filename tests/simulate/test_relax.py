"""Relaxation: every optimizer converges, cell relaxation matches plain ASE, events, stop."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from ase import units
from ase.build import bulk, fcc111
from ase.calculators.emt import EMT
from ase.cluster import Icosahedron
from ase.constraints import FixAtoms
from ase.filters import FrechetCellFilter
from ase.io import read
from ase.optimize import BFGS

from nnp_lab.errors import InputError, SimulationError
from nnp_lab.potentials import load_potential
from nnp_lab.simulate import Relaxation, RelaxResult, RelaxStep, relax
from tests.simulate.potentials_for_tests import NaNAfter


@pytest.fixture(scope="module")
def emt():
    return load_potential("emt")


def rattled_cluster(seed: int = 1):
    atoms = Icosahedron("Cu", 2)  # 13 atoms
    atoms.rattle(0.1, seed=seed)
    return atoms


def emt_fmax(atoms) -> float:
    """Largest force norm from a fresh, independent ASE EMT (constraints applied)."""
    work = atoms.copy()
    work.calc = EMT()
    return float(np.linalg.norm(work.get_forces(), axis=1).max())


@pytest.mark.parametrize("optimizer", ["FIRE", "BFGS", "LBFGS", "lbfgs"])
def test_every_optimizer_converges_and_leaves_input_alone(emt, optimizer):
    atoms = rattled_cluster()
    before = atoms.copy()
    result = relax(atoms, emt, fmax=0.01, optimizer=optimizer)

    assert isinstance(result, RelaxResult)
    assert result.converged and not result.stopped
    assert result.fmax < 0.01
    assert emt_fmax(result.atoms) < 0.01  # converged according to an independent EMT too
    assert result.energy < result.initial_energy - 1.0  # rattled by 0.1 Å: ~2 eV to gain
    assert result.atoms.get_potential_energy() == pytest.approx(result.energy)
    assert len(result.frames) == result.n_steps + 1
    assert result.provenance["model"] == "emt"
    assert result.provenance["parameters"]["optimizer"].lower() == optimizer.lower()
    # the caller's Atoms is untouched: same positions, no calculator attached
    assert np.array_equal(atoms.positions, before.positions)
    assert atoms.calc is None
    assert result.atoms is not atoms


def test_all_optimizers_reach_the_same_minimum(emt):
    energies = [
        relax(rattled_cluster(), emt, fmax=0.005, optimizer=name).energy
        for name in ("FIRE", "BFGS", "LBFGS", "BFGSLineSearch")
    ]
    assert max(energies) - min(energies) < 1e-3


# (FrechetCellFilter's matrix logarithm costs ~0.1 s per step here, so quasi-Newton only.)
@pytest.mark.parametrize("optimizer", ["BFGS", "LBFGS"])
def test_cell_relaxation_matches_plain_ase(emt, optimizer):
    strained = bulk("Cu", "fcc", a=3.75, cubic=True)
    reference = strained.copy()
    reference.calc = EMT()
    BFGS(FrechetCellFilter(reference), logfile=None).run(fmax=1e-5, steps=200)
    a_ref = reference.cell.cellpar()[0]

    result = relax(strained, emt, cell=True, fmax=1e-4, optimizer=optimizer)
    assert result.converged
    a = result.atoms.cell.cellpar()
    assert a[0] == pytest.approx(a_ref, abs=1e-3)
    assert a[:3] == pytest.approx([a[0]] * 3, abs=1e-6)  # stays cubic
    assert abs(a_ref - 3.75) > 0.1  # the test is not trivial
    assert np.allclose(strained.cell.cellpar()[:3], 3.75)  # input cell unchanged
    # stress attached to the final structure and small
    assert np.abs(result.atoms.get_stress()).max() < 1e-4


def test_cell_fmax_includes_the_stress(emt):
    """A perfect but strained lattice has zero atomic forces, yet is not converged."""
    run = Relaxation(bulk("Cu", a=3.8, cubic=True), emt, cell=True, fmax=0.01, steps=0)
    with pytest.warns(UserWarning, match="not converged"):
        events = list(run.irun())
    assert len(events) == 1
    assert np.abs(events[0].forces).max() < 1e-8
    assert events[0].fmax > 0.1
    assert run.result.converged is False and run.result.n_steps == 0


def test_fixed_atoms_stay_fixed(emt):
    slab = fcc111("Cu", size=(2, 2, 3), vacuum=6.0)
    bottom = [a.index for a in slab if a.tag == 3]
    slab.set_constraint(FixAtoms(indices=bottom))
    slab.rattle(0.05, seed=3)
    before = slab.copy()

    result = relax(slab, emt, fmax=0.02, optimizer="BFGS")
    assert result.converged
    moved = np.linalg.norm(result.atoms.positions - before.positions, axis=1)
    assert np.all(moved[bottom] == 0.0)
    assert moved.max() > 0.01  # the free atoms did move
    # constraints survive on the result and on the caller's atoms
    assert isinstance(result.atoms.constraints[0], FixAtoms)
    assert isinstance(slab.constraints[0], FixAtoms)
    assert np.array_equal(slab.positions, before.positions)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"optimizer": "newton"}, "FIRE, FIRE2, BFGS, LBFGS"),
        ({"optimizer": 3}, "optimizer must be"),
        ({"fmax": -0.05}, "fmax must be > 0"),
        ({"fmax": 0}, "fmax must be > 0"),
        ({"fmax": float("nan")}, "fmax must be"),
        ({"steps": -1}, "steps must be >= 0"),
        ({"steps": 2.5}, "steps must be an integer"),
        ({"cell": True}, "pbc"),
        ({"pressure_GPa": 1.0}, "cell=True"),
        ({"pressure_GPa": 1.0, "pressure_bar": 1.0e4}, "both"),
    ],
)
def test_bad_input_raises_input_error(emt, kwargs, match):
    with pytest.raises(InputError, match=match):
        relax(Icosahedron("Cu", 2), emt, **kwargs)


def test_pressure_bar_is_deprecated_for_pressure_GPa(emt):
    new = Relaxation(bulk("Cu", cubic=True), emt, cell=True, pressure_GPa=2.0)
    with pytest.warns(DeprecationWarning, match="pressure_GPa"):
        old = Relaxation(bulk("Cu", cubic=True), emt, cell=True, pressure_bar=2.0e4)
    p_old = old._optimizer_target().scalar_pressure
    p_new = new._optimizer_target().scalar_pressure
    assert p_old == pytest.approx(p_new, rel=1e-15)
    assert p_new == pytest.approx(2.0 * units.GPa, rel=1e-15)
    assert old.pressure_GPa == pytest.approx(2.0, rel=1e-15)
    assert old.parameters["pressure_GPa"] == pytest.approx(2.0, rel=1e-15)
    assert "pressure_bar" not in old.parameters


def test_relax_pressure_bar_warns_at_the_callers_line_and_matches_pressure_GPa(emt):
    options = {"cell": True, "fmax": 1e-3, "optimizer": "BFGS"}
    free = relax(bulk("Cu", cubic=True), emt, **options)
    new = relax(bulk("Cu", cubic=True), emt, pressure_GPa=5.0, **options)
    with pytest.warns(DeprecationWarning, match="pressure_GPa") as record:
        old = relax(bulk("Cu", cubic=True), emt, pressure_bar=5.0e4, **options)
    deprecations = [w for w in record if issubclass(w.category, DeprecationWarning)]
    assert deprecations[0].filename == __file__  # the user's call, not nnp_lab's internals
    assert np.allclose(old.atoms.cell[:], new.atoms.cell[:], rtol=0, atol=1e-10)
    assert new.atoms.get_volume() < free.atoms.get_volume()  # compressed by 5 GPa
    assert old.provenance["parameters"]["pressure_GPa"] == pytest.approx(5.0, rel=1e-15)


def test_bad_structure_fails_before_running(emt):
    with pytest.raises(InputError, match="expected an ase.Atoms|needs an ase.Atoms"):
        relax("Cu13", emt)
    atoms = Icosahedron("Cu", 2)
    atoms.positions[1] = atoms.positions[0] + 0.1
    with pytest.raises(InputError, match="apart"):
        Relaxation(atoms, emt)


def test_events_are_frozen_and_streamed(emt):
    run = Relaxation(rattled_cluster(), emt, fmax=0.05, optimizer="BFGS")
    seen = []
    run.subscribe(seen.append)
    events = list(run.irun())
    result = run.result

    assert seen == events
    assert all(isinstance(e, RelaxStep) for e in events)
    assert [e.step for e in events] == list(range(len(events)))
    assert len(events) == result.n_steps + 1 == len(result.frames)
    assert events[-1].converged and not any(e.converged for e in events[:-1])
    assert events[-1].fmax == pytest.approx(result.fmax)
    assert [e.energy for e in events] == pytest.approx(list(result.energies))
    assert events[0].energy > events[-1].energy

    event = events[1]
    assert event.run == "relax"
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.energy = 0.0
    for arr in (event.positions, event.cell, event.forces):
        assert not arr.flags.writeable
        with pytest.raises(ValueError):
            arr[0] = 0.0
    # events are snapshots, not views of the running structure
    assert not np.allclose(events[0].positions, events[-1].positions)
    assert event.fmax == pytest.approx(np.linalg.norm(event.forces, axis=1).max())


def test_stop_from_a_subscriber_keeps_exactly_the_frames_produced(emt, tmp_path):
    path = tmp_path / "relax.traj"
    run = Relaxation(rattled_cluster(), emt, fmax=1e-4, optimizer="FIRE", trajectory=path)
    produced = []

    def stop_after_three(event):
        produced.append(event)
        if event.step == 3:
            run.stop()

    run.subscribe(stop_after_three)
    result = run.run()
    assert result.stopped and not result.converged
    assert result.n_steps == 3
    assert [e.step for e in produced] == [0, 1, 2, 3]
    frames = read(path, ":")
    assert len(frames) == len(produced) == len(result.frames) == 4
    assert [f.get_potential_energy() for f in frames] == pytest.approx([e.energy for e in produced])
    assert np.allclose(frames[-1].positions, result.atoms.positions)
    assert result.trajectory == path


def test_trajectory_has_every_step(emt, tmp_path):
    path = tmp_path / "sub" / "run.traj"
    result = relax(rattled_cluster(), emt, fmax=0.05, trajectory=path)
    frames = read(path, ":")
    assert len(frames) == result.n_steps + 1
    assert frames[0].get_potential_energy() == pytest.approx(result.initial_energy)
    assert frames[-1].get_potential_energy() == pytest.approx(result.energy)
    assert np.allclose(frames[-1].get_forces(), result.atoms.get_forces())


def test_not_converged_warns_and_says_so(emt):
    with pytest.warns(UserWarning, match="not converged after 3 steps"):
        result = relax(rattled_cluster(), emt, fmax=1e-4, steps=3)
    assert not result.converged and not result.stopped
    assert result.n_steps == 3 and len(result.frames) == 4
    assert "NOT converged" in result.summary()
    assert "converged=False" in repr(result)


def test_live_progress_does_not_change_the_result(emt, capsys):
    quiet = relax(rattled_cluster(), emt, fmax=0.05, optimizer="BFGS")
    live = relax(rattled_cluster(), emt, fmax=0.05, optimizer="BFGS", live=True)
    assert live.n_steps == quiet.n_steps
    assert live.energy == pytest.approx(quiet.energy, abs=1e-10)
    assert "relax" in capsys.readouterr().err  # tqdm bar on stderr


def test_nan_forces_raise_simulation_error(tmp_path):
    path = tmp_path / "nan.traj"
    with pytest.raises(SimulationError, match=r"step 4.*nan\.traj") as info:
        relax(rattled_cluster(), NaNAfter(4), fmax=1e-4, optimizer="BFGS", trajectory=path)
    frames = read(path, ":")
    assert len(frames) == 4
    partial = info.value.result
    assert partial.stopped and partial.n_steps == 3 and np.isfinite(partial.energy)
    assert all(np.isfinite(f.get_potential_energy()) for f in frames)


def test_cell_mask_relaxes_only_the_allowed_cell_components():
    from ase.build import bulk as ase_bulk

    atoms = ase_bulk("Cu", "fcc", a=3.4, cubic=True)  # compressed: every length wants to grow
    free_z = relax(atoms, "emt", cell=True, cell_mask=(False, False, True, False, False, False))
    a, b, c = free_z.atoms.cell.lengths()
    assert a == pytest.approx(3.4, abs=1e-12) and b == pytest.approx(3.4, abs=1e-12)
    assert c > 3.6  # uniaxially compressed in x and y, it expands along z beyond the cubic a
    assert free_z.provenance["parameters"]["cell_mask"] == [False, False, True, False, False, False]
    with pytest.raises(InputError, match="cell_mask only applies"):
        relax(atoms, "emt", cell_mask=(False, False, True, False, False, False))
    with pytest.raises(InputError, match="six booleans"):
        relax(atoms, "emt", cell=True, cell_mask=(True, True))
