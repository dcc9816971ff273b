"""Structure edits (nnp_lab.build.editing): each edit function, the editor's selection,
undo/redo state machine, overlap warnings, periodic measurements and the code round trip."""

import numpy as np
import pytest
from ase import Atoms
from ase.constraints import FixAtoms, FixBondLengths

from nnp_lab import build
from nnp_lab.build import editing
from nnp_lab.build.editing import StructureEditor
from nnp_lab.errors import InputError


@pytest.fixture()
def slab():
    return build.surface(build.bulk("Pt"), (1, 1, 1), 3, size=(2, 2), vacuum=6.0)


def same_structure(a, b):
    assert a.get_chemical_symbols() == b.get_chemical_symbols()
    np.testing.assert_array_equal(a.positions, b.positions)  # exact: same calls, same floats
    np.testing.assert_array_equal(a.cell[:], b.cell[:])
    assert list(a.pbc) == list(b.pbc)
    fa = sorted(int(i) for c in a.constraints if isinstance(c, FixAtoms) for i in c.get_indices())
    fb = sorted(int(i) for c in b.constraints if isinstance(c, FixAtoms) for i in c.get_indices())
    assert fa == fb
    assert [type(c).__name__ for c in a.constraints] == [type(c).__name__ for c in b.constraints]


# ------------------------------------------------------------------ the functions


def test_move_atoms_moves_only_the_indices_and_leaves_the_input(slab):
    before = slab.positions.copy()
    out = editing.move_atoms(slab, [1, 3], [0.5, -0.25, 1.0])
    np.testing.assert_array_equal(slab.positions, before)
    expected = before.copy()
    expected[[1, 3]] += [0.5, -0.25, 1.0]
    np.testing.assert_allclose(out.positions, expected, atol=0)


def test_move_ignores_fixatoms_of_the_moved_atoms(slab):
    slab.set_constraint(FixAtoms(indices=[0]))
    out = editing.move_atoms(slab, [0], [0, 0, 1])
    assert out.positions[0, 2] == pytest.approx(slab.positions[0, 2] + 1)
    assert [int(i) for i in out.constraints[0].get_indices()] == [0]


def test_rotate_keeps_internal_distances_and_turns_by_the_angle():
    co = Atoms("CO", positions=[[0, 0, 0], [1.15, 0, 0]], cell=[10, 10, 10], pbc=True)
    out = editing.rotate_atoms(co, [0, 1], 90, "z")
    assert out.get_distance(0, 1) == pytest.approx(1.15, abs=1e-12)
    bond = out.positions[1] - out.positions[0]
    np.testing.assert_allclose(bond, [0, 1.15, 0], atol=1e-12)  # x turned into y
    np.testing.assert_allclose(out.positions.mean(axis=0), co.positions.mean(axis=0), atol=1e-12)


def test_rotate_a_molecule_split_by_the_cell_rotates_it_whole():
    # the two atoms are 1 Å apart through the boundary, 9 Å apart in the cell
    pair = Atoms("OO", positions=[[0.5, 5, 5], [9.5, 5, 5]], cell=[10, 10, 10], pbc=True)
    out = editing.rotate_atoms(pair, [0, 1], 90, "z")
    assert out.get_distance(0, 1, mic=True) == pytest.approx(1.0, abs=1e-12)
    assert abs(out.positions[1, 1] - out.positions[0, 1]) == pytest.approx(1.0, abs=1e-12)


def test_delete_reindexes_fixatoms(slab):
    slab.set_constraint(FixAtoms(indices=[0, 5, 7]))
    out = editing.delete_atoms(slab, [1, 5])
    assert len(out) == len(slab) - 2
    assert sorted(int(i) for i in out.constraints[0].get_indices()) == [0, 5]  # 7 -> 5


def test_fix_and_unfix_merge_into_one_fixatoms_and_keep_other_constraints():
    a = Atoms("H3", positions=[[0, 0, 0], [0.74, 0, 0], [3, 0, 0]])
    a.set_constraint(FixBondLengths([(0, 1)]))
    b = editing.fix_atoms(editing.fix_atoms(a, [2]), [0])
    fixes = [c for c in b.constraints if isinstance(c, FixAtoms)]
    assert len(fixes) == 1 and sorted(int(i) for i in fixes[0].get_indices()) == [0, 2]
    assert any(isinstance(c, FixBondLengths) for c in b.constraints)
    c = editing.unfix_atoms(b, [0, 2])
    assert not any(isinstance(x, FixAtoms) for x in c.constraints)
    assert any(isinstance(x, FixBondLengths) for x in c.constraints)


