"""Grain boundaries: the energy of a coincidence-site-lattice boundary built by pymatgen's
:class:`~pymatgen.core.interface.GrainBoundaryGenerator`."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms

from nnp_lab import validation
from nnp_lab.errors import InputError
from nnp_lab.potentials import Potential
from nnp_lab.properties._common import (
    EV_A2_TO_J_M2,
    Progress,
    PropertyProgress,
    PropertyResult,
    evaluate_all,
    finish,
    reference_cell,
    relaxed_copy,
    require_periodic,
    resolve,
)

__all__ = ["GrainBoundaryResult", "grain_boundary_energy"]

#: γ below this (J/m²) is flagged as negative; above it, a boundary that costs nothing (a
#: coherent twin in a short-ranged model) is not a warning.
NEGATIVE_TOLERANCE_J_M2 = -0.01


@dataclass(frozen=True, repr=False)
class GrainBoundaryResult(PropertyResult):
    """Energy of a symmetric tilt or twist grain boundary.

    ``γ = (E_GB − N e_bulk) / (2 A)``: the periodic cell holds two boundaries of area ``A``.

    Attributes
    ----------
    grain_boundary_energy_J_m2 : float
        Relaxed (positions and the cell length normal to the boundary).
    unrelaxed_grain_boundary_energy_J_m2 : float
        As built.
    sigma : int
        Σ of the coincidence site lattice.
    rotation_axis : tuple of int
    rotation_angle_deg : float
    plane : tuple of int
        The boundary plane (Miller indices of the conventional cell).
    area_A2 : float
        Area of one boundary in the cell.
    n_atoms : int
    expansion_A : float
        Change of the cell height normal to the boundary on relaxation (twice the
        boundary's excess volume per area).
    bulk_energy_per_atom_eV : float
    reference : ase.Atoms
        The (relaxed) bulk cell.
    structure : ase.Atoms
        The relaxed boundary cell.
    """

    grain_boundary_energy_J_m2: float
    unrelaxed_grain_boundary_energy_J_m2: float
    sigma: int
    rotation_axis: tuple[int, int, int]
    rotation_angle_deg: float
    plane: tuple[int, ...]
    area_A2: float
    n_atoms: int
    expansion_A: float
    bulk_energy_per_atom_eV: float
    reference: Atoms
    structure: Atoms

    def headline(self) -> str:
        axis = "".join(str(i) for i in self.rotation_axis)
        plane = "".join(str(i) for i in self.plane)
        return (
            f"Σ{self.sigma} [{axis}] {self.rotation_angle_deg:.2f}° ({plane}): "
            f"γ={self.grain_boundary_energy_J_m2:.3f} J/m² "
            f"(unrelaxed {self.unrelaxed_grain_boundary_energy_J_m2:.3f}), {self.n_atoms} atoms"
        )

    def plot(self) -> Any:
        """The relaxed boundary cell seen along its first lateral axis: every atom's height
        normal to the boundary against its position across it (the two boundaries show as
        the planes where the pattern changes)."""
        import plotly.graph_objects as go

        s = self.structure
        frac = s.get_scaled_positions()
        lengths = s.cell.lengths()
        fig = go.Figure(
            go.Scatter(
                x=frac[:, 1] * lengths[1],
                y=frac[:, 2] * lengths[2],
                mode="markers",
                marker={"size": 7, "color": frac[:, 0], "colorscale": "Viridis"},
                text=s.get_chemical_symbols(),
            )
        )
        fig.update_layout(
            title=self.headline(),
            xaxis_title="along b (Å)",
            yaxis_title="normal to the boundary, along c (Å)",
            height=520,
            width=420,
        )
        return fig


def grain_boundary_energy(
    bulk: Atoms,
    potential: Potential | str | None = None,
    *,
    sigma: int | None = None,
    rotation_axis: Sequence[int] = (1, 0, 0),
    rotation_angle: float | None = None,
    plane: Sequence[int] | None = None,
    expand_times: int = 3,
    ab_shift: Sequence[float] = (0.0, 0.0),
    relax: bool = True,
    fmax: float = 0.02,
    live: bool = False,
    callback: Callable[[PropertyProgress], Any] | None = None,
) -> GrainBoundaryResult:
    """Energy of a coincidence-site-lattice grain boundary of a cubic crystal.

    The boundary cell (two grains, two boundaries, periodic) is built by pymatgen's
    ``GrainBoundaryGenerator.gb_from_parameters`` from the conventional cell of the
    (relaxed) crystal, evaluated as built, then relaxed — the positions and the cell length
    normal to the boundary, the two lateral lengths fixed at the bulk's — and
    ``γ = (E − N e_bulk) / (2 A)``.

    Parameters
    ----------
    bulk
        A cubic crystal (periodic in 3D; not modified).
    potential
        A :class:`~nnp_lab.potentials.Potential`, a registered name or None (default model).
    sigma
        Σ of the boundary; its rotation angle about ``rotation_axis`` is looked up with
        ``GrainBoundaryGenerator.enum_sigma_cubic`` (the smallest angle of that Σ). Or give
        ``rotation_angle`` instead.
    rotation_axis
        Rotation axis (Miller indices), e.g. ``(1, 0, 0)``, ``(1, 1, 0)``, ``(1, 1, 1)``.
    rotation_angle
        Rotation angle in degrees (instead of ``sigma``).
    plane
        Boundary plane; None: the symmetric twist boundary normal to the axis (pymatgen's
        default). A plane in the zone of the axis gives a tilt boundary.
    expand_times
        Thickness of each grain in repeats of the CSL cell (pymatgen's ``expand_times``):
        the boundaries are further apart, and γ converged, as it grows.
    ab_shift
        Rigid in-plane shift of one grain (fractions of the boundary cell); γ depends on it.
    relax
        Relax the crystal first and the boundary cell after.
    fmax
        Force target of the relaxations, eV/Å (the cell's normal stress too).
    live, callback
        Progress bar; progress callback.

    Returns
    -------
    GrainBoundaryResult
        Flags: ``negative`` (γ below :data:`NEGATIVE_TOLERANCE_J_M2`: the boundary structure
        is more stable than the crystal),
        ``not_converged`` (the boundary relaxation did not reach ``fmax``).

    Raises
    ------
    InputError
        Not a cubic crystal; neither or both of ``sigma`` and ``rotation_angle``; a ``sigma``
        with no boundary for that axis (the message lists the ones there are).
    """
    from pymatgen.core.interface import GrainBoundaryGenerator
    from pymatgen.io.ase import AseAtomsAdaptor
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    require_periodic(bulk, "grain_boundary_energy")
    axis = _triple(rotation_axis, "rotation_axis")
    gb_plane = None if plane is None else _triple(plane, "plane")
    shift = tuple(float(x) for x in ab_shift)
    if len(shift) != 2:
        raise InputError(f"ab_shift must be two fractions, got {tuple(ab_shift)}")
    angle = _rotation_angle(sigma, rotation_angle, axis)
    expand_times = validation.integer("expand_times", expand_times, minimum=1)
    fmax = validation.number("fmax", fmax, strict=True, unit="eV/Å")
    started = time.perf_counter()
    pot = resolve(potential)
    pot.check(bulk)
    with Progress("grain_boundary", 2 + 2 * int(relax), live=live, callback=callback) as progress:
        reference = reference_cell(bulk, pot, relax=relax, fmax=fmax, progress=progress)
        analyzer = SpacegroupAnalyzer(AseAtomsAdaptor.get_structure(reference))
        if analyzer.get_crystal_system() != "cubic":
            raise InputError(
                f"grain_boundary_energy builds boundaries of cubic crystals; "
                f"{reference.get_chemical_formula()} is {analyzer.get_crystal_system()}"
            )
        conventional = analyzer.get_conventional_standard_structure()
        gb = GrainBoundaryGenerator(conventional).gb_from_parameters(
            axis,
            angle,
            expand_times=expand_times,
            plane=gb_plane,
            ab_shift=(shift[0], shift[1]),
        )
        built = AseAtomsAdaptor.get_atoms(gb)
        cell = Atoms(built.numbers, positions=built.positions, cell=built.cell, pbc=True)
        # rotate to a along x and b in the xy plane: the boundary normal (a × b) is then z,
        # the one cell component the relaxation frees (Voigt zz)
        cell.set_cell(cell.cell.standard_form()[0], scale_atoms=True)
        progress.stage(f"evaluating the {len(cell)}-atom boundary cell")
        e_bulk_cell, e_unrelaxed = (
            r["energy"] for r in evaluate_all(pot, [reference, cell], ("energy",))
        )
        e_bulk = float(e_bulk_cell) / len(reference)
        progress.advance("evaluated")
        flags: dict[str, str] = {}
        relaxed, energy = cell, float(e_unrelaxed)
        if relax:
            progress.stage("relaxing the boundary")
            relaxed = relaxed_copy(cell, pot, cell=True, fmax=fmax, cell_mask=_NORMAL_ONLY)
            energy = float(relaxed.info["energy_eV"])
            if not relaxed.info["relax_converged"]:
                flags["not_converged"] = (
                    f"the boundary relaxation did not reach fmax={fmax} eV/Å in 1000 steps; γ is "
                    "an upper bound"
                )
            progress.advance("boundary relaxed")
        progress.advance("done")
    area = float(np.linalg.norm(np.cross(cell.cell[0], cell.cell[1])))
    n = len(cell)
    gamma = (energy - n * e_bulk) / (2 * area) * EV_A2_TO_J_M2
    gamma0 = (float(e_unrelaxed) - n * e_bulk) / (2 * area) * EV_A2_TO_J_M2
    if gamma < NEGATIVE_TOLERANCE_J_M2:
        flags["negative"] = (
            f"γ is negative ({gamma:.3f} J/m²): the boundary cell is more stable than the "
            "crystal in this model — check the bulk phase"
        )
    result = GrainBoundaryResult(
        grain_boundary_energy_J_m2=gamma,
        unrelaxed_grain_boundary_energy_J_m2=gamma0,
        sigma=int(gb.sigma),
        rotation_axis=axis,
        rotation_angle_deg=float(angle),
        plane=tuple(int(i) for i in gb.gb_plane),
        area_A2=area,
        n_atoms=n,
        expansion_A=float(relaxed.cell[2, 2] - cell.cell[2, 2]),
        bulk_energy_per_atom_eV=e_bulk,
        reference=reference,
        structure=relaxed,
        flags=flags,
    )
    parameters = dict(
        sigma=sigma,
        rotation_axis=axis,
        rotation_angle=angle,
        plane=None if plane is None else tuple(plane),
        expand_times=expand_times,
        ab_shift=tuple(ab_shift),
        relax=relax,
        fmax=fmax,
    )
    return finish(result, pot, "grain_boundary_energy", parameters, started)


#: FrechetCellFilter mask (Voigt xx yy zz yz xz xy): only the length normal to the boundary.
_NORMAL_ONLY = (False, False, True, False, False, False)


def _triple(value: Sequence[int], name: str) -> tuple[int, int, int]:
    """Three integers, not all zero (an axis or a plane)."""
    v = tuple(int(i) for i in value)
    if len(v) != 3 or not any(v):
        raise InputError(f"{name} must be three integers, not all zero; got {tuple(value)}")
    return (v[0], v[1], v[2])


def _rotation_angle(sigma: int | None, angle: float | None, axis: tuple[int, int, int]) -> float:
    """The rotation angle (degrees) from ``sigma`` or ``angle`` (exactly one given)."""
    from pymatgen.core.interface import GrainBoundaryGenerator

    if (sigma is None) == (angle is None):
        raise InputError("give exactly one of sigma= (e.g. 5) and rotation_angle= (degrees)")
    if angle is not None:
        return validation.number("rotation_angle", angle, minimum=None, unit="degrees")
    sigma = validation.integer("sigma", sigma, minimum=1)
    table = GrainBoundaryGenerator.enum_sigma_cubic(max(sigma, 3), axis)
    if sigma not in table:
        raise InputError(
            f"there is no Σ{sigma} boundary about [{''.join(str(i) for i in axis)}] in a cubic "
            f"crystal; the Σ values up to {max(sigma, 3)} about this axis are "
            f"{sorted(table)} (or give rotation_angle=)"
        )
    return float(min(table[sigma]))
