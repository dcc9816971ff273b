"""The three trainable architectures: contract, save/load, cutoffs, descriptors, training."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule
from scipy.spatial.transform import Rotation

from nnp_lab.errors import UncoveredElementsError
from nnp_lab.models import BehlerParrinello, SchNet, TeaNet
from nnp_lab.models._base import bump_cutoff, cosine_cutoff, edge_pairs
from nnp_lab.potentials import load_potential
from nnp_lab.potentials.torch_model import GraphBatch, TorchModelPotential, save_model
from nnp_lab.testing import Tolerances, check_potential, resolution, rounding_tolerances

ELEMENTS = ["H", "C", "O", "Cu", "Au"]


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """These models are small: intra-op threads only cost (and stall badly when other
    processes share the cores)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


# Small settings keep the file fast; the defaults are exercised by bench/model_speed.py.
SMALL = {
    "bpnn": (BehlerParrinello, {"cutoff": 5.0, "angular_cutoff": 3.5, "hidden": [16, 16]}),
    "bpnn-g4": (
        BehlerParrinello,
        {
            "cutoff": 5.0,
            "angular_cutoff": 3.5,
            "angular": "g4",
            "hidden": [16],
            "activation": "celu",
        },
    ),
    "schnet": (SchNet, {"cutoff": 5.0, "n_features": 16, "n_interactions": 2, "n_rbf": 12}),
    "teanet": (
        TeaNet,
        {"layer_cutoffs": [3.0, 4.0, 5.0], "n_scalar": 16, "n_vector": 8, "n_tensor": 4},
    ),
}


def make(name: str, *, seed: int = 0, elements=ELEMENTS, **overrides):
    """A small model whose weights depend only on ``seed`` (not on the global torch RNG,
    so neither on the tests that ran before)."""
    cls, kwargs = SMALL[name]
    return cls(elements=elements, seed=seed, **{**kwargs, **overrides})


def alloy() -> Atoms:
    atoms = bulk("Cu", "fcc", 3.7, cubic=True) * (2, 1, 1)
    atoms.numbers[[1, 4, 6]] = 79
    atoms.rattle(0.15, seed=1)
    return atoms


def ethanol() -> Atoms:
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=2)
    return atoms


def with_unit_forces(model, atoms: Atoms):
    """Scale the model output so that forces are O(1) eV/Å, as for a trained potential
    (untrained networks give ~1e-3 eV/Å), and shift the total energy near zero. The per-atom
    energies stay large (scale × NN_i, up to ~20 eV): see :func:`atomic_energy_scale`."""
    pot = TorchModelPotential(model, dtype="float64")
    scale = 1.0 / np.abs(pot.evaluate([atoms])[0]["forces"]).max()
    model.set_normalisation(shift=0.0, scale=scale)
    model.set_normalisation(shift=-pot.evaluate([atoms])[0]["energy"] / len(atoms), scale=scale)
    return model


def atomic_energy_scale(model, atoms: Atoms) -> float:
    """Mean |per-atom energy| (eV) of ``model`` on ``atoms``: what a float32 total is rounded
    at. The total of :func:`with_unit_forces` models is ~0, but it is a sum of terms of this
    size, so its rounding error is a few ulp of ``n_atoms`` times this, not of ~0."""
    graph = GraphBatch.from_structures([atoms], model.cutoff, dtype=torch.float64)
    vec = graph.positions[graph.edge_index[1]] - graph.positions[graph.edge_index[0]]
    vec = vec + graph.shifts @ graph.cells[0]
    with torch.no_grad():
        double = copy.deepcopy(model).double()
        atomic = double.atomic_energies(graph.numbers, graph.edge_index, vec)
    return float(atomic.abs().mean())


