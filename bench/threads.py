"""Torch threads vs speed, on an idle machine and with one core kept busy. Prints numbers.

This is the measurement behind :mod:`nnp_lab.threads` (1 thread below
``SERIAL_BELOW_ATOMS`` atoms per call): for each model and size it times
``Potential.evaluate`` (energy + forces) with 1 and with all usable threads, first on an
otherwise idle machine, then while a second process spins on one core (as a second
kernel, a browser tab or a Binder neighbour would).

Usage::

    python bench/threads.py                       # sevennet-0 on diamond Si, 64 ... 1,728 atoms
    python bench/threads.py --sizes 64 512 --busy-only
    python bench/threads.py --model bench/results/distill-lfp.pt --structure lfp

Run it alone: other work on the machine is exactly what it measures.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import torch  # noqa: E402

import nnp_lab  # noqa: E402
from bench.cases import si_cell  # noqa: E402
from bench.timing import time_repeats  # noqa: E402
from nnp_lab.threads import usable_cpus  # noqa: E402


def _spin(stop):
    x = 0
    while not stop.is_set():
        x += 1


def lfp():
    cell = nnp_lab.build.supercell(nnp_lab.build.crystal("LiFePO4"), (1, 1, 2))
    cell.rattle(0.02, seed=0)
    return cell


def time_call(potential, atoms, threads: int, budget_s: float, max_calls: int):
    """Stats of evaluate() calls with ``threads`` (one warm-up call, then up to
    ``max_calls`` timed ones within ``budget_s``)."""
    nnp_lab.set_threads(threads)

    def call():
        potential.evaluate([atoms], ("energy", "forces"), validate=False)

    call()  # warm-up outside the budget, so at least one timed call is always made
    return time_repeats(call, repeats=max_calls, warmup=0, budget_s=budget_s).stats


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="sevennet-0", help="potential name or model file")
    parser.add_argument("--structure", choices=["si", "lfp"], default="si")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 216, 512, 1728])
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per measurement")
    parser.add_argument("--calls", type=int, default=7, help="largest number of timed calls")
    parser.add_argument("--busy-only", action="store_true")
    parser.add_argument("--idle-only", action="store_true")
    args = parser.parse_args(argv)

    n_cpu = usable_cpus()
    print(f"usable CPUs {n_cpu}, torch {torch.__version__}, model {args.model}")
    if n_cpu < 2:
        print("only one usable CPU: nothing to compare")
        return 0
    potential = nnp_lab.load_potential(args.model)
    structures = (
        [lfp()] if args.structure == "lfp" else [si_cell(n, rattle=0.02) for n in args.sizes]
    )
    modes = [
        m
        for m in ("idle", "busy")
        if not (args.busy_only and m == "idle") and not (args.idle_only and m == "busy")
    ]
    for mode in modes:
        stop = mp.Event()
        spinner = None
        if mode == "busy":
            spinner = mp.Process(target=_spin, args=(stop,), daemon=True)
            spinner.start()
            time.sleep(0.5)
        try:
            for atoms in structures:
                one = time_call(potential, atoms, 1, args.budget, args.calls)
                many = time_call(potential, atoms, n_cpu, args.budget, args.calls)
                print(
                    f"{mode:4s} {len(atoms):5d} atoms: 1 thread {1000 * one.median:9.1f} ms"
                    f" | {n_cpu} threads {1000 * many.median:9.1f} ms"
                    f" (n={one.n}/{many.n}) -> {n_cpu} threads are "
                    f"{one.median / many.median:.2f}x the speed of 1",
                    flush=True,
                )
        finally:
            stop.set()
            if spinner is not None:
                spinner.join(5)
    nnp_lab.set_threads("auto")
    return 0


if __name__ == "__main__":
    sys.exit(main())
