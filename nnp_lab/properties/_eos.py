"""Equation of state: energy against volume, fitted with ASE's :class:`~ase.eos.EquationOfState`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.eos import EquationOfState, eos_names

from nnp_lab import validation
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
    require_periodic,
    resolve,
)

__all__ = ["EOSResult", "eos", "EOS_FORMS", "EV_A3_TO_GPA"]

#: eV/Å³ -> GPa.
EV_A3_TO_GPA = 1.0 / units.GPa
#: The forms ``eos(form=...)`` accepts (ASE's names).
EOS_FORMS = tuple(eos_names)
#: EOS forms with a fitted pressure derivative of the bulk modulus (the others give None).
_WITH_DERIVATIVE = ("murnaghan", "birch", "birchmurnaghan", "pouriertarantola", "vinet")
#: Fit residual (RMS, meV per atom) above which the fit is flagged as poor.
MAX_RESIDUAL_MEV_PER_ATOM = 1.0


@dataclass(frozen=True, repr=False)
class EOSResult(PropertyResult):
    """Energy–volume curve and its fit.

    Attributes
    ----------
    v0 : float
        Equilibrium volume of the cell, Å³ (per cell as given, not per atom).
    e0 : float
        Energy at ``v0``, eV per cell.
    bulk_modulus_GPa : float
        Bulk modulus at ``v0``.
    bulk_modulus_derivative : float or None
        dB/dP at ``v0`` (None for forms without it: ``sj``, ``taylor``, ``p3``,
        ``anton-schmidt``).
    form : str
        The EOS form fitted (ASE's name).
    volumes_A3, energies_eV : numpy.ndarray
        The sampled cell volumes and energies.
    fit_residual_meV_per_atom : float
        RMS difference between the fitted curve and the energies, meV per atom.
    n_atoms : int
    reference : ase.Atoms
        The structure the volumes were scaled from (relaxed when ``relax=True``).
    structures : list of ase.Atoms
        The scaled structures with their energies (positions relaxed when asked).
    """

    v0: float
    e0: float
    bulk_modulus_GPa: float
    bulk_modulus_derivative: float | None
    form: str
    volumes_A3: np.ndarray
    energies_eV: np.ndarray
    fit_residual_meV_per_atom: float
    n_atoms: int
    reference: Atoms
    structures: list[Atoms] = field(default_factory=list)

    def energy_at(self, volumes: Any) -> np.ndarray:
        """The fitted energy (eV) at cell volumes (Å³)."""
        fit = EquationOfState(self.volumes_A3, self.energies_eV, eos=self.form)
        fit.fit(warn=False)
        v = np.asarray(volumes, dtype=float)
        if self.form == "sj":
            return np.asarray(fit.fit0(v ** (-1.0 / 3.0)))
        return np.asarray(fit.func(v, *fit.eos_parameters))

    def headline(self) -> str:
        bp = (
            ""
            if self.bulk_modulus_derivative is None
            else f", B'={self.bulk_modulus_derivative:.2f}"
        )
        return (
            f"v0={self.v0:.3f} Å³ ({self.v0 / self.n_atoms:.3f} per atom), e0={self.e0:.4f} eV, "
            f"B={self.bulk_modulus_GPa:.1f} GPa{bp} ({self.form})"
        )

    def plot(self) -> Any:
        """Energy per atom against volume per atom: the points and the fitted curve."""
        import plotly.graph_objects as go

        n = self.n_atoms
        v = np.linspace(self.volumes_A3.min(), self.volumes_A3.max(), 200)
        fig = go.Figure()
        fig.add_scatter(
            x=self.volumes_A3 / n, y=self.energies_eV / n, mode="markers", name="computed"
        )
        fig.add_scatter(x=v / n, y=self.energy_at(v) / n, mode="lines", name=f"{self.form} fit")
        fig.add_vline(x=self.v0 / n, line_dash="dot", annotation_text="V0")
        fig.update_layout(
            title=f"EOS: B = {self.bulk_modulus_GPa:.1f} GPa",
            xaxis_title="volume per atom (Å³)",
            yaxis_title="energy per atom (eV)",
            height=380,
            width=600,
        )
        return fig


def eos(
    atoms: Atoms,
    potential: Potential | str | None = None,
    *,
    volume_range: float = 0.06,
    n_points: int = 11,
    form: str = "birchmurnaghan",
    relax: bool = True,
    relax_positions: bool = False,
    fmax: float = 0.01,
    live: bool = False,
    callback: Callable[[PropertyProgress], Any] | None = None,
) -> EOSResult:
    """Equation of state of a crystal: energies at scaled volumes, fitted.

    The cell is scaled isotropically to volumes from ``(1 - volume_range)`` to
    ``(1 + volume_range)`` times the reference volume; all scaled structures are evaluated in
    one batched model call (or, with ``relax_positions``, each relaxed at fixed cell), and
    the energies are fitted with :class:`ase.eos.EquationOfState`.

    Parameters
    ----------
    atoms
        A bulk crystal, periodic in 3D (not modified).
    potential
        A :class:`~nnp_lab.potentials.Potential`, a registered name or None (default model).
    volume_range
        Largest relative volume change, e.g. 0.06 for ±6 %.
    n_points
        Number of volumes (≥ 5).
    form
        EOS form (ASE's names, :data:`EOS_FORMS`): ``"birchmurnaghan"`` (default),
        ``"vinet"``, ``"murnaghan"``, ``"sj"``, ...
    relax
        First relax the cell and positions (``FrechetCellFilter``, to ``fmax``) and scale
        the relaxed structure; False: scale ``atoms`` as given.
    relax_positions
        Relax the atomic positions at every volume (needed when the cell has internal
        degrees of freedom; not for fcc/bcc/diamond elements, where symmetry fixes them).
    fmax
        Force target of the relaxations, eV/Å.
    live
        Show a progress bar.
    callback
        Called with a :class:`~nnp_lab.properties.PropertyProgress` at each stage.

    Returns
    -------
    EOSResult
        ``v0`` (Å³ per cell), ``e0`` (eV), ``bulk_modulus_GPa``, ``bulk_modulus_derivative``,
        the sampled points, the fit residual; flags ``poor_fit`` (RMS residual above
        :data:`MAX_RESIDUAL_MEV_PER_ATOM`), ``minimum_outside`` (the fitted minimum is not
        inside the sampled volumes: widen ``volume_range`` or relax first) and
        ``unphysical`` (B ≤ 0).

    Raises
    ------
    InputError
        A structure that is not a 3D crystal, bad options, elements the model lacks.
    """
    require_periodic(atoms, "eos")
    volume_range = validation.number("volume_range", volume_range, strict=True)
    if not volume_range < 0.5:
        raise InputError(f"volume_range must be below 0.5 (±50 %), got {volume_range}")
    n_points = validation.integer("n_points", n_points, minimum=5)
    form = validation.choice("form", form, EOS_FORMS)
    fmax = validation.number("fmax", fmax, strict=True, unit="eV/Å")
    started = time.perf_counter()
    pot = resolve(potential)
    pot.check(atoms)
    total = int(relax) + n_points + 1
    with Progress("eos", total, live=live, callback=callback) as progress:
        reference = reference_cell(atoms, pot, relax=relax, fmax=fmax, progress=progress)
        structures = scaled_structures(reference, volume_range, n_points)
        if relax_positions:
            relaxed = []
            for k, s in enumerate(structures):
                relaxed.append(relaxed_copy(s, pot, cell=False, fmax=fmax))
                progress.advance(f"relaxed volume {k + 1} of {n_points}")
            structures = relaxed
            energies = np.array([s.info["energy_eV"] for s in structures])
        else:
            progress.stage(f"evaluating {n_points} scaled cells")
            results = evaluate_all(pot, structures, ("energy",))
            energies = np.array([r["energy"] for r in results])
            for s, e in zip(structures, energies):
                s.info["energy_eV"] = float(e)
            progress.advance(f"evaluated {n_points} cells", n_points)
        volumes = np.array([s.get_volume() for s in structures])
        result = _fit(volumes, energies, form, len(atoms), reference, structures)
        progress.advance("fitted")
    parameters = dict(
        volume_range=volume_range,
        n_points=n_points,
        form=form,
        relax=relax,
        relax_positions=relax_positions,
        fmax=fmax,
    )
    return finish(result, pot, "eos", parameters, started)


def scaled_structures(reference: Atoms, volume_range: float, n_points: int) -> list[Atoms]:
    """Copies of ``reference`` with the cell scaled isotropically to volumes
    ``V_ref × (1 + x)`` for ``x`` evenly spaced over ``±volume_range`` (atoms follow)."""
    out = []
    for x in np.linspace(-volume_range, volume_range, n_points):
        s = reference.copy()
        s.calc = None
        s.set_cell(reference.cell[:] * (1.0 + x) ** (1.0 / 3.0), scale_atoms=True)
        s.info["volume_strain"] = float(x)
        out.append(s)
    return out


def _fit(
    volumes: np.ndarray,
    energies: np.ndarray,
    form: str,
    n_atoms: int,
    reference: Atoms,
    structures: list[Atoms],
) -> EOSResult:
    flags: dict[str, str] = {}
    fit = EquationOfState(volumes, energies, eos=form)
    try:
        v0, e0, bulk = fit.fit(warn=False)
    except (RuntimeError, ValueError) as exc:  # scipy's curve_fit did not converge
        raise InputError(
            f"the {form} fit of the energies did not converge ({exc}); the curve has no "
            "minimum in the sampled range: relax the structure first (relax=True) or widen "
            "volume_range"
        ) from None
    if form == "sj":
        fitted = fit.fit0(volumes ** (-1.0 / 3.0))
    else:
        fitted = fit.func(volumes, *fit.eos_parameters)
    residual = 1000.0 * float(np.sqrt(np.mean((np.asarray(fitted) - energies) ** 2))) / n_atoms
    derivative = float(fit.eos_parameters[2]) if form in _WITH_DERIVATIVE else None
    bulk_GPa = float(bulk) * EV_A3_TO_GPA
    if residual > MAX_RESIDUAL_MEV_PER_ATOM:
        flags["poor_fit"] = (
            f"the {form} fit misses the energies by {residual:.2f} meV/atom (RMS), more than "
            f"{MAX_RESIDUAL_MEV_PER_ATOM} meV/atom: the energies are noisy or the range is too "
            "wide for this form; check the plot, try a smaller volume_range"
        )
    if not volumes.min() < v0 < volumes.max():
        flags["minimum_outside"] = (
            f"the fitted minimum V0 = {v0:.3f} Å³ lies outside the sampled volumes "
            f"({volumes.min():.3f}–{volumes.max():.3f} Å³): relax the structure first "
            "(relax=True) or widen volume_range"
        )
    if not bulk_GPa > 0:
        flags["unphysical"] = f"the fitted bulk modulus is {bulk_GPa:.3g} GPa (≤ 0)"
    return EOSResult(
        v0=float(v0),
        e0=float(e0),
        bulk_modulus_GPa=bulk_GPa,
        bulk_modulus_derivative=derivative,
        form=form,
        volumes_A3=volumes,
        energies_eV=energies,
        fit_residual_meV_per_atom=residual,
        n_atoms=n_atoms,
        reference=reference,
        structures=structures,
        flags=flags,
    )
