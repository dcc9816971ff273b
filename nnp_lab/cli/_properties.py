"""The property commands of ``nnp-lab``: one per function of :mod:`nnp_lab.properties`.

``nnp-lab eos|elastic|phonons|surface|vacancy|adsorption|gb|diffusion FILE ... [--json F]``
prints the result's summary (its numbers and any failed quality check) and writes the whole
result as JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["add_property_commands", "PROPERTY_COMMANDS"]


def add_property_commands(
    sub: Any, add_model_options: Callable[[argparse.ArgumentParser], None]
) -> None:
    """Add the property sub-commands to the ``nnp-lab`` parser's sub-parsers."""

    def command(name: str, help: str, input_help: str = "structure file (any format ASE reads)"):
        p = sub.add_parser(name, help=help)
        p.add_argument("input", help=input_help)
        p.add_argument("--json", help="write the whole result to this JSON file")
        if name != "diffusion":
            p.add_argument("--fmax", type=float, help="force target of the relaxations, eV/Å")
            p.add_argument("--no-relax", action="store_true", help="use the structure as given")
            add_model_options(p)
        return p

    p = command("eos", "equation of state: V0, E0, bulk modulus (Birch-Murnaghan fit)")
    p.add_argument("--volume-range", type=float, default=0.06, help="±relative volume (0.06)")
    p.add_argument("--points", type=int, default=11, help="number of volumes (11)")
    p.add_argument("--form", default="birchmurnaghan", help="EOS form (ASE's names)")

    p = command("elastic", "elastic tensor C_ij and the Voigt/Reuss/Hill moduli")
    p.add_argument("--strains", type=float, nargs="+", default=[-0.01, -0.005, 0.005, 0.01])
    p.add_argument("--no-relax-ions", action="store_true", help="keep ions at strained sites")

    p = command("phonons", "phonon band structure, DOS and thermal properties (phonopy)")
    p.add_argument("--min-length", type=float, default=10.0, help="smallest supercell width, Å")
    p.add_argument("--supercell", type=int, nargs="+", help="repetitions (1 or 3 integers)")

    p = command("surface", "surface energy of a facet, per slab thickness")
    p.add_argument("--miller", type=int, nargs="+", required=True, help="e.g. 1 1 1")
    p.add_argument("--layers", type=int, nargs="+", default=[4, 6, 8], help="thicknesses")

    p = command("vacancy", "vacancy formation energy")
    p.add_argument("--atom", type=int, default=0, help="index of the atom to remove (0)")
    p.add_argument("--min-length", type=float, default=10.0, help="smallest supercell width, Å")
    p.add_argument("--chemical-potential", type=float, help="eV per atom (compounds)")

    p = command("adsorption", "adsorption energy at every distinct site", "slab file")
    p.add_argument("--adsorbate", required=True, help="molecule name or SMILES, e.g. CO")
    p.add_argument("--site", default="all", help="all, a site kind or a label (all)")

    p = command("gb", "grain boundary energy (coincidence site lattice, cubic crystals)")
    p.add_argument("--sigma", type=int, required=True, help="Σ, e.g. 5")
    p.add_argument("--axis", type=int, nargs=3, default=[1, 0, 0], help="rotation axis")
    p.add_argument("--expand-times", type=int, default=3, help="grain thickness in CSL cells")

    p = command("diffusion", "tracer diffusivity from an MD trajectory", "trajectory (.traj)")
    p.add_argument("--species", required=True, help="element that diffuses, e.g. Li")
    p.add_argument("--temperature", type=float, help="K (default: from the trajectory)")
    p.add_argument("--timestep", type=float, help="fs between frames (default: from the file)")


def _relax_options(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"relax": not args.no_relax}
    if args.fmax is not None:
        out["fmax"] = args.fmax
    return out


def _calculate(args: argparse.Namespace, atoms: Any, potential: Any) -> Any:
    """Run the property that ``args.command`` names."""
    from nnp_lab import properties

    common = dict(live=True, **_relax_options(args))
    name = args.command
    if name == "eos":
        return properties.eos(
            atoms,
            potential,
            volume_range=args.volume_range,
            n_points=args.points,
            form=args.form,
            **common,
        )
    if name == "elastic":
        return properties.elastic(
            atoms, potential, strains=args.strains, relax_ions=not args.no_relax_ions, **common
        )
    if name == "phonons":
        supercell = None if args.supercell is None else _ints(args.supercell)
        return properties.phonons(
            atoms, potential, min_length=args.min_length, supercell=supercell, **common
        )
    if name == "surface":
        return properties.surface_energy(
            atoms, args.miller, potential, layers=args.layers, **common
        )
    if name == "vacancy":
        return properties.vacancy_formation(
            atoms,
            potential,
            index=args.atom,
            min_length=args.min_length,
            chemical_potential_eV=args.chemical_potential,
            **common,
        )
    if name == "adsorption":
        return properties.adsorption_energy(
            atoms, args.adsorbate, potential, site=args.site, **common
        )
    if name == "gb":
        return properties.grain_boundary_energy(
            atoms,
            potential,
            sigma=args.sigma,
            rotation_axis=args.axis,
            expand_times=args.expand_times,
            **common,
        )
    raise AssertionError(name)  # the parser only knows the commands above


def _ints(values: list[int]) -> int | tuple[int, ...]:
    return values[0] if len(values) == 1 else tuple(values)


def _property_command(args: argparse.Namespace) -> int:
    from nnp_lab.cli import potential_from, read_structure

    if args.command == "diffusion":
        from nnp_lab import properties

        result = properties.diffusion(
            args.input,
            species=args.species,
            temperature_K=args.temperature,
            timestep_fs=args.timestep,
        )
    else:
        result = _calculate(args, read_structure(args.input, args.index), potential_from(args))
    print(result.summary())
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_dict(), indent=1))
        print(f"result written to {args.json}")
    return 0


#: Sub-command name -> its handler.
PROPERTY_COMMANDS = {
    name: _property_command
    for name in ("eos", "elastic", "phonons", "surface", "vacancy", "adsorption", "gb", "diffusion")
}
