"""Edits of a structure — select, move, rotate, add, delete, fix, measure — with undo, redo and
the Python code that repeats them.

Each edit is a plain function that returns new Atoms (:func:`move_atoms`, :func:`rotate_atoms`,
:func:`add_atoms`, :func:`delete_atoms`, :func:`fix_atoms`, :func:`unfix_atoms`), so a script can
call it directly. :class:`StructureEditor` keeps a structure, a selection and the list of edits
applied to it; every edit it makes goes through one of these functions with arguments written
out as Python literals, and :meth:`StructureEditor.edits_as_code` prints those calls: running
them on the starting structure reproduces the edited one exactly. The 3D viewer
(:class:`nnp_lab.widgets.Viewer`) edits through a :class:`StructureEditor`, so the mouse and a
script share one implementation.

Examples
--------
>>> from nnp_lab import build
>>> from nnp_lab.build.editing import StructureEditor
>>> slab = build.surface(build.bulk("Pt"), (1, 1, 1), 3, size=(2, 2))
>>> ed = StructureEditor(slab)
>>> _ = ed.add("CO", site="fcc", height=1.3)
>>> _ = ed.move(displacement=(0.0, 0.0, 0.2))       # the new CO is selected after add
>>> _ = ed.fix(ed.select(layer=0))
>>> print(ed.edits_as_code())                        # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms
from ase.constraints import FixAtoms
from ase.data import covalent_radii
from ase.geometry import find_mic

from nnp_lab.build._common import check_element, fixed_indices, group_layers, require_atoms
from nnp_lab.errors import InputError

__all__ = [
    "Edit",
    "StructureEditor",
    "OVERLAP_FRACTION",
    "add_atoms",
    "close_contacts",
    "delete_atoms",
    "fix_atoms",
    "fixed_atoms",
    "measure",
    "move_atoms",
    "rotate_atoms",
    "unfix_atoms",
]

#: An edit warns when two atoms end up closer than this fraction of their covalent-radius sum.
OVERLAP_FRACTION = 0.6


# ---------------------------------------------------------------------------------------------
# The edits, as functions
# ---------------------------------------------------------------------------------------------


def _indices(
    atoms: Atoms, indices: Any, what: str = "indices", *, allow_empty: bool = False
) -> list[int]:
    """``indices`` as a sorted list of distinct ints in range; clear errors otherwise."""
    if isinstance(indices, (int, np.integer)) and not isinstance(indices, (bool, np.bool_)):
        indices = [indices]
    try:
        out = sorted({int(i) for i in indices})
        bad = [i for i in indices if isinstance(i, (bool, np.bool_)) or int(i) != i]
    except (TypeError, ValueError):
        raise InputError(f"{what} must be atom indices (ints), got {indices!r}") from None
    if bad:
        raise InputError(f"{what} must be atom indices (ints), got {indices!r}")
    n = len(atoms)
    outside = [i for i in out if not 0 <= i < n]
    if outside:
        raise InputError(f"{what} {outside} out of range for {n} atoms (0..{n - 1})")
    if not out and not allow_empty:
        raise InputError(f"no atoms given ({what} is empty): select atoms first")
    return out


def _vector(value: Any, name: str) -> np.ndarray:
    try:
        v = np.asarray(value, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        v = np.array([])
    if v.shape != (3,) or not np.all(np.isfinite(v)):
        raise InputError(f"{name} must be three finite numbers (Å), got {value!r}")
    return v


def move_atoms(atoms: Atoms, indices: Sequence[int], displacement: Sequence[float]) -> Atoms:
    """Return a copy of ``atoms`` with the atoms ``indices`` moved by ``displacement`` (Å).

    Constraints are kept but do not stop the move (an edit is not a dynamics step).
    """
    atoms = require_atoms(atoms, "atoms")
    idx = _indices(atoms, indices)
    d = _vector(displacement, "displacement")
    out = atoms.copy()
    pos = out.get_positions()
    pos[idx] += d
    out.set_positions(pos, apply_constraint=False)
    return out


def _unwrapped(atoms: Atoms, idx: list[int]) -> np.ndarray:
    """Positions of the atoms ``idx``, each by its minimum image from the first, so that a
    molecule split by a periodic boundary is whole."""
    pos = atoms.positions[idx]
    d, _ = find_mic(pos - pos[0], atoms.cell, atoms.pbc)
    return pos[0] + d


def rotate_atoms(
    atoms: Atoms,
    indices: Sequence[int],
    angle: float,
    axis: str | Sequence[float] = "z",
    center: Sequence[float] | None = None,
) -> Atoms:
    """Return a copy of ``atoms`` with the atoms ``indices`` rotated as a rigid group.

    Parameters
    ----------
    atoms
        The structure (not modified).
    indices
        The group to rotate (e.g. a molecule).
    angle
        Rotation angle in degrees (right-handed about ``axis``).
    axis
        ``"x"``, ``"y"``, ``"z"`` or a vector.
    center
        Point (Å) on the axis; default the group's geometric centre. A group split by a
        periodic boundary is made whole first (each atom by its minimum image from the
        first), so its atoms may end up outside the cell.
    """
    atoms = require_atoms(atoms, "atoms")
    idx = _indices(atoms, indices)
    angle = float(angle)
    if not np.isfinite(angle):
        raise InputError(f"angle must be a finite number of degrees, got {angle!r}")
    if isinstance(axis, str):
        if axis not in ("x", "y", "z"):
            raise InputError(f"axis must be 'x', 'y', 'z' or a vector, got {axis!r}")
        u = np.eye(3)["xyz".index(axis)]
    else:
        u = _vector(axis, "axis")
        if np.linalg.norm(u) < 1e-12:
            raise InputError("axis must not be the zero vector")
        u = u / np.linalg.norm(u)
    group = _unwrapped(atoms, idx)
    c = group.mean(axis=0) if center is None else _vector(center, "center")
    # Rodrigues' rotation matrix
    t = np.radians(angle)
    k = np.array([[0, -u[2], u[1]], [u[2], 0, -u[0]], [-u[1], u[0], 0]])
    rot = np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * (k @ k)
    out = atoms.copy()
    pos = out.get_positions()
    pos[idx] = (group - c) @ rot.T + c  # the group whole (unwrapped), as one rigid body
    out.set_positions(pos, apply_constraint=False)
    return out


def delete_atoms(atoms: Atoms, indices: Sequence[int]) -> Atoms:
    """Return a copy of ``atoms`` without the atoms ``indices`` (constraints re-indexed)."""
    atoms = require_atoms(atoms, "atoms")
    idx = _indices(atoms, indices)
    if len(idx) == len(atoms):
        raise InputError("cannot delete every atom; keep at least one")
    out = atoms.copy()
    del out[idx]
    return out


def fixed_atoms(atoms: Atoms) -> list[int]:
    """Indices held by the :class:`~ase.constraints.FixAtoms` constraints of ``atoms``, sorted."""
    return fixed_indices(require_atoms(atoms, "atoms", allow_empty=True))[0].tolist()


def _with_fixed(atoms: Atoms, fixed: Sequence[int]) -> Atoms:
    out = atoms.copy()
    _, others = fixed_indices(atoms)
    constraints = list(others)
    if len(fixed):
        constraints.insert(0, FixAtoms(indices=sorted(int(i) for i in fixed)))
    out.set_constraint(constraints)
    return out


def fix_atoms(atoms: Atoms, indices: Sequence[int]) -> Atoms:
    """Return a copy of ``atoms`` with ``indices`` added to its :class:`~ase.constraints.FixAtoms`
    (one FixAtoms holds all fixed atoms; other constraints are kept)."""
    atoms = require_atoms(atoms, "atoms")
    idx = _indices(atoms, indices)
    fixed, _ = fixed_indices(atoms)
    return _with_fixed(atoms, sorted(set(fixed.tolist()) | set(idx)))


def unfix_atoms(atoms: Atoms, indices: Sequence[int]) -> Atoms:
    """Return a copy of ``atoms`` with ``indices`` removed from its FixAtoms constraint."""
    atoms = require_atoms(atoms, "atoms")
    idx = _indices(atoms, indices)
    fixed, _ = fixed_indices(atoms)
    return _with_fixed(atoms, sorted(set(fixed.tolist()) - set(idx)))


def _species(species: str | Atoms) -> Atoms:
    """An element symbol as one atom, a molecule name / SMILES through build.molecule, or Atoms."""
    from nnp_lab.build.molecules import molecule

    if isinstance(species, Atoms):
        if len(species) == 0:
            raise InputError("the Atoms to add are empty")
        return species.copy()
    if not isinstance(species, str) or not species.strip():
        raise InputError(
            f"add an element symbol, a molecule name or SMILES, or Atoms; got {species!r}"
        )
    try:
        return Atoms(check_element(species.strip()))
    except InputError:
        return molecule(species.strip())


def add_atoms(
    atoms: Atoms,
    species: str | Atoms,
    *,
    position: Sequence[float] | None = None,
    site: Any = None,
    on_atom: int | None = None,
    height: float = 2.0,
) -> Atoms:
    """Return a copy of ``atoms`` with an atom or a molecule added after its atoms.

    Give exactly one of ``position``, ``site`` or ``on_atom``:

    - ``position``: Cartesian point (Å) where the atom goes (for a molecule: its first atom,
      with the molecule as built).
    - ``site``: an adsorption site of a slab — a :class:`~nnp_lab.build.Site`, a kind or label
      (``"fcc"``, ``"bridge-1"``) or x, y coordinates — placed upright ``height`` Å above the
      top layer by :func:`~nnp_lab.build.add_adsorbate`.
    - ``on_atom``: ``height`` Å straight above (+z) that atom (e.g. on top of a picked surface
      atom).

    Parameters
    ----------
    species
        Element symbol (``"O"``), molecule name or SMILES (``"CO"``, ``"CCO"``; built by
        :func:`~nnp_lab.build.molecule`), or Atoms.
    height
        Height (Å) above the top layer (``site``) or above the atom (``on_atom``).
    """
    from nnp_lab.build.adsorption import add_adsorbate

    atoms = require_atoms(atoms, "atoms")
    given = [
        name
        for name, v in (("position", position), ("site", site), ("on_atom", on_atom))
        if v is not None
    ]
    if len(given) != 1:
        raise InputError(f"give exactly one of position=, site= or on_atom=; got {given or 'none'}")
    new = _species(species)
    if site is not None:
        return add_adsorbate(atoms, new, site, height=float(height))
    if on_atom is not None:
        i = _indices(atoms, [on_atom], "on_atom")[0]
        target = atoms.positions[i] + np.array([0.0, 0.0, float(height)])
    else:
        target = _vector(position, "position")
    new.positions += target - new.positions[0]
    new.set_cell(atoms.cell)
    new.pbc = atoms.pbc
    out = atoms.copy()
    n_before = len(out)
    out.extend(new)
    if "adsorbate" in atoms.arrays:
        flags = np.zeros(len(out), dtype=bool)
        flags[:n_before] = atoms.arrays["adsorbate"]
        flags[n_before:] = True
        out.arrays["adsorbate"] = flags
    return out


# ---------------------------------------------------------------------------------------------
# Measuring and checking
# ---------------------------------------------------------------------------------------------


def measure(atoms: Atoms, indices: Sequence[int]) -> dict[str, Any]:
    """Distance of 2 atoms (Å), angle of 3 (degrees, at the middle one) or dihedral of 4
    (degrees), each by the minimum image across periodic boundaries (ASE's own
    ``get_distance`` / ``get_angle`` / ``get_dihedral`` with ``mic=True``).

    ``indices`` keep their order (the angle is at ``indices[1]``). Returns ``{"kind", "value",
    "unit", "indices", "text"}``.
    """
    atoms = require_atoms(atoms, "atoms")
    idx = [int(i) for i in indices]
    if len(set(idx)) != len(idx):
        raise InputError(f"measure needs distinct atoms, got {idx}")
    _indices(atoms, idx)
    names = [f"{atoms[i].symbol}{i}" for i in idx]
    if len(idx) == 2:
        kind, unit, value = "distance", "Å", atoms.get_distance(idx[0], idx[1], mic=True)
    elif len(idx) == 3:
        kind, unit, value = "angle", "°", atoms.get_angle(idx[0], idx[1], idx[2], mic=True)
    elif len(idx) == 4:
        kind, unit, value = (
            "dihedral",
            "°",
            atoms.get_dihedral(idx[0], idx[1], idx[2], idx[3], mic=True),
        )
    else:
        raise InputError(
            f"select 2 atoms for a distance, 3 for an angle or 4 for a dihedral; got {len(idx)}"
        )
    value = float(value)
    text = (
        f"{kind} {'–'.join(names)} = {value:.3f} {unit}"
        if unit == "Å"
        else f"{kind} {'–'.join(names)} = {value:.2f}{unit}"
    )
    return {"kind": kind, "value": value, "unit": unit, "indices": idx, "text": text}


def close_contacts(
    atoms: Atoms, indices: Sequence[int], fraction: float = OVERLAP_FRACTION
) -> list[tuple[int, int, float, float]]:
    """Pairs (i in ``indices``, j any other atom) closer than ``fraction`` × the sum of their
    covalent radii, minimum image: ``(i, j, distance, sum of radii)``, closest first."""
    idx = _indices(atoms, indices, allow_empty=True)
    if not idx or len(atoms) < 2:
        return []
    out = []
    others = np.arange(len(atoms))
    for i in idx:
        mask = others != i
        d = atoms.get_distances(i, others[mask], mic=True)
        r = covalent_radii[atoms.numbers[i]] + covalent_radii[atoms.numbers[others[mask]]]
        for j, dij, rij in zip(
            others[mask][d < fraction * r], d[d < fraction * r], r[d < fraction * r]
        ):
            if j in idx and j < i:
                continue  # each pair inside the group once
            out.append((int(i), int(j), float(dij), float(rij)))
    return sorted(out, key=lambda t: t[2])


# ---------------------------------------------------------------------------------------------
# The editor: a structure, a selection, a history
# ---------------------------------------------------------------------------------------------

_FUNCTIONS: dict[str, Callable[..., Atoms]] = {
    "move": move_atoms,
    "rotate": rotate_atoms,
    "add": add_atoms,
    "delete": delete_atoms,
    "fix": fix_atoms,
    "unfix": unfix_atoms,
}


def _literal(value: Any) -> Any:
    """``value`` as plain Python (ints, floats, strings, lists, dicts) whose repr reads back exactly."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, np.ndarray):
        return [_literal(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_literal(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _literal(v) for k, v in value.items()}
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"not a literal: {value!r}")


def _atoms_code(atoms: Atoms) -> str:
    return f"Atoms({atoms.get_chemical_symbols()!r}, positions={_literal(atoms.positions)!r})"


@dataclass(frozen=True)
class Edit:
    """One edit made by a :class:`StructureEditor`.

    Attributes
    ----------
    kind
        ``"move"``, ``"rotate"``, ``"add"``, ``"delete"``, ``"fix"`` or ``"unfix"``.
    arguments
        The keyword arguments of the edit function after ``atoms`` (plain Python values; an
        Atoms to add is kept as Atoms).
    n_atoms
        Number of atoms after the edit.
    message
        A warning about the result (atoms too close), or ``""``.
    """

    kind: str
    arguments: dict[str, Any] = field(default_factory=dict)
    n_atoms: int = 0
    message: str = ""

    @property
    def function(self) -> Callable[..., Atoms]:
        """The function in :mod:`nnp_lab.build.editing` that makes this edit."""
        return _FUNCTIONS[self.kind]

    def apply(self, atoms: Atoms) -> Atoms:
        """The edit applied to ``atoms`` (a new Atoms)."""
        return self.function(atoms, **self.arguments)

    def code(self, name: str = "atoms") -> str:
        """The edit as one line of Python acting on the variable ``name``."""
        parts = []
        for key, value in self.arguments.items():
            text = _atoms_code(value) if isinstance(value, Atoms) else repr(value)
            parts.append(f"{key}={text}")
        return f"{name} = editing.{self.function.__name__}({name}, {', '.join(parts)})"

    def __str__(self) -> str:
        args = ", ".join(
            f"{k}={'<Atoms ' + v.get_chemical_formula() + '>' if isinstance(v, Atoms) else v!r}"
            for k, v in self.arguments.items()
        )
        return f"{self.kind}({args})" + (f"  # {self.message}" if self.message else "")


class StructureEditor:
    """A structure being edited: its atoms, a selection, and undo/redo over every edit.

    Every edit method applies the matching function of this module to the current atoms,
    records an :class:`Edit` in :attr:`history` and returns it; an edit whose result puts two
    atoms unphysically close (below :data:`OVERLAP_FRACTION` of their covalent-radius sum)
    still happens, and says so in ``Edit.message`` (``StructureEditor.last_message`` too).
    Methods that take ``indices`` use the current :attr:`selection` when it is None.

    Parameters
    ----------
    atoms
        The starting structure (copied; kept as :attr:`start`).
    """

    def __init__(self, atoms: Atoms) -> None:
        atoms = require_atoms(atoms, "atoms", allow_empty=True)
        self._start = atoms.copy()
        self._atoms = atoms.copy()
        self._done: list[
            tuple[Edit, Atoms, list[int]]
        ] = []  # (edit, atoms before, selection before)
        self._undone: list[tuple[Edit, Atoms, list[int]]] = []
        self._selection: list[int] = []
        self.last_message = ""

    # ------------------------------------------------------------------ state
    @property
    def atoms(self) -> Atoms:
        """The edited structure (a copy)."""
        return self._atoms.copy()

    @property
    def start(self) -> Atoms:
        """The structure the edits began from (a copy)."""
        return self._start.copy()

    @property
    def n_atoms(self) -> int:
        return len(self._atoms)

    @property
    def selection(self) -> list[int]:
        """Selected atom indices (sorted); settable."""
        return list(self._selection)

    @selection.setter
    def selection(self, indices: Sequence[int]) -> None:
        self._selection = _indices(self._atoms, indices, "selection", allow_empty=True)

    @property
    def history(self) -> list[Edit]:
        """The edits applied so far, oldest first (undone edits are not in it)."""
        return [e for e, _, _ in self._done]

    @property
    def can_undo(self) -> bool:
        return bool(self._done)

    @property
    def can_redo(self) -> bool:
        return bool(self._undone)

    @property
    def fixed(self) -> list[int]:
        """Indices held by FixAtoms."""
        return fixed_atoms(self._atoms)

    # ------------------------------------------------------------------ selection
    def select(
        self,
        indices: Sequence[int] | int | None = None,
        *,
        element: str | None = None,
        layer: int | None = None,
        everything: bool = False,
        invert: bool = False,
        add: bool = False,
    ) -> list[int]:
        """Set the selection and return it.

        Parameters
        ----------
        indices
            Atom indices.
        element
            Every atom of this element.
        layer
            Every atom of the ``layer``-th layer counted from the bottom (0) along z
            (negative counts from the top: -1 is the top layer); layers are atoms within
            0.3 Å in z.
        everything
            Every atom.
        invert
            Select the atoms *not* chosen by the other arguments (alone: invert the current
            selection).
        add
            Add to the current selection instead of replacing it.
        """
        n = len(self._atoms)
        chosen: set[int] = set()
        given = False
        if indices is not None:
            chosen |= set(_indices(self._atoms, indices, allow_empty=True))
            given = True
        if element is not None:
            symbol = check_element(element)
            chosen |= {i for i, s in enumerate(self._atoms.get_chemical_symbols()) if s == symbol}
            given = True
        if layer is not None:
            labels = group_layers(self._atoms.positions[:, 2])
            n_layers = int(labels.max()) + 1 if n else 0
            k = int(layer)
            if not -n_layers <= k < n_layers:
                raise InputError(
                    f"layer {layer} does not exist: this structure has {n_layers} layers along z"
                )
            chosen |= set(np.flatnonzero(labels == (k % n_layers)).tolist())
            given = True
        if everything:
            chosen = set(range(n))
            given = True
        if not given:
            chosen = set(self._selection) if invert else set()
        if invert:
            chosen = set(range(n)) - chosen
        if add:
            chosen |= set(self._selection)
        self._selection = sorted(chosen)
        return self.selection

    def _targets(self, indices: Sequence[int] | int | None) -> list[int]:
        return _indices(self._atoms, self._selection if indices is None else indices)

    # ------------------------------------------------------------------ edits
    def _apply(
        self,
        kind: str,
        arguments: dict[str, Any],
        *,
        check: Sequence[int] | None = None,
        select: Callable[[Atoms, Atoms], list[int]] | None = None,
    ) -> Edit:
        before, selection_before = self._atoms, list(self._selection)
        after = _FUNCTIONS[kind](before, **arguments)
        if select is not None:
            self._selection = select(before, after)
        elif len(after) != len(before):
            self._selection = []
        message = ""
        targets = check if check is not None else (self._selection if select is not None else [])
        contacts = close_contacts(after, targets) if targets else []
        if contacts:
            i, j, d, r = contacts[0]
            message = (
                f"atom {i} ({after[i].symbol}) is {d:.2f} Å from atom {j} ({after[j].symbol}); "
                f"their covalent radii add up to {r:.2f} Å"
            )
        edit = Edit(kind, arguments, len(after), message)
        self._done.append((edit, before, selection_before))
        self._undone.clear()
        self._atoms = after
        self.last_message = message
        return edit

    def move(
        self,
        indices: Sequence[int] | int | None = None,
        displacement: Sequence[float] = (0.0, 0.0, 0.0),
    ) -> Edit:
        """Move atoms (default: the selection) by ``displacement`` (Å)."""
        idx = self._targets(indices)
        d = _literal(_vector(displacement, "displacement"))
        return self._apply("move", {"indices": idx, "displacement": d}, check=idx)

    def rotate(
        self,
        indices: Sequence[int] | int | None = None,
        angle: float = 0.0,
        axis: str | Sequence[float] = "z",
        center: Sequence[float] | None = None,
    ) -> Edit:
        """Rotate atoms (default: the selection) rigidly by ``angle`` degrees about ``axis``
        through ``center`` (default the group's centre); see :func:`rotate_atoms`."""
        idx = self._targets(indices)
        args: dict[str, Any] = {
            "indices": idx,
            "angle": float(angle),
            "axis": axis if isinstance(axis, str) else _literal(_vector(axis, "axis")),
        }
        if center is not None:
            args["center"] = _literal(_vector(center, "center"))
        return self._apply("rotate", args, check=idx)

    def add(
        self,
        species: str | Atoms,
        *,
        position: Sequence[float] | None = None,
        site: Any = None,
        on_atom: int | None = None,
        height: float = 2.0,
    ) -> Edit:
        """Add an atom or molecule (see :func:`add_atoms`); the new atoms become the selection.

        A :class:`~nnp_lab.build.Site` or site kind/label is recorded as its x, y coordinates,
        so the recorded edit (and :meth:`edits_as_code`) does not depend on the site search.
        """
        from nnp_lab.build.adsorption import site_xy

        args: dict[str, Any] = {
            "species": species.copy() if isinstance(species, Atoms) else species
        }
        if site is not None:
            args["site"] = _literal(site_xy(self._atoms, site))
        if position is not None:
            args["position"] = _literal(_vector(position, "position"))
        if on_atom is not None:
            args["on_atom"] = int(on_atom)
        args["height"] = float(height)
        return self._apply(
            "add", args, select=lambda before, after: list(range(len(before), len(after)))
        )

    def delete(self, indices: Sequence[int] | int | None = None) -> Edit:
        """Delete atoms (default: the selection); the selection is cleared."""
        return self._apply("delete", {"indices": self._targets(indices)})

    def fix(self, indices: Sequence[int] | int | None = None) -> Edit:
        """Hold atoms (default: the selection) with FixAtoms."""
        return self._apply("fix", {"indices": self._targets(indices)})

    def unfix(self, indices: Sequence[int] | int | None = None) -> Edit:
        """Release atoms (default: the selection) from FixAtoms."""
        return self._apply("unfix", {"indices": self._targets(indices)})

    def set_atoms(self, atoms: Atoms) -> None:
        """Start over from ``atoms``: it becomes :attr:`start`; history, undo, redo and the
        selection are cleared."""
        atoms = require_atoms(atoms, "atoms", allow_empty=True)
        self._start, self._atoms = atoms.copy(), atoms.copy()
        self._done, self._undone, self._selection = [], [], []
        self.last_message = ""

    # ------------------------------------------------------------------ undo / redo
    def undo(self) -> Edit | None:
        """Undo the last edit (returns it), or do nothing and return None."""
        if not self._done:
            return None
        edit, before, selection = self._done.pop()
        self._undone.append((edit, self._atoms, list(self._selection)))
        self._atoms, self._selection = before, selection
        self.last_message = ""
        return edit

    def redo(self) -> Edit | None:
        """Redo the last undone edit (returns it), or do nothing and return None."""
        if not self._undone:
            return None
        edit, after, selection = self._undone.pop()
        self._done.append((edit, self._atoms, list(self._selection)))
        self._atoms, self._selection = after, selection
        self.last_message = edit.message
        return edit

    # ------------------------------------------------------------------ output
    def measure(self, indices: Sequence[int] | None = None) -> dict[str, Any]:
        """:func:`measure` of ``indices`` (default: the selection, in index order)."""
        return measure(self._atoms, self._selection if indices is None else indices)

    def edits_as_code(self, name: str = "atoms", start: str = "start") -> str:
        """Python that repeats the edits: it copies the variable ``start`` (the starting
        structure, :attr:`start`) into ``name`` and applies each edit of :attr:`history`.

        Running it reproduces :attr:`atoms` exactly (same positions, numbers, cell and
        constraints): each line calls the same function with the same values.
        """
        lines = [
            "from ase import Atoms",
            "from nnp_lab.build import editing",
            "",
            f"{name} = {start}.copy()",
        ]
        lines += [e.code(name) for e in self.history]
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        return (
            f"StructureEditor({self._atoms.get_chemical_formula()}, {len(self._atoms)} atoms, "
            f"{len(self._done)} edits, {len(self._selection)} selected)"
        )
