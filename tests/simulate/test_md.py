"""Molecular dynamics: energy conservation, thermostats, NPT, seeds, events, blow-ups."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.cluster import Icosahedron
from ase.constraints import FixAtoms, FixCom
from ase.io import read

from nnp_lab.errors import InputError, SimulationError
from nnp_lab.potentials import load_potential
from nnp_lab.potentials.emt import EMTPotential
from nnp_lab.simulate import MDResult, MDStep, MolecularDynamics, md
from tests.simulate.potentials_for_tests import NaNAfter


@pytest.fixture(scope="module")
def emt():
    return load_potential("emt")


def cu32():
    return bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)


def cu108():
    return bulk("Cu", "fcc", a=3.6, cubic=True).repeat(3)


def second_half_mean(values) -> float:
    values = np.asarray(values)
    return float(values[len(values) // 2 :].mean())


# -- energy conservation ---------------------------------------------------------------
def test_nve_conserves_energy_over_1000_steps(emt):
    atoms = cu32()
    result = md(
        atoms,
        emt,
        ensemble="nve",
        temperature_K=300,
        timestep_fs=2.0,
        steps=1000,
        interval=10,
        seed=0,
    )
    n = len(atoms)
    etot = result.total_energy / n
    assert result.n_steps == 1000 and len(result.frames) == 101
    assert result.time_ps[-1] == pytest.approx(2.0)
    # bound: 2e-4 eV/atom drift, 5e-5 eV/atom fluctuation (measured ~2e-5 and ~4e-6)
    assert abs(etot[-1] - etot[0]) < 2e-4
    assert etot.std() < 5e-5
    # and something did happen: potential and kinetic energy exchanged
    assert np.ptp(result.potential_energy) / n > 1e-3
    # starting from the perfect lattice, equipartition halves the initial 300 K
    assert 100 < second_half_mean(result.temperature_K) < 200
    assert np.allclose(result.total_energy, result.potential_energy + result.kinetic_energy)


@pytest.mark.slow
def test_nve_with_the_default_universal_model():
    si = bulk("Si", "diamond", a=5.43, cubic=True)  # 8 atoms
    result = md(
        si,
        load_potential("sevennet-0"),
        ensemble="nve",
        temperature_K=300,
        timestep_fs=1.0,
        steps=20,
        interval=1,
        seed=0,
    )
    etot = result.total_energy / len(si)
    assert len(etot) == 21
    assert abs(etot[-1] - etot[0]) < 5e-3
    assert np.abs(etot - etot[0]).max() < 5e-3
    assert result.provenance["model"] == "sevennet-0"


# -- thermostats -----------------------------------------------------------------------
@pytest.mark.parametrize("thermostat", ["langevin", "bussi", "nose-hoover"])
def test_thermostat_reaches_target_temperature(emt, thermostat):
    run = MolecularDynamics(
        cu108(),
        emt,
        ensemble="nvt",
        thermostat=thermostat,
        temperature_K=300,
        timestep_fs=5.0,
        steps=150,
        interval=5,
        seed=1,
    )
    result = run.run()
    mean = second_half_mean(result.temperature_K)
    assert 255 < mean < 345, mean  # ±15 % over the second half (375 fs)
    # NVE from the same start would settle near 150 K: the thermostat did the work
    assert result.temperature_K.min() < 250
    assert result.provenance["parameters"]["thermostat"] == thermostat


def cu8():
    return bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))


def com_frame_temperature(frames, ndof) -> np.ndarray:
    """Kinetic temperature in the centre-of-mass frame over ``ndof`` degrees of freedom,
    computed from the frames' momenta (independent of the run's own bookkeeping)."""
    out = []
    for f in frames:
        p, m = f.get_momenta(), f.get_masses()
        total = p.sum(axis=0)
        ekin = 0.5 * np.sum(p * p / m[:, None]) - 0.5 * total @ total / m.sum()
        out.append(2 * ekin / (ndof * units.kB))
    return np.array(out)


@pytest.mark.parametrize(
    "thermostat, ensemble, expected",
    [
        ("langevin", "nvt", 24),  # thermalises the centre of mass too: 3N
        ("bussi", "nvt", 21),  # momentum conserved and zeroed at the start: 3N - 3
        ("nose-hoover", "nvt", 21),
        ("berendsen", "nvt", 21),
        (None, "nve", 21),
    ],
)
def test_degrees_of_freedom_leave_out_the_motion_md_holds_still(
    emt, thermostat, ensemble, expected
):
    run = MolecularDynamics(
        cu8(), emt, ensemble=ensemble, thermostat=thermostat, temperature_K=300, steps=2, seed=0
    )
    assert run.degrees_of_freedom == expected
    result = run.run()
    assert result.provenance["parameters"]["degrees_of_freedom"] == expected
    assert all(f.info["degrees_of_freedom"] == expected for f in result.frames)
    # every reported temperature is 2 K / (n kB) with that count
    np.testing.assert_allclose(
        result.temperature_K, 2 * result.kinetic_energy / (expected * units.kB), rtol=1e-12
    )


def test_degrees_of_freedom_of_molecules_constraints_and_kept_velocities(emt):
    from ase import Atoms

    bent = Atoms("Cu3", positions=[[0, 0, 0], [2.5, 0, 0], [1.2, 2.1, 0]])
    linear = Atoms("Cu3", positions=[[0, 0, 0], [2.5, 0, 0], [5.0, 0, 0]])

    def ndof(atoms, **kw):
        return MolecularDynamics(atoms, emt, steps=1, seed=0, **kw).degrees_of_freedom

    assert ndof(bent, ensemble="nve") == 9 - 6  # translation and rotation held at zero
    assert ndof(linear, ensemble="nve") == 9 - 5  # a line has two rotations
    assert ndof(bent, thermostat="langevin") == 9  # Langevin: every Cartesian direction
    slab = cu32()
    slab.set_constraint(FixAtoms(indices=range(8)))
    assert ndof(slab, thermostat="bussi") == 3 * 24  # no drift removed when atoms are fixed
    moving = cu8()
    moving.set_velocities(np.full((8, 3), 0.01))  # kept: the centre of mass moves
    assert ndof(moving, ensemble="nve") == 24
    # continuing a run keeps its count: the kept velocities have no drift (or rotation)
    first = md(cu8(), emt, thermostat="bussi", temperature_K=300, steps=5, seed=0)
    assert ndof(first.atoms, thermostat="bussi") == 21
    spun = md(bent, emt, ensemble="nve", temperature_K=300, steps=5, seed=0)
    assert ndof(spun.atoms, ensemble="nve") == 3
    turning = bent.copy()  # a pure rotation about z: no drift, but angular momentum
    turning.set_velocities(np.cross([0, 0, 0.01], bent.positions - bent.get_center_of_mass()))
    assert ndof(turning, ensemble="nve") == 9 - 3


def test_thermostats_target_the_run_degrees_of_freedom(emt):
    ndof, kT = 21, 300 * units.kB
    bussi = MolecularDynamics(cu8(), emt, thermostat="bussi", temperature_K=300, steps=1, seed=0)
    assert bussi._dyn.ndof == ndof
    assert bussi._dyn.target_kinetic_energy == pytest.approx(0.5 * ndof * kT, rel=1e-12)
    chain = MolecularDynamics(
        cu8(), emt, thermostat="nose-hoover", temperature_K=300, taut_fs=100, steps=1, seed=0
    )._dyn._thermostat
    assert 3 * chain._num_atoms_global == pytest.approx(ndof, rel=1e-12)
    assert chain._Q[0] == pytest.approx(ndof * kT * (100 * units.fs) ** 2, rel=1e-12)
    # Berendsen scales towards ASE's 3N temperature: its target is lowered to match
    berendsen = MolecularDynamics(cu8(), emt, thermostat="berendsen", temperature_K=300, steps=1)
    assert berendsen._dyn.temperature == pytest.approx(300 * 21 / 24, rel=1e-12)
    berendsen.set_temperature(600)
    berendsen._apply_temperature()
    assert berendsen._dyn.temperature == pytest.approx(600 * 21 / 24, rel=1e-12)
    bussi.set_temperature(600)
    bussi._apply_temperature()
    assert bussi._dyn.target_kinetic_energy == pytest.approx(ndof * kT, rel=1e-12)


def test_berendsen_holds_the_internal_temperature_at_the_target(emt):
    # Berendsen damps the fluctuations, so its mean sits at the target within a few K; with
    # ASE's 3N count it sat at 300 * 24 / 21 = 343 K for these 8 atoms.
    result = md(
        cu8(),
        emt,
        thermostat="berendsen",
        temperature_K=300,
        taut_fs=50,
        timestep_fs=2.0,
        steps=2000,
        interval=10,
        seed=2,
    )
    internal = com_frame_temperature(result.frames[50:], 21)
    assert internal.mean() == pytest.approx(300, rel=0.02), internal.mean()
    np.testing.assert_allclose(result.temperature_K[50:], internal, rtol=1e-9)


def test_nose_hoover_with_fixed_atoms_is_refused(emt):
    slab = cu32()
    slab.set_constraint(FixAtoms(indices=range(16)))
    with pytest.raises(InputError, match="does not handle constraints.*bussi"):
        md(slab, emt, thermostat="nose-hoover", steps=1)
    held = cu8()  # FixCom only holds the centre of mass, which the chain conserves: allowed
    held.set_constraint(FixCom())
    run = MolecularDynamics(held, emt, thermostat="nose-hoover", steps=1, seed=0)
    assert run.degrees_of_freedom == 21


@pytest.mark.parametrize("thermostat", ["langevin", "bussi", "nose-hoover", "berendsen"])
def test_set_temperature_mid_run_moves_the_average(emt, thermostat):
    run = MolecularDynamics(
        cu32(),
        emt,
        thermostat=thermostat,
        temperature_K=300,
        timestep_fs=5.0,
        steps=160,
        interval=2,
        seed=3,
    )

    def heat(event):
        if event.step == 60:
            run.set_temperature(900)

    run.subscribe(heat)
    events = list(run.irun())
    temps = np.array([e.temperature_K for e in events])
    steps = np.array([e.step for e in events])
    before = temps[(steps > 30) & (steps <= 60)].mean()
    after = temps[steps > 110].mean()
    assert before < 400
    assert after > 700, (before, after)
    assert run.temperature_K == 900
    assert events[-1].target_temperature_K == 900
    assert events[0].target_temperature_K == 300
    schedule = run.result.provenance["parameters"]["temperature_schedule"]
    assert schedule == [(0, 300.0), (60, 900.0)]


def test_set_temperature_rejected_for_nve(emt):
    run = MolecularDynamics(cu32(), emt, ensemble="nve", steps=1)
    with pytest.raises(InputError, match="NVE"):
        run.set_temperature(500)


def test_npt_changes_the_cell_towards_equilibrium(emt):
    compressed = bulk("Cu", "fcc", a=3.5, cubic=True).repeat(2)  # EMT's a is ~3.59 Å
    result = md(
        compressed,
        emt,
        ensemble="npt",
        pressure_GPa=1e-4,
        temperature_K=300,
        timestep_fs=2.0,
        steps=150,
        interval=5,
        seed=0,
        taup_fs=100.0,
    )
    v_atom = result.volume / len(compressed)
    assert v_atom[0] == pytest.approx(3.5**3 / 4)
    assert 11.2 < second_half_mean(v_atom) < 12.2  # EMT: 11.57 Å³/atom at 0 K
    assert abs(second_half_mean(result.pressure_GPa)) < 2.0  # starts at ~+12 GPa
    assert result.pressure_GPa[0] > 8.0
    assert np.all(np.isfinite(result.total_energy))
    assert result.temperature_K.max() < 900
    assert result.provenance["parameters"]["integrator"] == "IsotropicMTKNPT"
    # cubic shape kept by the isotropic barostat
    cellpar = result.atoms.cell.cellpar()
    assert cellpar[:3] == pytest.approx([cellpar[0]] * 3)


def test_anisotropic_npt_runs_and_heats(emt):
    run = MolecularDynamics(
        cu32(),
        emt,
        ensemble="npt",
        barostat="anisotropic",
        pressure_GPa=1.0,
        temperature_K=300,
        timestep_fs=2.0,
        steps=20,
        interval=10,
        seed=0,
        taup_fs=100.0,
    )
    run.subscribe(lambda e: run.set_temperature(600) if e.step == 10 else None)
    result = run.run()
    assert result.provenance["parameters"]["integrator"] == "MTKNPT"
    assert not np.allclose(result.frames[0].cell[:], result.atoms.cell[:])
    assert run._dyn._thermostat._kT == pytest.approx(600 * units.kB, rel=1e-12)


def test_isotropic_npt_retargets_thermostat_and_barostat(emt):
    run = MolecularDynamics(
        cu32(),
        emt,
        ensemble="npt",
        pressure_GPa=1e-4,
        temperature_K=300,
        timestep_fs=2.0,
        steps=12,
        interval=4,
        seed=0,
        taup_fs=100.0,
    )
    w_before = float(np.sum(run._dyn._barostat._W))
    run.subscribe(lambda e: run.set_temperature(450) if e.step == 4 else None)
    result = run.run()
    assert run._dyn._thermostat._kT == pytest.approx(450 * units.kB, rel=1e-12)
    assert run._dyn._barostat._kT == pytest.approx(450 * units.kB, rel=1e-12)
    assert float(np.sum(run._dyn._barostat._W)) == pytest.approx(1.5 * w_before, rel=1e-12)
    assert np.all(np.isfinite(result.total_energy))


def test_missing_ase_internals_are_explained():
    from nnp_lab.simulate._integrators import check_ase_internals

    class NoseHooverChainNVT:  # an ASE that renamed the chain's internals
        _thermostat = object()

    with pytest.raises(RuntimeError, match="ASE internals .*_thermostat._kT.*tested with"):
        check_ase_internals(NoseHooverChainNVT())


# -- reproducibility -------------------------------------------------------------------
@pytest.mark.parametrize("thermostat", ["langevin", "bussi"])
def test_same_seed_same_trajectory(emt, thermostat):
    def positions(seed):
        result = md(
            cu32(),
            emt,
            thermostat=thermostat,
            temperature_K=500,
            timestep_fs=2.0,
            steps=30,
            interval=10,
            seed=seed,
        )
        return np.array([f.positions for f in result.frames])

    first, again, other = positions(7), positions(7), positions(8)
    assert np.array_equal(first, again)
    assert not np.allclose(first[1:], other[1:])


def test_no_seed_records_one(emt):
    run = MolecularDynamics(cu32(), emt, steps=2, interval=1)
    a = run.run()
    b = md(cu32(), emt, steps=2, interval=1, seed=a.provenance["parameters"]["seed"])
    assert np.array_equal(a.atoms.positions, b.atoms.positions)


# -- events, results, input ------------------------------------------------------------
def test_events_and_frames(emt, tmp_path):
    path = tmp_path / "md.traj"
    atoms = cu32()
    before = atoms.copy()
    run = MolecularDynamics(
        atoms,
        emt,
        temperature_K=300,
        timestep_fs=2.0,
        steps=25,
        interval=10,
        trajectory=path,
        seed=0,
    )
    seen = []
    run.subscribe(seen.append)
    events = list(run.irun())
    result = run.result

    assert isinstance(result, MDResult)
    assert seen == events
    assert all(isinstance(e, MDStep) for e in events)
    assert [e.step for e in events] == [0, 10, 20, 25]
    assert [e.time_ps for e in events] == pytest.approx([0, 0.02, 0.04, 0.05])
    for e in events:
        assert e.total_energy == pytest.approx(e.energy + e.kinetic_energy)
        assert e.pressure_GPa is not None
    event = events[1]
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.temperature_K = 0.0
    for arr in (event.positions, event.cell, event.velocities):
        assert not arr.flags.writeable
        with pytest.raises(ValueError):
            arr[0] = 0.0

    assert result.n_steps == 25
    assert len(result.frames) == 4 and len(result.temperature_K) == 4
    assert result.temperature_K == pytest.approx([e.temperature_K for e in events])
    assert result.potential_energy == pytest.approx([e.energy for e in events])
    assert [f.info["step"] for f in result.frames] == [0, 10, 20, 25]
    last = result.frames[-1]
    assert np.allclose(last.get_velocities(), events[-1].velocities)
    assert np.allclose(result.atoms.positions, events[-1].positions)
    assert result.atoms.get_potential_energy() == pytest.approx(events[-1].energy)
    assert result.atoms.get_temperature() == pytest.approx(events[-1].temperature_K)

    on_disk = read(path, ":")
    assert len(on_disk) == 4
    assert np.allclose(on_disk[-1].get_velocities(), events[-1].velocities)
    assert on_disk[2].get_potential_energy() == pytest.approx(events[2].energy)
    assert result.trajectory == path and "md.traj" in repr(result)
    assert "2nd half" in result.summary()

    # the caller's Atoms is untouched
    assert np.array_equal(atoms.positions, before.positions)
    assert atoms.calc is None and not np.any(atoms.get_momenta())


def test_stop_between_recorded_steps_records_the_final_state(emt):
    class StopAt(EMTPotential):
        calls = 0

        def _evaluate(self, structures, properties):
            StopAt.calls += 1
            if StopAt.calls == 15:  # evaluation 15 = step 14
                run.stop()
            return super()._evaluate(structures, properties)

    run = MolecularDynamics(cu32(), StopAt(), steps=100, interval=10, seed=0)
    result = run.run()
    assert result.stopped
    assert [f.info["step"] for f in result.frames] == [0, 10, 14]
    assert result.n_steps == 14


def test_given_velocities_are_kept(emt):
    atoms = cu32()
    rng = np.random.default_rng(0)
    atoms.set_velocities(rng.normal(scale=0.01, size=(len(atoms), 3)))
    given = atoms.get_velocities()
    kept = md(atoms, emt, steps=0, seed=1)
    assert np.allclose(kept.frames[0].get_velocities(), given)
    assert kept.provenance["parameters"]["velocities"] == "kept"
    drawn = md(atoms, emt, steps=0, seed=1, velocities="thermalize")
    assert not np.allclose(drawn.frames[0].get_velocities(), given)
    assert np.allclose(drawn.frames[0].get_momenta().sum(axis=0), 0, atol=1e-10)  # no drift


def test_fixed_atoms_do_not_move_in_md(emt):
    cluster = Icosahedron("Cu", 2)
    cluster.set_constraint(FixAtoms(indices=[0]))
    result = md(cluster, emt, temperature_K=300, timestep_fs=2.0, steps=20, interval=5, seed=0)
    start = cluster.positions[0]
    assert all(np.allclose(f.positions[0], start) for f in result.frames)
    assert not np.allclose(result.atoms.positions[1:], cluster.positions[1:])
    assert isinstance(result.atoms.constraints[0], FixAtoms)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"ensemble": "nph"}, "nve, nvt, npt"),
        ({"thermostat": "andersen"}, "langevin, bussi, nose-hoover, berendsen"),
        ({"ensemble": "npt"}, "pressure_GPa"),
        ({"pressure_GPa": 1e-4}, "only applies to ensemble='npt'"),
        ({"ensemble": "npt", "pressure_GPa": 1e-4, "thermostat": "langevin"}, "nose-hoover"),
        ({"ensemble": "npt", "pressure_GPa": 1.0, "pressure_bar": 1e4}, "both"),
        ({"timestep_fs": 0}, "timestep_fs must be > 0"),
        ({"temperature_K": -5}, "temperature_K must be >= 0"),
        ({"steps": -1}, "steps must be >= 0"),
        ({"interval": 0}, "interval must be >= 1"),
        ({"friction_per_fs": -0.1}, "friction_per_fs must be > 0"),
        ({"friction_per_fs": 0.05, "friction": 0.02}, "both"),
        ({"seed": -1}, "seed"),
        ({"velocities": "random"}, "auto, thermalize, keep"),
        ({"thermostat": "nose-hoover", "temperature_K": 0}, "temperature_K > 0"),
        ({"thermostat": "bussi", "temperature_K": 0}, "zero kinetic energy"),
        ({"frcition": 0.01}, "unknown md option"),
    ],
)
def test_bad_md_input_raises_input_error(emt, kwargs, match):
    with pytest.raises(InputError, match=match):
        md(cu32(), emt, **{"steps": 1, **kwargs})


def test_friction_is_deprecated_for_friction_per_fs(emt):
    with pytest.warns(DeprecationWarning, match="friction_per_fs"):
        run = MolecularDynamics(cu32(), emt, friction=0.02, steps=1)
    assert run.friction_per_fs == 0.02
    assert run.parameters["friction_per_fs"] == 0.02


def test_pressure_bar_is_deprecated_for_pressure_GPa(emt):
    npt = {"ensemble": "npt", "steps": 1, "seed": 0}
    new = MolecularDynamics(cu32(), emt, pressure_GPa=1.0, **npt)
    with pytest.warns(DeprecationWarning, match="pressure_GPa"):
        old = MolecularDynamics(cu32(), emt, pressure_bar=1.0e4, **npt)
    assert old.pressure_GPa == pytest.approx(1.0, rel=1e-15)
    assert old._dyn._pressure_au == pytest.approx(new._dyn._pressure_au, rel=1e-15)
    assert new._dyn._pressure_au == pytest.approx(1.0 * units.GPa, rel=1e-15)
    assert old.parameters["pressure_GPa"] == pytest.approx(1.0, rel=1e-15)
    assert "pressure_bar" not in old.parameters


def test_md_pressure_bar_warns_at_the_callers_line_and_matches_pressure_GPa(emt):
    npt = {"ensemble": "npt", "steps": 4, "interval": 2, "seed": 3, "taup_fs": 100.0}
    new = md(cu32(), emt, pressure_GPa=0.5, **npt)
    with pytest.warns(DeprecationWarning, match="pressure_GPa") as record:
        old = md(cu32(), emt, pressure_bar=5.0e3, **npt)
    assert record[0].filename == __file__  # the user's call, not nnp_lab's internals
    assert old.provenance["parameters"]["pressure_GPa"] == pytest.approx(0.5, rel=1e-15)
    assert np.allclose(old.volume, new.volume, rtol=1e-12, atol=0)
    assert np.allclose(old.pressure_GPa, new.pressure_GPa, rtol=1e-9, atol=1e-12)


def test_md_keywords_are_those_of_molecular_dynamics():
    """md() names the common options; their defaults must be MolecularDynamics' own."""
    import inspect

    ours = inspect.signature(md).parameters
    theirs = inspect.signature(MolecularDynamics).parameters
    named = [n for n, p in ours.items() if p.kind is p.KEYWORD_ONLY and n != "live"]
    assert named and all(n in theirs for n in named)
    assert {n: ours[n].default for n in named} == {n: theirs[n].default for n in named}


