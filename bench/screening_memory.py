"""Memory of a long single-point screen streamed from an iterator. Prints numbers.

10,000 small structures (8–24 atoms, made one at a time by a generator: never all in memory)
go through ``nnp_lab.screen(..., "energy")`` with the default model. The resident set size
(RSS) is printed every 1,000 rows and the peak at the end, beside what a list of the same
structures would hold (measured with tracemalloc on 1,000 of them). Run it alone.

Usage::

    python bench/screening_memory.py            # 10,000 structures
    python bench/screening_memory.py --n 2000
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from screening import structures  # noqa: E402  (the throughput benchmark's structures)


def rss_mib() -> float:
    """Resident set size now (Linux /proc)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def stream(n: int, block: int = 100):
    """``n`` structures, made ``block`` at a time (the same recipe as bench/screening.py)."""
    for start in range(0, n, block):
        yield from structures(min(block, n - start), seed=start)


def main(argv: list[str] | None = None) -> int:
    import warnings

    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--model", default="sevennet-0")
    args = parser.parse_args(argv)

    import nnp_lab
    from nnp_lab.screening import ScreenRun

    pot = nnp_lab.load_potential(args.model)
    pot.evaluate(structures(2))  # warm up
    print(f"{args.n} structures streamed, model {pot.name}")
    print(f"RSS before the screen: {rss_mib():.0f} MiB (peak so far {peak_rss_mib():.0f} MiB)")
    samples = []
    with tempfile.TemporaryDirectory() as tmp:
        job = ScreenRun(stream(args.n), "energy", pot, db=Path(tmp) / "mem.db")
        every = max(1, args.n // 10)

        def sample(event):
            if event.n_seen % every == 0:
                samples.append((event.n_seen, rss_mib()))

        job.subscribe(sample)
        t = time.perf_counter()
        res = job.run()
        wall = time.perf_counter() - t
        db_mib = (Path(tmp) / "mem.db").stat().st_size / 2**20
    for n, mib in samples:
        print(f"  after {n:6d} rows: RSS {mib:6.0f} MiB")
    print(
        f"done {res.n_done}, failed {res.n_failed} in {wall:.0f} s "
        f"({res.n_done / wall:.1f} structures/s); database {db_mib:.0f} MiB"
    )
    growth = samples[-1][1] - samples[0][1] if len(samples) > 1 else float("nan")
    print(f"RSS growth from row {samples[0][0]} to row {samples[-1][0]}: {growth:+.0f} MiB")
    print(f"peak RSS of the process: {peak_rss_mib():.0f} MiB")
    tracemalloc.start()
    held = list(stream(1000))
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del held
    print(
        f"for comparison, a list of the {args.n} structures would hold "
        f"{size / 1000 * args.n / 2**20:.0f} MiB (tracemalloc, 1,000 of them: {size / 2**20:.1f} MiB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