# -- contract -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("structure", [alloy, ethanol], ids=["periodic-CuAu", "ethanol"])
@pytest.mark.parametrize("name", sorted(SMALL))
def test_contract(name, structure, dtype):
    atoms = structure()
    model = with_unit_forces(make(name), atoms)
    # The contract's tolerances are a few ulp of the energy sum (nnp_lab.testing): tell it
    # the size of this model's per-atom terms instead of the 10 eV/atom default.
    tolerances = Tolerances.for_dtype(dtype, atomic_energy=atomic_energy_scale(model, atoms))
    pot = TorchModelPotential(model, dtype=dtype)
    forces = pot.evaluate([atoms])[0]["forces"]
    assert 0.5 < np.abs(forces).max() < 2.0
    report = check_potential(pot, atoms, tolerances=tolerances)
    assert report.passed
    assert "stress_vs_fd" in report.measured or not atoms.pbc.any()


@pytest.mark.parametrize("name", sorted(SMALL))
def test_energy_and_forces_smooth_at_the_cutoff(name):
    model = make(name, elements=["Cu"])
    pot = TorchModelPotential(model, dtype="float64")
    rc = model.cutoff
    dimer = lambda d: Atoms("Cu2", positions=[[0, 0, 0], [d, 0, 0]])  # noqa: E731
    scan = [pot.evaluate([dimer(d)])[0] for d in np.linspace(2.0, rc - 0.05, 25)]
    f_scale = max(abs(r["forces"][1, 0]) for r in scan)
    assert f_scale > 1e-6
    below, above = pot.evaluate([dimer(rc - 1e-4), dimer(rc + 1e-4)])
    assert abs(below["energy"] - above["energy"]) < 1e-6 * f_scale
    assert abs(below["forces"][1, 0]) < 1e-3 * f_scale
    assert np.all(above["forces"] == 0)


def test_cutoff_functions():
    r = torch.linspace(0.0, 6.0, 601, dtype=torch.float64, requires_grad=True)
    for fn, rc in [(cosine_cutoff, 5.0), (bump_cutoff, 4.0)]:
        f = fn(r, rc)
        (df,) = torch.autograd.grad(f.sum(), r)
        assert f[0] == 1.0 and torch.all(f[r >= rc] == 0) and torch.all(f[r < 0.9 * rc] > 0)
        assert torch.all(df <= 1e-15)  # monotonic
        assert torch.all(torch.isfinite(df))
        near = (r < rc) & (r > rc - 0.02)
        assert torch.all(f[near] < 1e-3) and torch.all(df[near].abs() < 0.1)
    # The bump is C∞: its second derivative also vanishes at the cutoff (the cosine's doesn't).
    x = torch.tensor([3.99], dtype=torch.float64, requires_grad=True)
    for fn, expect_flat in [(bump_cutoff, True), (cosine_cutoff, False)]:
        (d1,) = torch.autograd.grad(fn(x, 4.0).sum(), x, create_graph=True)
        (d2,) = torch.autograd.grad(d1.sum(), x)
        assert (abs(float(d2)) < 1e-10) == expect_flat