def test_npt_needs_a_periodic_cell(emt):
    with pytest.raises(InputError, match="periodic"):
        md(Icosahedron("Cu", 2), emt, ensemble="npt", pressure_GPa=1e-4, steps=1)


def test_thermostat_ignored_for_nve_with_a_warning(emt):
    with pytest.warns(UserWarning, match="ignored"):
        result = md(cu32(), emt, ensemble="nve", thermostat="langevin", steps=1)
    assert result.provenance["parameters"]["integrator"] == "VelocityVerlet"


def test_every_integrator_is_the_expected_ase_class(emt):
    expected = {
        ("nve", None): "VelocityVerlet",
        ("nvt", "langevin"): "Langevin",
        ("nvt", "bussi"): "Bussi",
        ("nvt", "nose-hoover"): "NoseHooverChainNVT",
        ("nvt", "nhc"): "NoseHooverChainNVT",
        ("nvt", "berendsen"): "NVTBerendsen",
        ("npt", None): "IsotropicMTKNPT",
    }
    for (ensemble, thermostat), name in expected.items():
        run = MolecularDynamics(
            cu32(),
            emt,
            ensemble=ensemble,
            thermostat=thermostat,
            pressure_GPa=1e-4 if ensemble == "npt" else None,
            steps=1,
        )
        assert type(run._dyn).__name__ == name


