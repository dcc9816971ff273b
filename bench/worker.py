"""Measure one implementation of one benchmark case in this fresh process.

Started by ``bench/run.py`` as ``python bench/worker.py SPEC.json OUT.json``; never imported by
the harness itself. Running each (case, implementation) in its own process gives each its own
peak RSS and keeps model caches from leaking between cases.

``SPEC.json`` holds the :class:`bench.cases.Case` (as a dict), the implementation name, a work
directory (shared arrays such as forces, NEB endpoints) and the budget. ``OUT.json`` is
rewritten after every phase and every timed sample, so a process killed for exceeding its
budget still leaves what it measured. Keys written (all optional except ``status``):

``status``
    ``"running"``, ``"ok"``, ``"budget"`` (no timed sample fit in the budget) or ``"error"``.
``load_s``
    Model / calculator construction time.
``timing``
    ``{"samples_s", "warmup_s", "requested", "budget_limited", "stats"}``; for MD the samples
    are blocks of ``md_block`` steps and ``per_step`` holds the per-step :class:`Stats`.
``baseline_rss_mb``, ``peak_rss_mb``
    Resident memory after loading the model and building the structure, and the process peak.
``wall_s``
    Process lifetime from the first line of this module.
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.cases import MODELS, NEB_SYSTEMS, build_system, import_system_code, neb_endpoints  # noqa: E402
from bench.timing import Stats, Timing, current_rss_mb, peak_rss_mb, time_repeats  # noqa: E402

#: Langevin NVT settings shared by both MD loops (ours uses the same defaults).
MD_TEMPERATURE_K = 300.0
MD_TIMESTEP_FS = 1.0
MD_FRICTION_PER_FS = 0.01
MD_SEED = 1


class Record(dict):
    """The worker's output: a dict written atomically to ``path`` on every :meth:`save`."""

    def __init__(self, path: Path, **initial: Any) -> None:
        super().__init__(initial)
        self.path = path

    def save(self) -> None:
        self["peak_rss_mb"] = round(peak_rss_mb(), 1)
        self["wall_s"] = time.perf_counter() - T_START
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self, indent=1, default=_jsonable))
        os.replace(tmp, self.path)

    def timing(self, timing: Timing, *, per_sample: float = 1.0) -> None:
        """Store a :class:`Timing` (``per_sample`` scales samples to per-step values)."""
        data: dict[str, Any] = {
            "samples_s": timing.samples,
            "warmup_s": timing.warmup,
            "requested": timing.requested,
            "budget_limited": timing.budget_limited,
        }
        if timing.stats is not None:
            data["stats"] = timing.stats.to_dict()
            data["per_step"] = timing.stats.scaled(per_sample).to_dict()
        self["timing"] = data
        self.save()


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


# --------------------------------------------------------------------------------------
# Implementations
# --------------------------------------------------------------------------------------
def upstream_factory(model: str):
    """A function returning a new upstream ASE calculator (the model package's own)."""
    spec = MODELS[model]
    namespace: dict[str, Any] = {}
    exec(spec.upstream_import, namespace)  # noqa: S102 - our own constant source

    def make():
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            # sevenn warns that no tensor-product accelerator is enabled; chgnet prints.
            warnings.simplefilter("ignore")
            return eval(spec.upstream_calculator, namespace)  # noqa: S307

    return make


def load_ours(name: str, rec: Record):
    """``nnp_lab.load_potential(name)``, recording which class implements it."""
    from nnp_lab import load_potential

    pot = load_potential(name, device="auto")
    rec["implementation"] = f"{type(pot).__module__}.{type(pot).__qualname__}"
    rec["device"] = str(getattr(pot, "device", "?"))
    return pot


def ours_langevin(atoms, potential, *, steps: int, interval: int):
    """Our ``MolecularDynamics`` with the shared Langevin settings (NVT, ``MD_*``)."""
    from nnp_lab.simulate import MolecularDynamics

    return MolecularDynamics(
        atoms,
        potential,
        ensemble="nvt",
        thermostat="langevin",
        temperature_K=MD_TEMPERATURE_K,
        timestep_fs=MD_TIMESTEP_FS,
        friction_per_fs=MD_FRICTION_PER_FS,
        steps=steps,
        interval=interval,
        seed=MD_SEED,
    )


