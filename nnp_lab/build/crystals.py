"""Bulk crystals: ASE reference lattices, supercells, vacancies and a small library of
published structures built with pymatgen."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms
from ase.constraints import FixAtoms
from ase.data import atomic_numbers, reference_states
from ase.symbols import string2symbols

from nnp_lab import validation
from nnp_lab.build._common import (
    check_element,
    fixed_indices,
    int_vector,
    jsonable,
    record,
    require_atoms,
)
from nnp_lab.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["bulk", "supercell", "vacancy", "crystal", "list_crystals", "CRYSTAL_STRUCTURES"]

#: Crystal structures understood by :func:`bulk` (those of :func:`ase.build.bulk`).
CRYSTAL_STRUCTURES: tuple[str, ...] = (
    "sc",
    "fcc",
    "bcc",
    "hcp",
    "diamond",
    "zincblende",
    "rocksalt",
    "cesiumchloride",
    "fluorite",
    "wurtzite",
    "tetragonal",
    "bct",
    "rhombohedral",
    "orthorhombic",
    "mcl",
)


def _finite_positive(value: Any, name: str) -> float | None:
    if value is None:
        return None
    try:
        val = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a positive number in Å, got {value!r}") from None
    if not np.isfinite(val) or val <= 0:
        raise InputError(f"{name} must be a positive number in Å, got {value!r}")
    return val


def bulk(
    symbol_or_formula: str,
    crystalstructure: str | None = None,
    a: float | None = None,
    *,
    c: float | None = None,
    covera: float | None = None,
    cubic: bool = False,
    orthorhombic: bool = False,
) -> Atoms:
    """Build a bulk crystal (a thin, checked wrapper of :func:`ase.build.bulk`).

    Parameters
    ----------
    symbol_or_formula
        Element (``"Pt"``) or, for binary structures, a formula (``"NaCl"``).
    crystalstructure
        One of :data:`CRYSTAL_STRUCTURES`; ``None`` uses the element's reference structure
        from :data:`ase.data.reference_states`.
    a
        Lattice constant in Å; ``None`` uses the reference value (only available for an
        element in its reference structure).
    c, covera
        Second lattice constant (Å) or c/a ratio for hexagonal/tetragonal structures.
    cubic
        Return the conventional cubic cell (e.g. 4 atoms for fcc) instead of the primitive.
    orthorhombic
        Return an orthorhombic cell.

    Returns
    -------
    ase.Atoms
        Periodic bulk cell; ``info["built_by"]`` records the arguments and lattice constant.

    Raises
    ------
    InputError
        Unknown element or structure, missing reference data (pass ``a=...``), or
        non-positive lattice parameters.
    """
    from ase.build import bulk as ase_bulk

    if not isinstance(symbol_or_formula, str) or not symbol_or_formula.strip():
        raise InputError(
            f"bulk() needs an element symbol or formula such as 'Cu' or 'NaCl', got "
            f"{symbol_or_formula!r}"
        )
    name = symbol_or_formula.strip()
    try:
        symbols = string2symbols(name)
    except (ValueError, KeyError):
        raise InputError(
            f"Could not read {name!r} as an element or formula; use symbols such as 'Cu', "
            "'NaCl' or 'ZnS' (symbols are case-sensitive)"
        ) from None
    for s in symbols:
        check_element(s)

    if crystalstructure is not None:
        if not isinstance(crystalstructure, str) or crystalstructure not in CRYSTAL_STRUCTURES:
            raise InputError(
                f"Unknown crystal structure {crystalstructure!r}; choose one of "
                f"{', '.join(CRYSTAL_STRUCTURES)}"
            )
    a = _finite_positive(a, "a")
    c = _finite_positive(c, "c")
    covera = _finite_positive(covera, "covera")
    if cubic and orthorhombic:
        raise InputError("Pass at most one of cubic=True and orthorhombic=True")

    ref: dict[str, Any] | None = (
        reference_states[atomic_numbers[symbols[0]]] if len(set(symbols)) == 1 else None
    )
    if crystalstructure is None:
        if len(set(symbols)) > 1:
            raise InputError(
                f"{name!r} is a compound: pass crystalstructure=... (e.g. 'rocksalt', "
                "'zincblende', 'fluorite') and a=..."
            )
        if not ref or ref.get("symmetry") not in CRYSTAL_STRUCTURES:
            state = ref.get("symmetry") if ref else "no data"
            raise InputError(
                f"ASE has no reference crystal structure for {name} (reference state: "
                f"{state}); pass crystalstructure=... and a=... explicitly"
            )
        structure = str(ref["symmetry"])
    else:
        structure = crystalstructure
    a_used = a
    if a is None:
        same_as_ref = ref is not None and ref.get("symmetry") == structure
        if not same_as_ref or ref is None or "a" not in ref:
            raise InputError(
                f"ASE has no reference lattice constant for {name} in the {structure} "
                "structure; pass the lattice constant in Å, e.g. "
                f"bulk({name!r}, {structure!r}, a=4.0)"
            )
        a_used = float(ref["a"])

    try:
        atoms = ase_bulk(
            name,
            crystalstructure,
            a=a,
            c=c,
            covera=covera,
            cubic=cubic,
            orthorhombic=orthorhombic,
        )
    except (ValueError, KeyError, RuntimeError, NotImplementedError) as exc:
        raise InputError(
            f"ase.build.bulk could not build {name!r} as {structure!r}: {exc}; check the "
            "structure and lattice parameters (a=..., c=... or covera=...)"
        ) from None

    out = Atoms(atoms.get_chemical_symbols(), positions=atoms.positions, cell=atoms.cell, pbc=True)
    fields: dict[str, Any] = {
        "name": name,
        "crystalstructure": structure,
        "a": a_used,
        "cubic": bool(cubic),
        "orthorhombic": bool(orthorhombic),
    }
    if c is not None:
        fields["c"] = c
    if covera is not None:
        fields["covera"] = covera
    record(out, "bulk", **fields)
    return out


def _size_spec(size: Any) -> tuple[str, Any]:
    """Classify a supercell size as ('repeat', (n1, n2, n3)) or ('matrix', 3x3 int array)."""
    if isinstance(size, (bool, np.bool_)):
        raise InputError(f"size must be an int, 3 ints or a 3x3 integer matrix, got {size!r}")
    if isinstance(size, (int, np.integer)):
        n = validation.integer("size", size)
        return "repeat", (n, n, n)
    try:
        arr = np.asarray(size)
    except Exception:
        arr = np.asarray([])
    if arr.dtype == object or arr.shape not in {(3,), (3, 3)}:
        raise InputError(
            f"size must be an int, a sequence of 3 ints or a 3x3 integer matrix, got {size!r}"
        )
    if arr.shape == (3,):
        reps = int_vector(arr, "size", 3)
        if min(reps) < 1:
            raise InputError(
                f"supercell repetitions must be positive, got {reps}; use e.g. (2, 2, 1)"
            )
        return "repeat", reps
    if not np.all(np.isfinite(arr.astype(float))) or not np.allclose(arr, np.round(arr)):
        raise InputError(f"the supercell matrix must contain integers only, got {size!r}")
    mat = np.round(arr).astype(int)
    det = round(float(np.linalg.det(mat)))
    if det == 0:
        raise InputError(
            f"the supercell matrix {mat.tolist()} is singular (determinant 0); its rows must "
            "be linearly independent"
        )
    if det < 0:
        raise InputError(
            f"the supercell matrix {mat.tolist()} has a negative determinant ({det}), which "
            "would give a left-handed cell; swap two rows or negate one row"
        )
    return "matrix", mat


def supercell(atoms: Atoms, size: int | Sequence[int] | Sequence[Sequence[int]]) -> Atoms:
    """Repeat a periodic structure.

    Parameters
    ----------
    atoms
        The structure to repeat (not modified).
    size
        ``n`` (repeat ``n`` times along each cell vector), ``(n1, n2, n3)``, or a 3x3 integer
        matrix ``P`` whose rows give the new cell vectors in units of the old ones
        (new cell = ``P @ cell``, built with :func:`ase.build.make_supercell`).

    Returns
    -------
    ase.Atoms
        New structure. ``FixAtoms`` constraints and per-atom arrays are carried over.

    Raises
    ------
    InputError
        Non-positive repetitions, a non-integer, singular or left-handed matrix, or
        repeating along a zero cell vector.
    """
    from ase.build import make_supercell

    atoms = require_atoms(atoms, "atoms")
    kind, spec = _size_spec(size)
    cell = np.array(atoms.cell)
    lengths = np.linalg.norm(cell, axis=1)

    fixed, others = fixed_indices(atoms)
    if others:
        logger.warning(
            "supercell() keeps only FixAtoms constraints; dropping %s",
            ", ".join(type(c).__name__ for c in others),
        )
    src = atoms.copy()
    src.set_constraint()
    if kind == "repeat":
        for n, length, axis in zip(spec, lengths, "abc"):
            if n > 1 and length < 1e-8:
                raise InputError(
                    f"cannot repeat along cell vector {axis}: it has zero length; set a cell "
                    "first (e.g. atoms.center(vacuum=5))"
                )
        src.arrays["_nnp_orig_index"] = np.arange(len(src))
        out = src.repeat(spec)
        size_rec: Any = list(spec)
    else:
        if abs(np.linalg.det(cell)) < 1e-8:
            raise InputError(
                "a supercell matrix needs a 3D cell with non-zero volume; set atoms.cell first "
                "or pass repetitions (n1, n2, n3)"
            )
        src.arrays["_nnp_orig_index"] = np.arange(len(src))
        out = make_supercell(src, spec, wrap=True)
        out.pbc = atoms.pbc
        size_rec = spec.tolist()
    orig = out.arrays.pop("_nnp_orig_index")
    if len(fixed):
        out.set_constraint(FixAtoms(mask=np.isin(orig, fixed)))
    out.info = {k: v for k, v in atoms.info.items() if k != "built_by"}
    record(out, "supercell", parent=atoms, size=size_rec)
    return out


def vacancy(atoms: Atoms, index: int) -> Atoms:
    """Remove one atom.

    Parameters
    ----------
    atoms
        The structure (not modified).
    index
        Index of the atom to remove; negative indices count from the end.

    Returns
    -------
    ase.Atoms
        New structure with ``len(atoms) - 1`` atoms; ``info["built_by"]`` records the removed
        element, index and position. Constraints on the other atoms are kept.

    Raises
    ------
    InputError
        If ``index`` is not an integer or is out of range, or ``atoms`` has a single atom.
    """
    atoms = require_atoms(atoms, "atoms")
    n = len(atoms)
    if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
        raise InputError(f"index must be an integer atom index, got {index!r}")
    if not -n <= index < n:
        raise InputError(
            f"atom index {index} is out of range for a structure with {n} atoms; use an index "
            f"from {-n} to {n - 1}"
        )
    if n == 1:
        raise InputError(
            "cannot make a vacancy in a structure with a single atom; build a supercell "
            "first, e.g. vacancy(supercell(atoms, 3), 0)"
        )
    i = int(index) % n
    removed_symbol = atoms[i].symbol
    removed_position = atoms.positions[i].copy()
    out = atoms.copy()
    del out[i]
    out.info = {k: v for k, v in atoms.info.items() if k != "built_by"}
    record(
        out,
        "vacancy",
        parent=atoms,
        index=i,
        element=removed_symbol,
        position=removed_position,
    )
    return out


# --------------------------------------------------------------------------------------------
# Library of published structures
# --------------------------------------------------------------------------------------------

_UNCITED = "published crystallographic data as given in the nnp_lab issue"


@dataclass(frozen=True)
class _CrystalData:
    name: str
    spacegroup: str
    spacegroup_number: int
    lattice: tuple[float, float, float, float, float, float]  # a, b, c, alpha, beta, gamma
    sites: tuple[tuple[str, tuple[float, float, float]], ...]
    citation: str
    description: str
    aliases: tuple[str, ...] = ()


_CRYSTALS: tuple[_CrystalData, ...] = (
    _CrystalData(
        name="LiFePO4",
        spacegroup="Pnma",
        spacegroup_number=62,
        lattice=(10.332, 6.010, 4.692, 90.0, 90.0, 90.0),
        sites=(
            ("Li", (0.0, 0.0, 0.0)),
            ("Fe", (0.28222, 0.25, 0.97472)),
            ("P", (0.09486, 0.25, 0.41820)),
            ("O", (0.09678, 0.25, 0.74279)),
            ("O", (0.45710, 0.25, 0.20602)),
            ("O", (0.16558, 0.04646, 0.28480)),
        ),
        citation=(
            "V. A. Streltsov, E. L. Belokoneva, V. G. Tsirelson, N. K. Hansen, "
            "Acta Cryst. B 49, 147-153 (1993) (triphylite LiFePO4)"
        ),
        description="olivine (triphylite) LiFePO4, cathode material",
        aliases=("triphylite", "olivine-LiFePO4"),
    ),
    _CrystalData(
        name="Mg-MOF-74",
        spacegroup="R-3",
        spacegroup_number=148,
        lattice=(26.0506, 26.0506, 6.8741, 90.0, 90.0, 120.0),
        sites=(
            ("Mg", (0.3063, 0.0191, 0.3047)),
            ("H", (0.1923, 0.3626, 0.6776)),
            ("C", (0.4855, 0.9837, 0.8076)),
            ("C", (0.2131, 0.8735, 0.4545)),
            ("C", (0.2458, 0.3184, 0.0755)),
            ("C", (0.2224, 0.3439, 0.4112)),
            ("O", (0.4049, 0.4371, 0.5684)),
            ("O", (0.2972, 0.3295, 0.1378)),
            ("O", (0.2739, 0.3545, 0.4931)),
        ),
        citation=_UNCITED + " (CPO-27-Mg / Mg2(dobdc))",
        description="Mg-MOF-74 (CPO-27-Mg), Mg2(dobdc), hexagonal setting of R-3",
        aliases=("CPO-27-Mg", "MgMOF74", "Mg2(dobdc)"),
    ),
    _CrystalData(
        name="LiFeSO4F",
        spacegroup="P-1",
        spacegroup_number=2,
        lattice=(5.1800, 5.4917, 7.2289, 106.49, 107.19, 97.91),
        sites=(
            ("Li", (0.730, 0.366, 0.243)),
            ("Fe", (0.0, 0.0, 0.5)),
            ("Fe", (0.0, 0.0, 0.0)),
            ("S", (0.6756, 0.3619, 0.7505)),
            ("O", (0.4024, 0.2531, 0.5881)),
            ("O", (0.8937, 0.3593, 0.6552)),
            ("O", (0.6802, 0.6436, 0.8542)),
            ("O", (0.7210, 0.2292, 0.8984)),
            ("F", (0.8741, 0.0856, 0.2448)),
        ),
        citation=(
            "tavorite LiFeSO4F as reported by N. Recham et al., Nature Materials 9, 68-74 "
            "(2010); coordinates: " + _UNCITED
        ),
        description="tavorite LiFeSO4F, 3.6 V fluorosulphate cathode",
        aliases=("tavorite-LiFeSO4F",),
    ),
)


def _crystal_lookup() -> dict[str, _CrystalData]:
    table: dict[str, _CrystalData] = {}
    for data in _CRYSTALS:
        for key in (data.name, *data.aliases):
            table[key.lower()] = data
    return table


def list_crystals() -> list[str]:
    """Names accepted by :func:`crystal`.

    Returns
    -------
    list of str
        ``["LiFePO4", "Mg-MOF-74", "LiFeSO4F"]`` (aliases such as ``"CPO-27-Mg"`` also work).
    """
    return [d.name for d in _CRYSTALS]


def crystal(name: str, *, primitive: bool = False) -> Atoms:
    """Build a structure from the built-in library of published crystal structures.

    The structure is generated with :meth:`pymatgen.core.Structure.from_spacegroup` from
    the space group, lattice parameters and asymmetric-unit sites.

    Parameters
    ----------
    name
        One of :func:`list_crystals` (case-insensitive; aliases such as ``"CPO-27-Mg"``).
    primitive
        Return the primitive cell (e.g. the 54-atom rhombohedral cell of Mg-MOF-74 instead
        of the 162-atom hexagonal cell).

    Returns
    -------
    ase.Atoms
        Periodic structure; ``info["built_by"]`` holds the space group, lattice, sites and
        a citation.

    Raises
    ------
    InputError
        If the name is unknown (the message lists the available names).
    """
    from pymatgen.core import Lattice, Structure

    if not isinstance(name, str):
        raise InputError(f"crystal name must be a string, one of {list_crystals()}")
    data = _crystal_lookup().get(name.strip().lower())
    if data is None:
        raise InputError(
            f"Unknown crystal {name!r}; available: {', '.join(list_crystals())} "
            "(case-insensitive). For other materials use bulk(...) or read a CIF with ase.io.read"
        )
    lattice = Lattice.from_parameters(*data.lattice)
    species = [s for s, _ in data.sites]
    coords = [xyz for _, xyz in data.sites]
    structure = Structure.from_spacegroup(data.spacegroup, lattice, species, coords)
    if primitive:
        structure = structure.get_primitive_structure()
    atoms = Atoms(
        [str(site.specie) for site in structure],
        positions=structure.cart_coords,
        cell=structure.lattice.matrix,
        pbc=True,
    )
    a, b, c, alpha, beta, gamma = data.lattice
    record(
        atoms,
        "crystal",
        name=data.name,
        description=data.description,
        primitive=bool(primitive),
        spacegroup=data.spacegroup,
        spacegroup_number=data.spacegroup_number,
        lattice={"a": a, "b": b, "c": c, "alpha": alpha, "beta": beta, "gamma": gamma},
        sites=jsonable([[s, *xyz] for s, xyz in data.sites]),
        citation=data.citation,
    )
    return atoms
