"""train(): it learns, fits reference energies, stops early, keeps the best weights."""

import numpy as np
import pytest
import torch
from ase.build import bulk

from nnp_lab.errors import InputError
from nnp_lab.models import TrainReport, sample, train
from nnp_lab.models.training import evaluate_model, fit_reference_energies
from nnp_lab.potentials import load_potential
from nnp_lab.testing import rounding_tolerances


#: Architectures to train in these tests (TeaNet, the distillation default, first).
ARCHITECTURES = ["teanet", "schnet"]


def small_model(name, elements, seed=0):
    """Weights from ``seed`` alone (the constructor's own seed, not the global torch RNG)."""
    if name == "teanet":
        from nnp_lab.models.teanet import TeaNet

        return TeaNet(
            elements,
            layer_cutoffs=[3.0, 4.0],
            n_scalar=16,
            n_vector=4,
            n_tensor=4,
            n_rbf=6,
            seed=seed,
        )
    from nnp_lab.models.schnet import SchNet

    return SchNet(elements, cutoff=4.0, n_features=16, n_interactions=2, n_rbf=12, seed=seed)


@pytest.fixture(scope="module")
def emt():
    return load_potential("emt")


@pytest.fixture(scope="module")
def cu_data(emt, tmp_path_factory):
    cell = bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 1, 1)
    return sample(
        cell,
        emt,
        rattle=(0.03, 0.08),
        strain=0.02,
        md_temperatures_K=(700,),
        md_steps=40,
        n_per_structure=8,
        seed=0,
        progress=False,
        path=tmp_path_factory.mktemp("train") / "cu.db",
    )


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_training_lowers_the_force_error(arch, cu_data):
    model, report = train(
        small_model(arch, ["Cu"]),
        cu_data,
        epochs=40,
        batch_size=4,
        lr=5e-3,
        validation_fraction=0.2,
        seed=0,
        threads=1,
        live=False,
    )
    assert isinstance(report, TrainReport)
    assert report.n_validation == 5 and report.n_train == 20
    assert report.epochs == len(report.history["epoch"]) <= 40
    # measured: validation force MAE 0.02-0.04 eV/Å (TeaNet/SchNet) from ~0.5 untrained,
    # on forces with an RMS of ~0.6 eV/Å
    assert report.force_mae < 0.1
    assert report.force_mae < 0.3 * report.initial_force_mae
    assert report.force_rmse >= report.force_mae
    assert np.isfinite(report.energy_mae_per_atom) and report.energy_mae_per_atom < 0.05
    # the reported errors are those of the returned weights
    _, val = cu_data.split(0.2, seed=0)
    again = evaluate_model(model, val)
    assert again["force_mae"] == pytest.approx(report.force_mae, rel=1e-4)


def test_reference_energies_recover_a_synthetic_offset(emt):
    rng = np.random.default_rng(0)
    frames = []
    for k in range(12):
        atoms = bulk("Cu", "fcc", a=3.7, cubic=True) * (2, 1, 1)
        n_au = k % 9
        atoms.numbers[rng.permutation(8)[:n_au]] = 79
        atoms.rattle(0.02, seed=k)
        frames.append(atoms)
    from ase.calculators.singlepoint import SinglePointCalculator

    offsets = {29: 3.0, 79: -1.5}
    labelled, shifted = [], []
    for atoms, res in zip(frames, emt.evaluate(frames)):
        a = atoms.copy()
        a.calc = SinglePointCalculator(a, **res)
        labelled.append(a)
        b = atoms.copy()
        extra = sum(offsets[int(z)] for z in atoms.numbers)
        b.calc = SinglePointCalculator(b, energy=res["energy"] + extra, forces=res["forces"])
        shifted.append(b)
    base = fit_reference_energies(
        [a.numbers for a in labelled], [a.get_potential_energy() for a in labelled], [29, 79]
    )
    fitted = fit_reference_energies(
        [a.numbers for a in shifted], [a.get_potential_energy() for a in shifted], [29, 79]
    )
    for z in (29, 79):
        assert fitted[z] - base[z] == pytest.approx(offsets[z], abs=1e-8)
    # train() sets exactly those on the model before the first epoch
    model = small_model(ARCHITECTURES[-1], ["Cu", "Au"])
    model, report = train(model, shifted, epochs=1, validation_fraction=0.0, threads=1, live=False)
    refs = model.get_reference_energies()
    for z in (29, 79):
        assert refs[z] == pytest.approx(fitted[z], abs=1e-4)
    assert report.reference_energies["Cu"] == pytest.approx(fitted[29], abs=1e-4)
    assert report.energy_scale > 0


