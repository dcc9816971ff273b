"""What the benchmark harness measures: systems, models and the case plan.

A **case** is one measurement (single point, MD steps, NEB, fresh-process import) of one model
on one system. Each case is measured with two or three **implementations** side by side, one
after the other in the same harness run, each in its own fresh process:

``ours``
    ``nnp_lab`` — ``load_potential(model)`` / ``nnp_lab.md`` / ``nnp_lab.neb``.
``upstream``
    The reference the issue compares against: the model package's own ASE calculator on the
    same weights (``sevenn.calculator.SevenNetCalculator('7net-0')``,
    ``chgnet.model.dynamics.CHGNetCalculator`` with CHGNet 0.3.0, ``ase``'s EMT) driven by
    plain ASE (``ase.md.langevin.Langevin``, ``ase.mep.NEB`` with one calculator per image).
``via-nnp_lab``
    Only for SevenNet-0 single points, and only when the registry has
    ``"sevennet-0-upstream"``: the upstream model through our ``Potential`` interface, which
    separates the cost of the interface from the cost of the model implementation.

This module is pure data and structure builders (ASE and ``nnp_lab.build``); it never loads
a model, so the harness process stays light.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "SYSTEMS",
    "MODELS",
    "SystemSpec",
    "ModelSpec",
    "Case",
    "plan",
    "select",
    "build_system",
    "neb_endpoints",
    "import_system_code",
    "SI_SIZES",
]

#: Diamond Si sizes (8·k³ atoms) for the scaling and memory series.
SI_SIZES = (64, 216, 512, 1728, 4096)
#: Atoms at or above which a case counts as "huge": fewer repeats, no MD warm-up block.
HUGE_ATOMS = 1500

# Elements ASE's EMT has parameters for.
_EMT_ELEMENTS = frozenset({"Al", "Cu", "Ag", "Au", "Ni", "Pd", "Pt", "H", "C", "N", "O"})


# --------------------------------------------------------------------------------------
# Systems
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SystemSpec:
    """A benchmark structure: how to build it and what it contains.

    Attributes
    ----------
    name
        Short id used in case ids (``si512``, ``pt111_co``).
    n_atoms
        Number of atoms (checked when built).
    elements
        Chemical symbols present.
    description
        One line for the report.
    build
        ``build() -> ase.Atoms`` (deterministic: rattled with a fixed seed).
    """

    name: str
    n_atoms: int
    elements: frozenset[str]
    description: str
    build: Callable[[], Any] = field(repr=False, compare=False)


def si_cell(n_atoms: int, rattle: float = 0.03):
    """Diamond Si supercell of ``n_atoms = 8 k³`` atoms, rattled by ``rattle`` Å (seed 0).

    The one Si builder of ``bench/`` (cases, core timings, profile, threads)."""
    from ase.build import bulk

    reps = round((n_atoms / 8) ** (1 / 3))
    atoms = bulk("Si", "diamond", a=5.43, cubic=True) * (reps, reps, reps)
    if len(atoms) != n_atoms:
        raise SystemExit(f"{n_atoms} is not 8*k^3")
    atoms.rattle(rattle, seed=0)
    return atoms


def lfp_cell(rattle: float = 0.02):
    """LiFePO4 1×1×2 supercell (56 atoms), rattled by ``rattle`` Å (seed 0)."""
    import nnp_lab

    cell = nnp_lab.build.supercell(nnp_lab.build.crystal("LiFePO4"), (1, 1, 2))
    cell.rattle(rattle, seed=0)
    return cell


def _cu(n_atoms: int):
    from ase.build import bulk

    reps = round((n_atoms / 4) ** (1 / 3))
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * (reps, reps, reps)
    atoms.rattle(0.03, seed=0)
    return atoms


def _pt111_co():
    from nnp_lab import build

    slab = build.surface(
        build.bulk("Pt", "fcc", a=3.92),
        (1, 1, 1),
        layers=4,
        vacuum=10,
        fixed_layers=2,
        size=(3, 3),
    )
    atoms = build.add_adsorbate(slab, "CO", "fcc", height=1.3, binding_atom=0)
    atoms.rattle(0.02, seed=0)  # FixAtoms keeps the bottom layers in place
    return atoms


def _mof74():
    from nnp_lab import build

    atoms = build.crystal("Mg-MOF-74")
    atoms.rattle(0.01, seed=0)
    return atoms


#: 30 atoms: methyl 4-butylbenzoate, C12H16O2 (aromatic ring, ester, alkyl chain).
MOLECULE_SMILES = "CCCCc1ccc(cc1)C(=O)OC"


def _molecule():
    from nnp_lab import build

    atoms = build.molecule(MOLECULE_SMILES)
    # Non-periodic, but with a box (8 Å vacuum, beyond every model's cutoff) so that
    # upstream CHGNet, which needs a lattice, sees the same atoms as everyone else.
    atoms.center(vacuum=8.0)
    atoms.pbc = False
    return atoms


def _system(name, n, elements, description, builder) -> SystemSpec:
    return SystemSpec(name, n, frozenset(elements), description, builder)


SYSTEMS: dict[str, SystemSpec] = {
    s.name: s
    for s in [
        _system("si8", 8, {"Si"}, "diamond Si, 1×1×1 cubic cell (quick mode)", lambda: si_cell(8)),
        *[
            _system(
                f"si{n}",
                n,
                {"Si"},
                f"diamond Si, {round((n / 8) ** (1 / 3))}³ cubic cells",
                (lambda n=n: si_cell(n)),
            )
            for n in SI_SIZES
        ],
        _system("cu108", 108, {"Cu"}, "fcc Cu, 3³ cubic cells", lambda: _cu(108)),
        _system("cu500", 500, {"Cu"}, "fcc Cu, 5³ cubic cells", lambda: _cu(500)),
        _system(
            "pt111_co",
            38,
            {"Pt", "C", "O"},
            "Pt(111) 3×3, 4 layers (2 fixed), CO on an fcc site",
            _pt111_co,
        ),
        _system(
            "mof74",
            162,
            {"Mg", "C", "H", "O"},
            "Mg-MOF-74 conventional cell (nnp_lab.build.crystal)",
            _mof74,
        ),
        _system(
            "mol30",
            30,
            {"C", "H", "O"},
            f"molecule {MOLECULE_SMILES} (C12H16O2), non-periodic",
            _molecule,
        ),
    ]
}


def build_system(name: str):
    """Build the named system (a new :class:`ase.Atoms`) and check its size."""
    spec = SYSTEMS[name]
    atoms = spec.build()
    if len(atoms) != spec.n_atoms:
        raise RuntimeError(f"system {name} has {len(atoms)} atoms, expected {spec.n_atoms}")
    return atoms


# NEB: a Cu adatom hopping between neighbouring hollow sites of Cu(100). Chosen over a Si
# vacancy because it works with every model here (EMT included, for the harness test) and
# the saddle (bridge site) is unambiguous.
@dataclass(frozen=True)
class NEBSpec:
    """An NEB benchmark: the slab, the number of intermediate images and the settings."""

    name: str
    size: tuple[int, int, int]
    n_images: int
    fmax: float
    steps: int
    description: str
    relax_fmax: float = 0.02
    relax_steps: int = 1000

    @property
    def n_atoms(self) -> int:
        return self.size[0] * self.size[1] * self.size[2] + 1


NEB_SYSTEMS = {
    "cu100_adatom": NEBSpec(
        "cu100_adatom",
        (4, 4, 4),
        7,
        0.05,
        300,
        "Cu adatom hop hollow→hollow on Cu(100) 4×4, 4 layers (2 fixed)",
    ),
    # Quick mode: a smoke test, allowed to stop before converging.
    "cu100_adatom_small": NEBSpec(
        "cu100_adatom_small",
        (2, 2, 3),
        3,
        0.2,
        15,
        "Cu adatom hop on Cu(100) 2×2, 3 layers (quick mode)",
        relax_fmax=0.2,
        relax_steps=20,
    ),
}


def neb_endpoints(name: str):
    """Unrelaxed initial and final states of the NEB system ``name`` (new Atoms)."""
    import numpy as np
    from ase.build import add_adsorbate, fcc100
    from ase.constraints import FixAtoms

    spec = NEB_SYSTEMS[name]
    a = 3.61
    slab = fcc100("Cu", size=spec.size, a=a, vacuum=8.0)
    tags = slab.get_tags()  # 1 = top layer ... n = bottom layer
    n_layers = spec.size[2]
    slab.set_constraint(FixAtoms(mask=tags > n_layers - 2))  # the two bottom layers
    add_adsorbate(slab, "Cu", 1.8, "hollow")
    initial = slab
    final = slab.copy()
    final.positions[-1] += np.array([a / np.sqrt(2), 0.0, 0.0])  # next hollow along x
    return initial, final


# --------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSpec:
    """A model as we load it and as its upstream package offers it.

    Attributes
    ----------
    name
        Our registry name (``load_potential(name)``).
    upstream_import, upstream_calculator
        Python source: the import statement(s) and the expression that make one upstream ASE
        calculator. The worker executes exactly this, the fresh-process import case runs it
        too, and the report prints it, so there is one definition of the reference.
    via_nnp_lab
        Registry name of the upstream implementation behind our Potential interface
        (measured for single points when registered), or None.
    kinds
        Case kinds run for this model.
    elements
        Elements covered (None: all systems here).
    import_system
        Structure of the fresh-process import case (a 64-atom cell).
    """

    name: str
    upstream_import: str
    upstream_calculator: str
    via_nnp_lab: str | None
    kinds: tuple[str, ...]
    elements: frozenset[str] | None = None
    import_system: str = "si64"

    @property
    def upstream(self) -> str:
        """The upstream calculator as one line of Python (for the report)."""
        return self.upstream_calculator

    def covers(self, elements: frozenset[str]) -> bool:
        """Whether the model has parameters for all ``elements``."""
        return self.elements is None or elements <= self.elements


MODELS: dict[str, ModelSpec] = {
    "sevennet-0": ModelSpec(
        "sevennet-0",
        "from sevenn.calculator import SevenNetCalculator",
        "SevenNetCalculator('7net-0', device='auto')",
        "sevennet-0-upstream",
        ("sp", "md", "neb", "import"),
    ),
    "chgnet-0.3.0": ModelSpec(
        "chgnet-0.3.0",
        "from chgnet.model import CHGNet; from chgnet.model.dynamics import CHGNetCalculator",
        "CHGNetCalculator(CHGNet.load(model_name='0.3.0', verbose=False))",
        None,
        ("sp", "md"),
    ),
    "emt": ModelSpec(
        "emt",
        "from ase.calculators.emt import EMT",
        "EMT()",
        None,
        ("sp", "md", "neb", "import"),
        elements=_EMT_ELEMENTS,
        import_system="cu64",
    ),
}

DEFAULT_MODELS = ("sevennet-0", "chgnet-0.3.0")


def import_system_code(name: str) -> str:
    """Python source (one expression) that builds the import case's 64-atom cell."""
    if name == "si64":
        return "bulk('Si', 'diamond', a=5.43, cubic=True) * (2, 2, 2)"
    if name == "cu64":
        return "bulk('Cu', 'fcc', a=3.61, cubic=True) * (2, 2, 4)"
    raise KeyError(name)


