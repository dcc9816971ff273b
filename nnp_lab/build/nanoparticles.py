"""Metal nanoparticles (icosahedra, decahedra, octahedra, cuboctahedra, Wulff shapes),
pure or as random alloys."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, reference_states

from nnp_lab import validation
from nnp_lab.build._common import check_element, record
from nnp_lab.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["nanoparticle", "NANOPARTICLE_SHAPES", "DEFAULT_SURFACE_ENERGIES"]

#: Shapes understood by :func:`nanoparticle`.
NANOPARTICLE_SHAPES: tuple[str, ...] = (
    "icosahedron",
    "decahedron",
    "octahedron",
    "cuboctahedron",
    "truncated_octahedron",
    "wulff",
)

#: Relative fcc surface energies used by the Wulff construction unless others are given
#: (generic ordering gamma(111) < gamma(100) < gamma(110); only the ratios matter).
DEFAULT_SURFACE_ENERGIES: dict[tuple[int, int, int], float] = {
    (1, 1, 1): 1.00,
    (1, 0, 0): 1.15,
    (1, 1, 0): 1.25,
}


def _composition(spec: Any) -> dict[str, float]:
    """Normalised composition {symbol: fraction} from a symbol, formula or mapping."""
    if isinstance(spec, str):
        text = spec.strip()
        if text in atomic_numbers:
            return {check_element(text): 1.0}
        from ase.formula import Formula

        try:
            counts = Formula(text).count()
        except Exception:
            counts = {}
        if not counts:
            raise InputError(
                f"Could not read {spec!r} as an element or formula; pass a symbol such as "
                "'Pt', a formula such as 'Pt3Ni', or a dict such as {'Pt': 0.5, 'Pd': 0.5}"
            )
        for s in counts:
            check_element(s)
        spec = counts
    if not isinstance(spec, Mapping) or not spec:
        raise InputError(
            f"symbols_or_composition must be a symbol ('Pt'), a formula ('Pt3Ni') or a "
            f"non-empty dict of fractions such as {{'Pt': 0.5, 'Pd': 0.5}}; got {spec!r}"
        )
    comp: dict[str, float] = {}
    for sym, frac in spec.items():
        check_element(sym)
        try:
            x = float(frac)
        except (TypeError, ValueError):
            raise InputError(f"fraction of {sym} must be a number, got {frac!r}") from None
        if not np.isfinite(x) or x < 0:
            raise InputError(
                f"fraction of {sym} must be a non-negative number, got {frac!r}; fractions "
                "are normalised, so e.g. {'Pt': 1, 'Pd': 1} is fine"
            )
        if x > 0:
            comp[sym] = comp.get(sym, 0.0) + x
    total = sum(comp.values())
    if total <= 0:
        raise InputError(f"all fractions are zero in {spec!r}; give at least one positive fraction")
    return {s: x / total for s, x in comp.items()}


def _counts(comp: dict[str, float], n: int) -> dict[str, int]:
    """Atom counts per element by largest-remainder rounding (ties: order of the dict)."""
    exact = {s: x * n for s, x in comp.items()}
    counts = {s: int(np.floor(v + 1e-9)) for s, v in exact.items()}
    left = n - sum(counts.values())
    symbols = list(comp)
    remainders = [exact[s] - counts[s] for s in symbols]
    order = sorted(range(len(symbols)), key=lambda i: (-remainders[i], i))
    for i in order[:left]:
        counts[symbols[i]] += 1
    return counts


def _fcc_lattice_constant(symbol: str) -> float:
    """Reference fcc lattice constant, or the fcc one with the same nearest-neighbour distance."""
    ref: dict[str, Any] | None = reference_states[atomic_numbers[symbol]]
    if ref and ref.get("symmetry") == "fcc":
        return float(ref["a"])
    from ase.build import bulk as ase_bulk
    from ase.neighborlist import neighbor_list

    try:
        crystal = ase_bulk(symbol)
    except (ValueError, KeyError, RuntimeError):
        state = ref.get("symmetry") if ref else "no data"
        raise InputError(
            f"ASE has no reference crystal for {symbol} (reference state: {state}) to "
            "estimate an fcc lattice constant; pass lattice_constant=... in Å"
        ) from None
    dist = neighbor_list("d", crystal, 6.0)
    if len(dist) == 0:
        raise InputError(
            f"cannot estimate a lattice constant for {symbol}; pass lattice_constant=..."
        )
    a = float(dist.min()) * np.sqrt(2.0)
    logger.info(
        "%s is %s in its reference state; using the fcc lattice constant %.3f Å with the same "
        "nearest-neighbour distance",
        symbol,
        ref.get("symmetry") if ref else "no data",
        a,
    )
    return a


def nanoparticle(
    symbols_or_composition: str | Mapping[str, float],
    *,
    shape: str = "icosahedron",
    size: int = 3,
    seed: int | None = None,
    lattice_constant: float | None = None,
    vacuum: float = 6.0,
    surface_energies: Mapping[tuple[int, int, int], float] | None = None,
) -> Atoms:
    """Build a pure or random-alloy metal nanoparticle.

    Sizes (number of atoms for ``size`` = 1, 2, 3, 4):

    - ``"icosahedron"``: ``size`` = number of shells (:class:`ase.cluster.Icosahedron`),
      1, 13, 55, 147 atoms.
    - ``"decahedron"``: :class:`ase.cluster.Decahedron` with ``p = q = size``, ``r = 0``,
      1, 13, 55, 147 atoms.
    - ``"octahedron"``: regular octahedron with ``size`` atoms along an edge
      (:class:`ase.cluster.Octahedron`), 1, 6, 19, 44 atoms.
    - ``"cuboctahedron"``: ``size`` = number of shells like the icosahedron
      (``Octahedron(length=2*size-1, cutoff=size-1)``), 1, 13, 55, 147 atoms.
    - ``"truncated_octahedron"``: the regular truncated octahedron (square and hexagonal
      facets with equal edges, ``Octahedron(length=3*size+1, cutoff=size)``), 38, 201, 586,
      1289 atoms.
    - ``"wulff"``: fcc Wulff construction (:func:`ase.cluster.wulff_construction`) with the
      atom count closest to ``size`` (so ``size`` is a target number of atoms, e.g. 200),
      using ``surface_energies`` (default :data:`DEFAULT_SURFACE_ENERGIES`).

    Parameters
    ----------
    symbols_or_composition
        An element (``"Pt"``), a formula (``"Pt3Ni"``) or a mapping of fractions
        (``{"Pt": 0.2, "Pd": 0.2, "Ni": 0.2, "Co": 0.2, "Fe": 0.2}``); fractions are
        normalised and turned into atom counts by largest-remainder rounding, so the counts
        add up to the number of atoms and each is within 1 of ``fraction * N``. The elements
        are assigned to sites at random with ``numpy.random.default_rng(seed)``.
    shape
        One of :data:`NANOPARTICLE_SHAPES`.
    size
        Size parameter, see above.
    seed
        Seed of the random alloy assignment. ``None`` draws a fresh seed, which is recorded
        in ``info["built_by"]["seed"]`` so the particle can be rebuilt.
    lattice_constant
        fcc lattice constant in Å. Default: Vegard's law, the composition-weighted mean of
        the elements' reference fcc lattice constants (:data:`ase.data.reference_states`;
        for non-fcc elements, the fcc constant with the same nearest-neighbour distance).
    vacuum
        Empty space (Å) between the particle and each face of its box.
    surface_energies
        Wulff only: mapping of Miller indices to relative surface energies.

    Returns
    -------
    ase.Atoms
        Non-periodic particle (``pbc=False``) centred in an orthorhombic box with ``vacuum``
        on each side; ``info["built_by"]`` records shape, size, composition, counts, seed
        and lattice constant.

    Raises
    ------
    InputError
        Unknown element or shape, negative fractions, bad size or lattice constant.
    """
    from ase.cluster import Decahedron, Icosahedron, Octahedron, wulff_construction

    comp = _composition(symbols_or_composition)
    if not isinstance(shape, str) or shape.lower() not in NANOPARTICLE_SHAPES:
        raise InputError(
            f"Unknown nanoparticle shape {shape!r}; choose one of {', '.join(NANOPARTICLE_SHAPES)}"
        )
    shape = shape.lower()
    size = validation.integer("size", size, minimum=2 if shape == "wulff" else 1)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise InputError(f"seed must be an integer or None, got {seed!r}")
    try:
        vacuum = float(vacuum)
    except (TypeError, ValueError):
        raise InputError(f"vacuum must be a number of Å, got {vacuum!r}") from None
    if not np.isfinite(vacuum) or vacuum < 0:
        raise InputError(f"vacuum must be >= 0 Å, got {vacuum}")

    if lattice_constant is None:
        a = float(sum(x * _fcc_lattice_constant(s) for s, x in comp.items()))
    else:
        try:
            a = float(lattice_constant)
        except (TypeError, ValueError):
            a = -1.0
        if not np.isfinite(a) or a <= 0:
            raise InputError(
                f"lattice_constant must be a positive number in Å, got {lattice_constant!r}"
            )

    placeholder = next(iter(comp))
    energies_rec: Any = None
    if shape == "icosahedron":
        cluster = Icosahedron(placeholder, noshells=size, latticeconstant=a)
    elif shape == "decahedron":
        cluster = Decahedron(placeholder, p=size, q=size, r=0, latticeconstant=a)
    elif shape == "octahedron":
        cluster = Octahedron(placeholder, length=size, latticeconstant=a)
    elif shape == "cuboctahedron":
        cluster = Octahedron(placeholder, length=2 * size - 1, cutoff=size - 1, latticeconstant=a)
    elif shape == "truncated_octahedron":
        cluster = Octahedron(placeholder, length=3 * size + 1, cutoff=size, latticeconstant=a)
    else:
        energies = dict(surface_energies) if surface_energies else dict(DEFAULT_SURFACE_ENERGIES)
        try:
            planes = [tuple(int(v) for v in k) for k in energies]
            values = [float(v) for v in energies.values()]
        except (TypeError, ValueError):
            raise InputError(
                "surface_energies must map Miller indices such as (1, 1, 1) to numbers"
            ) from None
        if any(len(p) != 3 or not any(p) for p in planes) or any(v <= 0 for v in values):
            raise InputError(
                "surface_energies must map 3-index Miller indices (not (0, 0, 0)) to positive "
                f"numbers, got {energies!r}"
            )
        cluster = wulff_construction(
            placeholder, planes, values, size, "fcc", rounding="closest", latticeconstant=a
        )
        energies_rec = [[list(p), v] for p, v in zip(planes, values)]

    n = len(cluster)
    counts = _counts(comp, n)
    if seed is None and len(comp) > 1:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    symbols = np.repeat(list(counts), list(counts.values()))
    if len(comp) > 1:
        symbols = np.random.default_rng(seed).permutation(symbols)

    atoms = Atoms(list(symbols), positions=cluster.positions, pbc=False)
    atoms.center(vacuum=vacuum)
    atoms.pbc = False
    fields: dict[str, Any] = {
        "shape": shape,
        "size": size,
        "composition": comp,
        "counts": counts,
        "seed": None if seed is None else int(seed),
        "lattice_constant": a,
        "vacuum": vacuum,
    }
    if energies_rec is not None:
        fields["surface_energies"] = energies_rec
    record(atoms, "nanoparticle", **fields)
    return atoms
