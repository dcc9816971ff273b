"""arrhenius() on synthetic diffusivities with a known activation energy."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pymatgen.analysis.diffusion.analyzer import fit_arrhenius

from nnp_lab.errors import InputError
from nnp_lab.properties import ArrheniusResult, PropertyWarning, arrhenius, diffusion

from .test_diffusion import K_B, random_walk


def test_arrhenius_recovers_a_known_activation_energy():
    kb = 8.617333262e-5
    ea, d0 = 0.35, 1e-2
    temps = np.array([500.0, 600.0, 700.0, 800.0, 1000.0])
    rng = np.random.default_rng(3)
    rel = 0.05  # 5 % noise on every D, and that as its stated error
    d = d0 * np.exp(-ea / (kb * temps)) * (1 + rel * rng.standard_normal(temps.size))
    result = arrhenius([(t, di, rel * di) for t, di in zip(temps, d)])
    assert isinstance(result, ArrheniusResult) and result.ok
    assert result.activation_energy_stderr_eV > 0
    assert abs(result.activation_energy_eV - ea) < 4 * result.activation_energy_stderr_eV
    assert result.activation_energy_eV == pytest.approx(ea, abs=0.03)
    d300 = d0 * np.exp(-ea / (kb * 300))
    assert result.diffusivity_300K_cm2_s == pytest.approx(d300, rel=0.5)
    json.dumps(result.to_dict())
    assert len(result.plot().data) >= 2
    with pytest.warns(PropertyWarning):
        two = arrhenius([(500.0, 1e-6), (800.0, 1e-5)])
    assert two.flags
    with pytest.raises(InputError, match="two or more different temperatures"):
        arrhenius([(500.0, 1e-6), (500.0, 2e-6)])


def test_arrhenius_from_diffusion_results():
    ea, d0 = 0.30, 1e-2
    temps = [700.0, 900.0, 1200.0]
    results = []
    for k, t in enumerate(temps):
        d = d0 * np.exp(-ea / (K_B * t))  # 7e-5 to 5.5e-4 cm²/s
        frames = random_walk(d, n_walkers=400, n_frames=401, dt_fs=10.0, box=30.0, seed=10 + k)
        results.append(diffusion(frames, "Li", temperature_K=t, timestep_fs=10.0))
    fit = arrhenius(results)
    assert fit.ok, fit.flags
    assert fit.weighted and fit.activation_energy_stderr_eV > 0
    # each D is good to ~1/sqrt(400) = 5 %; over 700-1200 K that makes Ea good to ~0.015 eV
    assert abs(fit.activation_energy_eV - ea) < 5 * max(fit.activation_energy_stderr_eV, 0.015)
    # σ(300 K) = D(300 K) × the Nernst–Einstein factor scaled to 300 K (∝ 1/T)
    factor_300 = results[0].conductivity_mS_cm / results[0].diffusivity_cm2_s * 700.0 / 300.0
    assert fit.conductivity_300K_mS_cm == pytest.approx(fit.diffusivity_300K_cm2_s * factor_300)
    assert fit.species == "Li"


def test_arrhenius_errors_hold_for_any_seed_and_match_pymatgen():
    ea, d0, rel = 0.35, 1e-2, 0.05
    temps = np.array([500.0, 600.0, 700.0, 800.0, 1000.0])
    x = 1 / temps
    sd_true = K_B * rel / np.sqrt(np.sum((x - x.mean()) ** 2))  # σ(Ea) of 5 % errors in D
    misses = 0
    for seed in range(50):
        noise = np.random.default_rng(seed).standard_normal(temps.size)
        d = d0 * np.exp(-ea / (K_B * temps)) * np.exp(rel * noise)
        fit = arrhenius([(t, di, rel * di) for t, di in zip(temps, d)])
        # the stated error never falls below the true one (χ² only scales it up) ...
        assert fit.activation_energy_stderr_eV >= sd_true * (1 - 1e-6)  # k_B: ASE vs scipy
        misses += abs(fit.activation_energy_eV - ea) > 3 * fit.activation_energy_stderr_eV
        if seed == 0:  # ... and with equal weights the fit is pymatgen's
            unweighted = arrhenius(list(zip(temps, d)))
            ea_pmg, c_pmg, sd_pmg = fit_arrhenius(temps, d)
            assert unweighted.activation_energy_eV == pytest.approx(
                ea_pmg, rel=1e-6
            )  # k_B: ASE vs scipy
            assert unweighted.D0_cm2_s == pytest.approx(c_pmg, rel=1e-9)
            assert unweighted.activation_energy_stderr_eV == pytest.approx(sd_pmg, rel=1e-6)
    assert misses <= 2  # a 3σ miss has odds 0.3 %: none expected in 50
