"""Correlation functions of MD trajectories: the radial distribution function (pair
correlations in space) and the vibrational density of states (velocity correlations in time).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase.neighborlist import neighbor_list
from scipy.integrate import trapezoid

from nnp_lab import validation
from nnp_lab.errors import InputError
from nnp_lab.properties._common import PropertyResult
from nnp_lab.properties._trajectory import (
    TrajectoryInput,
    finish_analysis,
    frame_interval_fs,
    read_frames,
    skip_frames,
    species_indices,
    unwrapped_displacements,
)

__all__ = ["RDFResult", "rdf", "VDOSResult", "vibrational_dos", "THZ_TO_CM1"]

#: THz -> cm⁻¹.
THZ_TO_CM1 = 33.35640951981521


@dataclass(frozen=True, repr=False)
class RDFResult(PropertyResult):
    """Partial radial distribution functions and coordination numbers.

    ``g_AB(r) = V / (N_A N_B) ⟨Σ_{i∈A, j∈B, j≠i} δ(r − r_ij)⟩ / (4π r²)``, averaged over
    frames (minimum image): 1 at large r for a fluid, 1 at every r for an ideal gas.

    Attributes
    ----------
    r_A : numpy.ndarray
        Bin centres, Å.
    g : dict
        ``{"A-B": g(r)}`` per pair.
    coordination : dict
        ``{"A-B": n(r)}``: average number of B atoms within r of an A atom.
    first_minimum_A : dict
        ``{"A-B": r}`` of the first minimum after the first peak (NaN when there is none).
    first_shell_coordination : dict
        ``{"A-B": n(first minimum)}``.
    pairs : list of str
    n_frames : int
    """

    r_A: np.ndarray
    g: dict[str, np.ndarray]
    coordination: dict[str, np.ndarray]
    first_minimum_A: dict[str, float]
    first_shell_coordination: dict[str, float]
    pairs: list[str]
    n_frames: int

    def headline(self) -> str:
        parts = [
            f"{p}: shell to {self.first_minimum_A[p]:.2f} Å, n={self.first_shell_coordination[p]:.2f}"
            for p in self.pairs
        ]
        return "; ".join(parts) + f" ({self.n_frames} frames)"

    def plot(self) -> Any:
        """g(r) of every pair."""
        import plotly.graph_objects as go

        fig = go.Figure()
        for p in self.pairs:
            fig.add_scatter(x=self.r_A, y=self.g[p], mode="lines", name=p)
        fig.add_hline(y=1.0, line_dash="dot", line_color="#888")
        fig.update_layout(
            title="radial distribution function",
            xaxis_title="r (Å)",
            yaxis_title="g(r)",
            height=360,
            width=600,
        )
        return fig


def rdf(
    traj: TrajectoryInput,
    *,
    pairs: Sequence[tuple[str, str]] | str = "all",
    r_max: float | None = None,
    n_bins: int = 200,
    every: int = 1,
    skip_frames_count: int = 0,
) -> RDFResult:
    """Partial radial distribution functions g(r) and coordination numbers of a trajectory.

    Parameters
    ----------
    traj
        An :class:`~nnp_lab.simulate.MDResult`, a trajectory path or a list of Atoms (one
        frame is enough for a crystal), periodic in 3D; not modified.
    pairs
        ``"all"`` (every pair of elements present) or a list like ``[("O", "H")]``.
    r_max
        Largest distance, Å; at most half the shortest perpendicular width of the cell (the
        minimum-image limit). None: that limit.
    n_bins
        Histogram bins between 0 and ``r_max``.
    every
        Use every ``every``-th frame.
    skip_frames_count
        Frames dropped from the start (equilibration).

    Returns
    -------
    RDFResult

    Raises
    ------
    InputError
        ``r_max`` beyond the minimum-image limit, an element absent, a non-periodic frame.
    """
    started = time.perf_counter()
    n_bins = validation.integer("n_bins", n_bins, minimum=10)
    every = validation.integer("every", every, minimum=1)
    skip = validation.integer("skip_frames_count", skip_frames_count, minimum=0)
    frames = read_frames(traj, "rdf", min_frames=1)
    atoms = frames.atoms[skip::every]
    if not atoms:
        raise InputError(f"rdf: skip_frames_count={skip} leaves no frames of {len(frames.atoms)}")
    first = atoms[0]
    if not first.pbc.all():
        raise InputError("rdf needs frames periodic in all three directions with a cell")
    limit = 0.5 * min(_widths(a.cell[:]) for a in atoms)
    if r_max is None:
        r_max = limit
    r_max = validation.number("r_max", r_max, strict=True, unit="Å")
    if r_max > limit + 1e-9:
        raise InputError(
            f"r_max={r_max:g} Å is beyond half the cell's shortest width ({limit:.3f} Å), where "
            "the minimum-image convention breaks; use r_max <= that, or a larger supercell"
        )
    names = _pairs(first, pairs)
    edges = np.linspace(0.0, r_max, n_bins + 1)
    counts = {p: np.zeros(n_bins) for p in names}
    norm = {p: 0.0 for p in names}
    for a in atoms:
        i, j, d = neighbor_list("ijd", a, r_max)
        symbols = np.array(a.get_chemical_symbols())
        volume = a.get_volume()
        for p in names:
            s1, s2 = p.split("-")
            keep = (symbols[i] == s1) & (symbols[j] == s2)
            counts[p] += np.histogram(d[keep], bins=edges)[0]
            n1, n2 = int(np.sum(symbols == s1)), int(np.sum(symbols == s2))
            norm[p] += n1 * (n2 - 1 if s1 == s2 else n2) / volume
    r = 0.5 * (edges[1:] + edges[:-1])
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    g = {p: counts[p] / (norm[p] * shell) for p in names}
    coordination = {}
    for p in names:
        s1 = p.split("-")[0]
        n1 = np.mean([np.sum(np.array(a.get_chemical_symbols()) == s1) for a in atoms])
        coordination[p] = np.cumsum(counts[p]) / (n1 * len(atoms))
    minima = {p: _first_minimum(r, g[p]) for p in names}
    shells = {
        p: float(np.interp(minima[p], r, coordination[p])) if np.isfinite(minima[p]) else np.nan
        for p in names
    }
    result = RDFResult(
        r_A=r,
        g=g,
        coordination=coordination,
        first_minimum_A=minima,
        first_shell_coordination=shells,
        pairs=names,
        n_frames=len(atoms),
    )
    parameters = dict(pairs=names, r_max=r_max, n_bins=n_bins, every=every, skip=skip)
    return finish_analysis(result, "rdf", parameters, frames.source, started)


def _widths(cell: np.ndarray) -> float:
    """The shortest distance between opposite faces of the cell."""
    volume = abs(float(np.linalg.det(cell)))
    return min(
        volume / float(np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3])))
        for k in range(3)
    )


def _pairs(atoms: Any, pairs: Sequence[tuple[str, str]] | str) -> list[str]:
    present = sorted(set(atoms.get_chemical_symbols()))
    if isinstance(pairs, str):
        if pairs != "all":
            raise InputError(f"pairs must be 'all' or a list like [('O', 'H')], got {pairs!r}")
        return [f"{a}-{b}" for k, a in enumerate(present) for b in present[k:]]
    out = []
    for pair in pairs:
        if len(pair) != 2:
            raise InputError(f"each pair must be two element symbols, got {pair!r}")
        for s in pair:
            species_indices(atoms, s, "rdf")  # raises naming the elements present
        out.append(f"{pair[0]}-{pair[1]}")
    return out


def _first_minimum(r: np.ndarray, g: np.ndarray) -> float:
    """r of the lowest point between the first clear peak of a lightly smoothed g(r) and the
    next one (NaN without a first peak and a minimum after it). The first peak, not the
    highest: in diamond Si the second shell's peak is higher than the first."""
    from scipy.signal import find_peaks

    smooth = np.convolve(g, np.ones(3) / 3, mode="same")
    if not np.any(smooth > 0):
        return float("nan")
    peaks, _ = find_peaks(smooth, prominence=0.1 * float(np.max(smooth)))
    if peaks.size == 0:
        return float("nan")
    end = int(peaks[1]) if peaks.size > 1 else len(smooth) - 1
    low = int(peaks[0]) + int(np.argmin(smooth[peaks[0] : end + 1]))
    if peaks.size == 1 and low >= len(smooth) - 2:
        return float("nan")
    return float(r[low])


