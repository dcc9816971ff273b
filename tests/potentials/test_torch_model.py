"""Our own torch model file format: save -> load_potential(path) reproduces predictions."""

import numpy as np
import pytest
import torch
from ase.build import bulk

from nnp_lab.errors import InputError
from nnp_lab.potentials import load_potential
from nnp_lab.potentials.torch_model import LennardJones, TorchModelPotential, save_model
from nnp_lab.testing import check_potential


def argon():
    atoms = bulk("Ar", "fcc", 5.26, cubic=True) * (2, 1, 1)
    atoms.rattle(0.1, seed=2)
    return atoms


def test_lj_matches_ase_lennard_jones():
    from ase.calculators.lj import LennardJones as AseLJ

    atoms = argon()
    pot = TorchModelPotential(LennardJones(epsilon=0.0104, sigma=3.40, cutoff=7.0), dtype="float64")
    ours = pot.evaluate([atoms])[0]
    ref = atoms.copy()
    ref.calc = AseLJ(epsilon=0.0104, sigma=3.40, rc=7.0, smooth=False)
    assert abs(ours["energy"] - ref.get_potential_energy()) < 1e-8
    np.testing.assert_allclose(ours["forces"], ref.get_forces(), atol=1e-8)
    np.testing.assert_allclose(ours["stress"], ref.get_stress(), atol=1e-9)


def test_save_load_round_trip_is_exact(tmp_path):
    model = LennardJones(epsilon=0.02, sigma=3.3, cutoff=6.0)
    path = save_model(model, tmp_path / "lj.pt", metadata={"name": "my-lj", "dtype": "float64"})
    pot = load_potential(path)
    assert pot.name == "my-lj"
    original = TorchModelPotential(model, dtype="float64").evaluate([argon()])[0]
    loaded = pot.evaluate([argon()])[0]
    assert loaded["energy"] == original["energy"]
    assert np.array_equal(loaded["forces"], original["forces"])
    assert load_potential(str(path)) is pot  # cached by resolved path
    check_potential(pot, argon())


def test_non_model_file_rejected(tmp_path):
    path = tmp_path / "junk.pt"
    torch.save({"hello": torch.zeros(2)}, path)
    with pytest.raises(InputError, match="not an nnp_lab model file"):
        load_potential(path)
    text = tmp_path / "text.pt"
    text.write_text("not a torch file")
    with pytest.raises(InputError, match="not a model file"):
        load_potential(text)


def test_foreign_architecture_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save(
        {
            "format": "nnp_lab.model",
            "format_version": 1,
            "architecture": "os:system",
            "config": {},
            "state_dict": {},
            "metadata": {},
        },
        path,
    )
    with pytest.raises(InputError, match="not part of nnp_lab"):
        load_potential(path)
