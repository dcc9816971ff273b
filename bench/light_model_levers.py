"""Levers on the light TeaNet's per-call cost (issue 13), measured one by one. Prints numbers.

The light distilled model (``LIGHT_SETTINGS``) spends its step on a fixed number of small
torch operations. This times one energy + forces call on LiFePO4 (1×1×2, 56 atoms; weights
as initialised, which does not change the operation count) at 1 thread:

- ``eager``: as shipped;
- ``compile-layers``: ``torch.compile(dynamic=True)`` on each message-passing layer and the
  readout (the neighbour bookkeeping, with its data-dependent sizes, stays eager);
- ``compile-whole``: ``torch.compile(dynamic=True)`` on ``atomic_outputs`` (graph breaks
  where the bookkeeping reads sizes);
- ``fused-geometry``: the bond geometry (``r``, ``r̂``, ``r̂⊗r̂``) and each layer's cutoff and
  Gaussians fused by hand into three autograd nodes with written-out backward passes
  (about 55 fewer recorded operations forward and as many backward), timed **interleaved**
  call by call with eager (the machine's drift cancels), gradients checked first with
  ``torch.autograd.gradcheck`` / ``gradgradcheck`` in float64;

and, for ``eager``, where the time goes (cProfile: backward pass, layers forward, neighbour
list, graph building) and its speed against the teacher (``--teacher``, our SevenNet-0) on
the same cell. Each compiled variant is checked against eager on the same
positions (energy and force differences printed).

Usage::

    python bench/light_model_levers.py               # all variants (~3 min on 2 cores)
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
from nnp_lab.models import teanet  # noqa: E402
from nnp_lab.models._base import bump_cutoff  # noqa: E402
from nnp_lab.models.teanet import LIGHT_SETTINGS, TeaNet  # noqa: E402
from nnp_lab.potentials.torch_model import TorchModelPotential  # noqa: E402

PARTS = {  # file:(function) at any line, or part of a built-in's name
    "backward pass": "run_backward",
    "layers forward": "teanet.py:(forward)",
    "neighbour list": "neighbours.py:(neighbour_list)",
    "graph inputs": "torch_model.py:(from_structures)",
}


class BondGeometry(torch.autograd.Function):
    """``r``, ``r̂`` and ``r̂⊗r̂`` of bond vectors ``(n, D, 3)`` as one node (the
    ``fused-geometry`` lever); under ``create_graph`` the backward is rebuilt from the input
    with ordinary operations, so second derivatives stay exact."""

    @staticmethod
    def forward(ctx, vec):
        r = torch.linalg.vector_norm(vec, dim=2)
        rhat = vec / r[..., None]
        ctx.save_for_backward(vec, r, rhat)
        return r, rhat, (rhat[..., :, None] * rhat[..., None, :]).flatten(2)

    @staticmethod
    def backward(ctx, g_r, g_rhat, g_rr):
        vec, r, rhat = ctx.saved_tensors
        if torch.is_grad_enabled():
            r = torch.linalg.vector_norm(vec, dim=2)
            rhat = vec / r[..., None]
        g = torch.zeros_like(vec) if g_rhat is None else g_rhat
        if g_rr is not None:  # d(r̂_a r̂_b)/d r̂ contracted with G: (G + Gᵀ) r̂
            G = g_rr.unflatten(2, (3, 3))
            g = g + ((G + G.transpose(2, 3)) @ rhat[..., None])[..., 0]
        grad = (g - (g * rhat).sum(2, keepdim=True) * rhat) / r[..., None]  # (1 - r̂r̂ᵀ)/r
        return grad if g_r is None else grad + g_r[..., None] * rhat


class RadialBasis(torch.autograd.Function):
    """A layer's bump cutoff ``(n, D, 1)`` and Gaussians ``(n, D, K)`` as one node."""

    @staticmethod
    def forward(ctx, r, cutoff, centres, gamma):
        fc, rbf, dfc, drbf = radial_terms(r, cutoff, centres, gamma)
        ctx.save_for_backward(r, centres, dfc, drbf)
        ctx.cutoff, ctx.gamma = cutoff, gamma
        return fc[..., None], rbf

    @staticmethod
    def backward(ctx, g_fc, g_rbf):
        r, centres, dfc, drbf = ctx.saved_tensors
        if torch.is_grad_enabled():
            _, _, dfc, drbf = radial_terms(r, ctx.cutoff, centres, ctx.gamma)
        g_r = torch.zeros_like(r)
        if g_fc is not None:
            g_r = g_r + g_fc[..., 0] * dfc
        if g_rbf is not None:
            g_r = g_r + (g_rbf * drbf).sum(2)
        return g_r, None, None, None


