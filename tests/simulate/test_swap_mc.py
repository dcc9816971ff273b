"""Element-swap Monte Carlo: the Boltzmann distribution on toy models, composition,
reproducibility, options and the run machinery (stop, trajectory, events)."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
from ase import Atoms
from ase.constraints import FixAtoms
from ase.io import read
from ase.units import kB

from nnp_lab import build
from nnp_lab.errors import InputError
from nnp_lab.potentials.emt import EMTPotential
from nnp_lab.simulate import SwapMCResult, SwapMCStep, SwapMonteCarlo, swap_mc
from tests.simulate.potentials_for_tests import SiteEnergies

#: A test asserts agreement within this many standard errors of the chain's time average.
N_SIGMA = 5.0


def chain_on_sites(symbols: str, spacing: float = 2.5) -> Atoms:
    """Atoms in a row, far enough apart for the structure checks (the toy ignores geometry)."""
    n = len(Atoms(symbols))
    return Atoms(symbols, positions=[[spacing * i, 0.0, 0.0] for i in range(n)])


def exact_chain(pot: SiteEnergies, atoms: Atoms, temperature_K: float):
    """States (orderings), Boltzmann weights and the transition matrix of the swap chain.

    The proposal picks atom i uniformly, then j uniformly among the atoms of another element;
    the move is accepted with the Metropolis probability.
    """
    numbers = atoms.numbers
    states = sorted(set(itertools.permutations(numbers.tolist())))
    index = {s: k for k, s in enumerate(states)}
    energies = np.array([pot.energy(s) for s in states])
    beta = 1.0 / (kB * temperature_K)
    pi = np.exp(-beta * (energies - energies.min()))
    pi /= pi.sum()
    n = len(numbers)
    P = np.zeros((len(states), len(states)))
    for a, s in enumerate(states):
        s_arr = np.array(s)
        for i in range(n):
            others = np.flatnonzero(s_arr != s_arr[i])
            for j in others:
                t = s_arr.copy()
                t[[i, j]] = t[[j, i]]
                b = index[tuple(t.tolist())]
                accept = min(1.0, np.exp(-beta * (energies[b] - energies[a])))
                P[a, b] += accept / (n * len(others))
        P[a, a] += 1.0 - P[a].sum()
    return states, pi, P


def asymptotic_std(pi: np.ndarray, P: np.ndarray, k: int) -> float:
    """Standard deviation of the time average of [state == k] times sqrt(N), from the
    fundamental matrix Z = (I - P + 1 pi^T)^-1: sigma^2 = 2 <f, Z f>_pi - <f, f>_pi."""
    f = (np.arange(len(pi)) == k).astype(float) - pi[k]
    Z = np.linalg.inv(np.eye(len(pi)) - P + np.outer(np.ones(len(pi)), pi))
    var = 2.0 * np.sum(pi * f * (Z @ f)) - np.sum(pi * f * f)
    return float(np.sqrt(var))


def visit_frequencies(result: SwapMCResult, run: SwapMonteCarlo, states) -> np.ndarray:
    """Fraction of steps 1..N spent in each state, from the recorded events."""
    counts = Counter(run.visited)
    return np.array([counts.get(s, 0) for s in states], dtype=float) / result.n_steps


def run_recording_states(atoms, pot, **options):
    run = SwapMonteCarlo(atoms, pot, interval=10**9, **options)
    run.visited = []
    run.subscribe(
        lambda ev: run.visited.append(tuple(ev.numbers.tolist())) if ev.step > 0 else None
    )
    return run, run.run()


def test_two_state_chain_obeys_detailed_balance():
    delta = 0.03  # eV; kT at 300 K is 0.0259 eV
    pot = SiteEnergies([0.0, delta], {"Cu": 0.0, "Au": 1.0})
    atoms = chain_on_sites("CuAu")  # Au on the costly site: E = delta
    states, pi, P = exact_chain(pot, atoms, 300.0)
    run, res = run_recording_states(atoms, pot, temperature_K=300.0, steps=4000, seed=11)

    freq = visit_frequencies(res, run, states)
    for k in range(len(states)):
        sigma = asymptotic_std(pi, P, k) / np.sqrt(res.n_steps)
        assert abs(freq[k] - pi[k]) < N_SIGMA * sigma, (states[k], freq[k], pi[k], sigma)
    # Detailed balance itself: uphill moves are accepted with probability exp(-delta / kT)
    # (binomial), downhill ones always.
    uphill = res.trial_energy > res.energy[:-1] + 1e-12
    expected = np.exp(-delta / (kB * 300.0))
    n_up = int(uphill.sum())
    rate = res.accepted[uphill].mean()
    assert abs(rate - expected) < N_SIGMA * np.sqrt(expected * (1 - expected) / n_up)
    assert res.accepted[~uphill].all()


@pytest.mark.parametrize("batch", [1, 3])
def test_six_orderings_follow_the_boltzmann_distribution(batch):
    pot = SiteEnergies([0.0, 0.01, 0.025, 0.04], {"Cu": 0.0, "Au": 1.0})
    atoms = chain_on_sites("AuAuCuCu")
    states, pi, P = exact_chain(pot, atoms, 300.0)
    assert len(states) == 6
    run, res = run_recording_states(
        atoms, pot, temperature_K=300.0, steps=6000, seed=5, batch=batch
    )
    freq = visit_frequencies(res, run, states)
    for k in range(len(states)):
        sigma = asymptotic_std(pi, P, k) / np.sqrt(res.n_steps)
        assert abs(freq[k] - pi[k]) < N_SIGMA * sigma, (states[k], freq[k], pi[k], sigma)
    if batch > 1:  # the proposals after an accepted one were evaluated and discarded
        assert res.n_evaluations > res.n_steps
    else:
        assert res.n_evaluations == res.n_steps


@pytest.fixture(scope="module")
def particle() -> Atoms:
    return build.nanoparticle({"Cu": 0.5, "Au": 0.5}, shape="cuboctahedron", size=2, seed=3)


def test_composition_is_conserved_and_energies_are_the_models(particle):
    pot = EMTPotential()
    res = swap_mc(
        particle, pot, temperature_K=800, steps=60, seed=2, interval=5, md_every=20, md_steps=5
    )
    start = Counter(particle.get_chemical_symbols())
    for frame in [*res.frames, res.atoms, res.lowest]:
        assert Counter(frame.get_chemical_symbols()) == start
    assert res.n_accepted > 0
    assert res.md_steps == 2 * 5  # after trials 20 and 40
    final = pot.evaluate(res.atoms)[0]["energy"]
    assert res.atoms.get_potential_energy() == pytest.approx(final, rel=1e-12, abs=1e-9)
    assert res.lowest_energy <= res.energy.min() + 1e-12
    # Positions moved only through the MD segments.
    assert not np.allclose(res.atoms.positions, particle.positions)
    assert Counter(particle.get_chemical_symbols()) == start  # input untouched


def test_same_seed_same_run_and_another_seed_another(particle):
    pot = EMTPotential()
    a = swap_mc(particle, pot, temperature_K=600, steps=40, seed=7, batch=2)
    b = swap_mc(particle, pot, temperature_K=600, steps=40, seed=7, batch=2)
    c = swap_mc(particle, pot, temperature_K=600, steps=40, seed=8, batch=2)
    assert np.array_equal(a.swaps, b.swaps)
    assert np.array_equal(a.accepted, b.accepted)
    assert np.array_equal(a.energy, b.energy)
    assert np.array_equal(a.atoms.numbers, b.atoms.numbers)
    assert not np.array_equal(a.swaps, c.swaps)
    assert a.provenance["parameters"]["seed"] == 7


def test_zero_temperature_only_goes_downhill(particle):
    res = swap_mc(particle, EMTPotential(), temperature_K=0, steps=60, seed=1)
    assert np.all(np.diff(res.energy) <= 0)
    uphill = res.trial_energy > res.energy[:-1]
    assert not res.accepted[uphill].any()
    assert res.accepted.any()


def test_only_the_chosen_elements_and_free_atoms_swap():
    atoms = build.nanoparticle(
        {"Cu": 0.4, "Au": 0.4, "Pt": 0.2}, shape="cuboctahedron", size=2, seed=4
    )
    pot = EMTPotential()
    pt_before = atoms.numbers == 78
    res = swap_mc(atoms, pot, temperature_K=2000, steps=40, seed=0, elements=["Cu", "Au"])
    assert np.array_equal(res.atoms.numbers == 78, pt_before)
    assert res.n_accepted > 0
    swapped = set(res.swaps.ravel().tolist())
    assert not swapped & set(np.flatnonzero(pt_before).tolist())

    fixed = atoms.copy()
    frozen = list(range(6))
    fixed.set_constraint(FixAtoms(indices=frozen))
    res = swap_mc(fixed, pot, temperature_K=2000, steps=40, seed=0)
    assert not set(res.swaps.ravel().tolist()) & set(frozen)
    assert np.array_equal(res.atoms.numbers[frozen], fixed.numbers[frozen])

    res = swap_mc(atoms, pot, temperature_K=2000, steps=20, seed=0, indices=range(8))
    assert set(res.swaps.ravel().tolist()) <= set(range(8))


def test_bad_input_is_explained(particle):
    with pytest.raises(InputError, match="at least two elements"):
        swap_mc(
            build.nanoparticle("Cu", shape="cuboctahedron", size=2),
            "emt",
            temperature_K=300,
            steps=5,
        )
    with pytest.raises(InputError, match="at least two elements"):
        swap_mc(particle, "emt", temperature_K=300, steps=5, elements=["Cu"])
    with pytest.raises(InputError, match="unknown element"):
        swap_mc(particle, "emt", temperature_K=300, steps=5, elements=["Cu", "Xx"])
    with pytest.raises(InputError, match="indices"):
        swap_mc(particle, "emt", temperature_K=300, steps=5, indices=[0, 999])
    with pytest.raises(InputError, match="temperature_K"):
        swap_mc(particle, "emt", temperature_K=-1, steps=5)
    with pytest.raises(InputError, match="batch"):
        swap_mc(particle, "emt", temperature_K=300, steps=5, batch=0)
    with pytest.raises(InputError, match="ase.Atoms"):
        swap_mc("CuAu", "emt", temperature_K=300, steps=5)


def test_stop_from_a_subscriber_keeps_a_consistent_partial_result(particle, tmp_path):
    run = SwapMonteCarlo(
        particle,
        "emt",
        temperature_K=900,
        steps=100,
        seed=3,
        interval=4,
        trajectory=tmp_path / "mc.traj",
    )
    seen: list[SwapMCStep] = []

    def on_event(ev):
        seen.append(ev)
        if ev.step == 10:
            run.stop()

    run.subscribe(on_event)
    res = run.run()
    assert res.stopped
    assert res.n_steps == 10 == len(res.trial_energy) == len(res.energy) - 1
    assert [e.step for e in seen] == list(range(11))
    assert seen[-1].n_accepted == res.n_accepted
    assert seen[-1].acceptance_rate == pytest.approx(res.acceptance_rate)
    frames = read(tmp_path / "mc.traj", index=":")
    assert [f.info["step"] for f in res.frames] == [0, 4, 8]
    assert len(frames) == 3
    assert np.array_equal(frames[-1].numbers, res.frames[-1].numbers)
    # Events are frozen and carry the elements after the decision.
    assert np.array_equal(seen[-1].numbers, res.atoms.numbers)
    with pytest.raises(ValueError):
        seen[-1].numbers[0] = 1
    text = res.summary()
    assert "10 trials" in text and "stopped early" in text


def test_running_acceptance_is_a_window_average():
    pot = SiteEnergies([0.0, 0.03], {"Cu": 0.0, "Au": 1.0})
    res = swap_mc(chain_on_sites("CuAu"), pot, temperature_K=300, steps=200, seed=1)
    window = res.running_acceptance(window=20)
    assert len(window) == res.n_steps
    assert window[-1] == pytest.approx(res.accepted[-20:].mean())
    assert window[4] == pytest.approx(res.accepted[:5].mean())
