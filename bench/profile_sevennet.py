"""Where the time goes in a SevenNet-0 evaluation: our path, and optionally the upstream one.

Prints, per cell size of diamond Si, a per-stage table (neighbour list, graph building, edge
embedding, radial networks, tensor products, linear layers, gate, autograd backward, force /
stress assembly) from ``torch.profiler`` for ``load_potential("sevennet-0")``, plus the most
expensive torch operators. With ``--upstream`` the same for ``sevennet-0-upstream`` (stages
from forward hooks on the upstream modules; its backward runs inside ``force_output``).

The profiler measures wall time per range; on a shared CPU the absolute numbers inflate
with the load, the proportions much less. The process CPU time per call is printed too.

With ``--timings`` it instead prints ours and upstream side by side, measured in the same
process and interleaved call by call (median of ``--repeats`` after a warm-up): a single
point (energy, forces, stress) and an MD step (energy and forces), per cell size.

Usage::

    python bench/profile_sevennet.py [--sizes 64 216] [--repeats 3] [--threads 2]
        [--properties energy forces] [--upstream] [--ops 12]
    python bench/profile_sevennet.py --timings --sizes 64 216 512 --repeats 5 [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.cases import si_cell  # noqa: E402

# Our stages, in pipeline order; "sevennet.tensor_product_backward" is nested in backward.
STAGES = [
    ("sevennet.neighbours", "neighbour list (vesin, Verlet cache)"),
    ("sevennet.graph", "graph building (numpy -> torch)"),
    ("sevennet.edge_embedding", "edge embedding (radial basis, Y_lm, A = Y @ C)"),
    ("sevennet.radial_mlp", "radial networks (8 -> 64 -> 64 -> paths)"),
    ("sevennet.tensor_product", "tensor products + aggregation (forward)"),
    ("sevennet.linear", "equivariant linear layers"),
    ("sevennet.gate", "gate activations"),
    ("sevennet.readout", "readout + species shift/scale"),
    ("sevennet.backward", "autograd backward (all)"),
    ("sevennet.tensor_product_backward", "  of which tensor products (hand-written)"),
    ("sevennet.forces_stress", "forces / stress assembly + copy out"),
]
NESTED = {"sevennet.tensor_product_backward"}


def _stage_totals(prof, names) -> dict[str, float]:
    """Inclusive CPU time (ms) of every ``record_function`` range, summed by name."""
    totals = dict.fromkeys(names, 0.0)
    for event in prof.events():
        if event.name in totals:
            totals[event.name] += event.cpu_time_total / 1e3
    return totals


def _time_calls(fn, repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``fn()`` over ``repeats`` calls."""
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def _timed_then_profiled(call, repeats: int):
    """Two warm-up calls, then ``repeats`` timed calls (median wall, CPU s), then
    ``repeats`` calls under the torch profiler. Returns ``(wall, cpu, profile)``."""
    from torch.profiler import ProfilerActivity, profile

    for _ in range(2):
        call()
    wall, cpu = _time_calls(call, repeats)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(repeats):
            call()
    return wall, cpu, prof


def profile_ours(pot, atoms, properties, repeats: int, n_ops: int) -> None:
    """Print the stage table and the top operators of our path."""

    def call():
        return pot.evaluate([atoms], properties, validate=False)

    wall, cpu, prof = _timed_then_profiled(call, repeats)
    totals = _stage_totals(prof, [s for s, _ in STAGES])
    top_level = sum(v for k, v in totals.items() if k not in NESTED) / repeats
    print(f"  ours: {wall * 1e3:.1f} ms per call (wall, median), {cpu * 1e3:.1f} ms CPU")
    print(f"  {'stage':52s} {'ms/call':>9s} {'share':>7s}")
    for key, label in STAGES:
        ms = totals[key] / repeats
        print(f"  {label:52s} {ms:9.1f} {100 * ms / max(top_level, 1e-9):6.1f}%")
    print(f"  {'sum of stages (profiled)':52s} {top_level:9.1f}")
    if n_ops:
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=n_ops))


