"""arrhenius() on synthetic diffusivities with a known activation energy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nnp_lab.errors import InputError
from nnp_lab.properties import ArrheniusResult, PropertyWarning, arrhenius


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
