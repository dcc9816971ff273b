"""Element-swap Monte Carlo: the chemical ordering of an alloy at a temperature.

:func:`swap_mc` is the one-call entry point; :class:`SwapMonteCarlo` is the run object behind
it. Each step proposes to exchange the elements of two atoms of different species (the
composition is conserved), evaluates the structure with the swap at fixed positions, and
accepts it with the Metropolis probability ``min(1, exp(-ΔE / k_B T))``. Optionally a short
Langevin MD segment at the same temperature runs every ``md_every`` steps, so the positions
follow the new ordering (local strain around a swapped pair).

The proposal picks an atom ``i`` uniformly among the swappable ones, then ``j`` uniformly
among the swappable atoms of another element. Swapping keeps every element's count, so the
reverse proposal has the same probability and the chain obeys detailed balance with respect
to the Boltzmann distribution over orderings (tested on toy models with known distributions).

``batch=k`` evaluates ``k`` proposals from the current state in one model call and goes
through them in order until the first accepted one; the proposals after it are discarded
(they were made from a state that no longer holds). As long as the state does not change
— every rejected proposal — this is the sequential chain, so the result is a valid Markov
chain for any ``k``; larger ``k`` wastes evaluations when the acceptance rate is high and saves
per-call overhead (large on a GPU) when it is low.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols
from ase.units import kB

from nnp_lab import validation
from nnp_lab.errors import InputError
from nnp_lab.potentials import Potential
from nnp_lab.simulate._keywords import forwarded
from nnp_lab.simulate._md_options import checked_seed
from nnp_lab.simulate._run import Event, Run, RunResult, frozen_array, run_to_end

__all__ = ["SwapMCStep", "SwapMCResult", "SwapMonteCarlo", "swap_mc"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SwapMCStep(Event):
    """One swap trial (step 0: the starting structure, no trial).

    ``energy`` (inherited) is the potential energy of the current structure *after* the
    decision, in eV.

    Attributes
    ----------
    numbers : numpy.ndarray
        Atomic numbers after the decision (read-only).
    swapped : tuple of int or None
        The two atoms whose elements were proposed for exchange (None at step 0).
    trial_energy : float
        Energy of the structure with the swap, eV (the current energy at step 0).
    delta_energy : float
        ``trial_energy`` minus the energy before the trial, eV.
    accepted : bool
        Whether the swap was accepted (False at step 0).
    n_accepted : int
        Accepted swaps so far.
    acceptance_rate : float
        ``n_accepted / step`` (0 at step 0).
    temperature_K : float
        Temperature of the Metropolis criterion.
    md_steps : int
        MD steps run so far between swaps.
    """

    numbers: np.ndarray
    swapped: tuple[int, int] | None
    trial_energy: float
    delta_energy: float
    accepted: bool
    n_accepted: int
    acceptance_rate: float
    temperature_K: float
    md_steps: int = 0


@dataclass(repr=False)
class SwapMCResult(RunResult):
    """Outcome of a swap Monte Carlo run.

    Attributes
    ----------
    atoms : ase.Atoms
        Final structure (new object) with its single-point energy attached.
    lowest : ase.Atoms
        The lowest-energy structure visited.
    frames : list of ase.Atoms
        Recorded structures (step 0, every ``interval`` steps and the last), with single-point
        energies; ``frame.info`` holds ``step`` and ``n_accepted``. Their elements differ
        from frame to frame, so a viewer shows them one at a time.
    energy : numpy.ndarray
        Current energy after each decision, eV (index 0: the start), length ``n_steps + 1``.
        An MD segment changes the energy between two entries; the next trial's ΔE is taken
        from the energy after the MD.
    trial_energy : numpy.ndarray
        Energy of each proposed swap, eV (length ``n_steps``).
    accepted : numpy.ndarray
        Whether each proposal was accepted (bool, length ``n_steps``).
    swaps : numpy.ndarray
        The pair of atoms of each proposal, shape ``(n_steps, 2)``.
    n_steps : int
        Swap trials done.
    n_evaluations : int
        Structures evaluated for trials (more than ``n_steps`` with ``batch > 1``: the
        proposals discarded after an accepted one).
    md_steps : int
        MD steps run between swaps in total.
    temperature_K : float
    """

    atoms: Atoms
    lowest: Atoms
    frames: list[Atoms]
    energy: np.ndarray
    trial_energy: np.ndarray
    accepted: np.ndarray
    swaps: np.ndarray
    n_steps: int
    n_evaluations: int
    md_steps: int
    temperature_K: float

    @property
    def n_accepted(self) -> int:
        """Accepted swaps."""
        return int(np.count_nonzero(self.accepted))

    @property
    def acceptance_rate(self) -> float:
        """Accepted swaps per trial (NaN before the first trial)."""
        return self.n_accepted / self.n_steps if self.n_steps else math.nan

    @property
    def lowest_energy(self) -> float:
        """Energy of :attr:`lowest`, eV."""
        return float(self.lowest.get_potential_energy())

    def running_acceptance(self, window: int = 100) -> np.ndarray:
        """Acceptance rate over the last ``window`` trials at each step (length ``n_steps``)."""
        window = validation.integer("window", window, minimum=1)
        acc = self.accepted.astype(float)
        csum = np.concatenate([[0.0], np.cumsum(acc)])
        idx = np.arange(1, len(acc) + 1)
        lo = np.maximum(idx - window, 0)
        return (csum[idx] - csum[lo]) / (idx - lo)

    def summary(self) -> str:
        """A few lines: trials, acceptance, energy change."""
        n = len(self.atoms)
        model = self.provenance.get("model", "?")
        lines = [
            f"swap MC of {self.atoms.get_chemical_formula()} ({n} atoms) with {model} at "
            f"{self.temperature_K:g} K: {self.n_steps} trials, {self.n_accepted} accepted "
            f"({100 * (self.acceptance_rate if self.n_steps else 0):.1f} %)"
            + (" (stopped early)" if self.stopped else ""),
            f"  energy {self.energy[0]:.4f} -> {self.energy[-1]:.4f} eV "
            f"({(self.energy[-1] - self.energy[0]) / n:+.4f} eV/atom); lowest "
            f"{self.lowest_energy:.4f} eV",
        ]
        if self.md_steps:
            lines.append(f"  {self.md_steps} MD steps between swaps")
        return self._summary_text(lines, f" ({len(self.frames)} frames)")

    def __repr__(self) -> str:
        return (
            f"SwapMCResult({self.atoms.get_chemical_formula()}, n_steps={self.n_steps}, "
            f"accepted={self.n_accepted}, T={self.temperature_K:g} K, stopped={self.stopped}, "
            f"trajectory={self._trajectory_repr})"
        )


class SwapMonteCarlo(Run):
    """A swap Monte Carlo run that yields a :class:`SwapMCStep` per trial.

    Parameters
    ----------
    atoms
        Starting structure (not modified); an alloy with at least two elements among the
        swappable atoms.
    potential
        A :class:`~nnp_lab.potentials.Potential`, a registered name or None (default model).
    temperature_K
        Temperature of the Metropolis criterion, K (0: only swaps that lower the energy).
    steps
        Number of swap trials.
    elements
        Only atoms of these elements swap (e.g. the metals of a particle with an adsorbate);
        default every element of the swappable atoms.
    indices
        Only these atoms swap (e.g. the surface shell); default all atoms not fixed by a
        ``FixAtoms`` constraint.
    batch
        Proposals evaluated per model call (see the module notes; 1 is the plain chain).
    md_every
        Run ``md_steps`` Langevin MD steps at ``temperature_K`` after every ``md_every``
        trials (0: never; positions stay fixed).
    md_steps, timestep_fs
        Length and time step of each MD segment.
    interval
        Record a frame every ``interval`` trials.
    trajectory
        ``.traj`` path to write the frames to as they are produced.
    seed
        Seed of the proposals, the acceptance draws and the MD: same seed, same run.
        None draws a fresh one, stored in ``provenance["parameters"]["seed"]``.

    Raises
    ------
    InputError
        Not an Atoms, fewer than two elements to swap, bad numbers.
    """

    kind = "swap_mc"

    def __init__(
        self,
        atoms: Atoms,
        potential: Potential | str | None = None,
        *,
        temperature_K: float,
        steps: int,
        elements: Sequence[str] | None = None,
        indices: Sequence[int] | None = None,
        batch: int = 1,
        md_every: int = 0,
        md_steps: int = 20,
        timestep_fs: float = 2.0,
        interval: int = 10,
        trajectory: str | os.PathLike | None = None,
        seed: int | None = None,
    ) -> None:
        if not isinstance(atoms, Atoms):
            raise InputError(
                f"swap_mc needs an ase.Atoms, got {type(atoms).__name__}; build one with "
                "nnp_lab.build (e.g. build.nanoparticle) or ase.io.read"
            )
        self.temperature_K = validation.number("temperature_K", temperature_K, unit="K")
        self.steps = validation.integer("steps", steps, minimum=0)
        self.batch = validation.integer("batch", batch, minimum=1)
        self.md_every = validation.integer("md_every", md_every, minimum=0)
        self.md_steps = validation.integer("md_steps", md_steps, minimum=1)
        self.timestep_fs = validation.number("timestep_fs", timestep_fs, strict=True, unit="fs")
        self.interval = validation.integer("interval", interval, minimum=1)
        self.seed = checked_seed(seed)
        self.swappable = _swappable(atoms, elements, indices)
        super().__init__(potential, trajectory=trajectory)
        self.potential.check(atoms)
        self.atoms = atoms.copy()
        self.atoms.calc = None
        self._rng = np.random.default_rng(self.seed)
        self._energies: list[float] = []
        self._trial: list[float] = []
        self._accepted: list[bool] = []
        self._swaps: list[tuple[int, int]] = []
        self._lowest: Atoms | None = None
        self._lowest_energy = math.inf
        self._n_accepted = 0
        self._n_evaluations = 0
        self._md_done = 0
        self.frames: list[Atoms] = []
        self.parameters = {
            "temperature_K": self.temperature_K,
            "steps": self.steps,
            "elements": sorted({atoms.get_chemical_symbols()[i] for i in self.swappable}),
            "n_swappable": len(self.swappable),
            "batch": self.batch,
            "md_every": self.md_every,
            "md_steps": self.md_steps if self.md_every else 0,
            "timestep_fs": self.timestep_fs if self.md_every else None,
            "interval": self.interval,
            "seed": self.seed,
            "n_atoms": len(atoms),
            "formula": atoms.get_chemical_formula(),
        }

    # -- one trial ----------------------------------------------------------------------
    def _energy_of(self, structures: list[Atoms]) -> list[float]:
        results = self.potential.evaluate(structures, ("energy",))
        return [float(r["energy"]) for r in results]

    def _propose(self) -> tuple[int, int]:
        """Atom i uniformly among the swappable, j uniformly among those of another element."""
        numbers = self.atoms.numbers
        pool = self.swappable
        i = int(pool[self._rng.integers(len(pool))])
        others = pool[numbers[pool] != numbers[i]]
        j = int(others[self._rng.integers(len(others))])
        return i, j

    def _accept(self, delta: float, u: float) -> bool:
        if delta <= 0.0:
            return True
        if self.temperature_K <= 0.0:
            return False
        return u < math.exp(-delta / (kB * self.temperature_K))

    def _run_md(self) -> float:
        """A Langevin segment at the MC temperature; returns the new potential energy."""
        from nnp_lab.simulate._md import MolecularDynamics

        dyn = MolecularDynamics(
            self.atoms,
            self.potential,
            ensemble="nvt",
            thermostat="langevin",
            temperature_K=self.temperature_K,
            timestep_fs=self.timestep_fs,
            steps=self.md_steps,
            interval=self.md_steps,
            seed=int(self._rng.integers(2**63)),
            velocities="auto",
        )
        result = dyn.run()
        final = result.atoms
        self.atoms.positions = final.positions
        self.atoms.set_momenta(final.get_momenta())
        self._md_done += self.md_steps
        return float(final.get_potential_energy())

    # -- the run ------------------------------------------------------------------------
    def _steps(self) -> Iterator[SwapMCStep]:
        logger.info(
            "swap_mc: %s (%d atoms, %d swappable), %d trials at %g K, seed=%d",
            self.atoms.get_chemical_formula(),
            len(self.atoms),
            len(self.swappable),
            self.steps,
            self.temperature_K,
            self.seed,
        )
        energy = self._energy_of([self.atoms])[0]
        self._energies.append(energy)
        self._note_lowest(energy)
        self._record(0, energy)
        yield self._event(0, energy, None, energy, 0.0, False)
        step = 0
        while step < self.steps:
            if self.md_every and step and step % self.md_every == 0:
                # Batches end at MD boundaries, so this runs once per boundary. The energy
                # list keeps the value after the last decision; the next delta uses the new one.
                energy = self._run_md()
                self._note_lowest(energy)
            room = self.steps - step
            if self.md_every:
                room = min(room, self.md_every - step % self.md_every)
            k = min(self.batch, room)
            proposals = [self._propose() for _ in range(k)]
            draws = self._rng.random(k)
            trials = []
            for i, j in proposals:
                trial = self.atoms.copy()
                trial.numbers[[i, j]] = trial.numbers[[j, i]]
                trials.append(trial)
            trial_energies = self._energy_of(trials)
            self._n_evaluations += k
            for (i, j), u, e_trial in zip(proposals, draws, trial_energies):
                step += 1
                delta = e_trial - energy
                accepted = self._accept(delta, float(u))
                if accepted:
                    numbers = self.atoms.numbers
                    numbers[[i, j]] = numbers[[j, i]]
                    self.atoms.numbers = numbers
                    energy = e_trial
                    self._n_accepted += 1
                    self._note_lowest(energy)
                self._energies.append(energy)
                self._trial.append(e_trial)
                self._accepted.append(accepted)
                self._swaps.append((i, j))
                if step % self.interval == 0 or step == self.steps:
                    self._record(step, energy)
                yield self._event(step, energy, (i, j), e_trial, delta, accepted)
                if accepted:
                    break  # the remaining proposals were made from the old state

    def _note_lowest(self, energy: float) -> None:
        if energy < self._lowest_energy:
            self._lowest = self._frame(energy)
            self._lowest_energy = energy

    def _frame(self, energy: float) -> Atoms:
        from ase.calculators.singlepoint import SinglePointCalculator

        frame = self.atoms.copy()
        frame.calc = SinglePointCalculator(frame, energy=energy)
        return frame

    def _record(self, step: int, energy: float) -> None:
        frame = self._frame(energy)
        frame.info["step"] = step
        frame.info["n_accepted"] = self._n_accepted
        self.frames.append(frame)
        self.write_frame(frame)

    def _event(
        self,
        step: int,
        energy: float,
        swapped: tuple[int, int] | None,
        trial_energy: float,
        delta_energy: float,
        accepted: bool,
    ) -> SwapMCStep:
        n_accepted = self._n_accepted
        return SwapMCStep(
            **self.event_fields(self.atoms, step),
            energy=energy,
            numbers=frozen_array(self.atoms.numbers, dtype=np.int64),
            swapped=swapped,
            trial_energy=trial_energy,
            delta_energy=delta_energy,
            accepted=accepted,
            n_accepted=n_accepted,
            acceptance_rate=n_accepted / step if step else 0.0,
            temperature_K=self.temperature_K,
            md_steps=self._md_done,
        )

    def _result(self) -> SwapMCResult:
        energies = np.array(self._energies, dtype=float)
        if not len(energies):  # stopped before the first evaluation
            energies = np.array([math.nan])
        final = self._frame(float(energies[-1]))
        return SwapMCResult(
            atoms=final,
            lowest=self._lowest if self._lowest is not None else final,
            frames=list(self.frames),
            energy=energies,
            trial_energy=np.array(self._trial, dtype=float),
            accepted=np.array(self._accepted, dtype=bool),
            swaps=np.array(self._swaps, dtype=int).reshape(-1, 2),
            n_steps=len(self._accepted),
            n_evaluations=self._n_evaluations,
            md_steps=self._md_done,
            temperature_K=self.temperature_K,
        )


def _swappable(
    atoms: Atoms, elements: Sequence[str] | None, indices: Sequence[int] | None
) -> np.ndarray:
    """Indices of the atoms that may swap; at least two elements among them."""
    from ase.constraints import FixAtoms

    n = len(atoms)
    if indices is None:
        fixed: set[int] = set()
        for c in atoms.constraints:
            if isinstance(c, FixAtoms):
                fixed.update(int(i) for i in c.get_indices())
        pool = np.array([i for i in range(n) if i not in fixed], dtype=int)
    else:
        pool = np.unique(np.asarray(list(indices), dtype=int))
        if len(pool) and (pool.min() < 0 or pool.max() >= n):
            raise InputError(f"indices must be in 0..{n - 1}; got {pool.min()}..{pool.max()}")
    symbols = np.array(atoms.get_chemical_symbols())
    if elements is not None:
        wanted = [str(e) for e in elements]
        unknown = [e for e in wanted if e not in chemical_symbols]
        if unknown:
            raise InputError(f"unknown element(s) {', '.join(unknown)} in elements")
        pool = pool[np.isin(symbols[pool], wanted)]
    present = sorted(set(symbols[pool].tolist()))
    if len(present) < 2:
        raise InputError(
            "swap_mc needs at least two elements among the atoms that may swap; got "
            f"{present or 'none'} ({len(pool)} atoms). Check elements= and indices=, or build "
            "an alloy (e.g. build.nanoparticle({'Pt': 0.5, 'Pd': 0.5}, ...))"
        )
    return pool


def swap_mc(
    atoms: Atoms,
    potential: Potential | str | None = None,
    *,
    temperature_K: float,
    steps: int,
    elements: Sequence[str] | None = None,
    indices: Sequence[int] | None = None,
    batch: int = 1,
    md_every: int = 0,
    md_steps: int = 20,
    timestep_fs: float = 2.0,
    interval: int = 10,
    trajectory: str | os.PathLike | None = None,
    seed: int | None = None,
    live: bool = False,
) -> SwapMCResult:
    """Element-swap Metropolis Monte Carlo at fixed composition.

    Each trial exchanges the elements of two atoms of different species and is accepted with
    probability ``min(1, exp(-ΔE / k_B T))``; optional MD segments between trials let the
    positions relax. See :class:`SwapMonteCarlo` for every parameter.

    Parameters
    ----------
    atoms
        Starting alloy structure; not modified.
    potential
        A :class:`~nnp_lab.potentials.Potential`, a registered name or None (default model).
    temperature_K, steps
        Metropolis temperature (K) and number of trials.
    elements, indices, batch, md_every, md_steps, timestep_fs, interval, trajectory, seed
        See :class:`SwapMonteCarlo`.
    live
        Show the run while it goes: in Jupyter the structure with its elements changing, the
        energy and the acceptance rate; elsewhere a progress bar.

    Returns
    -------
    SwapMCResult
        Final and lowest structures, energies, acceptance per trial, frames, provenance
        (``stopped=True`` after Ctrl-C or Stop: the partial result).

    Examples
    --------
    >>> from nnp_lab import build
    >>> np_ = build.nanoparticle({"Cu": 0.5, "Au": 0.5}, shape="cuboctahedron", size=3,
    ...                          seed=0)  # doctest: +SKIP
    >>> res = swap_mc(np_, "emt", temperature_K=600, steps=500, seed=1)  # doctest: +SKIP
    >>> res.acceptance_rate  # doctest: +SKIP
    """
    run = SwapMonteCarlo(atoms, potential, **forwarded(SwapMonteCarlo, locals()))
    return run_to_end(run, live=live, total=steps)