def test_early_stopping_triggers(cu_data):
    model, report = train(
        small_model(ARCHITECTURES[-1], ["Cu"]),
        cu_data,
        epochs=50,
        lr=1e-9,
        patience=3,
        threads=1,
        live=False,
    )
    assert report.stopped_early and report.stop_reason == "patience"
    assert report.epochs == 3
    assert report.best_epoch == 0  # nothing beat the starting weights


def test_plateau_schedule_lowers_the_learning_rate(cu_data):
    _, report = train(
        small_model(ARCHITECTURES[-1], ["Cu"]),
        cu_data,
        epochs=14,
        lr=1e-9,
        patience=None,
        schedule="plateau",
        threads=1,
        live=False,
    )
    lrs = report.history["lr"]
    assert lrs[0] == pytest.approx(1e-9) and lrs[-1] < lrs[0]


def test_interrupt_keeps_the_best_weights(cu_data, tmp_path):
    model = small_model(ARCHITECTURES[-1], ["Cu"])

    def sabotage(entry):
        if entry["epoch"] == 6:
            with torch.no_grad():  # wreck the weights, then "press Ctrl-C"
                for p in model.parameters():
                    p.mul_(50.0).add_(1.0)
            raise KeyboardInterrupt

    path = tmp_path / "best.pt"
    with pytest.warns(UserWarning, match="interrupted"):
        model, report = train(
            model, cu_data, epochs=30, lr=5e-3, callback=sabotage, threads=1, live=False, path=path
        )
    assert report.interrupted and report.stop_reason == "interrupted"
    assert report.epochs == 6 and 1 <= report.best_epoch <= 6
    best = report.history["val_force_mae"][report.best_epoch - 1]
    assert report.force_mae == pytest.approx(best, rel=1e-4)
    assert report.force_mae < report.initial_force_mae
    # the saved file holds the same (best) model
    pot = load_potential(path)
    atoms = cu_data[3]
    assert_same_forces(pot, model, atoms)
    assert pot.name == "best"


def assert_same_forces(pot, model, atoms):
    """The loaded potential ``pot`` holds ``model``: equal forces up to float rounding of the
    force sums (a few ulp of max|F|; another epoch's weights differ by ~1e-3 eV/Å or more)."""
    from nnp_lab.potentials.torch_model import TorchModelPotential

    direct = TorchModelPotential(model, dtype=pot.dtype).evaluate([atoms])[0]
    atol = rounding_tolerances(atoms, direct, pot.dtype, cutoff=pot.cutoff)["forces"]
    np.testing.assert_allclose(
        pot.evaluate([atoms])[0]["forces"], direct["forces"], rtol=0, atol=atol
    )


def test_bad_input_is_explained(cu_data, tmp_path):
    from nnp_lab.models import Dataset

    arch = ARCHITECTURES[-1]
    with pytest.raises(InputError, match="empty"):
        train(small_model(arch, ["Cu"]), Dataset(tmp_path / "empty.db"))
    with pytest.raises(InputError, match="Cu"):
        train(small_model(arch, ["Au"]), cu_data, epochs=1, live=False)
    with pytest.raises(InputError, match="schedule"):
        train(small_model(arch, ["Cu"]), cu_data, schedule="sometimes")
    with pytest.raises(InputError, match="no energy or forces"):
        train(small_model(arch, ["Cu"]), [bulk("Cu", cubic=True)], live=False)
    with pytest.raises(InputError, match="EnergyModel"):
        train("schnet", cu_data)


