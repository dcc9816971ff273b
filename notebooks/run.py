"""Execute notebooks headless and print what their cells printed.

Usage: ``python notebooks/run.py notebooks/00_quickstart.ipynb [--quick] [--output out.ipynb]``.
``make demo`` and the test suite use it; ``--quick`` sets ``NNP_LAB_QUICK=1`` (small systems,
few steps).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def execute(path: str | os.PathLike, *, quick: bool = False, timeout: int = 1800, output: str | None = None):
    """Run every cell of the notebook at ``path`` in a fresh kernel; return the executed notebook.

    Raises ``nbclient.exceptions.CellExecutionError`` (with the failing cell's traceback) when
    a cell fails.
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    env_before = os.environ.get("NNP_LAB_QUICK")
    if quick:
        os.environ["NNP_LAB_QUICK"] = "1"
    try:
        client = NotebookClient(
            nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
        )
        client.execute()
    finally:
        if quick:
            if env_before is None:
                os.environ.pop("NNP_LAB_QUICK", None)
            else:
                os.environ["NNP_LAB_QUICK"] = env_before
    if output:
        nbformat.write(nb, output)
    return nb


def text_outputs(nb) -> list[str]:
    """Text printed or returned by each code cell, in order."""
    out = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for o in cell.get("outputs", []):
            if o.output_type == "stream" and o.name == "stdout":
                out.append(o.text)
            elif o.output_type in ("execute_result", "display_data") and "text/plain" in o.get("data", {}):
                out.append(o.data["text/plain"] + "\n")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("notebooks", nargs="+")
    parser.add_argument("--quick", action="store_true", help="set NNP_LAB_QUICK=1")
    parser.add_argument("--output", help="write the executed notebook here (single notebook)")
    parser.add_argument(
        "--timeout", type=int, default=1800, help="seconds one cell may run (default 1800)"
    )
    args = parser.parse_args()
    for nb_path in args.notebooks:
        t = time.perf_counter()
        print(f"=== {nb_path}", flush=True)
        nb = execute(nb_path, quick=args.quick, output=args.output, timeout=args.timeout)
        for text in text_outputs(nb):
            sys.stdout.write(text)
        print(f"=== {nb_path} ran in {time.perf_counter() - t:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
