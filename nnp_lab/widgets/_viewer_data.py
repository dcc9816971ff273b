"""What the viewer sends to the browser: validated float32 coordinates, cells, element tables.

Everything here is plain numpy/ASE (no widget): conversions of user input into the binary
little-endian float32 buffers the front end reads, with errors that say what was wrong, and
the frames of a trajectory or band checked to hold the same atoms in the same order.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.cell import Cell

from nnp_lab.errors import InputError

__all__ = [
    "Frame",
    "StructureData",
    "cell9",
    "default_labels",
    "element_table",
    "frames_from",
    "live_frame",
    "merge_frames",
    "replacement_arrays",
    "stored_forces",
    "structure_data",
    "trajectory_arrays",
    "vectors",
    "without_markers",
]

# Elements drawn with van der Waals radii in "spacefill"; every other element (the metals, whose
# covalent radius is about half the nearest-neighbour distance) is drawn with its covalent radius.
_VDW_ELEMENTS = frozenset("H He B C N O F Ne Si P S Cl Ar Ge As Se Br Kr Sb Te I Xe".split())


@dataclass
class Frame:
    """One throttled live frame; ``None`` fields leave the shown value unchanged."""

    positions: bytes
    cell: list[float] | None = None
    forces: bytes | None = None
    label: str | None = None


def merge_frames(older: Frame, newer: Frame) -> Frame:
    return Frame(
        positions=newer.positions,
        cell=newer.cell if newer.cell is not None else older.cell,
        forces=newer.forces if newer.forces is not None else older.forces,
        label=newer.label if newer.label is not None else older.label,
    )


def live_frame(n: int, positions: Any, cell: Any, forces: Any, label: str | None) -> Frame:
    """The frame :meth:`Viewer.update` sends for ``n`` atoms (``positions`` may be an Atoms,
    whose cell is used when ``cell`` is ``None``); ``None`` arguments keep what is shown."""
    if isinstance(positions, Atoms):
        if cell is None:
            cell = positions.cell
        positions = positions.positions
    return Frame(
        positions=vectors(positions, n, "positions").tobytes(),
        cell=None if cell is None else cell9(cell),
        forces=None if forces is None else vectors(forces, n, "forces").tobytes(),
        label=None if label is None else str(label),
    )


@dataclass(frozen=True)
class StructureData:
    """The synced values of a structure shown; the defaults are those of an empty view."""

    numbers: bytes = b""
    positions: bytes = b""
    cell: list[float] = field(default_factory=lambda: [0.0] * 9)
    pbc: list[bool] = field(default_factory=lambda: [False] * 3)
    forces: bytes = b""
    elements: dict[str, list[Any]] = field(default_factory=dict)


def structure_data(atoms: Atoms) -> StructureData:
    """Validated numbers, positions, cell, pbc, stored forces and element table of ``atoms``."""
    numbers = np.asarray(atoms.numbers)
    if numbers.size and (numbers.min() < 0 or numbers.max() > 255):
        raise InputError(f"atomic numbers must be in 0..255, got {numbers.min()}..{numbers.max()}")
    n = len(atoms)
    positions = vectors(atoms.positions, n, "atoms.positions")
    cell = cell9(atoms.cell)
    forces = stored_forces(atoms)
    return StructureData(
        numbers=numbers.astype(np.uint8).tobytes(),
        positions=positions.tobytes(),
        cell=cell,
        pbc=[bool(p) for p in atoms.pbc],
        forces=b"" if forces is None else vectors(forces, n, "forces").tobytes(),
        elements=element_table(numbers),
    )


def vectors(value: Any, n: int, name: str) -> np.ndarray:
    """Validate an (n, 3) array of finite numbers and return it as a new little-endian float32 array."""
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged nested lists and the like
        raise InputError(
            f"{name} must be an array of shape ({n}, 3); could not convert it: {exc}"
        ) from None
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise InputError(f"{name} must be a numeric array of shape ({n}, 3), got dtype {arr.dtype}")
    if arr.shape != (n, 3):
        hint = (
            " To show a structure with a different number of atoms, set viewer.atoms = new_atoms."
            if arr.ndim == 2 and arr.shape[1:] == (3,)
            else ""
        )
        raise InputError(
            f"{name} must have shape ({n}, 3) for the {n} atoms shown, got shape {arr.shape}.{hint}"
        )
    out = np.array(arr, dtype="<f4", order="C", copy=True)
    finite = np.isfinite(out).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise InputError(
            f"{name} contain NaN or infinite values (atom indices {bad[:5].tolist()}"
            f"{' ...' if bad.size > 5 else ''}); check the simulation that produced them."
        )
    return out


def cell9(cell: Any) -> list[float]:
    """Return a row-vector cell (ASE convention) as 9 floats; accepts Cell, 3x3, lengths or cellpar."""
    try:
        arr = Cell.new(cell).array
    except Exception as exc:
        raise InputError(
            "cell must be a 3x3 matrix of row vectors (ASE convention), 3 lengths or 6 cell "
            f"parameters, got {cell!r} ({exc})"
        ) from None
    if not np.isfinite(arr).all():
        raise InputError(f"cell contains NaN or infinite values: {arr.tolist()}")
    return [float(x) for x in arr.reshape(9)]


def element_table(numbers: np.ndarray) -> dict[str, list[Any]]:
    """Colour (Jmol), covalent and drawing radii for each element present, keyed by str(Z)."""
    from ase.data import chemical_symbols, covalent_radii, vdw_radii
    from ase.data.colors import jmol_colors

    table: dict[str, list[Any]] = {}
    for z in sorted({int(z) for z in numbers}):
        symbol = chemical_symbols[z] if z < len(chemical_symbols) else "X"
        r_cov = float(covalent_radii[z]) if z < len(covalent_radii) else 1.5
        if not math.isfinite(r_cov) or r_cov <= 0:
            r_cov = 1.5
        r_vdw = float(vdw_radii[z]) if z < len(vdw_radii) else math.nan
        r_fill = r_vdw if symbol in _VDW_ELEMENTS and math.isfinite(r_vdw) else r_cov
        rgb = [float(c) for c in jmol_colors[z]] if z < len(jmol_colors) else [0.6, 0.6, 0.6]
        table[str(z)] = [*rgb, round(r_cov, 4), round(r_fill, 4), symbol]
    return table


def _stored_energy(atoms: Atoms) -> float | None:
    """Energy stored with the Atoms (calculator results or info), without computing anything."""
    calc = atoms.calc
    results = getattr(calc, "results", None) if calc is not None else None
    energy = results.get("energy") if isinstance(results, dict) else None
    if energy is None:
        energy = atoms.info.get("energy")
    try:
        return None if energy is None else float(energy)
    except (TypeError, ValueError):
        return None


def stored_forces(atoms: Atoms) -> np.ndarray | None:
    calc = atoms.calc
    results = getattr(calc, "results", None) if calc is not None else None
    forces = results.get("forces") if isinstance(results, dict) else None
    if forces is None:
        return None
    forces = np.asarray(forces)
    return forces if forces.shape == (len(atoms), 3) else None


def frames_from(frames: Any, what: str) -> list[Atoms]:
    """A list of Atoms from a list/tuple/iterable of Atoms, a trajectory file path, or one Atoms."""
    if isinstance(frames, (str, os.PathLike)):
        from ase.io import read

        path = Path(frames)
        if not path.exists():
            raise InputError(f"{what}: file {str(path)!r} does not exist")
        frames = read(path, index=":")
    elif isinstance(frames, Atoms):
        frames = [frames]
    try:
        out = list(frames)
    except TypeError:
        raise TypeError(
            f"{what} must be a list of ase.Atoms or a path to a trajectory file, got "
            f"{type(frames).__name__}"
        ) from None
    if not out:
        raise InputError(f"{what} is empty; pass at least one ase.Atoms")
    for i, a in enumerate(out):
        if not isinstance(a, Atoms):
            raise TypeError(f"{what}[{i}] is a {type(a).__name__}, expected ase.Atoms")
    first = out[0].numbers
    for i, a in enumerate(out[1:], start=1):
        if len(a) != len(first):
            raise InputError(
                f"{what}: frame {i} has {len(a)} atoms but frame 0 has {len(first)}; every frame "
                "must hold the same atoms in the same order (show structures with different "
                "atoms one at a time with viewer.atoms = ...)"
            )
        if not np.array_equal(a.numbers, first):
            k = int(np.flatnonzero(a.numbers != first)[0])
            raise InputError(
                f"{what}: frame {i} has element {a.get_chemical_symbols()[k]} at index {k} where "
                f"frame 0 has {out[0].get_chemical_symbols()[k]}; every frame must hold the same "
                "atoms in the same order"
            )
    return out


def default_labels(frames: list[Atoms], word: str, *, relative: bool) -> list[str]:
    energies = [_stored_energy(a) for a in frames]
    last = len(frames) - 1
    e0 = energies[0]
    labels = []
    for i, e in enumerate(energies):
        text = f"{word} {i}/{last}"
        if e is not None:
            if relative and e0 is not None:
                text += f"  E - E0 = {e - e0:+.3f} eV"
            else:
                text += f"  E = {e:.3f} eV"
        labels.append(text)
    return labels


def _labels(labels: Any, n_frames: int) -> list[str]:
    out = [str(x) for x in labels]
    if len(out) != n_frames:
        raise InputError(f"got {len(out)} labels for {n_frames} frames; give one per frame")
    return out


def trajectory_arrays(
    frames: list[Atoms], labels: Any, start: int, *, max_bytes: int
) -> tuple[np.ndarray, np.ndarray, list[str], int]:
    """The buffers of a trajectory or band to load: positions, cells, labels and first frame.

    Parameters
    ----------
    frames
        Frames with the same atoms (as :func:`frames_from` returns them).
    labels
        One label per frame.
    start
        Index of the frame shown first.
    max_bytes
        Most bytes of coordinates sent to the browser at once.

    Returns
    -------
    positions, cells, labels, start
        float32 ``(n_frames, n_atoms, 3)`` and ``(n_frames, 3, 3)`` arrays, the labels as
        strings and ``start`` as an int.
    """
    labels = _labels(labels, len(frames))
    n = len(frames[0])
    nbytes = len(frames) * n * 12
    if nbytes > max_bytes:
        raise InputError(
            f"{len(frames)} frames x {n} atoms is {nbytes / 1024**2:.0f} MB of coordinates, more "
            f"than the {max_bytes // 1024**2} MB the viewer sends to the browser; "
            f"pass every k-th frame, e.g. frames[::{math.ceil(nbytes / max_bytes)}]"
        )
    positions = np.empty((len(frames), n, 3), dtype="<f4")
    cells = np.empty((len(frames), 3, 3), dtype="<f4")
    for i, a in enumerate(frames):
        positions[i] = vectors(a.positions, n, f"frame {i} positions")
        cells[i] = np.asarray(cell9(a.cell)).reshape(3, 3)
    start = int(start)
    if not 0 <= start < len(frames):
        raise InputError(f"start must be in 0..{len(frames) - 1}, got {start}")
    return positions, cells, labels, start


def replacement_arrays(
    shape: tuple[int, ...], positions: Any, cells: Any, labels: Any
) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    """New coordinates (and optionally cells and labels) for loaded frames of ``shape``.

    Returns
    -------
    positions, cells, labels
        float32 ``shape`` positions; float32 ``(n_frames, 3, 3)`` cells or ``None`` (keep);
        one label per frame or ``None`` (keep).
    """
    arr = np.asarray(positions)
    if arr.shape != shape:
        raise InputError(
            f"positions must have shape {shape} (n_frames, n_atoms, 3) like the loaded frames, "
            f"got {arr.shape}; load a different band with show_band()"
        )
    new = vectors(arr.reshape(-1, 3), shape[0] * shape[1], "positions").reshape(shape)
    new_cells = None
    if cells is not None:
        c = np.asarray(cells, dtype=float)
        if c.shape != (shape[0], 3, 3):
            raise InputError(f"cells must have shape ({shape[0]}, 3, 3), got {c.shape}")
        new_cells = c.astype("<f4")
    return new, new_cells, None if labels is None else _labels(labels, shape[0])


def without_markers(atoms: Atoms) -> tuple[Atoms, dict[int, int]]:
    """``atoms`` without site markers (atomic number 0, as a slab builder draws the sites;
    no potential evaluates them), constraints re-indexed, and the map old index -> new."""
    markers = [i for i, z in enumerate(atoms.numbers) if z == 0]
    out = atoms.copy()
    if markers:
        del out[markers]
    gone = set(markers)
    keep = [i for i in range(len(atoms)) if i not in gone]
    return out, {old: new for new, old in enumerate(keep)}
