"""Time single-point evaluations and MD steps of the default model on this machine.

Prints ms per step and ms per atom per step for diamond Si cells of 64 and 216 atoms (and
any sizes given on the command line), median of repeated runs after a warm-up, plus the time
from a fresh import to the first energy. Usage: ``python bench/core_timings.py [--sizes 64 216]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.cases import si_cell  # noqa: E402
from bench.timing import time_calls  # noqa: E402  (the one copy of the timing helpers)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 216])
    parser.add_argument("--model", default="sevennet-0")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--md-steps", type=int, default=10)
    args = parser.parse_args()

    import torch

    from nnp_lab import load_potential
    from nnp_lab.simulate import md

    pot = load_potential(args.model)
    rows = []
    for n in args.sizes:
        atoms = si_cell(n, rattle=0.02)
        sp = time_calls(lambda: pot.evaluate([atoms]), args.repeats)
        t = time.perf_counter()
        md(
            atoms,
            pot,
            ensemble="nvt",
            temperature_K=300,
            steps=args.md_steps,
            interval=args.md_steps,
            seed=1,
        )
        per_step = (time.perf_counter() - t) / args.md_steps
        med = statistics.median(sp)
        rows.append(
            {
                "atoms": n,
                "single_point_ms_median": round(med * 1e3, 1),
                "single_point_ms_min": round(min(sp) * 1e3, 1),
                "single_point_ms_max": round(max(sp) * 1e3, 1),
                "ms_per_atom": round(med * 1e3 / n, 2),
                "md_step_ms": round(per_step * 1e3, 1),
            }
        )
        print(json.dumps(rows[-1]))

    code = (
        "import time; t=time.perf_counter(); import nnp_lab; from ase.build import bulk; "
        "a=bulk('Si','diamond',5.43,cubic=True)*(2,2,2); "
        f"nnp_lab.load_potential({args.model!r}).evaluate([a]); print(time.perf_counter()-t)"
    )
    t0 = time.perf_counter()
    inner = float(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()[-1]
    )
    outer = time.perf_counter() - t0
    print(
        json.dumps(
            {"import_to_first_energy_s": round(inner, 2), "fresh_process_total_s": round(outer, 2)}
        )
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, numpy {np.__version__}, model {args.model}"
    )


if __name__ == "__main__":
    main()
