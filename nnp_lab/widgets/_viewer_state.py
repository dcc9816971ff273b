"""The viewer's state synced with its front end, and the lock that keeps syncs in order.

:class:`ViewerState` declares every trait the browser side (``widgets/src/``) reads or writes:
this is the protocol between Python and the front end. Binary traits travel as comm buffers,
not JSON. :class:`~nnp_lab.widgets.Viewer` adds the Python API on top.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anywidget
import traitlets as t

from nnp_lab.widgets._frontend import css_source, esm_source

__all__ = ["STYLES", "ViewerState"]

#: Drawing styles of the viewer.
STYLES = ("ball-and-stick", "spacefill")


class ViewerState(anywidget.AnyWidget):
    """The synced traits of the viewer, with state syncs serialised by one lock.

    A subclass sets ``_sync_lock`` (an :class:`threading.RLock`) before calling
    ``__init__``; it serialises every state sync: user trait changes (main thread) and frames
    delivered from other threads (e.g. a frame throttle's worker thread, which takes the same
    lock).
    """

    _sync_lock: threading.RLock

    _esm = esm_source()
    _css = css_source()

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
    # ipywidgets Style model. The public spelling is the property `Viewer.style`.
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

    # Editing (Python -> browser): atoms held by FixAtoms, drawn distinctly; the last edit's
    # message (a warning or error) and the last measurement, shown in the view.
    _fixed = t.Bytes(b"", help="uint8 per atom: 1 where FixAtoms holds it").tag(sync=True)
    #: Show the edit toolbar (select, move, add, delete, fix, measure, undo/redo, relax, NEB).
    editable = t.Bool(False).tag(sync=True)
    #: Message of the last edit (e.g. "atom 12 (O) is 0.45 Å from atom 3 (Pt) ..."), or "".
    edit_message = t.Unicode("").tag(sync=True)
    #: Text of the last :meth:`Viewer.measure` (distance, angle or dihedral), or "".
    measurement = t.Unicode("").tag(sync=True)
    #: Undo / redo available (drives the toolbar buttons).
    can_undo = t.Bool(False).tag(sync=True)
    can_redo = t.Bool(False).tag(sync=True)
    #: A relaxation or NEB started from the view is running (its Relax button reads Stop).
    running = t.Bool(False).tag(sync=True)
    #: NEB end states collected (drive the NEB button).
    has_neb_start = t.Bool(False).tag(sync=True)
    has_neb_end = t.Bool(False).tag(sync=True)

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
