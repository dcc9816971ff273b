"""What the live view costs: the same relaxation with and without a LiveRun, headless.

Runs each relaxation with a fixed number of steps (``fmax`` unreachably small), once plain
(``Relaxation.run()``) and once through :class:`nnp_lab.widgets.LiveRun` (``start()`` +
``wait()``), alternating, and reports the minimum wall times, the median process CPU times
(all threads: what the live view costs even when a spare core hides it) and their ratios.

On a shared machine both ratios swing by tens of percent between repeats, so the script also
reports ``own ratio`` = 1 + (CPU time spent in the live view's own code paths) / (plain wall
time): the event subscriber (every step), the throttled UI update (plot batch, viewer frame,
status, message serialisation) and the end-of-run trajectory load, each timed with
``time.thread_time()`` in the thread that runs it. That is the cost the live view adds to the
run, independent of what else the machine does (it leaves out GIL hand-offs, which a quiet
machine's wall ratio shows). No front end is
attached; every widget message the live view produces is serialised as the kernel would
(JSON for the state, binary buffers counted), so the measured cost is the Python side:
recording events, building plot updates, encoding frames and messages, plus the end-of-run
trajectory load into the viewer. The FigureWidget is created before the clock starts (as in
a notebook, where the view is shown before the first step).

Usage::

    PYTHONPATH=. python bench/live_overhead.py              # EMT (Cu ~100 atoms) + SevenNet-0
    PYTHONPATH=. python bench/live_overhead.py --quick      # EMT only, fewer repeats
    PYTHONPATH=. python bench/live_overhead.py --rate 30    # another max_rate_hz

Goal: live / plain <= 1.05 at the default rate (10 Hz).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
import warnings
from typing import Any


logger = logging.getLogger("bench.live_overhead")


class _Wire:
    """Counts and serialises every message the patched widgets send."""

    def __init__(self) -> None:
        self.messages = 0
        self.json_bytes = 0
        self.buffer_bytes = 0

    def attach(self, widget: Any) -> None:
        def send(msg: dict, buffers: list | None = None) -> None:
            self.messages += 1
            self.json_bytes += len(json.dumps(msg, default=str))
            for b in buffers or ():
                self.buffer_bytes += memoryview(b).nbytes

        widget._send = send


def _cluster(n_shells: int, element: str = "Cu") -> Any:
    from ase.cluster import Icosahedron

    atoms = Icosahedron(element, n_shells)
    atoms.rattle(0.15, seed=0)
    return atoms


def _co_on_pt() -> Any:
    from ase.build import add_adsorbate, fcc111, molecule

    slab = fcc111("Pt", size=(2, 2, 3), vacuum=6.0)
    add_adsorbate(slab, molecule("CO"), 2.0, "fcc")
    slab.rattle(0.02, seed=0)
    return slab


def _plain(atoms: Any, potential: Any, steps: int) -> tuple[float, float]:
    from nnp_lab.simulate import Relaxation

    run = Relaxation(atoms, potential, fmax=1e-9, steps=steps)
    t, c = time.perf_counter(), time.process_time()
    result = run.run()
    dt, dc = time.perf_counter() - t, time.process_time() - c
    assert result.n_steps == steps, f"converged early ({result.n_steps} steps); rattle more"
    return dt, dc


def _timed_live_run_class() -> type:
    """LiveRun whose own code paths record the CPU time they use (``time.thread_time``)."""
    from nnp_lab.widgets import LiveRun

    class TimedLiveRun(LiveRun):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.cpu = {"event": 0.0, "update": 0.0, "finish": 0.0}
            super().__init__(*args, **kwargs)

        def _on_event(self, event: Any) -> None:
            t = time.thread_time()
            self._nested = 0.0
            super()._on_event(event)
            # An update delivered inside this call (leading edge) is counted as an update.
            self.cpu["event"] += time.thread_time() - t - self._nested

        def _deliver(self, token: bool) -> None:
            t = time.thread_time()
            super()._deliver(token)
            dt = time.thread_time() - t
            self.cpu["update"] += dt
            self._nested = dt

        def _finish_view(self) -> None:
            t = time.thread_time()
            super()._finish_view()
            self.cpu["finish"] += time.thread_time() - t

    return TimedLiveRun


def _live(atoms: Any, potential: Any, steps: int, rate: float) -> tuple[float, float, _Wire, Any]:
    from nnp_lab.simulate import Relaxation

    run = Relaxation(atoms, potential, fmax=1e-9, steps=steps)
    live = _timed_live_run_class()(run, max_rate_hz=rate)
    wire = _Wire()
    for w in (live.plot.figure, live.viewer, live.status, live.stop_button, live.pause_button):
        wire.attach(w)
    t, c = time.perf_counter(), time.process_time()
    result = live.start().wait()
    dt, dc = time.perf_counter() - t, time.process_time() - c
    assert result.n_steps == steps, f"converged early ({result.n_steps} steps); rattle more"
    live.close()
    return dt, dc, wire, live


def measure(label: str, atoms: Any, potential: Any, steps: int, repeats: int, rate: float) -> dict:
    """Wall (min) and CPU (median) times, plain vs live, their ratios and message statistics.

    The machine may be shared: the minimum wall time and the process CPU time (all threads)
    are the robust numbers; both are reported.
    """
    from nnp_lab.potentials import resolve_potential

    potential = resolve_potential(potential)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "not converged": the step count is fixed on purpose
        _plain(atoms, potential, min(steps, 3))  # warm-up (model load, first FigureWidget)
        _live(atoms, potential, min(steps, 3), rate)
        plain, live, plain_cpu, live_cpu, own = [], [], [], [], []
        wire = None
        updates = 0
        for _ in range(repeats):
            dt, dc = _plain(atoms, potential, steps)
            plain.append(dt)
            plain_cpu.append(dc)
            dt, dc, wire, lr = _live(atoms, potential, steps, rate)
            live.append(dt)
            live_cpu.append(dc)
            own.append(dict(lr.cpu))
            updates = lr.n_updates
    p, q = min(plain), min(live)
    pc, qc = statistics.median(plain_cpu), statistics.median(live_cpu)
    own_total = statistics.median(sum(o.values()) for o in own)
    row = {
        "case": label,
        "live_cpu_own_s": round(own_total, 4),
        "own_ratio": round(1 + own_total / p, 4),
        "own_breakdown_s": {k: round(statistics.median(o[k] for o in own), 4) for k in own[0]},
        "atoms": len(atoms),
        "steps": steps,
        "plain_s": round(p, 3),
        "live_s": round(q, 3),
        "ratio": round(q / p, 4),
        "plain_cpu_s": round(pc, 3),
        "live_cpu_s": round(qc, 3),
        "cpu_ratio": round(qc / pc, 4),
        "ui_updates": updates,
        "messages": wire.messages,
        "messages_per_s": round(wire.messages / q, 1),
        "kB_per_s": round((wire.json_bytes + wire.buffer_bytes) / q / 1024, 1),
        "plain_all_s": [round(x, 3) for x in plain],
        "live_all_s": [round(x, 3) for x in live],
    }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="EMT only, 3 repeats")
    parser.add_argument("--rate", type=float, default=10.0, help="max_rate_hz (default 10)")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    repeats = args.repeats or (3 if args.quick else 5)

    rows = [measure("EMT Cu147 icosahedron", _cluster(4), "emt", 200, repeats, args.rate)]
    rows.append(measure("EMT Cu55 icosahedron", _cluster(3), "emt", 200, repeats, args.rate))
    if not args.quick:
        try:
            rows.append(
                measure(
                    "SevenNet-0 CO/Pt(111) 2x2x3",
                    _co_on_pt(),
                    "sevennet-0",
                    30,
                    max(2, repeats // 2),
                    args.rate,
                )
            )
        except Exception as exc:  # model not installed
            logger.warning("SevenNet-0 case skipped: %s", exc)

    logger.info("max_rate_hz = %g", args.rate)
    header = (
        f"{'case':30s} {'atoms':>5s} {'steps':>5s} {'plain s':>8s} {'live s':>8s} "
        f"{'ratio':>6s} {'CPU ratio':>9s} {'own ratio':>9s} {'updates':>7s} {'msg/s':>6s} "
        f"{'kB/s':>6s}"
    )
    logger.info(header)
    for r in rows:
        logger.info(
            f"{r['case']:30s} {r['atoms']:5d} {r['steps']:5d} {r['plain_s']:8.3f} {r['live_s']:8.3f} "
            f"{r['ratio']:6.3f} {r['cpu_ratio']:9.3f} {r['own_ratio']:9.4f} {r['ui_updates']:7d} "
            f"{r['messages_per_s']:6.1f} {r['kB_per_s']:6.1f}"
        )
    logger.info(json.dumps(rows))


if __name__ == "__main__":
    main()
