"""Peak memory of single points vs atoms and neighbour pairs: the constants of the memory check.

:mod:`nnp_lab.potentials.memory` estimates a call's peak memory as
``overhead + per_atom * n_atoms + per_pair * n_pairs (+ per_triplet * n_angles)`` (pairs
within the model's cutoff, each once, estimated by
:func:`~nnp_lab.potentials.memory.estimate_neighbours`; angles only for models with a
three-body cutoff: CHGNet, Behler–Parrinello). This script measures the constants: for each
model it evaluates single points (energy, forces, stress) of bulk cells of several sizes and
densities (diamond Si and C, fcc Cu, bcc Na: 7 to 23 pairs per atom at 5 Å), each in a fresh
process whose address space is capped (``RLIMIT_AS``, 70 % of the available memory: a case
larger than expected fails instead of waking the OOM killer), records the peak RSS growth of
the call, fits the constants by non-negative least squares on the *estimated* counts (what
the check sees) and prints them with the fit residuals, then the constants with a margin
(x :data:`MARGIN` + :data:`OVERHEAD_ALLOWANCE`: what the potentials use) with the smallest
ratio estimate / measurement (must be ≥ 1).

Peak RSS growth = ``VmHWM`` after the call minus ``VmRSS`` before it, with the high-water
mark reset just before the call (``/proc/self/clear_refs``), so the model loading's own peak
does not hide small calls; one torch thread. The first call of a process is fitted (it
includes one-time allocations, as a user's first call does); the second call of the same
structure is reported too (less: memory kept from the first is reused).

Usage::

    python bench/memory_model.py                          # every model (~45 min here)
    python bench/memory_model.py --models sevennet-0 d3   # some of them
    python bench/memory_model.py --quick                  # two small sizes per system
    python bench/memory_model.py --json bench/results/memory_model.json
    python bench/memory_model.py --cost                   # what the check costs per call
    python bench/memory_model.py --refit bench/results/memory_model.json   # fits again

Models: registered potentials (``sevennet-0``, ``sevennet-0-upstream``, ``sevennet-l3i5``,
``sevennet-mf-0-pbe``, ``chgnet-0.3.0``, ``emt``), our architectures with :func:`distill`'s
light defaults (``schnet``, ``teanet``, ``behler-parrinello``, random weights: memory does
not depend on their values) and ``d3`` (the dispersion term alone, 20 Å cutoff).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402

logger = logging.getLogger("bench.memory_model")

#: system -> (element, lattice, a (Å), atoms per cubic cell)
LATTICES = {
    "si": ("Si", "diamond", 5.43, 8),
    "c": ("C", "diamond", 3.567, 8),
    "cu": ("Cu", "fcc", 3.61, 4),
    "na": ("Na", "bcc", 4.23, 2),
    "al": ("Al", "fcc", 4.05, 4),
}

#: model -> system -> cubic-cell repeats measured (the upstream and the l3i5 / MF models are
#: 5-20x slower per atom and 8x hungrier, so they get smaller cells).
PLAN: dict[str, dict[str, list[int]]] = {
    "sevennet-0": {
        "si": [2, 3, 4, 5, 6, 8],
        "cu": [3, 4, 5, 6, 8],
        "c": [2, 3, 4, 6],
        "na": [4, 6, 8, 10],
    },
    "sevennet-0-upstream": {"si": [2, 3, 4, 5], "cu": [3, 4, 5], "c": [2, 3], "na": [4, 6, 8]},
    "sevennet-l3i5": {"si": [2, 3, 4], "cu": [3, 4], "c": [2, 3], "na": [4, 6]},
    "sevennet-mf-0-pbe": {"si": [2, 3, 4], "cu": [3, 4], "c": [2, 3], "na": [4, 6]},
    # CHGNet needs ~18 MB per fcc Cu atom (its bond graph): 500 Cu atoms took 9.2 GB.
    "chgnet-0.3.0": {"si": [2, 3, 4], "cu": [3, 4], "c": [2], "na": [4, 6, 8]},
    "emt": {"cu": [4, 6, 8, 10, 12], "al": [4, 6, 8, 10]},
    "schnet": {"si": [2, 4, 6, 8], "cu": [3, 5, 8], "c": [2, 4], "na": [4, 8]},
    "teanet": {"si": [2, 4, 6, 8], "cu": [3, 5, 8], "c": [2, 4], "na": [4, 8]},
    "behler-parrinello": {"si": [2, 4, 6, 8], "cu": [3, 5, 8], "c": [2, 4], "na": [4, 8]},
    "d3": {"si": [1, 2, 3, 4], "cu": [2, 3, 4, 5], "c": [1, 2, 3], "na": [3, 4, 6]},
}
QUICK = {m: {s: r[:2] for s, r in systems.items()} for m, systems in PLAN.items()}

#: Margin of the constants the potentials use over the fit.
MARGIN = 1.25
#: Fixed allowance added to the fitted overhead (allocator and interpreter noise), bytes.
OVERHEAD_ALLOWANCE = 50e6

_ARCHITECTURES = ("schnet", "teanet", "behler-parrinello")


# ---------------------------------------------------------------------------------------
# One measurement (worker process)
# ---------------------------------------------------------------------------------------
def _status() -> dict[str, int]:
    text = Path("/proc/self/status").read_text()
    return {k: int(v) * 1024 for k, v in re.findall(r"^(Vm\w+):\s+(\d+) kB", text, re.M)}


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def build_structure(system: str, repeats: int):
    """Rattled cubic supercell ``repeats³`` of one of :data:`LATTICES`."""
    from ase.build import bulk

    element, lattice, a, _ = LATTICES[system]
    atoms = bulk(element, lattice, a=a, cubic=True) * (repeats, repeats, repeats)
    atoms.rattle(0.03, seed=0)
    return atoms


def load(model: str):
    """An object with ``evaluate(structures, properties)`` and a ``cutoff``, for ``model``."""
    import nnp_lab

    if model == "d3":
        from nnp_lab.potentials.d3 import D3Dispersion

        return D3Dispersion()
    if model in _ARCHITECTURES:
        from nnp_lab.models.distillation import build_model as _build_model
        from nnp_lab.potentials.torch_model import TorchModelPotential

        elements = sorted({1, 6, 11, 13, 14, 29})
        net, name, _ = _build_model(model, elements, {}, seed=0)
        return TorchModelPotential(net, name=name)
    return nnp_lab.load_potential(model, device="cpu")


def measure(model: str, system: str, repeats: int) -> dict[str, Any]:
    """Peak RSS growth of the first and second single point of one structure."""
    from vesin import NeighborList

    from nnp_lab.potentials.memory import estimate_neighbours

    import nnp_lab

    os.environ["NNP_LAB_MEMORY_CHECK"] = "0"  # measure, do not refuse
    # One torch thread: memory hardly depends on it, and two threads on a busy 2-core
    # machine make large cells 5-10x slower (see nnp_lab.threads).
    nnp_lab.set_threads(1)
    t0 = time.perf_counter()
    pot = load(model)
    atoms = build_structure(system, repeats)
    cutoff = float(pot.cutoff)
    triplet_cutoff = getattr(pot, "memory_triplet_cutoff", None)
    pairs, triplets = estimate_neighbours(atoms, cutoff, triplet_cutoff)
    i, _ = NeighborList(cutoff=cutoff, full_list=False).compute(
        atoms.positions, np.asarray(atoms.cell), [True] * 3, quantities="ij"
    )
    props = ("energy", "forces", "stress")
    is_d3 = model == "d3"
    out: dict[str, Any] = {
        "model": model,
        "system": system,
        "repeats": repeats,
        "n_atoms": len(atoms),
        "cutoff": cutoff,
        "n_pairs": int(len(i)),
        "n_pairs_estimate": pairs,
        "triplet_cutoff": triplet_cutoff,
        "n_triplets_estimate": triplets,
        "load_s": time.perf_counter() - t0,
    }
    del i
    for call in (1, 2):
        work = atoms.copy()
        work.positions += 1e-4 * call  # no cache can answer
        reset = _reset_peak()
        before = _status()
        t = time.perf_counter()
        if is_d3:
            pot.evaluate([work], props)
        else:
            pot.evaluate([work], props, validate=False)
        wall = time.perf_counter() - t
        after = _status()
        peak = after["VmHWM"]  # since the reset (or since the start, when it failed)
        out[f"call{call}"] = {
            "wall_s": wall,
            "rss_before": before["VmRSS"],
            "growth": peak - before["VmRSS"],
            "peak_reset": reset,
            "vm_growth": (after["VmPeak"] - before["VmSize"])
            if after["VmPeak"] > before["VmPeak"]
            else None,
        }
    return out


# ---------------------------------------------------------------------------------------
# Fit
# ---------------------------------------------------------------------------------------
def fit(rows: list[dict[str, Any]], key: str = "call1") -> dict[str, Any]:
    """Non-negative least squares of growth = overhead + a·atoms + b·pairs (+ c·angles).

    Pairs and angles are the *estimated* counts (what the check sees at run time). Angles
    enter for models with a three-body cutoff. Weighted by 1/growth (relative residuals), so
    small cells count as much as large ones.
    """
    from scipy.optimize import nnls

    n = np.array([r["n_atoms"] for r in rows], dtype=float)
    p = np.array([r["n_pairs_estimate"] for r in rows], dtype=float)
    t = np.array([r.get("n_triplets_estimate") or 0.0 for r in rows], dtype=float)
    y = np.array([r[key]["growth"] for r in rows], dtype=float)
    columns = [np.ones_like(n), n, p] + ([t] if t.any() else [])
    design = np.stack(columns, axis=1)
    w = 1.0 / np.maximum(y, 1e6)
    coef, _ = nnls(design * w[:, None], y * w)
    pred = design @ coef
    margin = MARGIN * coef
    margin[0] += OVERHEAD_ALLOWANCE
    with_margin = design @ margin
    y_safe = np.maximum(y, 1e6)
    names = ["overhead", "per_atom", "per_pair", "per_triplet"]
    return {
        **{name: float(c) for name, c in zip(names, coef)},
        "per_triplet": float(coef[3]) if len(coef) > 3 else 0.0,
        "residual": (y - pred).tolist(),
        "relative_residual": ((y - pred) / y_safe).tolist(),
        "rms_relative_residual": float(np.sqrt(np.mean(((y - pred) / y_safe) ** 2))),
        "max_abs_residual": float(np.max(np.abs(y - pred))),
        "prediction": pred.tolist(),
        "recommended": {
            **{name: float(c) for name, c in zip(names, margin)},
            "per_triplet": float(margin[3]) if len(margin) > 3 else 0.0,
        },
        "min_ratio_recommended_to_measured": float(np.min(with_margin / y_safe)),
        "max_ratio_recommended_to_measured": float(np.max(with_margin / y_safe)),
    }


def _mb(x: float) -> str:
    return f"{x / 1e6:8.1f} MB"


def report(model: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Log the measurements and the fit of one model; return the fit."""
    result = fit(rows)
    second = fit(rows, "call2")
    triplet_cutoff = rows[0].get("triplet_cutoff")
    angles = f", angles within {triplet_cutoff:g} Å" if result["per_triplet"] else ""
    logger.info("== %s (pairs within %.1f Å%s)", model, rows[0]["cutoff"], angles)
    logger.info(
        "   system  atoms     pairs  est/true     angles   first call      second"
        "         fit    resid  call s"
    )
    for r, res, pred in zip(rows, result["relative_residual"], result["prediction"]):
        logger.info(
            "   %-6s %6d %9d  %8.3f %10.0f  %s %s %s %+6.1f%%  %6.2f",
            r["system"],
            r["n_atoms"],
            r["n_pairs"],
            r["n_pairs_estimate"] / max(r["n_pairs"], 1),
            r.get("n_triplets_estimate") or 0.0,
            _mb(r["call1"]["growth"]),
            _mb(r["call2"]["growth"]),
            _mb(pred),
            100 * res,
            r["call1"]["wall_s"],
        )
    for label, f in (("first call", result), ("second call", second)):
        logger.info(
            "   fit (%s): overhead %.1f MB, %.1f kB/atom, %.2f kB/pair%s; rms residual %.1f %%, "
            "largest %.1f MB",
            label,
            f["overhead"] / 1e6,
            f["per_atom"] / 1e3,
            f["per_pair"] / 1e3,
            f", {f['per_triplet'] / 1e3:.2f} kB/angle" if f["per_triplet"] else "",
            100 * f["rms_relative_residual"],
            f["max_abs_residual"] / 1e6,
        )
    rec = result["recommended"]
    logger.info(
        "   with margin (x%.2f, +%.0f MB): memory_overhead_bytes = %.3g, memory_per_atom_bytes = "
        "%.3g, memory_per_pair_bytes = %.3g%s; estimate / measured = %.2f .. %.2f",
        MARGIN,
        OVERHEAD_ALLOWANCE / 1e6,
        rec["overhead"],
        rec["per_atom"],
        rec["per_pair"],
        f", memory_per_triplet_bytes = {rec['per_triplet']:.3g}" if rec["per_triplet"] else "",
        result["min_ratio_recommended_to_measured"],
        result["max_ratio_recommended_to_measured"],
    )
    result["second_call"] = second
    return result


