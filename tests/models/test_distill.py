"""distill(): active learning from an EMT teacher on a tiny Cu cell."""

import copy
import importlib
import time

import numpy as np
import pytest
from ase.build import bulk

from nnp_lab.errors import InputError, UncoveredElementsError
from nnp_lab.models import Dataset, DistillReport, distill
from nnp_lab.models.distillation import committee_disagreement
from nnp_lab.potentials import load_potential
from nnp_lab.potentials.torch_model import TorchModelPotential
from nnp_lab.testing import rounding_tolerances


#: The default architecture (TeaNet), kept small so the test is quick.
ARCH = {
    "architecture": "teanet",
    "layer_cutoffs": [3.0, 4.0],
    "n_scalar": 16,
    "n_vector": 4,
    "n_tensor": 4,
    "n_rbf": 6,
}

SMALL = dict(
    temperatures_K=(500, 900),
    test_temperatures_K=(700,),
    committee_size=2,
    max_rounds=2,
    md_steps_per_round=60,
    check_interval=10,
    frames_per_round=6,
    n_initial=10,
    n_test=6,
    test_md_steps=60,
    epochs_initial=25,
    epochs_per_round=8,
    final_epochs=25,
    batch_size=4,
    timestep_fs=2.0,
    force_threshold=0.05,
    progress=False,
    seed=0,
    **ARCH,
)


def cu_cell():
    return bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 1, 1)


@pytest.fixture(scope="module")
def distilled(tmp_path_factory):
    path = tmp_path_factory.mktemp("distill") / "cu-light.pt"
    # no time budget: the rounds and epochs alone bound the run, so the same model comes out
    # on any machine (a budget also shapes the learning-rate schedule by elapsed time)
    light, report = distill(cu_cell(), "emt", time_budget_s=None, path=path, **SMALL)
    return light, report, path


def test_distill_report_rounds_and_accuracy(distilled):
    light, result, path = distilled
    assert isinstance(light, TorchModelPotential)
    assert isinstance(result, DistillReport)
    report = result.to_dict()
    for key in (
        "force_mae",
        "force_rmse",
        "energy_mae_per_atom",
        "rounds",
        "n_frames",
        "converged",
        "stop_reason",
        "timing_s",
        "teacher",
        "architecture",
    ):
        assert key in report
    assert report["teacher"] == "emt" and report["architecture"] == ARCH["architecture"]
    assert report["n_test"] == 6
    rounds = report["rounds"]
    assert 1 <= len(rounds) <= 2
    for r in rounds:
        for key in (
            "round",
            "n_frames",
            "n_new",
            "max_disagreement",
            "val_force_mae",
            "test_force_mae",
            "time_s",
            "md_steps",
        ):
            assert key in r
        assert r["max_disagreement"] >= 0 and r["md_steps"] > 0
    # the first round found frames to learn from (threshold 0.05 eV/Å on a fresh committee)
    assert rounds[0]["n_new"] > 0
    assert rounds[0]["n_frames"] == 11 + rounds[0]["n_new"]
    # held-out teacher MD frames at 700 K (not a training temperature); measured ~0.03-0.05
    # eV/Å for EMT Cu (force RMS ~0.7 eV/Å); an untrained model is at ~0.5
    assert report["force_mae"] < 0.12
    assert report["energy_mae_per_atom"] < 0.05
    assert result.force_mae == report["force_mae"] and result.n_rounds == len(rounds)
    assert "force MAE" in result.summary() and "DistillReport(" in repr(result)


