"""nnp_lab's own SevenNet-0 (sevennet_fast) against the upstream sevenn model, same weights."""

import numpy as np
import pytest
import torch
from ase.build import bulk

from nnp_lab import build
from nnp_lab.potentials import load_potential
from nnp_lab.potentials.sevennet import _MODELS, _checkpoint_path
from nnp_lab.potentials._sevennet_convolution import Convolution
from nnp_lab.potentials._sevennet_geometry import PathBlock
from nnp_lab.potentials.sevennet_fast import (
    SILU_SECOND_MOMENT_CONSTANT,
    SevenNetFastPotential,
    load_sevennet_checkpoint,
    spherical_harmonics,
)
from nnp_lab.testing import check_potential, resolution, rounding_tolerances

pytestmark = pytest.mark.slow

# Two implementations of one float32 model (different operation order): eV/atom, eV/Å, eV/Å³.
E_PER_ATOM, FORCE, STRESS = 1e-4, 1e-3, 1e-4
F32_EPS = resolution("float32")


def _rattled(atoms, seed, stdev=0.05):
    atoms = atoms.copy()
    atoms.rattle(stdev, seed=seed)
    return atoms


@pytest.fixture(scope="module")
def structures():
    slab = build.surface(
        build.bulk("Pt", "fcc", a=3.92), (1, 1, 1), layers=4, vacuum=10, fixed_layers=2, size=(3, 3)
    )
    return {
        "Si64": _rattled(bulk("Si", "diamond", 5.43, cubic=True) * (2, 2, 2), 1),
        "Cu32": _rattled(bulk("Cu", "fcc", 3.61, cubic=True) * (2, 2, 2), 2),
        "CO/Pt(111)": _rattled(build.add_adsorbate(slab, "CO", "fcc", height=1.3), 3, 0.02),
        "Mg-MOF-74": _rattled(build.crystal("Mg-MOF-74", primitive=True), 4, 0.02),
        "ethanol": _rattled(build.molecule("CCO"), 5, 0.02),
    }


@pytest.fixture(scope="module")
def ours():
    pot = load_potential("sevennet-0", device="cpu")
    assert isinstance(pot, SevenNetFastPotential)
    return pot


@pytest.fixture(scope="module")
def upstream_results(structures):
    upstream = load_potential("sevennet-0-upstream", device="cpu")
    return [upstream.evaluate([a])[0] for a in structures.values()]


def test_matches_upstream(ours, structures, upstream_results):
    mine = ours.evaluate(list(structures.values()))  # one batched graph
    for (name, atoms), a, b in zip(structures.items(), mine, upstream_results):
        n = len(atoms)
        assert abs(a["energy"] - b["energy"]) / n < E_PER_ATOM, name
        assert np.max(np.abs(a["forces"] - b["forces"])) < FORCE, name
        assert ("stress" in a) == ("stress" in b) == bool(atoms.pbc.any()), name
        if "stress" in a:
            assert np.max(np.abs(a["stress"] - b["stress"])) < STRESS, name


def assert_same_result(a, b, atoms, pot):
    """Two evaluations of one structure agree to float rounding of the sums involved (a few
    ulp of the energy sum, of the force and of the stress sums: nnp_lab.testing), never to an
    absolute number: one ulp of the float32 energy of Si64 (~350 eV) is already 3e-5 eV."""
    tol = rounding_tolerances(atoms, a, pot.dtype, cutoff=pot.cutoff)
    assert abs(a["energy"] - b["energy"]) <= tol["energy"]
    if "forces" in a and "forces" in b:
        np.testing.assert_allclose(a["forces"], b["forces"], rtol=0, atol=tol["forces"])
    if "stress" in a and "stress" in b:
        np.testing.assert_allclose(a["stress"], b["stress"], rtol=0, atol=tol["stress"])


def test_batch_equals_single_calls(ours, structures):
    batch = ours.evaluate(list(structures.values()))
    for atoms, b in zip(structures.values(), batch):
        single = ours.evaluate([atoms])[0]
        assert ("stress" in single) == ("stress" in b)
        assert_same_result(single, b, atoms, ours)


def test_energy_only_and_no_stress_requests(ours, structures):
    atoms = structures["Cu32"]
    full = ours.evaluate([atoms])[0]
    e_only = ours.evaluate([atoms], ("energy",))[0]
    ef = ours.evaluate([atoms], ("energy", "forces"))[0]
    assert set(e_only) == {"energy"} and set(ef) == {"energy", "forces"}
    assert_same_result(full, e_only, atoms, ours)
    assert_same_result(full, ef, atoms, ours)
    with torch.inference_mode():  # a caller's no-grad context does not break forces
        inside = ours.evaluate([atoms])[0]
    assert_same_result(full, inside, atoms, ours)


