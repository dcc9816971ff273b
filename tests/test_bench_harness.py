"""The benchmark harness (bench/run.py): its statistics, goal verdicts and a quick EMT run.

No timing assertions: the numbers depend on the machine. The end-to-end test runs the harness
in its smallest mode with EMT (no universal model) and checks that RESULTS.md and
results.json are written with the expected structure.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cases import plan, select
from bench.report import evaluate_goals, memory_linearity, render_markdown
from bench.timing import Stats, time_repeats

ROOT = Path(__file__).resolve().parents[1]


def test_stats_median_spread_and_ratio():
    s = Stats.of([3.0, 1.0, 2.0, 10.0])
    assert (s.median, s.min, s.max, s.n) == (2.5, 1.0, 10.0, 4)
    ours, upstream = Stats.of([1.0, 2.0]), Stats.of([4.0, 6.0])
    assert ours.ratio_to(upstream) == (5.0 / 1.5, 4.0 / 2.0, 6.0 / 1.0)
    assert Stats.from_dict(s.to_dict()) == s
    with pytest.raises(ValueError):
        Stats.of([])


def test_time_repeats_excludes_warmup_and_respects_budget():
    calls = []
    timing = time_repeats(lambda: calls.append(1), repeats=3, warmup=2)
    assert len(calls) == 5 and len(timing.samples) == 3 and len(timing.warmup) == 2
    assert not timing.budget_limited
    # A budget already spent: the warm-up runs, no timed repeat starts.
    import time

    timing = time_repeats(lambda: time.sleep(0.01), repeats=3, warmup=1, budget_s=0.0)
    assert timing.samples == [] and timing.budget_limited and timing.stats is None


def test_plan_covers_the_issue_and_only_selects():
    cases = plan()
    ids = {c.id for c in cases}
    for n in (64, 216, 512, 1728, 4096):
        assert f"sp/sevennet-0/si{n}" in ids and f"md/sevennet-0/si{n}" in ids
    for system in ("cu108", "cu500", "pt111_co", "mof74", "mol30"):
        assert f"sp/chgnet-0.3.0/{system}" in ids and f"md/sevennet-0/{system}" in ids
    assert "neb/sevennet-0/cu100_adatom" in ids and "import/sevennet-0/si64" in ids
    assert all({"ours", "upstream"} <= set(c.impls) for c in cases)
    huge = [c for c in cases if c.n_atoms >= 1728]
    assert huge and all(c.repeats <= 3 for c in huge)
    assert [c.id for c in select(cases, ["md/*/si4096"])] == [
        "md/sevennet-0/si4096",
        "md/chgnet-0.3.0/si4096",
    ]
    assert {c.kind for c in select(cases, ["neb"])} == {"neb"}
    with_via = plan(via_nnp_lab=True)
    assert "via-nnp_lab" in next(c for c in with_via if c.id == "sp/sevennet-0/si64").impls
    assert "via-nnp_lab" not in next(c for c in with_via if c.id == "sp/sevennet-0/si4096").impls


def test_memory_linearity_flags_quadratic_growth():
    sizes = [64, 216, 512, 1728, 4096]
    linear = memory_linearity([(n, 5 + 0.2 * n) for n in sizes])
    assert linear["linear"] and abs(linear["fit_kb_per_atom"] - 200) < 1e-6
    quadratic = memory_linearity([(n, 5 + 1e-4 * n * n) for n in sizes])
    assert not quadratic["linear"]
    assert memory_linearity([(64, 1.0), (216, 2.0)]) is None


def _run(status="ok", median=1.0, **extra):
    stats = Stats.of([median * 0.9, median, median * 1.1]).to_dict()
    return {"status": status, "timing": {"stats": stats, "per_step": stats}, **extra}


def test_goal_verdicts_from_data():
    cases = []
    for n in (64, 216, 512):
        cases.append(
            {
                "id": f"md/sevennet-0/si{n}",
                "kind": "md",
                "model": "sevennet-0",
                "system": f"si{n}",
                "n_atoms": n,
                "runs": {},
                "comparison": {"ours": {"speedup": 4.0}},
            }
        )
        cases.append(
            {
                "id": f"sp/sevennet-0/si{n}",
                "kind": "sp",
                "model": "sevennet-0",
                "system": f"si{n}",
                "n_atoms": n,
                "runs": {},
                "comparison": {"ours": {"max_force_diff": 2e-4}},
            }
        )
    cases.append(
        {
            "id": "import/sevennet-0/si64",
            "kind": "import",
            "model": "sevennet-0",
            "system": "si64",
            "n_atoms": 64,
            "runs": {"ours": _run(median=7.0, process_s=Stats.of([8.0]).to_dict())},
            "comparison": {},
        }
    )
    results = {"default_model": "sevennet-0", "cases": cases}
    goals = {g["id"]: g for g in evaluate_goals(results)}
    assert goals[1]["met"] is True
    assert goals[2]["met"] is None and goals[3]["met"] is None  # not measured
    assert goals[4]["met"] is False and "7.00 s" in goals[4]["measured"]
    cases[0]["comparison"]["ours"]["speedup"] = 2.0  # 64 atoms: too slow
    assert {g["id"]: g for g in evaluate_goals(results)}[1]["met"] is False
    del cases[0]["comparison"]["ours"]["speedup"]  # missing, others pass: not measured
    assert {g["id"]: g for g in evaluate_goals(results)}[1]["met"] is None
    text = render_markdown({**results, "goals": evaluate_goals(results)})
    assert text.index("## Goals (issue 5)") < text.index("## Machine and versions")


def test_quick_emt_run_writes_results(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--quick",
            "--models",
            "emt",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=800,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "goal 1" in proc.stdout

    results = json.loads((tmp_path / "results.json").read_text())
    assert results["complete"] is True and results["options"]["quick"] is True
    for key in ("cpu", "cores", "ram_gib", "gpu", "torch_threads"):
        assert key in results["machine"]
    for pkg in ("python", "torch", "sevenn", "chgnet", "ase", "nnp_lab"):
        assert results["versions"][pkg]
    assert "git" in results["versions"]["nnp_lab"]

    by_id = {c["id"]: c for c in results["cases"]}
    assert set(by_id) == {
        "sp/emt/cu108",
        "md/emt/cu108",
        "neb/emt/cu100_adatom_small",
        "import/emt/cu64",
    }
    for case in by_id.values():
        for impl in ("ours", "upstream"):
            run = case["runs"][impl]
            assert run["status"] == "ok", (case["id"], impl, run.get("error"))
            stats = run["timing"]["stats"]
            assert stats["min"] <= stats["median"] <= stats["max"] and stats["n"] >= 1
            assert run["peak_rss_mb"] > 0
        assert case["comparison"]["ours"]["speedup"] > 0

    sp = by_id["sp/emt/cu108"]
    assert sp["comparison"]["ours"]["max_force_diff"] < 1e-8  # the same EMT code both sides
    assert sp["runs"]["ours"]["baseline_rss_mb"] > 0
    md = by_id["md/emt/cu108"]
    assert md["runs"]["ours"]["timing"]["per_step"]["median"] > 0
    neb = by_id["neb/emt/cu100_adatom_small"]
    assert neb["runs"]["prepare"]["status"] == "ok"
    assert abs(neb["comparison"]["ours"]["forward_barrier_diff"]) < 1e-3
    imp = by_id["import/emt/cu64"]
    ours = imp["runs"]["ours"]
    assert ours["process_s"]["median"] >= ours["timing"]["stats"]["median"]  # interpreter start

    assert [g["id"] for g in results["goals"]] == [1, 2, 3, 4]
    assert all(g["met"] is None for g in results["goals"])  # quick mode measures no goal

    text = (tmp_path / "RESULTS.md").read_text()
    assert text.startswith("# Benchmark results")
    order = [
        "## Goals (issue 5)",
        "## Machine and versions",
        "## Single point",
        "## MD steps",
        "## NEB",
        "## Import",
        "## How it was measured",
    ]
    positions = [text.index(heading) for heading in order]
    assert positions == sorted(positions)
    assert "Quick mode" in text
