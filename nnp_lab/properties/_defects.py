"""Point defects: the vacancy formation energy of a crystal."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms

from nnp_lab import validation
from nnp_lab.build import supercell as make_supercell
from nnp_lab.build import vacancy as remove_atom
from nnp_lab.errors import InputError
from nnp_lab.potentials import Potential
from nnp_lab.properties._common import (
    Progress,
    PropertyProgress,
    PropertyResult,
    evaluate_all,
    finish,
    reference_cell,
    relaxed_copy,
    repetitions_for_length,
    require_periodic,
    resolve,
)

__all__ = ["VacancyResult", "vacancy_formation"]

#: Smallest distance (Å) between a vacancy and its periodic images below which the result is
#: flagged (defect-defect interaction).
MIN_IMAGE_DISTANCE = 8.0


@dataclass(frozen=True, repr=False)
class VacancyResult(PropertyResult):
    """Vacancy formation energy.

    ``E_f = E(N−1 atoms, relaxed) − E(N atoms) + μ(removed element)``, with μ the energy per
    atom of the perfect crystal for an elemental crystal (or the ``chemical_potential_eV``
    given for a compound).

    Attributes
    ----------
    formation_energy_eV : float
        With the atoms around the vacancy relaxed (the value to compare with experiment).
    unrelaxed_formation_energy_eV : float
        With every atom at its perfect-crystal position.
    relaxation_energy_eV : float
        ``unrelaxed − relaxed`` (≥ 0 for a converged relaxation).
    element : str
        The element removed.
    chemical_potential_eV : float
        μ of the removed element used above.
    n_atoms : int
        Atoms in the perfect supercell.
    supercell : tuple of int
        Repetitions of the input cell.
    image_distance_A : float
        Shortest distance between the vacancy and its periodic images.
    bulk_energy_eV, defect_energy_eV : float
        Energies of the perfect and the relaxed defective supercell.
    reference : ase.Atoms
        The (relaxed) input cell.
    structure : ase.Atoms
        The relaxed defective supercell.
    """

    formation_energy_eV: float
    unrelaxed_formation_energy_eV: float
    relaxation_energy_eV: float
    element: str
    chemical_potential_eV: float
    n_atoms: int
    supercell: tuple[int, int, int]
    image_distance_A: float
    bulk_energy_eV: float
    defect_energy_eV: float
    reference: Atoms
    structure: Atoms

    def headline(self) -> str:
        return (
            f"E_f({self.element} vacancy)={self.formation_energy_eV:.3f} eV "
            f"(unrelaxed {self.unrelaxed_formation_energy_eV:.3f} eV), {self.n_atoms}-atom cell"
        )

    def plot(self) -> Any:
        """Unrelaxed and relaxed formation energies as bars."""
        import plotly.graph_objects as go

        fig = go.Figure(
            go.Bar(
                x=["unrelaxed", "relaxed"],
                y=[self.unrelaxed_formation_energy_eV, self.formation_energy_eV],
                text=[
                    f"{self.unrelaxed_formation_energy_eV:.3f}",
                    f"{self.formation_energy_eV:.3f}",
                ],
            )
        )
        fig.update_layout(
            title=f"{self.element} vacancy in a {self.n_atoms}-atom cell",
            yaxis_title="formation energy (eV)",
            height=340,
            width=420,
        )
        return fig


def vacancy_formation(
    bulk: Atoms,
    potential: Potential | str | None = None,
    *,
    index: int = 0,
    supercell: int | Sequence[int] | None = None,
    min_length: float = 10.0,
    chemical_potential_eV: float | None = None,
    relax: bool = True,
    fmax: float = 0.01,
    live: bool = False,
    callback: Callable[[PropertyProgress], Any] | None = None,
) -> VacancyResult:
    """Formation energy of a vacancy in a crystal, at constant volume.

    Parameters
    ----------
    bulk
        The crystal (periodic in 3D; not modified). With ``relax`` its cell and positions
        are relaxed first, and the supercell is built from the relaxed cell.
    potential
        A :class:`~nnp_lab.potentials.Potential`, a registered name or None (default model).
    index
        The atom of the input cell to remove (its copy in the first repetition).
    supercell
        Repetitions of the cell (an int or three); None: the smallest repetitions that make
        every cell width at least ``min_length`` Å.
    min_length
        See ``supercell``.
    chemical_potential_eV
        Energy of the removed element's reservoir, eV per atom. Needed for compounds (the
        formation energy of a vacancy depends on it); None for an elemental crystal: the
        perfect crystal's energy per atom.
    relax
        Relax the bulk cell first and the defective supercell's positions (the cell is kept:
        constant-volume formation energy, the usual convention). False: unrelaxed only.
    fmax
        Force target of the relaxations, eV/Å.
    live, callback
        Progress bar; progress callback (see :class:`~nnp_lab.properties.PropertyProgress`).

    Returns
    -------
    VacancyResult
        Flags: ``images_close`` (the vacancy is closer than :data:`MIN_IMAGE_DISTANCE` Å to
        its images: use a larger supercell), ``not_converged`` (the defect relaxation did not
        reach ``fmax``), ``negative`` (a negative formation energy: the crystal is not the
        model's ground state, or the wrong chemical potential).

    Raises
    ------
    InputError
        Not a crystal; a compound without ``chemical_potential_eV``; a bad index.
    """
    require_periodic(bulk, "vacancy_formation")
    if not -len(bulk) <= int(index) < len(bulk):
        raise InputError(f"index {index} is out of range for a cell of {len(bulk)} atoms")
    compound = len(set(bulk.get_chemical_symbols())) > 1
    if compound and chemical_potential_eV is None:
        raise InputError(
            f"{bulk.get_chemical_formula()} is a compound: the vacancy formation energy depends "
            "on the chemical potential of the removed element; pass chemical_potential_eV= (eV "
            "per atom, e.g. the energy per atom of its elemental crystal or molecule)"
        )
    min_length = validation.number("min_length", min_length, strict=True, unit="Å")
    fmax = validation.number("fmax", fmax, strict=True, unit="eV/Å")
    started = time.perf_counter()
    pot = resolve(potential)
    pot.check(bulk)
    with Progress("vacancy", 3 + 2 * int(relax), live=live, callback=callback) as progress:
        reference = reference_cell(bulk, pot, relax=relax, fmax=fmax, progress=progress)
        reps = (
            repetitions_for_length(reference.cell, min_length)
            if supercell is None
            else _repetitions(supercell)
        )
        perfect = make_supercell(reference, reps)
        removed = int(index) % len(bulk)
        defect = remove_atom(perfect, removed)
        element = perfect[removed].symbol
        progress.stage("evaluating the perfect and the defective cell")
        e_bulk, e_unrelaxed = (
            r["energy"] for r in evaluate_all(pot, [perfect, defect], ("energy",))
        )
        progress.advance("evaluated", 2)
        flags: dict[str, str] = {}
        if relax:
            progress.stage("relaxing around the vacancy")
            relaxed = relaxed_copy(defect, pot, cell=False, fmax=fmax)
            e_defect = float(relaxed.info["energy_eV"])
            if not relaxed.info["relax_converged"]:
                flags["not_converged"] = (
                    f"the relaxation around the vacancy did not reach fmax={fmax} eV/Å in 1000 "
                    "steps; the formation energy is an upper bound"
                )
            progress.advance("relaxed")
        else:
            relaxed, e_defect = defect, float(e_unrelaxed)
        progress.advance("done")
    n = len(perfect)
    mu = float(e_bulk) / n if chemical_potential_eV is None else float(chemical_potential_eV)
    e_f = e_defect - float(e_bulk) + mu
    e_f_unrelaxed = float(e_unrelaxed) - float(e_bulk) + mu
    image = _image_distance(perfect.cell[:])
    if image < MIN_IMAGE_DISTANCE:
        flags["images_close"] = (
            f"the vacancy is {image:.1f} Å from its periodic images (< {MIN_IMAGE_DISTANCE} Å): "
            "their interaction shifts the energy; use a larger supercell (min_length=...)"
        )
    if e_f < 0:
        flags["negative"] = (
            f"the formation energy is negative ({e_f:.3f} eV): the crystal is not the model's "
            "ground state at this volume, or the chemical potential is off"
        )
    result = VacancyResult(
        formation_energy_eV=e_f,
        unrelaxed_formation_energy_eV=e_f_unrelaxed,
        relaxation_energy_eV=e_f_unrelaxed - e_f,
        element=element,
        chemical_potential_eV=mu,
        n_atoms=n,
        supercell=reps,
        image_distance_A=image,
        bulk_energy_eV=float(e_bulk),
        defect_energy_eV=e_defect,
        reference=reference,
        structure=relaxed,
        flags=flags,
    )
    parameters = dict(
        index=index,
        supercell=reps,
        min_length=min_length,
        chemical_potential_eV=chemical_potential_eV,
        relax=relax,
        fmax=fmax,
    )
    return finish(result, pot, "vacancy_formation", parameters, started)


def _repetitions(value: int | Sequence[int]) -> tuple[int, int, int]:
    reps = (value,) * 3 if isinstance(value, (int, np.integer)) else tuple(value)
    if len(reps) != 3 or any(isinstance(r, bool) or int(r) != r or r < 1 for r in reps):
        raise InputError(f"supercell must be a positive integer or three of them, got {value!r}")
    return (int(reps[0]), int(reps[1]), int(reps[2]))


def _image_distance(cell: np.ndarray) -> float:
    """Shortest non-zero lattice vector of ``cell`` (searched over small combinations)."""
    best = np.inf
    for i in range(-2, 3):
        for j in range(-2, 3):
            for k in range(-2, 3):
                if i or j or k:
                    best = min(best, float(np.linalg.norm(np.array([i, j, k]) @ cell)))
    return best