# -- blow-ups --------------------------------------------------------------------------
def test_nan_potential_raises_and_keeps_the_good_frames(tmp_path):
    path = tmp_path / "blowup.traj"
    run = MolecularDynamics(cu32(), NaNAfter(13), steps=50, interval=5, trajectory=path, seed=0)
    with pytest.raises(SimulationError) as info:
        run.run()
    message = str(info.value)
    assert "step 13" in message and "non-finite energy" in message and str(path) in message
    frames = read(path, ":")
    assert [f.info["step"] for f in frames] == [0, 5, 10]
    assert all(np.isfinite(f.get_potential_energy()) for f in frames)
    partial = info.value.result
    assert partial.stopped and partial.n_steps == 10 and len(partial.frames) == 3
    assert np.isfinite(partial.atoms.get_potential_energy())


def test_huge_forces_raise(emt):
    with pytest.raises(SimulationError, match=r"step \d+ .*max_force=0\.5"):
        md(cu32(), emt, temperature_K=300, timestep_fs=2.0, steps=50, seed=0, max_force=0.5)


def test_runaway_temperature_raises(emt):
    with pytest.raises(SimulationError, match="step 0 .*temperature reached .*No trajectory"):
        md(cu32(), emt, ensemble="nve", temperature_K=1000, steps=10, seed=0, max_temperature_K=500)