# --------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------
@dataclass
class Case:
    """One measurement, run once per implementation in :attr:`impls`.

    Attributes
    ----------
    id
        ``kind/model/system``, e.g. ``sp/sevennet-0/si512`` (what ``--only`` matches).
    kind
        ``"sp"`` (energy + forces + stress), ``"md"`` (NVT Langevin steps), ``"neb"`` or
        ``"import"`` (fresh process to first energy).
    model, system
        Keys of :data:`MODELS` and :data:`SYSTEMS` / :data:`NEB_SYSTEMS` (or the import
        system).
    n_atoms
        Atoms in the structure (per image for NEB).
    impls
        Implementations to measure, in order.
    repeats, warmup
        Timed repeats and untimed warm-up calls (MD: warm-up *blocks*, on top of the force
        call at step 0).
    md_block
        MD steps per timed sample (per-step time = sample / md_block).
    budget_s
        Wall-time budget of each implementation's process (model loading included).
    """

    id: str
    kind: str
    model: str
    system: str
    n_atoms: int
    impls: list[str]
    repeats: int
    warmup: int = 1
    md_block: int = 1
    budget_s: float = 600.0
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _md_block(n_atoms: int, quick: bool) -> int:
    if quick:
        return 2
    if n_atoms <= 250:
        return 5
    if n_atoms < HUGE_ATOMS:
        return 2
    return 1


