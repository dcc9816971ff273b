"""The 3D structure viewer: an anywidget with a dependency-free WebGL2 front end.

The front end (``widgets/viewer.js`` in the source tree, ``nnp_lab/widgets/static/viewer.js``
in a wheel) draws atoms as ray-cast impostor spheres, bonds as ray-cast cylinders recomputed
from the current positions on every frame, the unit cell, optional force arrows and a text
label. Python sends coordinates as binary float32 bytes; the browser redraws at most once per
animation frame.

Live updates (:meth:`Viewer.update`) are throttled to ``max_rate_hz`` frames per second
(default 10): intermediate frames are dropped, and the newest frame is always delivered — at
once if the rate allows, otherwise as soon as the interval has elapsed (from a small background
thread, which works while the cell that produces the frames is still running), or immediately
with ``update(..., final=True)`` / :meth:`Viewer.flush`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np
import traitlets as t
from ase import Atoms
from ase.data import chemical_symbols

from nnp_lab.build.editing import Edit, StructureEditor, fixed_atoms
from nnp_lab.build.editing import fix_atoms as fix_atoms_function
from nnp_lab.errors import InputError
from nnp_lab.widgets._frontend import PngRequests
from nnp_lab.widgets._throttle import FrameThrottle
from nnp_lab.widgets._viewer_state import STYLES, ViewerState
from nnp_lab.widgets._viewer_data import (
    Frame,
    without_markers,
    StructureData,
    default_labels,
    element_table,
    frames_from,
    live_frame,
    merge_frames,
    replacement_arrays,
    structure_data,
    trajectory_arrays,
)

__all__ = ["Viewer", "TrajectoryPlayer"]

#: Largest trajectory buffer (n_frames x n_atoms x 3 float32) sent to the browser at once.
MAX_TRAJECTORY_BYTES = 256 * 1024**2


# ---------------------------------------------------------------------------------------------
# The widget
# ---------------------------------------------------------------------------------------------


class Viewer(ViewerState):
    """Interactive 3D view of an :class:`ase.Atoms`, updated live while a cell runs.

    Mouse: left-drag orbits, wheel zooms, right-drag (or shift-drag) pans, click picks an atom
    (its index and element appear in the view and in :attr:`selected`), shift-click adds to or
    removes from the selection. Buttons reset the view and download a PNG.

    Editing: :meth:`select`, :meth:`move`, :meth:`rotate`, :meth:`add`, :meth:`delete`,
    :meth:`fix`, :meth:`unfix`, :meth:`undo`, :meth:`redo` and :meth:`measure` change or
    measure the structure shown (camera kept; fixed atoms drawn distinctly); :attr:`history`
    lists the edits and :meth:`edits_as_code` returns the Python that repeats them. They go
    through one :class:`~nnp_lab.build.editing.StructureEditor` (:attr:`editor`); the
    browser's edit requests call the same methods (:meth:`apply_request`). After a run moved
    the atoms (:meth:`update`), the next edit starts a new history from what is shown.

    Parameters
    ----------
    atoms
        Structure to show (copied; never modified). ``None`` shows an empty view.
    style
        ``"ball-and-stick"`` (spheres of 0.42 x covalent radius + 0.1 Å, bonds) or
        ``"spacefill"`` (van der Waals radii for non-metals, covalent radii for metals; no bonds).
    show_cell
        Draw the unit cell (follows cell changes, e.g. NPT MD or cell relaxation).
    show_bonds
        Draw bonds between atoms closer than the sum of their covalent radii plus
        ``bond_tolerance`` (default 0.4 Å, as Jmol), recomputed in the browser from the current positions on every frame (so bonds form
        and break during a run). Bonds across periodic boundaries are not drawn.
    show_forces
        Draw force arrows (``force_scale`` Å per eV/Å) for forces passed to :meth:`update` or
        stored in the Atoms' calculator results.
    max_rate_hz
        Maximum rate (frames per second) at which :meth:`update` sends frames to the browser;
        ``math.inf`` sends every frame. Default 10.
    height
        Height of the view in CSS pixels (the width follows the notebook).
    **kwargs
        Initial values of other traits (``label``, ``force_scale``, ``bond_tolerance``,
        ``background``, ``spin``).

    Examples
    --------
    >>> from ase.build import molecule
    >>> v = Viewer(molecule("CH3CH2OH"))
    >>> v                                             # doctest: +SKIP
    >>> for step, atoms in enumerate(run):            # doctest: +SKIP
    ...     v.update(atoms.positions, label=f"step {step}")
    >>> v.flush()                                     # doctest: +SKIP
    """

    def __init__(
        self,
        atoms: Atoms | None = None,
        *,
        style: str = "ball-and-stick",
        show_cell: bool = True,
        show_bonds: bool = True,
        show_forces: bool = False,
        max_rate_hz: float = 10.0,
        height: int = 480,
        **kwargs: Any,
    ) -> None:
        if style not in STYLES:
            raise InputError(f"style must be one of {STYLES}, got {style!r}")
        # Serialises every state sync: user trait changes (main thread) and throttled frames
        # (possibly delivered from the throttle's worker thread).
        self._sync_lock = threading.RLock()
        self._throttle: FrameThrottle[Frame] = FrameThrottle(
            self._deliver, max_rate_hz, merge=merge_frames, lock=self._sync_lock
        )
        self._source: Atoms | None = None
        self._editor: StructureEditor | None = None
        # True once update() moved the atoms after the last edit: the next edit starts a new
        # edit history from what is shown (a run's result cannot be repeated as an edit).
        self._moved_by_run = False
        #: Potential used by :meth:`relax` and :meth:`neb` (and the view's buttons): a
        #: Potential, a registered name, None (the default universal model) or a callable
        #: returning one of these, called when a run starts.
        self.potential: Any = None
        #: End states collected for :meth:`neb` (``set_neb_start`` / ``set_neb_end``).
        self.neb_start: Atoms | None = None
        self.neb_end: Atoms | None = None
        #: The :class:`~nnp_lab.widgets.LiveRun` of the last run started from this view.
        self.live_run: Any = None
        self._run_base: Atoms | None = None
        # the last update()'s coordinates and cell in float64 (the browser gets float32)
        self._run_state: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
        self._run_selection: list[int] | None = None
        self._traj_array: np.ndarray | None = None
        self._traj_cell_array: np.ndarray | None = None
        self._png = PngRequests(self._keep_png)
        #: PNG bytes of the last image received from :meth:`save_png`.
        self.last_png: bytes | None = None
        super().__init__(
            _style=style,
            show_cell=show_cell,
            show_bonds=show_bonds,
            show_forces=show_forces,
            height=height,
            **kwargs,
        )
        self.on_msg(self._on_custom_msg)
        self.observe(self._selection_from_browser, names="selected")
        if atoms is not None:
            self.atoms = atoms

    @property
    def style(self) -> str:
        """Drawing style: ``"ball-and-stick"`` or ``"spacefill"``."""
        return self._style

    @style.setter
    def style(self, value: str) -> None:
        if value not in STYLES:
            raise InputError(f"style must be one of {STYLES}, got {value!r}")
        self._style = value

    # ------------------------------------------------------------------ structure
    @property
    def n_atoms(self) -> int:
        """Number of atoms shown."""
        return len(self._numbers)

    @property
    def numbers(self) -> np.ndarray:
        """Atomic numbers shown (uint8, read-only view)."""
        return np.frombuffer(self._numbers, dtype=np.uint8)

    @property
    def positions(self) -> np.ndarray:
        """Live positions last sent to the browser, float32 (n, 3), read-only."""
        return np.frombuffer(self._positions, dtype="<f4").reshape(-1, 3)

    @property
    def cell(self) -> np.ndarray:
        """Live cell last sent to the browser (3x3 row vectors)."""
        return np.array(self._cell, dtype=float).reshape(3, 3)

    @property
    def forces(self) -> np.ndarray | None:
        """Forces last sent to the browser, float32 (n, 3), or ``None``."""
        if not self._forces:
            return None
        return np.frombuffer(self._forces, dtype="<f4").reshape(-1, 3)

    @property
    def atoms(self) -> Atoms | None:
        """The structure shown, as new Atoms (same as :meth:`to_atoms`); set it to show another.

        Setting replaces everything (atoms, positions, cell, forces, any trajectory) and resets
        the camera. Use :meth:`update` to move the same atoms.
        """
        if self._source is None:
            return None
        if self._mode == "live" and self._editor is not None:
            # exact (the browser's copy is float32)
            return self._shown_exactly() if self._moved_by_run else self._editor.atoms
        return self.to_atoms()

    @atoms.setter
    def atoms(self, atoms: Atoms | None) -> None:
        if atoms is not None and not isinstance(atoms, Atoms):
            raise TypeError(
                f"viewer.atoms must be an ase.Atoms or None, got {type(atoms).__name__}"
            )
        self._throttle.cancel()
        with self._locked_sync():
            self._set_structure(atoms)
            self._clear_trajectory()
            self._structure_id += 1

    def _set_structure(self, atoms: Atoms | None) -> None:
        """Set numbers, positions, cell, pbc, forces and element table (call under _locked_sync)."""
        self._show(atoms)
        self._editor = None if atoms is None else StructureEditor(atoms)
        self._moved_by_run = False
        self.selected = []
        self._edit_state()

    def _show(self, atoms: Atoms | None) -> None:
        """Send ``atoms`` (numbers, positions, cell, pbc, forces, elements, fixed atoms)
        without touching the camera (call under _locked_sync)."""
        data = StructureData() if atoms is None else structure_data(atoms)
        # A copy drops the calculator and keeps tags, constraints and info.
        self._source = None if atoms is None else atoms.copy()
        self._numbers = data.numbers
        self._positions = data.positions
        self._cell = data.cell
        self._pbc = data.pbc
        self._forces = data.forces
        self._elements = data.elements
        fixed = np.zeros(0 if atoms is None else len(atoms), dtype=np.uint8)
        if atoms is not None:
            fixed[fixed_atoms(atoms)] = 1
        self._fixed = fixed.tobytes()

    def set_numbers(self, numbers: Any) -> None:
        """Change the elements of the atoms shown, keeping positions, camera and mode.

        What the live view of a swap Monte Carlo run calls when two atoms exchange elements
        (setting :attr:`atoms` would reset the camera).

        Parameters
        ----------
        numbers
            Atomic numbers, one per atom shown.

        Raises
        ------
        InputError
            No structure shown, or a count that differs from the atoms shown.
        """
        if self._source is None:
            raise InputError("the viewer shows no structure yet; set viewer.atoms = atoms first")
        z = np.asarray(numbers, dtype=int).reshape(-1)
        if len(z) != self.n_atoms:
            raise InputError(f"got {len(z)} atomic numbers for {self.n_atoms} atoms shown")
        if z.size and (z.min() < 0 or z.max() > 255):
            raise InputError(f"atomic numbers must be in 0..255, got {z.min()}..{z.max()}")
        with self._locked_sync():
            self._moved_by_run = True  # like update(): the next edit starts from what is shown
            self._source.numbers = z
            self._numbers = z.astype(np.uint8).tobytes()
            self._elements = element_table(z)

    # ------------------------------------------------------------------ live updates
    @property
    def max_rate_hz(self) -> float:
        """Maximum frames per second sent by :meth:`update` (``math.inf``: no limit)."""
        return self._throttle.max_rate_hz

    @max_rate_hz.setter
    def max_rate_hz(self, value: float) -> None:
        self._throttle.max_rate_hz = value

    def update(
        self,
        positions: Any,
        cell: Any = None,
        forces: Any = None,
        label: str | None = None,
        *,
        final: bool = False,
    ) -> bool:
        """Show new coordinates of the same atoms (the fast path for live runs).

        Throttled to :attr:`max_rate_hz`: a frame is sent at once when the previous one is older
        than ``1/max_rate_hz`` seconds; otherwise it waits and is replaced by any newer frame.
        The newest frame is always delivered: after the interval by a background thread (also
        while the calling cell is still running), or at once with ``final=True`` or
        :meth:`flush`.

        Parameters
        ----------
        positions
            Cartesian positions in Å, shape ``(n_atoms, 3)``; or an :class:`ase.Atoms` with the
            same atoms (its positions, and its cell when ``cell`` is not given).
        cell
            New cell (3x3 row vectors, ASE convention), or ``None`` to keep the current one.
        forces
            Forces in eV/Å, shape ``(n_atoms, 3)``, drawn as arrows when :attr:`show_forces`;
            ``None`` keeps the previous forces.
        label
            New label text, or ``None`` to keep the current one.
        final
            Deliver this frame now regardless of the rate (use for the last frame of a run).

        Returns
        -------
        bool
            Whether this frame was sent during the call.

        Raises
        ------
        ValueError
            If the shapes do not match the atoms shown, or values are NaN/infinite.
        """
        if self._source is None:
            raise InputError(
                "the viewer shows no structure yet; set viewer.atoms = atoms before calling update()"
            )
        if self._mode != "live":
            raise InputError(
                "the viewer is showing a trajectory or band; set viewer.atoms = atoms to go back "
                "to live updates"
            )
        frame = live_frame(self.n_atoms, positions, cell, forces, label)
        # the exact (float64) coordinates, for the editor's next start (the frame is float32)
        if isinstance(positions, Atoms):
            positions, cell = positions.positions, positions.cell if cell is None else cell
        self._run_state = (
            np.array(positions, dtype=float),
            None if cell is None else np.array(cell, dtype=float).reshape(3, 3),
        )
        if final:
            with self._sync_lock:
                self._throttle.cancel()
                self._deliver(frame)
            return True
        return self._throttle.submit(frame)

    def flush(self) -> bool:
        """Send the pending (throttled) frame now. Returns whether there was one."""
        return self._throttle.flush()

    def _deliver(self, frame: Frame) -> None:
        with self._locked_sync():
            self._moved_by_run = True
            self._positions = frame.positions
            if frame.cell is not None:
                self._cell = frame.cell
            if frame.forces is not None:
                self._forces = frame.forces
            if frame.label is not None:
                self.label = frame.label
            self.set_trait("frame_seq", self.frame_seq + 1)

    # ------------------------------------------------------------------ trajectories and bands
    def show_trajectory(
        self,
        frames: Sequence[Atoms] | str | os.PathLike[str],
        *,
        fps: float = 10.0,
        labels: Sequence[str] | None = None,
        start: int = 0,
    ) -> Viewer:
        """Load a finished trajectory and play it in the browser (slider, play/pause, speed).

        All frames are sent once, as one float32 buffer of shape ``(n_frames, n_atoms, 3)``
        (plus the cells); playback needs no messages to Python.

        Parameters
        ----------
        frames
            A list of Atoms with the same atoms in every frame, or a path to any trajectory
            file ASE can read (``.traj``, ``.xyz``, ...).
        fps
            Initial playback speed in frames per second.
        labels
            One label per frame; default ``"frame i/N  E = ... eV"`` when energies are stored.
        start
            Frame shown first.

        Returns
        -------
        Viewer
            ``self``, so that ``Viewer().show_trajectory(frames)`` displays in a notebook.
        """
        atoms_list = frames_from(frames, "frames")
        if labels is None:
            labels = default_labels(atoms_list, "frame", relative=False)
        self._load_frames(atoms_list, "trajectory", labels, start)
        self.play_fps = float(fps)
        return self

    def show_band(
        self,
        images: Sequence[Atoms] | str | os.PathLike[str],
        *,
        overlay: bool = False,
        labels: Sequence[str] | None = None,
    ) -> Viewer:
        """Show an NEB band: a slider over images and an "overlay all images" toggle.

        Parameters
        ----------
        images
            The band's images (same atoms in each), or a path to a file with them.
        overlay
            Start with all images drawn at once, semi-transparent, around the current one.
        labels
            One label per image; default ``"image i/N  E - E0 = ... eV"`` when energies are
            stored.

        Returns
        -------
        Viewer
            ``self``.
        """
        atoms_list = frames_from(images, "images")
        if labels is None:
            labels = default_labels(atoms_list, "image", relative=True)
        self._load_frames(atoms_list, "band", labels, 0)
        self.overlay = bool(overlay)
        return self

    def update_frames(
        self,
        positions: Any,
        *,
        cells: Any = None,
        labels: Sequence[str] | None = None,
    ) -> None:
        """Replace the coordinates of the loaded trajectory / band frames (same atoms, same count).

        The fast path for a live NEB: after each optimizer iteration, send all images again in
        one buffer; the browser keeps the image shown, the overlay and the camera. Not throttled
        (callers decide how often to send).

        Parameters
        ----------
        positions
            Array of shape ``(n_frames, n_atoms, 3)`` in Å.
        cells
            Optional array of shape ``(n_frames, 3, 3)``; default keeps the current cells.
        labels
            Optional new labels, one per frame.

        Raises
        ------
        ValueError
            If no trajectory or band is loaded, or the shapes differ from the loaded ones.
        """
        if self._mode == "live" or self._traj_array is None:
            raise InputError(
                "update_frames() needs frames loaded with show_trajectory() or show_band() first"
            )
        new, new_cells, labels = replacement_arrays(
            self._traj_array.shape, positions, cells, labels
        )
        with self._locked_sync():
            self._traj_array = new
            self._traj_positions = new.tobytes()
            if new_cells is not None:
                self._traj_cell_array = new_cells
                self._traj_cells = new_cells.tobytes()
            if labels is not None:
                self._traj_labels = labels

    def _load_frames(
        self, frames: list[Atoms], mode: str, labels: Sequence[str], start: int
    ) -> None:
        positions, cells, labels, start = trajectory_arrays(
            frames, labels, start, max_bytes=MAX_TRAJECTORY_BYTES
        )
        self._throttle.cancel()
        with self._locked_sync():
            # the editor (and its history) stays: resume_editing() goes back to it
            self._show(frames[start])
            self.selected = []
            self._forces = b""
            self._traj_array = positions
            self._traj_cell_array = cells
            self._traj_positions = positions.tobytes()
            self._traj_cells = cells.tobytes()
            self._traj_n_frames = len(frames)
            self._traj_labels = labels
            self.frame_index = start
            self.playing = False
            self.overlay = False
            self._mode = mode
            self._structure_id += 1

    def _clear_trajectory(self) -> None:
        self._traj_array = None
        self._traj_cell_array = None
        self._mode = "live"
        self._traj_positions = b""
        self._traj_cells = b""
        self._traj_n_frames = 0
        self._traj_labels = []
        self.frame_index = 0
        self.playing = False
        self.overlay = False

    @property
    def n_frames(self) -> int:
        """Number of frames (images) loaded by :meth:`show_trajectory` / :meth:`show_band`."""
        return self._traj_n_frames

    @property
    def trajectory(self) -> np.ndarray | None:
        """The loaded frames' positions, float32 ``(n_frames, n_atoms, 3)``, or ``None``."""
        return self._traj_array

    @t.validate("frame_index")
    def _valid_frame_index(self, proposal: Any) -> int:
        value = int(proposal["value"])
        if self._traj_n_frames and not 0 <= value < self._traj_n_frames:
            raise t.TraitError(f"frame_index must be in 0..{self._traj_n_frames - 1}, got {value}")
        return value

    # ------------------------------------------------------------------ editing
    @property
    def editor(self) -> StructureEditor:
        """The :class:`~nnp_lab.build.editing.StructureEditor` of the structure shown (every
        edit method below goes through it)."""
        if self._editor is None or self._source is None:
            raise InputError("the viewer shows no structure yet; set viewer.atoms = atoms first")
        if self._mode != "live":
            raise InputError(
                "the viewer is showing a trajectory or band; call viewer.resume_editing() "
                "(the Back to editing button) to edit again"
            )
        if self._moved_by_run:
            # a run moved the atoms since the last edit: edit what is shown from here on
            self._editor.set_atoms(self._shown_exactly())
            self._moved_by_run = False
        return self._editor

    def _shown_exactly(self) -> Atoms:
        """What is shown, with the last update()'s float64 coordinates where it had them."""
        atoms = self.to_atoms()
        positions, cell = self._run_state
        if positions is not None and positions.shape == atoms.positions.shape:
            shown = self.positions.astype(float)
            if np.allclose(positions, shown, atol=1e-4):  # the last frame sent is the one shown
                atoms.positions = positions
                if cell is not None:
                    atoms.cell = cell
        return atoms

    @property
    def selection(self) -> list[int]:
        """Indices of the selected atoms (sorted), as in the view; settable."""
        return sorted(self.selected)

    @selection.setter
    def selection(self, indices: Sequence[int]) -> None:
        self.editor.selection = indices
        self.selected = self.editor.selection

    def _selection_from_browser(self, change: Any) -> None:
        if self._editor is not None and self._mode == "live":
            n = self._editor.n_atoms
            self._editor.selection = [i for i in change["new"] if 0 <= i < n]

    def _edit_state(self) -> None:
        ed = self._editor
        self.can_undo = bool(ed is not None and ed.can_undo)
        self.can_redo = bool(ed is not None and ed.can_redo)
        self.edit_message = "" if ed is None else ed.last_message

    def _after_edit(self, result: Any) -> Any:
        """Show the editor's structure (camera kept) and its selection and message."""
        ed = self._editor
        assert ed is not None
        self._throttle.cancel()
        with self._locked_sync():
            self._show(ed.atoms)
            self.selected = ed.selection
            self.measurement = ""
            self._edit_state()
        return result

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
        """Select atoms (highlighted in the view) and return the selection; see
        :meth:`StructureEditor.select <nnp_lab.build.editing.StructureEditor.select>`
        (``element=``, ``layer=`` from the bottom, negative from the top, ``everything=``,
        ``invert=``, ``add=``)."""
        sel = self.editor.select(
            indices, element=element, layer=layer, everything=everything, invert=invert, add=add
        )
        self.selected = sel
        return sel

    def move(
        self, indices: Sequence[int] | int | None = None, displacement: Sequence[float] = (0, 0, 0)
    ) -> Edit:
        """Move atoms (default: the selection) by ``displacement`` (Å); returns the
        :class:`~nnp_lab.build.editing.Edit` (its ``message`` warns of atoms too close)."""
        return self._after_edit(self.editor.move(indices, displacement))

    def rotate(
        self,
        indices: Sequence[int] | int | None = None,
        angle: float = 0.0,
        axis: str | Sequence[float] = "z",
        center: Sequence[float] | None = None,
    ) -> Edit:
        """Rotate atoms (default: the selection, e.g. a molecule) rigidly by ``angle`` degrees
        about ``axis`` (``"x"``, ``"y"``, ``"z"`` or a vector) through ``center`` (default the
        group's centre)."""
        return self._after_edit(self.editor.rotate(indices, angle, axis, center))

    def add(
        self,
        species: str | Atoms,
        *,
        position: Sequence[float] | None = None,
        site: Any = None,
        on_atom: int | None = None,
        height: float = 2.0,
    ) -> Edit:
        """Add an element, a molecule (name or SMILES through :func:`nnp_lab.build.molecule`)
        or Atoms at ``position``, on an adsorption ``site`` (a :class:`~nnp_lab.build.Site`,
        kind or label) or ``height`` Å above atom ``on_atom``; the new atoms are selected.

        ``on_atom`` a site marker (an atom with atomic number 0, as the slab builder draws
        the adsorption sites) adds on that site: at its x, y, ``height`` Å above the top
        layer."""
        ed = self.editor
        if on_atom is not None and 0 <= int(on_atom) < ed.n_atoms:
            current = ed.atoms
            if current.numbers[int(on_atom)] == 0:
                site, on_atom = current.positions[int(on_atom), :2].tolist(), None
        return self._after_edit(
            ed.add(species, position=position, site=site, on_atom=on_atom, height=height)
        )

    def delete(self, indices: Sequence[int] | int | None = None) -> Edit:
        """Delete atoms (default: the selection)."""
        return self._after_edit(self.editor.delete(indices))

    def fix(self, indices: Sequence[int] | int | None = None) -> Edit:
        """Hold atoms (default: the selection) with FixAtoms; fixed atoms are drawn hatched."""
        return self._after_edit(self.editor.fix(indices))

    def unfix(self, indices: Sequence[int] | int | None = None) -> Edit:
        """Release atoms (default: the selection) from FixAtoms."""
        return self._after_edit(self.editor.unfix(indices))

    def undo(self) -> Edit | None:
        """Undo the last edit; returns it, or None when there is nothing to undo."""
        return self._after_edit(self.editor.undo())

    def redo(self) -> Edit | None:
        """Redo the last undone edit; returns it, or None."""
        return self._after_edit(self.editor.redo())

    @property
    def history(self) -> list[Edit]:
        """The edits made so far, oldest first (since the structure was set or a run last
        moved it)."""
        return [] if self._editor is None else self._editor.history

    def edits_as_code(self, name: str = "atoms", start: str = "start") -> str:
        """Python (``nnp_lab.build.editing`` calls) that repeats :attr:`history` on the
        starting structure ``start`` (``viewer.editor.start``) and reproduces
        :attr:`atoms` exactly."""
        return self.editor.edits_as_code(name, start)

    def measure(self, indices: Sequence[int] | None = None) -> dict[str, Any]:
        """Distance (2 atoms), angle (3) or dihedral (4) of ``indices`` (default: the
        selection), minimum image across periodic boundaries; the text is shown in the view.

        Returns ``{"kind", "value", "unit", "indices", "text"}``.
        """
        result = self.editor.measure(indices)
        self.measurement = result["text"]
        return result

    # ------------------------------------------------------------------ runs from the edit
    def resume_editing(self, atoms: Atoms | None = None, *, label: str | None = None) -> None:
        """Go back to editing in this view, camera kept: show ``atoms`` (default: the last
        edited structure) live; a new edit history starts from it unless it is the edited
        structure itself. What a relaxation started from the view calls when it ends, and
        the edit bar's "Back to editing" after an NEB.

        ``atoms`` keeps the edited structure's constraints when it has the same atoms (a run
        that held extra atoms fixed does not leave them fixed).
        """
        ed = self._editor
        if atoms is None:
            if ed is None:
                raise InputError("nothing to edit: set viewer.atoms = atoms first")
            atoms = ed.atoms
        else:
            atoms = atoms.copy()
            atoms.calc = None
            base = self._run_base
            if base is None and ed is not None:
                base = ed.atoms
            if base is not None and len(base) == len(atoms):
                atoms.set_constraint(base.constraints)
            self._run_base = None
        self._throttle.cancel()
        with self._locked_sync():
            self._clear_trajectory()
            self._show(atoms)
            selection, self._run_selection = self._run_selection, None
            if ed is None:
                ed = self._editor = StructureEditor(atoms)
            elif not _same_structure(ed.atoms, atoms):
                ed.set_atoms(atoms)
                if selection:  # the atoms selected before the run stay selected
                    ed.selection = [i for i in selection if i < len(atoms)]
            self._moved_by_run = False
            self.selected = ed.selection
            if label is not None:
                self.label = label
            self._edit_state()

    def relax(
        self,
        potential: Any = None,
        *,
        fmax: float = 0.05,
        steps: int = 500,
        hold_selection: bool = False,
        **options: Any,
    ) -> Any:
        """Relax the structure shown, live in this view, and go on editing the result.

        Runs :class:`~nnp_lab.simulate.Relaxation` in the background and returns at once with
        its :class:`~nnp_lab.widgets.LiveRun` (``display()`` it for the energy plot and Stop;
        ``.wait()`` blocks for the result). Fixed atoms stay fixed; with ``hold_selection``
        the selected atoms are held too, for this run only. The camera is kept; when the run
        ends the relaxed structure is shown live and a new edit history starts from it.
        Site markers (atomic number 0, a slab builder's) are left out of the run and so are
        gone afterwards.

        Parameters
        ----------
        potential
            A potential or registered name; default :attr:`potential` (None: the default
            universal model).
        fmax, steps, **options
            Passed to :class:`~nnp_lab.simulate.Relaxation`.
        """
        from nnp_lab.simulate import Relaxation
        from nnp_lab.widgets.live import LiveRun

        self._require_idle()
        base, new_index = without_markers(self.editor.atoms)
        atoms = base
        held = [new_index[i] for i in self.selection if i in new_index]
        if hold_selection and held:
            atoms = fix_atoms_function(base, held)
        # what resume_editing() restores on the result: the constraints, and the selection
        self._run_base, self._run_selection = base, held
        pot = self._resolved_potential(potential)
        run = Relaxation(atoms, pot, fmax=fmax, steps=steps, **options)
        return self._start_in_view(LiveRun(run, viewer=self, in_view=True, then_edit=True))

    def set_neb_start(self) -> None:
        """Keep the structure shown as the initial state of :meth:`neb`."""
        self.neb_start = without_markers(self.editor.atoms)[0]
        self.has_neb_start = True
        self.edit_message = f"NEB start set ({len(self.neb_start)} atoms)"

    def set_neb_end(self) -> None:
        """Keep the structure shown as the final state of :meth:`neb`."""
        self.neb_end = without_markers(self.editor.atoms)[0]
        self.has_neb_end = True
        self.edit_message = f"NEB end set ({len(self.neb_end)} atoms)"

    def neb(
        self,
        potential: Any = None,
        *,
        n_images: int = 7,
        fmax: float = 0.05,
        steps: int = 300,
        climb: bool = True,
        **options: Any,
    ) -> Any:
        """Run a (climbing-image) NEB from :attr:`neb_start` to :attr:`neb_end`, the band
        shown live in this view; returns the :class:`~nnp_lab.widgets.LiveRun` at once
        (``.wait()`` for the :class:`~nnp_lab.simulate.NEBResult`). :meth:`resume_editing`
        goes back to the edited structure afterwards.

        Raises
        ------
        InputError
            Start or end not set, or they differ in atoms (see
            :class:`~nnp_lab.simulate.NEBRun`).
        """
        from nnp_lab.simulate import NEBRun
        from nnp_lab.widgets.live import LiveRun

        self._require_idle()
        if self.neb_start is None or self.neb_end is None:
            missing = [
                n for n, a in (("start", self.neb_start), ("end", self.neb_end)) if a is None
            ]
            raise InputError(
                f"set the NEB {' and '.join(missing)} first (viewer.set_neb_start() / "
                "set_neb_end(), or the buttons)"
            )
        pot = self._resolved_potential(potential)
        run = NEBRun(
            self.neb_start,
            self.neb_end,
            pot,
            n_images=n_images,
            fmax=fmax,
            steps=steps,
            climb=climb,
            **options,
        )
        return self._start_in_view(LiveRun(run, viewer=self, in_view=True))

    def stop(self) -> None:
        """Stop the run started from this view (relaxation or NEB), after its current step."""
        if self.live_run is not None:
            self.live_run.stop()

    def _resolved_potential(self, potential: Any) -> Any:
        """``potential``, else :attr:`potential`; a provider (a callable that is not a
        potential, e.g. a builder panel's model picker) is called now."""
        pot = potential if potential is not None else self.potential
        if callable(pot) and not hasattr(pot, "evaluate"):
            pot = pot()
        return pot

    def _require_idle(self) -> None:
        if self.live_run is not None and not self.live_run.done:
            raise InputError("a run started from this view is still going; stop it first")

    def _start_in_view(self, live: Any) -> Any:
        self.live_run = live  # LiveRun(in_view=True) sets self.running while it goes

        def finished(_live: Any) -> None:
            if _live.error is not None:
                self.edit_message = f"{_live.kind} failed: {_live.error}"

        live.on_finished(finished)
        return live.start()

    def check_elements(self, potential: Any) -> str:
        """Say (in the view and as the return value) which elements shown ``potential`` does
        not cover, before any run; ``""`` when it covers them all."""
        covered = set(getattr(potential, "elements", ()) or ())
        if self._source is None or not covered:
            return ""
        missing = sorted(
            set(self._source.get_chemical_symbols()) - {chemical_symbols[z] for z in covered}
        )
        message = (
            ""
            if not missing
            else f"{getattr(potential, 'name', 'the model')} does not cover {', '.join(missing)}; "
            "a run with it will fail"
        )
        self.edit_message = message
        return message

    # ------------------------------------------------------------------ round trip
    def to_atoms(self, frame: int | None = None) -> Atoms:
        """Return new Atoms equal to what is shown (positions and cell at float32 precision).

        Parameters
        ----------
        frame
            For a trajectory or band: the frame to return; default the one currently shown
            (:attr:`frame_index`). Ignored for live views.

        Returns
        -------
        ase.Atoms
            A copy of the structure set with :attr:`atoms` (tags, constraints and info kept)
            with the shown positions and cell. An empty viewer gives ``Atoms()``.
        """
        if self._source is None:
            return Atoms()
        atoms = self._source.copy()
        if (
            self._mode != "live"
            and self._traj_array is not None
            and self._traj_cell_array is not None
        ):
            k = self.frame_index if frame is None else int(frame)
            if not 0 <= k < len(self._traj_array):
                raise InputError(f"frame must be in 0..{len(self._traj_array) - 1}, got {k}")
            atoms.positions = self._traj_array[k].astype(float)
            atoms.cell = self._traj_cell_array[k].astype(float)
        else:
            atoms.positions = self.positions.astype(float)
            atoms.cell = self.cell
        atoms.pbc = self._pbc
        return atoms

    # ------------------------------------------------------------------ browser commands
    def reset_view(self) -> None:
        """Reset the camera in every displayed view to fit the structure."""
        self.send({"type": "reset_view"})

    def save_png(self, path: str | os.PathLike[str] | None = None) -> Future[bytes]:
        """Ask the browser for a PNG of the current view; write it to ``path`` when it arrives.

        The browser renders the view and replies with the PNG. A busy kernel cannot receive that
        reply until the running cell finishes: in a notebook, the file appears (and the returned
        future completes) after the cell that called ``save_png`` has ended — do not block on the
        future in the same cell. The bytes are also kept in :attr:`last_png`.

        Parameters
        ----------
        path
            File to write, or ``None`` to only keep the bytes.

        Returns
        -------
        concurrent.futures.Future
            Resolves to the PNG bytes.
        """
        request_id, future = self._png.new(None if path is None else Path(path))
        self.send({"type": "png_request", "id": request_id})
        return future

    def _on_custom_msg(self, _widget: Any, content: Any, buffers: Sequence[Any]) -> None:
        if isinstance(content, dict) and content.get("type") == "edit":
            self.apply_request(content)
            return
        self._png.answer(content, buffers)

    #: Edit requests the front end may send, and the method each one calls.
    EDIT_REQUESTS = (
        "relax",
        "stop",
        "set_neb_start",
        "set_neb_end",
        "neb",
        "resume_editing",
        "select",
        "move",
        "rotate",
        "add",
        "delete",
        "fix",
        "unfix",
        "undo",
        "redo",
        "measure",
    )

    def apply_request(self, request: dict[str, Any]) -> Any:
        """Apply an edit request from the front end: ``{"op": name, ...keywords}``, where
        ``name`` is one of :attr:`EDIT_REQUESTS` and the keywords are those of the method of
        that name. The mouse and keyboard edits of the view arrive here, so they run through
        the same methods a script calls. A bad request is not raised (the browser cannot
        catch it): its message is shown in the view (:attr:`edit_message`) and returned.
        """
        op = request.get("op")
        kwargs = {k: v for k, v in request.items() if k not in ("type", "op")}
        if op not in self.EDIT_REQUESTS:
            self.edit_message = f"unknown edit {op!r}; known: {', '.join(self.EDIT_REQUESTS)}"
            return self.edit_message
        try:
            return getattr(self, op)(**kwargs)
        except (InputError, TypeError, ValueError) as exc:
            self.edit_message = f"{op}: {exc}"
            return self.edit_message

    def _keep_png(self, data: bytes) -> None:
        self.last_png = data

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Close the widget (removes it from the page) and stop its frame throttle."""
        throttle = getattr(self, "_throttle", None)
        if throttle is not None:
            throttle.close()
        super().close()


class TrajectoryPlayer(Viewer):
    """A :class:`Viewer` that plays a finished trajectory (slider, play/pause, speed).

    Parameters
    ----------
    frames
        List of Atoms (same atoms in every frame) or a path to a trajectory file.
    fps
        Initial playback speed in frames per second.
    labels
        One label per frame (default: frame number and stored energy).
    **kwargs
        Passed to :class:`Viewer` (``style``, ``show_cell``, ``height``, ...).
    """

    def __init__(
        self,
        frames: Sequence[Atoms] | str | os.PathLike[str],
        *,
        fps: float = 10.0,
        labels: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.show_trajectory(frames, fps=fps, labels=labels)


def _same_structure(a: Atoms, b: Atoms) -> bool:
    return (
        len(a) == len(b)
        and np.array_equal(a.numbers, b.numbers)
        and np.array_equal(a.positions, b.positions)
        and np.array_equal(a.cell[:], b.cell[:])
    )
