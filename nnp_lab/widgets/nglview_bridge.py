"""Hand a structure or a trajectory to `nglview <https://github.com/nglviewer/nglview>`_.

nnp_lab draws its own views (:class:`~nnp_lab.widgets.Viewer`): they update while the cell
that produces the frames is still running, and they edit. Users who know nglview's
representations (cartoon, surface, licorice, ...) can open the same structure there with
:func:`to_nglview`; nglview is an optional extra (``pip install nnp_lab[nglview]``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ase import Atoms

from nnp_lab.errors import InputError

__all__ = ["to_nglview"]


def to_nglview(structure: Atoms | Sequence[Atoms] | str | os.PathLike[str], **kwargs: Any) -> Any:
    """An nglview widget showing ``structure``.

    Parameters
    ----------
    structure
        An :class:`ase.Atoms` (one frame), a list of Atoms (a trajectory: nglview's player
        steps through it), a path ASE can read (every frame), or anything with ``to_atoms()``
        or ``.frames`` (a :class:`~nnp_lab.widgets.Viewer`, an ``MDResult``, an
        ``NEBResult``'s ``images``).
    **kwargs
        Passed to ``nglview.show_ase`` / ``nglview.show_asetraj``.

    Returns
    -------
    nglview.NGLWidget

    Raises
    ------
    InputError
        nglview is not installed (the message says how to install it), or ``structure`` is
        none of the above or empty.
    """
    try:
        import nglview
    except ImportError:
        raise InputError(
            "to_nglview needs nglview, an optional extra: pip install 'nnp_lab[nglview]' "
            "(or pip install nglview)"
        ) from None
    frames = _frames(structure)
    if len(frames) == 1:
        return nglview.show_ase(frames[0], **kwargs)
    return nglview.show_asetraj(frames, **kwargs)


def _frames(structure: Any) -> list[Atoms]:
    if isinstance(structure, Atoms):
        return [structure.copy()]
    if isinstance(structure, (str, os.PathLike)):
        from ase.io import read

        frames = read(os.fspath(structure), index=":")
        return [frames] if isinstance(frames, Atoms) else list(frames)
    frames_attr = getattr(structure, "frames", None)
    if frames_attr:
        return [a.copy() for a in frames_attr]
    to_atoms = getattr(structure, "to_atoms", None)
    if callable(to_atoms):
        return [to_atoms()]
    if (
        isinstance(structure, Sequence)
        and structure
        and all(isinstance(a, Atoms) for a in structure)
    ):
        return [a.copy() for a in structure]
    raise InputError(
        f"to_nglview takes Atoms, a list of Atoms, a trajectory path or a result with frames; "
        f"got {type(structure).__name__}"
    )