def test_distilled_model_loads_back_and_keeps_test_frames_apart(distilled):
    light, report, path = distilled
    loaded = load_potential(path)
    assert "distilled from emt" in loaded.level_of_theory
    # the report is saved with the model and reads back as the same report
    saved = DistillReport.from_model_file(path)
    assert saved.force_mae == report.force_mae and saved.rounds == report.rounds
    assert saved.path == str(path)
    with pytest.raises(InputError, match="not a model file|cannot read"):
        DistillReport.from_model_file(report.dataset)  # an ase.db, not a model
    atoms = cu_cell()
    atoms.rattle(0.05, seed=1)
    a, b = light.evaluate([atoms])[0], loaded.evaluate([atoms])[0]
    # same weights, same structure: equal to float rounding of the sums (a few ulp of the
    # energy sum and of the force terms, nnp_lab.testing), not to an absolute 1e-6
    tol = rounding_tolerances(atoms, a, light.dtype, cutoff=light.cutoff)
    assert a["energy"] == pytest.approx(b["energy"], rel=0, abs=tol["energy"])
    np.testing.assert_allclose(a["forces"], b["forces"], rtol=0, atol=tol["forces"])
    # training data and held-out frames live in separate files, and never overlap
    train = Dataset(report.dataset)
    test = Dataset(report.test_dataset)
    assert len(test) == 6 and set(test.kinds()) == {"test"}
    assert {f.info["temperature_K"] for f in test} == {700.0}
    assert "active" in train.kinds() and "test" not in train.kinds()
    train_pos = [f.positions for f in train]
    for frame in test:
        assert all(not np.allclose(frame.positions, p) for p in train_pos)
    assert len(train) == report.n_frames


class _FakeTime:
    """``time`` as distill and train see it, with a clock that advances a fixed 0.05 s per
    reading: how far a run gets within its budget depends on the work done, not on the
    machine's speed."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 0.05
        return self.now

    def __getattr__(self, name):
        return getattr(time, name)


def test_time_budget_is_respected(tmp_path, monkeypatch):
    fake = _FakeTime()
    for module in ("nnp_lab.models._distill_run", "nnp_lab.models._trainer"):
        monkeypatch.setattr(importlib.import_module(module), "time", fake)
    options = dict(
        SMALL, n_test=2, test_md_steps=10, max_rounds=50, epochs_initial=1000, final_epochs=1000
    )
    _, report = distill(cu_cell(), "emt", time_budget_s=20, path=tmp_path / "quick.pt", **options)
    assert report.stop_reason == "time budget"
    assert report.n_rounds < 50
    assert report.wall_time_s < 20 + 15  # the final test and save come on top
    assert np.isfinite(report.force_mae)


def test_old_argument_order_warns_and_returns_the_potential_with_a_report_dict(tmp_path):
    """distill(teacher, atoms) of earlier releases: same run, old return shape, a warning."""
    tiny = dict(
        SMALL,
        max_rounds=0,
        n_test=0,
        n_initial=3,
        epochs_initial=2,
        final_epochs=2,
        committee_size=2,
    )
    with pytest.warns(DeprecationWarning, match=r"distill\(atoms, teacher\)"):
        light = distill("emt", cu_cell(), time_budget_s=None, path=tmp_path / "old.pt", **tiny)
    assert isinstance(light, TorchModelPotential)
    assert light.report["teacher"] == "emt" and light.report["n_rounds"] == 0
    assert light.report["path"] == str(tmp_path / "old.pt")


def test_bad_input_fails_before_any_work(tmp_path):
    with pytest.raises(InputError, match="unknown architecture"):
        distill(cu_cell(), "emt", architecture="transformer", path=tmp_path / "x.pt")
    with pytest.raises(UncoveredElementsError, match="Si"):
        distill(bulk("Si", "diamond", a=5.43), "emt", path=tmp_path / "x.pt")
    with pytest.raises(InputError, match="committee_size"):
        distill(cu_cell(), "emt", committee_size=1, path=tmp_path / "x.pt")
    with pytest.raises(InputError, match="temperatures_K"):
        distill(cu_cell(), "emt", temperatures_K=(), path=tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()


def test_committee_disagreement(distilled):
    light, _, _ = distilled
    model = light.model
    frames = [cu_cell(), cu_cell()]
    frames[0].rattle(0.05, seed=0)  # (a perfect crystal has zero forces for every model)
    frames[1].rattle(0.1, seed=1)
    same = committee_disagreement([model, copy.deepcopy(model)], frames)
    # identical members: zero up to the rounding of their forces (a force-sized quantity)
    rounding = max(
        rounding_tolerances(f, r, light.dtype, cutoff=light.cutoff)["forces"]
        for f, r in zip(frames, light.evaluate(frames))
    )
    assert np.all(np.abs(same) <= rounding), (same, rounding)
    other = copy.deepcopy(model)
    for p in other.parameters():
        p.data.add_(0.05)
    differ = committee_disagreement([model, other], frames)
    assert differ.shape == (2,) and np.all(differ > 1e-4)
