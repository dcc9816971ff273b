"""Properties the batched way vs the usual way, side by side in one run. Prints numbers.

"Ours": ``nnp_lab.properties`` (every displaced or strained structure in one batched
``Potential.evaluate`` call). "Usual": the same structures — phonopy's displaced supercells,
the same strain set, the same volumes — each given to the model package's own ASE calculator
one at a time (``SevenNetCalculator('7net-0')``), fitted by the same phonopy/pymatgen/ASE
code. Each implementation runs in its own process (its own peak RSS), one after the other,
with the model loaded and warmed up and phonopy, pymatgen and ASE imported before the clock
starts.

Cases (the properties issue): phonons of Si (2×2×2 conventional supercell, 64 atoms) and Cu
(3×3×3 conventional, 108 atoms), the elastic tensor of Cu and Si (ions fixed at the strained
positions in both implementations, so that both do exactly the same evaluations), the EOS of
Al (11 volumes).

Usage::

    python bench/properties.py                      # sevennet-0, every case
    python bench/properties.py --model emt --cases eos-al elastic-cu   # a quick check
    python bench/properties.py --json bench/results/properties.json

Run it alone on a quiet machine: other work on the machine changes the times.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

CASES = ("phonons-si", "phonons-cu", "elastic-cu", "elastic-si", "eos-al")
UPSTREAM = {"sevennet-0": "SevenNetCalculator('7net-0', device='cpu')"}


def structure(case: str):
    from ase.build import bulk

    element = case.split("-")[1].capitalize()
    if element == "Si":
        return bulk("Si", "diamond", a=5.43, cubic=case.startswith("phonons"))
    if element == "Cu":
        return bulk("Cu", "fcc", a=3.61, cubic=case.startswith("phonons"))
    return bulk("Al", "fcc", a=4.04)


def supercell(case: str) -> int:
    return 2 if case == "phonons-si" else 3


def run_ours(case: str, model: str) -> dict:
    import numpy as np

    from nnp_lab import load_potential, properties

    pot = load_potential(model)
    atoms = structure(case)
    pot.evaluate([atoms])  # warm-up (lazy initialisation, first-call allocations)
    t = time.perf_counter()
    if case.startswith("phonons"):
        r = properties.phonons(atoms, pot, supercell=supercell(case), relax=False)
        out = {"frequencies_THz": r.frequencies_at(Q_POINTS).tolist()}
    elif case.startswith("elastic"):
        r = properties.elastic(atoms, pot, relax=False, relax_ions=False)
        out = {"C_GPa": np.asarray(r.C_GPa).tolist()}
    else:
        r = properties.eos(atoms, pot, relax=False)
        out = {"bulk_modulus_GPa": r.bulk_modulus_GPa, "v0": r.v0}
    out["wall_s"] = time.perf_counter() - t
    return out


def run_usual(case: str, model: str) -> dict:
    import numpy as np

    namespace: dict = {}
    if model == "emt":
        from ase.calculators.emt import EMT

        calc = EMT()
    else:
        exec("from sevenn.calculator import SevenNetCalculator", namespace)  # noqa: S102
        calc = eval(UPSTREAM[model], namespace)  # noqa: S307
    atoms = structure(case)
    warm = atoms.copy()
    warm.calc = calc
    warm.get_potential_energy()
    t = time.perf_counter()
    if case.startswith("phonons"):
        out = _usual_phonons(atoms, calc, supercell(case))
    elif case.startswith("elastic"):
        out = _usual_elastic(atoms, calc)
    else:
        out = _usual_eos(atoms, calc)
    out["wall_s"] = time.perf_counter() - t
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in out.items()}


#: Γ and X of the primitive cell phonopy finds for fcc and diamond (X = (½, 0, ½)).
Q_POINTS = [[0.0, 0.0, 0.0], [0.5, 0.0, 0.5]]


def _usual_phonons(atoms, calc, n: int) -> dict:
    import numpy as np
    from ase import Atoms
    from phonopy import Phonopy
    from phonopy.structure.atoms import PhonopyAtoms

    unit = PhonopyAtoms(
        symbols=atoms.get_chemical_symbols(),
        cell=atoms.cell[:],
        scaled_positions=atoms.get_scaled_positions(),
    )
    ph = Phonopy(unit, supercell_matrix=np.diag([n] * 3), primitive_matrix="auto")
    ph.generate_displacements(distance=0.01)
    forces = []
    for s in ph.supercells_with_displacements:
        a = Atoms(s.symbols, cell=s.cell, scaled_positions=s.scaled_positions, pbc=True)
        a.calc = calc
        forces.append(a.get_forces())
    ph.forces = np.array(forces)
    ph.produce_force_constants()
    # the same post-processing our phonons() does: band path, mesh DOS, thermal properties
    from phonopy.phonon.band_structure import get_band_qpoints_by_seekpath

    bands, labels, conn = get_band_qpoints_by_seekpath(ph.primitive, 51)
    ph.run_band_structure(bands, path_connections=conn, labels=labels)
    ph.run_mesh(30.0)
    ph.run_total_dos()
    ph.run_thermal_properties(t_min=0, t_max=1000, t_step=10, exclude_gamma_acoustic=True)
    return {"frequencies_THz": np.asarray(ph.run_qpoints(Q_POINTS).frequencies)}


def _usual_elastic(atoms, calc) -> dict:
    import numpy as np
    from ase.units import GPa
    from pymatgen.analysis.elasticity import ElasticTensor, Strain, Stress

    ref = atoms.copy()
    ref.calc = calc
    eq = Stress.from_voigt(ref.get_stress() / GPa)
    strains, stresses = [], []
    for index in range(6):
        for amount in (-0.01, -0.005, 0.005, 0.01):
            strain = Strain.from_index_amount(index, amount)
            deformation = strain.get_deformation_matrix()
            s = atoms.copy()
            s.set_cell(atoms.cell[:] @ np.asarray(deformation).T, scale_atoms=True)
            s.calc = calc
            stresses.append(Stress.from_voigt(s.get_stress() / GPa))
            strains.append(Strain(deformation.green_lagrange_strain))
    tensor = ElasticTensor.from_independent_strains(strains, stresses, eq_stress=eq)
    return {"C_GPa": np.asarray(tensor.voigt)}


def _usual_eos(atoms, calc) -> dict:
    import numpy as np
    from ase.eos import EquationOfState
    from ase.units import GPa

    volumes, energies = [], []
    for x in np.linspace(-0.06, 0.06, 11):
        s = atoms.copy()
        s.set_cell(atoms.cell[:] * (1 + x) ** (1 / 3), scale_atoms=True)
        s.calc = calc
        volumes.append(s.get_volume())
        energies.append(s.get_potential_energy())
    v0, _, b = EquationOfState(volumes, energies, eos="birchmurnaghan").fit(warn=False)
    return {"bulk_modulus_GPa": b / GPa, "v0": v0}


def child(case: str, impl: str, model: str) -> None:
    import resource

    # the science libraries both implementations use, imported before any clock starts
    import ase.eos  # noqa: F401
    import phonopy  # noqa: F401
    import phonopy.phonon.band_structure  # noqa: F401
    import pymatgen.analysis.elasticity  # noqa: F401

    out = run_ours(case, model) if impl == "ours" else run_usual(case, model)
    out["peak_rss_MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(out))


def measure(case: str, impl: str, model: str, threads: int | None) -> dict:
    cmd = [sys.executable, __file__, "--child", case, impl, "--model", model]
    env = None
    if threads:
        import os

        env = dict(os.environ, OMP_NUM_THREADS=str(threads), NNP_LAB_THREADS=str(threads))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"{case}/{impl} failed:\n{proc.stderr[-3000:]}")


def compare(case: str, ours: dict, usual: dict) -> str:
    import numpy as np

    if "frequencies_THz" in ours:
        d = np.abs(np.array(ours["frequencies_THz"]) - np.array(usual["frequencies_THz"])).max()
        return f"max Δfrequency at Γ, X {d:.4f} THz"
    if "C_GPa" in ours:
        d = np.abs(np.array(ours["C_GPa"]) - np.array(usual["C_GPa"])).max()
        c = np.array(ours["C_GPa"])
        return f"max ΔC_ij {d:.3f} GPa (C11 {c[0, 0]:.1f}, C12 {c[0, 1]:.1f}, C44 {c[3, 3]:.1f})"
    d = abs(ours["bulk_modulus_GPa"] - usual["bulk_modulus_GPa"])
    return f"ΔB {d:.3f} GPa (B {ours['bulk_modulus_GPa']:.1f} GPa)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="sevennet-0", choices=["sevennet-0", "emt"])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--threads", type=int, help="cap torch/OpenMP threads of both")
    parser.add_argument("--json", help="write every measurement here")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], args.child[1], args.model)
        return 0
    rows = []
    for case in args.cases:
        if args.model == "emt" and "si" in case:
            print(f"{case}: skipped (EMT has no Si)")
            continue
        ours = measure(case, "ours", args.model, args.threads)
        usual = measure(case, "usual", args.model, args.threads)
        ratio = usual["wall_s"] / ours["wall_s"]
        line = (
            f"{case:12s} ours {ours['wall_s']:7.2f} s ({ours['peak_rss_MB']:.0f} MB)  usual "
            f"{usual['wall_s']:7.2f} s ({usual['peak_rss_MB']:.0f} MB)  speed-up {ratio:5.2f}×  "
            + compare(case, ours, usual)
        )
        print(line, flush=True)
        rows.append({"case": case, "ours": ours, "usual": usual, "speedup": ratio})
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"model": args.model, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
