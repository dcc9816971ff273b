"""Tracer diffusion from an MD trajectory (pymatgen-analysis-diffusion's
:class:`~pymatgen.analysis.diffusion.analyzer.DiffusionAnalyzer`); the Arrhenius fit of
diffusivities at several temperatures is in :mod:`._arrhenius`."""

from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms, units
from scipy import constants

from nnp_lab import validation
from nnp_lab.errors import InputError
from nnp_lab.properties._common import PropertyResult
from nnp_lab.properties._trajectory import (
    Frames,
    TrajectoryInput,
    finish_analysis,
    frame_interval_fs,
    read_frames,
    skip_frames,
    species_indices,
    unwrapped_displacements,
)

__all__ = [
    "DiffusionResult",
    "diffusion",
    "default_charge",
    "K_B_EV",
    "nernst_einstein_mS_cm",
    "DIFFUSION_METHODS",
    "HOP_DISTANCE_A",
    "MIN_FIT_LAG_FS",
]

#: The ``method``s :func:`diffusion` accepts.
DIFFUSION_METHODS = ("pymatgen",)
#: Default hop length (Å) below which a species' mean displacement counts as "too few hops".
HOP_DISTANCE_A = 2.5
#: DiffusionAnalyzer (smoothed="max") fits the MSD from this lag on (fs), past the ballistic
#: and vibrational regime; shorter runs fall back to its unsmoothed single-origin MSD.
MIN_FIT_LAG_FS = 1000.0
#: |log-log slope − 1| of MSD(t) above which the MSD is flagged as not diffusive.
MAX_LOGLOG_DEVIATION = 0.3
#: Largest step of an atom between two frames, as a fraction of the cell width, that the
#: minimum-image unwrapping is trusted with.
MAX_STEP_FRACTION = 0.25
#: 1 Å²/fs in cm²/s.
_A2_FS_TO_CM2_S = 0.1
K_B_EV = units.kB  # eV/K


def default_charge(species: str) -> float:
    """The charge :func:`diffusion` assumes for the Nernst–Einstein conductivity: the
    element's first common oxidation state in pymatgen (Li +1, Na +1, Mg +2, O −2, F −1,
    Cu +2, Fe +2, ...); NaN for elements with none (noble gases)."""
    from pymatgen.core import Element

    states = Element(species).common_oxidation_states
    return float(states[0]) if states else float("nan")


def nernst_einstein_mS_cm(
    diffusivity_cm2_s: Any, n_ions: int, volume_A3: float, charge: float, temperature_K: float
) -> Any:
    """Ionic conductivity (mS/cm) of ``n_ions`` ions of ``charge`` (in e) in ``volume_A3``
    diffusing independently with ``diffusivity_cm2_s`` (Haven ratio 1):
    ``σ = n z² e² D / (V k_B T)`` — the formula of pymatgen's ``get_conversion_factor``."""
    n_per_m3 = n_ions / (volume_A3 * 1e-30)
    factor = n_per_m3 * (charge * constants.e) ** 2 / (constants.k * temperature_K)  # S/m per m²/s
    return np.asarray(diffusivity_cm2_s) * 1e-4 * factor * 10.0  # S/m -> mS/cm


