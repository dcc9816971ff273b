"""The one seam between simulations and models: :class:`Potential`.

A :class:`Potential` owns a loaded model (weights, device, dtype, metadata) and evaluates a
*list* of structures in one call. :meth:`Potential.calculator` hands out thin ASE calculators
that all share the loaded model, so seven NEB images cost one model in memory.
"""

from __future__ import annotations

import abc
import logging
import platform
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.data import chemical_symbols

from nnp_lab.errors import InputError, StructureError, UncoveredElementsError
from nnp_lab.potentials import memory
from nnp_lab.threads import evaluation_threads

__all__ = [
    "PROPERTIES",
    "MIN_DISTANCE",
    "Potential",
    "PotentialCalculator",
    "validate_structure",
    "has_stress",
    "format_elements",
]

logger = logging.getLogger(__name__)

#: Properties a :class:`Potential` can evaluate.
PROPERTIES = ("energy", "forces", "stress")

#: Atoms closer than this (Å) are rejected: no potential here is trained on such contacts.
MIN_DISTANCE = 0.5


def format_elements(numbers: Iterable[int]) -> str:
    """Compact element list, e.g. ``H–Bi except Po, At`` or ``H, C, O``.

    Parameters
    ----------
    numbers
        Atomic numbers.
    """
    zs = sorted(set(int(z) for z in numbers))
    if not zs:
        return "(none)"
    if len(zs) <= 12:
        return ", ".join(chemical_symbols[z] for z in zs)
    lo, hi = zs[0], zs[-1]
    missing = sorted(set(range(lo, hi + 1)) - set(zs))
    text = f"{chemical_symbols[lo]}–{chemical_symbols[hi]}"
    if missing:
        text += " except " + ", ".join(chemical_symbols[z] for z in missing)
    return text


def has_stress(atoms: Atoms) -> bool:
    """Whether stress is defined for ``atoms``: periodic in some direction with a 3D cell."""
    return bool(atoms.pbc.any()) and abs(atoms.cell.volume) > 1e-8


def validate_structure(atoms: Atoms, *, min_distance: float = MIN_DISTANCE) -> None:
    """Raise :class:`~nnp_lab.errors.StructureError` if ``atoms`` cannot be evaluated.

    Checks: not empty, finite positions, a non-degenerate cell along periodic directions,
    and no two atoms (including periodic images) closer than ``min_distance`` Å.

    Parameters
    ----------
    atoms
        The structure to check (not modified).
    min_distance
        Smallest allowed interatomic distance in Å.
    """
    if not isinstance(atoms, Atoms):
        raise InputError(
            f"expected an ase.Atoms, got {type(atoms).__name__}; build one with nnp_lab.build "
            "or ase.io.read"
        )
    n = len(atoms)
    if n == 0:
        raise StructureError("the structure is empty (0 atoms); add atoms before evaluating it")
    positions = atoms.positions
    if not np.all(np.isfinite(positions)):
        bad = np.flatnonzero(~np.all(np.isfinite(positions), axis=1))
        raise StructureError(
            f"atoms {bad[:10].tolist()} have NaN or infinite positions; "
            "check how the structure was made (a blown-up MD run?)"
        )
    pbc = atoms.pbc
    if pbc.any():
        cell = np.asarray(atoms.cell)
        periodic = cell[pbc]
        lengths = np.linalg.norm(periodic, axis=1)
        if np.any(lengths < 1e-6):
            axes = ["abc"[i] for i in np.flatnonzero(pbc) if np.linalg.norm(cell[i]) < 1e-6]
            raise StructureError(
                f"pbc is {pbc.tolist()} but cell vector(s) {', '.join(axes)} are zero; "
                "set a cell (atoms.cell = ...) or switch periodicity off (atoms.pbc = False)"
            )
        # Linearly dependent periodic vectors: the smallest singular value vanishes.
        sv = np.linalg.svd(periodic, compute_uv=False)
        if sv[-1] < 1e-6 * max(sv[0], 1.0):
            raise StructureError(
                f"the periodic cell vectors are degenerate (linearly dependent): {periodic.tolist()}; "
                "give the cell three independent vectors"
            )
        if not np.all(np.isfinite(cell)):
            raise StructureError("the cell contains NaN or infinite values; set a finite cell")
    if n > 1 or pbc.any():  # a single atom can still meet its own periodic image
        _check_min_distance(atoms, min_distance)


