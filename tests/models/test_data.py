"""Dataset (ase.db file) and sample(): kinds, labels equal to the teacher, kept on disk."""

import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.calculators.singlepoint import SinglePointCalculator
from ase.db import connect
from ase.optimize import BFGS

from nnp_lab.errors import InputError, UncoveredElementsError
from nnp_lab.models import Dataset, sample
from nnp_lab.models.sampling import compute_normal_modes
from nnp_lab.potentials import load_potential
from nnp_lab.potentials.emt import EMTPotential
from nnp_lab.simulate._replicas import LangevinReplicas


@pytest.fixture(scope="module")
def emt():
    return load_potential("emt")


def cu_cell():
    return bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 1, 1)


def test_sample_kinds_labels_and_reopen(tmp_path, emt):
    path = tmp_path / "cu.db"
    data = sample(
        cu_cell(),
        emt,
        rattle=(0.05, 0.1),
        strain=0.03,
        md_temperatures_K=(300, 900),
        md_steps=20,
        n_per_structure=4,
        path=path,
        seed=3,
        progress=False,
    )
    assert data.kinds() == {"input": 1, "rattle": 4, "strain": 4, "md": 4}
    assert data.elements == [29]
    assert data.teachers() == ["emt"]

    reopened = Dataset(path)
    assert len(reopened) == len(data) == 13
    frames = reopened.frames()
    direct = emt.evaluate([f.copy() for f in frames])
    for frame, ref in zip(frames, direct):
        res = frame.calc.results
        assert res["energy"] == pytest.approx(ref["energy"], abs=1e-10)
        np.testing.assert_allclose(res["forces"], ref["forces"], atol=1e-10)
        np.testing.assert_allclose(res["stress"], ref["stress"], atol=1e-10)
        assert frame.info["teacher"] == "emt"
        assert frame.info["teacher_version"] == emt.version
    kinds = [f.info["kind"] for f in frames]
    # rattled frames are displaced by about the amplitude; strained cells differ from the input
    ref_pos = cu_cell().positions
    rattles = [f for f in frames if f.info["kind"] == "rattle"]
    assert {f.info["rattle"] for f in rattles} == {0.05, 0.1}
    for f in rattles:
        disp = (f.positions - ref_pos).std()
        assert 0.3 * f.info["rattle"] < disp < 2.0 * f.info["rattle"]
    for f in (f for f in frames if f.info["kind"] == "strain"):
        assert not np.allclose(f.cell, cu_cell().cell)
        eps = np.linalg.solve(cu_cell().cell, f.cell) - np.eye(3)
        assert np.abs(eps).max() <= 0.03 + 1e-9
    md = [f for f in frames if f.info["kind"] == "md"]
    assert sorted(f.info["temperature_K"] for f in md) == [300, 300, 900, 900]
    assert kinds[0] == "input"

    # plain ase.db readers see the labels too
    row = next(connect(str(path)).select(kind="md"))
    assert row.forces.shape == (8, 3) and row.stress.shape == (6,)
    assert np.isfinite(row.energy)


def test_sample_is_reproducible_and_appends(tmp_path, emt):
    a = sample(cu_cell(), emt, rattle=0.05, strain=None, n_per_structure=3, seed=7, progress=False)
    b = sample(cu_cell(), emt, rattle=0.05, strain=None, n_per_structure=3, seed=7, progress=False)
    np.testing.assert_array_equal(a[2].positions, b[2].positions)
    path = tmp_path / "grow.db"
    sample(cu_cell(), emt, rattle=0.05, strain=None, n_per_structure=2, path=path, progress=False)
    grown = sample(
        cu_cell(),
        emt,
        rattle=0.1,
        strain=None,
        n_per_structure=2,
        path=path,
        include_inputs=False,
        progress=False,
    )
    assert len(grown) == 5 and len(Dataset(path)) == 5


def test_normal_mode_sampling_moves_along_vibrations(emt):
    water = molecule("H2O")
    water.calc = emt.calculator()
    BFGS(water, logfile=None).run(fmax=0.005, steps=300)
    water.calc = None
    modes, k = compute_normal_modes(water, emt)
    assert modes.shape == (3, 3, 3) and np.all(k > 0)
    data = sample(
        water,
        emt,
        rattle=None,
        strain=None,
        normal_modes=(300, 600),
        n_per_structure=6,
        seed=1,
        progress=False,
    )
    frames = [f for f in data.frames() if f.info["kind"] == "normal_mode"]
    assert len(frames) == 6
    assert sorted({f.info["temperature_K"] for f in frames}) == [300, 600]
    basis = modes.reshape(3, -1).T  # columns: the three vibrational modes
    for f in frames:
        d = (f.positions - water.positions).ravel()
        assert np.linalg.norm(d) > 1e-3
        coeff, *_ = np.linalg.lstsq(basis, d, rcond=None)
        # no translation or rotation: the displacement lies in the span of the modes
        assert np.linalg.norm(basis @ coeff - d) < 1e-6 * max(1.0, np.linalg.norm(d))
        ref = emt.evaluate([f.copy()])[0]
        assert f.calc.results["energy"] == pytest.approx(ref["energy"], abs=1e-10)


