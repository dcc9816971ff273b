"""rdf() and vibrational_dos(): an ideal gas, a crystal, known frequencies, a real MD."""

from __future__ import annotations

from nnp_lab.properties import rdf, vibrational_dos

from ase.geometry.rdf import get_rdf

from ase import Atoms, units

import json

import numpy as np
import pytest
from ase.build import bulk
from scipy.integrate import trapezoid

from nnp_lab.errors import InputError
from nnp_lab.properties import RDFResult, VDOSResult


def test_ideal_gas_gives_g_equal_one():
    rng = np.random.default_rng(0)
    box = 20.0
    frames = [
        Atoms("Ar200", positions=rng.uniform(0, box, (200, 3)), cell=[box] * 3, pbc=True)
        for _ in range(50)
    ]
    result = rdf(frames, r_max=8.0, n_bins=40)
    assert isinstance(result, RDFResult) and result.pairs == ["Ar-Ar"]
    g = result.g["Ar-Ar"][result.r_A > 2.0]
    # 50 frames × 200 atoms: the expected count per bin beyond 2 Å is >= 300 pairs, so the
    # relative noise is <= 6 %; 5 standard deviations of the noisiest bin, and the mean to 2 %
    counts_per_bin = 50 * 200 * 199 / box**3 * 4 * np.pi * 2.0**2 * 0.2 / 2
    assert np.all(np.abs(g - 1) < 5 / np.sqrt(counts_per_bin))
    assert abs(np.mean(g) - 1) < 0.02
    # coordination of an ideal gas: 4/3 π r³ ρ
    n8 = result.coordination["Ar-Ar"][-1]
    assert n8 == pytest.approx(4 / 3 * np.pi * 8.0**3 * 199 / box**3, rel=0.03)


def test_fcc_crystal_first_shell():
    a = 3.61
    cu = bulk("Cu", "fcc", a=a, cubic=True) * (3, 3, 3)
    result = rdf([cu], n_bins=300)
    r_peak = result.r_A[np.argmax(result.g["Cu-Cu"])]
    assert r_peak == pytest.approx(a / np.sqrt(2), abs=result.r_A[1] - result.r_A[0])
    assert result.first_shell_coordination["Cu-Cu"] == pytest.approx(12.0, abs=1e-9)
    assert a / np.sqrt(2) < result.first_minimum_A["Cu-Cu"] < a
    json.dumps(result.to_dict())
    assert len(result.plot().data) == 1


def test_rdf_bad_input():
    cu = bulk("Cu", "fcc", a=3.61, cubic=True)
    with pytest.raises(InputError, match="beyond half the cell"):
        rdf([cu], r_max=3.0)
    with pytest.raises(InputError, match="no 'O' atoms"):
        rdf([cu * 2], pairs=[("Cu", "O")])


def test_vdos_peaks_at_known_frequencies():
    # two atoms oscillating at 5 and 12 THz, sampled every 2 fs for 4 ps
    dt, n = 2.0, 2000
    t = np.arange(n) * dt * 1e-3  # ps
    x = np.zeros((n, 2, 3))
    x[:, 0, 0] = 0.05 * np.sin(2 * np.pi * 5.0 * t)
    x[:, 1, 1] = 0.05 * np.sin(2 * np.pi * 12.0 * t)
    frames = [Atoms("Cu2", positions=[[1, 1, 1], [4, 4, 4]] + p, cell=[8] * 3, pbc=True) for p in x]
    result = vibrational_dos(frames, timestep_fs=dt)
    assert isinstance(result, VDOSResult) and result.velocities_from == "positions"
    f, d = result.frequencies_THz, result.dos
    low, high = (f > 2) & (f < 8), (f > 9) & (f < 15)
    resolution = f[1] - f[0]  # 0.25 THz
    assert f[low][np.argmax(d[low])] == pytest.approx(5.0, abs=resolution)
    assert f[high][np.argmax(d[high])] == pytest.approx(12.0, abs=resolution)
    # nothing elsewhere: the Hann window keeps the leakage within a few bins of each line
    far = (np.abs(f - 5.0) > 1.0) & (np.abs(f - 12.0) > 1.0)
    assert trapezoid(d[far], f[far]) < 1e-3
    assert trapezoid(d, f) == pytest.approx(1.0, rel=1e-9)
    assert result.wavenumbers_cm1[-1] == pytest.approx(f[-1] * 33.3564, rel=1e-4)
    json.dumps(result.to_dict())


def test_vdos_of_a_real_md_run():
    from nnp_lab.simulate import md

    # NVE: a Langevin thermostat's random force would add a white-noise background
    run = md(
        bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 2, 2),
        "emt",
        ensemble="nve",
        temperature_K=300,
        steps=400,
        interval=2,
        timestep_fs=2.0,
        seed=0,
    )
    result = vibrational_dos(run, skip_ps=0.2)
    assert result.velocities_from == "momenta"
    f, d = result.frequencies_THz, result.dos
    inside = trapezoid(d[f <= 10.0], f[f <= 10.0])
    assert inside > 0.97  # Cu phonons end below 8.2 THz (EMT at X: 8.14); 0.998 in 800 steps
    assert 1.0 < result.peak_THz < 9.0