def test_add_atom_at_a_position_and_on_top_of_an_atom(slab):
    out = editing.add_atoms(slab, "O", position=[1.0, 2.0, 15.0])
    assert out[-1].symbol == "O" and len(out) == len(slab) + 1
    np.testing.assert_allclose(out.positions[-1], [1.0, 2.0, 15.0])
    top = int(np.argmax(slab.positions[:, 2]))
    out = editing.add_atoms(slab, "H", on_atom=top, height=1.6)
    np.testing.assert_allclose(out.positions[-1], slab.positions[top] + [0, 0, 1.6])


def test_add_molecule_on_a_site_matches_add_adsorbate(slab):
    site = next(s for s in build.adsorption_sites(slab) if s.kind == "fcc")
    out = editing.add_atoms(slab, "CO", site=site, height=1.3)
    ref = build.add_adsorbate(slab, "CO", site, height=1.3)
    np.testing.assert_allclose(out.positions, ref.positions)
    assert out.get_chemical_symbols()[-2:] == ["C", "O"]


@pytest.mark.parametrize(
    "call",
    [
        lambda a: editing.move_atoms(a, [], [0, 0, 1]),
        lambda a: editing.move_atoms(a, [99], [0, 0, 1]),
        lambda a: editing.move_atoms(a, [0], [0, 0]),
        lambda a: editing.move_atoms(a, [0], [0, np.nan, 0]),
        lambda a: editing.rotate_atoms(a, [0], 10, "w"),
        lambda a: editing.rotate_atoms(a, [0], 10, [0, 0, 0]),
        lambda a: editing.delete_atoms(a, range(len(a))),
        lambda a: editing.add_atoms(a, "O"),
        lambda a: editing.add_atoms(a, "O", position=[0, 0, 0], on_atom=0),
        lambda a: editing.add_atoms(a, "", position=[0, 0, 0]),
        lambda a: editing.measure(a, [0]),
        lambda a: editing.measure(a, [0, 0]),
    ],
)
def test_bad_edits_raise_input_errors(slab, call):
    with pytest.raises(InputError):
        call(slab)


# ------------------------------------------------------------------ measuring


def test_measure_uses_the_minimum_image_and_matches_ase():
    a = Atoms(
        "OHHH",
        positions=[[0.2, 5, 5], [9.4, 5, 5], [0.2, 6, 5], [9.4, 5, 6]],
        cell=[10, 10, 10],
        pbc=True,
    )
    d = editing.measure(a, [0, 1])
    assert d["kind"] == "distance" and d["value"] == pytest.approx(0.8)
    ang = editing.measure(a, [1, 0, 2])
    assert ang["kind"] == "angle" and ang["value"] == pytest.approx(a.get_angle(1, 0, 2, mic=True))
    assert ang["value"] == pytest.approx(90.0)
    dih = editing.measure(a, [2, 0, 1, 3])
    assert dih["kind"] == "dihedral"
    assert dih["value"] == pytest.approx(a.get_dihedral(2, 0, 1, 3, mic=True))
    assert "0.800 Å" in d["text"]


def test_close_contacts_finds_an_atom_dropped_onto_another(slab):
    top = int(np.argmax(slab.positions[:, 2]))
    out = editing.add_atoms(slab, "O", on_atom=top, height=0.3)
    contacts = editing.close_contacts(out, [len(out) - 1])
    assert contacts and contacts[0][1] == top and contacts[0][2] == pytest.approx(0.3)
    fine = editing.add_atoms(slab, "O", on_atom=top, height=2.0)
    assert editing.close_contacts(fine, [len(fine) - 1]) == []


# ------------------------------------------------------------------ the editor


def test_selection_by_element_layer_all_invert_and_add(slab):
    ed = StructureEditor(build.add_adsorbate(slab, "CO", "fcc", height=1.3))
    n = ed.n_atoms
    assert ed.select(element="O") == [n - 1]
    z = ed.atoms.positions[:, 2]
    bottom = ed.select(layer=0)
    assert (
        bottom
        and np.allclose(z[bottom], z[bottom][0], atol=0.3)
        and z[bottom].max() < z.min() + 0.3
    )
    top_layer = ed.select(layer=-1)
    assert top_layer == [n - 1]  # the O of CO is the highest "layer"
    assert ed.select(everything=True) == list(range(n))
    ed.select([0, 1])
    assert ed.select(invert=True) == list(range(2, n))
    assert ed.select(element="C", add=True) == sorted(set(range(2, n)))
    assert ed.select([0], add=True)[0] == 0
    with pytest.raises(InputError):
        ed.select(layer=50)
    with pytest.raises(InputError):
        ed.select(element="Xx")