# -- save / load / config -------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ["bpnn", "schnet", "teanet"])
def test_save_load_reproduces_predictions_exactly(tmp_path, name, dtype):
    atoms = alloy()
    model = make(name, seed=3).to(getattr(torch, dtype))
    noise = torch.Generator().manual_seed(3)
    with torch.no_grad():  # weights as after training in this dtype (not float32-exact)
        for p in model.parameters():
            p.add_(1e-3 * torch.randn(p.shape, generator=noise, dtype=p.dtype))
    model.set_reference_energies({"Cu": -3.5, 79: -3.2, "H": -1.1})
    model.set_normalisation(shift=0.25, scale=1.7)
    if isinstance(model, BehlerParrinello):
        model.fit_descriptor_scaling([alloy(), ethanol()])
    before = TorchModelPotential(model, dtype=dtype).evaluate([atoms, ethanol()])
    path = save_model(
        model, tmp_path / f"{name}-{dtype}.pt", metadata={"name": name, "dtype": dtype}
    )
    pot = load_potential(path)
    after = pot.evaluate([atoms, ethanol()])
    for b, a in zip(before, after):
        assert a["energy"] == b["energy"]
        assert np.array_equal(a["forces"], b["forces"])
    assert np.array_equal(after[0]["stress"], before[0]["stress"])
    loaded = pot.model
    assert type(loaded) is type(model) and loaded.config == model.config
    assert loaded.get_reference_energies()[29] == pytest.approx(-3.5)
    assert float(loaded.energy_scale) == pytest.approx(1.7)
    # The reference energy really enters: E changes by exactly n_Cu * ΔE_ref.
    loaded.set_reference_energies({"Cu": -2.5, 79: -3.2, "H": -1.1})
    shifted = pot.evaluate([atoms])[0]
    n_cu = int((atoms.numbers == 29).sum())
    # Two totals of the same structure differ by the reference term only, up to the rounding
    # of each (a few ulp of the sum of ~3 eV per-atom terms: ~1e-4 eV in float32, ~2e-13 eV
    # in float64); a reference energy that does not enter is off by n_Cu eV.
    tol = Tolerances.for_dtype(dtype, atomic_energy=atomic_energy_scale(loaded, atoms))
    limit = 2 * rounding_tolerances(atoms, shifted, dtype, tolerances=tol)["energy"]
    assert shifted["energy"] - before[0]["energy"] == pytest.approx(n_cu * 1.0, abs=limit)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_config_is_json_and_rebuilds_the_model(name):
    model = make(name, elements=["Au", 29, "H"])
    assert model.elements == (1, 29, 79)
    config = json.loads(json.dumps(model.config))
    twin = type(model)(**config)
    twin.load_state_dict(model.state_dict())  # same architecture: strict load works
    assert twin.config == model.config and twin.cutoff == model.cutoff


def test_teanet_cutoff_is_the_largest_layer_cutoff():
    assert TeaNet(elements=["Cu"]).cutoff == 6.0
    assert TeaNet(elements=["Cu"]).config["layer_cutoffs"] == [3.0, 3.0, 4.0, 6.0, 6.0]
    assert TeaNet(elements=["Cu"], layer_cutoffs=[3, 4, 5]).cutoff == 5.0
    assert TeaNet(elements=["Cu"], cutoff=4.0).config["layer_cutoffs"] == [3.0, 3.0, 4.0, 4.0, 4.0]
    with pytest.raises(ValueError, match="differs from max"):
        TeaNet(elements=["Cu"], layer_cutoffs=[3, 4], cutoff=6.0)


# -- elements -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["bpnn", "schnet", "teanet"])
def test_uncovered_element_is_a_clear_error(name):
    model = make(name, elements=["Cu", "Au"])
    atoms = alloy()
    atoms.numbers[2] = 78  # Pt
    graph = GraphBatch.from_structures([atoms], model.cutoff)
    with pytest.raises(UncoveredElementsError, match=r"Pt not covered by this .* covered: Cu, Au"):
        graph.energy_forces_virial(model)
    # Through the Potential the same structure is refused before the model runs.
    with pytest.raises(UncoveredElementsError, match="Pt"):
        TorchModelPotential(model).evaluate([atoms])
    assert TorchModelPotential(model).elements == frozenset({29, 79})


