"""Jupyter widgets for nnp_lab: a live 3D viewer, a trajectory player and an NEB band view.

The viewer is an `anywidget <https://anywidget.dev>`_ whose dependency-free WebGL2 front end
ships inside the package (no JupyterLab extension to install). It needs ``anywidget`` and
``ipywidgets`` (``pip install nnp_lab[lab]``).

>>> from nnp_lab.widgets import Viewer
>>> v = Viewer(atoms)                       # doctest: +SKIP
>>> v.update(new_positions, label="step 1") # doctest: +SKIP
"""

from nnp_lab.widgets.viewer import TrajectoryPlayer, Viewer

__all__ = ["TrajectoryPlayer", "Viewer"]

from nnp_lab.widgets.live import LiveRun, watch  # noqa: E402

__all__ += ["LiveRun", "watch"]

# Builder panels and the Lab app.
from nnp_lab.widgets.builders import MoleculeBuilder, NanoparticleBuilder, SlabBuilder  # noqa: E402
from nnp_lab.widgets.lab import Lab  # noqa: E402

__all__ += ["MoleculeBuilder", "SlabBuilder", "NanoparticleBuilder", "Lab"]

from nnp_lab.widgets.screen_view import ScreenView, watch_screen  # noqa: E402

__all__ += ["ScreenView", "watch_screen"]

from nnp_lab.widgets.nglview_bridge import to_nglview  # noqa: E402

__all__ += ["to_nglview"]

# The engine's live=True finds these through nnp_lab.display (this package is named in the
# "nnp_lab.displays" entry-point group of nnp_lab's pyproject.toml).
from nnp_lab.display import register_display  # noqa: E402
from nnp_lab.widgets.plots import TrainingPlot  # noqa: E402

register_display("run", watch)
register_display("training", TrainingPlot)
register_display("screen", watch_screen)
