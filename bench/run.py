"""The benchmark harness: every speed figure of issue 5, side by side with its upstream reference.

``make bench`` (or ``python bench/run.py``) runs every case in :mod:`bench.cases` — single
points and MD steps of SevenNet-0 and CHGNet 0.3.0 on Si (64–4,096 atoms), Cu, CO on Pt(111),
Mg-MOF-74 and a 30-atom molecule; a 7-image NEB; import to first energy — each with our
implementation and the upstream ASE calculator of the same weights, and writes

``RESULTS.md``
    Goals of the issue and whether they are met (computed from the data), machine and
    versions, then a table per case kind (:mod:`bench.report`).
``results.json``
    The same data, machine-readable: ``machine``, ``versions``, ``options``, ``cases`` (each
    with the case settings, ``runs`` = one record per implementation as written by
    :mod:`bench.worker`, and ``comparison`` = speed-ups and force differences vs upstream)
    and ``goals``.

Both files are rewritten after every measurement, so an interrupted run keeps what it measured.

Usage::

    python bench/run.py                      # everything -> bench/RESULTS.md, bench/results.json
    python bench/run.py --quick              # smoke test (a few minutes) -> bench/results/quick/
    python bench/run.py --only 'md/*/si*' --only neb      # a subset -> bench/results/partial/
    python bench/run.py --list               # the planned cases, nothing run
    python bench/run.py --render bench/results.json       # re-render RESULTS.md from the JSON
    python bench/run.py --models emt --quick # harness test without a universal model

Options: ``--repeats N`` (timed repeats, default 5; 3 for ≥1,500 atoms), ``--neb-repeats N``
(default 1), ``--budget SECONDS`` (per implementation process; default 600, 1,200 for huge
systems, 1,800 for the NEB), ``--threads N`` (torch/OpenMP threads; default all cores, quick
mode 1), ``--models``, ``--out DIR``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.cases import DEFAULT_MODELS, MODELS, Case, plan, select  # noqa: E402
from bench.report import compare_case, evaluate_goals, per_step, render_markdown  # noqa: E402
from bench.timing import fmt_seconds  # noqa: E402

BENCH = ROOT / "bench"
WORKER = BENCH / "worker.py"
SCHEMA = "nnp_lab-bench/1"
#: Extra seconds past a process's budget before it is killed (a call already under way).
KILL_GRACE_S = 60.0


# --------------------------------------------------------------------------------------
# Machine and versions
# --------------------------------------------------------------------------------------
_PROBE = """\
import json, torch
from nnp_lab.potentials.registry import DEFAULT_MODEL, registered_names
cuda = torch.cuda.is_available()
print(json.dumps({"cuda": cuda, "gpu": torch.cuda.get_device_name(0) if cuda else None,
                  "torch_threads": torch.get_num_threads(), "registered": registered_names(),
                  "default_model": DEFAULT_MODEL}))
