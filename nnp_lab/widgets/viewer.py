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

import logging
import math
import os
import threading
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import traitlets as t
from ase import Atoms
from ase.cell import Cell

from nnp_lab.errors import InputError
from nnp_lab.widgets._throttle import FrameThrottle

__all__ = ["Viewer", "TrajectoryPlayer"]

logger = logging.getLogger(__name__)

STYLES = ("ball-and-stick", "spacefill")
#: Largest trajectory buffer (n_frames x n_atoms x 3 float32) sent to the browser at once.
MAX_TRAJECTORY_BYTES = 256 * 1024**2

# Elements drawn with van der Waals radii in "spacefill"; every other element (the metals, whose
# covalent radius is about half the nearest-neighbour distance) is drawn with its covalent radius.
_VDW_ELEMENTS = frozenset("H He B C N O F Ne Si P S Cl Ar Ge As Se Br Kr Sb Te I Xe".split())


# ---------------------------------------------------------------------------------------------
# Front-end files
# ---------------------------------------------------------------------------------------------

_FALLBACK_ESM = """
export default {
  render({ el }) {
    el.textContent = "nnp_lab viewer: the front-end file viewer.js is missing from this " +
      "installation; reinstall nnp_lab (pip install --force-reinstall nnp_lab).";
  },
};
"""