@dataclass(frozen=True, repr=False)
class VDOSResult(PropertyResult):
    """Vibrational density of states from the velocity autocorrelation function.

    The universal models here give no charges or dipoles, so there are no IR (or Raman)
    intensities: this is the density of vibrational states, each atom's motion counted
    (mass-weighted when asked), not a spectrum one measures directly.

    Attributes
    ----------
    frequencies_THz, wavenumbers_cm1 : numpy.ndarray
    dos : numpy.ndarray
        Normalised to integrate to 1 over frequency (in THz).
    vacf : numpy.ndarray
        Normalised velocity autocorrelation ``C(t)/C(0)`` at lags ``time_fs``.
    time_fs : numpy.ndarray
    velocities_from : str
        ``"momenta"`` (the frames' stored velocities) or ``"positions"`` (finite
        differences of unwrapped positions).
    species : str or None
    mass_weighted : bool
    interval_fs : float
    """

    frequencies_THz: np.ndarray
    wavenumbers_cm1: np.ndarray
    dos: np.ndarray
    vacf: np.ndarray
    time_fs: np.ndarray
    velocities_from: str
    species: str | None
    mass_weighted: bool
    interval_fs: float

    @property
    def peak_THz(self) -> float:
        """Frequency of the largest peak (above 0.1 THz)."""
        keep = self.frequencies_THz > 0.1
        return float(self.frequencies_THz[keep][np.argmax(self.dos[keep])])

    def headline(self) -> str:
        who = self.species or "all atoms"
        return (
            f"{who}: peak at {self.peak_THz:.2f} THz ({self.peak_THz * THZ_TO_CM1:.0f} cm⁻¹), "
            f"up to {self.frequencies_THz[-1]:.1f} THz resolved"
        )

    def plot(self) -> Any:
        """The DOS against frequency (THz), with cm⁻¹ on the hover."""
        import plotly.graph_objects as go

        fig = go.Figure(
            go.Scatter(
                x=self.frequencies_THz,
                y=self.dos,
                mode="lines",
                customdata=self.wavenumbers_cm1,
                hovertemplate="%{x:.2f} THz (%{customdata:.0f} cm⁻¹): %{y:.3g}",
            )
        )
        fig.update_layout(
            title=f"vibrational DOS ({self.species or 'all atoms'})",
            xaxis_title="frequency (THz)",
            yaxis_title="DOS (1/THz)",
            height=360,
            width=600,
        )
        return fig