"""


def probe(env: dict[str, str]) -> dict[str, Any]:
    """GPU, torch threads and registered potentials, asked of a fresh interpreter."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    if proc.returncode != 0:
        raise SystemExit(f"cannot import nnp_lab/torch:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def machine_info(probed: dict[str, Any]) -> dict[str, Any]:
    """CPU model, cores, RAM, GPU (or None), OS and the current load average."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "torch_threads": probed.get("torch_threads"),
        "ram_gib": _ram_gib(),
        "gpu": probed.get("gpu"),
        "os": platform.platform(),
        "load_start": _load(),
    }


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def versions() -> dict[str, str]:
    """Python and the packages whose versions matter, nnp_lab with its git commit."""
    out = {"python": platform.python_version()}
    for pkg in ("torch", "sevenn", "chgnet", "ase", "numpy", "torch_geometric", "e3nn"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    try:
        ours = version("nnp_lab")
    except PackageNotFoundError:
        ours = "source tree"
    commit = _git("rev-parse", "--short=12", "HEAD")
    dirty = _git("status", "--porcelain", "--", "nnp_lab")
    note = ", uncommitted changes in nnp_lab/" if dirty else ""
    out["nnp_lab"] = f"{ours} (git {commit or '?'}{note})"
    return out


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def child_env(threads: int | None = None) -> dict[str, str]:
    """Environment of every child process: the source tree importable, optional thread cap."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    if threads:
        # torch (and numpy's BLAS) take their default thread count from these.
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(threads)
    return env


# --------------------------------------------------------------------------------------
# Running one implementation of one case
# --------------------------------------------------------------------------------------
def run_worker(case: Case, impl: str, work: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run ``bench/worker.py`` for (case, impl) in a new process group; return its record.

    The process is killed (its whole group) ``KILL_GRACE_S`` after its budget; whatever it
    had written is kept and the status becomes ``"budget"``.
    """
    stem = f"{case.id.replace('/', '_')}__{impl}"
    spec_path, out_path = work / f"{stem}.spec.json", work / f"{stem}.json"
    log_path = work / f"{stem}.log"
    spec_path.write_text(
        json.dumps(
            {"case": case.to_dict(), "impl": impl, "workdir": str(work), "budget_s": case.budget_s}
        )
    )
    hard_limit = case.budget_s + KILL_GRACE_S
    started = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(WORKER), str(spec_path), str(out_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        killed = False
        try:
            proc.wait(timeout=hard_limit)
        except subprocess.TimeoutExpired:
            killed = True
            _kill_group(proc)
        except BaseException:  # Ctrl-C: the worker is in its own session, stop it too
            _kill_group(proc)
            raise
    try:
        record = json.loads(out_path.read_text())
    except (OSError, ValueError):
        record = {"case": case.id, "impl": impl, "status": "running"}
    record["process_wall_s"] = time.perf_counter() - started
    if killed:
        record["status"] = "budget"
        record["note"] = (
            f"killed after {fmt_seconds(hard_limit)} (budget "
            f"{fmt_seconds(case.budget_s)} + {KILL_GRACE_S:.0f} s grace)"
        )
    elif record.get("status") == "running":
        tail = log_path.read_text(errors="replace")[-1500:] if log_path.exists() else ""
        reason = (
            f"killed by signal {-proc.returncode} (out of memory?)"
            if proc.returncode and proc.returncode < 0
            else f"exit code {proc.returncode}"
        )
        record.update(status="error", error=f"worker died: {reason}; log tail: {tail}")
    if record.get("status") == "error" and log_path.exists():
        record.setdefault("log_tail", log_path.read_text(errors="replace")[-1500:])
    return record


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the worker we started and its own children (it leads its process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------
def write_outputs(results: dict[str, Any], out: Path) -> None:
    """Write ``results.json`` and ``RESULTS.md`` into ``out`` (atomically, each)."""
    out.mkdir(parents=True, exist_ok=True)
    results["goals"] = evaluate_goals(results)
    for name, text in (
        ("results.json", json.dumps(results, indent=1, default=str) + "\n"),
        ("RESULTS.md", render_markdown(results)),
    ):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, out / name)


def _summary(run: dict[str, Any]) -> str:
    status = run.get("status")
    if status == "error":
        return f"ERROR {run.get('error', '')[:300]}"
    if status == "budget":
        return f"skipped (budget) {run.get('note', '')}"
    if run.get("impl") == "prepare":
        return "endpoints relaxed"
    s = per_step(run)
    if s is None:
        return str(status)
    unit = "/step" if run.get("md_block") else ""
    peak = run.get("peak_rss_mb")
    return f"{fmt_seconds(s.median)}{unit} ({fmt_seconds(s.min)}–{fmt_seconds(s.max)}, n={s.n})" + (
        f", peak {peak:,.0f} MB" if peak else ""
    )


def _comparison_line(entry: dict[str, Any]) -> str:
    parts = []
    for impl, item in entry.get("comparison", {}).items():
        if not isinstance(item, dict):  # {"error": "..."}
            parts.append(f"comparison failed: {item}")
            continue
        text = []
        if item.get("speedup") is not None:
            text.append(
                f"speed-up {item['speedup']:.2f}× "
                f"({item['speedup_min']:.2f}–{item['speedup_max']:.2f})"
            )
        if item.get("max_force_diff") is not None:
            text.append(f"max ‖ΔF‖ {item['max_force_diff']:.1e} eV/Å")
        if item.get("forward_barrier_diff") is not None:
            text.append(f"Δbarrier {item['forward_barrier_diff']:+.4f} eV")
        if text:
            parts.append(f"{impl}: " + ", ".join(text))
    return "; ".join(parts)


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark nnp_lab against the upstream ASE calculators (issue 5)."
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, 1–2 repeats: a smoke test of the harness"
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="PATTERN",
        help="run only cases whose id (kind/model/system) matches; glob if it "
        "has *?[, else substring; repeatable",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        help="timed repeats per case (default 5; 3 for ≥1,500 atoms; quick 2)",
    )
    parser.add_argument("--neb-repeats", type=int, help="complete NEB runs each (default 1)")
    parser.add_argument(
        "--budget",
        type=float,
        metavar="SECONDS",
        help="time budget per implementation process (default 600; 1,200 "
        "for ≥1,500 atoms; 1,800 NEB; quick 120)",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=list(DEFAULT_MODELS),
        choices=sorted(MODELS),
        help="models to benchmark",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="output directory (default bench/ for a full "
        "run, bench/results/quick|partial otherwise)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="cap torch/OpenMP threads of every process (default: torch's "
        "default, i.e. all cores; quick mode 1, which keeps a shared "
        "machine from stalling OpenMP)",
    )
    parser.add_argument("--list", action="store_true", help="print the planned cases and exit")
    parser.add_argument(
        "--render",
        type=Path,
        metavar="RESULTS_JSON",
        help="re-render RESULTS.md next to an existing results.json and exit",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        results = json.loads(args.render.read_text())
        write_outputs(results, args.render.parent)
        print(f"wrote {args.render.parent / 'RESULTS.md'}")
        return 0

    out = args.out or (
        BENCH / "results" / "quick"
        if args.quick
        else BENCH / "results" / "partial"
        if args.only
        else BENCH
    )
    threads = args.threads if args.threads is not None else (1 if args.quick else None)
    env = child_env(threads)
    probed = probe(env)
    via = any(
        MODELS[m].via_nnp_lab in probed["registered"] for m in args.models if MODELS[m].via_nnp_lab
    )
    cases = select(
        plan(
            models=tuple(args.models),
            quick=args.quick,
            repeats=args.repeats,
            neb_repeats=args.neb_repeats,
            budget_s=args.budget,
            via_nnp_lab=via,
        ),
        args.only,
    )
    if args.list:
        for c in cases:
            print(
                f"{c.id:32s} {c.n_atoms:6d} atoms  {'+'.join(c.impls):28s} repeats "
                f"{c.repeats}  budget {fmt_seconds(c.budget_s)}"
            )
        return 0
    if not cases:
        print("no case matches --only", file=sys.stderr)
        return 2

    given = sys.argv[1:] if argv is None else argv
    command = "python bench/run.py" + "".join(f" {shlex.quote(a)}" for a in given)
    results: dict[str, Any] = {
        "schema": SCHEMA,
        "command": command,
        "started": _now(),
        "finished": None,
        "complete": False,
        "options": {
            "quick": args.quick,
            "models": args.models,
            "only": args.only,
            "repeats": args.repeats,
            "neb_repeats": args.neb_repeats,
            "budget_s": args.budget,
            "threads": threads,
        },
        "default_model": probed.get("default_model", "sevennet-0"),
        "registered_potentials": probed["registered"],
        "machine": machine_info(probed),
        "versions": versions(),
        "cases": [],
        "goals": [],
    }
    n_runs = sum(len(c.impls) for c in cases)
    print(
        f"bench: {len(cases)} cases, {n_runs} processes -> {out}/RESULTS.md "
        f"(registered: {', '.join(probed['registered'])})",
        flush=True,
    )
    t_start = time.perf_counter()
    done = 0
    try:
        with tempfile.TemporaryDirectory(prefix="nnp_lab-bench-") as tmp:
            work = Path(tmp)
            for i, case in enumerate(cases, 1):
                entry: dict[str, Any] = {**case.to_dict(), "runs": {}, "comparison": {}}
                results["cases"].append(entry)
                for impl in case.impls:
                    done += 1
                    print(f"[{done:3d}/{n_runs}] {case.id:30s} {impl:12s} ", end="", flush=True)
                    t = time.perf_counter()
                    entry["runs"][impl] = record = run_worker(case, impl, work, env)
                    try:
                        entry["comparison"] = compare_case(entry, work)
                    except Exception as exc:  # noqa: BLE001 - keep measuring; say what failed
                        entry["comparison"] = {"error": f"{type(exc).__name__}: {exc}"}
                    print(
                        f"{_summary(record)}  [{fmt_seconds(time.perf_counter() - t)}]", flush=True
                    )
                    if impl == "prepare" and record.get("status") != "ok":
                        for other in case.impls[1:]:
                            entry["runs"][other] = {
                                "status": "error",
                                "error": "endpoint preparation failed",
                            }
                        break
                    write_outputs(results, out)
                line = _comparison_line(entry)
                if line:
                    print(f"{'':6s} -> {line}", flush=True)
                write_outputs(results, out)
    except KeyboardInterrupt:
        results["interrupted"] = True
        results["machine"]["load_end"] = _load()
        write_outputs(results, out)
        print(f"\ninterrupted: partial results in {out}", file=sys.stderr)
        return 130
    results.update(finished=_now(), complete=True, wall_s=time.perf_counter() - t_start)
    results["machine"]["load_end"] = _load()
    write_outputs(results, out)
    print(f"done in {fmt_seconds(results['wall_s'])}: {out / 'RESULTS.md'}, {out / 'results.json'}")
    for goal in results["goals"]:
        verdict = {True: "met", False: "NOT met", None: "not measured"}[goal["met"]]
        print(f"  goal {goal['id']}: {verdict} — {goal['measured']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
