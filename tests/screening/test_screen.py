"""screen(): batched results equal one-by-one calls; failures recorded; resumable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

import nnp_lab
from nnp_lab.errors import InputError
from nnp_lab.potentials import load_potential
from nnp_lab.potentials.emt import EMTPotential
from nnp_lab.screening import ScreenResult, load, screen
from nnp_lab.screening._batched_relax import relax_in_batches
from nnp_lab.simulate import relax

ROOT = Path(__file__).resolve().parents[2]


def cells(n, seed=0):
    out = []
    for k in range(n):
        a = bulk("Cu", "fcc", a=3.58 + 0.01 * (k % 5), cubic=True) * (1 + k % 2, 1, 1)
        a.rattle(0.05, seed=seed + k)
        out.append(a)
    return out


def test_batched_relaxation_equals_one_by_one(tmp_path):
    inputs = cells(9)
    res = screen(inputs, "relax", "emt", db=tmp_path / "r.db", batch=4)
    assert isinstance(res, ScreenResult) and res.n_done == 9 and res.n_failed == 0
    df = res.to_dataframe()
    assert list(df.input_index) == list(range(9)) and set(df.status) == {"done"}
    for k, atoms in enumerate(inputs):
        ref = relax(atoms, "emt", fmax=0.05)
        row = df.iloc[k]
        # the same ASE FIRE on the same float64 EMT forces: the same path, step for step
        assert row.n_steps == ref.n_steps and bool(row.converged) == ref.converged
        assert row.energy == pytest.approx(ref.energy, rel=0, abs=1e-10)
        np.testing.assert_allclose(res.atoms(row.row_id).positions, ref.atoms.positions, atol=1e-9)
    # the inputs are untouched
    assert all(a.calc is None for a in inputs)


def test_in_flight_batch_never_exceeds_its_bounds():
    pot = EMTPotential()  # its own instance: load_potential's is shared by every test
    sizes = []
    original = pot.evaluate

    def counting(structures, *a, **k):
        sizes.append(len(structures))
        return original(structures, *a, **k)

    pot.evaluate = counting
    outcomes = list(relax_in_batches(enumerate(cells(10)), pot, max_structures=3))
    assert sorted(o.index for o in outcomes) == list(range(10))
    assert max(sizes) == 3 and all(o.converged for o in outcomes)
    # the batch stays full while there is work: 3 in flight until fewer than 3 remain
    assert sizes[0] == 3 and sizes.count(3) > len(sizes) // 2


def test_single_points_in_batches(tmp_path):
    inputs = cells(7)
    res = screen(inputs, "energy", "emt", db=tmp_path / "e.db", batch=3)
    df = res.to_dataframe()
    pot = load_potential("emt")
    expected = [r["energy"] for r in pot.evaluate(inputs)]
    np.testing.assert_allclose(df.energy, expected, rtol=0, atol=1e-12)


def test_bad_structures_are_failed_rows_and_the_rest_is_right(tmp_path):
    inputs = cells(4)
    inputs.insert(1, Atoms("Si2", positions=[[0, 0, 0], [1.2, 1.2, 1.2]], cell=[5] * 3, pbc=True))
    close = bulk("Cu", "fcc", a=3.6, cubic=True)
    close.positions[1] = close.positions[0] + [0.2, 0, 0]
    inputs.append(close)
    res = screen(inputs, "relax", "emt", db=tmp_path / "b.db")
    assert res.n_done == 4 and res.n_failed == 2
    df = res.to_dataframe()
    assert list(df.status) == ["done", "failed", "done", "done", "done", "failed"]
    assert "UncoveredElementsError" in df.error[1] and "Si" in df.error[1]
    assert "close" in df.error[5].lower()
    assert [f["input_index"] for f in res.failed] == [1, 5]
    ref = relax(inputs[2], "emt")
    assert df.energy[2] == pytest.approx(ref.energy, abs=1e-10)


def test_second_run_does_only_what_is_missing(tmp_path):
    db = tmp_path / "again.db"
    first = screen(cells(5), "relax", "emt", db=db)
    assert first.n_done == 5
    more = screen(cells(8), "relax", "emt", db=db)  # the same 5, and 3 new
    assert more.n_skipped == 5 and more.n_done == 3
    assert len(load(db).to_dataframe()) == 8
    # another task or other options: other keys
    other = screen(cells(5), "relax", "emt", db=db, fmax=0.02)
    assert other.n_done == 5 and other.n_skipped == 0


def test_property_and_callable_tasks(tmp_path):
    crystals = [bulk("Cu", "fcc", a=3.6), bulk("Al", "fcc", a=4.05), bulk("Pt", "fcc", a=3.92)]
    res = screen(crystals, "eos", "emt", db=tmp_path / "p.db", relax=False, n_points=7)
    df = res.to_dataframe().sort_values("bulk_modulus_GPa", ascending=False)
    assert list(df.formula) == ["Pt", "Cu", "Al"]  # EMT: Pt stiffest, Al softest
    direct = nnp_lab.properties.eos(crystals[0], "emt", relax=False, n_points=7)
    assert res.to_dataframe().bulk_modulus_GPa[0] == pytest.approx(direct.bulk_modulus_GPa)

    def volume_per_atom(atoms, potential):
        return {"volume_per_atom": atoms.get_volume() / len(atoms)}

    res = screen(crystals, volume_per_atom, "emt", db=tmp_path / "c.db")
    assert res.to_dataframe().volume_per_atom[1] == pytest.approx(4.05**3 / 4)
    with pytest.raises(InputError, match="unknown task"):
        screen(crystals, "melting_point", "emt", db=tmp_path / "x.db")


def test_files_and_databases_as_input(tmp_path):
    from ase.io import write

    for k, a in enumerate(cells(3)):
        write(tmp_path / f"s{k}.cif", a)
    res = screen(str(tmp_path / "*.cif"), "energy", "emt", db=tmp_path / "f.db")
    assert res.n_done == 3
    again = screen(str(tmp_path / "f.db"), "energy", "emt", db=tmp_path / "g.db")
    assert again.n_done == 3
    with pytest.raises(InputError, match="no structure files"):
        screen(str(tmp_path / "*.xyz"), "energy", "emt", db=tmp_path / "h.db")


SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    sys.path.insert(0, {root!r})
    from ase.build import bulk
    from nnp_lab.potentials.emt import EMTPotential
    from nnp_lab.screening import screen

    class HoldAt(EMTPotential):
        # EMT (the same model as far as the keys go) that, at its {hold}-th call, says so in
        # a file and waits there until it is killed: where the screen stands when the kill
        # comes depends on the call count, not on the machine's speed
        calls = 0
        def _evaluate(self, structures, properties):
            HoldAt.calls += 1
            if HoldAt.calls == {hold}:
                open({held!r}, "w").close()
                deadline = time.monotonic() + 600  # hang guard only
                while time.monotonic() < deadline:
                    time.sleep(0.01)
            return super()._evaluate(structures, properties)

    cells = []
    for k in range(40):
        a = bulk("Cu", "fcc", a=3.58 + 0.01 * (k % 5), cubic=True)
        a.rattle(0.05, seed=k)
        cells.append(a)
    hold = {hold} if len(sys.argv) < 2 else 0  # the rerun never holds
    pot = HoldAt() if hold else EMTPotential()
    screen(cells, "relax", pot, db={db!r}, batch=2)
    """
)


