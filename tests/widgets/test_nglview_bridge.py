"""to_nglview: frames handed to nglview where it is installed; a clear message where not."""

from __future__ import annotations

import importlib.util

import pytest
from ase.build import bulk, molecule

from nnp_lab.errors import InputError
from nnp_lab.widgets import Viewer, to_nglview

HAVE_NGLVIEW = importlib.util.find_spec("nglview") is not None


@pytest.mark.skipif(HAVE_NGLVIEW, reason="nglview is installed: the install hint is not shown")
def test_without_nglview_the_message_says_how_to_install_it():
    with pytest.raises(InputError, match=r"pip install 'nnp_lab\[nglview\]'"):
        to_nglview(molecule("H2O"))


@pytest.mark.skipif(not HAVE_NGLVIEW, reason="nglview is not installed (pip install nglview)")
def test_structure_trajectory_and_viewer_reach_nglview(tmp_path):
    import nglview
    from ase.io import write

    w = to_nglview(molecule("H2O"))
    assert isinstance(w, nglview.NGLWidget) and w.max_frame == 0
    frames = [bulk("Cu").repeat(2) for _ in range(4)]
    for k, f in enumerate(frames):
        f.positions[0, 0] += 0.1 * k
    assert to_nglview(frames).max_frame == 3
    write(tmp_path / "t.traj", frames)
    assert to_nglview(tmp_path / "t.traj").max_frame == 3
    v = Viewer(molecule("CH4"))
    assert to_nglview(v).max_frame == 0
    v.close()


def test_bad_input_is_refused_before_nglview_is_needed(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "nglview", type(sys)("nglview"))  # a stand-in module
    with pytest.raises(InputError, match="takes Atoms"):
        to_nglview(42)
