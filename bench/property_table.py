"""The default model's properties of Cu, Al, Si and Pt: the README's results table. Prints
a Markdown table and writes every result as JSON.

For each element: the relaxed lattice constant, the bulk modulus (EOS), C11/C12/C44 (ions
relaxed in every strained cell), phonon frequencies at Γ (optical, Si only) and X, the
vacancy formation energy and the (111) surface energy. Settings are chosen by convergence,
and the convergence is printed with the numbers: the vacancy in two supercell sizes, the
surface energy at 4, 6 and 8 layers, the phonons in two supercells.

Usage::

    python bench/property_table.py                       # sevennet-0, all four elements
    python bench/property_table.py --elements Cu --model emt --json /tmp/t.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

START = {
    "Cu": ("fcc", 3.61),
    "Al": ("fcc", 4.05),
    "Pt": ("fcc", 3.92),
    "Si": ("diamond", 5.43),
}


def measure(element: str, model: str) -> dict:
    import numpy as np
    from ase.build import bulk

    from nnp_lab import load_potential, properties

    pot = load_potential(model)
    kind, a0 = START[element]
    atoms = bulk(element, kind, a=a0)
    out: dict = {"element": element, "model": model}
    t = time.perf_counter()
    e = properties.eos(atoms, pot)
    conventional = e.reference.cell.lengths()[0] * np.sqrt(2)  # fcc/diamond primitive -> a
    out["a_A"] = float(conventional)
    out["B_eos_GPa"] = e.bulk_modulus_GPa
    c = properties.elastic(e.reference, pot, relax=False)
    out["C11_GPa"], out["C12_GPa"], out["C44_GPa"] = (
        float(c.C_GPa[0, 0]),
        float(c.C_GPa[0, 1]),
        float(c.C_GPa[3, 3]),
    )
    out["B_elastic_GPa"] = c.bulk_modulus_hill_GPa
    out["elastic_flags"] = sorted(c.flags)
    phonon = {}
    for length in (9.0, 12.0):
        p = properties.phonons(e.reference, pot, relax=False, min_length=length)
        f = p.frequencies_at([[0, 0, 0], [0.5, 0, 0.5]])
        phonon[str(length)] = {
            "supercell": np.diag(p.supercell_matrix).tolist(),
            "gamma_THz": sorted(f[0].tolist()),
            "X_THz": sorted(f[1].tolist()),
            "imaginary": p.imaginary,
        }
    out["phonons"] = phonon
    vacancy = {}
    for length in (8.0, 11.0):
        v = properties.vacancy_formation(e.reference, pot, relax=True, min_length=length)
        vacancy[str(length)] = {"n_atoms": v.n_atoms, "E_f_eV": v.formation_energy_eV}
    out["vacancy"] = vacancy
    s = properties.surface_energy(e.reference, (1, 1, 1), pot, layers=(4, 6, 8), relax=True)
    out["surface_111_J_m2"] = s.surface_energies_J_m2.tolist()
    out["surface_flags"] = sorted(s.flags)
    out["wall_s"] = time.perf_counter() - t
    return out


def table(rows: list[dict]) -> str:
    lines = [
        "| | a (Å) | B (GPa) | C11 / C12 / C44 (GPa) | ν at X (THz) | E_vac (eV) | γ(111) (J/m²) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        big = r["phonons"]["12.0"]
        vac = r["vacancy"]["11.0"]
        lines.append(
            f"| {r['element']} | {r['a_A']:.3f} | {r['B_eos_GPa']:.0f} | "
            f"{r['C11_GPa']:.0f} / {r['C12_GPa']:.0f} / {r['C44_GPa']:.0f} | "
            f"{' / '.join(f'{x:.2f}' for x in big['X_THz'])} | {vac['E_f_eV']:.2f} "
            f"({vac['n_atoms']} atoms) | {r['surface_111_J_m2'][-1]:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="sevennet-0")
    parser.add_argument("--elements", nargs="+", default=list(START), choices=list(START))
    parser.add_argument("--json", default=str(HERE / "results" / "property_table.json"))
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    rows = []
    for element in args.elements:
        row = measure(element, args.model)
        print(json.dumps(row), flush=True)
        rows.append(row)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(rows, indent=1))
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
