"""Throttled live updates: at most max_rate_hz messages, the final frame always delivered."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
from ase.build import bulk

from nnp_lab.widgets import Viewer
from nnp_lab.widgets._throttle import FrameThrottle


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_throttle_leading_edge_drop_and_flush() -> None:
    clock = FakeClock()
    got: list[int] = []
    th = FrameThrottle(got.append, 10.0, trailing=False, clock=clock)
    assert th.submit(1) is True  # leading edge: delivered at once
    assert th.submit(2) is False and th.submit(3) is False  # within 0.1 s: kept, replaced
    assert got == [1] and th.pending and th.dropped == 1
    clock.now += 0.1
    assert th.submit(4) is True  # interval elapsed: delivered; 3 is dropped
    assert got == [1, 4] and not th.pending and th.dropped == 2
    th.submit(5)
    assert th.flush() is True and got == [1, 4, 5]
    assert th.flush() is False
    th.submit(6)
    th.cancel()
    assert not th.pending and th.flush() is False
    th.close()


def test_throttle_merge_keeps_fields_of_dropped_frames() -> None:
    clock = FakeClock()
    got: list[dict] = []
    th = FrameThrottle(got.append, 1.0, merge=lambda a, b: {**a, **b}, trailing=False, clock=clock)
    th.submit({"pos": 0})
    th.submit({"pos": 1, "label": "a"})
    th.submit({"pos": 2})
    th.flush()
    assert got == [{"pos": 0}, {"pos": 2, "label": "a"}]
    th.close()


def test_throttle_trailing_edge_thread_delivers_last_frame() -> None:
    # A fake clock that only the test advances: nothing but the leading edge can be
    # delivered until the interval has passed, however fast or slow this machine is.
    clock = FakeClock()
    got: list[int] = []
    th = FrameThrottle(got.append, 20.0, clock=clock)
    for i in range(200):
        th.submit(i)
    assert got == [0] and th.pending
    clock.now += 0.05  # one interval later the worker thread delivers the newest frame
    deadline = time.monotonic() + 60  # a hang guard only
    while (not got or got[-1] != 199) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert got == [0, 199]
    assert th.dropped == 198 and not th.pending
    th.close()


def test_throttle_rate_validation() -> None:
    with pytest.raises(ValueError, match="max_rate_hz must be > 0"):
        FrameThrottle(print, 0)
    with pytest.raises(ValueError, match="positive number"):
        FrameThrottle(print, "fast")
    th = FrameThrottle(print, math.inf)
    assert th.max_rate_hz == math.inf
    th.close()


def test_viewer_1000_rapid_updates(sent) -> None:
    atoms = bulk("Cu", cubic=True).repeat(3)
    v = Viewer(atoms)  # max_rate_hz = 10
    assert v.max_rate_hz == 10
    rec = sent(v)
    seqs: list[int] = []
    v.observe(lambda c: seqs.append(c["new"]), "frame_seq")
    rng = np.random.default_rng(0)
    frames = [atoms.positions + rng.normal(0, 0.05, atoms.positions.shape) for _ in range(1000)]
    t0 = time.monotonic()
    for i, pos in enumerate(frames):
        v.update(pos, label=f"step {i}")
    v.flush()
    elapsed = time.monotonic() - t0
    # leading edge + one per elapsed interval + the final flush (in terms of the measured
    # time, so the bound holds on a slow machine too)
    allowed = 1 + math.ceil(elapsed * 10) + 1
    sends = rec.updates_with("_positions")
    assert 1 <= len(sends) <= allowed, (len(sends), allowed)
    assert len(seqs) == len(sends)
    # The final frame is the one synced (float32 of the last positions, last label).
    np.testing.assert_allclose(v.positions, frames[-1].astype(np.float32))
    assert v.label == "step 999"
    assert v._throttle.delivered == len(sends)
    v.close()


def test_viewer_last_frame_arrives_without_flush(sent) -> None:
    atoms = bulk("Cu", cubic=True)
    v = Viewer(atoms, max_rate_hz=20)
    rec = sent(v)
    last = None
    for i in range(300):
        last = atoms.positions + i * 1e-3
        v.update(last, label=f"step {i}")
    # No flush: the throttle's worker thread delivers the pending frame after <= 1/20 s.
    deadline = time.monotonic() + 60  # a hang guard only
    while v.label != "step 299" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert v.label == "step 299"
    np.testing.assert_allclose(v.positions, last.astype(np.float32))
    n_sends = len(rec.updates_with("_positions"))
    time.sleep(0.2)
    assert len(rec.updates_with("_positions")) == n_sends  # nothing more once delivered
    v.close()


def test_final_frame_is_sent_immediately(sent) -> None:
    atoms = bulk("Cu", cubic=True)
    v = Viewer(atoms, max_rate_hz=1)
    rec = sent(v)
    v.update(atoms.positions + 0.1)  # leading edge
    assert v.update(atoms.positions + 0.2, label="mid") is False
    assert v.update(atoms.positions + 0.3, final=True) is True
    np.testing.assert_allclose(v.positions, atoms.positions + 0.3, atol=1e-6)
    assert len(rec.updates_with("_positions")) == 2
    assert not v._throttle.pending
    v.close()


def test_one_message_per_frame(sent) -> None:
    atoms = bulk("Cu", cubic=True)
    v = Viewer(atoms, max_rate_hz=math.inf)
    rec = sent(v)
    v.update(atoms.positions + 0.1, cell=atoms.cell.array * 1.1, forces=np.ones((4, 3)), label="x")
    (msg,) = [m for m, _ in rec.messages if m.get("method") == "update"]
    assert {"_positions", "_cell", "_forces", "label", "frame_seq"} <= rec.keys(msg)
    v.close()


def test_updates_from_a_thread_while_main_thread_changes_traits() -> None:
    atoms = bulk("Cu", cubic=True).repeat(2)
    v = Viewer(atoms, max_rate_hz=200)
    errors: list[BaseException] = []

    def producer() -> None:
        try:
            for i in range(400):
                v.update(atoms.positions + i * 1e-4, label=f"t{i}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    th = threading.Thread(target=producer)
    th.start()
    for i in range(200):
        v.show_forces = bool(i % 2)
        v.force_scale = 1 + i
    th.join()
    v.flush()
    assert not errors
    assert v.label == "t399"
    v.close()


def test_max_rate_is_settable() -> None:
    v = Viewer(bulk("Cu"))
    v.max_rate_hz = 30
    assert v.max_rate_hz == 30
    with pytest.raises(ValueError):
        v.max_rate_hz = -1
    v.close()