@dataclass(frozen=True, repr=False)
class DiffusionResult(PropertyResult):
    """Tracer diffusivity and mean square displacement of one species.

    Attributes
    ----------
    species : str
    n_atoms_species : int
    temperature_K : float
        The run's temperature (thermostat target, mean kinetic temperature or given).
    diffusivity_cm2_s, diffusivity_stderr_cm2_s : float
        Tracer diffusivity ``MSD / 6t`` (slope of the fitted MSD) and its standard error
        from the spread of the per-atom diffusivities (see :func:`diffusion`).
    diffusivity_components_cm2_s, diffusivity_components_stderr_cm2_s : numpy.ndarray
        ``(3,)``: along Cartesian x, y, z (``MSD_x / 2t``, ...).
    conductivity_mS_cm, conductivity_stderr_mS_cm : float
        Nernst–Einstein conductivity at ``temperature_K`` with ``charge`` (NaN when the
        charge is unknown).
    conductivity_components_mS_cm : numpy.ndarray
        ``(3,)``, x, y, z.
    charge : float
        Ion charge (e) used for the conductivity.
    time_ps : numpy.ndarray
        ``(n_t,)`` lags at which the MSD is given and fitted.
    msd_A2, msd_components_A2 : numpy.ndarray
        ``(n_t,)`` total and ``(n_t, 3)`` x, y, z MSD of the species, averaged over atoms
        and time origins (drift of the other atoms removed).
    msd_fit_intercept_A2 : float
        Intercept of the linear fit ``MSD = 6 D t + c`` (vibrational amplitude).
    loglog_slope : float
        Slope of log MSD against log t over the fitted lags (1 when diffusive).
    mean_displacement_A, max_displacement_A : float
        Mean and largest distance of the species' atoms from where they started, over the
        analysed run.
    n_hops_estimate : float
        ``n_atoms_species × MSD(longest lag) / hop_distance_A²``: the number of hops of
        ``hop_distance_A`` that would give the measured MSD.
    hop_distance_A : float
    run_length_ps, interval_fs : float
        Length of the analysed run and time between its frames.
    smoothing : str
        ``"max"`` (DiffusionAnalyzer's multi-origin MSD from 1 ps on) or ``"none"`` (its
        single-origin MSD, for runs too short for ``"max"``).
    """

    species: str
    n_atoms_species: int
    temperature_K: float
    diffusivity_cm2_s: float
    diffusivity_stderr_cm2_s: float
    diffusivity_components_cm2_s: np.ndarray
    diffusivity_components_stderr_cm2_s: np.ndarray
    conductivity_mS_cm: float
    conductivity_stderr_mS_cm: float
    conductivity_components_mS_cm: np.ndarray
    charge: float
    time_ps: np.ndarray
    msd_A2: np.ndarray
    msd_components_A2: np.ndarray
    msd_fit_intercept_A2: float
    loglog_slope: float
    mean_displacement_A: float
    max_displacement_A: float
    n_hops_estimate: float
    hop_distance_A: float
    run_length_ps: float
    interval_fs: float
    smoothing: str

    def headline(self) -> str:
        dx, dy, dz = self.diffusivity_components_cm2_s
        sigma = (
            ""
            if not np.isfinite(self.conductivity_mS_cm)
            else f", σ={self.conductivity_mS_cm:.3g} mS/cm (z={self.charge:+g})"
        )
        return (
            f"D({self.species})={self.diffusivity_cm2_s:.3g} ± "
            f"{self.diffusivity_stderr_cm2_s:.2g} cm²/s at {self.temperature_K:.0f} K "
            f"(x/y/z {dx:.2g}/{dy:.2g}/{dz:.2g}){sigma}; {self.run_length_ps:.3g} ps, "
            f"{self.n_atoms_species} atoms"
        )

    def plot(self) -> Any:
        """MSD (total and x, y, z) against time, with the fitted line ``6 D t + c``."""
        import plotly.graph_objects as go

        t = self.time_ps
        fig = go.Figure()
        fig.add_scatter(x=t, y=self.msd_A2, mode="lines", name="total")
        for k, axis in enumerate("xyz"):
            fig.add_scatter(x=t, y=self.msd_components_A2[:, k], mode="lines", name=axis)
        slope_per_ps = 6.0 * self.diffusivity_cm2_s / _A2_FS_TO_CM2_S * 1000.0
        fig.add_scatter(
            x=t,
            y=slope_per_ps * t + self.msd_fit_intercept_A2,
            mode="lines",
            line_dash="dash",
            name="fit 6Dt + c",
        )
        fig.update_layout(
            title=f"MSD of {self.species}: D = {self.diffusivity_cm2_s:.3g} cm²/s "
            f"at {self.temperature_K:.0f} K",
            xaxis_title="lag time (ps)",
            yaxis_title="MSD (Å²)",
            height=380,
            width=600,
        )
        return fig


