"""The GPU checks of the speed issue, in one short run. Prints numbers and writes JSON.

Run by ``bench/gpu.sh`` on a machine with a CUDA GPU (and testable here on a CPU with
``--device cpu --quick``). In order, each part printing as it goes so a run cut short
keeps what it measured:

1. **CUDA equals CPU**: our SevenNet-0 energies (per atom) and forces on the GPU against
   the CPU on Si 64, Cu 108 and a rattled Mg-MOF-74 (goal: 1e-4 eV/atom, 1e-3 eV/Å).
2. **Per MD-step time** (energy + forces, what an MD step costs) for diamond Si 64 → 4,096
   atoms, ours and the upstream SevenNet-0 calculator on the same device, with
   atoms·steps/s; and a batch of 64 small structures in one call against 64 upstream calls.
3. **The largest Si cell that fits**: doubling until out of memory (or ``--max-atoms``).

Usage::

    python bench/gpu_checks.py --out bench/results/gpu.json          # on the GPU machine
    python bench/gpu_checks.py --device cpu --quick                  # a test of the script
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import nnp_lab  # noqa: E402
from bench.cases import build_system, si_cell  # noqa: E402


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def median_time(fn, device: str, repeats: int) -> float:
    fn()  # warm-up
    sync(device)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def upstream_calculator(device: str):
    from sevenn.calculator import SevenNetCalculator

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        return SevenNetCalculator("7net-0", device=device)


def check_equal(device: str, results: dict, quick: bool) -> None:
    cpu = nnp_lab.load_potential("sevennet-0", device="cpu")
    dev = nnp_lab.load_potential("sevennet-0", device=device)
    names = ["si64"] if quick else ["si64", "cu108", "mof74"]
    rows = []
    for name in names:
        atoms = build_system(name)
        atoms.rattle(0.02, seed=3)
        a, b = (p.evaluate([atoms], ("energy", "forces"))[0] for p in (cpu, dev))
        row = {
            "system": name,
            "n_atoms": len(atoms),
            "dE_per_atom_eV": abs(a["energy"] - b["energy"]) / len(atoms),
            "max_dF_eV_per_A": float(np.abs(a["forces"] - b["forces"]).max()),
        }
        row["ok"] = row["dE_per_atom_eV"] <= 1e-4 and row["max_dF_eV_per_A"] <= 1e-3
        rows.append(row)
        print(f"equal  {json.dumps(row)}", flush=True)
    results["equal"] = rows


def step_times(device: str, results: dict, quick: bool, repeats: int) -> None:
    ours = nnp_lab.load_potential("sevennet-0", device=device)
    calc = upstream_calculator(device)
    sizes = [64, 216] if quick else [64, 216, 512, 1728, 4096]
    rows = []
    for n in sizes:
        atoms = si_cell(n, rattle=0.02)
        t_ours = median_time(
            lambda a=atoms: ours.evaluate([a], ("energy", "forces"), validate=False),
            device,
            repeats,
        )
        up = atoms.copy()
        up.calc = calc

        def upstream_call(a=up):
            a.positions[0, 0] += 1e-6  # defeat the calculator's result cache
            a.get_forces()

        t_up = median_time(upstream_call, device, repeats)
        row = {
            "n_atoms": n,
            "ours_s": t_ours,
            "upstream_s": t_up,
            "speedup": t_up / t_ours,
            "ours_atom_steps_per_s": n / t_ours,
            "upstream_atom_steps_per_s": n / t_up,
        }
        rows.append(row)
        print(f"step   {json.dumps(row)}", flush=True)
    small = [si_cell(8, rattle=0.02) for _ in range(8 if quick else 64)]
    for i, a in enumerate(small):
        a.rattle(0.02, seed=10 + i)
    t_batch = median_time(
        lambda: ours.evaluate(small, ("energy", "forces"), validate=False), device, repeats
    )

    def loop():
        for a in small:
            b = a.copy()
            b.calc = calc
            b.get_forces()

    t_loop = median_time(loop, device, max(1, repeats // 2))
    results["steps"] = rows
    results["batch"] = {
        "structures": len(small),
        "ours_one_call_s": t_batch,
        "upstream_loop_s": t_loop,
        "speedup": t_loop / t_batch,
    }
    print(f"batch  {json.dumps(results['batch'])}", flush=True)


def largest(device: str, results: dict, max_atoms: int) -> None:
    ours = nnp_lab.load_potential("sevennet-0", device=device)
    fitted, k = None, 4
    while 8 * k**3 <= max_atoms:
        atoms = si_cell(8 * k**3, rattle=0.02)
        try:
            t = time.perf_counter()
            ours.evaluate([atoms], ("energy", "forces"), validate=False, memory_check=False)
            sync(device)
            fitted = {"n_atoms": len(atoms), "seconds": time.perf_counter() - t}
            if device.startswith("cuda"):
                fitted["peak_GiB"] = torch.cuda.max_memory_allocated() / 2**30
            print(f"fits   {json.dumps(fitted)}", flush=True)
        except torch.OutOfMemoryError:
            print(f"out of memory at {len(atoms)} atoms", flush=True)
            break
        k = round(k * 1.26) if round(k * 1.26) > k else k + 1  # ~2x the atoms each step
    results["largest"] = fitted


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="small sizes: a test of the script")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-atoms", type=int, default=300_000)
    parser.add_argument("--out", default="bench/results/gpu.json")
    parser.add_argument("--parts", nargs="+", default=["equal", "steps", "largest"])
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device: nothing to check (use --device cpu to test the script)")
        return 1
    results: dict = {
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "torch": torch.__version__,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    parts = {
        "equal": lambda: check_equal(args.device, results, args.quick),
        "steps": lambda: step_times(args.device, results, args.quick, args.repeats),
        "largest": lambda: largest(args.device, results, 1000 if args.quick else args.max_atoms),
    }
    for name in args.parts:
        parts[name]()
        out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