def _check_min_distance(atoms: Atoms, min_distance: float) -> None:
    # This check runs on every evaluation: vesin's cell list takes ~0.2 ms here where ASE's
    # takes ~10 ms. Its bins are as wide as the cutoff, and bins of 0.5 Å make a slab with
    # vacuum cost 20 ms, so search within 2 Å and keep the pairs closer than min_distance.
    from nnp_lab.potentials.neighbours import neighbour_list

    i, j, d = neighbour_list(atoms, max(min_distance, 2.0), quantities="ijd")
    close = d < min_distance
    i, j, d = i[close], j[close], d[close]
    if len(d):
        k = int(np.argmin(d))
        a, b = int(i[k]), int(j[k])
        sym = atoms.get_chemical_symbols()
        where = "" if a != b else " (with its own periodic image: the cell is too small)"
        raise StructureError(
            f"atoms {a} ({sym[a]}) and {b} ({sym[b]}) are {d[k]:.3f} Å apart{where}, closer than "
            f"{min_distance} Å; remove the duplicate or fix the coordinates"
        )


class Potential(abc.ABC):
    """A loaded interatomic potential that evaluates lists of structures.

    Subclasses implement :meth:`_evaluate` (and set the metadata attributes); everything else
    (input checks, dispersion, calculators, provenance) lives here.

    Attributes
    ----------
    name : str
        Registered name, e.g. ``"sevennet-0"`` (``"+d3"`` appended when D3 is on).
    version : str
        Model / weights version.
    elements : frozenset[int]
        Atomic numbers the model covers.
    cutoff : float
        Interaction cutoff in Å (of the model; D3 has its own, see :mod:`.d3`).
    device : str
        ``"cpu"`` or ``"cuda"`` / ``"cuda:N"``.
    dtype : str
        Floating point type of the model, e.g. ``"float32"``.
    level_of_theory : str
        Reference method of the training data, e.g. ``"PBE/PBE+U (MPtrj)"``.
    citation : str
        Paper to cite when publishing results made with this model.
    licence : str
        Licence of the weights.
    dispersion : object or None
        A dispersion term (:class:`nnp_lab.potentials.d3.D3Dispersion`) added to every result.
    memory_per_atom_bytes, memory_per_pair_bytes, memory_overhead_bytes : float
        Peak-memory model of one batch through the model: bytes per atom, per neighbour pair
        within :attr:`cutoff` (each pair once) and per call, measured with
        ``bench/memory_model.py`` (see :mod:`nnp_lab.potentials.memory`). All zero (the
        default for a new subclass): no memory check.
    memory_per_triplet_bytes : float
        Bytes per angle (pair of neighbours of one atom) within
        ``memory_triplet_cutoff`` Å, for models with three-body terms (0: none).
    max_batch_atoms, max_batch_structures : int or None
        How :meth:`_evaluate` splits a long list of structures into batches (None: all
        structures of a call in one batch); the memory estimate is that of the largest batch.
    """

    name: str = "potential"
    version: str = "unknown"
    elements: frozenset[int] = frozenset()
    cutoff: float = 0.0
    device: str = "cpu"
    dtype: str = "float64"
    level_of_theory: str = "unknown"
    citation: str = ""
    licence: str = "unknown"
    #: Package that provides the model (for provenance), e.g. ``"sevenn"``.
    package: str | None = None
    memory_per_atom_bytes: float = 0.0
    memory_per_pair_bytes: float = 0.0
    memory_overhead_bytes: float = 0.0
    memory_per_triplet_bytes: float = 0.0
    memory_triplet_cutoff: float | None = None
    max_batch_atoms: int | None = None
    max_batch_structures: int | None = None

    def __init__(self) -> None:
        self.dispersion: Any = None
        # One model, many calculators/threads: serialise evaluations (torch graphs are not
        # re-entrant for the same module in all backends, and it keeps memory bounded).
        self._lock = threading.RLock()

    # -- evaluation ---------------------------------------------------------------------
    def evaluate(
        self,
        structures: Atoms | Sequence[Atoms],
        properties: Sequence[str] = PROPERTIES,
        *,
        validate: bool = True,
        memory_check: bool = True,
    ) -> list[dict[str, Any]]:
        """Evaluate energies, forces and stresses of several structures in one call.

        Before any heavy work the call's peak memory is estimated (:meth:`memory_estimate`)
        and compared with what this process may still use (the cgroup limit, ``ulimit -v``
        / ``RLIMIT_AS`` and the available RAM, or the free memory of the CUDA device; see
        :mod:`nnp_lab.potentials.memory`): a structure too large raises
        :class:`~nnp_lab.potentials.memory.MemoryLimitError` (an
        :class:`~nnp_lab.errors.InputError`) that names the estimate, the limit and the
        fixes, instead of torch failing to allocate or the kernel being killed. Switch it
        off with ``memory_check=False`` or the environment variable
        ``NNP_LAB_MEMORY_CHECK=0``.

        Parameters
        ----------
        structures
            One :class:`ase.Atoms` or a list of them (not modified).
        properties
            Any of ``"energy"`` (eV), ``"forces"`` (eV/Å, shape ``(n, 3)``) and ``"stress"``
            (eV/Å³, Voigt order xx, yy, zz, yz, xz, xy, ASE sign convention). Stress is only
            returned for structures with a periodic direction and a 3D cell.
        validate
            Run the full input check (:meth:`check`: elements, cell, close contacts). With
            False only finiteness of the positions is checked; calculators use that between
            steps that only move atoms, where the close-contact search would cost as much as
            a cheap model.
        memory_check
            Check the estimated peak memory against the memory available (see above).

        Returns
        -------
        list of dict
            One dict per structure, in order, with the requested properties as float /
            float64 NumPy arrays.
        """
        if isinstance(structures, Atoms):
            structures = [structures]
        structures = list(structures)
        props = tuple(properties)
        unknown = set(props) - set(PROPERTIES)
        if unknown:
            raise InputError(
                f"unknown properties {sorted(unknown)}; choose from {list(PROPERTIES)}"
            )
        if not structures:
            return []
        for atoms in structures:
            if validate:
                self.check(atoms)
            elif not np.all(np.isfinite(atoms.positions)):
                validate_structure(atoms)  # raises with the offending atoms named
        n_atoms = sum(len(atoms) for atoms in structures)
        if memory_check and memory.memory_check_enabled():
            self._check_memory(structures, n_atoms)
        with self._lock, evaluation_threads(self.name, n_atoms):
            results = self._evaluate(structures, props)
            if self.dispersion is not None:
                extra = self.dispersion.evaluate(structures, props)
                for res, add in zip(results, extra):
                    for key, value in add.items():
                        if key in res:
                            res[key] = res[key] + value
        for atoms, res in zip(structures, results):
            if not has_stress(atoms):
                res.pop("stress", None)
            for key in [k for k in res if k not in props]:
                del res[key]
        return results

    def check(self, atoms: Atoms) -> None:
        """Raise a clear :class:`ValueError` if this potential cannot evaluate ``atoms``.

        Parameters
        ----------
        atoms
            Structure to check: geometry (see :func:`validate_structure`) and element
            coverage.
        """
        validate_structure(atoms)
        uncovered = set(np.unique(atoms.numbers).tolist()) - set(self.elements)
        if uncovered and self.elements:
            from nnp_lab.potentials.registry import suggest_models

            names = ", ".join(chemical_symbols[z] for z in sorted(uncovered))
            others = suggest_models(uncovered, exclude=self.name)
            hint = f"try {', '.join(others)}" if others else "no registered model covers them"
            raise UncoveredElementsError(
                f"element(s) {names} not covered by {self.name}; covered: "
                f"{format_elements(self.elements)}; {hint}"
            )

    def memory_estimate(self, structures: Atoms | Sequence[Atoms]) -> memory.MemoryEstimate:
        """Estimated peak memory of evaluating ``structures`` in one :meth:`evaluate` call.

        ``memory_overhead_bytes + memory_per_atom_bytes * atoms + memory_per_pair_bytes *
        pairs (+ memory_per_triplet_bytes * angles)`` of the largest batch (neighbour pairs
        within :attr:`cutoff` estimated from local number densities, no neighbour list
        built); with dispersion, the larger of the model's and the dispersion term's
        estimate (they run one after the other).

        Parameters
        ----------
        structures
            One :class:`ase.Atoms` or a list of them.

        Returns
        -------
        nnp_lab.potentials.memory.MemoryEstimate
            ``.bytes`` is the estimate above what the process already holds (0: this
            potential has no memory model).
        """
        if isinstance(structures, Atoms):
            structures = [structures]
        structures = list(structures)
        estimate = memory.peak_bytes(
            structures,
            self.cutoff,
            **self._memory_constants(),
            max_atoms=self.max_batch_atoms,
            max_structures=self.max_batch_structures,
            what=self.name,
        )
        extra = getattr(self.dispersion, "memory_estimate", None)
        if extra is not None:
            other = extra(structures)
            if other.bytes > estimate.bytes:
                estimate = other
        return estimate

    def _memory_constants(self) -> dict[str, Any]:
        """This model's memory constants, as the keywords of :mod:`.memory`'s estimators."""
        return {
            "per_atom": self.memory_per_atom_bytes,
            "per_pair": self.memory_per_pair_bytes,
            "overhead": self.memory_overhead_bytes,
            "per_triplet": self.memory_per_triplet_bytes,
            "triplet_cutoff": self.memory_triplet_cutoff,
        }

    def _memory_upper_bound(self, n_atoms: int) -> float:
        """A quick upper bound of :meth:`memory_estimate` from the atom count alone."""
        bound = memory.upper_bound_bytes(n_atoms, self.cutoff, **self._memory_constants())
        extra = getattr(self.dispersion, "memory_upper_bound", None)
        return max(bound, extra(n_atoms)) if extra is not None else bound

    def _check_memory(self, structures: list[Atoms], n_atoms: int) -> None:
        # Small calls (the bound is below what is worth checking) cost ~1 µs: no pair
        # estimate, no limit files read.
        if self._memory_upper_bound(n_atoms) < memory.MIN_CHECKED_BYTES:
            return
        memory.check_memory(self.memory_estimate(structures), str(self.device), model=self.name)

    @abc.abstractmethod
    def _evaluate(self, structures: list[Atoms], properties: tuple[str, ...]) -> list[dict]:
        """Evaluate validated structures. Return dicts with at least the requested keys
        (energy: float, forces: (n,3) float64, stress: (6,) float64 Voigt eV/Å³ where defined)."""

    # -- ASE --------------------------------------------------------------------------
    def calculator(self) -> PotentialCalculator:
        """A new ASE calculator backed by this (shared) potential.

        Use one calculator per :class:`ase.Atoms`; all of them share the loaded model.
        """
        return PotentialCalculator(self)

    # -- metadata ---------------------------------------------------------------------
    def provenance(self) -> dict[str, Any]:
        """Model name, version, device, dtype and versions of the packages involved."""
        packages: dict[str, str | None] = {}
        for pkg in ["nnp_lab", "ase", "numpy", "torch", self.package]:
            if pkg is not None and pkg not in packages:
                packages[pkg] = _safe_version(pkg)
        if self.dispersion is not None:
            packages["torch-dftd"] = _safe_version("torch-dftd")
        return {
            "model": self.name,
            "model_version": self.version,
            "level_of_theory": self.level_of_theory,
            "device": str(self.device),
            "dtype": str(self.dtype),
            "dispersion": None if self.dispersion is None else self.dispersion.describe(),
            "packages": packages,
            "python": platform.python_version(),
        }

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.name!r} version={self.version!r} "
            f"device={self.device!r} dtype={self.dtype!r}>"
        )


