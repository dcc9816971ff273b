"""ASE's Effective Medium Theory as a :class:`Potential`: cheap, for tests and teaching.

EMT covers Al, Cu, Ag, Au, Ni, Pd, Pt (and H, C, N, O only roughly); it is no substitute for
a universal model, but it is fast enough to run thousands of MD steps in a test.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.calculators.emt import EMT, parameters
from ase.data import atomic_numbers

from nnp_lab.potentials.base import Potential, has_stress
from nnp_lab.potentials.registry import ModelSpec

__all__ = ["EMTPotential", "specs"]

_ELEMENTS = frozenset(atomic_numbers[s] for s in parameters)


class EMTPotential(Potential):
    """ASE's EMT (float64, CPU) behind the :class:`Potential` interface."""

    name = "emt"
    version = "ase"
    elements = _ELEMENTS
    cutoff = 6.0
    device = "cpu"
    dtype = "float64"
    level_of_theory = "Effective Medium Theory (fitted to experiment, few metals)"
    citation = (
        "K. W. Jacobsen, P. Stoltze, J. K. Nørskov, 'A semi-empirical effective medium theory "
        "for metals and alloys', Surf. Sci. 366, 394 (1996)"
    )
    licence = "LGPL-2.1+ (ase)"
    package = "ase"
    # Peak RSS growth of a single point (bench/memory_model.py, fcc Cu and Al, 256-6,912
    # atoms): fit 2.1 MB + 6.9 kB/atom + 0.17 kB/pair, here x 1.25. Small: only cells of
    # ~10^5 atoms come near a limit.
    memory_per_atom_bytes = 8.6e3
    memory_per_pair_bytes = 0.21e3
    memory_overhead_bytes = 2.6e6

    def __init__(self) -> None:
        super().__init__()
        import ase

        self.version = f"ase {ase.__version__}"
        self._calcs: dict[tuple, EMT] = {}

    def _calculator_for(self, atoms: Atoms, slot: int) -> EMT:
        """An EMT calculator reused for structures of the same composition and periodicity at
        the same place in the batch, so that ASE keeps its neighbour list between MD or
        relaxation steps (2x faster) and between NEB iterations (one per image)."""
        key = (atoms.numbers.tobytes(), tuple(atoms.pbc), slot)
        calc = self._calcs.pop(key, None) or EMT()
        self._calcs[key] = calc  # most recently used last
        while len(self._calcs) > 64:
            self._calcs.pop(next(iter(self._calcs)))
        return calc

    def _evaluate(self, structures: list[Atoms], properties: tuple[str, ...]) -> list[dict]:
        results = []
        for slot, atoms in enumerate(structures):
            work = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
            work.calc = self._calculator_for(work, slot)
            res = {
                "energy": float(work.get_potential_energy()),
                "forces": np.array(work.get_forces(), dtype=np.float64),
            }
            if "stress" in properties and has_stress(work):
                res["stress"] = np.array(work.get_stress(voigt=True), dtype=np.float64)
            results.append(res)
        return results


def specs() -> list[ModelSpec]:
    """Registry entry for EMT."""
    return [
        ModelSpec(
            name="emt",
            load=lambda device: EMTPotential(),
            level_of_theory=EMTPotential.level_of_theory,
            licence="LGPL-2.1+",
            description="ASE Effective Medium Theory: fast stand-in for tests and teaching",
            package="ase",
            elements=lambda: _ELEMENTS,
        )
    ]