def test_split_and_views(tmp_path, emt):
    data = sample(
        cu_cell(),
        emt,
        rattle=0.05,
        strain=0.02,
        n_per_structure=5,
        path=tmp_path / "s.db",
        progress=False,
    )
    train, val = data.split(0.2, seed=0)
    assert len(train) + len(val) == len(data) and len(val) == 2
    positions = {tuple(f.positions.ravel().round(8)) for f in train.frames()}
    assert not positions & {tuple(f.positions.ravel().round(8)) for f in val.frames()}
    again_train, _ = data.split(0.2, seed=0)
    assert [f.info["kind"] for f in again_train] == [f.info["kind"] for f in train]
    with pytest.raises(InputError, match="view"):
        val.add(cu_cell(), emt)
    with pytest.raises(InputError, match="validation_fraction"):
        data.split(1.5)


def test_add_prelabelled_and_errors(tmp_path, emt):
    data = Dataset(tmp_path / "given.db")
    atoms = cu_cell()
    atoms.calc = SinglePointCalculator(atoms, energy=-1.0, forces=np.ones((8, 3)))
    assert data.add([atoms], kind="given", note="hand made") == [0]
    frame = Dataset(tmp_path / "given.db")[0]
    assert frame.get_potential_energy() == -1.0 and frame.info["note"] == "hand made"
    with pytest.raises(InputError, match="no energy/forces"):
        data.add([cu_cell()])
    with pytest.raises(InputError, match="empty list"):
        sample([], emt)
    with pytest.raises(UncoveredElementsError, match="Si"):
        sample(bulk("Si", "diamond", a=5.43), emt, progress=False)
    with pytest.raises(InputError, match="nothing to sample"):
        sample(cu_cell(), emt, include_inputs=False, rattle=None, strain=None)
    with pytest.raises(InputError, match=r"\.db"):
        Dataset(tmp_path / "data.txt")
    with pytest.raises(InputError, match="rattle"):
        sample(cu_cell(), emt, rattle=-0.1)


class _Interrupting(EMTPotential):
    """EMT that raises KeyboardInterrupt on its third evaluate call (counted per instance,
    so a rerun of the test, or another instance, starts from zero)."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def _evaluate(self, structures, properties):
        self.calls += 1
        if self.calls == 3:
            raise KeyboardInterrupt
        return super()._evaluate(structures, properties)


def test_interrupted_sampling_keeps_labelled_batches(tmp_path):
    path = tmp_path / "partial.db"
    teacher = _Interrupting()
    with pytest.raises(KeyboardInterrupt):
        sample(
            cu_cell(),
            teacher,
            rattle=0.05,
            strain=None,
            n_per_structure=11,
            batch_size=4,
            path=path,
            progress=False,
        )
    kept = Dataset(path)
    assert len(kept) == 8  # the two batches labelled before the interrupt
    assert all(np.isfinite(f.get_potential_energy()) for f in kept)


def test_langevin_replicas_reach_their_temperatures(emt):
    cell = bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 2, 1)
    dyn = LangevinReplicas(
        [cell, cell],
        emt,
        [300.0, 900.0],
        timestep_fs=4.0,
        friction_per_fs=0.02,
        rng=np.random.default_rng(0),
        initial_temperature_factor=2.0,
    )
    temps = [[], []]
    for step in range(200):
        dyn.step()
        if step >= 50:
            for k in range(2):
                temps[k].append(dyn.temperature(k))
    assert np.mean(temps[0]) == pytest.approx(300, rel=0.25)
    assert np.mean(temps[1]) == pytest.approx(900, rel=0.25)


def test_langevin_replica_reset(emt):
    cell = bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 2, 1)
    dyn = LangevinReplicas([cell], emt, [600.0], timestep_fs=2.0, rng=np.random.default_rng(1))
    for _ in range(5):
        dyn.step()
    moved = dyn.atoms[0].positions.copy()
    dyn.active[0] = False
    dyn.reset(0, cell, temperature_factor=2.0)
    assert dyn.active[0]
    np.testing.assert_allclose(dyn.atoms[0].positions, cell.positions)
    assert not np.allclose(dyn.atoms[0].positions, moved)
    ref = emt.evaluate([cell])[0]
    np.testing.assert_allclose(dyn.results[0]["forces"], ref["forces"], atol=1e-10)
    assert 300 < dyn.temperature(0) < 2400  # drawn at 2 x 600 K (16 atoms: wide spread)