def _frontend_file(name: str) -> Path | None:
    """Locate a front-end file: inside the installed package, else in the source tree."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "static" / name, here.parent.parent / "widgets" / name):
        if candidate.is_file():
            return candidate
    return None


def _esm_source() -> Path | str:
    path = _frontend_file("viewer.js")
    if path is None:
        logger.warning("nnp_lab viewer front end (viewer.js) not found; the viewer will not draw")
        return _FALLBACK_ESM
    return path


def _css_source() -> Path | str:
    path = _frontend_file("viewer.css")
    return path if path is not None else ""


# ---------------------------------------------------------------------------------------------
# Conversions and validation
# ---------------------------------------------------------------------------------------------


@dataclass
class _Frame:
    """One throttled live frame; ``None`` fields leave the shown value unchanged."""

    positions: bytes
    cell: list[float] | None = None
    forces: bytes | None = None
    label: str | None = None


def _merge_frames(older: _Frame, newer: _Frame) -> _Frame:
    return _Frame(
        positions=newer.positions,
        cell=newer.cell if newer.cell is not None else older.cell,
        forces=newer.forces if newer.forces is not None else older.forces,
        label=newer.label if newer.label is not None else older.label,
    )


def _vectors(value: Any, n: int, name: str) -> np.ndarray:
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


def _cell9(cell: Any) -> list[float]:
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


def _element_table(numbers: np.ndarray) -> dict[str, list[Any]]:
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


def _stored_forces(atoms: Atoms) -> np.ndarray | None:
    calc = atoms.calc
    results = getattr(calc, "results", None) if calc is not None else None
    forces = results.get("forces") if isinstance(results, dict) else None
    if forces is None:
        return None
    forces = np.asarray(forces)
    return forces if forces.shape == (len(atoms), 3) else None


def _frames_from(frames: Any, what: str) -> list[Atoms]:
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


# ---------------------------------------------------------------------------------------------
# The widget
# ---------------------------------------------------------------------------------------------


class Viewer(anywidget.AnyWidget):
    """Interactive 3D view of an :class:`ase.Atoms`, updated live while a cell runs.

    Mouse: left-drag orbits, wheel zooms, right-drag (or shift-drag) pans, click picks an atom
    (its index and element appear in the view and in :attr:`selected`), shift-click adds to or
    removes from the selection. Buttons reset the view and download a PNG.

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

    _esm = _esm_source()
    _css = _css_source()

    # Structure (Python -> browser). Binary traits travel as comm buffers, not JSON.
    _numbers = t.Bytes(b"", help="atomic numbers, uint8").tag(sync=True)
    _positions = t.Bytes(b"", help="positions in Å, little-endian float32, (n, 3)").tag(sync=True)
    _cell = t.List(t.Float(), default_value=[0.0] * 9, help="row-vector cell, 9 floats").tag(
        sync=True
    )
    _pbc = t.List(t.Bool(), default_value=[False] * 3).tag(sync=True)
    _forces = t.Bytes(b"", help="forces in eV/Å, float32 (n, 3), or empty").tag(sync=True)
    _elements = t.Dict(help="str(Z) -> [r, g, b, r_cov, r_spacefill, symbol]").tag(sync=True)
    _structure_id = t.Int(0, help="incremented on every full structure change").tag(sync=True)

    #: Number of live frames sent so far (incremented once per delivered :meth:`update`).
    frame_seq = t.Int(0, read_only=True).tag(sync=True)
    #: Text drawn in the top-left corner of the view (e.g. "step 12  E = -123.456 eV").
    label = t.Unicode("").tag(sync=True)
    # Synced as `_style`: the front end's DOMWidgetView treats a `style` attribute as an
    # ipywidgets Style model. The public spelling is the `style` property below.
    _style = t.Enum(STYLES, default_value="ball-and-stick").tag(sync=True)
    show_cell = t.Bool(True).tag(sync=True)
    show_bonds = t.Bool(True).tag(sync=True)
    show_forces = t.Bool(False).tag(sync=True)
    #: Length of a force arrow in Å per eV/Å.
    force_scale = t.Float(1.0).tag(sync=True)
    #: Atoms i, j are bonded when closer than r_cov_i + r_cov_j + bond_tolerance (Å).
    bond_tolerance = t.Float(0.4).tag(sync=True)
    height = t.Int(480).tag(sync=True)
    #: Background colour as "#rrggbb".
    background = t.Unicode("#ffffff").tag(sync=True)
    #: Rotate the view continuously (also used to measure pure rendering speed).
    spin = t.Bool(False).tag(sync=True)

    # Browser -> Python.
    #: Indices of the atoms selected in the browser (click; shift-click adds/removes).
    selected = t.List(t.Int()).tag(sync=True)
    #: Frames the browser has drawn (reported back a few times per second).
    frames_drawn = t.Int(0).tag(sync=True)

    # Trajectory / NEB band playback (all frames sent once, played in the browser).
    _mode = t.Enum(("live", "trajectory", "band"), default_value="live").tag(sync=True)
    _traj_positions = t.Bytes(b"", help="float32 (n_frames, n, 3)").tag(sync=True)
    _traj_cells = t.Bytes(b"", help="float32 (n_frames, 3, 3)").tag(sync=True)
    _traj_n_frames = t.Int(0).tag(sync=True)
    _traj_labels = t.List(t.Unicode()).tag(sync=True)
    #: Frame (image) shown by the trajectory player / band view; synced both ways.
    frame_index = t.Int(0).tag(sync=True)
    #: Whether the trajectory player is playing.
    playing = t.Bool(False).tag(sync=True)
    #: Playback speed in frames per second.
    play_fps = t.Float(10.0).tag(sync=True)
    #: Band view: draw all images at once, semi-transparent, around the current one.
    overlay = t.Bool(False).tag(sync=True)

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
        self._throttle: FrameThrottle[_Frame] = FrameThrottle(
            self._deliver, max_rate_hz, merge=_merge_frames, lock=self._sync_lock
        )
        self._source: Atoms | None = None
        self._traj_array: np.ndarray | None = None
        self._traj_cell_array: np.ndarray | None = None
        self._png_requests: dict[str, tuple[Future[bytes], Path | None]] = {}
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
        if atoms is not None:
            self.atoms = atoms

    # ------------------------------------------------------------------ thread-safe syncing
    def notify_change(self, change: Any) -> None:  # noqa: D102 - traitlets hook
        lock = getattr(self, "_sync_lock", None)
        if lock is None:  # during HasTraits construction
            super().notify_change(change)
            return
        with lock:
            super().notify_change(change)

    def send_state(self, key: Any = None) -> None:  # noqa: D102 - ipywidgets hook
        lock = getattr(self, "_sync_lock", None)
        if lock is None:
            super().send_state(key)
            return
        with lock:
            super().send_state(key)

    @contextmanager
    def _locked_sync(self) -> Iterator[None]:
        """Hold the sync lock and batch all trait changes into one comm message."""
        with self._sync_lock, self.hold_sync():
            yield

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
        return None if self._source is None else self.to_atoms()

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
        if atoms is None:
            self._source = None
            self._numbers = b""
            self._positions = b""
            self._cell = [0.0] * 9
            self._pbc = [False] * 3
            self._forces = b""
            self._elements = {}
            self.selected = []
            return
        numbers = np.asarray(atoms.numbers)
        if numbers.size and (numbers.min() < 0 or numbers.max() > 255):
            raise InputError(
                f"atomic numbers must be in 0..255, got {numbers.min()}..{numbers.max()}"
            )
        n = len(atoms)
        positions = _vectors(atoms.positions, n, "atoms.positions")
        source = atoms.copy()  # drops the calculator; keeps tags, constraints, info
        self._source = source
        self._numbers = numbers.astype(np.uint8).tobytes()
        self._positions = positions.tobytes()
        self._cell = _cell9(atoms.cell)
        self._pbc = [bool(p) for p in atoms.pbc]
        forces = _stored_forces(atoms)
        self._forces = b"" if forces is None else _vectors(forces, n, "forces").tobytes()
        self._elements = _element_table(numbers)
        self.selected = []

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
        n = self.n_atoms
        if isinstance(positions, Atoms):
            if cell is None:
                cell = positions.cell
            positions = positions.positions
        frame = _Frame(positions=_vectors(positions, n, "positions").tobytes())
        if cell is not None:
            frame.cell = _cell9(cell)
        if forces is not None:
            frame.forces = _vectors(forces, n, "forces").tobytes()
        if label is not None:
            frame.label = str(label)
        if final:
            with self._sync_lock:
                self._throttle.cancel()
                self._deliver(frame)
            return True
        return self._throttle.submit(frame)

    def flush(self) -> bool:
        """Send the pending (throttled) frame now. Returns whether there was one."""
        return self._throttle.flush()

    def _deliver(self, frame: _Frame) -> None:
        with self._locked_sync():
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
        atoms_list = _frames_from(frames, "frames")
        if labels is None:
            labels = _default_labels(atoms_list, "frame", relative=False)
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
        atoms_list = _frames_from(images, "images")
        if labels is None:
            labels = _default_labels(atoms_list, "image", relative=True)
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
        shape = self._traj_array.shape
        arr = np.asarray(positions)
        if arr.shape != shape:
            raise InputError(
                f"positions must have shape {shape} (n_frames, n_atoms, 3) like the loaded frames, "
                f"got {arr.shape}; load a different band with show_band()"
            )
        new = _vectors(arr.reshape(-1, 3), shape[0] * shape[1], "positions").reshape(shape)
        new_cells = None
        if cells is not None:
            c = np.asarray(cells, dtype=float)
            if c.shape != (shape[0], 3, 3):
                raise InputError(f"cells must have shape ({shape[0]}, 3, 3), got {c.shape}")
            new_cells = c.astype("<f4")
        if labels is not None:
            labels = [str(x) for x in labels]
            if len(labels) != shape[0]:
                raise InputError(
                    f"got {len(labels)} labels for {shape[0]} frames; give one per frame"
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
        labels = [str(x) for x in labels]
        if len(labels) != len(frames):
            raise InputError(
                f"got {len(labels)} labels for {len(frames)} frames; give one per frame"
            )
        n = len(frames[0])
        nbytes = len(frames) * n * 12
        if nbytes > MAX_TRAJECTORY_BYTES:
            raise InputError(
                f"{len(frames)} frames x {n} atoms is {nbytes / 1024**2:.0f} MB of coordinates, more "
                f"than the {MAX_TRAJECTORY_BYTES // 1024**2} MB the viewer sends to the browser; "
                f"pass every k-th frame, e.g. frames[::{math.ceil(nbytes / MAX_TRAJECTORY_BYTES)}]"
            )
        positions = np.empty((len(frames), n, 3), dtype="<f4")
        cells = np.empty((len(frames), 3, 3), dtype="<f4")
        for i, a in enumerate(frames):
            positions[i] = _vectors(a.positions, n, f"frame {i} positions")
            cells[i] = np.asarray(_cell9(a.cell)).reshape(3, 3)
        start = int(start)
        if not 0 <= start < len(frames):
            raise InputError(f"start must be in 0..{len(frames) - 1}, got {start}")
        self._throttle.cancel()
        with self._locked_sync():
            self._set_structure(frames[start])
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
        request_id = uuid.uuid4().hex
        future: Future[bytes] = Future()
        target = None if path is None else Path(path)
        self._png_requests[request_id] = (future, target)
        self.send({"type": "png_request", "id": request_id})
        return future

    def _on_custom_msg(self, _widget: Any, content: Any, buffers: Sequence[Any]) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind not in ("png", "png_error"):
            return
        entry = self._png_requests.pop(str(content.get("id")), None)
        if entry is None:  # answered already (several views of one widget) or unknown
            return
        future, target = entry
        if kind == "png_error":
            future.set_exception(
                RuntimeError(f"the browser could not export a PNG: {content.get('error')}")
            )
            return
        if not buffers:
            future.set_exception(RuntimeError("the browser replied without PNG data"))
            return
        data = bytes(buffers[0])
        if not data.startswith(b"\x89PNG\r\n\x1a\n"):
            future.set_exception(RuntimeError("the browser's reply is not a PNG image"))
            return
        self.last_png = data
        try:
            if target is not None:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        except OSError as exc:
            future.set_exception(exc)
            return
        future.set_result(data)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Close the widget (removes it from the page) and stop its frame throttle."""
        throttle = getattr(self, "_throttle", None)
        if throttle is not None:
            throttle.close()
        super().close()


def _default_labels(frames: list[Atoms], word: str, *, relative: bool) -> list[str]:
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