def test_contract(ours, structures):
    report = check_potential(ours, structures["CO/Pt(111)"])
    assert report.passed and "stress_vs_fd" in report.measured


def test_verlet_cache_reuses_and_rebuilds_lists(structures):
    path = _checkpoint_path(_MODELS["sevennet-0"][0])
    cached = SevenNetFastPotential(path, skin=0.6)
    fresh = SevenNetFastPotential(path, skin=0.0)
    atoms = structures["Si64"].copy()
    reference = atoms.positions.copy()
    rng = np.random.default_rng(0)

    def same(a):
        x, y = cached.evaluate([a])[0], fresh.evaluate([a])[0]
        assert_same_result(y, x, a, fresh)

    same(atoms)
    assert cached.neighbours.n_builds == 1
    atoms.positions += rng.uniform(-0.15, 0.15, atoms.positions.shape)  # < skin / 2 = 0.3 Å
    same(atoms)
    assert cached.neighbours.n_builds == 1  # reused
    atoms.positions[5] = reference[5] + [0.35, 0.0, 0.0]  # past skin / 2: rebuild
    same(atoms)
    assert cached.neighbours.n_builds == 2
    strained = atoms.copy()
    strained.set_cell(atoms.cell * 1.01, scale_atoms=True)  # new cell: rebuild
    same(strained)
    assert cached.neighbours.n_builds == 3


def test_conventions_match_e3nn_and_the_checkpoint():
    """Spherical harmonics and the SiLU normalisation are e3nn's; the coupling coefficients
    are e3nn's Wigner-3j symbols up to sign, with the checkpoint's signs."""
    o3 = pytest.importorskip("e3nn.o3")
    from e3nn.math import normalize2mom

    vec = torch.randn(50, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ref = o3.spherical_harmonics([0, 1, 2], vec, normalize=True, normalization="component")
    unit = vec / vec.norm(dim=1, keepdim=True)
    torch.testing.assert_close(spherical_harmonics(unit), ref)

    state, _ = load_sevennet_checkpoint(_checkpoint_path(_MODELS["sevennet-0"][0]))
    buffers = {k.rsplit("_w3j_", 1)[1]: v for k, v in state.items() if "_w3j_" in k}
    for l1 in range(3):
        block = PathBlock.build(l1, 2)
        coupling = block.coupling(state).view(9, len(block.rows), 2 * l1 + 1)
        for k, (l2, l3) in enumerate(block.paths):
            rows = [r for r, (kk, _, _) in enumerate(block.rows) if kk == k]
            ours = coupling[l2 * l2 : (l2 + 1) ** 2][:, rows].permute(2, 0, 1)  # (m1, m2, m3)
            ours = ours / (2 * l3 + 1) ** 0.5
            e3nn = o3.wigner_3j(l1, l2, l3, dtype=torch.float64)
            sign = 1.0 if 0 in (l1, l2, l3) else float(torch.sign((ours * e3nn).sum()))
            # |3j| <= 1 and the checkpoint stores them in float32 (<= 0.5 ulp off e3nn's
            # float64; measured <= 1.5e-8): 8 ulp of 1 allows for that, not for a wrong value
            torch.testing.assert_close(ours, sign * e3nn, atol=8 * F32_EPS, rtol=0)
            if 0 not in (l1, l2, l3):
                checkpoint = buffers[f"{l1}_{l2}_{l3}"].double()
                torch.testing.assert_close(ours, checkpoint, atol=F32_EPS, rtol=0)
    silu = normalize2mom(torch.nn.functional.silu)
    assert silu.cst == pytest.approx(SILU_SECOND_MOMENT_CONSTANT, rel=1e-12)


def test_convolution_backward_is_the_gradient():
    """The hand-written backward of the edge convolution against finite differences."""
    gen = torch.Generator().manual_seed(0)
    n_atoms, n_pairs, mul = 5, 11, 3
    block = PathBlock.build(1, 2)
    rows = len(block.rows)
    segments = block.segments(2)
    layout = ((0, rows, segments),)
    row_path = torch.tensor(
        [p0 + (r - first) % n_p for first, end, p0, n_p, _ in segments for r in range(first, end)]
    )
    n_w = len(block.paths) * mul
    pairs = torch.randint(0, n_atoms, (2, n_pairs), generator=gen)
    receiver, sender = torch.cat([pairs[0], pairs[1]]), torch.cat([pairs[1], pairs[0]])

    def rnd(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64, requires_grad=True)

    w, x, a = rnd(n_pairs, n_w), rnd(n_atoms, 3, mul), rnd(2 * n_pairs, rows, 3)

    def fn(w, x, a):
        return Convolution.apply(layout, sender, receiver, w, x, a, row_path)[0]

    assert torch.autograd.gradcheck(fn, (w, x, a), eps=1e-6, atol=1e-6, fast_mode=True)
