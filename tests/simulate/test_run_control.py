"""Run control shared by every run: pause/resume/stop from another thread, subscribers."""

import threading
import time

from ase.build import bulk

from nnp_lab.simulate import MolecularDynamics


def test_pause_holds_the_run_and_resume_continues():
    run = MolecularDynamics(
        bulk("Cu", cubic=True) * (2, 2, 2), "emt", steps=400, interval=1, seed=0
    )
    steps = []
    run.subscribe(lambda e: steps.append(e.step))
    run.pause()
    assert run.paused and not run.held
    worker = threading.Thread(target=run.run)
    worker.start()
    assert run.wait_held(timeout=120), "the paused run never came to rest"
    assert steps == [0] and run.held_step == 0  # only the starting state before the pause
    time.sleep(0.3)
    assert steps == [0] and run.held  # still held
    run.resume()
    worker.join(timeout=120)
    assert not worker.is_alive()
    assert steps[-1] == 400 and not run.result.stopped and not run.held


def test_stop_wakes_a_paused_run():
    run = MolecularDynamics(
        bulk("Cu", cubic=True) * (2, 2, 2), "emt", steps=10_000, interval=1, seed=0
    )
    run.subscribe(lambda e: e.step == 5 and run.pause())
    worker = threading.Thread(target=run.run)
    worker.start()
    assert run.wait_held(timeout=120)
    assert run.held_step == 5
    run.stop()
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert run.result.stopped and run.result.n_steps == 5
