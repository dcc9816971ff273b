"""diffusion() on synthetic random walks with known answers, and on one real MD run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from nnp_lab.errors import InputError
from nnp_lab.properties import (
    DiffusionResult,
    PropertyWarning,
    diffusion,
)

A2_FS_TO_CM2_S = 1e-16 / 1e-15  # Å²/fs -> cm²/s: 0.1


def random_walk(d_cm2_s, *, n_walkers=64, n_frames=1001, dt_fs=10.0, box=12.0, seed=0):
    """Frames of Li walkers with Gaussian steps: D_i (cm²/s) along x, y, z; unwrapped."""
    rng = np.random.default_rng(seed)
    d = np.broadcast_to(np.asarray(d_cm2_s, dtype=float), (3,)) / A2_FS_TO_CM2_S  # Å²/fs
    steps = rng.standard_normal((n_frames - 1, n_walkers, 3)) * np.sqrt(2 * d * dt_fs)
    start = rng.uniform(0, box, (n_walkers, 3))
    positions = np.concatenate([start[None], start + np.cumsum(steps, axis=0)])
    return [Atoms(f"Li{n_walkers}", positions=p, cell=[box] * 3, pbc=True) for p in positions]


@pytest.fixture(scope="module")
def walk():
    return random_walk([2e-4, 1e-4, 0.5e-4])


@pytest.fixture(scope="module")
def walk_result(walk):
    return diffusion(walk, "Li", temperature_K=600.0, timestep_fs=10.0)


def test_recovers_a_known_anisotropic_diffusivity(walk_result):
    r = walk_result
    assert isinstance(r, DiffusionResult) and r.ok, r.flags
    true = np.array([2e-4, 1e-4, 0.5e-4])
    # 64 walkers over 10 ps: the per-atom spread gives the error bar; 4 of them (and 15 %)
    # hold for any seed, since the estimate's own scatter is what stderr measures
    assert r.diffusivity_cm2_s == pytest.approx(true.mean(), rel=0.15)
    assert abs(r.diffusivity_cm2_s - true.mean()) < 4 * r.diffusivity_stderr_cm2_s
    np.testing.assert_allclose(r.diffusivity_components_cm2_s, true, rtol=0.2)
    assert np.all(
        np.abs(r.diffusivity_components_cm2_s - true) < 4 * r.diffusivity_components_stderr_cm2_s
    )
    assert r.diffusivity_components_cm2_s[0] > r.diffusivity_components_cm2_s[2]
    # MSD grows linearly: 6 D t
    assert r.loglog_slope == pytest.approx(1.0, abs=0.1)
    assert r.msd_A2.shape == r.time_ps.shape and r.msd_components_A2.shape == (len(r.time_ps), 3)
    # Nernst-Einstein with charge +1 for Li, at the given temperature
    assert r.charge == 1.0 and r.temperature_K == 600.0 and r.conductivity_mS_cm > 0
    json.dumps(r.to_dict())
    assert len(r.plot().data) >= 2


def test_wrapped_positions_give_the_same_msd(walk, walk_result):
    wrapped = []
    for f in walk:
        g = f.copy()
        g.wrap()
        wrapped.append(g)
    assert any(not np.allclose(a.positions, b.positions) for a, b in zip(walk, wrapped))
    r = diffusion(wrapped, "Li", temperature_K=600.0, timestep_fs=10.0)
    np.testing.assert_allclose(r.msd_A2, walk_result.msd_A2, rtol=1e-9, atol=1e-9)
    assert r.diffusivity_cm2_s == pytest.approx(walk_result.diffusivity_cm2_s, rel=1e-9)


def test_flags_fire_on_runs_built_to_trigger_them():
    # ballistic: every walker moves at constant velocity, MSD ∝ t²
    rng = np.random.default_rng(1)
    v = rng.standard_normal((16, 3)) * 0.01  # Å/fs
    frames = [
        Atoms("Li16", positions=5 + v * 10.0 * k, cell=[30] * 3, pbc=True) for k in range(301)
    ]
    with pytest.warns(PropertyWarning, match="MSD"):
        ballistic = diffusion(frames, "Li", temperature_K=300.0, timestep_fs=10.0)
    assert "msd_not_linear" in ballistic.flags
    # nearly static: rattling by 0.01 Å
    still = [
        Atoms("Li16", positions=5 + 0.01 * rng.standard_normal((16, 3)), cell=[30] * 3, pbc=True)
        for _ in range(301)
    ]
    with pytest.warns(PropertyWarning):
        static = diffusion(still, "Li", temperature_K=300.0, timestep_fs=10.0)
    assert "too_few_hops" in static.flags


def test_bad_input_names_what_is_there(walk):
    with pytest.raises(InputError, match="Li"):
        diffusion(walk, "Na", temperature_K=600.0, timestep_fs=10.0)
    with pytest.raises(InputError):
        diffusion(walk[:1], "Li", temperature_K=600.0, timestep_fs=10.0)


def test_a_real_md_run_end_to_end():
    from nnp_lab.simulate import md

    run = md(
        bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 2, 2),
        "emt",
        temperature_K=300,
        steps=300,
        interval=5,
        seed=0,
    )
    with pytest.warns(PropertyWarning):  # a solid at 300 K: no diffusion to measure
        r = diffusion(run, "Cu")
    assert r.temperature_K == pytest.approx(300.0)
    assert r.interval_fs == pytest.approx(5 * run.provenance["parameters"]["timestep_fs"])
    assert "too_few_hops" in r.flags and r.max_displacement_A < 1.5