def profile_upstream(pot, atoms, repeats: int, n_ops: int) -> None:
    """Per-module stage table of the upstream sevenn model (forward hooks)."""
    import torch

    def stage_of(name: str) -> str:
        for key in (
            "edge_embedding",
            "self_connection",
            "self_interaction",
            "convolution",
            "equivariant_gate",
            "force_output",
        ):
            if key in name:
                return f"upstream.{key}"
        return "upstream.other_modules"

    ranges = {}
    handles = []
    for name, module in pot.model.named_children():
        label = stage_of(name)

        def pre(mod, inp, label=label, name=name):
            ranges[name] = torch.profiler.record_function(label)
            ranges[name].__enter__()

        def post(mod, inp, out, name=name):
            ranges.pop(name).__exit__(None, None, None)

        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(post))

    def call():
        return pot.evaluate([atoms], validate=False)

    try:
        wall, cpu, prof = _timed_then_profiled(call, repeats)
        labels = sorted({stage_of(n) for n, _ in pot.model.named_children()})
        totals = _stage_totals(prof, labels)
        total = sum(totals.values()) / repeats
        print(f"  upstream: {wall * 1e3:.1f} ms per call (wall, median), {cpu * 1e3:.1f} ms CPU")
        for key in labels:
            ms = totals[key] / repeats
            print(f"  {key:52s} {ms:9.1f} {100 * ms / max(total, 1e-9):6.1f}%")
        print("  (upstream.force_output holds the autograd backward of the whole network)")
        if n_ops:
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=n_ops))
    finally:
        for h in handles:
            h.remove()


def side_by_side(pots: dict, sizes: list[int], repeats: int) -> None:
    """Median wall time per call of each potential, interleaved call by call."""
    import os

    print(f"load average {os.getloadavg()}")
    for n in sizes:
        atoms = si_cell(n, rattle=0.02)
        for label, props in [
            ("single point (E, F, stress)", ("energy", "forces", "stress")),
            ("MD step (E, F)", ("energy", "forces")),
        ]:
            times = {k: [] for k in pots}
            for pot in pots.values():
                pot.evaluate([atoms], props)  # warm-up
            for _ in range(repeats):
                for key, pot in pots.items():
                    start = time.perf_counter()
                    pot.evaluate([atoms], props, validate=False)
                    times[key].append(time.perf_counter() - start)
            med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
            cells = "  ".join(f"{k} {m:8.1f} ms ({m / n:5.2f} ms/atom)" for k, m in med.items())
            ratio = f"  upstream/ours {med['upstream'] / med['ours']:.2f}" if len(med) == 2 else ""
            print(f"{n:6d} atoms  {label:28s} {cells}{ratio}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 216])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument(
        "--properties",
        nargs="+",
        default=["energy", "forces"],
        help="what to evaluate (an MD step: energy forces; add stress for NPT)",
    )
    parser.add_argument("--upstream", action="store_true", help="also profile sevenn's model")
    parser.add_argument("--ops", type=int, default=12, help="top operators to list (0: none)")
    parser.add_argument(
        "--timings", action="store_true", help="ours vs upstream side by side, no profile"
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    import torch

    from nnp_lab import load_potential

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    pot = load_potential("sevennet-0", device="cpu")
    if args.timings:
        upstream = load_potential("sevennet-0-upstream", device="cpu")
        side_by_side({"ours": pot, "upstream": upstream}, args.sizes, args.repeats)
        return
    upstream = load_potential("sevennet-0-upstream", device="cpu") if args.upstream else None
    for n in args.sizes:
        atoms = si_cell(n, rattle=0.02)
        print(f"\n=== diamond Si, {n} atoms, properties {tuple(args.properties)} ===")
        profile_ours(pot, atoms, tuple(args.properties), args.repeats, args.ops)
        if upstream is not None:
            profile_upstream(upstream, atoms, args.repeats, args.ops)


if __name__ == "__main__":
    main()