def random_mixture(n_frames=4, box=14.0, seed=0):
    rng = np.random.default_rng(seed)
    return [
        Atoms("Na60Cl40", positions=rng.uniform(0, box, (100, 3)), cell=[box] * 3, pbc=True)
        for _ in range(n_frames)
    ]


def test_rdf_is_ases_normalized_by_the_other_atoms():
    frames = random_mixture()
    result = rdf(frames, r_max=6.0, n_bins=30)
    assert result.pairs == ["Cl-Cl", "Cl-Na", "Na-Na"]
    # cross pairs: ASE's partial RDF exactly (its bins are (a, b], ours [a, b): no random
    # distance lies on an edge)
    ase_cross, r = get_rdf(frames, 6.0, 30, elements=("Cl", "Na"))
    np.testing.assert_allclose(result.r_A, r, rtol=1e-12)
    np.testing.assert_allclose(result.g["Cl-Na"], ase_cross, rtol=1e-9, atol=1e-12)
    # like pairs: ASE divides by all N atoms of the element, so its ideal gas is (N-1)/N;
    # ours divides by the N-1 others, so an ideal gas is 1
    for symbol, n in (("Na", 60), ("Cl", 40)):
        ase_like = get_rdf(frames, 6.0, 30, elements=(symbol, symbol), no_dists=True)
        np.testing.assert_allclose(
            result.g[f"{symbol}-{symbol}"], ase_like * n / (n - 1), rtol=1e-9, atol=1e-12
        )
    # n(r) counts neighbours: at r_max it is the density of the others times the sphere
    sphere = 4 / 3 * np.pi * 6.0**3 / 14.0**3
    assert result.coordination["Cl-Na"][-1] == pytest.approx(60 * sphere, rel=0.1)


def test_diamond_first_shell_is_four_although_the_second_peak_is_higher():
    si = bulk("Si", "diamond", a=5.43, cubic=True) * 2
    result = rdf([si], n_bins=300)
    g = result.g["Si-Si"]
    first = result.r_A[np.flatnonzero(g > 0)[0]]
    assert first == pytest.approx(5.43 * np.sqrt(3) / 4, abs=result.r_A[1] - result.r_A[0])
    assert result.first_shell_coordination["Si-Si"] == pytest.approx(4.0, abs=1e-9)


def test_vdos_from_the_frames_velocities():
    # velocities (not positions) oscillating at 5 and 12 THz, sampled every 2 fs for 4 ps
    dt, n = 2.0, 2000
    t = np.arange(n) * dt * 1e-3  # ps
    frames = []
    for k in range(n):
        a = Atoms("Cu2", positions=[[1, 1, 1], [4, 4, 4]], cell=[8] * 3, pbc=True)
        v = np.zeros((2, 3))
        v[0, 0] = 0.01 * np.cos(2 * np.pi * 5.0 * t[k])  # Å/fs
        v[1, 2] = 0.01 * np.cos(2 * np.pi * 12.0 * t[k] + 0.3)
        a.set_velocities(v / units.fs)
        frames.append(a)
    result = vibrational_dos(frames, timestep_fs=dt)
    assert result.velocities_from == "momenta"
    f, d = result.frequencies_THz, result.dos
    resolution = f[1] - f[0]  # 0.125 THz
    for lo, hi, line in ((2, 8, 5.0), (9, 15, 12.0)):
        band = (f > lo) & (f < hi)
        assert f[band][np.argmax(d[band])] == pytest.approx(line, abs=resolution)
    # equal amplitudes and masses: the two lines carry equal weight
    near5, near12 = np.abs(f - 5.0) < 1.0, np.abs(f - 12.0) < 1.0
    assert np.trapezoid(d[near5], f[near5]) == pytest.approx(0.5, abs=0.01)
    assert np.trapezoid(d[near12], f[near12]) == pytest.approx(0.5, abs=0.01)
    with pytest.raises(InputError, match="no 'O' atoms"):
        vibrational_dos(frames, timestep_fs=dt, species="O")


def test_md_result_and_its_trajectory_file_give_the_same_analyses(tmp_path):
    from nnp_lab.simulate import md

    path = tmp_path / "cu.traj"
    run = md(
        bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 2, 2),
        "emt",
        ensemble="nve",
        temperature_K=300,
        steps=200,
        interval=1,
        timestep_fs=2.0,
        seed=1,
        trajectory=path,
    )
    from_run, from_file = rdf(run, r_max=3.5), rdf(path, r_max=3.5)
    np.testing.assert_allclose(from_file.g["Cu-Cu"], from_run.g["Cu-Cu"], rtol=1e-12)
    assert from_run.first_shell_coordination["Cu-Cu"] == pytest.approx(12.0, abs=0.2)
    v_run, v_file = vibrational_dos(run), vibrational_dos(path)
    assert v_run.interval_fs == v_file.interval_fs == pytest.approx(2.0)
    assert v_run.velocities_from == v_file.velocities_from == "momenta"
    np.testing.assert_allclose(v_file.dos, v_run.dos, rtol=1e-9)
    f = v_run.frequencies_THz
    assert np.trapezoid(v_run.dos[f <= 10.0], f[f <= 10.0]) > 0.95  # Cu phonons: below 8 THz
