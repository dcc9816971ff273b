"""Screening throughput: structures per second for single points and relaxations. Prints numbers.

(a) a plain Python loop calling ASE with the upstream SevenNet-0 calculator, (b) the same loop
over our calculator, (c) ``nnp_lab.screen`` in one process (batched; relaxations in flight
share one model call per step), (d) ``screen`` on a LocalCluster of ``--workers`` processes.
The structures: small rattled cells (8–40 atoms) of several chemistries the model covers,
made from a seed. Run it alone on a quiet machine.

Usage::

    python bench/screening.py --n 256                  # the issue's size (long on a CPU)
    python bench/screening.py --n 24 --task relax --skip-upstream --workers 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def structures(n: int, seed: int = 0) -> list:
    import numpy as np
    from ase.build import bulk

    rng = np.random.default_rng(seed)
    makers = [  # 8-40 atoms each
        lambda: bulk("Cu", "fcc", a=3.61, cubic=True) * (1, 1, int(rng.integers(2, 11))),
        lambda: bulk("Si", "diamond", a=5.43, cubic=True) * (1, 1, int(rng.integers(1, 6))),
        lambda: bulk("NaCl", "rocksalt", a=5.64, cubic=True) * (1, 1, int(rng.integers(1, 6))),
        lambda: bulk("Al", "fcc", a=4.05, cubic=True) * (2, 1, int(rng.integers(1, 6))),
        lambda: bulk("MgO", "rocksalt", a=4.21, cubic=True) * (1, 1, int(rng.integers(1, 6))),
    ]
    out = []
    for k in range(n):
        a = makers[k % len(makers)]()
        a.rattle(0.05, seed=int(rng.integers(1 << 30)))
        out.append(a)
    return out


def loop(cells: list, calc, task: str, fmax: float) -> float:
    from ase.optimize import FIRE

    t = time.perf_counter()
    for a in cells:
        b = a.copy()
        b.calc = calc
        if task == "energy":
            b.get_potential_energy()
            b.get_forces()
        else:
            FIRE(b, logfile=None).run(fmax=fmax, steps=500)
    return time.perf_counter() - t


def _warm_worker() -> None:
    """On a worker: load the model once (as the first chunk would) and run it once."""
    from ase.build import bulk

    from nnp_lab.screening._dask import worker_potential
    from nnp_lab.threads import set_threads

    set_threads(1)
    worker_potential("sevennet-0").evaluate([bulk("Cu")])


def main(argv: list[str] | None = None) -> int:
    import warnings

    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--task", choices=["energy", "relax", "both"], default="both")
    parser.add_argument("--fmax", type=float, default=0.05)
    parser.add_argument(
        "--workers", default="1,2", help="LocalCluster sizes to run (d) with, comma-separated"
    )
    parser.add_argument("--skip-upstream", action="store_true")
    parser.add_argument("--skip-dask", action="store_true")
    args = parser.parse_args(argv)

    import nnp_lab
    from nnp_lab.screening import screen

    cells = structures(args.n)
    pot = nnp_lab.load_potential("sevennet-0")
    pot.evaluate(cells[:2])  # warm up
    tasks = ["energy", "relax"] if args.task == "both" else [args.task]
    atoms = sum(len(a) for a in cells)
    print(
        f"{args.n} structures, {atoms} atoms ({min(map(len, cells))}-{max(map(len, cells))} each)"
    )
    for task in tasks:
        rows = {}
        if not args.skip_upstream:
            from sevenn.calculator import SevenNetCalculator

            rows["(a) loop, upstream calculator"] = loop(
                cells, SevenNetCalculator("7net-0", device="cpu"), task, args.fmax
            )
        rows["(b) loop, our calculator"] = loop(cells, pot.calculator(), task, args.fmax)
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            screen(cells, task, pot, db=Path(tmp) / "c.db", fmax=args.fmax)
            rows["(c) screen, one process"] = time.perf_counter() - t
            for n_workers in [] if args.skip_dask else map(int, args.workers.split(",")):
                from distributed import Client, LocalCluster

                with (
                    LocalCluster(
                        n_workers=n_workers,
                        threads_per_worker=1,
                        host="127.0.0.1",
                        dashboard_address=None,
                    ) as cluster,
                    Client(cluster) as client,
                ):
                    client.run(_warm_worker)  # model load is not part of the throughput
                    t = time.perf_counter()
                    screen(
                        cells,
                        task,
                        "sevennet-0",
                        db=Path(tmp) / f"d{n_workers}.db",
                        fmax=args.fmax,
                        client=client,
                        chunk_size=max(1, args.n // (4 * n_workers)),
                    )
                    rows[f"(d) screen, LocalCluster x{n_workers}"] = time.perf_counter() - t
        base = rows.get("(a) loop, upstream calculator")
        for name, wall in rows.items():
            ratio = f", {base / wall:5.2f}x (a)" if base else ""
            print(f"{task:6s} {name:34s} {wall:8.1f} s  {args.n / wall:7.2f} structures/s{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
