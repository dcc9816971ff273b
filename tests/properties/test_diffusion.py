"""diffusion() on synthetic random walks with known answers, on one real MD run, and the
Arrhenius fit of what it measures.

Tolerances come from the statistics of the estimator, not from one lucky seed: for a
Gaussian random walk analysed as diffusion() does (DiffusionAnalyzer, smoothed="max", lags
1 ps to the whole run), one walker's diffusivity along one direction scatters by 1.5 times
its true value (measured over 2000 walkers: 1.49, 1.47, 1.51 for x, y, z) and its total D by
at most 1.0 times; the mean over N independent walkers by that over sqrt(N). Every check
allows 5 of those standard deviations (a 1-in-1.7-million miss per check for any seed).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from pymatgen.analysis.diffusion.analyzer import get_conversion_factor
from pymatgen.core import Lattice, Structure

from nnp_lab.errors import InputError
from nnp_lab.properties import DiffusionResult, PropertyWarning, diffusion
from nnp_lab.properties._trajectory import unwrapped_displacements

A2_FS_PER_CM2_S = 10.0  # 1 cm²/s = 1e16 Å² / 1e15 fs
PER_WALKER_SPREAD_COMPONENT = 1.5  # relative; see the module docstring
PER_WALKER_SPREAD_TOTAL = 1.0
K_B = 8.617333262e-5  # eV/K


def walk_positions(d_cm2_s, *, n_walkers, n_frames, dt_fs, box, seed):
    """``(n_frames, n_walkers, 3)`` unwrapped positions of Gaussian walkers with the
    diffusivities ``d_cm2_s`` (cm²/s) along x, y, z: steps of variance 2 D dt."""
    rng = np.random.default_rng(seed)
    d = np.broadcast_to(np.asarray(d_cm2_s, dtype=float), (3,)) * A2_FS_PER_CM2_S  # Å²/fs
    steps = rng.standard_normal((n_frames - 1, n_walkers, 3)) * np.sqrt(2 * d * dt_fs)
    start = rng.uniform(0, box, (n_walkers, 3))
    return np.concatenate([start[None], start + np.cumsum(steps, axis=0)])


def random_walk(d_cm2_s, *, n_walkers=64, n_frames=1001, dt_fs=10.0, box=12.0, seed=0):
    """Frames of Li walkers (unwrapped positions) in a cubic box."""
    positions = walk_positions(
        d_cm2_s, n_walkers=n_walkers, n_frames=n_frames, dt_fs=dt_fs, box=box, seed=seed
    )
    return [Atoms(f"Li{n_walkers}", positions=p, cell=[box] * 3, pbc=True) for p in positions]


TRUE_D = np.array([8e-5, 4e-5, 2e-5])  # cm²/s along x, y, z
N_WALKERS = 1000


@pytest.fixture(scope="module")
def walk():
    return random_walk(TRUE_D, n_walkers=N_WALKERS, n_frames=1001, dt_fs=10.0, box=20.0)


@pytest.fixture(scope="module")
def walk_result(walk):
    return diffusion(walk, "Li", temperature_K=600.0, timestep_fs=10.0)


def test_recovers_a_known_anisotropic_diffusivity(walk_result):
    r = walk_result
    assert isinstance(r, DiffusionResult) and r.ok, r.flags
    assert r.smoothing == "max" and r.n_atoms_species == N_WALKERS
    sd_component = PER_WALKER_SPREAD_COMPONENT / np.sqrt(N_WALKERS)  # 4.7 %
    sd_total = PER_WALKER_SPREAD_TOTAL / np.sqrt(N_WALKERS)  # 3.2 %
    np.testing.assert_allclose(r.diffusivity_components_cm2_s, TRUE_D, rtol=5 * sd_component)
    assert r.diffusivity_cm2_s == pytest.approx(TRUE_D.mean(), rel=5 * sd_total)
    # the anisotropy is resolved: each direction differs from the next by a factor of 2
    assert np.all(np.diff(r.diffusivity_components_cm2_s) < 0)
    # the reported error is the per-atom spread over sqrt(N): the size the statistics say
    rel_err = r.diffusivity_components_stderr_cm2_s / r.diffusivity_components_cm2_s
    np.testing.assert_allclose(rel_err, sd_component, rtol=0.3)
    assert 0.5 * sd_total < r.diffusivity_stderr_cm2_s / r.diffusivity_cm2_s < 1.2 * sd_total
    # MSD = 6 D t from 1 ps to the end of the 10 ps run
    assert r.loglog_slope == pytest.approx(1.0, abs=0.1)
    assert r.time_ps[0] == pytest.approx(1.0) and r.time_ps[-1] <= 10.0
    assert r.msd_A2.shape == r.time_ps.shape and r.msd_components_A2.shape == (len(r.time_ps), 3)
    np.testing.assert_allclose(r.msd_components_A2.sum(axis=1), r.msd_A2, rtol=1e-9)
    json.dumps(r.to_dict())
    assert len(r.plot().data) == 5
    assert "D(Li)" in repr(r)


def test_conductivity_is_nernst_einstein_as_pymatgen_computes_it(walk, walk_result):
    r = walk_result
    structure = Structure(
        Lattice(walk[0].cell[:]),
        walk[0].get_chemical_symbols(),
        walk[0].positions,
        coords_are_cartesian=True,
    )
    # pymatgen takes Li's charge from its outer shell (2s1: 1), which is our +1
    factor = get_conversion_factor(structure, "Li", 600.0)
    assert r.charge == 1.0 and r.temperature_K == 600.0
    assert r.conductivity_mS_cm == pytest.approx(factor * r.diffusivity_cm2_s, rel=1e-9)
    assert r.conductivity_stderr_mS_cm == pytest.approx(
        factor * r.diffusivity_stderr_cm2_s, rel=1e-9
    )
    doubly = diffusion(walk, "Li", temperature_K=600.0, timestep_fs=10.0, charge=2.0)
    assert doubly.conductivity_mS_cm == pytest.approx(4 * r.conductivity_mS_cm, rel=1e-9)
    assert doubly.diffusivity_cm2_s == r.diffusivity_cm2_s


def test_walkers_crossing_the_boundary_many_times_are_unwrapped():
    # a small triclinic cell and fast walkers: each crosses the cell's faces dozens of times
    cell = np.array([[5.0, 0.0, 0.0], [1.5, 4.8, 0.0], [0.7, 1.1, 5.2]])
    truth = walk_positions(5e-4, n_walkers=16, n_frames=3001, dt_fs=2.0, box=5.0, seed=7)
    frac = truth @ np.linalg.inv(cell)
    crossings = np.abs(np.diff(np.floor(frac), axis=0)).sum(axis=(0, 2))
    assert np.all(crossings >= 20), crossings
    unwrapped = [Atoms("Li16O", positions=[*p, [0, 0, 0]], cell=cell, pbc=True) for p in truth]
    wrapped = []
    for a in unwrapped:
        b = a.copy()
        b.wrap()
        wrapped.append(b)
    assert np.max(np.abs(wrapped[-1].positions - unwrapped[-1].positions)) > 5.0
    disp, largest = unwrapped_displacements(wrapped)
    np.testing.assert_allclose(disp[:16], np.transpose(truth - truth[0], (1, 0, 2)), atol=1e-9)
    assert largest < 0.2  # of a cell width: far from the 1/2 where unwrapping fails
    a = diffusion(unwrapped, "Li", temperature_K=300.0, timestep_fs=2.0)
    b = diffusion(wrapped, "Li", temperature_K=300.0, timestep_fs=2.0)
    np.testing.assert_allclose(b.msd_A2, a.msd_A2, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(b.msd_components_A2, a.msd_components_A2, rtol=1e-9, atol=1e-9)
    assert b.diffusivity_cm2_s == pytest.approx(a.diffusivity_cm2_s, rel=1e-9)
    assert a.mean_displacement_A > 10.0  # far beyond the 5 Å cell


def test_flags_fire_on_runs_built_to_trigger_them():
    rng = np.random.default_rng(1)
    # ballistic: every walker moves at constant velocity, MSD ∝ t²
    v = rng.standard_normal((16, 3)) * 0.01  # Å/fs
    frames = [
        Atoms("Li16", positions=5 + v * 10.0 * k, cell=[30] * 3, pbc=True) for k in range(301)
    ]
    with pytest.warns(PropertyWarning, match="MSD"):
        ballistic = diffusion(frames, "Li", temperature_K=300.0, timestep_fs=10.0)
    assert "msd_not_linear" in ballistic.flags and ballistic.loglog_slope > 1.5
    # nearly static: rattling by 0.01 Å
    still = [
        Atoms("Li16", positions=5 + 0.01 * rng.standard_normal((16, 3)), cell=[30] * 3, pbc=True)
        for _ in range(301)
    ]
    with pytest.warns(PropertyWarning):
        static = diffusion(still, "Li", temperature_K=300.0, timestep_fs=10.0)
    assert "too_few_hops" in static.flags and static.mean_displacement_A < 0.1
    # too short: 0.5 ps of a genuine random walk cannot reach the fitted 1 ps lags
    short = random_walk(1e-4, n_walkers=64, n_frames=51, dt_fs=10.0)
    with pytest.warns(PropertyWarning, match="run longer"):
        brief = diffusion(short, "Li", temperature_K=300.0, timestep_fs=10.0)
    assert brief.smoothing == "none" and "msd_not_linear" in brief.flags
    # frames too far apart to unwrap: steps of ~ a third of the cell
    sparse = random_walk(2e-1, n_walkers=16, n_frames=301, dt_fs=10.0, box=6.0)
    with pytest.warns(PropertyWarning, match="record frames more often"):
        jumpy = diffusion(sparse, "Li", temperature_K=300.0, timestep_fs=10.0)
    assert "frames_too_far_apart" in jumpy.flags


def test_bad_input_says_what_to_do(walk, tmp_path):
    few = walk[:20]
    with pytest.raises(InputError, match="no 'Na' atoms.*holds Li"):
        diffusion(few, "Na", temperature_K=600.0, timestep_fs=10.0)
    with pytest.raises(InputError, match="at least 3 frames"):
        diffusion(few[:1], "Li", temperature_K=600.0, timestep_fs=10.0)
    with pytest.raises(InputError, match="timestep_fs"):
        diffusion(few, "Li", temperature_K=600.0)  # no times recorded in these frames
    with pytest.raises(InputError, match="temperature_K"):
        diffusion(few, "Li", timestep_fs=10.0)  # no momenta, no thermostat
    with pytest.raises(InputError, match="no trajectory file"):
        diffusion(tmp_path / "missing.traj", "Li")
    with pytest.raises(InputError, match="skip_ps"):
        diffusion(few, "Li", temperature_K=600.0, timestep_fs=10.0, skip_ps=1.0)
    assert len(few) == 20 and few[0].info == {}  # the input is untouched


def test_a_real_md_run_end_to_end(tmp_path):
    from nnp_lab.simulate import md

    path = tmp_path / "cu.traj"
    run = md(
        bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 2, 2),
        "emt",
        temperature_K=300,
        steps=300,
        interval=5,
        seed=0,
        trajectory=path,
    )
    with pytest.warns(PropertyWarning):  # a solid at 300 K: no diffusion to measure
        r = diffusion(run, "Cu")
    assert r.temperature_K == pytest.approx(300.0)  # the thermostat's target
    assert r.interval_fs == pytest.approx(5 * run.provenance["parameters"]["timestep_fs"])
    assert {"too_few_hops", "msd_not_linear"} <= set(r.flags) and r.max_displacement_A < 1.5
    assert r.provenance["source"]["md"]["model"] == "emt"
    # the .traj file gives the same MSD; its temperature is the frames' mean kinetic one
    with pytest.warns(PropertyWarning):
        f = diffusion(path, "Cu")
    np.testing.assert_allclose(f.msd_A2, r.msd_A2, rtol=1e-9)
    assert f.temperature_K == pytest.approx(np.mean(run.temperature_K), rel=1e-6)
    with pytest.raises(InputError, match="between frames"):
        diffusion(path, "Cu", timestep_fs=1.0)  # the MD step, not the 5 fs between frames


# -- diffusion -> arrhenius ------------------------------------------------------------