def vibrational_dos(
    traj: TrajectoryInput,
    *,
    timestep_fs: float | None = None,
    species: str | None = None,
    mass_weighted: bool = True,
    skip_ps: float = 0.0,
) -> VDOSResult:
    """Vibrational density of states of a trajectory from its velocity autocorrelation.

    The power spectrum of every atom's velocity (Hann-windowed, FFT: the Wiener–Khinchin
    route to the Fourier transform of the VACF), summed over atoms and directions (weighted
    by mass with ``mass_weighted``), normalised to unit area. Velocities are the frames'
    momenta divided by the masses when they carry them (our MD trajectories do), else
    central differences of the unwrapped positions. The universal models here give no
    charges or dipoles, so there are no IR intensities. Analyse an NVE run (or a weakly
    coupled thermostat): a Langevin thermostat's random force adds a white-noise background
    (with the default friction about 15 % of the weight of a Cu crystal lands above its
    phonon band, measured).

    Parameters
    ----------
    traj
        An :class:`~nnp_lab.simulate.MDResult`, a trajectory path or a list of Atoms.
    timestep_fs
        Time between frames, fs (default: from the frames' recorded times). The highest
        frequency resolved is ``1 / (2 timestep)``; record often (every 1–5 fs).
    species
        Only this element (None: all atoms).
    mass_weighted
        Weight each atom's spectrum by its mass (the kinetic-energy spectrum; for a harmonic
        solid this is the phonon DOS).
    skip_ps
        Equilibration dropped from the start, ps.

    Returns
    -------
    VDOSResult

    Raises
    ------
    InputError
        Too few frames, unknown time between frames, an absent species.
    """
    started = time.perf_counter()
    frames = read_frames(traj, "vibrational_dos", min_frames=8)
    frames, interval = frame_interval_fs(frames, timestep_fs, "vibrational_dos")
    frames = skip_frames(frames, interval, skip_ps, "vibrational_dos")
    first = frames.atoms[0]
    idx = (
        np.arange(len(first))
        if species is None
        else species_indices(first, species, "vibrational_dos")
    )
    v, source = _velocities(frames.atoms, interval)
    v = v[:, idx]  # (n_frames, n_sel, 3)
    masses = first.get_masses()[idx] if mass_weighted else np.ones(len(idx))
    n = v.shape[0]
    window = np.hanning(n)[:, None, None]
    spectrum = np.abs(np.fft.rfft(v * window, axis=0)) ** 2  # (n_freq, n_sel, 3)
    dos = np.einsum("fad,a->f", spectrum, masses)
    freqs = np.fft.rfftfreq(n, d=interval * 1e-15) / 1e12  # THz
    area = float(trapezoid(dos, freqs))
    dos = dos / area if area > 0 else dos
    vacf = np.fft.irfft(np.einsum("fad,a->f", np.abs(np.fft.rfft(v, 2 * n, axis=0)) ** 2, masses))
    vacf = vacf[:n] / vacf[0] if vacf[0] != 0 else vacf[:n]
    result = VDOSResult(
        frequencies_THz=freqs,
        wavenumbers_cm1=freqs * THZ_TO_CM1,
        dos=dos,
        vacf=vacf,
        time_fs=np.arange(n) * interval,
        velocities_from=source,
        species=species,
        mass_weighted=bool(mass_weighted),
        interval_fs=interval,
    )
    parameters = dict(
        timestep_fs=interval, species=species, mass_weighted=mass_weighted, skip_ps=skip_ps
    )
    return finish_analysis(result, "vibrational_dos", parameters, frames.source, started)


def _velocities(atoms: Sequence[Any], interval_fs: float) -> tuple[np.ndarray, str]:
    """``(n_frames, n_atoms, 3)`` velocities in Å/fs, and where they came from."""
    if all(a.has("momenta") for a in atoms) and any(np.any(a.get_momenta()) for a in atoms):
        from ase import units

        return np.array([a.get_velocities() * units.fs for a in atoms]), "momenta"
    disp, _ = unwrapped_displacements(atoms)  # (n_atoms, n_frames, 3)
    return np.transpose(np.gradient(disp, interval_fs, axis=1), (1, 0, 2)), "positions"
