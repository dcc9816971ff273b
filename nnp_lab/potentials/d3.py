"""DFT-D3(BJ) dispersion through torch-dftd, added on top of any :class:`Potential`.

Cutoffs
-------
torch-dftd's default two-body cutoff is 95 Bohr (50.3 Å). On a periodic 108-atom Cu cell that
costs ~17 s per evaluation on a 2-core CPU. We use :data:`D3_CUTOFF` = 20 Å (two-body) and
:data:`D3_CN_CUTOFF` = 40 Bohr (coordination number; torch-dftd's default, capped at 20 Å), which cost ~0.5 s
there and change Cu108's D3 energy by about 0.2 eV out of 63 eV (0.3 %); forces and relative
energies change far less. Pass ``cutoff=`` to :func:`with_d3` for a tighter number.
"""

from __future__ import annotations

import warnings

import copy
from typing import Any

import numpy as np
from ase import Atoms
from ase.units import Bohr

from nnp_lab.potentials import memory
from nnp_lab.potentials.base import Potential, has_stress

__all__ = ["D3_CUTOFF", "D3_CN_CUTOFF", "D3Dispersion", "with_d3"]

#: Two-body D3 cutoff in Å used by nnp_lab (see module docstring).
D3_CUTOFF = 20.0
#: Coordination-number cutoff in Å: torch-dftd's default of 40 Bohr (21.2 Å), capped at the
#: two-body cutoff because torch-dftd never looks beyond that.
D3_CN_CUTOFF = min(40.0 * Bohr, D3_CUTOFF)


class D3Dispersion:
    """DFT-D3 with Becke–Johnson damping (PBE parameters) evaluated by torch-dftd.

    Parameters
    ----------
    device
        Torch device string.
    xc
        Functional whose D3 parameters are used (``"pbe"``).
    cutoff, cn_cutoff
        Two-body and coordination-number cutoffs in Å.
    """

    #: Peak-memory model of one structure (they are evaluated one at a time), pairs within
    #: :attr:`cutoff` (see :mod:`nnp_lab.potentials.memory`). Measured with
    #: ``bench/memory_model.py`` at the 20 Å default on Si, C, Cu and Na, 8-512 atoms: fit
    #: 21 MB + 24.6 kB/atom + 2.21 kB/pair (rms residual 6.4 %), here x 1.25 + 50 MB. At
    #: 20 Å a Si atom has ~850 pairs: D3 needs ~2 MB per atom, more than SevenNet-0.
    memory_per_atom_bytes: float = 30.8e3
    memory_per_pair_bytes: float = 2.76e3
    memory_overhead_bytes: float = 76.4e6

    citation = (
        "S. Grimme, J. Antony, S. Ehrlich, H. Krieg, J. Chem. Phys. 132, 154104 (2010); "
        "S. Grimme, S. Ehrlich, L. Goerigk, J. Comput. Chem. 32, 1456 (2011)"
    )

    def __init__(
        self,
        *,
        device: str = "cpu",
        xc: str = "pbe",
        cutoff: float = D3_CUTOFF,
        cn_cutoff: float = D3_CN_CUTOFF,
    ) -> None:
        from torch_dftd.torch_dftd3_calculator import TorchDFTD3Calculator

        self.xc = xc
        self.cutoff = float(cutoff)
        self.cn_cutoff = min(float(cn_cutoff), self.cutoff)
        self._calc = TorchDFTD3Calculator(
            damping="bj", xc=xc, device=device, cutoff=self.cutoff, cnthr=self.cn_cutoff
        )

    def describe(self) -> dict[str, Any]:
        """Parameters of this dispersion term (for provenance)."""
        return {
            "method": "DFT-D3(BJ)",
            "xc": self.xc,
            "cutoff_A": self.cutoff,
            "cn_cutoff_A": self.cn_cutoff,
            "package": "torch-dftd",
        }

    def memory_estimate(self, structures: list[Atoms]) -> memory.MemoryEstimate:
        """Estimated peak memory of :meth:`evaluate` (the largest structure: one at a time)."""
        return memory.peak_bytes(
            structures,
            self.cutoff,
            **self._memory_constants(),
            max_structures=1,
            what=f"D3 dispersion ({self.cutoff:g} Å cutoff)",
        )

    def memory_upper_bound(self, n_atoms: int) -> float:
        """Upper bound of :meth:`memory_estimate` from the atom count (see
        :func:`nnp_lab.potentials.memory.upper_bound_bytes`)."""
        return memory.upper_bound_bytes(n_atoms, self.cutoff, **self._memory_constants())

    def _memory_constants(self) -> dict[str, Any]:
        """The memory constants, as the keywords of :mod:`.memory`'s estimators."""
        return {
            "per_atom": self.memory_per_atom_bytes,
            "per_pair": self.memory_per_pair_bytes,
            "overhead": self.memory_overhead_bytes,
        }

    def evaluate(self, structures: list[Atoms], properties: tuple[str, ...]) -> list[dict]:
        """D3 energy (eV), forces (eV/Å) and stress (eV/Å³, Voigt) of each structure."""
        out = []
        for atoms in structures:
            work = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
            props = ["energy", "forces"] + (["stress"] if has_stress(work) else [])
            with warnings.catch_warnings():
                # torch-dftd builds its cell tensor from ASE's Cell object; torch warns that
                # this is slow (it is 3 rows, microseconds) on every call.
                warnings.filterwarnings("ignore", "Creating a tensor from a list of numpy")
                self._calc.calculate(work, props)
            r = self._calc.results
            res = {
                "energy": float(r["energy"]),
                "forces": np.asarray(r["forces"], dtype=np.float64),
            }
            if "stress" in r and "stress" in properties and has_stress(work):
                res["stress"] = np.asarray(r["stress"], dtype=np.float64).reshape(-1)[:6]
            out.append(res)
        return out


def with_d3(potential: Potential, **kwargs: Any) -> Potential:
    """A copy of ``potential`` (sharing its loaded model) with D3(BJ) added to every result.

    Parameters
    ----------
    potential
        The potential to correct.
    **kwargs
        Passed to :class:`D3Dispersion` (``cutoff=``, ``cn_cutoff=``, ``xc=``).
    """
    if potential.dispersion is not None:
        return potential
    combined = copy.copy(potential)  # shallow: the model object is shared, not copied
    combined.dispersion = D3Dispersion(device=str(potential.device), **kwargs)
    combined.name = f"{potential.name}+d3"
    combined.level_of_theory = f"{potential.level_of_theory} + D3(BJ)"
    combined.citation = f"{potential.citation}; D3: {D3Dispersion.citation}"
    return combined
