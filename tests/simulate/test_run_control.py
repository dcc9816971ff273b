"""Run control shared by every run: pause/resume/stop from another thread, subscribers."""

import threading
import time

from ase.build import bulk

from nnp_lab.simulate import MolecularDynamics


def test_pause_holds_the_run_and_resume_continues():
    run = MolecularDynamics(bulk("Cu", cubic=True) * (2, 2, 2), "emt", steps=400, interval=1, seed=0)
    steps = []
    run.subscribe(lambda e: steps.append(e.step))
    run.pause()
    assert run.paused
    worker = threading.Thread(target=run.run)
    worker.start()
    time.sleep(0.5)
    held = len(steps)
    assert held <= 1  # only step 0 was emitted before the pause took hold
    time.sleep(0.3)
    assert len(steps) == held  # still held
    run.resume()
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert steps[-1] == 400 and not run.result.stopped


def test_stop_wakes_a_paused_run():
    run = MolecularDynamics(bulk("Cu", cubic=True) * (2, 2, 2), "emt", steps=10_000, interval=1, seed=0)
    run.subscribe(lambda e: e.step == 5 and run.pause())
    worker = threading.Thread(target=run.run)
    worker.start()
    deadline = time.time() + 30
    while not run.paused and time.time() < deadline:
        time.sleep(0.01)
    run.stop()
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert run.result.stopped and run.result.n_steps == 5
