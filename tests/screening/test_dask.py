"""screen() on a Dask LocalCluster (two worker processes on loopback, started here)."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from nnp_lab.screening import screen

distributed = pytest.importorskip("distributed")


def cells(n):
    out = []
    for k in range(n):
        a = bulk("Cu", "fcc", a=3.58 + 0.01 * (k % 5), cubic=True)
        a.rattle(0.05, seed=k)
        out.append(a)
    return out


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def test_cluster_results_equal_in_process_and_load_once_per_worker(client, tmp_path):
    inputs = cells(12)
    local = screen(inputs, "relax", "emt", db=tmp_path / "local.db").to_dataframe()
    remote = screen(inputs, "relax", "emt", db=tmp_path / "dask.db", client=client, chunk_size=3)
    assert remote.n_done == 12
    df = remote.to_dataframe()
    assert list(df.key) == list(local.key)  # same structures, same keys, input order
    np.testing.assert_allclose(df.energy, local.energy, rtol=0, atol=1e-10)
    assert list(df.n_steps) == list(local.n_steps)

    # every worker that ran a chunk loaded the model once, whatever the number of chunks
    def count():  # imported on the worker: the worker's own counter, not a pickled copy
        from nnp_lab.screening._dask import LOADS

        return LOADS["count"]

    loads = client.run(count)
    assert sorted(loads.values()) in ([1, 1], [0, 1])
    again = screen(inputs, "relax", "emt", db=tmp_path / "dask.db", client=client)
    assert again.n_skipped == 12 and again.n_done == 0


def test_client_local_starts_and_stops_its_own_cluster(tmp_path):
    inputs = cells(3)
    here = screen(inputs, "energy", "emt", db=tmp_path / "here.db").to_dataframe()
    there = screen(inputs, "energy", "emt", db=tmp_path / "there.db", client="local")
    assert there.n_done == 3
    np.testing.assert_allclose(there.to_dataframe().energy, here.energy, rtol=0, atol=1e-12)


def test_a_worker_killed_mid_screen_loses_nothing_and_writes_nothing_twice(tmp_path):
    """One of two workers is killed (SIGKILL) while it holds a chunk: Dask reruns that chunk
    on a live worker, the screen finishes, every structure has exactly one row."""
    import os
    import signal
    import threading
    import time

    from nnp_lab.screening import load

    held_dir = tmp_path / "held"
    held_dir.mkdir()
    release = tmp_path / "release"

    def held(atoms, potential):  # pickled by value (a local function) for the workers
        import os
        import time

        if atoms.info.get("position") == 9:  # hold until the test has killed this worker
            (held_dir / f"{os.getpid()}").write_text("held")
            while not release.exists():
                time.sleep(0.02)
        return {"e": float(potential.evaluate([atoms])[0]["energy"])}

    inputs = cells(24)
    for k, a in enumerate(inputs):
        a.info["position"] = k
    db = tmp_path / "killed.db"
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )
    client = distributed.Client(cluster)
    outcome = {}
    try:
        runner = threading.Thread(
            target=lambda: outcome.update(
                result=screen(inputs, held, "emt", db=db, client=client, chunk_size=2)
            )
        )
        runner.start()
        deadline = time.monotonic() + 300
        while not any(held_dir.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        holders = list(held_dir.iterdir())
        assert holders, "no worker reached structure 9"
        pid = int(holders[0].name)
        assert pid in client.run(os.getpid).values()  # a worker of this cluster holds it
        os.kill(pid, signal.SIGKILL)
        release.write_text("go")  # only after the kill: the chunk cannot finish on that worker
        runner.join(300)
        assert not runner.is_alive(), "the screen did not finish after the worker was killed"
    finally:
        release.write_text("go")
        runner.join(300)
        client.close()
        cluster.close()
    result = outcome["result"]
    assert result.n_done == 24 and result.n_failed == 0
    df = load(db).to_dataframe()
    assert len(df) == 24 and df.key.is_unique
    assert sorted(df.input_index) == list(range(24))
    # run again on this process: everything is there, nothing is recomputed
    again = screen(inputs, held, "emt", db=db)
    assert again.n_skipped == 24 and again.n_done == 0
