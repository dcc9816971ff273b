"""The Arrhenius fit of diffusivities measured at several temperatures: activation energy,
prefactor and the extrapolation to room temperature, each with its error."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnp_lab import validation
from nnp_lab.errors import InputError
from nnp_lab.properties._common import PropertyResult
from nnp_lab.properties._diffusion import K_B_EV, DiffusionResult
from nnp_lab.properties._trajectory import finish_analysis

__all__ = ["ArrheniusResult", "arrhenius", "MIN_ARRHENIUS_R2"]

#: R² of the Arrhenius fit below which it is flagged as poor.
MIN_ARRHENIUS_R2 = 0.95


@dataclass(frozen=True, repr=False)
class ArrheniusResult(PropertyResult):
    """Arrhenius fit ``D = D0 exp(−Ea / k_B T)`` of diffusivities at several temperatures.

    Attributes
    ----------
    activation_energy_eV, activation_energy_stderr_eV : float
    D0_cm2_s : float
        Prefactor (the fit's ``D`` at 1/T = 0).
    diffusivity_300K_cm2_s, diffusivity_300K_stderr_cm2_s : float
        The fit extrapolated to 300 K and its standard error (from the fit's covariance,
        ``D × σ(ln D)``; it assumes the mechanism stays the same down to 300 K).
    diffusivity_300K_interval_cm2_s : tuple of float
        ``D × exp(∓σ(ln D))`` at 300 K: the one-sigma range, asymmetric in D.
    conductivity_300K_mS_cm, conductivity_300K_stderr_mS_cm : float or None
        Nernst–Einstein conductivity at 300 K, when every input was a
        :class:`DiffusionResult` with a conductivity (same ions per volume and charge).
    temperatures_K, diffusivities_cm2_s : numpy.ndarray
        The fitted points.
    diffusivity_stderrs_cm2_s : numpy.ndarray or None
        Their standard errors (None when not all were known: unweighted fit).
    ln_D_fit_covariance : numpy.ndarray
        2×2 covariance of (slope, intercept) of ``ln D = intercept + slope / T``.
    r_squared : float
        Weighted coefficient of determination of the fit in ``ln D`` against ``1/T``.
    weighted : bool
        Whether the points were weighted by ``1 / σ(ln D)²``.
    species : str or None
    """

    activation_energy_eV: float
    activation_energy_stderr_eV: float
    D0_cm2_s: float
    diffusivity_300K_cm2_s: float
    diffusivity_300K_stderr_cm2_s: float
    diffusivity_300K_interval_cm2_s: tuple[float, float]
    conductivity_300K_mS_cm: float | None
    conductivity_300K_stderr_mS_cm: float | None
    temperatures_K: np.ndarray
    diffusivities_cm2_s: np.ndarray
    diffusivity_stderrs_cm2_s: np.ndarray | None
    ln_D_fit_covariance: np.ndarray
    r_squared: float
    weighted: bool
    species: str | None = None

    def diffusivity_at(self, temperature_K: float) -> tuple[float, float]:
        """The fitted diffusivity (cm²/s) at ``temperature_K`` and its standard error."""
        t = validation.number("temperature_K", temperature_K, strict=True, unit="K")
        slope = -self.activation_energy_eV / K_B_EV
        ln_d = np.log(self.D0_cm2_s) + slope / t
        g = np.array([1.0 / t, 1.0])
        sd_ln = float(np.sqrt(g @ self.ln_D_fit_covariance @ g))
        d = float(np.exp(ln_d))
        return d, d * sd_ln

    def headline(self) -> str:
        sigma = (
            ""
            if self.conductivity_300K_mS_cm is None
            else f", σ(300 K)={self.conductivity_300K_mS_cm:.3g} mS/cm"
        )
        return (
            f"Ea={self.activation_energy_eV:.3f} ± {self.activation_energy_stderr_eV:.3f} eV, "
            f"D0={self.D0_cm2_s:.3g} cm²/s, D(300 K)={self.diffusivity_300K_cm2_s:.3g} cm²/s"
            f"{sigma} ({len(self.temperatures_K)} temperatures)"
        )

    def plot(self) -> Any:
        """D (log scale, i.e. ln D) against 1000/T, the fit line down to 300 K."""
        import plotly.graph_objects as go

        x = 1000.0 / self.temperatures_K
        errors = None
        if self.diffusivity_stderrs_cm2_s is not None:
            errors = dict(type="data", array=self.diffusivity_stderrs_cm2_s)
        fig = go.Figure()
        fig.add_scatter(x=x, y=self.diffusivities_cm2_s, mode="markers", error_y=errors, name="MD")
        t_line = np.linspace(float(np.max(self.temperatures_K)), 300.0, 100)
        d_line = self.D0_cm2_s * np.exp(-self.activation_energy_eV / (K_B_EV * t_line))
        fig.add_scatter(
            x=1000.0 / t_line,
            y=d_line,
            mode="lines",
            line_dash="dash",
            name=f"Ea = {self.activation_energy_eV:.3f} eV",
        )
        fig.add_scatter(
            x=[1000.0 / 300.0],
            y=[self.diffusivity_300K_cm2_s],
            mode="markers",
            marker_symbol="star",
            name="300 K (extrapolated)",
        )
        fig.update_layout(
            title="Arrhenius plot",
            xaxis_title="1000 / T (1/K)",
            yaxis_title="D (cm²/s)",
            yaxis_type="log",
            height=380,
            width=600,
        )
        return fig


def _arrhenius_points(
    items: Sequence[Any],
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, list[DiffusionResult]]:
    """Temperatures, diffusivities and (when all known) their errors from the inputs."""
    temps, ds, errs, results = [], [], [], []
    e: Any
    for k, item in enumerate(items):
        if isinstance(item, DiffusionResult):
            t, d, e = item.temperature_K, item.diffusivity_cm2_s, item.diffusivity_stderr_cm2_s
            results.append(item)
        elif isinstance(item, (tuple, list)) and len(item) in (2, 3):
            t, d = item[0], item[1]
            e = item[2] if len(item) == 3 else None
        else:
            raise InputError(
                f"arrhenius: item {k} is {item!r}; give DiffusionResults or (T_K, D_cm2_s) or "
                "(T_K, D_cm2_s, stderr_cm2_s) tuples"
            )
        temps.append(validation.number(f"temperature {k}", t, strict=True, unit="K"))
        ds.append(validation.number(f"diffusivity {k}", d, strict=True, unit="cm²/s"))
        ok = e is not None and np.isfinite(e) and e > 0
        errs.append(validation.number(f"stderr {k}", e, strict=True) if ok else np.nan)
    if len(set(temps)) < 2:
        raise InputError(
            f"arrhenius needs diffusivities at two or more different temperatures, got {temps}"
        )
    err = np.array(errs)
    return np.array(temps), np.array(ds), (err if np.all(np.isfinite(err)) else None), results


def _line_fit(
    x: np.ndarray, y: np.ndarray, sigma: np.ndarray | None
) -> tuple[float, float, np.ndarray, float]:
    """Weighted least squares ``y = a + b x``: ``(b, a, cov[(b, a)], R²)``.

    With ``sigma`` the covariance is the absolute one, scaled up by the reduced χ² when the
    points scatter more than their errors say (never down); without, it is scaled by the
    residuals (NaN for two points)."""
    w = np.ones_like(x) if sigma is None else 1.0 / sigma**2
    sw = np.sum(w)
    xm, ym = np.sum(w * x) / sw, np.sum(w * y) / sw
    sxx = np.sum(w * (x - xm) ** 2)
    b = float(np.sum(w * (x - xm) * (y - ym)) / sxx)
    a = float(ym - b * xm)
    chi2 = float(np.sum(w * (y - a - b * x) ** 2))
    dof = len(x) - 2
    if sigma is None:
        scale = chi2 / dof if dof > 0 else np.nan
    else:
        scale = max(1.0, chi2 / dof) if dof > 0 else 1.0
    cov = scale * np.array([[1.0 / sxx, -xm / sxx], [-xm / sxx, 1.0 / sw + xm**2 / sxx]])
    total = float(np.sum(w * (y - ym) ** 2))
    r2 = 1.0 - chi2 / total if total > 0 else 1.0
    return b, a, cov, r2


def arrhenius(results_or_pairs: Sequence[Any]) -> ArrheniusResult:
    """Activation energy and room-temperature diffusivity from diffusivities at several
    temperatures: a weighted least-squares line of ``ln D`` against ``1/T``.

    Points are weighted by ``1 / σ(ln D)²`` with ``σ(ln D) = stderr / D`` when every point
    has a standard error; the errors of Ea and of the extrapolation come from the fit's
    covariance, scaled up by the reduced χ² when the points scatter more than their errors
    (as pymatgen's unweighted :func:`~pymatgen.analysis.diffusion.analyzer.fit_arrhenius`
    does with the residuals, which this matches when no errors are given).

    Parameters
    ----------
    results_or_pairs
        :class:`DiffusionResult` objects (their ``temperature_K``, ``diffusivity_cm2_s`` and
        ``diffusivity_stderr_cm2_s``), or ``(T_K, D_cm2_s)`` / ``(T_K, D_cm2_s,
        stderr_cm2_s)`` tuples.

    Returns
    -------
    ArrheniusResult
        Flags: ``few_temperatures`` (fewer than 3), ``poor_fit`` (R² below
        :data:`MIN_ARRHENIUS_R2`: ln D is not linear in 1/T), ``unreliable_inputs`` (some
        DiffusionResults carry flags).

    Raises
    ------
    InputError
        Fewer than two temperatures, non-positive D or T, unknown items.
    """
    started = time.perf_counter()
    if isinstance(results_or_pairs, (DiffusionResult, str)) or not isinstance(
        results_or_pairs, Sequence
    ):
        raise InputError(
            "arrhenius takes a list of DiffusionResults or of (T_K, D_cm2_s[, stderr]) tuples"
        )
    temps, ds, errs, results = _arrhenius_points(results_or_pairs)
    sigma_ln = None if errs is None else errs / ds
    b, a, cov, r2 = _line_fit(1.0 / temps, np.log(ds), sigma_ln)
    ea = -b * K_B_EV
    g = np.array([1.0 / 300.0, 1.0])
    sd_ln300 = float(np.sqrt(g @ cov @ g))
    d300 = float(np.exp(a + b / 300.0))
    sigma300 = sigma300_err = None
    if results and len(results) == len(temps):
        # σ/D ∝ 1/T at fixed ions per volume and charge: scale each run's factor to 300 K.
        factors = [r.conductivity_mS_cm / r.diffusivity_cm2_s * r.temperature_K for r in results]
        if all(np.isfinite(f) for f in factors):
            f300 = float(np.mean(factors)) / 300.0
            sigma300, sigma300_err = d300 * f300, d300 * sd_ln300 * f300
    species = {r.species for r in results}
    result = ArrheniusResult(
        activation_energy_eV=float(ea),
        activation_energy_stderr_eV=float(np.sqrt(cov[0, 0]) * K_B_EV),
        D0_cm2_s=float(np.exp(a)),
        diffusivity_300K_cm2_s=d300,
        diffusivity_300K_stderr_cm2_s=d300 * sd_ln300,
        diffusivity_300K_interval_cm2_s=(d300 * np.exp(-sd_ln300), d300 * np.exp(sd_ln300)),
        conductivity_300K_mS_cm=sigma300,
        conductivity_300K_stderr_mS_cm=sigma300_err,
        temperatures_K=temps,
        diffusivities_cm2_s=ds,
        diffusivity_stderrs_cm2_s=errs,
        ln_D_fit_covariance=cov,
        r_squared=r2,
        weighted=errs is not None,
        species=species.pop() if len(species) == 1 else None,
        flags=_arrhenius_flags(temps, r2, results),
    )
    source = {"input": "DiffusionResults" if results else "(T, D) points", "n_points": len(temps)}
    return finish_analysis(result, "arrhenius", {}, source, started)


def _arrhenius_flags(
    temps: np.ndarray, r2: float, results: list[DiffusionResult]
) -> dict[str, str]:
    flags: dict[str, str] = {}
    n = len(set(temps.tolist()))
    if n < 3:
        flags["few_temperatures"] = (
            f"only {n} temperatures: a line through two points cannot show whether ln D is "
            "linear in 1/T, and the error of Ea rests on the errors of D alone; add at least "
            "one more temperature"
        )
    if n >= 3 and not r2 >= MIN_ARRHENIUS_R2:
        flags["poor_fit"] = (
            f"ln D is not linear in 1/T (R² = {r2:.3f}): the diffusivities are unconverged or "
            "the mechanism changes over the range (a phase transition, melting); check the "
            "plot, run longer, or fit a narrower range"
        )
    shaky = [f"{r.temperature_K:g} K ({', '.join(r.flags)})" for r in results if r.flags]
    if shaky:
        flags["unreliable_inputs"] = (
            f"some diffusivities carry warnings: {'; '.join(shaky)}; Ea inherits them"
        )
    return flags
