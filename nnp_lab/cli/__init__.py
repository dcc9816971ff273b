"""Command line: ``nnp-lab models | evaluate | relax | md | neb`` and the properties
(``eos | elastic | phonons | surface | vacancy | adsorption | gb | diffusion``, see
:mod:`nnp_lab.cli._properties`) and ``screen`` (:mod:`nnp_lab.cli._screening`).

Structures are read and written with ASE, so every format ASE knows works (``.xyz``,
``.extxyz``, ``.cif``, ``POSCAR``, ``.traj`` ...). Long runs show a progress bar on stderr;
bad input ends with one line on stderr and a non-zero exit code (2 for bad input, 1 for a
simulation that failed, 130 when interrupted).
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from nnp_lab.cli._properties import PROPERTY_COMMANDS, add_property_commands
from nnp_lab.cli._screening import add_screen_command, screen_command
from nnp_lab.errors import InputError

__all__ = ["main", "build_parser", "read_structure", "potential_from"]

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default="sevennet-0",
        help="registered potential name or model file (default: %(default)s)",
    )
    p.add_argument("--d3", action="store_true", help="add DFT-D3(BJ) dispersion (PBE parameters)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default: %(default)s)")
    p.add_argument("--index", default="-1", help="frame of the input file to use (default: last)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``nnp-lab`` (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="nnp-lab",
        description="Atomistic simulation with universal neural network potentials.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("models", help="list the registered potentials")

    p = sub.add_parser("evaluate", help="energy, max force and stress of a structure")
    p.add_argument("input", help="structure file (any format ASE reads)")
    _add_model_options(p)

    p = sub.add_parser("relax", help="relax atomic positions (and the cell with --cell)")
    p.add_argument("input", help="structure file (any format ASE reads)")
    p.add_argument("-o", "--output", required=True, help="relaxed structure file")
    p.add_argument("--cell", action="store_true", help="relax the cell too")
    p.add_argument(
        "--fmax", type=float, default=0.05, help="force threshold in eV/Å (default: %(default)s)"
    )
    p.add_argument("--steps", type=int, default=500, help="maximum steps (default: %(default)s)")
    p.add_argument("--optimizer", default="FIRE", help="FIRE, BFGS or LBFGS (default: %(default)s)")
    p.add_argument("--trajectory", help="also write every step to this .traj file")
    _add_model_options(p)

    p = sub.add_parser("md", help="molecular dynamics")
    p.add_argument("input", help="structure file (any format ASE reads)")
    p.add_argument(
        "-o", "--output", required=True, help="trajectory file written while running (.traj)"
    )
    p.add_argument("--ensemble", default="nvt", help="nve, nvt or npt (default: %(default)s)")
    p.add_argument(
        "-T",
        "--temperature",
        type=float,
        default=300.0,
        help="temperature in K (default: %(default)s)",
    )
    p.add_argument(
        "--thermostat",
        default="langevin",
        help="langevin, bussi or nose-hoover (default: %(default)s)",
    )
    p.add_argument(
        "--pressure-gpa", type=float, default=None, help="external pressure in GPa (npt)"
    )
    p.add_argument(
        "--pressure",
        type=float,
        default=None,
        help="deprecated: external pressure in bar (npt); use --pressure-gpa",
    )
    p.add_argument(
        "--timestep", type=float, default=1.0, help="time step in fs (default: %(default)s)"
    )
    p.add_argument("--steps", type=int, default=1000, help="number of steps (default: %(default)s)")
    p.add_argument(
        "--interval", type=int, default=10, help="write every N steps (default: %(default)s)"
    )
    p.add_argument(
        "--seed", type=int, default=None, help="random seed for velocities and thermostat"
    )
    _add_model_options(p)

    p = sub.add_parser("neb", help="minimum energy path and barrier (nudged elastic band)")
    p.add_argument("initial", help="initial state structure file")
    p.add_argument("final", help="final state structure file (same atoms, same order)")
    p.add_argument("-o", "--output", required=True, help="final band written here (.traj)")
    p.add_argument(
        "--images", type=int, default=7, help="intermediate images (default: %(default)s)"
    )
    p.add_argument(
        "--fmax", type=float, default=0.05, help="force threshold in eV/Å (default: %(default)s)"
    )
    p.add_argument(
        "--steps", type=int, default=300, help="maximum iterations (default: %(default)s)"
    )
    p.add_argument("--no-climb", action="store_true", help="switch the climbing image off")
    p.add_argument("--interpolation", default="idpp", help="idpp or linear (default: %(default)s)")
    p.add_argument("--trajectory", help="also write every iteration's band to this .traj file")
    _add_model_options(p)
    add_property_commands(sub, _add_model_options)
    add_screen_command(sub, _add_model_options)
    return parser


def read_structure(path: str, index: str = "-1"):
    from ase.io import read

    if not Path(path).is_file():
        raise FileNotFoundError(f"input file {path!r} does not exist")
    try:
        return read(path, index=index)
    except Exception as exc:  # noqa: BLE001 - ASE raises many types for unreadable files
        raise InputError(
            f"cannot read {path!r} as a structure ({exc}); use a format ASE reads"
        ) from None


def potential_from(args: argparse.Namespace):
    from nnp_lab.potentials import load_potential

    return load_potential(args.model, device=args.device, dispersion="d3" if args.d3 else None)


def _run(run_cls: type, structures: list, args: argparse.Namespace, **keywords):
    """Build ``run_cls(*structures, potential, **keywords)`` and run it with a progress bar
    on stderr; returns the result."""
    from nnp_lab.simulate._run import run_to_end

    run = run_cls(*structures, potential_from(args), **keywords)
    return run_to_end(run, live=True, total=args.steps)


def _exit_code(result, converged: bool = True) -> int:
    if result.stopped:
        return EXIT_INTERRUPTED
    return 0 if converged else EXIT_FAILED


def _pressure_GPa(args: argparse.Namespace) -> float | None:
    """``--pressure-gpa``, or the deprecated ``--pressure`` (bar) converted, with a note."""
    if args.pressure is None:
        return args.pressure_gpa
    from nnp_lab.simulate._keywords import GPA_PER_BAR

    if args.pressure_gpa is not None:
        raise InputError(
            "give the pressure once, with --pressure-gpa (GPa); --pressure (bar) is deprecated"
        )
    print(
        "nnp-lab: --pressure (bar) is deprecated; use --pressure-gpa (1 bar = 1e-4 GPa)",
        file=sys.stderr,
    )
    return args.pressure * GPA_PER_BAR


def _cmd_models(args: argparse.Namespace) -> int:
    from nnp_lab.potentials import list_potentials

    table = list_potentials()
    print(table.drop(columns=["description"]).to_string(index=False))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    atoms = read_structure(args.input, args.index)
    res = potential_from(args).evaluate([atoms])[0]
    fmax = float(np.linalg.norm(res["forces"], axis=1).max())
    print(f"atoms: {len(atoms)}  formula: {atoms.get_chemical_formula()}")
    print(f"energy: {res['energy']:.6f} eV  ({res['energy'] / len(atoms):.6f} eV/atom)")
    print(f"fmax: {fmax:.4f} eV/Å")
    if "stress" in res:
        from ase.units import GPa

        gpa = res["stress"] / GPa
        print("stress (GPa, xx yy zz yz xz xy): " + " ".join(f"{s:.4f}" for s in gpa))
    return 0


def _cmd_relax(args: argparse.Namespace) -> int:
    from ase.io import write

    from nnp_lab.simulate import Relaxation

    result = _run(
        Relaxation,
        [read_structure(args.input, args.index)],
        args,
        fmax=args.fmax,
        steps=args.steps,
        optimizer=args.optimizer,
        cell=args.cell,
        trajectory=args.trajectory,
    )
    write(args.output, result.atoms)
    state = "converged" if result.converged else "NOT converged"
    print(
        f"{state} in {result.n_steps} steps: E = {result.energy:.6f} eV, "
        f"fmax = {result.fmax:.4f} eV/Å -> {args.output}"
    )
    return _exit_code(result, result.converged)


def _cmd_md(args: argparse.Namespace) -> int:
    import numpy as np

    from nnp_lab.simulate import MolecularDynamics

    result = _run(
        MolecularDynamics,
        [read_structure(args.input, args.index)],
        args,
        ensemble=args.ensemble,
        temperature_K=args.temperature,
        timestep_fs=args.timestep,
        steps=args.steps,
        thermostat=args.thermostat,
        pressure_GPa=_pressure_GPa(args),
        interval=args.interval,
        trajectory=args.output,
        seed=args.seed,
    )
    temps = np.asarray(result.temperature_K)
    print(
        f"{result.n_steps} steps ({result.time_ps[-1]:.3f} ps): mean T = {temps.mean():.1f} K, "
        f"final E_pot = {result.potential_energy[-1]:.6f} eV, {len(temps)} frames -> {args.output}"
    )
    return _exit_code(result)


def _cmd_neb(args: argparse.Namespace) -> int:
    from ase.io import write

    from nnp_lab.simulate import NEBRun

    result = _run(
        NEBRun,
        [read_structure(args.initial, args.index), read_structure(args.final, args.index)],
        args,
        n_images=args.images,
        climb=not args.no_climb,
        fmax=args.fmax,
        steps=args.steps,
        interpolation=args.interpolation,
        trajectory=args.trajectory,
    )
    write(args.output, result.images)
    state = "converged" if result.converged else "NOT converged"
    print(
        f"{state} in {result.n_steps} iterations: forward barrier {result.forward_barrier:.4f} eV, "
        f"backward {result.backward_barrier:.4f} eV, highest image {result.highest_image} -> {args.output}"
    )
    return _exit_code(result, result.converged)


_COMMANDS = {
    "models": _cmd_models,
    "evaluate": _cmd_evaluate,
    "relax": _cmd_relax,
    "md": _cmd_md,
    "neb": _cmd_neb,
    **PROPERTY_COMMANDS,
    "screen": screen_command,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``nnp-lab``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s"
    )
    if not args.verbose:
        warnings.filterwarnings("ignore")
    from nnp_lab.errors import SimulationError

    try:
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("nnp-lab: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SimulationError as exc:
        print(f"nnp-lab: simulation failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (ValueError, FileNotFoundError, ModuleNotFoundError) as exc:
        print(f"nnp-lab: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