# -- TeaNet ---------------------------------------------------------------------------------
def test_teanet_rotation_invariant_energy_equivariant_forces_float32():
    # PFP's 5 layers
    model = TeaNet(elements=ELEMENTS, n_scalar=16, n_vector=8, n_tensor=4, seed=5)
    pot = TorchModelPotential(with_unit_forces(model, alloy()), dtype="float32")
    eps = resolution("float32")
    for atoms in (alloy(), ethanol()):
        ref = pot.evaluate([atoms])[0]
        scale = np.abs(ref["forces"]).max()
        assert scale > 0.1
        # float32 rounding scale of the energy: Σ_i |scale · NN_i| (the shift is exact).
        graph = GraphBatch.from_structures([atoms], model.cutoff, dtype=torch.float32)
        vec = graph.positions[graph.edge_index[1]] - graph.positions[graph.edge_index[0]]
        vec = vec + graph.shifts @ graph.cells[0]
        with torch.no_grad():
            atomic = model.atomic_energies(graph.numbers, graph.edge_index, vec)
            e_abs = float((atomic - model.energy_shift).abs().sum())
        rots = Rotation.random(4, random_state=7).as_matrix()
        rotated = []
        for rot in rots:
            r = atoms.copy()
            r.positions = atoms.positions @ rot.T
            if atoms.pbc.any():
                r.set_cell(np.asarray(atoms.cell) @ rot.T)
            rotated.append(r)
        for rot, res in zip(rots, pot.evaluate(rotated)):
            assert abs(res["energy"] - ref["energy"]) < 16 * eps * e_abs
            np.testing.assert_allclose(res["forces"], ref["forces"] @ rot.T, atol=1e-4 * scale)
        # A reflection is not a rotation but the model is O(3)-invariant as well.
        mirrored = atoms.copy()
        mirrored.positions[:, 0] *= -1
        if atoms.pbc.any():
            cell = np.asarray(atoms.cell).copy()
            cell[:, 0] *= -1
            mirrored.set_cell(cell)
        res = pot.evaluate([mirrored])[0]
        assert abs(res["energy"] - ref["energy"]) < 16 * eps * e_abs
        np.testing.assert_allclose(res["forces"][:, 0], -ref["forces"][:, 0], atol=1e-4 * scale)


def _dimer_and_spectator(d: float) -> Atoms:
    """A Cu–Au dimer (2.4 Å) and a Cu atom at distance ``d`` from the nearer dimer atom."""
    return Atoms("CuAuCu", positions=[[0, 0, 0], [2.4, 0, 0], [2.4 + d, 0.0, 0.0]])


def test_teanet_layer_cutoffs_limit_what_each_layer_sees():
    pfp = make("teanet", layer_cutoffs=[3, 3, 4, 6, 6], seed=1).double()
    short = make("teanet", layer_cutoffs=[3, 3, 3, 3, 3], seed=1).double()
    energies = {}
    for label, model in [("pfp", pfp), ("short", short)]:
        # A neighbour list with 6.5 Å for both: the short model must ignore the long edges.
        graphs = [
            GraphBatch.from_structures([_dimer_and_spectator(d)], 6.5, dtype=torch.float64)
            for d in (3.3, 4.2, 5.5)
        ]
        energies[label] = [
            float(g.energy_forces_virial(model, stress=False)[0].detach()) for g in graphs
        ]
    assert max(energies["pfp"]) - min(energies["pfp"]) > 1e-6
    assert max(energies["short"]) - min(energies["short"]) < 1e-12
    # ... and equals the sum of the isolated parts.
    parts = GraphBatch.from_structures(
        [Atoms("CuAu", positions=[[0, 0, 0], [2.4, 0, 0]]), Atoms("Cu")], 6.5, dtype=torch.float64
    )
    separate = float(parts.energy_forces_virial(short, stress=False)[0].detach().sum())
    assert energies["short"][0] == pytest.approx(separate, abs=1e-12)


@pytest.mark.parametrize(
    ("cutoffs", "reach"),
    [([3.0, 3.0, 3.0], 3), ([3.0, 3.0, 6.0], 4), ([6.0, 3.0, 3.0], 4), ([6.0, 6.0], 4)],
)
def test_teanet_receptive_field_follows_the_layer_cutoffs(cutoffs, reach):
    """Chain with 2.5 Å spacing: the energy of atom 0 depends on atoms 0..reach only."""
    model = make("teanet", layer_cutoffs=cutoffs, elements=["Cu"], seed=2).double()
    chain = Atoms("Cu7", positions=[[2.5 * k, 0.3 * (k % 2), 0.0] for k in range(7)])
    graph = GraphBatch.from_structures([chain], 6.5, dtype=torch.float64)
    pos = graph.positions.clone().requires_grad_(True)
    vec = pos[graph.edge_index[1]] - pos[graph.edge_index[0]]
    e0 = model.atomic_energies(graph.numbers, graph.edge_index, vec)[0]
    (grad,) = torch.autograd.grad(e0, pos)
    depends = grad.abs().sum(dim=1) > 1e-12
    assert depends.tolist() == [k <= reach for k in range(7)]