def upstream_langevin(atoms):
    """``ase.md.langevin.Langevin`` on ``atoms`` (calculator attached) with the same settings,
    Maxwell–Boltzmann velocities from the same seed."""
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

    rng = np.random.default_rng(MD_SEED)
    MaxwellBoltzmannDistribution(atoms, temperature_K=MD_TEMPERATURE_K, rng=rng)
    if not atoms.constraints:
        Stationary(atoms)
    return Langevin(
        atoms,
        timestep=MD_TIMESTEP_FS * units.fs,
        temperature_K=MD_TEMPERATURE_K,
        friction=MD_FRICTION_PER_FS / units.fs,
        fixcm=False,
        rng=rng,
    )


def _potential_name(case: dict, impl: str) -> str:
    if impl == "via-nnp_lab":
        return MODELS[case["model"]].via_nnp_lab
    return case["model"]


def _threads(rec: Record) -> None:
    if "torch" in sys.modules:
        rec["torch_threads"] = sys.modules["torch"].get_num_threads()


# --------------------------------------------------------------------------------------
# Case kinds
# --------------------------------------------------------------------------------------
def _variants(atoms, n: int) -> list:
    """``atoms`` followed by ``n`` copies displaced by ~0.001 Å (each with its own seed).

    Every timed single point gets positions it has not seen before, so no result cache (ASE's
    ``check_state``, or one inside a potential) can answer instead of the model.
    """
    out = [atoms]
    for seed in range(1, n + 1):
        other = atoms.copy()
        other.positions = other.positions + np.random.default_rng(seed).normal(
            0.0, 1e-3, other.positions.shape
        )
        out.append(other)
    return out


def run_sp(case: dict, impl: str, rec: Record, work: Path, budget: float) -> None:
    """Single point: energy, forces and (periodic systems) stress.

    The first (warm-up) call evaluates the case's structure; its results are saved for the
    comparison with upstream. The timed calls evaluate slightly displaced copies.
    """
    atoms = build_system(case["system"])
    periodic = bool(atoms.pbc.any())
    props = ("energy", "forces", "stress") if periodic else ("energy", "forces")
    rec.update(n_atoms=len(atoms), formula=atoms.get_chemical_formula(), properties=props)
    structures = _variants(atoms, case["repeats"])
    calls = 0
    first: dict[str, Any] = {}
    t = time.perf_counter()
    if impl in ("ours", "via-nnp_lab"):
        pot = load_ours(_potential_name(case, impl), rec)

        def evaluate(target) -> dict:
            return pot.evaluate([target], props)[0]
    else:
        calc = upstream_factory(case["model"])()
        rec["implementation"] = MODELS[case["model"]].upstream
        mine = atoms.copy()
        mine.calc = calc

        def evaluate(target) -> dict:
            calc.reset()
            mine.positions = target.positions  # plain copy: constraints do not apply here
            out = {"energy": mine.get_potential_energy()}
            mine.get_forces()
            # The calculator's raw forces: get_forces() zeroes atoms fixed by FixAtoms.
            out["forces"] = np.array(calc.results["forces"])
            if periodic:
                out["stress"] = mine.get_stress(voigt=True)  # Voigt, whatever the calculator keeps
            return out

    def call() -> None:
        nonlocal calls
        result = evaluate(structures[calls % len(structures)])
        if calls == 0:
            first.update(result)
        calls += 1

    rec["load_s"] = time.perf_counter() - t
    rec["baseline_rss_mb"] = round(current_rss_mb(), 1)
    _threads(rec)
    rec.save()
    timing = time_repeats(
        call,
        repeats=case["repeats"],
        warmup=case["warmup"],
        budget_s=budget,
        started=T_START,
        on_sample=rec.timing,
    )
    rec.timing(timing)
    if first:
        np.savez(
            work / f"{_slug(case['id'])}__{impl}.npz",
            **{k: np.asarray(v, dtype=np.float64) for k, v in first.items()},
        )
        rec["energy"] = float(first["energy"])
    rec["status"] = "ok" if timing.samples else "budget"