def test_saving_again_to_a_path_is_seen_by_load_potential(cu_data, tmp_path):
    path = tmp_path / "model.pt"
    atoms = cu_data[2]
    first, _ = train(
        small_model(ARCHITECTURES[-1], ["Cu"], seed=1),
        cu_data,
        epochs=1,
        threads=1,
        live=False,
        path=path,
    )
    before = load_potential(path).evaluate([atoms])[0]["forces"]
    second, _ = train(
        small_model(ARCHITECTURES[-1], ["Cu"], seed=2),
        cu_data,
        epochs=1,
        threads=1,
        live=False,
        path=path,
    )
    reloaded = load_potential(path)
    assert not np.allclose(before, reloaded.evaluate([atoms])[0]["forces"])
    assert_same_forces(reloaded, second, atoms)


def test_a_fresh_behler_parrinello_model_gets_its_descriptors_standardised(cu_data):
    from nnp_lab.models import BehlerParrinello

    model = BehlerParrinello(elements=["Cu"], cutoff=4.0, hidden=(8,), seed=0).double()
    train_part, _ = cu_data.split(0.2, seed=0)
    frames = train_part.frames()
    raw = model.descriptors(frames)
    assert float(raw.mean(dim=0).abs().max()) > 0.1  # unscaled inputs are far from centred
    train(
        model,
        cu_data,
        epochs=1,
        batch_size=4,
        validation_fraction=0.2,
        seed=0,
        threads=1,
        live=False,
        dtype="float64",
    )
    scaled = model.descriptors(frames, standardised=True)
    varying = raw.std(dim=0) > 1e-3
    np.testing.assert_allclose(scaled.mean(dim=0).numpy(), 0, atol=1e-8)
    np.testing.assert_allclose(scaled.std(dim=0, unbiased=False)[varying].numpy(), 1, rtol=1e-6)
    # fine-tuning (reference energies already set) keeps the standardisation
    mean = model.descriptor_mean.clone()
    train(
        model,
        cu_data.split(0.5, seed=3)[0],
        epochs=1,
        batch_size=4,
        seed=0,
        threads=1,
        live=False,
        dtype="float64",
    )
    assert torch.equal(model.descriptor_mean, mean)


@pytest.fixture
def default_thread_policy(monkeypatch):
    """The "auto" policy, whatever NNP_LAB_THREADS or an earlier test's set_threads() left,
    with the machine's free CPUs replaced by a fixed answer (1 free CPU), so the verdict does
    not depend on the load; records the call sizes it was asked about."""
    import nnp_lab
    from nnp_lab import threads as policy

    asked = []

    def limit(n_atoms, cap):
        asked.append(n_atoms)
        return 1

    monkeypatch.setattr(policy._auto, "limit", limit)
    old = nnp_lab.get_threads()
    nnp_lab.set_threads("auto")
    yield asked
    nnp_lab.set_threads(old)


@pytest.mark.parametrize("threads, expected", [("auto", 1), (2, 2), (None, 3)])
def test_training_threads_follow_nnp_lab_policy(cu_data, threads, expected, default_thread_policy):
    old = torch.get_num_threads()
    torch.set_num_threads(3)
    seen = []
    try:
        train(
            small_model(ARCHITECTURES[0], ["Cu"]),
            cu_data,
            epochs=1,
            batch_size=4,
            threads=threads,
            live=False,
            callback=lambda _: seen.append(torch.get_num_threads()),
        )
        assert seen == [expected]
        if threads == "auto":
            assert default_thread_policy == [4 * 8]  # asked once, for a minibatch's atoms
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(old)


@pytest.mark.parametrize("bad", [0, "two", 1.5])
def test_bad_thread_counts_are_explained(cu_data, bad):
    with pytest.raises(InputError, match="threads"):
        train(small_model(ARCHITECTURES[0], ["Cu"]), cu_data, epochs=1, threads=bad, live=False)
