"""Turn the harness's measurements into comparisons, goal verdicts and ``RESULTS.md``.

Pure functions on the result dicts that ``bench/run.py`` collects (see its docstring for the
layout of ``results.json``); only :func:`compare_case` reads files (the forces each single-point
worker saved), everything else works from the JSON data alone, so ``RESULTS.md`` can be
re-rendered from ``results.json`` (``python bench/run.py --render results.json``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from bench.cases import MODELS, SI_SIZES
from bench.timing import Stats, fmt_seconds

__all__ = ["compare_case", "evaluate_goals", "render_markdown", "GOALS"]

#: Thresholds of issue 5.
MD_SPEEDUP_GOAL = 3.0
FORCE_TOLERANCE = 1e-3  # eV/Å
SCALING_SLACK = 1.3  # time ratio <= 1.3 x atom ratio
MEMORY_SLOPE_RATIO = 1.5  # marginal memory per atom may grow at most this much
NEB_TIME_RATIO_GOAL = 0.5
BARRIER_TOLERANCE = 0.01  # eV
IMPORT_GOAL_S = 5.0
GOAL_SIZES = (64, 216, 512)
GOAL_NEB_SYSTEM = "cu100_adatom"

GOALS = {
    1: f"MD step with the default model ≥ {MD_SPEEDUP_GOAL:g}× faster than upstream at "
    f"{', '.join(map(str, GOAL_SIZES))} atoms, max force difference ≤ {FORCE_TOLERANCE:g} "
    "eV/Å",
    2: f"cost per atom roughly flat from {SI_SIZES[0]} to {SI_SIZES[-1]:,} atoms (time ratio ≤ "
    f"{SCALING_SLACK:g}× atom ratio); memory linear",
    3: f"7-image NEB on ~60 atoms ≤ {NEB_TIME_RATIO_GOAL:g}× the wall time of ASE NEB with the "
    f"upstream calculator; barriers agree (±{BARRIER_TOLERANCE:g} eV)",
    4: f"import → first energy of a 64-atom cell ≤ {IMPORT_GOAL_S:g} s",
}


# --------------------------------------------------------------------------------------
# Reading measurements
# --------------------------------------------------------------------------------------
def _ok(run: dict | None) -> bool:
    return bool(run) and run.get("status") == "ok" and "stats" in run.get("timing", {})


def per_step(run: dict | None) -> Stats | None:
    """Seconds per call (single point, import, NEB run) or per MD step, or None."""
    if not _ok(run):
        return None
    return Stats.from_dict(run["timing"]["per_step"])


def _growth_mb(run: dict | None) -> float | None:
    if not run or run.get("peak_rss_mb") is None or run.get("baseline_rss_mb") is None:
        return None
    return float(run["peak_rss_mb"]) - float(run["baseline_rss_mb"])


# --------------------------------------------------------------------------------------
# Comparisons
# --------------------------------------------------------------------------------------
def speedup(ours: dict | None, reference: dict | None) -> dict[str, float] | None:
    """Reference time ÷ our time (median, and the extreme pairings) or None."""
    a, b = per_step(ours), per_step(reference)
    if a is None or b is None:
        return None
    med, lo, hi = a.ratio_to(b)
    return {"speedup": med, "speedup_min": lo, "speedup_max": hi, "time_ratio": 1.0 / med}


def _load(work: Path, case_id: str, impl: str) -> dict[str, np.ndarray] | None:
    path = work / f"{case_id.replace('/', '_')}__{impl}.npz"
    if not path.is_file():
        return None
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def accuracy(a: dict[str, np.ndarray], b: dict[str, np.ndarray], n_atoms: int) -> dict[str, Any]:
    """Differences between two single-point results on the same structure."""
    df = np.asarray(a["forces"]) - np.asarray(b["forces"])
    out = {
        "max_force_diff": float(np.linalg.norm(df, axis=1).max()),
        "max_force_component_diff": float(np.abs(df).max()),
        "energy_diff": float(a["energy"] - b["energy"]),
        "energy_diff_per_atom": float(abs(a["energy"] - b["energy"]) / n_atoms),
    }
    if "stress" in a and "stress" in b:
        out["max_stress_diff"] = float(np.abs(np.asarray(a["stress"]) - b["stress"]).max())
    return out


def compare_case(entry: dict, work: Path) -> dict[str, Any]:
    """Speed-ups (and for single points, force/energy/stress differences) of one case.

    Every implementation is compared with ``upstream``; keys are the implementation names.
    """
    runs = entry.get("runs", {})
    ref = runs.get("upstream")
    out: dict[str, Any] = {}
    for impl, run in runs.items():
        if impl in ("upstream", "prepare"):
            continue
        item: dict[str, Any] = {}
        s = speedup(run, ref)
        if s:
            item.update(s)
        if entry["kind"] == "sp":
            mine, theirs = _load(work, entry["id"], impl), _load(work, entry["id"], "upstream")
            if mine is not None and theirs is not None:
                item.update(accuracy(mine, theirs, entry["n_atoms"]))
        if entry["kind"] == "neb" and _ok(run) and _ok(ref):
            for key in ("forward_barrier", "backward_barrier"):
                item[f"{key}_diff"] = float(run[key] - ref[key])
            item["both_converged"] = bool(run.get("converged") and ref.get("converged"))
        if (
            entry["kind"] == "import"
            and (run or {}).get("process_s")
            and (ref or {}).get("process_s")
        ):
            o, u = Stats.from_dict(run["process_s"]), Stats.from_dict(ref["process_s"])
            item["process_speedup"] = u.median / o.median
        out[impl] = item
    return out


# --------------------------------------------------------------------------------------
# Goals
# --------------------------------------------------------------------------------------
def _find(results: dict, case_id: str) -> dict | None:
    for entry in results.get("cases", []):
        if entry["id"] == case_id:
            return entry
    return None


def _verdict(checks: list[bool | None]) -> bool | None:
    """False if any measured check failed, None if something is missing, else True."""
    if any(c is False for c in checks):
        return False
    if not checks or any(c is None for c in checks):
        return None
    return True


def _goal_md_speed(results: dict, model: str) -> dict:
    parts, checks, values = [], [], {}
    for n in GOAL_SIZES:
        md, sp = _find(results, f"md/{model}/si{n}"), _find(results, f"sp/{model}/si{n}")
        s = (md or {}).get("comparison", {}).get("ours", {}).get("speedup")
        df = (sp or {}).get("comparison", {}).get("ours", {}).get("max_force_diff")
        values[n] = {"speedup": s, "max_force_diff": df}
        checks.append(None if s is None else s >= MD_SPEEDUP_GOAL)
        checks.append(None if df is None else df <= FORCE_TOLERANCE)
        parts.append(
            f"{n}: {'–' if s is None else f'{s:.2f}×'}, "
            f"max ‖ΔF‖ {'–' if df is None else f'{df:.1e}'}"
        )
    return {"measured": "; ".join(parts) + " (eV/Å)", "met": _verdict(checks), "values": values}


def memory_linearity(points: list[tuple[int, float]]) -> dict[str, Any] | None:
    """Linearity of memory growth (MB) with atom count.

    Marginal MB per atom between consecutive sizes; the verdict compares the last two
    segments (quadratic growth would roughly double or triple the last one). Also the slope
    and R² of a straight-line fit.
    """
    points = sorted(p for p in points if p[1] is not None)
    if len(points) < 3:
        return None
    n = np.array([p[0] for p in points], dtype=float)
    m = np.array([p[1] for p in points], dtype=float)
    slopes = np.diff(m) / np.diff(n)
    b, a = np.polyfit(n, m, 1)
    pred = a + b * n
    ss_res, ss_tot = float(((m - pred) ** 2).sum()), float(((m - m.mean()) ** 2).sum())
    ratio = float(slopes[-1] / slopes[-2]) if slopes[-2] > 0 else math.inf
    return {
        "sizes": n.astype(int).tolist(),
        "marginal_kb_per_atom": (slopes * 1e3).tolist(),
        "fit_kb_per_atom": float(b * 1e3),
        "fit_intercept_mb": float(a),
        "r2": 1 - ss_res / ss_tot if ss_tot > 0 else 1.0,
        "last_segment_ratio": ratio,
        "linear": bool(ratio <= MEMORY_SLOPE_RATIO),
    }


def _si_series(results: dict, kind: str, model: str, impl: str = "ours") -> list[tuple[int, dict]]:
    out = []
    for entry in results.get("cases", []):
        if entry["kind"] == kind and entry["model"] == model and entry["system"].startswith("si"):
            out.append((entry["n_atoms"], entry.get("runs", {}).get(impl)))
    return sorted(out, key=lambda x: x[0])


def _goal_scaling(results: dict, model: str) -> dict:
    lo, hi = SI_SIZES[0], SI_SIZES[-1]
    series = dict(_si_series(results, "md", model))
    a, b = per_step(series.get(lo)), per_step(series.get(hi))
    values: dict[str, Any] = {}
    checks: list[bool | None] = []
    if a and b:
        ratio, limit = b.median / a.median, SCALING_SLACK * hi / lo
        values.update(time_ratio=ratio, limit=limit)
        checks.append(ratio <= limit)
        text = (
            f"MD step {hi:,}/{lo} atoms: time ratio {ratio:.1f} (limit {limit:.1f}; "
            f"{a.median / lo * 1e3:.1f} → {b.median / hi * 1e3:.1f} ms/atom)"
        )
    else:
        checks.append(None)
        text = f"MD step time at {lo} and {hi:,} atoms not both measured"
    mem = memory_linearity(
        [
            (n, _growth_mb(r))
            for n, r in _si_series(results, "sp", model)
            if r and r.get("status") == "ok"
        ]
    )
    values["memory"] = mem
    if mem and mem["sizes"][0] <= lo and mem["sizes"][-1] >= hi:
        checks.append(mem["linear"])
        text += (
            f"; memory {mem['fit_kb_per_atom']:.0f} kB/atom, last/previous marginal "
            f"{mem['last_segment_ratio']:.2f} (limit {MEMORY_SLOPE_RATIO:g})"
        )
    else:
        checks.append(None)
        text += "; memory: Si sizes up to 4,096 not all measured"
    return {"measured": text, "met": _verdict(checks), "values": values}


def _goal_neb(results: dict, model: str) -> dict:
    entry = _find(results, f"neb/{model}/{GOAL_NEB_SYSTEM}")
    runs = (entry or {}).get("runs", {})
    cmp_ = (entry or {}).get("comparison", {}).get("ours", {})
    ratio = cmp_.get("time_ratio")
    if ratio is None:
        return {"measured": "not measured", "met": None, "values": {}}
    ours, up = runs["ours"], runs["upstream"]
    agree = (
        abs(cmp_["forward_barrier_diff"]) <= BARRIER_TOLERANCE
        and abs(cmp_["backward_barrier_diff"]) <= BARRIER_TOLERANCE
        and cmp_["both_converged"]
    )
    text = (
        f"ours/ASE wall time {ratio:.2f}; barrier {ours['forward_barrier']:.3f} vs "
        f"{up['forward_barrier']:.3f} eV (Δ {cmp_['forward_barrier_diff']:+.4f}), "
        f"{ours['n_steps']} vs {up['n_steps']} iterations"
        + ("" if cmp_["both_converged"] else ", NOT both converged")
    )
    return {
        "measured": text,
        "met": _verdict([ratio <= NEB_TIME_RATIO_GOAL, agree]),
        "values": {"time_ratio": ratio, **cmp_},
    }


def _goal_import(results: dict, model: str) -> dict:
    entry = _find(results, f"import/{model}/{MODELS[model].import_system}")
    run = (entry or {}).get("runs", {}).get("ours")
    s = per_step(run)
    if s is None:
        return {"measured": "not measured", "met": None, "values": {}}
    proc = run.get("process_s") or {}
    text = (
        f"{s.median:.2f} s from `import nnp_lab` ({s.min:.2f}–{s.max:.2f}); "
        f"{proc.get('median', float('nan')):.2f} s from process start"
    )
    return {
        "measured": text,
        "met": s.median <= IMPORT_GOAL_S,
        "values": {"median_s": s.median, "process_median_s": proc.get("median")},
    }


def evaluate_goals(results: dict) -> list[dict]:
    """The four goals of issue 5, each with what was measured and whether it is met.

    ``met`` is True/False, or None when the cases it needs were not (all) measured (e.g. with
    ``--only``) and always in quick mode.
    """
    model = results.get("default_model", "sevennet-0")
    quick = bool(results.get("options", {}).get("quick"))
    fns = {1: _goal_md_speed, 2: _goal_scaling, 3: _goal_neb, 4: _goal_import}
    goals = []
    for i in sorted(GOALS):
        goal = {"id": i, "goal": GOALS[i], **fns[i](results, model)}
        if quick:  # one thread, one repeat, small systems: no verdicts
            goal.update(met=None, measured=f"(quick mode) {goal['measured']}")
        goals.append(goal)
    return goals


# --------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------
def _cell(run: dict | None, *, scale: float = 1.0, unit: str = "time") -> str:
    """``593 ms (560–659)`` for a run, or why there is no number."""
    if not run:
        return "–"
    status = run.get("status")
    if status == "budget":
        warm = run.get("timing", {}).get("warmup_s") or []
        hint = f"; one call took {fmt_seconds(max(warm))}" if warm else ""
        return f"skipped (budget{hint})"
    if status == "error":
        return "error"
    if status != "ok":
        return str(status)
    s = per_step(run)
    if s is None:
        return "–"
    s = s.scaled(scale)
    if unit == "ms":
        return f"{s.median:.2f} ({s.min:.2f}–{s.max:.2f})"
    text = f"{fmt_seconds(s.median)} ({fmt_seconds(s.min)}–{fmt_seconds(s.max)})"
    if run.get("timing", {}).get("budget_limited"):
        text += f" n={s.n}†"
    return text


def _ms_per_atom(run: dict | None, n_atoms: int) -> str:
    s = per_step(run)
    return "–" if s is None else f"{s.median * 1e3 / n_atoms:.2f}"


def _ratio(item: dict | None, key: str = "speedup") -> str:
    if not item or item.get(key) is None:
        return "–"
    if key == "speedup":
        text = f"**{item['speedup']:.2f}×**"
        if "speedup_min" in item and "speedup_max" in item:
            text += f" ({item['speedup_min']:.2f}–{item['speedup_max']:.2f})"
        return text
    return f"{item[key]:.2f}"


def _sci(value: float | None, fmt: str = ".1e") -> str:
    return "–" if value is None else format(value, fmt)


def _mb(run: dict | None) -> str:
    if not run or run.get("peak_rss_mb") is None:
        return "–"
    return f"{run['peak_rss_mb']:,.0f}"


def _met(value: bool | None) -> str:
    return {True: "✅ met", False: "❌ not met", None: "⚪ not measured"}[value]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _impl_line(entries: list[dict], impl: str) -> str | None:
    for entry in entries:
        run = entry.get("runs", {}).get(impl)
        if run and run.get("implementation"):
            return run["implementation"]
    return None


def _section_sp(results: dict, model: str, entries: list[dict]) -> list[str]:
    has_via = any("via-nnp_lab" in e["runs"] for e in entries)
    header = [
        "system",
        "atoms",
        "ours",
        "upstream",
        "speed-up",
        "ours ms/atom",
        "upstream ms/atom",
        "max ‖ΔF‖ eV/Å",
        "\\|ΔE\\|/atom eV",
        "max \\|Δσ\\| eV/Å³",
        "peak RSS MB ours / upstream",
    ]
    if has_via:
        header += [f"via nnp_lab ({MODELS[model].via_nnp_lab})", "its speed-up"]
    rows = []
    for e in entries:
        runs, cmp_ = e["runs"], e.get("comparison", {})
        o = cmp_.get("ours", {})
        row = [
            e["system"],
            f"{e['n_atoms']:,}",
            _cell(runs.get("ours")),
            _cell(runs.get("upstream")),
            _ratio(o),
            _ms_per_atom(runs.get("ours"), e["n_atoms"]),
            _ms_per_atom(runs.get("upstream"), e["n_atoms"]),
            _sci(o.get("max_force_diff")),
            _sci(o.get("energy_diff_per_atom")),
            _sci(o.get("max_stress_diff")),
            f"{_mb(runs.get('ours'))} / {_mb(runs.get('upstream'))}",
        ]
        if has_via:
            row += [_cell(runs.get("via-nnp_lab")), _ratio(cmp_.get("via-nnp_lab"))]
        rows.append(row)
    return _table(header, rows)


def _section_md(entries: list[dict]) -> list[str]:
    header = [
        "system",
        "atoms",
        "steps per sample",
        "ours per step",
        "upstream per step",
        "speed-up",
        "ours ms/atom/step",
        "upstream ms/atom/step",
        "peak RSS MB ours / upstream",
        "T after run (K) ours / upstream",
    ]
    rows = []
    for e in entries:
        runs = e["runs"]
        o, u = runs.get("ours") or {}, runs.get("upstream") or {}
        temps = "/".join(
            "–" if r.get("final_temperature_K") is None else f"{r['final_temperature_K']:.0f}"
            for r in (o, u)
        )
        rows.append(
            [
                e["system"],
                f"{e['n_atoms']:,}",
                str(e.get("md_block", "–")),
                _cell(o),
                _cell(u),
                _ratio(e.get("comparison", {}).get("ours")),
                _ms_per_atom(o, e["n_atoms"]),
                _ms_per_atom(u, e["n_atoms"]),
                f"{_mb(o)} / {_mb(u)}",
                temps,
            ]
        )
    return _table(header, rows)


def _section_neb(entry: dict) -> list[str]:
    runs = entry["runs"]
    o, u = runs.get("ours") or {}, runs.get("upstream") or {}
    cmp_ = entry.get("comparison", {}).get("ours", {})
    settings = o.get("neb") or u.get("neb") or {}
    prep = (runs.get("prepare") or {}).get("relax", {})

    def val(run: dict, key: str, fmt: str) -> str:
        return "–" if run.get(key) is None else format(run[key], fmt)

    def per_iteration(run: dict) -> str:
        s = per_step(run)
        if s is None or not run.get("n_steps"):
            return "–"
        return fmt_seconds(s.median / run["n_steps"])

    lines = [
        f"{entry.get('description', entry['system'])}: {entry['n_atoms']} atoms per image, "
        f"{settings.get('n_images', '?')} intermediate images, FIRE to fmax "
        f"{settings.get('fmax', '?')} eV/Å (climbing image on below "
        f"{settings.get('climb_after_fmax', '?')} eV/Å), k {settings.get('k', '?')} eV/Å², IDPP "
        "interpolation (included in the time). Endpoints relaxed first with the upstream "
        "calculator (not timed"
        + (f"; {prep['initial']['steps']} and {prep['final']['steps']} FIRE steps" if prep else "")
        + "). Ours evaluates all images in one batched call per iteration; ASE's NEB drives one "
        "upstream calculator per image.",
        "",
    ]
    rows = [
        ["wall time", _cell(o), _cell(u)],
        ["iterations", val(o, "n_steps", "d"), val(u, "n_steps", "d")],
        ["time per iteration", per_iteration(o), per_iteration(u)],
        [
            "forward barrier (eV)",
            val(o, "forward_barrier", ".4f"),
            val(u, "forward_barrier", ".4f"),
        ],
        [
            "backward barrier (eV)",
            val(o, "backward_barrier", ".4f"),
            val(u, "backward_barrier", ".4f"),
        ],
        ["converged", str(o.get("converged", "–")), str(u.get("converged", "–"))],
        ["peak RSS MB", _mb(o), _mb(u)],
    ]
    lines += _table(["", "ours (nnp_lab.neb)", "upstream (ase.mep.NEB)"], rows)
    if cmp_.get("time_ratio") is not None:
        lines += [
            "",
            f"Wall time ours / ASE: **{cmp_['time_ratio']:.2f}** (speed-up "
            f"{_ratio(cmp_)}); barrier difference {cmp_['forward_barrier_diff']:+.4f} eV "
            f"forward, {cmp_['backward_barrier_diff']:+.4f} eV backward.",
        ]
    return lines


def _section_import(entry: dict) -> list[str]:
    runs = entry["runs"]
    o, u = runs.get("ours") or {}, runs.get("upstream") or {}

    def proc(run: dict) -> str:
        p = run.get("process_s")
        if not p:
            return "–"
        return f"{fmt_seconds(p['median'])} ({fmt_seconds(p['min'])}–{fmt_seconds(p['max'])})"

    def child_rss(run: dict) -> str:
        return "–" if run.get("child_peak_rss_mb") is None else f"{run['child_peak_rss_mb']:,.0f}"

    rows = [
        ["from the first import to the energy", _cell(o), _cell(u)],
        ["from process start (interpreter included)", proc(o), proc(u)],
        ["peak RSS MB", child_rss(o), child_rss(u)],
    ]
    cmp_ = entry.get("comparison", {}).get("ours", {})
    lines = _table(
        [
            "",
            "ours: `import nnp_lab; load_potential(); evaluate`",
            "upstream: import + calculator + `get_potential_energy`",
        ],
        rows,
    )
    if cmp_.get("speedup"):
        lines += ["", f"Speed-up (upstream ÷ ours, from the first import): {_ratio(cmp_)}."]
    return lines


def _section_scaling(results: dict, model: str) -> list[str]:
    md = dict(_si_series(results, "md", model))
    md_up = dict(_si_series(results, "md", model, "upstream"))
    sp = dict(_si_series(results, "sp", model))
    sp_up = dict(_si_series(results, "sp", model, "upstream"))
    sizes = sorted(set(md) | set(sp))
    rows = []
    for n in sizes:
        go, gu = _growth_mb(sp.get(n)), _growth_mb(sp_up.get(n))
        rows.append(
            [
                f"{n:,}",
                _ms_per_atom(md.get(n), n),
                _ms_per_atom(md_up.get(n), n),
                _ms_per_atom(sp.get(n), n),
                _ms_per_atom(sp_up.get(n), n),
                _mb(sp.get(n)),
                "–" if go is None else f"{go:,.0f}",
                "–" if go is None else f"{go * 1e3 / n:.0f}",
                _mb(sp_up.get(n)),
                "–" if gu is None else f"{gu * 1e3 / n:.0f}",
            ]
        )
    lines = _table(
        [
            "atoms",
            "MD ours ms/atom/step",
            "MD upstream ms/atom/step",
            "SP ours ms/atom",
            "SP upstream ms/atom",
            "SP ours peak RSS MB",
            "ours growth MB",
            "ours growth kB/atom",
            "SP upstream peak RSS MB",
            "upstream growth kB/atom",
        ],
        rows,
    )
    for impl, series in (("ours", sp), ("upstream", sp_up)):
        mem = memory_linearity(
            [(n, _growth_mb(r)) for n, r in series.items() if r and r.get("status") == "ok"]
        )
        if mem:
            marg = ", ".join(f"{v:.0f}" for v in mem["marginal_kb_per_atom"])
            lines += [
                "",
                f"Memory growth, {impl}: straight-line fit "
                f"{mem['fit_kb_per_atom']:.0f} kB/atom + "
                f"{mem['fit_intercept_mb']:.0f} MB (R² {mem['r2']:.3f}); marginal "
                f"kB/atom between consecutive sizes {marg}; last/previous "
                f"{mem['last_segment_ratio']:.2f} → "
                f"{'linear' if mem['linear'] else 'NOT linear'}.",
            ]
    return lines


def render_markdown(results: dict) -> str:
    """The whole ``RESULTS.md``: goals first, then machine, then per-case tables."""
    machine, versions = results.get("machine", {}), results.get("versions", {})
    model = results.get("default_model", "sevennet-0")
    opts = results.get("options", {})
    cases = results.get("cases", [])
    if results.get("complete"):
        state = "complete"
    elif results.get("interrupted"):
        state = "INTERRUPTED — partial"
    else:
        state = "in progress — partial"
    lines = [
        "# Benchmark results",
        "",
        f"Written by `{results.get('command', 'bench/run.py')}` — started "
        f"{results.get('started', '?')}, {state}"
        + (
            f", finished {results['finished']} ({fmt_seconds(results.get('wall_s'))})"
            if results.get("finished")
            else ""
        )
        + ".",
        ""
        if not opts.get("quick")
        else "\n**Quick mode**: small sizes, short runs, one repeat: a test of the harness, not a "
        "measurement.\n",
        "Every speed figure is measured side by side in this run: ours and the upstream reference "
        "(the model package's own ASE calculator on the same weights, driven by plain ASE) run "
        "one after the other, each in a fresh process. **Speed-up = upstream time ÷ our time** "
        "(> 1: ours is faster). Times are the median of the timed repeats after warm-up, with "
        "(min–max); the speed-up range pairs the extremes. † fewer repeats than planned "
        "(time budget).",
        "",
        "## Goals (issue 5)",
        "",
    ]
    goal_rows = [
        [str(g["id"]), g["goal"], g["measured"], _met(g["met"])] for g in results.get("goals", [])
    ]
    lines += _table(["#", "goal", "measured", "verdict"], goal_rows)
    lines += [
        "",
        f'Default model: `{model}`. "Not measured" means a case the goal needs did not run '
        "(quick mode, `--only`, budget or error).",
        "",
        "## Machine and versions",
        "",
    ]
    mrows = [
        ["CPU", machine.get("cpu", "?")],
        [
            "cores",
            f"{machine.get('cores', '?')} logical, {machine.get('usable_cores', '?')} "
            f"usable; torch threads {machine.get('torch_threads', '?')}",
        ],
        ["RAM", f"{machine.get('ram_gib', '?')} GiB"],
        ["GPU", machine.get("gpu") or "none"],
        [
            "load average (1 min) at start / end",
            f"{machine.get('load_start', '?')} / {machine.get('load_end', '–')}",
        ],
        ["OS", machine.get("os", "?")],
        ["date", f"{results.get('started', '?')} → {results.get('finished', '–')}"],
    ]
    mrows += [[k, str(v)] for k, v in versions.items()]
    lines += _table(["", ""], mrows)

    def of(kind: str, mdl: str | None = None) -> list[dict]:
        return [e for e in cases if e["kind"] == kind and (mdl is None or e["model"] == mdl)]

    models = list(dict.fromkeys(e["model"] for e in cases))
    if of("sp"):
        lines += [
            "",
            "## Single point: energy + forces (+ stress for periodic systems)",
            "",
            "The untimed warm-up call evaluates the structure itself (its results give the "
            "differences); the timed calls evaluate copies displaced by ~0.001 Å, so no "
            "result cache can answer.",
        ]
        for mdl in models:
            entries = of("sp", mdl)
            if not entries:
                continue
            impl = _impl_line(entries, "ours") or "?"
            lines += [
                "",
                f"### {mdl}",
                "",
                f"Ours: `{impl}` via `nnp_lab.load_potential({mdl!r}).evaluate([atoms])`; "
                "upstream: "
                f"`{MODELS[mdl].upstream}` with `get_potential_energy/forces/stress`. "
                "ΔF, ΔE, Δσ: ours minus upstream on the same structure.",
                "",
            ]
            lines += _section_sp(results, mdl, entries)
    if of("md"):
        lines += [
            "",
            "## MD steps (NVT Langevin, 300 K, 1 fs, friction 0.01 fs⁻¹)",
            "",
            "Ours: `nnp_lab.simulate.md.MolecularDynamics` (what `nnp_lab.md` runs; every "
            "per-step check included, a frame recorded every sample); upstream: "
            "`ase.md.langevin.Langevin` with the upstream calculator. Each sample is a "
            "block of steps after the step-0 force call and warm-up block(s).",
        ]
        for mdl in models:
            entries = of("md", mdl)
            if entries:
                lines += ["", f"### {mdl}", ""] + _section_md(entries)
    for entry in of("neb"):
        lines += ["", f"## NEB ({entry['model']})", ""] + _section_neb(entry)
    for entry in of("import"):
        lines += ["", f"## Import → first energy, fresh process ({entry['model']})", ""]
        lines += _section_import(entry)
    if any(e["system"].startswith("si") for e in of("sp", model) + of("md", model)):
        lines += [
            "",
            f"## Scaling and memory: diamond Si ({model})",
            "",
            "Peak RSS is `ru_maxrss` of the case's own process; growth = peak minus the "
            "RSS after loading the model and building the structure (before the first "
            "call).",
            "",
        ]
        lines += _section_scaling(results, model)
    problems = [
        (e["id"], impl, r)
        for e in cases
        for impl, r in e.get("runs", {}).items()
        if r and r.get("status") in ("error", "budget")
    ]
    failed_comparisons = [
        (e["id"], e["comparison"]["error"])
        for e in cases
        if isinstance(e.get("comparison", {}).get("error"), str)
    ]
    if problems or failed_comparisons:
        lines += ["", "## Skipped and failed", ""]
        for cid, impl, r in problems:
            why = (r.get("error") or r.get("note") or "time budget").replace("\n", " ")
            lines.append(f"- `{cid}` {impl}: {r['status']} — {why[:500]}")
        for cid, error in failed_comparisons:
            lines.append(f"- `{cid}`: comparison failed — {error}")
    lines += [
        "",
        "## How it was measured",
        "",
        "- `bench/run.py` runs every (case, implementation) in its own Python process "
        "(`bench/worker.py`), one after the other, so peak RSS is per case and no model cache "
        "is shared. Each process has a time budget (model loading included): repeats stop "
        "when the next one would not fit, and a process past its hard limit is killed and "
        "reported as skipped.",
        "- Single point: one untimed call, then the timed repeats, each a full energy + forces "
        "(+ stress) evaluation (`calc.reset()` before each upstream call).",
        "- MD: the step-0 force call and warm-up block(s) untimed, then timed blocks of "
        "steps; the per-step time is block time ÷ steps per block.",
        "- NEB: one warm-up energy per model instance, then complete NEB runs (interpolation "
        "included) from the same relaxed endpoints with identical settings.",
        "- Import: fresh `python -c` processes; one warm-up process (file cache), then the "
        "timed ones. The child measures from before its first import; the harness measures "
        "the whole process.",
        f"- Options: {', '.join(f'{k}={v}' for k, v in opts.items())}.",
        "",
    ]
    return "\n".join(lines)
