"""Trajectory player and NEB band view: one binary buffer, frames played in the browser."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from nnp_lab.widgets import TrajectoryPlayer, Viewer
from tests.widgets.float32 import assert_float32_close


def _frames(n_frames: int = 7, energies: bool = True) -> list[Atoms]:
    base = molecule("CH3CH2OH")
    base.cell = [8, 9, 10]
    rng = np.random.default_rng(3)
    out = []
    for i in range(n_frames):
        a = base.copy()
        a.positions += rng.normal(0, 0.05, a.positions.shape)
        a.cell = base.cell.array * (1 + 0.01 * i)
        if energies:
            a.calc = SinglePointCalculator(a, energy=-10.0 + 0.5 * i)
        out.append(a)
    return out


def test_trajectory_sent_as_one_buffer(sent) -> None:
    frames = _frames()
    v = Viewer()
    rec = sent(v)
    assert v.show_trajectory(frames, fps=5) is v
    n_frames, n = len(frames), len(frames[0])
    assert len(v._traj_positions) == n_frames * n * 3 * 4
    assert len(v._traj_cells) == n_frames * 9 * 4
    assert v._traj_n_frames == n_frames == v.n_frames
    assert v.trajectory.shape == (n_frames, n, 3) and v.trajectory.dtype == np.float32
    assert_float32_close(
        np.frombuffer(v._traj_positions, dtype="<f4").reshape(n_frames, n, 3),
        np.stack([a.positions for a in frames]),
    )
    assert v._mode == "trajectory" and v.play_fps == 5 and v.frame_index == 0
    assert v._traj_labels[0] == "frame 0/6  E = -10.000 eV"
    assert v._traj_labels[6] == "frame 6/6  E = -7.000 eV"
    # Everything travelled in a single comm message.
    msgs = rec.updates_with("_traj_positions")
    assert len(msgs) == 1 and {"_traj_cells", "_mode", "_numbers"} <= rec.keys(msgs[0])
    v.close()


def test_trajectory_round_trip_per_frame() -> None:
    frames = _frames()
    v = TrajectoryPlayer(frames)
    for k in (0, 3, 6):
        back = v.to_atoms(frame=k)
        assert_float32_close(back.positions, frames[k].positions)
        assert_float32_close(back.cell.array, frames[k].cell.array)
    v.frame_index = 4  # what the browser's slider syncs back
    assert_float32_close(v.to_atoms().positions, frames[4].positions)
    with pytest.raises(Exception, match="frame_index must be in 0..6"):
        v.frame_index = 7
    with pytest.raises(ValueError, match="frame must be in"):
        v.to_atoms(frame=9)
    v.close()


def test_trajectory_from_file(tmp_path: Path) -> None:
    frames = _frames(4)
    path = tmp_path / "run.traj"
    write(path, frames)
    v = TrajectoryPlayer(path, fps=20)
    assert v.n_frames == 4 and v.play_fps == 20
    assert "E = -8.500 eV" in v._traj_labels[3]
    with pytest.raises(ValueError, match="does not exist"):
        v.show_trajectory(tmp_path / "missing.traj")
    v.close()


def test_trajectory_needs_same_atoms() -> None:
    frames = _frames(3, energies=False)
    v = Viewer()
    with pytest.raises(ValueError, match="frame 2 has 8 atoms but frame 0 has 9"):
        v.show_trajectory([frames[0], frames[1], frames[2][:8]])
    swapped = frames[1].copy()
    swapped.numbers[[0, 3]] = swapped.numbers[[3, 0]]
    with pytest.raises(ValueError, match="frame 1 has element"):
        v.show_trajectory([frames[0], swapped])
    with pytest.raises(ValueError, match="empty"):
        v.show_trajectory([])
    with pytest.raises(TypeError, match="expected ase.Atoms"):
        v.show_trajectory([frames[0], "not atoms"])
    with pytest.raises(ValueError, match="one per frame"):
        v.show_trajectory(frames, labels=["a"])
    assert v._traj_labels == [] and v._mode == "live"  # nothing half-loaded
    v.close()


def test_band_view_and_back_to_live() -> None:
    images = _frames(5)
    v = Viewer()
    v.show_band(images, overlay=True)
    assert v._mode == "band" and v.overlay is True and v.n_frames == 5
    assert v._traj_labels[0] == "image 0/4  E - E0 = +0.000 eV"
    assert v._traj_labels[2] == "image 2/4  E - E0 = +1.000 eV"
    with pytest.raises(ValueError, match="trajectory or band"):
        v.update(images[0].positions)
    v.atoms = images[0]
    assert (
        v._mode == "live" and v._traj_positions == b"" and v.n_frames == 0 and v.trajectory is None
    )
    v.update(images[1].positions, final=True)
    v.close()


def test_trajectory_size_limit(monkeypatch) -> None:
    import nnp_lab.widgets.viewer as viewer_module

    monkeypatch.setattr(viewer_module, "MAX_TRAJECTORY_BYTES", 100)
    v = Viewer()
    with pytest.raises(ValueError, match=r"frames\[::"):
        v.show_trajectory(_frames(5))
    v.close()


def test_update_frames_for_a_live_band(sent) -> None:
    images = _frames(5)
    v = Viewer().show_band(images, overlay=True)
    v.frame_index = 2
    rec = sent(v)
    moved = v.trajectory + 0.5
    v.update_frames(moved, labels=[f"it 1 image {i}" for i in range(5)])
    (msg,) = rec.updates_with("_traj_positions")
    assert "_traj_labels" in rec.keys(msg) and "_mode" not in rec.keys(msg)
    assert_float32_close(v.to_atoms().positions, moved[2])
    assert v.frame_index == 2 and v.overlay is True
    with pytest.raises(ValueError, match=r"shape \(5, 9, 3\)"):
        v.update_frames(moved[:4])
    with pytest.raises(ValueError, match="one per frame"):
        v.update_frames(moved, labels=["x"])
    live = Viewer(images[0])
    with pytest.raises(ValueError, match="show_trajectory"):
        live.update_frames(moved)
    v.close()
    live.close()
