"""grain_boundary_energy(): Σ3 twin vs Σ5, the relaxation, and bad input."""

from __future__ import annotations

import json

import pytest
from ase.build import bulk

from nnp_lab.errors import InputError
from nnp_lab.properties import GrainBoundaryResult, grain_boundary_energy


@pytest.fixture(scope="module")
def cu():
    return bulk("Cu", "fcc", a=3.6)


def test_twin_costs_far_less_than_a_sigma5_boundary(cu):
    twin = grain_boundary_energy(cu, "emt", sigma=3, rotation_axis=(1, 1, 1), expand_times=2)
    s5 = grain_boundary_energy(cu, "emt", sigma=5, rotation_axis=(1, 0, 0), expand_times=2)
    assert isinstance(twin, GrainBoundaryResult) and twin.sigma == 3 and s5.sigma == 5
    assert abs(twin.grain_boundary_energy_J_m2) < 0.05
    assert s5.grain_boundary_energy_J_m2 > 0.3
    assert twin.grain_boundary_energy_J_m2 < 0.1 * s5.grain_boundary_energy_J_m2
    # relaxing (positions and the normal cell length) lowers γ and opens the boundary
    assert s5.grain_boundary_energy_J_m2 < s5.unrelaxed_grain_boundary_energy_J_m2
    assert s5.expansion_A > 0
    lateral = s5.structure.cell.lengths()[:2]
    assert lateral == pytest.approx(list(s5.structure.cell.lengths()[:2]))
    json.dumps(s5.to_dict())
    assert len(s5.plot().data[0].x) == s5.n_atoms


def test_bad_input_says_what_to_do(cu):
    with pytest.raises(InputError, match=r"no Σ4 boundary about \[100\]"):
        grain_boundary_energy(cu, "emt", sigma=4, rotation_axis=(1, 0, 0))
    with pytest.raises(InputError, match="exactly one of sigma"):
        grain_boundary_energy(cu, "emt")
    with pytest.raises(InputError, match="cubic"):
        grain_boundary_energy(
            bulk("Mg", "hcp", a=3.2, c=5.2), "emt", sigma=7, rotation_axis=(0, 0, 1)
        )