def test_edits_default_to_the_selection_and_an_empty_selection_is_refused(slab):
    ed = StructureEditor(slab)
    with pytest.raises(InputError, match="select atoms first"):
        ed.move(displacement=(0, 0, 1))
    ed.select([2])
    ed.move(displacement=(0, 0, 1))
    assert ed.atoms.positions[2, 2] == pytest.approx(slab.positions[2, 2] + 1)


def test_undo_redo_state_machine(slab):
    ed = StructureEditor(slab)
    assert ed.undo() is None and ed.redo() is None and not ed.can_undo
    e1 = ed.move([0], (0, 0, 1))
    e2 = ed.add("O", on_atom=0, height=2.0)
    assert ed.selection == [len(slab)]  # the added atom is selected
    e3 = ed.delete([1])
    assert [e.kind for e in ed.history] == ["move", "add", "delete"]
    assert ed.n_atoms == len(slab)
    assert ed.undo() is e3 and ed.n_atoms == len(slab) + 1
    assert ed.selection == [len(slab)]  # the selection comes back with the undo
    assert ed.undo() is e2 and ed.n_atoms == len(slab)
    assert ed.can_redo and [e.kind for e in ed.history] == ["move"]
    assert ed.redo() is e2 and ed.n_atoms == len(slab) + 1
    ed.fix([3])  # a new edit clears the redo stack
    assert not ed.can_redo and ed.redo() is None
    while ed.undo() is not None:
        pass
    same_structure(ed.atoms, slab)
    assert ed.history == [] and e1 not in ed.history


def test_overlap_warning_is_in_the_edit_and_the_edit_still_happens(slab):
    ed = StructureEditor(slab)
    top = int(np.argmax(slab.positions[:, 2]))
    edit = ed.add("O", on_atom=top, height=0.4)
    assert ed.n_atoms == len(slab) + 1
    assert "0.40 Å from atom" in edit.message and ed.last_message == edit.message
    ok = ed.move(displacement=(0, 0, 1.6))
    assert ok.message == ""


def test_edits_as_code_reproduces_the_edited_atoms_exactly(slab):
    slab.set_constraint(FixAtoms(indices=[0, 1]))
    ed = StructureEditor(slab)
    site = next(s for s in build.adsorption_sites(slab) if s.kind == "hcp")
    ed.add("CO", site=site, height=1.35)
    ed.rotate(angle=33.3, axis=[1, 1, 0])
    ed.move(displacement=(0.1234567891, -0.3, 0.05))
    ed.add(Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]]), position=[1.1, 1.3, 14.0])
    ed.fix(ed.select(layer=1))
    ed.unfix([0])
    ed.delete([2])
    ed.select(element="H")
    ed.rotate(angle=-12.0, axis="x", center=[0.0, 0.0, 14.0])
    code = ed.edits_as_code()
    namespace = {"start": ed.start}
    exec(code, namespace)
    same_structure(namespace["atoms"], ed.atoms)
    assert code.count("= editing.") == len(ed.history)  # one line per edit


def test_edits_as_code_of_no_edits_is_a_copy(slab):
    ed = StructureEditor(slab)
    namespace = {"start": slab}
    exec(ed.edits_as_code(), namespace)
    same_structure(namespace["atoms"], slab)
    assert namespace["atoms"] is not slab


def test_set_atoms_starts_over(slab):
    ed = StructureEditor(slab)
    ed.move([0], (1, 0, 0))
    other = build.bulk("Cu", cubic=True)
    ed.set_atoms(other)
    assert ed.history == [] and not ed.can_undo and ed.selection == []
    same_structure(ed.start, other)


def test_editor_never_modifies_what_it_was_given_or_returns(slab):
    before = slab.positions.copy()
    ed = StructureEditor(slab)
    got = ed.atoms
    got.positions += 5
    ed.move([0], (0, 0, 1))
    np.testing.assert_array_equal(slab.positions, before)
    assert ed.atoms.positions[1, 2] == pytest.approx(before[1, 2])