# -- Behler–Parrinello descriptors ---------------------------------------------------------
@pytest.mark.parametrize("n_elements", [1, 2, 3, 4])
def test_bpnn_descriptor_count_grows_with_elements(n_elements):
    elements = ["H", "O", "Cu", "Au"][:n_elements]
    model = BehlerParrinello(
        elements=elements,
        radial_etas=[1.0, 4.0],
        radial_shifts=[1.0, 2.0, 3.0],
        angular_etas=[0.1],
        angular_zetas=[1.0, 2.0, 4.0],
        angular_lambdas=[-1.0, 1.0],
        seed=0,
    )
    n_radial, n_angular = 2 * 3, 1 * 3 * 2
    expected = n_elements * n_radial + n_elements * (n_elements + 1) // 2 * n_angular
    assert model.n_descriptors == expected == len(model.descriptor_labels)
    atoms = bulk("Cu", "fcc", 3.6) if "Cu" in elements else molecule("H2")
    assert model.descriptors(atoms).shape == (len(atoms), expected)
    assert model.networks[0][0].in_features == expected


def _naive_descriptors(model: BehlerParrinello, atoms: Atoms) -> np.ndarray:
    """Direct loops over atoms and pairs (molecule, no periodic images)."""
    rc, rca = model.cutoff, model.angular_cutoff
    fc = lambda r, c: 0.5 * (np.cos(np.pi * r / c) + 1) if r < c else 0.0  # noqa: E731
    zs = list(model.elements)
    pairs = [(a, b) for a in range(len(zs)) for b in range(a, len(zs))]
    out = []
    pos = atoms.positions
    for i in range(len(atoms)):
        radial = np.zeros((len(zs), model.n_radial))
        angular = np.zeros((len(pairs), model.n_angular))
        for j in range(len(atoms)):
            if j == i:
                continue
            rij = np.linalg.norm(pos[j] - pos[i])
            for k, (eta, rs) in enumerate(zip(model.radial_eta.tolist(), model.radial_rs.tolist())):
                radial[zs.index(atoms.numbers[j]), k] += np.exp(-eta * (rij - rs) ** 2) * fc(
                    rij, rc
                )
            for m in range(j + 1, len(atoms)):
                if m == i:
                    continue
                vij, vim = pos[j] - pos[i], pos[m] - pos[i]
                rim, rjm = np.linalg.norm(vim), np.linalg.norm(pos[m] - pos[j])
                cos = vij @ vim / (rij * rim)
                a, b = sorted((zs.index(atoms.numbers[j]), zs.index(atoms.numbers[m])))
                for k, (lam, zeta, eta) in enumerate(
                    zip(
                        model.angular_lambda.tolist(),
                        model.angular_zeta.tolist(),
                        model.angular_eta.tolist(),
                    )
                ):
                    g = 2 ** (1 - zeta) * (1 + lam * cos) ** zeta * fc(rij, rca) * fc(rim, rca)
                    r2 = rij**2 + rim**2
                    if model.angular == "g4":
                        g *= fc(rjm, rca)
                        r2 += rjm**2
                    angular[pairs.index((a, b)), k] += g * np.exp(-eta * r2)
        out.append(np.concatenate([radial.ravel(), angular.ravel()]))
    return np.array(out)


