"""``nnp-lab screen``: one task over many structures into a database (see
:func:`nnp_lab.screening.screen`), or ``--show`` a screen's table."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

__all__ = ["add_screen_command", "screen_command"]


def add_screen_command(
    sub: Any, add_model_options: Callable[[argparse.ArgumentParser], None]
) -> None:
    """Add ``screen`` to the ``nnp-lab`` sub-commands."""
    p = sub.add_parser("screen", help="one task over many structures, stored in an ase.db")
    p.add_argument("input", nargs="?", help="glob or folder of structure files, or an ase.db")
    p.add_argument("--task", default="energy", help="energy, relax or a property name")
    p.add_argument("--db", required=True, help="the results database (ase.db)")
    p.add_argument("--fmax", type=float, default=0.05, help="relaxation target, eV/Å")
    p.add_argument("--steps", type=int, default=500, help="relaxation steps at most")
    p.add_argument("--cell", action="store_true", help="relax the cells too")
    p.add_argument("--workers", type=int, help="run on a Dask LocalCluster of N processes")
    p.add_argument("--scheduler", help="run on the Dask cluster at this address (tcp://...)")
    p.add_argument("--show", action="store_true", help="print the database's table and exit")
    p.add_argument("--sort", help="with --show: sort by this column")
    add_model_options(p)


def screen_command(args: argparse.Namespace) -> int:
    from nnp_lab.cli import potential_from
    from nnp_lab.errors import InputError
    from nnp_lab.screening import load, screen

    if args.show:
        df = load(args.db).to_dataframe()
        if args.sort:
            if args.sort not in df.columns:
                raise InputError(f"no column {args.sort!r}; columns: {', '.join(df.columns)}")
            df = df.sort_values(args.sort)
        columns = [c for c in df.columns if c not in ("key", "model_version")]
        print(df[columns].to_string(index=False))
        return 0
    if not args.input:
        raise InputError("give the structures (a glob, a folder or an ase.db), or --show")
    client = None
    if args.scheduler:
        try:
            from distributed import Client
        except ImportError:
            raise InputError("--scheduler needs Dask: pip install 'nnp_lab[dask]'") from None
        client = Client(args.scheduler)
    elif args.workers:
        from nnp_lab.screening._dask import local_client

        client = local_client(args.workers)
    try:
        result = screen(
            args.input,
            args.task,
            potential_from(args),
            db=args.db,
            fmax=args.fmax,
            steps=args.steps,
            cell=args.cell,
            client=client,
            live=True,
        )
    finally:
        if client is not None:
            client.close()
    print(result)
    return 0 if result.n_failed == 0 else 1