def diffusion(
    traj: TrajectoryInput,
    species: str = "Li",
    *,
    temperature_K: float | None = None,
    timestep_fs: float | None = None,
    skip_ps: float = 0.0,
    method: str = "pymatgen",
    charge: float | None = None,
    hop_distance_A: float = HOP_DISTANCE_A,
) -> DiffusionResult:
    """Tracer diffusivity, its direction components and the Nernst–Einstein conductivity of
    one species from an MD trajectory.

    The displacements are unwrapped across the periodic boundaries from consecutive frames
    by the minimum image (so wrapped and unwrapped trajectories give the same result, as
    long as no atom moves half a cell between two frames) and handed to pymatgen's
    :class:`~pymatgen.analysis.diffusion.analyzer.DiffusionAnalyzer`: it removes the drift
    of the other atoms (the framework; with none, nothing is removed), averages the MSD
    over atoms and time origins (``smoothed="max"``), and fits ``MSD = 6 D t + c`` from
    1 ps lag on (:data:`MIN_FIT_LAG_FS`), weighting lag t by 1/t. Runs too short for that
    use its unsmoothed single-origin MSD instead and are flagged.

    The standard error is ``std(D_i) / sqrt(N)`` over the per-atom diffusivities ``D_i``
    (the same weighted fit on each atom's MSD; their mean is D). It treats the atoms as
    independent, so it underestimates the error when the ions move in a correlated way;
    DiffusionAnalyzer's own ``diffusivity_std_dev`` (the scatter of the MSD about its
    fitted line) ignores that the MSD at different lags is correlated and comes out orders
    of magnitude too small, so it is not used.

    Parameters
    ----------
    traj
        An :class:`~nnp_lab.simulate.MDResult`, a trajectory path (``ase.io.read(path,
        ":")``) or a list of :class:`ase.Atoms`, periodic; not modified.
    species
        Element whose diffusion is measured.
    temperature_K
        The run's temperature; by default the MDResult's thermostat target (the mean
        kinetic temperature for NVE or when the target changed), or the frames' mean
        kinetic temperature when they carry momenta.
    timestep_fs
        Time between *frames* in fs (MD time step × recording interval); by default from
        the frames' recorded times (MDResult, our ``.traj`` files).
    skip_ps
        Equilibration time dropped from the start, ps.
    method
        ``"pymatgen"`` (DiffusionAnalyzer).
    charge
        Ion charge in e for the conductivity; default :func:`default_charge` (the
        element's first common oxidation state: +1 for Li and Na, −2 for O). The
        conductivity assumes uncorrelated ions (Haven ratio 1).
    hop_distance_A
        Typical hop length (Å) for the ``too_few_hops`` check and ``n_hops_estimate``.

    Returns
    -------
    DiffusionResult
        Flags: ``msd_not_linear`` (MSD not yet ∝ t: run too short, ions rattling in place or
        moving ballistically — run longer or hotter), ``too_few_hops`` (the species moved
        less than a hop on average: D is noise), ``framework_moved`` (other atoms moved
        more than a hop: the host may have melted), ``frames_too_far_apart`` (unwrapping
        unreliable), ``one_atom`` (no spread to estimate the error from).

    Raises
    ------
    InputError
        ``species`` absent (names those present), no cell, unknown time between frames or
        temperature, uneven frames, bad options.
    """
    started = time.perf_counter()
    method = validation.choice("method", method, DIFFUSION_METHODS)
    hop_distance_A = validation.number("hop_distance_A", hop_distance_A, strict=True, unit="Å")
    frames = read_frames(traj, "diffusion", min_frames=3)
    indices = species_indices(frames.atoms[0], species, "diffusion")
    species = frames.atoms[0].get_chemical_symbols()[indices[0]]
    _require_cell(frames.atoms[0])
    frames, interval = frame_interval_fs(frames, timestep_fs, "diffusion")
    frames = skip_frames(frames, interval, skip_ps, "diffusion")
    temperature = _temperature(frames, temperature_K)
    z = (
        default_charge(species)
        if charge is None
        else validation.number("charge", charge, minimum=None)
    )
    displacements, largest_step = unwrapped_displacements(frames.atoms)
    fit, library_warnings = _analyze(frames.atoms[0], displacements, species, temperature, interval)
    volume = float(np.mean([a.get_volume() for a in frames.atoms]))
    result = _result(fit, indices, species, temperature, z, volume, interval, hop_distance_A)
    flags = _flags(result, fit, largest_step)
    result = dataclasses.replace(result, flags=flags)
    parameters = dict(
        species=species,
        temperature_K=temperature,
        timestep_fs=interval,
        skip_ps=skip_ps,
        method=method,
        charge=z,
        hop_distance_A=hop_distance_A,
        n_frames=len(frames.atoms),
        library_warnings=library_warnings,
    )
    return finish_analysis(
        result, "diffusion", parameters, frames.source, started, ("pymatgen-analysis-diffusion",)
    )


def _require_cell(atoms: Atoms) -> None:
    if not atoms.pbc.any() or abs(atoms.cell.volume) < 1e-6:
        raise InputError(
            "diffusion needs a periodic cell with a volume (an MD run of a bulk or a slab); "
            f"these frames have pbc={atoms.pbc.tolist()}, volume {abs(atoms.cell.volume):.3g} Å³"
        )


def _temperature(frames: Frames, temperature_K: float | None) -> float:
    if temperature_K is not None:
        return validation.number("temperature_K", temperature_K, strict=True, unit="K")
    found = frames.mean_temperature_K()
    if found is None:
        raise InputError(
            "diffusion needs the run's temperature: pass temperature_K= (the frames carry no "
            "thermostat target and no velocities to take it from)"
        )
    return found


