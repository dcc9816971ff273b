"""Viewer state after setting atoms, the Atoms round trip, selection, PNG export, bad input."""

from __future__ import annotations

import re

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixAtoms

from nnp_lab.widgets import Viewer
from tests.widgets.float32 import assert_float32_close


def _tiny_png() -> bytes:
    """A valid 1x1 PNG (built by hand, so the test needs no image library)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_front_end_module_is_found() -> None:
    esm = str(Viewer._esm)  # the esbuild bundle of widgets/src/ (exports its default as a name)
    assert "Generated from widgets/src/" in esm and re.search(r"\bas default\b|export default", esm)
    assert "nnpv-root" in str(Viewer._css)


def test_state_after_setting_atoms(viewer: Viewer, ethanol: Atoms) -> None:
    n = len(ethanol)
    assert viewer.n_atoms == n
    assert isinstance(viewer._positions, bytes) and len(viewer._positions) == n * 3 * 4
    assert isinstance(viewer._numbers, bytes) and len(viewer._numbers) == n
    np.testing.assert_array_equal(np.frombuffer(viewer._numbers, dtype=np.uint8), ethanol.numbers)
    assert_float32_close(
        np.frombuffer(viewer._positions, dtype="<f4").reshape(n, 3), ethanol.positions
    )
    assert viewer.positions.dtype == np.float32
    assert viewer._cell == [0.0] * 9
    assert viewer._pbc == [False, False, False]
    assert viewer._forces == b""
    assert set(viewer._elements) == {"1", "6", "8"}
    r, g, b, r_cov, r_fill, symbol = viewer._elements["8"]
    assert symbol == "O" and r > 0.9 and g < 0.2  # Jmol oxygen is red
    assert r_cov == pytest.approx(0.66) and r_fill == pytest.approx(1.52)


def test_binary_traits_travel_as_buffers(ethanol: Atoms, sent) -> None:
    v = Viewer()
    rec = sent(v)
    v.atoms = ethanol
    ((msg, buffers),) = [(m, b) for m, b in rec.messages if "_positions" in rec.keys(m)]
    assert "_positions" in [p[0] for p in msg["buffer_paths"]]
    assert "_positions" not in msg["state"]  # not JSON: a binary buffer
    assert any(len(bytes(b)) == len(ethanol) * 12 for b in buffers)
    v.close()


def test_cell_and_pbc(slab: Atoms) -> None:
    v = Viewer(slab)
    np.testing.assert_allclose(np.array(v._cell).reshape(3, 3), slab.cell.array)
    assert v._pbc == [True, True, False]
    assert set(v._elements) == {"78"}
    v.close()


def test_new_atoms_reset_everything(viewer: Viewer, slab: Atoms) -> None:
    sid = viewer._structure_id
    viewer.selected = [1]
    viewer.atoms = slab
    assert viewer._structure_id == sid + 1
    assert viewer.n_atoms == len(slab)
    assert viewer.selected == []
    viewer.atoms = None
    assert viewer.n_atoms == 0 and viewer._positions == b"" and viewer.atoms is None
    assert len(viewer.to_atoms()) == 0


def test_round_trip(slab: Atoms) -> None:
    slab.set_constraint(FixAtoms(indices=[0, 1]))
    rng = np.random.default_rng(1)
    slab.positions += rng.normal(0, 0.3, slab.positions.shape)
    v = Viewer(slab)
    back = v.to_atoms()
    assert back is not slab
    np.testing.assert_array_equal(back.numbers, slab.numbers)
    assert_float32_close(back.positions, slab.positions)
    assert_float32_close(back.cell.array, slab.cell.array)
    np.testing.assert_array_equal(back.pbc, slab.pbc)
    np.testing.assert_array_equal(back.get_tags(), slab.get_tags())
    assert back.constraints and list(back.constraints[0].index) == [0, 1]
    # The viewer holds a copy: changing the caller's Atoms changes nothing shown.
    slab.positions += 1.0
    np.testing.assert_allclose(v.to_atoms().positions, back.positions)
    # After a live update the round trip returns the updated frame.
    new = back.positions + 0.25
    v.update(new, cell=back.cell.array * 1.01, final=True)
    again = v.atoms
    assert_float32_close(again.positions, new)
    assert_float32_close(again.cell.array, back.cell.array * 1.01)
    v.close()


def test_forces_from_calculator(ethanol: Atoms) -> None:
    forces = np.arange(len(ethanol) * 3, dtype=float).reshape(-1, 3) / 10
    ethanol.calc = SinglePointCalculator(ethanol, energy=-1.0, forces=forces)
    v = Viewer(ethanol, show_forces=True)
    assert_float32_close(v.forces, forces)
    assert v.forces.dtype == np.float32
    v.close()


def test_constructor_options() -> None:
    v = Viewer(
        bulk("Cu"), style="spacefill", show_cell=False, show_bonds=False, height=300, label="hi"
    )
    assert (v.style, v._style, v.show_cell, v.show_bonds, v.height, v.label) == (
        "spacefill",
        "spacefill",
        False,
        False,
        300,
        "hi",
    )
    v.style = "ball-and-stick"
    assert v._style == "ball-and-stick"
    with pytest.raises(ValueError, match="style must be one of"):
        v.style = "sticks"
    with pytest.raises(ValueError, match="style must be one of"):
        Viewer(style="cartoon")
    v.close()


def test_selection_from_front_end(viewer: Viewer) -> None:
    seen = []
    viewer.observe(lambda c: seen.append(c["new"]), "selected")
    # Exactly what ipywidgets does with an incoming {"method": "update"} comm message.
    viewer._handle_msg(
        {
            "content": {
                "data": {"method": "update", "state": {"selected": [2, 5]}, "buffer_paths": []}
            },
            "buffers": [],
        }
    )
    assert viewer.selected == [2, 5]
    assert seen == [[2, 5]]
    viewer._handle_msg(
        {
            "content": {
                "data": {"method": "update", "state": {"frames_drawn": 17}, "buffer_paths": []}
            },
            "buffers": [],
        }
    )
    assert viewer.frames_drawn == 17


def test_save_png_request_response(viewer: Viewer, tmp_path: Path, sent) -> None:
    rec = sent(viewer)
    target = tmp_path / "sub" / "view.png"
    future = viewer.save_png(target)
    (request,) = [c for c in rec.custom() if c.get("type") == "png_request"]
    assert not future.done()
    png = _tiny_png()
    viewer._handle_custom_msg({"type": "png", "id": request["id"]}, [memoryview(png)])
    assert future.result(timeout=0) == png
    assert target.read_bytes() == png
    assert viewer.last_png == png
    # A second answer to the same request (another view of the widget) is ignored.
    viewer._handle_custom_msg({"type": "png", "id": request["id"]}, [memoryview(b"junk")])
    # A reply that is not a PNG fails the future with a clear error.
    bad = viewer.save_png()
    (req2,) = [
        c for c in rec.custom() if c.get("type") == "png_request" and c["id"] != request["id"]
    ]
    viewer._handle_custom_msg({"type": "png", "id": req2["id"]}, [memoryview(b"GIF89a")])
    with pytest.raises(RuntimeError, match="not a PNG"):
        bad.result(timeout=0)


def test_reset_view_sends_command(viewer: Viewer, sent) -> None:
    rec = sent(viewer)
    viewer.reset_view()
    assert {"type": "reset_view"} in rec.custom()


# ------------------------------------------------------------------------------ bad input


def test_update_wrong_shape_says_what_and_how(viewer: Viewer) -> None:
    n = viewer.n_atoms
    with pytest.raises(
        ValueError, match=rf"shape \({n}, 3\).*got shape \({n + 1}, 3\).*viewer.atoms"
    ):
        viewer.update(np.zeros((n + 1, 3)))
    with pytest.raises(ValueError, match=rf"shape \({n}, 3\).*got shape \({n * 3},\)"):
        viewer.update(np.zeros(n * 3))
    with pytest.raises(ValueError, match="forces must have shape"):
        viewer.update(np.zeros((n, 3)), forces=np.zeros((n, 2)))


def test_update_rejects_nan_and_non_numbers(viewer: Viewer) -> None:
    pos = viewer.positions.copy()
    pos[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite.*\[3\]"):
        viewer.update(pos)
    with pytest.raises(ValueError, match="numeric array"):
        viewer.update([["a", "b", "c"]] * viewer.n_atoms)
    with pytest.raises(ValueError, match="cell must be"):
        viewer.update(viewer.positions, cell="big")


def test_update_needs_atoms_first() -> None:
    v = Viewer()
    with pytest.raises(ValueError, match="set viewer.atoms"):
        v.update(np.zeros((3, 3)))
    with pytest.raises(TypeError, match="ase.Atoms"):
        v.atoms = np.zeros((3, 3))
    v.close()


def test_update_accepts_atoms(viewer: Viewer, ethanol: Atoms) -> None:
    moved = ethanol.copy()
    moved.positions += 1.5
    moved.cell = [10, 10, 10]
    viewer.update(moved, final=True)
    assert_float32_close(viewer.positions, moved.positions)
    np.testing.assert_allclose(viewer.cell, np.eye(3) * 10)


def test_large_atomic_numbers_fit_uint8() -> None:
    heavy = Atoms("OgTs", positions=[[0, 0, 0], [3, 0, 0]])
    v = Viewer(heavy)
    assert list(v.numbers) == [118, 117]
    assert v._elements["118"][5] == "Og"
    v.close()


def test_caller_atoms_not_modified(ethanol: Atoms) -> None:
    before = ethanol.positions.copy()
    v = Viewer(ethanol)
    v.update(before + 1, final=True)
    np.testing.assert_array_equal(ethanol.positions, before)
    v.close()


def test_molecule_labels_and_empty() -> None:
    v = Viewer(molecule("H2O"), label="water")
    assert v.label == "water"
    v.update(v.positions, label="moved", final=True)
    assert v.label == "moved"
    v.close()
