"""Elastic constants from stress–strain, fitted with pymatgen's
:meth:`~pymatgen.analysis.elasticity.ElasticTensor.from_independent_strains`."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms, units

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

__all__ = ["ElasticResult", "elastic", "VOIGT_LABELS"]

#: Voigt order of :attr:`ElasticResult.C_GPa` rows and columns.
VOIGT_LABELS = ("xx", "yy", "zz", "yz", "xz", "xy")
#: |C_ij − C_ji| (GPa) above which the fitted tensor is flagged as not symmetric.
MAX_ASYMMETRY_GPA = 2.0
#: Stress left in the reference (GPa) above which it is flagged as not relaxed.
MAX_REFERENCE_STRESS_GPA = 0.2


@dataclass(frozen=True, repr=False)
class ElasticResult(PropertyResult):
    """The elastic tensor and the moduli that follow from it.

    Attributes
    ----------
    C_GPa : numpy.ndarray
        6×6 stiffness in GPa, Voigt order xx yy zz yz xz xy (engineering shear strains), as
        fitted (not symmetrised; see ``flags``).
    bulk_modulus_voigt_GPa, bulk_modulus_reuss_GPa, bulk_modulus_hill_GPa : float
    shear_modulus_voigt_GPa, shear_modulus_reuss_GPa, shear_modulus_hill_GPa : float
    youngs_modulus_GPa : float
        From the Hill bulk and shear moduli, ``9 K G / (3 K + G)``.
    poisson_ratio : float
        ``(3 K − 2 G) / (6 K + 2 G)`` from the Hill moduli.
    eigenvalues_GPa : numpy.ndarray
        Eigenvalues of the symmetrised 6×6 tensor (all > 0: Born-stable).
    born_stable : bool
    strain_magnitudes : tuple of float
        The normal and shear strain amounts applied (e.g. ±0.5 %, ±1 %).
    strains : numpy.ndarray
        ``(n, 3, 3)`` Green–Lagrange strains of the deformed cells.
    stresses_GPa : numpy.ndarray
        ``(n, 3, 3)`` stresses of the deformed cells (tensile positive, ASE's sign).
    fit_residual_GPa : float
        RMS difference between the computed stresses and ``C : ε``.
    reference_stress_GPa : numpy.ndarray
        Voigt stress left in the reference structure (subtracted before the fit).
    relax_ions : bool
    reference : ase.Atoms
        The (relaxed) structure that was strained.
    structures : list of ase.Atoms
        The deformed structures (ions relaxed when ``relax_ions``).
    """

    C_GPa: np.ndarray
    bulk_modulus_voigt_GPa: float
    bulk_modulus_reuss_GPa: float
    bulk_modulus_hill_GPa: float
    shear_modulus_voigt_GPa: float
    shear_modulus_reuss_GPa: float
    shear_modulus_hill_GPa: float
    youngs_modulus_GPa: float
    poisson_ratio: float
    eigenvalues_GPa: np.ndarray
    born_stable: bool
    strain_magnitudes: tuple[float, ...]
    strains: np.ndarray
    stresses_GPa: np.ndarray
    fit_residual_GPa: float
    reference_stress_GPa: np.ndarray
    relax_ions: bool
    reference: Atoms
    structures: list[Atoms] = field(default_factory=list)

    def headline(self) -> str:
        c = self.C_GPa
        return (
            f"C11={c[0, 0]:.1f}, C12={c[0, 1]:.1f}, C44={c[3, 3]:.1f} GPa; "
            f"K_H={self.bulk_modulus_hill_GPa:.1f}, G_H={self.shear_modulus_hill_GPa:.1f} GPa, "
            f"ν={self.poisson_ratio:.3f}"
        )

    def plot(self) -> Any:
        """The 6×6 tensor as an annotated heat map."""
        import plotly.graph_objects as go

        c = np.round(self.C_GPa, 1)
        fig = go.Figure(
            go.Heatmap(
                z=c,
                x=list(VOIGT_LABELS),
                y=list(VOIGT_LABELS),
                text=c,
                texttemplate="%{text}",
                colorscale="RdBu",
                zmid=0,
                colorbar={"title": "GPa"},
            )
        )
        fig.update_yaxes(autorange="reversed")
        fig.update_layout(
            title=(
                f"C (GPa): K_H {self.bulk_modulus_hill_GPa:.1f}, "
                f"G_H {self.shear_modulus_hill_GPa:.1f}, E {self.youngs_modulus_GPa:.1f}"
            ),
            height=420,
            width=480,
        )
        return fig


def elastic(
    atoms: Atoms,
    potential: Potential | str | None = None,
    *,
    strains: Sequence[float] = (-0.01, -0.005, 0.005, 0.01),
    relax: bool = True,
    relax_ions: bool = True,
    fmax: float = 0.005,
    live: bool = False,
    callback: Callable[[PropertyProgress], Any] | None = None,
) -> ElasticResult:
    """Elastic tensor of a crystal from independent normal and shear strains.

    Each of the six Voigt strain components is applied alone at every amount in ``strains``
    (``Strain.from_index_amount``, pymatgen's convention: engineering shear); the stresses
    of the deformed cells — with the ions relaxed at fixed cell, unless ``relax_ions`` is
    False, in which case all cells go through one batched model call — are fitted
    component by component with :meth:`ElasticTensor.from_independent_strains`, the stress
    of the reference subtracted.

    Parameters
    ----------
    atoms
        A bulk crystal, periodic in 3D (not modified).
    potential
        A :class:`~nnp_lab.potentials.Potential`, a registered name or None (default model).
    strains
        Strain amounts applied to every component (non-zero; default ±0.5 % and ±1 %).
    relax
        First relax the reference (cell and positions) to ``fmax``.
    relax_ions
        Relax the ions of every deformed cell (needed for crystals with internal degrees of
        freedom, e.g. diamond Si's C44; not for one-atom cells).
    fmax
        Force target of the relaxations, eV/Å (tight: stresses converge with the forces).
    live
        Show a progress bar.
    callback
        Called with a :class:`~nnp_lab.properties.PropertyProgress` at each stage.

    Returns
    -------
    ElasticResult
        ``C_GPa`` and the Voigt/Reuss/Hill moduli; flags ``not_symmetric`` (C_ij and C_ji
        differ by more than :data:`MAX_ASYMMETRY_GPA`), ``not_positive_definite`` (Born
        unstable: an eigenvalue ≤ 0), ``reference_not_relaxed`` (stress above
        :data:`MAX_REFERENCE_STRESS_GPA` left in the reference).

    Raises
    ------
    InputError
        A structure that is not a 3D crystal, bad strains, elements the model lacks.
    """
    from pymatgen.analysis.elasticity import ElasticTensor, Strain, Stress

    require_periodic(atoms, "elastic")
    amounts = validation.number_list("strains", strains, minimum=None)
    if len(amounts) < 2 or any(a == 0 or abs(a) > 0.1 for a in amounts):
        raise InputError(
            f"strains must hold at least two non-zero amounts within ±0.1, got {list(strains)}"
        )
    fmax = validation.number("fmax", fmax, strict=True, unit="eV/Å")
    started = time.perf_counter()
    pot = resolve(potential)
    pot.check(atoms)
    n = 6 * len(amounts)
    total = int(relax) + 2 + (n if relax_ions else 0)
    with Progress("elastic", total, live=live, callback=callback) as progress:
        reference = reference_cell(atoms, pot, relax=relax, fmax=fmax, progress=progress)
        deformed, green = [], []
        for index in range(6):
            for amount in amounts:
                strain = Strain.from_index_amount(index, amount)
                deformation = strain.get_deformation_matrix()
                s = reference.copy()
                s.calc = None
                s.set_cell(reference.cell[:] @ np.asarray(deformation).T, scale_atoms=True)
                s.info.update(strain_index=index, strain_amount=float(amount))
                deformed.append(s)
                green.append(Strain(deformation.green_lagrange_strain))
        if relax_ions:
            relaxed = []
            for k, s in enumerate(deformed):
                relaxed.append(relaxed_copy(s, pot, cell=False, fmax=fmax))
                progress.advance(f"relaxed the ions of deformed cell {k + 1} of {n}")
            deformed = relaxed
        # the stresses of the reference and of every deformed cell, in one batched call
        progress.stage(f"evaluating {n + 1} cells")
        results = evaluate_all(pot, [reference] + deformed, ("stress",))
        ref_stress = results[0]["stress"]
        voigt_stresses = [r["stress"] for r in results[1:]]
        progress.advance(f"evaluated {n + 1} cells")
        to_GPa = 1.0 / units.GPa
        stresses = [Stress.from_voigt(np.asarray(v) * to_GPa) for v in voigt_stresses]
        eq = Stress.from_voigt(np.asarray(ref_stress) * to_GPa)
        tensor = ElasticTensor.from_independent_strains(green, stresses, eq_stress=eq)
        progress.advance("fitted")
    result = _result(tensor, green, stresses, eq, amounts, relax_ions, reference, deformed)
    parameters = dict(strains=amounts, relax=relax, relax_ions=relax_ions, fmax=fmax)
    return finish(result, pot, "elastic", parameters, started)


def _result(
    tensor: Any,
    strains: list[Any],
    stresses: list[Any],
    eq: Any,
    amounts: list[float],
    relax_ions: bool,
    reference: Atoms,
    structures: list[Atoms],
) -> ElasticResult:
    C = np.asarray(tensor.voigt, dtype=float)
    sym = 0.5 * (C + C.T)
    eig = np.linalg.eigvalsh(sym)
    strain_arr = np.array([np.asarray(s) for s in strains])
    stress_arr = np.array([np.asarray(s) for s in stresses])
    predicted = np.array([np.asarray(tensor.calculate_stress(s)) for s in strains])
    residual = float(np.sqrt(np.mean((predicted - (stress_arr - np.asarray(eq))) ** 2)))
    k_v, k_r = float(tensor.k_voigt), float(tensor.k_reuss)
    g_v, g_r = float(tensor.g_voigt), float(tensor.g_reuss)
    k_h, g_h = 0.5 * (k_v + k_r), 0.5 * (g_v + g_r)
    flags: dict[str, str] = {}
    asym = float(np.max(np.abs(C - C.T)))
    if asym > MAX_ASYMMETRY_GPA:
        flags["not_symmetric"] = (
            f"the fitted tensor is not symmetric: C_ij and C_ji differ by up to {asym:.1f} GPa "
            f"(> {MAX_ASYMMETRY_GPA} GPa); the stresses are noisy — relax the reference and the "
            "ions more tightly (smaller fmax) or use larger strains"
        )
    if not eig.min() > 0:
        flags["not_positive_definite"] = (
            f"the tensor has an eigenvalue of {eig.min():.1f} GPa (≤ 0): the crystal is not "
            "mechanically (Born) stable in this model, or the reference is not at a minimum"
        )
    eq_voigt = np.asarray(eq.voigt, dtype=float)
    if np.abs(eq_voigt).max() > MAX_REFERENCE_STRESS_GPA:
        flags["reference_not_relaxed"] = (
            f"the reference holds a stress of up to {np.abs(eq_voigt).max():.2f} GPa "
            f"(> {MAX_REFERENCE_STRESS_GPA} GPa): the constants are those of a strained crystal; "
            "use relax=True"
        )
    return ElasticResult(
        C_GPa=C,
        bulk_modulus_voigt_GPa=k_v,
        bulk_modulus_reuss_GPa=k_r,
        bulk_modulus_hill_GPa=k_h,
        shear_modulus_voigt_GPa=g_v,
        shear_modulus_reuss_GPa=g_r,
        shear_modulus_hill_GPa=g_h,
        youngs_modulus_GPa=9 * k_h * g_h / (3 * k_h + g_h),
        poisson_ratio=(3 * k_h - 2 * g_h) / (6 * k_h + 2 * g_h),
        eigenvalues_GPa=eig,
        born_stable=bool(eig.min() > 0),
        strain_magnitudes=tuple(amounts),
        strains=strain_arr,
        stresses_GPa=stress_arr,
        fit_residual_GPa=residual,
        reference_stress_GPa=eq_voigt,
        relax_ions=relax_ions,
        reference=reference,
        structures=structures,
        flags=flags,
    )