def run_md(case: dict, impl: str, rec: Record, work: Path, budget: float) -> None:
    """NVT Langevin MD: time blocks of ``md_block`` steps after the step-0 force call."""
    atoms = build_system(case["system"])
    block = int(case["md_block"])
    total = block * (case["warmup"] + case["repeats"])
    rec.update(
        n_atoms=len(atoms),
        formula=atoms.get_chemical_formula(),
        md_block=block,
        md=f"NVT Langevin {MD_TEMPERATURE_K:g} K, {MD_TIMESTEP_FS:g} fs, friction "
        f"{MD_FRICTION_PER_FS:g} fs⁻¹",
    )
    t = time.perf_counter()
    if impl == "ours":
        pot = load_ours(case["model"], rec)
        rec["load_s"] = time.perf_counter() - t
        run = ours_langevin(atoms, pot, steps=total, interval=block)
        generator = run.irun()  # yields at step 0 and after every ``block`` steps

        def advance() -> None:
            next(generator)

        def temperature() -> float:
            return float(run.atoms.get_temperature())
    else:
        calc = upstream_factory(case["model"])()
        rec["implementation"] = MODELS[case["model"]].upstream + " + ase.md.langevin.Langevin"
        rec["load_s"] = time.perf_counter() - t
        mine = atoms.copy()
        mine.calc = calc
        dyn = upstream_langevin(mine)
        steps = dyn.irun(steps=total)  # yields at step 0 and after every step
        first = True

        def advance() -> None:
            nonlocal first
            for _ in range(1 if first else block):
                next(steps)
            first = False

        def temperature() -> float:
            return float(mine.get_temperature())

    rec["baseline_rss_mb"] = round(current_rss_mb(), 1)
    t = time.perf_counter()
    advance()  # step 0: velocities and the first force call (a warm-up model call)
    rec["first_call_s"] = time.perf_counter() - t
    _threads(rec)
    rec.save()
    timing = time_repeats(
        advance,
        repeats=case["repeats"],
        warmup=case["warmup"],
        budget_s=budget,
        started=T_START,
        on_sample=lambda tm: rec.timing(tm, per_sample=1 / block),
    )
    rec.timing(timing, per_sample=1 / block)
    rec["final_temperature_K"] = temperature()
    rec["status"] = "ok" if timing.samples else "budget"


def _neb_file(case: dict, work: Path) -> Path:
    return work / f"{_slug(case['id'])}__endpoints.traj"


def run_neb_prepare(case: dict, impl: str, rec: Record, work: Path, budget: float) -> None:
    """Relax both NEB endpoints with the upstream calculator (not timed); save them."""
    from ase.io import write
    from ase.optimize import FIRE

    spec = NEB_SYSTEMS[case["system"]]
    initial, final = neb_endpoints(case["system"])
    make = upstream_factory(case["model"])
    fmax = spec.relax_fmax
    rec["relax"] = {}
    for label, atoms in (("initial", initial), ("final", final)):
        atoms.calc = make()
        opt = FIRE(atoms, logfile=None)
        converged = bool(opt.run(fmax=fmax, steps=spec.relax_steps))
        rec["relax"][label] = {
            "energy": float(atoms.get_potential_energy()),
            "steps": int(opt.nsteps),
            "converged": converged,
            "fmax": fmax,
        }
        rec.save()
    write(_neb_file(case, work), [initial, final])
    rec.update(
        n_atoms=len(initial),
        formula=initial.get_chemical_formula(),
        implementation=MODELS[case["model"]].upstream + " + ase.optimize.FIRE",
        status="ok",
    )


