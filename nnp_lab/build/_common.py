"""Small helpers shared by the builders (validation, provenance records, layer grouping)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from ase import Atoms
from ase.constraints import FixAtoms
from ase.data import atomic_numbers

from nnp_lab.errors import InputError

logger = logging.getLogger(__name__)

#: Default tolerance (Å) used to group atoms into atomic layers (distinct z planes).
LAYER_TOLERANCE = 0.3


def jsonable(value: Any) -> Any:
    """Return ``value`` converted to plain JSON-able Python types.

    Tuples and NumPy arrays become lists, NumPy scalars become ``int``/``float``/``bool``
    and mapping keys become strings, so the result can be stored in ``atoms.info`` and
    written to ``.traj`` / ``.extxyz`` files.

    Parameters
    ----------
    value
        Any nesting of dicts, sequences, NumPy arrays and scalars.

    Returns
    -------
    Any
        The converted value.
    """
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def record(atoms: Atoms, builder: str, parent: Atoms | None = None, **fields: Any) -> None:
    """Store ``atoms.info["built_by"]`` describing how ``atoms`` was made.

    Parameters
    ----------
    atoms
        The freshly built structure (modified in place; it is always a new object).
    builder
        Name of the builder function, e.g. ``"surface"``.
    parent
        The input structure, if any; its own ``built_by`` record is nested under
        ``"parent"`` so the whole build history is kept.
    **fields
        Parameters of the build; converted with :func:`jsonable`.
    """
    rec: dict[str, Any] = {"builder": builder}
    rec.update(jsonable(fields))
    if parent is not None:
        parent_rec = parent.info.get("built_by")
        rec["parent"] = (
            jsonable(parent_rec)
            if parent_rec is not None
            else {"builder": "user", "formula": parent.get_chemical_formula()}
        )
    atoms.info["built_by"] = rec


def require_atoms(obj: Any, name: str, *, allow_empty: bool = False) -> Atoms:
    """Check that ``obj`` is an :class:`ase.Atoms` object and return it.

    Raises
    ------
    InputError
        If ``obj`` is not an ``Atoms`` object, or is empty and ``allow_empty`` is false.
    """
    if not isinstance(obj, Atoms):
        raise InputError(
            f"{name} must be an ase.Atoms object, got {type(obj).__name__}; "
            "build one with nnp_lab.build (e.g. bulk('Pt')) or read it with ase.io.read"
        )
    if not allow_empty and len(obj) == 0:
        raise InputError(f"{name} contains no atoms; pass a structure with at least one atom")
    return obj


def check_element(symbol: Any, what: str = "element") -> str:
    """Return ``symbol`` if it is a known chemical symbol, else raise :class:`InputError`."""
    if not isinstance(symbol, str) or symbol not in atomic_numbers or symbol == "X":
        hint = ""
        if isinstance(symbol, str) and symbol.capitalize() in atomic_numbers:
            hint = f" (did you mean '{symbol.capitalize()}'? symbols are case-sensitive)"
        raise InputError(
            f"Unknown {what} {symbol!r}{hint}; use a chemical symbol such as 'Pt', 'Cu' or 'Fe'"
        )
    return symbol


def int_vector(value: Any, name: str, length: int) -> tuple[int, ...]:
    """Return ``value`` as a tuple of ``length`` Python ints, or raise :class:`InputError`."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
        raise InputError(f"{name} must be a sequence of {length} integers, got {value!r}")
    arr = np.asarray(value)
    if arr.shape != (length,):
        raise InputError(f"{name} must be a sequence of {length} integers, got {value!r}")
    out = []
    for v in arr.tolist():
        if isinstance(v, bool) or not float(v).is_integer():
            raise InputError(f"{name} must contain integers only, got {value!r}")
        out.append(int(v))
    return tuple(out)


def group_layers(z: np.ndarray, tolerance: float = LAYER_TOLERANCE) -> np.ndarray:
    """Group heights into layers.

    Sorted heights are split wherever two consecutive values differ by more than
    ``tolerance``; each group is one atomic layer.

    Parameters
    ----------
    z
        Heights (Å), shape ``(n,)``.
    tolerance
        Largest gap (Å) between heights that still belong to the same layer.

    Returns
    -------
    numpy.ndarray
        Integer layer index per entry of ``z``; 0 is the lowest layer.
    """
    z = np.asarray(z, dtype=float)
    layer = np.zeros(len(z), dtype=int)
    if len(z) == 0:
        return layer
    order = np.argsort(z, kind="stable")
    gaps = np.diff(z[order]) > tolerance
    layer[order] = np.concatenate([[0], np.cumsum(gaps)])
    return layer


def substrate_mask(atoms: Atoms) -> np.ndarray:
    """Boolean mask of atoms that are not adsorbates (``atoms.arrays["adsorbate"]``)."""
    if "adsorbate" in atoms.arrays:
        return ~np.asarray(atoms.arrays["adsorbate"], dtype=bool)
    return np.ones(len(atoms), dtype=bool)


def fixed_indices(atoms: Atoms) -> tuple[np.ndarray, list[Any]]:
    """Split the constraints of ``atoms`` into FixAtoms indices and all other constraints."""
    fixed: list[int] = []
    others: list[Any] = []
    for c in atoms.constraints:
        if isinstance(c, FixAtoms):
            fixed.extend(int(i) for i in c.get_indices())
        else:
            others.append(c)
    return np.array(sorted(set(fixed)), dtype=int), others


def spglib_call(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a spglib function; return ``None`` if spglib fails.

    Works with both of spglib's error conventions (returning ``None`` or raising
    ``SpglibError``) and silences the deprecation warning about them.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return func(*args, **kwargs)
        except Exception as exc:  # spglib.error.SpglibError in spglib >= 2.5
            logger.debug("spglib %s failed: %s", getattr(func, "__name__", func), exc)
            return None
