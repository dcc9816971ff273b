"""Bad structures get a clear ValueError that names the problem and the fix."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule

from nnp_lab.errors import StructureError, UncoveredElementsError
from nnp_lab.potentials import load_potential


@pytest.fixture(scope="module")
def emt():
    return load_potential("emt")


def test_uncovered_elements_named_with_suggestion(emt):
    atoms = Atoms("CuSi", positions=[[0, 0, 0], [2.3, 0, 0]])
    with pytest.raises(UncoveredElementsError) as err:
        emt.evaluate([atoms])
    msg = str(err.value)
    assert "Si" in msg and "emt" in msg
    assert "sevennet-0" in msg  # suggests a model that covers Cu and Si
    assert isinstance(err.value, ValueError)


def test_element_no_model_covers():
    atoms = Atoms("Og", positions=[[0, 0, 0]])
    with pytest.raises(UncoveredElementsError) as err:
        load_potential("sevennet-0").evaluate([atoms])
    msg = str(err.value)
    assert "Og" in msg and "covered: H–Pu except Po" in msg
    assert "no registered model covers" in msg


def test_close_atoms_name_the_pair(emt):
    atoms = Atoms("Cu3", positions=[[0, 0, 0], [2.5, 0, 0], [2.8, 0, 0]])
    with pytest.raises(StructureError) as err:
        emt.evaluate([atoms])
    msg = str(err.value)
    assert "atoms 1 (Cu) and 2 (Cu)" in msg and "0.300" in msg


def test_close_periodic_image_detected(emt):
    atoms = Atoms("Cu", positions=[[0, 0, 0]], cell=[0.4, 3, 3], pbc=True)
    with pytest.raises(StructureError, match="periodic image"):
        emt.evaluate([atoms])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_positions(emt, bad):
    atoms = bulk("Cu", cubic=True)
    atoms.positions[2, 1] = bad
    with pytest.raises(StructureError, match=r"atoms \[2\].*NaN or infinite"):
        emt.evaluate([atoms])


def test_empty_structure(emt):
    with pytest.raises(StructureError, match="empty"):
        emt.evaluate([Atoms()])


def test_zero_cell_with_pbc(emt):
    atoms = Atoms("Cu2", positions=[[0, 0, 0], [2.5, 0, 0]], pbc=True)
    with pytest.raises(StructureError, match="cell vector"):
        emt.evaluate([atoms])


def test_degenerate_cell(emt):
    atoms = Atoms("Cu", cell=[[3, 0, 0], [6, 0, 0], [0, 0, 3]], pbc=True)
    with pytest.raises(StructureError, match="degenerate"):
        emt.evaluate([atoms])


def test_not_atoms(emt):
    with pytest.raises(ValueError, match="ase.Atoms"):
        emt.evaluate(["Cu"])


def test_unknown_property(emt):
    with pytest.raises(ValueError, match="unknown properties"):
        emt.evaluate([bulk("Cu")], ["dipole"])


def test_molecule_without_cell_is_fine(emt):
    res = emt.evaluate([molecule("CO")])[0]
    assert set(res) == {"energy", "forces"}
