"""Stand-in potentials shared by the run, widget and browser tests.

The browser tests' kernels import this file by path (it only needs nnp_lab and ASE).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping

import numpy as np
from ase.data import atomic_numbers

from nnp_lab.potentials import Potential
from nnp_lab.potentials.emt import EMTPotential

#: A held evaluation gives up after this long, so a test that failed before releasing its
#: gate cannot leave a kernel or thread blocked forever.
HOLD_LIMIT_S = 600.0


class NaNAfter(EMTPotential):
    """EMT returning NaN energy and forces from the (k+1)-th evaluation on."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k
        self.calls = 0

    def _evaluate(self, structures, properties):
        results = super()._evaluate(structures, properties)
        self.calls += 1
        if self.calls > self.k:
            for res in results:
                res["energy"] = float("nan")
                res["forces"] = np.full_like(res["forces"], np.nan)
        return results


Gate = threading.Event | str | os.PathLike


class HeldPotential(EMTPotential):
    """EMT whose evaluations stop at chosen call numbers until the test releases them.

    A test that must look at a run *while it runs* holds it open with this instead of
    assuming how long N steps take: the run is guaranteed to be running, at a known point,
    for as long as the test needs.

    Parameters
    ----------
    hold_at
        ``{call number: gate}``; call numbers count :meth:`evaluate` calls from 1. A gate is a
        :class:`threading.Event` (set it to release) or a file path (create the file to
        release; for kernels in another process, e.g. the browser tests).
    """

    def __init__(self, hold_at: Mapping[int, Gate]) -> None:
        super().__init__()
        self.hold_at = dict(hold_at)
        self.calls = 0
        #: Set while an evaluation is held; ``held_call`` says which.
        self.holding = threading.Event()
        self.held_call: int | None = None

    def _evaluate(self, structures, properties):
        self.calls += 1
        gate = self.hold_at.get(self.calls)
        if gate is not None:
            self.held_call = self.calls
            self.holding.set()
            try:
                wait_for_gate(gate)
            finally:
                self.holding.clear()
                self.held_call = None
        return super()._evaluate(structures, properties)


def wait_for_gate(gate: Gate) -> None:
    """Return once ``gate`` is set (an Event) or exists (a file), or after HOLD_LIMIT_S."""
    if isinstance(gate, threading.Event):
        gate.wait(HOLD_LIMIT_S)
        return
    deadline = time.monotonic() + HOLD_LIMIT_S
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.02)


class SiteEnergies(Potential):
    """A toy energy with a known Boltzmann distribution over orderings: each atom adds
    ``site_energy[i] * weight[element]`` (eV), independent of the positions' neighbours.

    Swapping two atoms changes the energy by a number the test computes by hand, so a swap
    Monte Carlo chain's visit frequencies can be compared with the exact distribution.
    Forces are zero (the energy depends on which element sits on which site, not on where
    the sites are), so MD between swaps leaves it unchanged.
    """

    name = "site-energies"
    version = "test"
    elements = frozenset(range(1, 119))
    cutoff = 1.0

    def __init__(self, site_energy, weight: Mapping[str, float]) -> None:
        super().__init__()
        self.site_energy = np.asarray(site_energy, dtype=float)
        self.weight = {atomic_numbers[k]: float(v) for k, v in weight.items()}

    def energy(self, numbers) -> float:
        return float(sum(e * self.weight[int(z)] for e, z in zip(self.site_energy, numbers)))

    def _evaluate(self, structures, properties):
        out = []
        for atoms in structures:
            res = {"energy": self.energy(atoms.numbers), "forces": np.zeros((len(atoms), 3))}
            if "stress" in properties and atoms.pbc.all():
                res["stress"] = np.zeros(6)
            out.append(res)
        return out
