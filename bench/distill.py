"""Distil light potentials from SevenNet-0 and measure them (issue 4 goals). Prints numbers.

Systems
-------
``lfp``   Li-vacancy LiFePO4 1x1x2 supercell (55 atoms, Li7Fe8P8O32): train at 600 and
          1000 K, test at 800 K (a temperature it is not trained at).
``slab``  Cu(111) 3x3, 3 layers (bottom one fixed) + O on an fcc site (28 atoms): train at
          300 and 700 K, test at 500 K.

For each system:

1. ``nnp_lab.models.distill`` with the teacher (time budget ``--budget``, default 1800 s);
   model, training data and test frames go to ``bench/results/``.
2. Speed: the same NVT MD (``nnp_lab.md``, Langevin, 1 fs) with the teacher and with the
   light model on the same structure, median time per step over ``--repeats`` runs.
3. Accuracy: force / energy errors against the teacher on the held-out teacher-MD frames at
   the test temperature (from the distill report), plus the errors on a second, fresh set
   of teacher-labelled frames taken from the *light* model's own MD at the test
   temperature (checks the model where it actually goes).
4. Stability: ``--nvt-ps`` (default 10) ps of NVT with the light model at the test
   temperature: smallest interatomic distance over the run, largest force, mean
   temperature, then 1 ps of NVE from the final state for the energy drift.

Usage::

    PYTHONPATH=. .venv/bin/python bench/distill.py lfp slab --budget 1800
    PYTHONPATH=. .venv/bin/python bench/distill.py lfp --reuse     # measure a saved model

Results are printed and written to ``bench/results/distill-<system>.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import torch  # noqa: E402

import nnp_lab  # noqa: E402
from nnp_lab import build  # noqa: E402
from nnp_lab.models import DistillReport, distill  # noqa: E402
from nnp_lab.models.data import min_distance  # noqa: E402
from nnp_lab.models.training import evaluate_model  # noqa: E402

RESULTS = HERE / "results"


def lfp_cell():
    """LiFePO4 1x1x2 (56 atoms) with the first Li removed: 55 atoms."""
    cell = build.supercell(build.crystal("LiFePO4"), (1, 1, 2))
    li = [a.index for a in cell if a.symbol == "Li"][0]
    return build.vacancy(cell, li)


def cu_slab_o(teacher):
    """Cu(111) 3x3x3 (bottom layer fixed) + O on an fcc site, relaxed with the teacher."""
    slab = build.surface(
        build.bulk("Cu", "fcc", a=3.63),
        (1, 1, 1),
        layers=3,
        vacuum=7.0,
        fixed_layers=1,
        size=(3, 3),
    )
    atoms = build.add_adsorbate(slab, "O", "fcc", height=1.2)
    res = nnp_lab.relax(atoms, teacher, fmax=0.1, steps=80)
    return res.atoms


SYSTEMS = {
    "lfp": {"train": (600.0, 1000.0), "test": 800.0},
    "slab": {"train": (300.0, 700.0), "test": 500.0},
}


def step_time(atoms, potential, steps, repeats, temperature):
    """Median wall time per MD step (s) over ``repeats`` runs of ``steps`` steps."""
    times = []
    for r in range(repeats):
        res = nnp_lab.md(
            atoms,
            potential,
            temperature_K=temperature,
            steps=steps,
            timestep_fs=1.0,
            interval=max(steps, 1),
            seed=r,
        )
        times.append(res.provenance["wall_time_s"] / steps)
    return statistics.median(times), times


def breakdown(atoms, light, n=100):
    """Where a light MD step goes: neighbour list + graph, model energy+forces, the whole
    ``Potential.evaluate`` call (median ms of ``n`` calls each)."""
    from nnp_lab.potentials.torch_model import GraphBatch

    def median_ms(fn):
        fn()
        times = []
        for _ in range(n):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return 1000 * statistics.median(times)

    dtype = next(light.model.parameters()).dtype
    graph = GraphBatch.from_structures([atoms], light.cutoff, dtype=dtype)
    return {
        "graph": median_ms(lambda: GraphBatch.from_structures([atoms], light.cutoff, dtype=dtype)),
        "model_energy_forces": median_ms(
            lambda: graph.energy_forces_virial(light.model, stress=False)
        ),
        "evaluate": median_ms(
            lambda: light.evaluate([atoms], ("energy", "forces"), validate=False)
        ),
    }


def stability(atoms, light, temperature, nvt_ps, seed=0):
    steps = int(round(nvt_ps * 1000))
    t = time.perf_counter()
    res = nnp_lab.md(
        atoms,
        light,
        temperature_K=temperature,
        steps=steps,
        timestep_fs=1.0,
        interval=20,
        seed=seed,
    )
    wall = time.perf_counter() - t
    dmin = min(min_distance(f, 3.0) for f in res.frames)
    fmax = max(float(np.linalg.norm(f.calc.results["forces"], axis=1).max()) for f in res.frames)
    half = len(res.temperature_K) // 2
    n = len(atoms)
    # potential energy trend over the run (a slowly melting/decomposing cell drifts)
    q = max(len(res.potential_energy) // 4, 1)
    epot_trend = float(np.mean(res.potential_energy[-q:]) - np.mean(res.potential_energy[:q])) / n
    nve = nnp_lab.md(
        res.atoms,
        light,
        ensemble="nve",
        steps=1000,
        timestep_fs=1.0,
        interval=10,
        velocities="keep",
    )
    etot = nve.total_energy
    slope = float(np.polyfit(nve.time_ps, etot, 1)[0]) / n  # eV/atom/ps
    return {
        "nvt_ps": res.time_ps[-1],
        "nvt_steps": res.n_steps,
        "nvt_wall_s": wall,
        "stopped": bool(res.stopped),
        "min_distance_A": dmin,
        "min_distance_start_A": min_distance(atoms, 3.0),
        "max_force_eV_A": fmax,
        "mean_T_second_half_K": float(np.mean(res.temperature_K[half:])),
        "epot_last_minus_first_quarter_meV_atom": 1000 * epot_trend,
        "nve_drift_meV_atom_ps": 1000 * slope,
        "nve_max_abs_dev_meV_atom": 1000 * float(np.max(np.abs(etot - etot[0]))) / n,
    }, res


def fresh_test(light_md, teacher, n=10):
    """Teacher labels of ``n`` frames from the light model's own MD (second half)."""
    frames = light_md.frames[len(light_md.frames) // 2 :]
    idx = np.linspace(0, len(frames) - 1, n).round().astype(int)
    picked = []
    for i in idx:
        f = frames[i].copy()
        f.calc = None
        picked.append(f)
    results = teacher.evaluate(picked)
    from ase.calculators.singlepoint import SinglePointCalculator

    for f, r in zip(picked, results):
        f.calc = SinglePointCalculator(f, **r)
    return picked


def run(system, args, teacher):
    spec = SYSTEMS[system]
    atoms = lfp_cell() if system == "lfp" else cu_slab_o(teacher)
    path = RESULTS / f"distill-{system}.pt"
    out = {
        "system": system,
        "formula": atoms.get_chemical_formula(),
        "n_atoms": len(atoms),
        "train_temperatures_K": spec["train"],
        "test_temperature_K": spec["test"],
        "torch_threads": torch.get_num_threads(),
        "load_before": os.getloadavg(),
    }
    print(f"\n=== {system}: {atoms.get_chemical_formula()} ({len(atoms)} atoms) ===", flush=True)
    if args.reuse and path.exists():
        light = nnp_lab.potentials.torch_model.load_model_file(path)
        report = DistillReport.from_model_file(path).to_dict()
    else:
        t = time.perf_counter()
        light, result = distill(
            atoms,
            teacher,
            temperatures_K=spec["train"],
            test_temperatures_K=spec["test"],
            architecture=args.architecture,
            time_budget_s=args.budget,
            path=path,
            seed=args.seed,
            committee_size=args.committee,
            progress=True,
            timestep_fs=args.timestep,
            n_test=args.n_test,
            test_md_steps=args.test_steps,
            replicas_per_temperature=args.replicas,
            frames_per_round=args.frames_per_round,
            md_steps_per_round=args.md_steps,
            max_rounds=args.max_rounds,
        )
        report = result.to_dict()
        out["distill_wall_s"] = time.perf_counter() - t
    out["distill"] = {k: v for k, v in report.items() if k != "rounds"}
    out["rounds"] = report["rounds"]
    print(
        f"distill: {report['wall_time_s']:.0f} s, stop: {report['stop_reason']}, "
        f"{report['n_frames']} training frames, {report['n_rounds']} rounds, "
        f"{report['n_parameters']} parameters ({report['architecture']})"
    )
    for r in report["rounds"]:
        print(
            "  round {round}: +{n_new} -> {n_frames} frames, max dis {max_disagreement:.3f},"
            " stopped {stopped_trajectories}, val F-MAE {val_force_mae:.3f},"
            " test F-MAE {test:.3f}, {time_s:.0f} s".format(
                test=r.get("test_force_mae", float("nan")), **r
            )
        )
    print(
        f"held-out teacher MD at {spec['test']:.0f} K ({report['n_test']} frames): "
        f"force MAE {report['force_mae']:.4f} eV/Å, RMSE {report['force_rmse']:.4f}, "
        f"energy MAE {1000 * report['energy_mae_per_atom']:.2f} meV/atom",
        flush=True,
    )

    # -- speed -------------------------------------------------------------------------------
    out["load_speed"] = os.getloadavg()
    t_teacher, all_t = step_time(atoms, teacher, args.teacher_steps, args.repeats, spec["test"])
    t_light, all_l = step_time(atoms, light, args.light_steps, args.repeats, spec["test"])
    out["speed"] = {
        "teacher_s_per_step": t_teacher,
        "light_s_per_step": t_light,
        "ratio": t_teacher / t_light,
        "teacher_runs": all_t,
        "light_runs": all_l,
    }
    print(
        f"MD step ({len(atoms)} atoms, nnp_lab.md NVT, torch threads "
        f"{torch.get_num_threads()}): teacher {1000 * t_teacher:.1f} ms, light "
        f"{1000 * t_light:.2f} ms -> {t_teacher / t_light:.0f}x faster "
        f"(load {out['load_speed'][0]:.1f})",
        flush=True,
    )
    upstream = None
    if args.upstream:
        # the same weights through the upstream sevenn model (the registry's sevennet-0
        # uses nnp_lab's own faster implementation since the speed work)
        from nnp_lab.potentials.sevennet import _MODELS, SevenNetPotential, _checkpoint_path

        upstream = SevenNetPotential(
            _checkpoint_path(_MODELS["sevennet-0"][0]), name="sevennet-0 (upstream sevenn)"
        )
        t_up, all_u = step_time(atoms, upstream, args.teacher_steps, args.repeats, spec["test"])
        out["speed"].update(
            upstream_s_per_step=t_up, upstream_runs=all_u, ratio_upstream=t_up / t_light
        )
        print(
            f"  upstream sevenn SevenNet-0: {1000 * t_up:.1f} ms -> light is "
            f"{t_up / t_light:.0f}x faster",
            flush=True,
        )
    if args.scaling:
        # the light model's step is dominated by a fixed per-call cost (op latency), the
        # teacher's grows with the atoms: the ratio grows with the cell. Larger periodic
        # copies of the same cell (in-plane for the slab) keep every local environment.
        rows = []
        for reps in ((1, 2, 1), (2, 2, 1)) if system == "lfp" else ((2, 1, 1), (2, 2, 1)):
            big = build.supercell(atoms, reps)
            row = {"n_atoms": len(big), "repeat": reps}
            for key, pot, steps in (
                ("teacher", teacher, max(args.teacher_steps // 2, 3)),
                ("light", light, max(args.light_steps // 3, 50)),
                ("upstream", upstream, max(args.teacher_steps // 2, 3)),
            ):
                if pot is not None:
                    row[f"{key}_s_per_step"] = step_time(
                        big, pot, steps, args.repeats, spec["test"]
                    )[0]
            row["ratio"] = row["teacher_s_per_step"] / row["light_s_per_step"]
            text = (
                f"  {len(big)} atoms: teacher {1000 * row['teacher_s_per_step']:.0f} ms, "
                f"light {1000 * row['light_s_per_step']:.1f} ms -> {row['ratio']:.0f}x"
            )
            if upstream is not None:
                row["ratio_upstream"] = row["upstream_s_per_step"] / row["light_s_per_step"]
                text += (
                    f"; upstream {1000 * row['upstream_s_per_step']:.0f} ms -> "
                    f"{row['ratio_upstream']:.0f}x"
                )
            rows.append(row)
            print(text, flush=True)
        out["speed"]["scaling"] = rows
    out["speed"]["breakdown_ms"] = breakdown(atoms, light)
    print(
        "  light step breakdown (ms): "
        + ", ".join(f"{k} {v:.2f}" for k, v in out["speed"]["breakdown_ms"].items()),
        flush=True,
    )

    # -- stability + fresh accuracy check ------------------------------------------------
    stab, light_md = stability(atoms, light, spec["test"], args.nvt_ps, seed=args.seed)
    out["stability"] = stab
    print(
        "stability: {nvt_ps:.1f} ps NVT in {nvt_wall_s:.0f} s; min distance "
        "{min_distance_A:.2f} Å (start {min_distance_start_A:.2f}), max force "
        "{max_force_eV_A:.2f} eV/Å, <T> {mean_T_second_half_K:.0f} K, Epot trend "
        "{epot_last_minus_first_quarter_meV_atom:+.1f} meV/atom; NVE 1 ps drift "
        "{nve_drift_meV_atom_ps:+.2f} meV/atom/ps (max dev {nve_max_abs_dev_meV_atom:.2f})".format(
            **stab
        ),
        flush=True,
    )
    fresh = fresh_test(light_md, teacher, n=args.fresh)
    err = evaluate_model(light.model, fresh)
    out["light_md_frames_vs_teacher"] = err
    print(
        f"frames from the light model's own {spec['test']:.0f} K MD vs teacher "
        f"({len(fresh)}): force MAE {err['force_mae']:.4f} eV/Å, energy MAE "
        f"{1000 * err['energy_mae_per_atom']:.2f} meV/atom",
        flush=True,
    )
    out["load_after"] = os.getloadavg()
    (RESULTS / f"distill-{system}.json").write_text(json.dumps(out, indent=1, default=float))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("systems", nargs="*", default=["lfp", "slab"], choices=list(SYSTEMS))
    parser.add_argument("--budget", type=float, default=1800.0, help="distill time budget, s")
    parser.add_argument("--architecture", default="teanet")
    parser.add_argument("--committee", type=int, default=2)
    parser.add_argument(
        "--replicas", type=int, default=2, help="student MD trajectories per training temperature"
    )
    parser.add_argument("--frames-per-round", type=int, default=32)
    parser.add_argument("--md-steps", type=int, default=300, help="student MD steps per round")
    parser.add_argument("--max-rounds", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--timestep",
        type=float,
        default=2.0,
        help="MD time step (fs) of the distillation runs (teacher and student)",
    )
    parser.add_argument("--n-test", type=int, default=20, help="held-out test frames")
    parser.add_argument(
        "--test-steps",
        type=int,
        default=240,
        help="steps of the teacher test MD (frames from its second half)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for everything (teacher and light model)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--teacher-steps", type=int, default=10)
    parser.add_argument("--light-steps", type=int, default=300)
    parser.add_argument("--nvt-ps", type=float, default=10.0)
    parser.add_argument("--fresh", type=int, default=10)
    parser.add_argument("--reuse", action="store_true", help="measure the saved model")
    parser.add_argument(
        "--scaling",
        action="store_true",
        help="also time 2x and 4x larger cells (the slab repeated in-plane)",
    )
    parser.add_argument(
        "--upstream",
        action="store_true",
        help="also time SevenNet-0 through the upstream sevenn model",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for name in (
        "nnp_lab.models.training",
        "nnp_lab.models.data",
        "nnp_lab.potentials.registry",
        "nnp_lab.simulate",
    ):
        logging.getLogger(name).setLevel(logging.WARNING)
    RESULTS.mkdir(exist_ok=True)
    teacher = nnp_lab.load_potential("sevennet-0")
    for system in args.systems:
        run(system, args, teacher)


if __name__ == "__main__":
    main()
