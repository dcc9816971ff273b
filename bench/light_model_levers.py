"""Levers on the light TeaNet's per-call cost (issue 13), measured one by one. Prints numbers.

The light distilled model (``LIGHT_SETTINGS``) spends its step on a fixed number of small
torch operations. This times one energy + forces call on LiFePO4 (1×1×2, 56 atoms; weights
as initialised, which does not change the operation count) at 1 thread:

- ``eager``: as shipped;
- ``compile-layers``: ``torch.compile(dynamic=True)`` on each message-passing layer and the
  readout (the neighbour bookkeeping, with its data-dependent sizes, stays eager);
- ``compile-whole``: ``torch.compile(dynamic=True)`` on ``atomic_outputs`` (graph breaks
  where the bookkeeping reads sizes);

and, for ``eager``, where the time goes (cProfile: backward pass, layers forward, neighbour
list, graph building). Each compiled variant is checked against eager on the same
positions (energy and force differences printed).

Usage::

    python bench/light_model_levers.py               # all variants (~2 min on 2 cores)
    python bench/light_model_levers.py --variants eager compile-whole
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import pstats
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import nnp_lab  # noqa: E402
from bench.cases import lfp_cell  # noqa: E402
from nnp_lab.models.teanet import LIGHT_SETTINGS, TeaNet  # noqa: E402
from nnp_lab.potentials.torch_model import TorchModelPotential  # noqa: E402

PARTS = {
    "backward pass": "run_backward",
    "layers forward": "teanet.py:194(forward)",
    "neighbour list": "neighbours.py:15(neighbour_list)",
    "graph inputs": "torch_model.py:209(from_structures)",
}


def median_call(potential, atoms, calls: int) -> float:
    for _ in range(3):
        potential.evaluate([atoms], ("energy", "forces"), validate=False)
    times = []
    for _ in range(calls):
        atoms.positions[0, 0] += 1e-4  # no result cache can answer
        t = time.perf_counter()
        potential.evaluate([atoms], ("energy", "forces"), validate=False)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def breakdown(potential, atoms, calls: int) -> dict[str, float]:
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(calls):
        potential.evaluate([atoms], ("energy", "forces"), validate=False)
    prof.disable()
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    total = max(ct for (_, _, _, ct, _) in stats.values())
    out = {}
    for label, needle in PARTS.items():
        cum = [
            ct
            for key, (_, _, _, ct, _) in stats.items()
            if needle in f"{key[0]}:{key[1]}({key[2]})" or needle == key[2]
        ]
        out[label] = max(cum, default=0.0) / total
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--variants", nargs="+", default=["eager", "compile-layers", "compile-whole"]
    )
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    nnp_lab.set_threads(1)
    atoms = lfp_cell()
    model = TeaNet(elements=sorted(set(atoms.numbers.tolist())), **LIGHT_SETTINGS)
    eager = TorchModelPotential(model, name="light-teanet")
    t_eager = median_call(eager, atoms, args.calls)
    print(f"{len(atoms)} atoms, 1 thread, torch {torch.__version__}")
    print(f"eager: {1000 * t_eager:.2f} ms per energy + forces call")
    shares = breakdown(eager, atoms, args.calls)
    print("  where it goes: " + ", ".join(f"{k} {100 * v:.0f} %" for k, v in shares.items()))
    for variant in args.variants:
        if variant == "eager":
            continue
        compiled_model = copy.deepcopy(model)
        if variant == "compile-layers":
            for i, layer in enumerate(compiled_model.layers):
                compiled_model.layers[i] = torch.compile(layer, dynamic=True)
            compiled_model.readout = torch.compile(compiled_model.readout, dynamic=True)
        elif variant == "compile-whole":
            compiled_model.atomic_outputs = torch.compile(  # type: ignore[method-assign]
                compiled_model.atomic_outputs, dynamic=True
            )
        else:
            raise SystemExit(f"unknown variant {variant}")
        pot = TorchModelPotential(compiled_model, name=variant)
        t = time.perf_counter()
        pot.evaluate([atoms], ("energy", "forces"), validate=False)
        t_first = time.perf_counter() - t
        t_var = median_call(pot, atoms, args.calls)
        a = eager.evaluate([atoms], ("energy", "forces"), validate=False)[0]
        b = pot.evaluate([atoms], ("energy", "forces"), validate=False)[0]
        print(
            f"{variant}: {1000 * t_var:.2f} ms ({t_eager / t_var:.2f}x eager; compile + first "
            f"call {t_first:.0f} s); |dE| {abs(a['energy'] - b['energy']):.1e} eV, max |dF| "
            f"{np.abs(a['forces'] - b['forces']).max():.1e} eV/Å",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