@pytest.mark.parametrize("angular", ["g5", "g4"])
def test_bpnn_symmetry_functions_match_direct_evaluation(angular):
    water_dimer = molecule("H2O")
    other = molecule("H2O")
    other.positions += [2.8, 0.3, 0.2]
    atoms = water_dimer + other
    model = BehlerParrinello(
        elements=["O", "H"], cutoff=5.0, angular_cutoff=3.5, angular=angular, seed=0
    ).double()
    ours = model.descriptors(atoms).numpy()
    np.testing.assert_allclose(ours, _naive_descriptors(model, atoms), rtol=1e-10, atol=1e-12)
    assert np.count_nonzero(ours[:, model.n_elements * model.n_radial :]) > 10  # angular non-zero


def test_bpnn_descriptor_scaling_standardises_the_training_set():
    frames = []
    for seed in range(4):
        atoms = alloy()
        atoms.rattle(0.05, seed=seed + 10)
        frames.append(atoms)
    model = BehlerParrinello(elements=["Cu", "Au"], cutoff=5.0, seed=0).double()
    raw = model.descriptors(frames)
    model.fit_descriptor_scaling(frames)
    scaled = model.descriptors(frames, standardised=True)
    varying = raw.std(dim=0) > 1e-3
    assert varying.sum() > 10
    np.testing.assert_allclose(scaled.mean(dim=0).numpy(), 0, atol=1e-10)
    np.testing.assert_allclose(scaled.std(dim=0, unbiased=False)[varying].numpy(), 1, rtol=1e-8)
    assert "descriptor_mean" in model.state_dict() and "descriptor_std" in model.state_dict()


def test_edge_pairs_enumerates_every_angle_once():
    centres = torch.tensor([2, 0, 2, 1, 2, 0, 2])
    first, second = edge_pairs(centres, 4)
    pairs = sorted(tuple(sorted(p)) for p in zip(first.tolist(), second.tolist()))
    expected = sorted((a, b) for a in range(7) for b in range(a + 1, 7) if centres[a] == centres[b])
    assert pairs == expected  # 2 has 4 edges -> 6 pairs, 0 has 2 -> 1, 1 and 3 none


# -- training -------------------------------------------------------------------------------
def _emt_frames():
    from ase.calculators.emt import EMT

    rng = np.random.default_rng(0)
    frames = []
    for k in range(6):
        atoms = bulk("Cu", "fcc", 3.65, cubic=True)
        atoms.numbers[rng.random(4) < 0.5] = 79
        atoms.rattle(0.12, seed=k)
        atoms.calc = EMT()
        frames.append((atoms, atoms.get_potential_energy(), atoms.get_forces()))
    return frames


@pytest.mark.parametrize("name", ["bpnn", "schnet", "teanet"])
def test_a_few_adam_steps_reduce_the_force_loss(name):
    frames = _emt_frames()
    structures = [f[0] for f in frames]
    model = make(name, elements=["Cu", "Au"], seed=4).double()
    if isinstance(model, BehlerParrinello):
        model.fit_descriptor_scaling(structures)
    energies = torch.tensor([f[1] for f in frames], dtype=torch.float64)
    forces = torch.tensor(np.concatenate([f[2] for f in frames]), dtype=torch.float64)
    n_atoms = torch.tensor([len(a) for a in structures], dtype=torch.float64)
    model.set_normalisation(shift=float((energies / n_atoms).mean()), scale=float(forces.std()))
    graph = GraphBatch.from_structures(structures, model.cutoff, dtype=torch.float64)
    optimiser = torch.optim.Adam(model.parameters(), lr=5e-3)

    def losses():
        e, f, _ = graph.energy_forces_virial(model, stress=False, create_graph=True)
        return ((e - energies) / n_atoms).pow(2).mean(), (f - forces).pow(2).mean()

    start = float(losses()[1].detach())
    for _ in range(20):
        optimiser.zero_grad()
        e_loss, f_loss = losses()
        (e_loss + f_loss).backward()
        optimiser.step()
    end = float(losses()[1].detach())
    print(f"{name}: force loss {start:.4f} -> {end:.4f}")
    assert end < 0.6 * start, (start, end)