def run_neb(case: dict, impl: str, rec: Record, work: Path, budget: float) -> None:
    """A complete climbing-image NEB from the prepared endpoints (interpolation included)."""
    from ase.io import read

    spec = NEB_SYSTEMS[case["system"]]
    initial, final = read(_neb_file(case, work), ":")
    for atoms in (initial, final):
        atoms.calc = None
    settings = {
        "n_images": spec.n_images,
        "fmax": spec.fmax,
        "steps": spec.steps,
        "k": 0.1,
        "optimizer": "FIRE",
        "interpolation": "idpp",
        "climb": True,
        "climb_after_fmax": 0.5,
        "method": "improvedtangent",
        "mic": False,
    }
    rec.update(n_atoms=len(initial), formula=initial.get_chemical_formula(), neb=settings)
    outcomes: list[dict] = []
    t = time.perf_counter()
    if impl == "ours":
        from nnp_lab.simulate import neb

        pot = load_ours(case["model"], rec)
        rec["load_s"] = time.perf_counter() - t
        pot.evaluate([initial])  # warm-up model call

        def once() -> None:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                res = neb(
                    initial,
                    final,
                    pot,
                    n_images=spec.n_images,
                    climb=True,
                    fmax=spec.fmax,
                    steps=spec.steps,
                    interpolation="idpp",
                    optimizer="FIRE",
                    k=0.1,
                    climb_after_fmax=0.5,
                    method="improvedtangent",
                    mic=False,
                )
            outcomes.append(
                {
                    "forward_barrier": res.forward_barrier,
                    "backward_barrier": res.backward_barrier,
                    "n_steps": res.n_steps,
                    "converged": res.converged,
                    "fmax": res.fmax,
                    "energies": res.energies.tolist(),
                    "warnings": [str(w.message) for w in caught],
                }
            )
    else:
        make = upstream_factory(case["model"])
        calcs = [make() for _ in range(spec.n_images + 2)]  # one calculator per image
        rec["implementation"] = (
            MODELS[case["model"]].upstream + " per image + ase.mep.NEB + ase.optimize.FIRE"
        )
        rec["load_s"] = time.perf_counter() - t
        for calc in calcs:  # warm-up: one call per calculator
            warm = initial.copy()
            warm.calc = calc
            warm.get_potential_energy()

        def once() -> None:
            outcomes.append(_ase_neb(initial, final, calcs, settings))

    rec["baseline_rss_mb"] = round(current_rss_mb(), 1)
    _threads(rec)
    rec.save()

    def on_sample(timing: Timing) -> None:
        rec["runs"] = outcomes
        rec.timing(timing)

    timing = time_repeats(
        once,
        repeats=case["repeats"],
        warmup=0,
        budget_s=budget,
        started=T_START,
        on_sample=on_sample,
    )
    on_sample(timing)
    if outcomes:
        rec.update(
            {
                k: outcomes[-1][k]
                for k in ("forward_barrier", "backward_barrier", "n_steps", "converged")
            }
        )
    rec["status"] = "ok" if timing.samples else "budget"