def _safe_version(pkg: str) -> str | None:
    """The installed version of ``pkg`` (None when it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(pkg)
    except PackageNotFoundError:
        return None


class PotentialCalculator(Calculator):
    """Thin ASE calculator around a shared :class:`Potential`.

    Energy, forces and (for periodic cells) stress are computed together in one model call
    and cached by ASE until the atoms change.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, potential: Potential, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.potential = potential

    def check_state(self, atoms: Atoms, tol: float = 1e-15) -> list[str]:
        """What changed since the last calculation: ASE's test, with exact array equality.

        ASE compares with ``allclose`` (tolerance 1e-15), which costs ~0.3 ms per call and
        an MD step asks 3 times; for a light model that is a tenth of the step.
        """
        old = self.atoms
        if old is None:
            return list(all_changes)
        changes = []
        if not np.array_equal(old.positions, atoms.positions):
            changes.append("positions")
        if not np.array_equal(old.numbers, atoms.numbers):
            changes.append("numbers")
        if not np.array_equal(old.cell.array, atoms.cell.array):
            changes.append("cell")
        if not np.array_equal(old.pbc, atoms.pbc):
            changes.append("pbc")
        for key in ("initial_charges", "initial_magmoms"):
            a, b = old.arrays.get(key), atoms.arrays.get(key)
            if a is None or b is None:
                if (a is None) != (b is None):
                    changes.append(key)
            elif not np.array_equal(a, b):
                changes.append(key)
        return changes

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        wanted = ["energy", "forces"]
        if has_stress(self.atoms):
            wanted.append("stress")
        elif "stress" in properties:
            from ase.calculators.calculator import PropertyNotImplementedError

            raise PropertyNotImplementedError(
                "stress is only defined for periodic structures with a 3D cell"
            )
        # Full checks when the composition or cell changed (or on the first call); between
        # steps that only move atoms, just finiteness (see Potential.evaluate).
        full = bool({"numbers", "cell", "pbc"} & set(system_changes))
        res = self.potential.evaluate([self.atoms], wanted, validate=full)[0]
        self.results = dict(res)
        self.results["free_energy"] = res["energy"]
