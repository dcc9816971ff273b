"""LiveRun / watch: plots and viewer fed by runs, throttling, controls, errors, the engine hook.

No browser: widget comms are dummies here (messages are counted by patching ``_send``). One
test starts a real ipykernel (jupyter_client) and sends the comm messages a browser sends on
a click, to prove that Stop / Pause / the temperature slider are honoured while the cell that
called ``LiveRun.wait()`` is busy.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("anywidget")
pytest.importorskip("plotly")

from ase import Atoms
from ase.build import fcc100, add_adsorbate
from ase.cluster import Icosahedron
from ase.constraints import FixAtoms

from nnp_lab.errors import SimulationError
from nnp_lab.simulate import MolecularDynamics, NEBRun, Relaxation, SwapMonteCarlo, relax
from nnp_lab.widgets import LiveRun, watch
from nnp_lab.widgets._kernel_pump import KernelPump
from nnp_lab.widgets.live import MAX_PLOT_RATE_HZ

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster() -> Atoms:
    atoms = Icosahedron("Cu", 3)  # 55 atoms
    atoms.rattle(0.08, seed=1)
    return atoms


def _collect(run: Any) -> list[Any]:
    events: list[Any] = []
    run.subscribe(events.append)
    return events


def _wait_until(predicate: Any, timeout: float = 120.0) -> bool:
    """Poll until ``predicate()``; the timeout only guards against a hang (never a verdict
    on speed: a working product gets there whatever the machine's load)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def _count_sends(widget: Any) -> list[int]:
    count = [0]
    original = widget._send

    def counting(msg: dict, buffers: list | None = None) -> None:
        count[0] += 1
        original(msg, buffers=buffers)

    widget._send = counting
    return count


def _neb_endpoints() -> tuple[Atoms, Atoms]:
    slab = fcc100("Cu", size=(2, 2, 3), vacuum=5.0)
    add_adsorbate(slab, "Cu", 1.7, "hollow")
    slab.set_constraint(FixAtoms(indices=list(range(8))))
    final = slab.copy()
    final.positions[-1, 0] += slab.cell[0, 0] / 2
    return slab, final


# ---------------------------------------------------------------------------------------------
# plots and viewer follow the events
# ---------------------------------------------------------------------------------------------


def test_relax_plots_and_viewer(cluster: Atoms) -> None:
    run = Relaxation(cluster, "emt", fmax=0.02, steps=200)
    events = _collect(run)
    live = LiveRun(run)
    # What a notebook keeps where no widget is drawn: it is displayed before the start.
    assert (
        repr(live)
        == "LiveRun(Relaxation, 200 steps: the live view; it draws where widgets are shown)"
    )
    # Before the first step: the starting structure is shown, the plots exist but are empty.
    assert live.plot.trace_names == ["energy", "fmax"]
    assert np.allclose(live.viewer.positions, cluster.positions, atol=1e-5)
    assert all(len(tr.x or ()) == 0 for tr in live.plot.figure.data)
    assert live.temperature_slider is None
    assert not live.done and not live.running

    result = live.start().wait()
    assert live.done and not live.running and live.error is None
    assert repr(live) == f"LiveRun(Relaxation, done, events={result.n_steps + 1})"
    assert result is live.result and result.converged and not result.stopped
    # Every event became a point, in order (no thinning below max_points).
    steps, energy = live.plot.series("energy")
    assert len(events) == result.n_steps + 1 == len(steps)
    assert np.array_equal(steps, [e.step for e in events])
    assert np.allclose(energy, [e.energy for e in events])
    fig = live.plot.figure
    assert np.allclose(fig.data[0].y, [e.energy for e in events])
    assert np.allclose(fig.data[1].y, [e.fmax for e in events])
    # After the run the viewer holds the trajectory (to scrub), showing the last frame.
    assert live.viewer.n_frames == len(result.frames)
    assert live.viewer.frame_index == len(result.frames) - 1
    assert np.allclose(live.viewer.trajectory[-1], result.atoms.positions, atol=1e-4)
    assert live.stop_button.disabled and live.pause_button.disabled
    assert "finished" in live.status.value and f"step {result.n_steps}" in live.status.value
    assert "steps/s" in live.status.value


def test_md_plots_match_events_and_target_trace(cluster: Atoms) -> None:
    run = MolecularDynamics(cluster, "emt", steps=60, interval=5, temperature_K=400, seed=3)
    events = _collect(run)
    live = LiveRun(run)
    assert live.plot.trace_names == ["potential", "total", "kinetic", "temperature", "target"]
    assert live.temperature_slider is not None and live.temperature_slider.value == 400
    result = live.start().wait()
    assert len(events) == len(result.frames) == 13
    fig = live.plot.figure
    by_name = {tr.name: tr for tr in fig.data}
    assert np.allclose(by_name["temperature"].x, [e.time_ps for e in events])
    assert np.allclose(by_name["temperature"].y, [e.temperature_K for e in events])
    assert np.allclose(by_name["potential"].y, result.potential_energy)
    assert np.allclose(by_name["kinetic"].y, result.kinetic_energy)
    assert np.allclose(by_name["total"].y, result.total_energy)
    assert np.allclose(by_name["target"].y, 400.0)


def test_nve_md_has_no_slider_and_no_target(cluster: Atoms) -> None:
    live = LiveRun(MolecularDynamics(cluster, "emt", ensemble="nve", steps=10, seed=0))
    assert live.temperature_slider is None
    assert live.plot.trace_names == ["potential", "total", "kinetic", "temperature"]
    live.start().wait()
    assert live.done


def test_swap_mc_view_follows_the_elements_and_plots_acceptance() -> None:
    from nnp_lab import build

    particle = build.nanoparticle({"Cu": 0.5, "Au": 0.5}, shape="cuboctahedron", size=2, seed=1)
    run = SwapMonteCarlo(particle, "emt", temperature_K=1500, steps=30, seed=4)
    events = _collect(run)
    live = LiveRun(run)
    assert live.plot.trace_names == ["trial", "energy", "acceptance"]
    result = live.start().wait()
    assert result.n_accepted > 0  # so the elements shown had to change
    # The view shows the final ordering (its elements changed in place: no reload).
    assert np.array_equal(live.viewer.numbers, result.atoms.numbers)
    assert not np.array_equal(live.viewer.numbers, particle.numbers)
    assert live.viewer._mode == "live"
    assert "accepted" in live.viewer.label
    by_name = {tr.name: tr for tr in live.plot.figure.data}
    assert np.allclose(by_name["energy"].y, result.energy)
    assert np.allclose(by_name["trial"].y, result.trial_energy)
    assert np.allclose(by_name["acceptance"].y[-1], 100 * result.acceptance_rate)
    assert len(events) == 31


def test_viewer_set_numbers_checks_its_input(cluster: Atoms) -> None:
    from nnp_lab.errors import InputError
    from nnp_lab.widgets import Viewer

    v = Viewer()
    with pytest.raises(InputError, match="no structure"):
        v.set_numbers([29])
    v.atoms = cluster
    structure_id = v._structure_id
    z = cluster.numbers.copy()
    z[:5] = 79
    v.set_numbers(z)
    assert np.array_equal(v.numbers, z) and v._structure_id == structure_id  # camera kept
    assert "79" in v._elements and v.atoms.get_chemical_symbols()[:5] == ["Au"] * 5
    with pytest.raises(InputError, match="55 atoms"):
        v.set_numbers(z[:3])


def test_neb_band_and_profiles() -> None:
    initial, final = _neb_endpoints()
    run = NEBRun(initial, final, "emt", n_images=3, fmax=0.1, steps=40, climb=False)
    events = _collect(run)
    live = LiveRun(run)
    # Before the first iteration: an interpolated preview band, all images overlaid.
    assert live.viewer._mode == "band" and live.viewer.n_frames == 5 and live.viewer.overlay
    assert np.allclose(live.viewer.trajectory[0], initial.positions, atol=1e-4)
    assert np.allclose(live.viewer.trajectory[-1], final.positions, atol=1e-4)
    names = live.plot.trace_names
    assert names[-2:] == ["latest", "fmax"] and len(names) == live.plot.n_history + 2

    result = live.start().wait()
    assert len(events) == result.n_steps + 1
    fig = live.plot.figure
    latest = fig.data[live.plot.n_history]
    last = events[-1].energies
    assert np.allclose(latest.x, np.arange(5)) and np.allclose(latest.y, last - last[0])
    fmax = fig.data[-1]
    assert np.allclose(fmax.x, [e.step for e in events])
    assert np.allclose(fmax.y, [e.fmax for e in events])
    earlier = [tr for tr in fig.data[: live.plot.n_history] if tr.x is not None and len(tr.x)]
    assert earlier and all(tr.name.startswith("iteration ") for tr in earlier)
    assert earlier[0].name == "iteration 0"  # the starting band is the oldest faded profile
    # The band in the viewer is the final band; camera/overlay kept (same band, updated).
    assert live.viewer._mode == "band" and live.viewer.n_frames == 5
    final_band = np.stack([im.positions for im in result.images])
    assert np.allclose(live.viewer.trajectory, final_band, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# throttling
# ---------------------------------------------------------------------------------------------


def test_throttle_bounds_messages_and_shows_final_point(cluster: Atoms) -> None:
    rate = 10.0
    run = MolecularDynamics(cluster, "emt", steps=300, interval=1, temperature_K=300, seed=0)
    events = _collect(run)
    live = LiveRun(run, max_rate_hz=rate)
    sends = {
        "figure": _count_sends(live.plot.figure),
        "viewer": _count_sends(live.viewer),
        "status": _count_sends(live.status),
    }
    t0 = time.perf_counter()
    result = live.start().wait()
    duration = time.perf_counter() - t0
    assert len(events) == 301 and not result.stopped
    allowed = rate * duration + 3  # leading edge + final update + slack
    assert live.n_updates <= allowed, (live.n_updates, duration)
    assert live.n_updates >= 2
    # One update = one plotly batch (4 messages: 2 edit ids + the update and its reset),
    # at most one viewer frame and one status change; plus the end-of-run loads (figure:
    # its full state for late views, 2 messages; viewer: the trajectory to scrub).
    assert sends["figure"][0] <= 4 * allowed + 2, (sends, duration)
    assert sends["viewer"][0] <= allowed + 5, (sends, duration)
    assert sends["status"][0] <= allowed + 5, (sends, duration)
    # Plot redraws follow their own, lower rate (plus the final draw); the final point is
    # shown. (All bounds are in terms of the measured duration: a slow machine sends more.)
    assert live.plot.n_draws <= MAX_PLOT_RATE_HZ * duration + 3, (live.plot.n_draws, duration)
    t, temp = live.plot.series("temperature")
    assert len(t) == 301 and t[-1] == pytest.approx(events[-1].time_ps)
    assert live.plot.figure.data[3].y[-1] == pytest.approx(events[-1].temperature_K)
    assert "step 300/300" in live.status.value


def test_long_runs_keep_bounded_points() -> None:
    from nnp_lab.widgets.plots import _Series

    s = _Series(100)
    for i in range(10_000):
        s.append(float(i), float(i))
    x, _ = s.arrays()
    assert len(x) <= 100 and x[0] == 0 and x[-1] == 9999
    assert np.all(np.diff(x) > 0)


# ---------------------------------------------------------------------------------------------
# controls
# ---------------------------------------------------------------------------------------------


def test_stop_click_from_another_thread_ends_run_cleanly(cluster: Atoms, tmp_path: Path) -> None:
    traj = tmp_path / "md.traj"
    run = MolecularDynamics(cluster, "emt", steps=100_000, interval=10, trajectory=traj, seed=0)
    live = LiveRun(run)
    live.start()
    assert _wait_until(lambda: live.n_events >= 3)
    clicker = threading.Thread(target=live.stop_button.click)
    clicker.start()
    clicker.join()
    result = live.wait(timeout=30)
    assert result.stopped and run.stopped and result.n_steps < 100_000
    assert "stopped" in live.status.value
    from ase.io import read

    frames = read(traj, ":")
    assert len(frames) == len(result.frames) >= 3


def test_pause_then_resume(cluster: Atoms) -> None:
    run = MolecularDynamics(cluster, "emt", steps=100_000, interval=5, seed=0)
    live = LiveRun(run)
    live.start()
    assert _wait_until(lambda: live.n_events >= 2)
    live.pause_button.value = True
    assert run.paused and live.pause_button.description == "Resume"
    assert run.wait_held(timeout=60), "the run did not come to rest after Pause"
    n_paused, held_step = live.n_events, run.held_step
    assert held_step is not None and held_step % 5 == 0
    time.sleep(0.5)
    assert live.n_events == n_paused, "the run went on while paused"
    # "paused" (not "pausing") once held, naming the last step done
    assert _wait_until(
        lambda: "paused" in live.status.value and f"step {held_step}/" in live.status.value
    )
    live.pause_button.value = False
    assert not run.paused and live.pause_button.description == "Pause"
    assert _wait_until(lambda: live.n_events >= n_paused + 3)
    live.stop()
    result = live.wait(timeout=30)
    assert result.stopped


def test_stop_while_paused(cluster: Atoms) -> None:
    run = MolecularDynamics(cluster, "emt", steps=100_000, interval=5, seed=0)
    live = LiveRun(run)
    live.start()
    assert _wait_until(lambda: live.n_events >= 2)
    live.pause_button.value = True
    time.sleep(0.1)
    live.stop_button.click()
    assert live.wait(timeout=30).stopped


def test_temperature_slider_changes_target(cluster: Atoms) -> None:
    run = MolecularDynamics(cluster, "emt", steps=100_000, interval=5, temperature_K=300, seed=0)
    events = _collect(run)
    live = LiveRun(run)
    live.start()
    assert _wait_until(lambda: live.n_events >= 2)
    live.temperature_slider.value = 650.0
    assert run.temperature_K == 650.0
    n = len(events)
    assert _wait_until(lambda: len(events) >= n + 3)
    assert events[-1].target_temperature_K == 650.0
    live.stop()
    result = live.wait(timeout=30)
    assert result.provenance["parameters"]["temperature_schedule"][-1][1] == 650.0
    assert live.temperature_slider.disabled
    by_name = {tr.name: tr for tr in live.plot.figure.data}
    assert by_name["target"].y[0] == 300.0 and by_name["target"].y[-1] == 650.0


# ---------------------------------------------------------------------------------------------
# API: watch, errors, callbacks, validation
# ---------------------------------------------------------------------------------------------


def test_watch_displays_and_returns_result(cluster: Atoms, monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[Any] = []
    monkeypatch.setattr("IPython.display.display", lambda *objs, **kw: shown.extend(objs))
    result = watch(Relaxation(cluster, "emt", fmax=0.05, steps=100), max_rate_hz=5)
    assert len(shown) == 1 and isinstance(shown[0], LiveRun)
    assert shown[0].done and shown[0].result is result and result.converged


def test_run_exception_propagates_with_partial_result(cluster: Atoms) -> None:
    run = MolecularDynamics(
        cluster, "emt", steps=100, temperature_K=300, max_temperature_K=1.0, seed=0
    )
    live = LiveRun(run)
    finished: list[LiveRun] = []
    live.on_finished(finished.append)
    with pytest.raises(SimulationError, match="temperature"):
        live.start().wait()
    assert live.done and isinstance(live.error, SimulationError)
    assert live.result is not None and live.result is run.result
    assert finished == [live]
    assert "failed" in live.status.value and "SimulationError" in live.status.value


def test_on_finished_called_once_and_after_done(cluster: Atoms) -> None:
    live = LiveRun(Relaxation(cluster, "emt", steps=5))
    seen: list[tuple[bool, Any]] = []
    live.on_finished(lambda lr: seen.append((lr.done, lr.result)))
    result = live.start().wait()
    assert seen == [(True, result)]
    late: list[Any] = []
    live.on_finished(late.append)  # already finished: called at once
    assert late == [live]
    assert live.wait() is result  # waiting again returns the same result


def test_bad_arguments(cluster: Atoms) -> None:
    with pytest.raises(TypeError, match="run object"):
        LiveRun(cluster)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_rate_hz"):
        LiveRun(Relaxation(cluster, "emt"), max_rate_hz=0)
    with pytest.raises(TypeError, match="Viewer"):
        LiveRun(Relaxation(cluster, "emt"), viewer="nope")
    run = Relaxation(cluster, "emt", steps=2)
    run.run()
    with pytest.raises(RuntimeError, match="already run"):
        LiveRun(run)


def test_given_viewer_is_used(cluster: Atoms) -> None:
    from nnp_lab.widgets import Viewer

    v = Viewer()
    live = LiveRun(Relaxation(cluster, "emt", steps=3), viewer=v)
    assert live.viewer is v and v.n_atoms == len(cluster)
    live.start().wait()
    figure = live.plot.figure
    live.close()
    assert figure.comm is None  # LiveRun's own widgets are closed ...
    assert v.comm is not None  # ... a viewer it was given is not


# ---------------------------------------------------------------------------------------------
# the engine hook: live=True outside a kernel, and no ipywidgets import in the engine
# ---------------------------------------------------------------------------------------------


def test_live_true_outside_kernel_falls_back_to_tqdm(cluster: Atoms, capsys: Any) -> None:
    from nnp_lab.display import in_notebook, live_display

    assert not in_notebook() and live_display("run") is None
    assert KernelPump.create() is None
    result = relax(cluster, "emt", steps=20, live=True)
    assert result.n_steps > 0
    err = capsys.readouterr().err
    assert "relax" in err and "step" in err  # the tqdm bar


def test_engine_does_not_import_widgets() -> None:
    code = (
        "import sys, nnp_lab, nnp_lab.simulate\n"
        "from ase.build import bulk\n"
        "nnp_lab.simulate.relax(bulk('Cu', a=3.7) * 2, 'emt', steps=2, live=True)\n"
        "bad = [m for m in ('ipywidgets', 'anywidget', 'plotly', 'IPython') if m in sys.modules]\n"
        "print('LOADED', bad)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "LOADED []" in out.stdout


# ---------------------------------------------------------------------------------------------
# a real, busy kernel: clicks are honoured while the cell waits
# ---------------------------------------------------------------------------------------------

KERNEL_CELL = r"""
import sys, ipykernel
from ase.cluster import Icosahedron
from nnp_lab.simulate import MolecularDynamics
from nnp_lab.widgets import LiveRun
run = MolecularDynamics(Icosahedron("Cu", 3), "emt", steps=1_000_000, interval=10,
                        temperature_K=300, seed=0)
live = LiveRun(run)
print("IDS", live.stop_button.model_id, live.pause_button.model_id,
      live.temperature_slider.model_id, flush=True)
run.subscribe(lambda e: e.step == 20 and print("STEPPING", flush=True))
live.start()
res = live.wait()
print("RESULT", res.stopped, run.temperature_K, ipykernel.__version__, flush=True)
"""


# NNP_LAB_TEST_KERNEL_PATH=/dir/with/another/ipykernel (e.g. `pip install --target /tmp/ipk6
# ipykernel==6.29.5 nest_asyncio`) runs the same test a second time against that ipykernel.
_KERNEL_PATHS = [None] + [p for p in [os.environ.get("NNP_LAB_TEST_KERNEL_PATH")] if p]


@pytest.mark.parametrize("extra_path", _KERNEL_PATHS, ids=lambda p: "installed" if p is None else p)
def test_clicks_are_honoured_while_the_kernel_is_busy(extra_path: str | None) -> None:
    pytest.importorskip("jupyter_client")
    from jupyter_client.manager import start_new_kernel

    path = [extra_path] if extra_path else []
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([*path, str(REPO)]))
    km, kc = start_new_kernel(kernel_name="python3", env=env, startup_timeout=180)
    try:
        kc.execute(KERNEL_CELL)
        # A second cell queued behind the busy one must run after it, unharmed.
        kc.execute("print('SECOND', live.done, flush=True)")
        out: list[str] = []
        ids: list[str] = []
        idle_parents: set[str] = set()
        echo_parents: set[str] = set()

        def pump_iopub(until: Any, timeout: float) -> None:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and not until():
                try:
                    msg = kc.get_iopub_msg(timeout=0.2)
                except queue.Empty:
                    continue
                parent = msg.get("parent_header", {}).get("msg_id")
                if msg["msg_type"] == "stream":
                    out.append(msg["content"]["text"])
                elif msg["msg_type"] == "error":
                    raise AssertionError("\n".join(msg["content"]["traceback"]))
                elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    idle_parents.add(parent)
                elif (
                    msg["msg_type"] == "comm_msg"
                    and msg["content"]["data"].get("method") == "echo_update"
                ):
                    echo_parents.add(parent)

        def text() -> str:
            return "".join(out)

        def send(comm_id: str, data: dict) -> str:
            msg = kc.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
            kc.shell_channel.send(msg)
            return msg["header"]["msg_id"]

        pump_iopub(lambda: "STEPPING" in text(), 180)
        ids = text().split("IDS", 1)[1].split()[:3]
        stop_id, pause_id, slider_id = ids
        sent = [send(pause_id, {"method": "update", "state": {"value": True}, "buffer_paths": []})]
        sent.append(
            send(slider_id, {"method": "update", "state": {"value": 800.0}, "buffer_paths": []})
        )
        # The browser sends a widget's next update only after the idle status of the previous
        # one (parent = that comm message): it must come while the cell still runs.
        pump_iopub(lambda: set(sent) <= idle_parents, 120)
        assert set(sent) <= idle_parents, "no idle status for the comm messages during the run"
        assert set(sent) <= echo_parents, "echo_update not parented to the frontend's update"
        assert "RESULT" not in text()
        sent.append(
            send(pause_id, {"method": "update", "state": {"value": False}, "buffer_paths": []})
        )
        # A million MD steps take hours: only the Stop click can end the cell in time.
        sent.append(send(stop_id, {"method": "custom", "content": {"event": "click"}}))
        pump_iopub(lambda: "SECOND" in text(), 180)
        assert "RESULT True 800.0" in text(), text()
        assert "SECOND True" in text(), text()
        assert text().index("RESULT") < text().index("SECOND")
        assert set(sent) <= idle_parents

        # The notebook's interrupt button during wait(): the run stops, the partial result
        # is returned (with a warning) and the cell goes on.
        kc.execute(
            "run2 = MolecularDynamics(Icosahedron('Cu', 3), 'emt', steps=1_000_000, seed=0)\n"
            "run2.subscribe(lambda e: e.step == 10 and print('STEPPED', flush=True))\n"
            "live2 = LiveRun(run2)\n"
            "res2 = live2.start().wait()\n"
            "print('INTERRUPTED', res2.stopped, live2.done, res2.n_steps > 0, flush=True)"
        )
        pump_iopub(lambda: "STEPPED" in text(), 180)
        km.interrupt_kernel()
        pump_iopub(lambda: "INTERRUPTED" in text(), 180)
        assert "INTERRUPTED True True True" in text(), text()
    finally:
        kc.stop_channels()
        km.shutdown_kernel()