def test_kill_9_mid_screen_then_resume(tmp_path):
    db, held = tmp_path / "killed.db", tmp_path / "held"
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(root=str(ROOT), db=str(db), held=str(held), hold=60))
    proc = subprocess.Popen([sys.executable, str(script)])
    try:
        deadline = time.monotonic() + 300  # hang guard: the script holds itself at call 60
        while not held.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert held.exists(), "the screen never reached its hold point"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    before = load(db).to_dataframe()
    assert 1 <= len(before) < 40, len(before)
    subprocess.run([sys.executable, str(script), "rerun"], check=True)
    after = load(db).to_dataframe()
    assert len(after) == 40 and after.key.is_unique  # every structure exactly once
    kept = after.set_index("key").loc[before.key]
    np.testing.assert_array_equal(kept.row_id.to_numpy(), before.row_id.to_numpy())  # not redone


def test_stop_abandons_the_relaxations_in_flight_and_the_rerun_does_them(tmp_path):
    from nnp_lab.screening import ScreenRun

    db = tmp_path / "stop.db"
    job = ScreenRun(cells(10), "relax", "emt", db=db, batch=3)
    events = []

    def stop_after_two(event):
        events.append(event)
        if len(events) == 2:
            job.stop()

    job.subscribe(stop_after_two)
    res = job.run()
    # the batch (3 in flight) was abandoned at its next step: no row for it, none after
    assert res.stopped and res.n_done == 2 and len(load(db).to_dataframe()) == 2
    assert [e.n_done for e in events] == [1, 2] and not any(e.resumed for e in events)
    again = screen(cells(10), "relax", "emt", db=db, batch=3)
    assert again.n_skipped == 2 and again.n_done == 8
    df = load(db).to_dataframe()
    assert len(df) == 10 and df.key.is_unique and "fmax" in df.columns


def test_a_callable_instance_keys_by_its_class_not_its_address(tmp_path):
    class Volume:
        def __call__(self, atoms, potential):
            return {"volume": atoms.get_volume()}

    db = tmp_path / "v.db"
    first = screen(cells(2), Volume(), "emt", db=db)
    again = screen(cells(2), Volume(), "emt", db=db)  # a new instance: same task
    assert first.n_done == 2 and again.n_skipped == 2 and again.n_done == 0