@dataclass(frozen=True)
class _Fit:
    """What :func:`_analyze` keeps of a DiffusionAnalyzer."""

    analyzer: Any
    smoothing: str
    interval_fs: float
    framework: np.ndarray  # indices of real framework atoms


def _analyze(
    first: Atoms, displacements: np.ndarray, species: str, temperature: float, interval: float
) -> tuple[_Fit, list[str]]:
    """Run DiffusionAnalyzer on the unwrapped displacements (multi-origin, ``"max"``; its
    single-origin MSD when the run is too short for that)."""
    from pymatgen.analysis.diffusion.analyzer import DiffusionAnalyzer
    from pymatgen.core import DummySpecies, Lattice, Structure

    symbols = first.get_chemical_symbols()
    framework = np.flatnonzero(np.array(symbols) != species)
    lattice = Lattice(np.asarray(first.cell.complete()))
    sites: list[Any] = list(symbols)
    coords = first.positions
    if framework.size == 0:
        # DiffusionAnalyzer needs framework atoms to take the drift from: one virtual,
        # immobile site means no drift correction (e.g. self-diffusion in a pure liquid).
        sites.append(DummySpecies("X"))
        coords = np.vstack([coords, np.zeros(3)])
        displacements = np.concatenate([displacements, np.zeros((1, *displacements.shape[1:]))])
    structure = Structure(lattice, sites, coords, coords_are_cartesian=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            # pymatgen annotates time_step as int but computes with any number of fs
            analyzer = DiffusionAnalyzer(
                structure,
                displacements,
                species,
                temperature,
                interval,  # type: ignore[arg-type]
                1,
                smoothed="max",
            )
            smoothing = "max"
        except ValueError:  # "Not enough data to calculate diffusivity": shorter than ~1 ps
            analyzer = DiffusionAnalyzer(
                structure,
                displacements,
                species,
                temperature,
                interval,  # type: ignore[arg-type]
                1,
                smoothed=False,
            )
            smoothing = "none"
    messages = sorted({str(w.message) for w in caught})
    return _Fit(analyzer, smoothing, interval, framework), messages


def _weighted_line(t: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slope and intercept of the weighted least-squares line through ``y`` (last axis)."""
    tm = np.sum(w * t) / np.sum(w)
    ym = np.sum(w * y, axis=-1) / np.sum(w)
    slope = np.sum(w * (t - tm) * (y - ym[..., None]), axis=-1) / np.sum(w * (t - tm) ** 2)
    return slope, ym - slope * tm


def _per_atom_msd(x: np.ndarray, lags: np.ndarray, windowed: bool) -> np.ndarray:
    """``(n_atoms, n_lags, 3)`` MSD of each atom: averaged over all time origins
    (FFT autocorrelation) when ``windowed``, else from the first frame only."""
    if not windowed:
        return x[:, lags, :] ** 2
    n = x.shape[1]
    m = np.arange(n)
    out = np.empty((x.shape[0], len(lags), 3))
    for start in range(0, x.shape[0], 64):  # bounded memory
        block = x[start : start + 64]
        f = np.fft.rfft(block, n=2 * n, axis=1)
        s2 = np.fft.irfft(f * np.conj(f), n=2 * n, axis=1)[:, :n] / (n - m)[None, :, None]
        prefix = np.concatenate([np.zeros((len(block), 1, 3)), np.cumsum(block**2, axis=1)], 1)
        s1 = (prefix[:, n - m] + prefix[:, -1:] - prefix[:, m]) / (n - m)[None, :, None]
        out[start : start + 64] = (s1 - 2 * s2)[:, lags]
    return out


def _result(
    fit: _Fit,
    indices: np.ndarray,
    species: str,
    temperature: float,
    charge: float,
    volume: float,
    interval: float,
    hop: float,
) -> DiffusionResult:
    a = fit.analyzer
    dt = np.asarray(a.dt, dtype=float)
    lags = np.rint(dt / interval).astype(int)
    dc = np.asarray(a.corrected_displacements)[indices]
    per_atom = _per_atom_msd(dc, lags, fit.smoothing == "max")
    w = 1.0 / dt if fit.smoothing == "max" else np.ones_like(dt)
    slopes, _ = _weighted_line(dt, np.transpose(per_atom, (0, 2, 1)), w)  # (n_atoms, 3)
    d_atoms = slopes * _A2_FS_TO_CM2_S / 2.0  # per atom, per direction, cm²/s
    n = len(indices)
    err = np.std(d_atoms, axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.full(3, np.nan)
    err_total = float(np.std(d_atoms.mean(axis=1), ddof=1) / np.sqrt(n)) if n > 1 else np.nan
    msd = np.asarray(a.msd, dtype=float)
    slope, intercept = _weighted_line(dt, msd, w)
    diffusivity = float(a.diffusivity)
    components = np.asarray(a.diffusivity_components, dtype=float)
    final = np.linalg.norm(dc[:, -1], axis=-1)
    t_pos = dt > 0
    loglog = (
        float(np.polyfit(np.log(dt[t_pos]), np.log(np.maximum(msd[t_pos], 1e-300)), 1)[0])
        if np.count_nonzero(t_pos) > 2
        else float("nan")
    )

    def sigma(d: Any) -> Any:
        return nernst_einstein_mS_cm(d, n, volume, charge, temperature)

    return DiffusionResult(
        species=species,
        n_atoms_species=n,
        temperature_K=temperature,
        diffusivity_cm2_s=diffusivity,
        diffusivity_stderr_cm2_s=err_total,
        diffusivity_components_cm2_s=components,
        diffusivity_components_stderr_cm2_s=err,
        conductivity_mS_cm=float(sigma(diffusivity)),
        conductivity_stderr_mS_cm=float(sigma(err_total)),
        conductivity_components_mS_cm=np.asarray(sigma(components), dtype=float),
        charge=charge,
        time_ps=dt / 1000.0,
        msd_A2=msd,
        msd_components_A2=np.asarray(a.msd_components, dtype=float),
        msd_fit_intercept_A2=float(intercept),
        loglog_slope=loglog,
        mean_displacement_A=float(np.mean(final)),
        max_displacement_A=float(np.max(np.linalg.norm(dc, axis=-1))),
        n_hops_estimate=float(n * msd[-1] / hop**2),
        hop_distance_A=hop,
        run_length_ps=(dc.shape[1] - 1) * interval / 1000.0,
        interval_fs=interval,
        smoothing=fit.smoothing,
    )


def _flags(res: DiffusionResult, fit: _Fit, largest_step: float) -> dict[str, str]:
    flags: dict[str, str] = {}
    sp = res.species
    if res.smoothing == "none":
        flags["msd_not_linear"] = (
            f"the analysed run is only {res.run_length_ps:.3g} ps long: too short to reach the "
            f"diffusive regime (the MSD is fitted from {MIN_FIT_LAG_FS / 1000:g} ps lag on, past "
            "the ballistic and vibrational motion), so this D is a rough single-origin "
            "estimate; run longer (tens of ps for D ≈ 1e-6 cm²/s)"
        )
    elif not abs(res.loglog_slope - 1.0) <= MAX_LOGLOG_DEVIATION:
        kind = "the atoms rattle in place" if res.loglog_slope < 1 else "the motion is ballistic"
        flags["msd_not_linear"] = (
            f"the MSD of {sp} grows as t^{res.loglog_slope:.2f}, not t^1: it is not yet in its "
            f"diffusive regime ({kind}); run longer, or hotter, before trusting D"
        )
    if res.mean_displacement_A < res.hop_distance_A:
        flags["too_few_hops"] = (
            f"the {sp} atoms moved {res.mean_displacement_A:.2f} Å on average over "
            f"{res.run_length_ps:.3g} ps, less than one hop ({res.hop_distance_A:g} Å; about "
            f"{res.n_hops_estimate:.0f} hops in all): D is mostly noise; run longer or at a "
            "higher temperature"
        )
    framework_max = float(getattr(fit.analyzer, "max_framework_displacement", 0.0))
    if fit.framework.size and framework_max > res.hop_distance_A:
        flags["framework_moved"] = (
            f"atoms other than {sp} moved up to {framework_max:.2f} Å from their sites: the "
            "host structure may have melted or changed; check the trajectory, or lower the "
            "temperature"
        )
    if largest_step > MAX_STEP_FRACTION:
        flags["frames_too_far_apart"] = (
            f"atoms moved up to {largest_step:.2f} of a cell width between consecutive frames "
            "(frames are too far apart in time), so unwrapping them across the periodic "
            "boundaries may be wrong; record frames more often (a smaller md interval)"
        )
    if res.n_atoms_species < 2:
        flags["one_atom"] = (
            f"only one {sp} atom: there is no spread of per-atom diffusivities to estimate the "
            "error from (stderr is NaN); use a larger cell"
        )
    return flags