def _ase_neb(initial, final, calcs, settings: dict) -> dict:
    """Plain ASE: the same band, projection, optimizer and two-stage climbing as nnp_lab.neb."""
    from ase.mep import NEB
    from ase.optimize import FIRE

    n = settings["n_images"]
    images = [initial.copy() for _ in range(n + 1)] + [final.copy()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        NEB(images, k=settings["k"], method=settings["method"]).interpolate(
            method=settings["interpolation"], mic=settings["mic"]
        )
    for image, calc in zip(images, calcs):
        calc.reset()
        image.calc = calc
    band = NEB(images, k=settings["k"], climb=False, method=settings["method"])
    stage1 = FIRE(band, logfile=None)
    relaxed = stage1.run(
        fmax=max(settings["climb_after_fmax"], settings["fmax"]), steps=settings["steps"]
    )
    n_steps = int(stage1.nsteps)
    converged = False
    if relaxed:
        band.climb = True
        stage2 = FIRE(band, logfile=None)
        converged = bool(stage2.run(fmax=settings["fmax"], steps=settings["steps"] - n_steps))
        n_steps += int(stage2.nsteps)
    energies = np.array([image.get_potential_energy() for image in images])
    forces = band.get_forces()
    return {
        "forward_barrier": float(energies.max() - energies[0]),
        "backward_barrier": float(energies.max() - energies[-1]),
        "n_steps": n_steps,
        "converged": converged,
        "fmax": float(np.sqrt((forces**2).sum(axis=1)).max()),
        "energies": energies.tolist(),
        "warnings": [],
    }


# The fresh-process snippets. ``t`` starts before the first import of the package.
_IMPORT_OURS = """\
import time; t = time.perf_counter()
import json, resource
import nnp_lab
from ase.build import bulk
pot = nnp_lab.load_potential({model!r})
atoms = {system}
energy = pot.evaluate([atoms])[0]["energy"]
print(json.dumps({{"inner_s": time.perf_counter() - t, "energy": energy,
                   "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}))
"""
_IMPORT_UPSTREAM = """\
import time; t = time.perf_counter()
import json, resource, warnings
warnings.simplefilter("ignore")
{upstream_import}
from ase.build import bulk
atoms = {system}
atoms.calc = {upstream_calculator}
energy = atoms.get_potential_energy()
print(json.dumps({{"inner_s": time.perf_counter() - t, "energy": energy,
                   "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}))
"""


def run_import(case: dict, impl: str, rec: Record, work: Path, budget: float) -> None:
    """Fresh interpreters: wall time from process start and from the first import."""
    spec = MODELS[case["model"]]
    system = import_system_code(case["system"])
    if impl == "ours":
        code = _IMPORT_OURS.format(model=case["model"], system=system)
    else:
        code = _IMPORT_UPSTREAM.format(
            upstream_import=spec.upstream_import,
            system=system,
            upstream_calculator=spec.upstream_calculator,
        )
    rec.update(n_atoms=64, code=code, implementation="python -c <code>")
    outer: list[float] = []
    children: list[dict] = []

    def once() -> None:
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, cwd=str(work)
        )
        outer.append(time.perf_counter() - t)
        if proc.returncode != 0:
            raise RuntimeError(f"the fresh process failed: {proc.stderr.strip()[-2000:]}")
        children.append(json.loads(proc.stdout.strip().splitlines()[-1]))

    def on_sample(timing: Timing) -> None:
        # Re-express the samples as the child's own measurement (from its first import).
        n_warm = len(timing.warmup)
        inner = [c["inner_s"] for c in children]
        rec["process_s"] = Stats.of(outer[n_warm:]).to_dict() if len(outer) > n_warm else None
        rec["children"] = children
        rec.timing(Timing(inner[n_warm:], inner[:n_warm], timing.requested, timing.budget_limited))

    timing = time_repeats(
        once,
        repeats=case["repeats"],
        warmup=case["warmup"],
        budget_s=budget,
        started=T_START,
        on_sample=on_sample,
    )
    on_sample(timing)
    if children:
        rec["energy"] = children[-1]["energy"]
        rec["child_peak_rss_mb"] = round(max(c["peak_rss_kb"] for c in children) * 1024 / 1e6, 1)
    rec["status"] = "ok" if timing.samples else "budget"


def _slug(case_id: str) -> str:
    return case_id.replace("/", "_")


KINDS = {"sp": run_sp, "md": run_md, "neb": run_neb, "import": run_import}


def main(spec_path: str, out_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    case, impl = spec["case"], spec["impl"]
    work = Path(spec["workdir"])
    rec = Record(Path(out_path), case=case["id"], impl=impl, status="running")
    rec.save()
    try:
        fn = run_neb_prepare if impl == "prepare" else KINDS[case["kind"]]
        fn(case, impl, rec, work, float(spec["budget_s"]))
    except Exception as exc:  # noqa: BLE001 - recorded in the results, the harness goes on
        rec["status"] = "error"
        rec["error"] = f"{type(exc).__name__}: {exc}"
        rec["traceback"] = traceback.format_exc(limit=8)
    rec.save()
    return 0 if rec["status"] != "error" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