def check_cost(model: str = "sevennet-0") -> list[dict[str, Any]]:
    """Seconds the memory check adds to one ``evaluate`` call, for diamond Si cells.

    ``check`` is what ``evaluate`` runs (``Potential._check_memory``): a bound from the atom
    count; above :data:`~nnp_lab.potentials.memory.MIN_CHECKED_BYTES` the pair estimate;
    for estimates above it also the limits. ``estimate`` and ``limits`` are the two parts
    timed alone. Best of 7 repeats.
    """
    import timeit

    from nnp_lab.potentials import memory

    pot = load(model)

    def best(fn: Any, number: int) -> float:
        return min(timeit.repeat(fn, number=number, repeat=7)) / number

    rows = []
    for k in (2, 3, 4, 8, 16):
        atoms = build_structure("si", k)
        structures = [atoms]
        n = len(atoms)
        number = max(5, 2000 // n)
        estimate = pot.memory_estimate(structures).bytes
        if pot._memory_upper_bound(n) < memory.MIN_CHECKED_BYTES:
            what = "bound only"
        elif estimate < memory.MIN_CHECKED_BYTES:
            what = "bound + estimate"
        else:
            what = "bound + estimate + limits"
        rows.append(
            {
                "n_atoms": n,
                "path": what,
                "check_s": best(lambda: pot._check_memory(structures, n), number),
                "estimate_s": best(lambda: pot.memory_estimate(structures), number),
                "limits_s": best(lambda: memory.available_memory("cpu"), number),
                "estimate_bytes": estimate,
            }
        )
        logger.info(
            "   Si %6d atoms: check %7.1f µs (%s); estimate alone %7.1f µs, limits alone "
            "%5.1f µs; estimate %.2f GB",
            n,
            rows[-1]["check_s"] * 1e6,
            what,
            rows[-1]["estimate_s"] * 1e6,
            rows[-1]["limits_s"] * 1e6,
            estimate / 1e9,
        )
    return rows


def run_worker(
    model: str, system: str, repeats: int, timeout_s: float, max_bytes: int | None = None
) -> dict[str, Any] | None:
    """One measurement in a fresh process (None when it failed or timed out).

    ``max_bytes`` caps the worker's address space (``RLIMIT_AS``), so a case larger than
    expected fails inside the worker instead of pushing the machine into the OOM killer.
    """
    import resource

    def limit() -> None:
        if max_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))

    cmd = [sys.executable, __file__, "--worker", model, system, str(repeats)]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout_s, preexec_fn=limit
        )
    except subprocess.TimeoutExpired:
        logger.warning("%s %s x%d: timed out after %.0f s", model, system, repeats, timeout_s)
        return None
    if proc.returncode != 0:
        logger.warning("%s %s x%d failed:\n%s", model, system, repeats, proc.stderr[-2000:])
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(PLAN), choices=list(PLAN))
    parser.add_argument("--quick", action="store_true", help="two sizes per system")
    parser.add_argument("--json", type=Path, help="write measurements and fits here")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per process")
    parser.add_argument(
        "--max-gb",
        type=float,
        default=None,
        help="address-space cap per worker (default: 70%% of the available memory at the start)",
    )
    parser.add_argument(
        "--refit",
        nargs="+",
        type=Path,
        metavar="JSON",
        help="fit and print again from saved --json files (later files win)",
    )
    parser.add_argument(
        "--cost",
        action="store_true",
        help="time the check itself (sevennet-0, Si 64 to 32,768 atoms)",
    )
    parser.add_argument(
        "--worker", nargs=3, metavar=("MODEL", "SYSTEM", "REPEATS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.worker:
        model, system, repeats = args.worker
        sys.stdout.write(json.dumps(measure(model, system, int(repeats))) + "\n")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    if args.cost:
        check_cost()
        return 0
    if args.refit:
        from nnp_lab.potentials.memory import estimate_neighbours

        measurements: dict[str, list[dict[str, Any]]] = {}
        for path in args.refit:
            measurements.update(json.loads(path.read_text())["measurements"])
        for rows in measurements.values():  # the estimates of the current code
            for r in rows:
                atoms = build_structure(r["system"], r["repeats"])
                r["n_pairs_estimate"], r["n_triplets_estimate"] = estimate_neighbours(
                    atoms, r["cutoff"], r.get("triplet_cutoff")
                )
        fits = {m: report(m, rows) for m, rows in measurements.items() if len(rows) >= 3}
        if args.json:
            args.json.write_text(json.dumps({"measurements": measurements, "fits": fits}, indent=1))
        return 0
    from nnp_lab.potentials.memory import available_memory_bytes

    available = available_memory_bytes("cpu")
    if args.max_gb:
        max_bytes = int(args.max_gb * 1e9)
    else:
        max_bytes = int(0.7 * available) if available else None
    plan = QUICK if args.quick else PLAN
    data: dict[str, Any] = {"measurements": {}, "fits": {}}
    for model in args.models:
        rows = []
        for system, reps in plan[model].items():
            for k in reps:
                row = run_worker(model, system, k, args.timeout, max_bytes)
                if row is not None:
                    logger.info(
                        "   %s %s %d atoms: %.1f MB (%.1f s)",
                        model,
                        system,
                        row["n_atoms"],
                        row["call1"]["growth"] / 1e6,
                        row["call1"]["wall_s"],
                    )
                    rows.append(row)
        data["measurements"][model] = rows
        if len(rows) >= 3:
            data["fits"][model] = report(model, rows)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(data, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
