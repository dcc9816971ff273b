"""Time energy + forces of our own architectures (untrained weights) through TorchModelPotential.

For each architecture (Behler–Parrinello, SchNet, TeaNet) with its default and a "light"
setting, prints the median (and min) ms per evaluation of energy + forces of rattled cells of
64 and 216 atoms — the whole step including the neighbour list / GraphBatch build — once with
the full input check of ``Potential.evaluate`` (the first call of a calculator, or after the
composition/cell changed) and once with ``validate=False`` (what an MD or relaxation step
costs: calculators skip the close-contact search between steps that only move atoms).

Systems: ``cuau`` = fcc Cu/Au alloy (dense metal, ~80 neighbours within 6 Å), ``si`` =
diamond Si (the cells of ``bench/core_timings.py``, for comparison with SevenNet-0).

The "step" columns are energy + forces (no stress) with ``validate=False``; the median CPU
time of the process is printed beside the wall time, because on a shared machine it is the
better estimate of the quiet-machine wall time (run with ``--threads 1``).

Usage: ``python bench/model_speed.py [--sizes 64 216] [--systems cuau si] [--repeats 20]
[--threads 1] [--only TeaNet]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
from ase.build import bulk


def cell(system: str, n_atoms: int):
    """A rattled cubic cell with ``n_atoms`` atoms."""
    if system == "si":
        unit, per = bulk("Si", "diamond", 5.43, cubic=True), 8
    else:
        unit, per = bulk("Cu", "fcc", 3.7, cubic=True), 4
    reps = round((n_atoms / per) ** (1 / 3))
    if per * reps**3 == n_atoms:
        atoms = unit * (reps, reps, reps)
    elif per == 4 and n_atoms in (64, 216):
        atoms = unit * ((2, 2, 4) if n_atoms == 64 else (3, 3, 6))
    else:
        raise SystemExit(f"cannot build {n_atoms} atoms of {system}")
    if system == "cuau":
        rng = np.random.default_rng(0)
        atoms.numbers[rng.random(len(atoms)) < 0.3] = 79
    atoms.rattle(0.05, seed=0)
    return atoms


def settings():
    """(label, class, kwargs) of every timed model."""
    from nnp_lab.models import BehlerParrinello, SchNet, TeaNet
    from nnp_lab.models.teanet import LIGHT_SETTINGS

    return [
        ("BehlerParrinello default", BehlerParrinello, {}),
        (
            "BehlerParrinello light",
            BehlerParrinello,
            {
                "cutoff": 5.0,
                "angular_cutoff": 3.5,
                "radial_shifts": np.linspace(0.8, 4.5, 8),
                "angular_etas": [0.05],
                "hidden": [16, 16],
            },
        ),
        ("SchNet default", SchNet, {}),
        ("SchNet light", SchNet, {"n_features": 32, "n_interactions": 2, "n_rbf": 16}),
        ("TeaNet default", TeaNet, {}),
        ("TeaNet light", TeaNet, dict(LIGHT_SETTINGS)),
        ("TeaNet light-3", TeaNet, {**LIGHT_SETTINGS, "layer_cutoffs": [3.0, 4.0, 5.0]}),
        ("TeaNet light-small", TeaNet, {**LIGHT_SETTINGS, "n_scalar": 16}),
    ]


def median_ms(fn, repeats: int) -> tuple[float, float, float]:
    """Median and min wall time and median CPU time (this process, all threads) of
    ``fn()`` in ms, after two warm-up calls. On a shared machine the CPU time is the
    better estimate of what the call costs on a quiet one (with one torch thread)."""
    fn()
    fn()
    times, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(times) * 1e3, min(times) * 1e3, statistics.median(cpu) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 216])
    parser.add_argument("--systems", nargs="+", default=["cuau", "si"])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--only", default="", help="substring of the model labels to time")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from nnp_lab.potentials.torch_model import TorchModelPotential

    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, dtype {args.dtype}")
    table = []
    for label, cls, kwargs in settings():
        if args.only and args.only not in label:
            continue
        model = cls(elements=["Si", "Cu", "Au"], **kwargs)
        pot = TorchModelPotential(model, dtype=args.dtype)
        for system in args.systems:
            for n in args.sizes:
                atoms = cell(system, n)
                checked, _, _ = median_ms(lambda: pot.evaluate([atoms]), args.repeats)
                step, step_min, step_cpu = median_ms(
                    lambda: pot.evaluate([atoms], ("energy", "forces"), validate=False),
                    args.repeats,
                )
                row = {
                    "model": label,
                    "parameters": model.n_parameters(),
                    "cutoff": model.cutoff,
                    "system": system,
                    "atoms": n,
                    "step_ms_median": round(step, 2),
                    "step_ms_min": round(step_min, 2),
                    "step_cpu_ms_median": round(step_cpu, 2),
                    "checked_call_ms_median": round(checked, 2),
                }
                print(json.dumps(row), flush=True)
                table.append(row)
    print(
        "\n| model | system | atoms | step ms (median) | step ms (min) | step CPU ms | with input check |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in table:
        print(
            f"| {row['model']} | {row['system']} | {row['atoms']} | {row['step_ms_median']} | "
            f"{row['step_ms_min']} | {row['step_cpu_ms_median']} | {row['checked_call_ms_median']} |"
        )


if __name__ == "__main__":
    main()