def plan(
    *,
    models: tuple[str, ...] = DEFAULT_MODELS,
    quick: bool = False,
    repeats: int | None = None,
    neb_repeats: int | None = None,
    budget_s: float | None = None,
    via_nnp_lab: bool = True,
    via_nnp_lab_max_atoms: int = 512,
) -> list[Case]:
    """The ordered list of cases for the chosen models.

    Parameters
    ----------
    models
        Model names (keys of :data:`MODELS`).
    quick
        Small sizes and 1–2 repeats: a smoke test of the harness, not a measurement.
    repeats
        Timed repeats per case (default 5, 3 for huge systems; quick mode 1).
    neb_repeats
        Complete NEB runs per implementation (default 1: each takes minutes).
    budget_s
        Budget per implementation process in seconds (default 600, 1200 for huge systems,
        120 in quick mode).
    via_nnp_lab
        Whether ``sevennet-0-upstream`` is registered (the harness checks at run time).
    via_nnp_lab_max_atoms
        Largest single-point system measured through ``via-nnp_lab`` (it is a third copy of
        the slow upstream cost, so only where cheap).
    """
    if quick:
        sp_systems = ["si8", "si64"]
        md_systems = ["si8"]
        neb_system = "cu100_adatom_small"
        default_repeats, default_budget = 1, 120.0
    else:
        sp_systems = [f"si{n}" for n in SI_SIZES] + ["cu108", "cu500", "pt111_co", "mof74", "mol30"]
        md_systems = sp_systems
        neb_system = "cu100_adatom"
        default_repeats, default_budget = 5, 600.0

    def n_repeats(n_atoms: int) -> int:
        if repeats is not None:
            return max(1, repeats if n_atoms < HUGE_ATOMS or quick else min(repeats, 3))
        return default_repeats if n_atoms < HUGE_ATOMS or quick else 3

    def budget(n_atoms: int) -> float:
        if budget_s is not None:
            return budget_s
        return default_budget if n_atoms < HUGE_ATOMS or quick else 2 * default_budget

    cases: list[Case] = []
    for model_name in models:
        model = MODELS[model_name]
        systems_by_kind = {"sp": sp_systems, "md": md_systems}
        if quick and model_name != "sevennet-0":
            systems_by_kind = {"sp": sp_systems[:1], "md": md_systems}
        if quick and model_name == "emt":
            systems_by_kind = {"sp": ["cu108"], "md": ["cu108"]}
        for kind in ("sp", "md"):
            if kind not in model.kinds:
                continue
            for sys_name in systems_by_kind[kind]:
                system = SYSTEMS[sys_name]
                if not model.covers(system.elements):
                    continue
                impls = ["ours", "upstream"]
                if (
                    kind == "sp"
                    and via_nnp_lab
                    and model.via_nnp_lab
                    and system.n_atoms <= via_nnp_lab_max_atoms
                ):
                    impls.append("via-nnp_lab")
                n = system.n_atoms
                cases.append(
                    Case(
                        id=f"{kind}/{model_name}/{sys_name}",
                        kind=kind,
                        model=model_name,
                        system=sys_name,
                        n_atoms=n,
                        impls=impls,
                        repeats=n_repeats(n),
                        warmup=0 if (kind == "md" and (n >= HUGE_ATOMS or quick)) else 1,
                        md_block=_md_block(n, quick) if kind == "md" else 1,
                        budget_s=budget(n),
                        description=system.description,
                    )
                )
        if "neb" in model.kinds:
            neb = NEB_SYSTEMS[neb_system]
            cases.append(
                Case(
                    id=f"neb/{model_name}/{neb_system}",
                    kind="neb",
                    model=model_name,
                    system=neb_system,
                    n_atoms=neb.n_atoms,
                    impls=["prepare", "ours", "upstream"],
                    repeats=max(1, neb_repeats or 1),
                    warmup=1,
                    budget_s=budget_s or (240.0 if quick else 1800.0),
                    description=neb.description,
                )
            )
        if "import" in model.kinds:
            cases.append(
                Case(
                    id=f"import/{model_name}/{model.import_system}",
                    kind="import",
                    model=model_name,
                    system=model.import_system,
                    n_atoms=64,
                    impls=["ours", "upstream"],
                    repeats=1 if quick else (repeats or 3),
                    warmup=0 if quick else 1,
                    budget_s=budget_s or (180.0 if quick else 300.0),
                    description="fresh Python process: import → first energy of a 64-atom cell",
                )
            )
    return cases


def select(cases: list[Case], patterns: list[str] | None) -> list[Case]:
    """Cases whose id matches any pattern (glob if it has ``*?[``, else a substring)."""
    if not patterns:
        return cases

    def matches(case_id: str, pattern: str) -> bool:
        if any(ch in pattern for ch in "*?["):
            return fnmatch.fnmatch(case_id, pattern)
        return pattern in case_id

    return [c for c in cases if any(matches(c.id, p) for p in patterns)]