def radial_terms(r, cutoff, centres, gamma):
    """The bump cutoff, the Gaussians and their derivatives with respect to ``r``."""
    fc = bump_cutoff(r, cutoff)
    u = 1.0 - (r / cutoff) ** 2
    u_safe = torch.where(fc > 0, u, torch.ones_like(u))
    dfc = fc * (-2.0 / cutoff**2) * r / (u_safe * u_safe)  # d/dr exp(1 - 1/u)
    d = r[..., None] - centres
    rbf = torch.exp(-gamma * d * d)
    return fc, rbf, dfc, (-2.0 * gamma) * d * rbf


def check_fused_gradients() -> None:
    """The fused nodes equal the plain expressions, with exact first and second derivatives."""
    gen = torch.Generator().manual_seed(3)
    vec = (2.0 * torch.randn(4, 5, 3, generator=gen, dtype=torch.float64)).requires_grad_()
    for a, b in zip(BondGeometry.apply(vec), teanet._bond_geometry(vec)):
        torch.testing.assert_close(a, b)
    dist = torch.linspace(0.3, 4.4, 24, dtype=torch.float64).view(4, 6).requires_grad_()
    centres = torch.linspace(0.0, 4.0, 5, dtype=torch.float64)

    def radial(x):
        return RadialBasis.apply(x, 4.0, centres, 0.7)

    for a, b in zip(radial(dist), teanet._radial_basis(dist, 4.0, centres, 0.7)):
        torch.testing.assert_close(a, b)
    for fn, x in ((BondGeometry.apply, vec), (radial, dist)):
        assert torch.autograd.gradcheck(fn, (x,)) and torch.autograd.gradgradcheck(fn, (x,))


def interleaved(potential, atoms, calls: int, plain, fused) -> tuple[float, float]:
    """Median seconds per call with the plain and the fused geometry, alternating calls."""
    times: dict[bool, list[float]] = {False: [], True: []}
    for k in range(2 * calls + 20):
        use_fused = bool(k % 2)
        teanet._bond_geometry, teanet._radial_basis = fused if use_fused else plain
        atoms.positions[0, 0] += 1e-4
        t = time.perf_counter()
        potential.evaluate([atoms], ("energy", "forces"), validate=False)
        if k >= 20:
            times[use_fused].append(time.perf_counter() - t)
    teanet._bond_geometry, teanet._radial_basis = plain
    return statistics.median(times[False]), statistics.median(times[True])


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
            if needle == f"{Path(key[0]).name}:({key[2]})" or needle in key[2]
        ]
        out[label] = max(cum, default=0.0) / total
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["eager", "fused-geometry", "compile-layers", "compile-whole"],
    )
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument(
        "--teacher",
        default="sevennet-0",
        help="time this potential on the same cell for the speed ratio ('' to skip)",
    )
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
    if args.teacher:
        teacher = nnp_lab.load_potential(args.teacher)
        t_teacher = median_call(teacher, atoms, max(5, args.calls // 10))
        t_light = median_call(eager, atoms, args.calls)
        print(
            f"teacher {args.teacher}: {1000 * t_teacher:.1f} ms per call; the light model "
            f"({1000 * t_light:.2f} ms, timed again) is {t_teacher / t_light:.1f}x faster",
            flush=True,
        )
    for variant in args.variants:
        if variant == "eager":
            continue
        if variant == "fused-geometry":
            check_fused_gradients()
            plain = (teanet._bond_geometry, teanet._radial_basis)
            fused = (BondGeometry.apply, RadialBasis.apply)
            a = eager.evaluate([atoms], ("energy", "forces"), validate=False)[0]
            teanet._bond_geometry, teanet._radial_basis = fused
            b = eager.evaluate([atoms], ("energy", "forces"), validate=False)[0]
            teanet._bond_geometry, teanet._radial_basis = plain
            t_plain, t_fused = interleaved(eager, atoms, 10 * args.calls, plain, fused)
            print(
                f"fused-geometry: {1000 * t_fused:.2f} ms vs eager {1000 * t_plain:.2f} ms "
                f"interleaved ({t_plain / t_fused:.3f}x eager; gradcheck and gradgradcheck "
                f"passed); |dE| {abs(a['energy'] - b['energy']):.1e} eV, max |dF| "
                f"{np.abs(a['forces'] - b['forces']).max():.1e} eV/Å",
                flush=True,
            )
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
