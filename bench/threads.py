"""Threads and speed as a user gets them: our default against the upstream default. Prints numbers.

The measurement behind :mod:`nnp_lab.threads` (the ``"auto"`` policy: the CPUs free right
now). Three parts, each printing a table:

``defaults`` (run first)
    Per MD step (NVT Langevin, 300 K, 1 fs) on diamond Si, in **one process, interleaved**
    block by block: our ``MolecularDynamics`` at default settings, the same run with
    ``set_threads(1)``, and ``ase.md.langevin.Langevin`` with the upstream SevenNet-0
    calculator at *its* default (torch's threads). First on an otherwise idle machine, then
    while a second process spins on one core (as a second kernel, the browser drawing a
    live run or a Binder neighbour would). Also prints how many threads ``"auto"`` gave
    the calls of each block.
``cores``
    The ``defaults`` idle table again in child processes restricted to 1, 2, 4 … of this
    process's CPUs with ``taskset`` (the affinity mask that both torch and our policy
    read), and under a cgroup CPU quota where ``systemd-run`` can make one.
``scaling``
    ``Potential.evaluate`` (energy + forces) with 1 thread against all usable threads, idle
    and busy: the raw effect of threads on our model, without any policy.

Usage::

    python bench/threads.py                           # defaults + cores (~15 min on 2 cores)
    python bench/threads.py --parts defaults --sizes 64
    python bench/threads.py --parts scaling --sizes 8 64 216 512 1728
    python bench/threads.py --parts scaling --model bench/results/distill-lfp.pt --structure lfp

Run it alone: other work on the machine is exactly what it measures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import torch  # noqa: E402

import nnp_lab  # noqa: E402
import nnp_lab.potentials.base as potential_base  # noqa: E402
from bench.cases import lfp_cell, si_cell  # noqa: E402
from bench.timing import time_repeats  # noqa: E402
from bench.worker import ours_langevin, upstream_factory, upstream_langevin  # noqa: E402
from nnp_lab.threads import usable_cpus  # noqa: E402


def _spin(stop):
    x = 0
    while not stop.is_set():
        x += 1


class Spinner:
    """A second process keeping one core busy while the block runs (or nothing, if off)."""

    def __init__(self, on: bool):
        self.on = on

    def __enter__(self):
        self.stop = mp.Event()
        self.process = None
        if self.on:
            self.process = mp.Process(target=_spin, args=(self.stop,), daemon=True)
            self.process.start()
            time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        if self.process is not None:
            self.process.join(5)


class ThreadCounter:
    """Counts the threads ``"auto"`` gives each evaluate (wraps the name Potential calls)."""

    def __init__(self):
        self.counts: Counter[int] = Counter()
        self._orig = potential_base.evaluation_threads

    def __enter__(self):
        @contextlib.contextmanager
        def counting(key, n_atoms):
            with self._orig(key, n_atoms) as n:
                self.counts[n if n is not None else torch.get_num_threads()] += 1
                yield n

        potential_base.evaluation_threads = counting
        return self

    def __exit__(self, *exc):
        potential_base.evaluation_threads = self._orig


def md_loops(atoms, potential, steps):
    """(ours, upstream): functions that each advance their own Langevin run by ``n`` steps
    (the settings and builders of ``bench/worker.py``'s MD cases)."""
    ours_steps = ours_langevin(atoms.copy(), potential, steps=steps, interval=1).irun()
    mine = atoms.copy()
    mine.calc = upstream_factory("sevennet-0")()
    upstream_steps = upstream_langevin(mine).irun(steps=steps)

    def ours(n):
        for _ in range(n):
            next(ours_steps)

    def upstream(n):
        for _ in range(n):
            next(upstream_steps)

    ours.close = ours_steps.close  # type: ignore[attr-defined]  # end the runs cleanly
    upstream.close = upstream_steps.close  # type: ignore[attr-defined]
    return ours, upstream


def block_size(n_atoms: int) -> int:
    return max(2, 400 // max(n_atoms // 8, 1) + 1)  # ~0.3-1 s per block at 64-512 atoms


def measure_defaults(potential, n_atoms: int, busy: bool, repeats: int, budget_s: float):
    """Median seconds per MD step of our default, our 1-thread path and upstream's default,
    interleaved block by block, with the threads auto chose."""
    atoms = si_cell(n_atoms, rattle=0.02)
    block = block_size(n_atoms)
    ours, upstream = md_loops(atoms, potential, steps=block * (repeats + 2) * 2 + 2)
    variants = {
        "ours default": ("auto", ours),
        "ours 1 thread": (1, ours),
        "upstream default": (None, upstream),
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    spent = dict.fromkeys(variants, 0.0)
    counter = ThreadCounter()
    with Spinner(busy):
        ours(block)  # step 0 and warm-up of both loops (first calls, allocations)
        upstream(block)
        for _ in range(repeats):
            for name, (policy, advance) in variants.items():
                if spent[name] > budget_s:
                    continue  # this variant stalls: keep what it measured
                nnp_lab.set_threads(policy if policy is not None else "auto")
                t = time.perf_counter()
                if name == "ours default":
                    with counter:
                        advance(block)
                else:
                    advance(block)
                dt = time.perf_counter() - t
                spent[name] += dt
                times[name].append(dt / block)
    ours.close()
    upstream.close()
    nnp_lab.set_threads("auto")
    row = {k: statistics.median(v) for k, v in times.items() if v}
    row.update(
        n_atoms=n_atoms,
        busy=busy,
        block=block,
        n={k: len(v) for k, v in times.items()},
        max={k: max(v) for k, v in times.items() if v},
        auto_threads=dict(sorted(counter.counts.items())),
        torch_threads=torch.get_num_threads(),
    )
    return row


def _gave(row) -> str:
    """``threads: calls`` of what "auto" gave, e.g. ``1: 103, 2: 152``."""
    return ", ".join(f"{k}: {v}" for k, v in row["auto_threads"].items())


def print_defaults(rows, title):
    print(f"\n{title}")
    print(
        "| atoms | load | ours default (ms/step) | ours 1 thread | upstream default | "
        "upstream / ours default | ours default / ours 1 thread | threads auto gave (calls) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        ours, one, up = (r.get(k) for k in ("ours default", "ours 1 thread", "upstream default"))
        ratio = f"{up / ours:.2f}x" if up and ours else "-"
        if up and r["n"]["upstream default"] < r["n"]["ours default"]:
            ratio += " (upstream stopped at its budget)"
        print(
            f"| {r['n_atoms']} | {'one core busy' if r['busy'] else 'idle'} | "
            f"{1000 * ours:.1f} (max {1000 * r['max']['ours default']:.1f}) | "
            f"{1000 * one:.1f} | {1000 * up:.1f} | {ratio} | {ours / one:.2f} | {_gave(r)} |",
            flush=True,
        )


def part_defaults(args, busy_modes):
    potential = nnp_lab.load_potential("sevennet-0")
    rows = []
    for busy in busy_modes:
        for n in args.sizes:
            rows.append(measure_defaults(potential, n, busy, args.repeats, args.budget))
            print(
                f"  measured {n} atoms ({'busy' if busy else 'idle'}): "
                + json.dumps({k: v for k, v in rows[-1].items() if isinstance(v, float)}),
                flush=True,
            )
    for busy in busy_modes:
        print_defaults(
            [r for r in rows if r["busy"] == busy],
            f"Per MD step, default settings on both sides, {usable_cpus()} usable CPUs, "
            f"{'one core kept busy by another process' if busy else 'idle machine'}:",
        )
    return rows


def _child(cpus: str | None, args, quota: str | None = None) -> list[dict]:
    """The idle ``defaults`` part in a child restricted to ``cpus`` (taskset) or a quota."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        cmd = [sys.executable, __file__, "--parts", "defaults", "--idle-only", "--json", str(out)]
        cmd += ["--sizes", *map(str, args.sizes), "--repeats", str(args.repeats)]
        if quota is not None:
            cmd = ["systemd-run", "--scope", "--quiet", "-p", f"CPUQuota={quota}", *cmd]
        if cpus is not None:
            cmd = ["taskset", "-c", cpus, *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "failed")
        return json.loads(out.read_text())


def part_cores(args):
    cpus = sorted(os.sched_getaffinity(0))
    counts = sorted({c for c in (1, 2, 4, 8, 16, 32, 64) if c <= len(cpus)} | {len(cpus)})
    table = []
    for c in counts:
        rows = _child(",".join(map(str, cpus[:c])), args)
        table += [(f"taskset {c} CPU{'s' if c > 1 else ''}", r) for r in rows]
        print(f"  measured on {c} CPUs", flush=True)
    if shutil.which("systemd-run"):
        try:
            rows = _child(None, args, quota="100%")
            table += [("cgroup quota 1 CPU (systemd-run CPUQuota=100%)", r) for r in rows]
        except RuntimeError as exc:
            print(f"  cgroup quota: not possible here ({exc})")
    else:
        print("  cgroup quota: no systemd-run on this machine")
    print("\nPer MD step by CPUs available, default settings on both sides, idle:")
    print(
        "| CPUs | atoms | torch threads | ours default (ms/step) | upstream default | "
        "upstream / ours | threads auto gave |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, r in table:
        print(
            f"| {label} | {r['n_atoms']} | {r['torch_threads']} | "
            f"{1000 * r['ours default']:.1f} | {1000 * r['upstream default']:.1f} | "
            f"{r['upstream default'] / r['ours default']:.2f}x | {_gave(r)} |",
            flush=True,
        )


def time_call(potential, atoms, threads: int, budget_s: float, max_calls: int):
    """Stats of evaluate() calls with ``threads`` (one warm-up call, then up to
    ``max_calls`` timed ones within ``budget_s``)."""
    nnp_lab.set_threads(threads)

    def call():
        potential.evaluate([atoms], ("energy", "forces"), validate=False)

    call()  # warm-up outside the budget, so at least one timed call is always made
    return time_repeats(call, repeats=max_calls, warmup=0, budget_s=budget_s).stats


def part_scaling(args, busy_modes):
    n_cpu = usable_cpus()
    potential = nnp_lab.load_potential(args.model)
    structures = (
        [lfp_cell()] if args.structure == "lfp" else [si_cell(n, rattle=0.02) for n in args.sizes]
    )
    print(f"\nevaluate() with 1 and {n_cpu} threads, model {args.model}:")
    for busy in busy_modes:
        with Spinner(busy):
            for atoms in structures:
                one = time_call(potential, atoms, 1, args.budget, args.calls)
                many = time_call(potential, atoms, n_cpu, args.budget, args.calls)
                print(
                    f"{'busy' if busy else 'idle'} {len(atoms):5d} atoms: 1 thread "
                    f"{1000 * one.median:9.1f} ms | {n_cpu} threads {1000 * many.median:9.1f} ms"
                    f" (n={one.n}/{many.n}) -> {n_cpu} threads are "
                    f"{one.median / many.median:.2f}x the speed of 1",
                    flush=True,
                )
    nnp_lab.set_threads("auto")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--parts",
        nargs="+",
        default=["defaults", "cores"],
        choices=["defaults", "cores", "scaling"],
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 216, 512])
    parser.add_argument("--repeats", type=int, default=5, help="timed blocks per variant")
    parser.add_argument(
        "--budget",
        type=float,
        default=60.0,
        help="seconds per variant and size (a stalling variant stops there)",
    )
    parser.add_argument("--idle-only", action="store_true")
    parser.add_argument("--busy-only", action="store_true")
    parser.add_argument("--json", help="also write the defaults rows to this file")
    parser.add_argument("--model", default="sevennet-0", help="scaling: potential or model file")
    parser.add_argument("--structure", choices=["si", "lfp"], default="si")
    parser.add_argument("--calls", type=int, default=7, help="scaling: largest number of calls")
    args = parser.parse_args(argv)
    busy_modes = [
        b for b in (False, True) if not (args.busy_only and not b) and not (args.idle_only and b)
    ]
    print(
        f"usable CPUs {usable_cpus()} (affinity {len(os.sched_getaffinity(0))}), torch "
        f"{torch.__version__} with {torch.get_num_threads()} threads, nnp_lab threads policy "
        f"{nnp_lab.get_threads()!r}",
        flush=True,
    )
    if "defaults" in args.parts:
        if usable_cpus() < 2 and True in busy_modes:
            busy_modes = [False]  # one CPU: "another process on a core" is the whole machine
        rows = part_defaults(args, busy_modes)
        if args.json:
            Path(args.json).write_text(json.dumps(rows))
    if "cores" in args.parts:
        part_cores(args)
    if "scaling" in args.parts:
        if usable_cpus() < 2:
            print("only one usable CPU: nothing to compare")
        else:
            part_scaling(args, busy_modes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
