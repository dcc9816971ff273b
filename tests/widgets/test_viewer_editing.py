"""Editing in the Viewer (Python side): the edit methods, the synced state the front end draws
(fixed atoms, selection, messages, undo/redo), edit requests as the browser sends them, and
the hand-over between a run that moves the atoms and the next edit."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.constraints import FixAtoms

from nnp_lab import build
from nnp_lab.widgets import Viewer


@pytest.fixture
def pt_view():
    v = Viewer(build.surface(build.bulk("Pt"), (1, 1, 1), 3, size=(2, 2), vacuum=6.0))
    yield v
    v.close()


def test_add_move_undo_redo_update_what_the_browser_gets(pt_view):
    n = pt_view.n_atoms
    structure_id = pt_view._structure_id
    pt_view.add("CO", site="fcc", height=1.3)
    assert pt_view.n_atoms == n + 2 and len(pt_view._numbers) == n + 2
    assert pt_view.selection == [n, n + 1] and pt_view.selected == [n, n + 1]
    assert pt_view._structure_id == structure_id  # the camera is kept (no refit)
    z0 = pt_view.atoms.positions[n:, 2].copy()
    pt_view.move(displacement=(0, 0, 0.5))
    np.testing.assert_allclose(pt_view.atoms.positions[n:, 2], z0 + 0.5)
    np.testing.assert_allclose(pt_view.positions[n:, 2], z0 + 0.5, rtol=1e-6)  # float32 copy
    assert pt_view.can_undo and not pt_view.can_redo
    pt_view.undo()
    np.testing.assert_allclose(pt_view.atoms.positions[n:, 2], z0)
    assert pt_view.can_redo
    pt_view.undo()
    assert pt_view.n_atoms == n and not pt_view.can_undo
    pt_view.redo()
    assert pt_view.n_atoms == n + 2


def test_fixed_atoms_are_sent_and_carried_in_the_atoms(pt_view):
    bottom = pt_view.select(layer=0)
    pt_view.fix()
    mask = np.frombuffer(pt_view._fixed, dtype=np.uint8)
    assert mask.tolist() == [1 if i in bottom else 0 for i in range(pt_view.n_atoms)]
    fixes = [c for c in pt_view.atoms.constraints if isinstance(c, FixAtoms)]
    assert sorted(int(i) for i in fixes[0].get_indices()) == bottom
    pt_view.unfix(bottom[:1])
    assert np.frombuffer(pt_view._fixed, dtype=np.uint8).sum() == len(bottom) - 1


def test_a_constrained_input_shows_its_fixed_atoms():
    a = build.surface(build.bulk("Cu"), (1, 0, 0), 3, size=(2, 2), fixed_layers=1)
    v = Viewer(a)
    assert np.frombuffer(v._fixed, dtype=np.uint8).sum() == 4
    v.close()


def test_selection_from_the_browser_drives_the_edits(pt_view):
    pt_view.selected = [0, 2]  # what a click and a shift-click set
    assert pt_view.editor.selection == [0, 2]
    before = pt_view.atoms.positions[[0, 2]].copy()
    pt_view.move(displacement=(0.1, 0, 0))
    np.testing.assert_allclose(pt_view.atoms.positions[[0, 2]], before + [0.1, 0, 0])
    pt_view.selection = [1]
    assert pt_view.selected == [1]


def test_edit_requests_as_the_front_end_sends_them(pt_view):
    n = pt_view.n_atoms
    top = int(np.argmax(pt_view.atoms.positions[:, 2]))
    msg = {"type": "edit", "op": "add", "species": "O", "on_atom": top, "height": 1.8}
    pt_view._on_custom_msg(pt_view, msg, [])
    assert pt_view.n_atoms == n + 1 and pt_view.selected == [n]
    pt_view._on_custom_msg(pt_view, {"type": "edit", "op": "move", "displacement": [0, 0, 0.2]}, [])
    assert pt_view.atoms.positions[n, 2] == pytest.approx(
        pt_view.editor.start.positions[top, 2] + 2.0
    )
    pt_view._on_custom_msg(pt_view, {"type": "edit", "op": "select", "indices": [top, n]}, [])
    pt_view._on_custom_msg(pt_view, {"type": "edit", "op": "measure"}, [])
    assert pt_view.measurement.startswith("distance") and "2.000 Å" in pt_view.measurement
    pt_view._on_custom_msg(pt_view, {"type": "edit", "op": "undo"}, [])
    assert pt_view.atoms.positions[n, 2] == pytest.approx(
        pt_view.editor.start.positions[top, 2] + 1.8
    )
    assert [e.kind for e in pt_view.history] == ["add"]


@pytest.mark.parametrize(
    "request_, expected",
    [
        ({"op": "explode"}, "unknown edit"),
        ({"op": "move", "displacement": [0, 0, 1]}, "select atoms first"),
        ({"op": "delete", "indices": [999]}, "out of range"),
        ({"op": "add", "species": "Qq", "position": [0, 0, 0]}, "add"),
        ({"op": "rotate", "angle": 10, "bogus": 1}, "rotate"),
    ],
)
def test_bad_requests_are_shown_not_raised(pt_view, request_, expected):
    n = pt_view.n_atoms
    message = pt_view.apply_request(request_)
    assert isinstance(message, str) and expected in message
    assert pt_view.edit_message == message and pt_view.n_atoms == n


def test_an_atom_dropped_onto_another_is_reported_in_the_view(pt_view):
    top = int(np.argmax(pt_view.atoms.positions[:, 2]))
    edit = pt_view.add("H", on_atom=top, height=0.3)
    assert "0.30 Å" in edit.message and pt_view.edit_message == edit.message
    pt_view.move(displacement=(0, 0, 1.5))
    assert pt_view.edit_message == ""


def test_check_elements_names_what_the_model_lacks(pt_view):
    class OnlyCu:
        name = "cu-only"
        elements = frozenset({29})

    message = pt_view.check_elements(OnlyCu())
    assert "Pt" in message and "cu-only" in message and pt_view.edit_message == message

    class Both:
        name = "both"
        elements = frozenset({29, 78})

    assert pt_view.check_elements(Both()) == ""


def test_a_run_moving_the_atoms_starts_a_new_edit_history(pt_view):
    pt_view.move([0], (0, 0, 0.1))
    moved = pt_view.atoms.positions + np.array([0.0, 0.0, 0.05])
    pt_view.update(moved, final=True)  # what a live relaxation in this view does
    np.testing.assert_array_equal(pt_view.atoms.positions, moved)  # exact, not float32
    pt_view.move([1], (0.2, 0, 0))
    assert [e.kind for e in pt_view.history] == ["move"]  # the run's result is the new start
    np.testing.assert_array_equal(pt_view.editor.start.positions, moved)
    code = pt_view.edits_as_code()
    namespace = {"start": pt_view.editor.start}
    exec(code, namespace)
    np.testing.assert_array_equal(namespace["atoms"].positions, pt_view.atoms.positions)


def test_editing_a_trajectory_is_refused_with_a_hint(pt_view):
    frames = [pt_view.atoms, pt_view.atoms]
    pt_view.show_trajectory(frames)
    with pytest.raises(Exception, match="resume_editing"):
        pt_view.move([0], (0, 0, 1))


def test_empty_viewer_has_no_editor():
    v = Viewer()
    with pytest.raises(Exception, match="no structure"):
        v.select([0])
    assert v.history == []
    v.atoms = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])
    assert v.measure([0, 1])["value"] == pytest.approx(0.74)
    v.close()


# ------------------------------------------------------------------ runs started from the edit


@pytest.fixture
def cu_view():
    slab = build.surface(build.bulk("Cu"), (1, 1, 1), 3, size=(2, 2), vacuum=6.0, fixed_layers=1)
    v = Viewer(slab)
    v.potential = "emt"
    yield v
    v.close()


def test_relax_from_the_view_keeps_fixed_atoms_and_resumes_editing(cu_view):
    top = int(np.argmax(cu_view.atoms.positions[:, 2]))
    cu_view.add("O", on_atom=top, height=1.6)
    fixed = cu_view.editor.fixed
    before = cu_view.atoms
    structure_id = cu_view._structure_id
    live = cu_view.relax(fmax=0.05, steps=200)
    result = live.wait(timeout=300)
    assert result.converged
    assert cu_view._mode == "live" and not cu_view.running
    assert cu_view._structure_id == structure_id  # the camera was kept throughout
    after = cu_view.atoms
    np.testing.assert_allclose(after.positions, result.atoms.positions)
    np.testing.assert_array_equal(after.positions[fixed], before.positions[fixed])
    assert cu_view.editor.fixed == fixed and cu_view.history == []  # a new history from here
    assert cu_view.label.startswith("relaxed:")
    cu_view.move([len(after) - 1], (0, 0, 0.1))  # editing goes on from the relaxed structure
    assert cu_view.atoms.positions[-1, 2] == pytest.approx(after.positions[-1, 2] + 0.1)


def test_relax_holding_the_selection_leaves_it_in_place_and_unfixed(cu_view):
    top = int(np.argmax(cu_view.atoms.positions[:, 2]))
    cu_view.add("O", on_atom=top, height=1.6)  # the O is selected
    o = cu_view.selection[0]
    before = cu_view.atoms.positions[o].copy()
    result = cu_view.relax(hold_selection=True, steps=100).wait(timeout=300)
    np.testing.assert_array_equal(result.atoms.positions[o], before)
    assert o not in cu_view.editor.fixed  # held for that run only


def test_neb_from_two_edited_states_plays_in_the_view_and_editing_resumes(cu_view):
    cu_view.add("O", site="fcc", height=1.2)
    cu_view.set_neb_start()
    end_xy = cu_view.atoms.positions[-1, :2] + [1.2, 0.0]
    cu_view.move(displacement=(1.2, 0.0, 0.0))
    cu_view.set_neb_end()
    assert cu_view.has_neb_start and cu_view.has_neb_end
    result = cu_view.neb(n_images=3, steps=60, fmax=0.2).wait(timeout=300)
    assert len(result.images) == 5
    assert cu_view._mode == "band" and cu_view.n_frames == 5
    with pytest.raises(Exception, match="resume_editing"):
        cu_view.move(displacement=(0, 0, 0.1))
    cu_view.apply_request({"op": "resume_editing"})
    assert cu_view._mode == "live"
    np.testing.assert_allclose(cu_view.atoms.positions[-1, :2], end_xy, atol=1e-12)
    assert [e.kind for e in cu_view.history] == ["add", "move"]  # the edits are still there


def test_neb_without_end_states_says_what_is_missing(cu_view):
    message = cu_view.apply_request({"op": "neb"})
    assert "start and end" in message


def test_a_second_run_while_one_goes_is_refused(cu_view):
    import threading

    from tests.simulate.potentials_for_tests import HeldPotential

    gate = threading.Event()
    held = HeldPotential({1: gate})  # the run waits at its first evaluation until released
    live = cu_view.relax(held, steps=5)
    assert held.holding.wait(300)
    try:
        assert cu_view.running
        message = cu_view.apply_request({"op": "relax"})
        assert "still going" in message
        assert "still going" in cu_view.apply_request({"op": "neb"})
    finally:
        gate.set()
    live.wait(timeout=300)
    assert not cu_view.running


def test_the_selection_survives_a_relaxation_in_the_view(cu_view):
    top = int(np.argmax(cu_view.atoms.positions[:, 2]))
    cu_view.add("O", on_atom=top, height=1.6)
    selected = cu_view.selection
    cu_view.relax(steps=20).wait(timeout=300)
    assert cu_view.selection == selected and cu_view.history == []
    cu_view.move(displacement=(0, 0, 0.1))  # a drag right after the relaxation moves the O
    assert [e.arguments["indices"] for e in cu_view.history] == [selected]
