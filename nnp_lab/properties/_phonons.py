"""Phonons and the quasi-harmonic approximation, computed by phonopy from forces that all
displaced supercells get in one batched model call."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from ase import Atoms

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
    repetitions_for_length,
    require_periodic,
    resolve,
)
from nnp_lab.properties._eos import EV_A3_TO_GPA, scaled_structures

__all__ = ["PhononResult", "phonons", "QHAResult", "qha", "IMAGINARY_THZ"]

#: A mode below this frequency (THz; imaginary modes are negative) is reported as imaginary.
#: The three acoustic modes at Γ are left out (they are zero up to numerical noise).
IMAGINARY_THZ = -0.05


@dataclass(frozen=True, repr=False)
class PhononResult(PropertyResult):
    """Phonon band structure, density of states and harmonic thermal properties.

    Frequencies are in THz; imaginary frequencies are negative (phonopy's convention).
    Thermal properties are phonopy's, per mole of *primitive cells* (phonopy's normalisation;
    ``len(result.phonopy.primitive)`` atoms each — divide by that for per mole of atoms):
    ``free_energy_kJ_mol`` (Helmholtz, including the zero-point energy), ``entropy_J_K_mol``,
    ``heat_capacity_J_K_mol`` (at constant volume). The three acoustic modes at Γ are left
    out of the sums.

    Attributes
    ----------
    phonopy : phonopy.Phonopy
        The phonopy object with the force constants (for anything further; not in
        :meth:`to_dict`).
    frequencies_THz : numpy.ndarray
        ``(n_q, n_modes)`` on the band path.
    distances : numpy.ndarray
        ``(n_q,)`` path coordinate of every q-point (phonopy's, 1/Å).
    qpoints : numpy.ndarray
        ``(n_q, 3)`` fractional q-points of the path (reciprocal basis of the primitive cell).
    labels : list of str
        Labels of the path's special points, in order; ``label_distances`` their positions.
    label_distances : numpy.ndarray
    imaginary : bool
        A mode below :data:`IMAGINARY_THZ` anywhere on the path or the mesh, the acoustic
        modes at Γ left out.
    min_frequency_THz : float
        The lowest such frequency.
    dos_frequencies_THz, dos : numpy.ndarray
        Total density of states (states per THz per cell) on the mesh.
    temperatures_K, free_energy_kJ_mol, entropy_J_K_mol, heat_capacity_J_K_mol : numpy.ndarray
    supercell_matrix : numpy.ndarray
        The 3×3 supercell matrix (of the cell as given).
    n_displacements : int
        Displaced supercells evaluated (in one batched call).
    reference : ase.Atoms
        The (relaxed) cell.
    """

    _not_in_dict: ClassVar[tuple[str, ...]] = ("phonopy",)

    phonopy: Any
    frequencies_THz: np.ndarray
    distances: np.ndarray
    qpoints: np.ndarray
    labels: list[str]
    label_distances: np.ndarray
    imaginary: bool
    min_frequency_THz: float
    dos_frequencies_THz: np.ndarray
    dos: np.ndarray
    temperatures_K: np.ndarray
    free_energy_kJ_mol: np.ndarray
    entropy_J_K_mol: np.ndarray
    heat_capacity_J_K_mol: np.ndarray
    supercell_matrix: np.ndarray
    n_displacements: int
    reference: Atoms

    def frequencies_at(self, qpoints: Any) -> np.ndarray:
        """Frequencies (THz), ``(n_q, n_modes)``, at fractional q-points of the primitive cell."""
        q = np.atleast_2d(np.asarray(qpoints, dtype=float))
        return np.asarray(self.phonopy.run_qpoints(q).frequencies)

    def headline(self) -> str:
        n = len(self.reference)
        top = float(self.frequencies_THz.max())
        state = "imaginary modes" if self.imaginary else "stable"
        return (
            f"{self.reference.get_chemical_formula()} ({n} atoms/cell), supercell "
            f"{np.diag(self.supercell_matrix).astype(int).tolist()}, max {top:.2f} THz, "
            f"min {self.min_frequency_THz:.3f} THz ({state})"
        )

    def plot(self) -> Any:
        """Band structure (left) and density of states (right)."""
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        fig = make_subplots(
            rows=1, cols=2, shared_yaxes=True, column_widths=[0.75, 0.25], horizontal_spacing=0.02
        )
        x = self.distances
        for mode in range(self.frequencies_THz.shape[1]):
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=self.frequencies_THz[:, mode],
                    mode="lines",
                    line={"color": "#1f77b4", "width": 1.5},
                    showlegend=False,
                ),
                row=1,
                col=1,
            )
        fig.add_trace(
            go.Scatter(
                x=self.dos,
                y=self.dos_frequencies_THz,
                mode="lines",
                line={"color": "#444"},
                showlegend=False,
            ),
            row=1,
            col=2,
        )
        for d in self.label_distances:
            fig.add_vline(x=float(d), line_width=0.5, line_color="#888", row=1, col=1)
        fig.update_xaxes(
            tickvals=list(self.label_distances),
            ticktext=list(self.labels),
            row=1,
            col=1,
        )
        fig.update_xaxes(title_text="DOS", row=1, col=2)
        fig.update_yaxes(title_text="frequency (THz)", row=1, col=1)
        fig.update_layout(title=self.headline(), height=420, width=760)
        return fig


def _pretty(label: str) -> str:
    """phonopy's LaTeX labels (``$\\mathrm{X}$``, ``$\\Gamma$``) as plain text."""
    text = label.replace("$", "").replace("\\mathrm{", "").replace("}", "")
    return "Γ" if text.lstrip("\\").upper() in ("GAMMA", "G") else text


def phonons(
    atoms: Atoms,
    potential: Potential | str | None = None,
    *,
    supercell: int | Sequence[int] | Sequence[Sequence[int]] | None = None,
    min_length: float = 10.0,
    displacement: float = 0.01,
    relax: bool = True,
    fmax: float = 0.001,
    mesh: float | Sequence[int] = 30.0,
    npoints: int = 51,
    temperatures_K: Sequence[float] | None = None,
    live: bool = False,
    callback: Callable[[PropertyProgress], Any] | None = None,
) -> PhononResult:
    """Harmonic phonons of a crystal by finite displacements (phonopy).

    phonopy makes the symmetry-distinct displaced supercells; all of them are evaluated in
    one batched model call; phonopy builds the force constants and from them the band
    structure along seekpath's standard path, the DOS on a mesh and the thermal properties.

    Parameters
    ----------
    atoms
        A crystal, periodic in 3D (not modified); its primitive cell is found by phonopy.
    potential
        A :class:`~nnp_lab.potentials.Potential`, a registered name or None (default model).
    supercell
        Repetitions (an int, three ints) or a 3×3 matrix of ``atoms``' cell; None: the
        smallest diagonal repetitions with every width ≥ ``min_length`` Å.
    min_length
        See ``supercell``.
    displacement
        Atomic displacement, Å (phonopy's default 0.01).
    relax
        Relax cell and positions first (to ``fmax``; a structure off its minimum has
        spurious imaginary modes).
    fmax
        Force target of that relaxation, eV/Å (tight: residual forces bias the force
        constants).
    mesh
        DOS and thermal-property mesh: three integers or a length (phonopy's ``mesh``).
    npoints
        q-points per band-path segment.
    temperatures_K
        Temperatures of the thermal properties (default 0–1000 K in 10 K steps).
    live, callback
        Progress bar; progress callback.

    Returns
    -------
    PhononResult
        Flag ``imaginary_modes`` when a mode is below :data:`IMAGINARY_THZ`.

    Raises
    ------
    InputError
        Not a crystal; a bad supercell; elements the model lacks.
    """
    require_periodic(atoms, "phonons")
    displacement = validation.number("displacement", displacement, strict=True, unit="Å")
    min_length = validation.number("min_length", min_length, strict=True, unit="Å")
    npoints = validation.integer("npoints", npoints, minimum=2)
    fmax = validation.number("fmax", fmax, strict=True, unit="eV/Å")
    temps = _temperatures(temperatures_K)
    started = time.perf_counter()
    pot = resolve(potential)
    pot.check(atoms)
    with Progress("phonons", 3 + int(relax), live=live, callback=callback) as progress:
        reference = reference_cell(atoms, pot, relax=relax, fmax=fmax, progress=progress)
        matrix = supercell_matrix(reference, supercell, min_length)
        ph = displaced_phonopy(reference, matrix, displacement)
        cells = [_to_atoms(s) for s in ph.supercells_with_displacements]
        progress.stage(f"evaluating {len(cells)} displaced supercells")
        forces = [r["forces"] for r in evaluate_all(pot, cells, ("forces",))]
        progress.advance(f"evaluated {len(cells)} supercells")
        ph.forces = np.array(forces)
        ph.produce_force_constants()
        result = _phonon_result(ph, reference, matrix, mesh, npoints, temps)
        progress.advance("band structure, DOS and thermal properties")
        progress.advance("done")
    parameters = dict(
        supercell=matrix,
        min_length=min_length,
        displacement=displacement,
        relax=relax,
        fmax=fmax,
        mesh=mesh,
        npoints=npoints,
    )
    return finish(result, pot, "phonons", parameters, started)


def supercell_matrix(atoms: Atoms, supercell: Any, min_length: float) -> np.ndarray:
    """The 3×3 integer supercell matrix from ``supercell`` (int, 3 ints, 3×3 or None)."""
    if supercell is None:
        return np.diag(repetitions_for_length(atoms.cell[:], min_length))
    value = np.asarray(supercell)
    if value.ndim == 0:
        value = np.full(3, value)
    if value.shape == (3,):
        value = np.diag(value)
    if (
        value.shape != (3, 3)
        or not np.issubdtype(value.dtype, np.integer)
        or round(abs(np.linalg.det(value))) < 1
    ):
        raise InputError(
            f"supercell must be a positive integer, three of them or a 3×3 integer matrix with "
            f"a non-zero determinant; got {supercell!r}"
        )
    return value.astype(int)


def displaced_phonopy(reference: Atoms, matrix: np.ndarray, displacement: float) -> Any:
    """A :class:`phonopy.Phonopy` of ``reference`` with its displacements generated."""
    from phonopy import Phonopy
    from phonopy.structure.atoms import PhonopyAtoms

    unit = PhonopyAtoms(
        symbols=reference.get_chemical_symbols(),
        cell=reference.cell[:],
        scaled_positions=reference.get_scaled_positions(),
    )
    ph = Phonopy(unit, supercell_matrix=matrix, primitive_matrix="auto")
    ph.generate_displacements(distance=displacement)
    return ph


def _to_atoms(cell: Any) -> Atoms:
    return Atoms(cell.symbols, cell=cell.cell, scaled_positions=cell.scaled_positions, pbc=True)


def _temperatures(temperatures_K: Sequence[float] | None) -> np.ndarray:
    if temperatures_K is None:
        return np.arange(0.0, 1001.0, 10.0)
    temps = np.asarray(validation.number_list("temperatures_K", temperatures_K), dtype=float)
    if temps.size == 0:
        raise InputError("temperatures_K must hold at least one temperature")
    return temps


def _phonon_result(
    ph: Any,
    reference: Atoms,
    matrix: np.ndarray,
    mesh: Any,
    npoints: int,
    temps: np.ndarray,
) -> PhononResult:
    from phonopy.phonon.band_structure import get_band_qpoints_by_seekpath

    bands, labels, connections = get_band_qpoints_by_seekpath(ph.primitive, npoints)
    ph.run_band_structure(bands, path_connections=connections, labels=labels)
    band = ph.band_structure
    qpoints = np.concatenate(band.qpoints)
    distances = np.concatenate(band.distances)
    freqs = np.concatenate(band.frequencies)
    ends = [float(seg[0]) for seg in band.distances] + [float(band.distances[-1][-1])]
    ph.run_mesh(mesh)
    ph.run_total_dos()
    ph.run_thermal_properties(temperatures=temps, exclude_gamma_acoustic=True)
    tp = ph.thermal_properties
    lowest = min(_lowest(freqs, qpoints), _lowest(ph.mesh.frequencies, ph.mesh.qpoints))
    flags: dict[str, str] = {}
    if lowest < IMAGINARY_THZ:
        flags["imaginary_modes"] = (
            f"there are imaginary modes (down to {lowest:.2f} THz): the structure is not at a "
            "minimum or is dynamically unstable in this model — relax it (relax=True, smaller "
            "fmax) or check the supercell size"
        )
    return PhononResult(
        phonopy=ph,
        frequencies_THz=freqs,
        distances=distances,
        qpoints=qpoints,
        labels=_segment_labels(labels, connections),
        label_distances=np.array(ends),
        imaginary=lowest < IMAGINARY_THZ,
        min_frequency_THz=float(lowest),
        dos_frequencies_THz=np.asarray(ph.total_dos.frequency_points),
        dos=np.asarray(ph.total_dos.dos),
        temperatures_K=np.asarray(tp.temperatures),
        free_energy_kJ_mol=np.asarray(tp.free_energy),
        entropy_J_K_mol=np.asarray(tp.entropy),
        heat_capacity_J_K_mol=np.asarray(tp.heat_capacity),
        supercell_matrix=matrix,
        n_displacements=len(ph.supercells_with_displacements),
        reference=reference,
        flags=flags,
    )


def _lowest(frequencies: Any, qpoints: Any) -> float:
    """The lowest frequency, leaving out the three acoustic modes at Γ."""
    f = np.array(frequencies, dtype=float)
    at_gamma = np.all(np.abs(np.asarray(qpoints)) < 1e-8, axis=1)
    f[at_gamma, :3] = np.inf
    return float(f.min())


def _segment_labels(labels: list[str], connections: list[bool]) -> list[str]:
    """One label per tick (segment start/end) from phonopy's end-point labels: where the path
    jumps, the two points share a tick (``"U|K"``)."""
    names = [_pretty(lab) for lab in labels]
    ticks, k = [names[0]], 1
    for i, connected in enumerate(connections):
        end = names[k]
        k += 1
        if not connected and i < len(connections) - 1:
            end = f"{end}|{names[k]}"
            k += 1
        ticks.append(end)
    return ticks


# -- quasi-harmonic approximation --------------------------------------------------------
@dataclass(frozen=True, repr=False)
class QHAResult(PropertyResult):
    """Thermal expansion and temperature-dependent properties in the quasi-harmonic
    approximation (phonopy's ``run_qha``, Vinet EOS at every T).

    phonopy leaves out the highest temperature of the grid (it needs a neighbour for the
    derivatives), so the arrays are one shorter than the temperatures asked for; its first
    thermal-expansion value is 0 by construction.

    Attributes
    ----------
    temperatures_K : numpy.ndarray
    volume_A3 : numpy.ndarray
        Equilibrium volume of the cell as given at each T.
    thermal_expansion_per_K : numpy.ndarray
        Volumetric thermal expansion coefficient β (= 3 α for a cubic crystal).
    bulk_modulus_GPa : numpy.ndarray
        Isothermal bulk modulus at each T.
    gibbs_energy_eV : numpy.ndarray
        Gibbs energy of the cell at zero pressure.
    volumes_A3, energies_eV : numpy.ndarray
        The sampled volumes and their static energies.
    phonon_results : list of PhononResult
        The phonons at every volume.
    reference : ase.Atoms
    """

    _not_in_dict: ClassVar[tuple[str, ...]] = ("phonon_results",)

    temperatures_K: np.ndarray
    volume_A3: np.ndarray
    thermal_expansion_per_K: np.ndarray
    bulk_modulus_GPa: np.ndarray
    gibbs_energy_eV: np.ndarray
    volumes_A3: np.ndarray
    energies_eV: np.ndarray
    phonon_results: list[PhononResult] = field(default_factory=list)
    reference: Atoms | None = None

    def at(self, temperature_K: float) -> dict[str, float]:
        """Volume, β and B interpolated at one temperature."""
        t = self.temperatures_K
        return {
            "volume_A3": float(np.interp(temperature_K, t, self.volume_A3)),
            "thermal_expansion_per_K": float(
                np.interp(temperature_K, t, self.thermal_expansion_per_K)
            ),
            "bulk_modulus_GPa": float(np.interp(temperature_K, t, self.bulk_modulus_GPa)),
        }

    def headline(self) -> str:
        t = 300.0 if self.temperatures_K.max() >= 300 else float(self.temperatures_K.max())
        v = self.at(t)
        return (
            f"at {t:.0f} K: β={v['thermal_expansion_per_K']:.2e} /K, "
            f"V={v['volume_A3']:.3f} Å³, B={v['bulk_modulus_GPa']:.1f} GPa"
        )

    def plot(self) -> Any:
        """V(T), β(T) and B(T)."""
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        fig = make_subplots(rows=1, cols=3, subplot_titles=("V (Å³)", "β (1/K)", "B (GPa)"))
        t = self.temperatures_K
        for col, y in enumerate(
            (self.volume_A3, self.thermal_expansion_per_K, self.bulk_modulus_GPa), start=1
        ):
            fig.add_trace(go.Scatter(x=t, y=y, mode="lines", showlegend=False), row=1, col=col)
            fig.update_xaxes(title_text="T (K)", row=1, col=col)
        fig.update_layout(title="quasi-harmonic approximation", height=340, width=900)
        return fig


def qha(
    atoms: Atoms,
    potential: Potential | str | None = None,
    *,
    volume_range: float = 0.05,
    n_volumes: int = 7,
    temperatures_K: Sequence[float] | None = None,
    supercell: int | Sequence[int] | Sequence[Sequence[int]] | None = None,
    min_length: float = 10.0,
    displacement: float = 0.01,
    fmax: float = 0.001,
    mesh: float | Sequence[int] = 30.0,
    live: bool = False,
    callback: Callable[[PropertyProgress], Any] | None = None,
) -> QHAResult:
    """Quasi-harmonic thermal expansion, bulk modulus(T) and Gibbs energy(T).

    The crystal is relaxed, its cell scaled isotropically over ``±volume_range`` in
    ``n_volumes`` steps (positions relaxed at each volume), and the displaced supercells of
    all volumes are evaluated in one batched call; phonopy's ``run_qha`` fits the free
    energies.

    Parameters
    ----------
    atoms
        A crystal, periodic in 3D (not modified).
    potential
        A :class:`~nnp_lab.potentials.Potential`, a registered name or None (default model).
    volume_range, n_volumes
        Largest relative volume change and number of volumes (≥ 5).
    temperatures_K
        Temperature grid (default 0–1000 K in 10 K steps).
    supercell, min_length, displacement, fmax, mesh
        As in :func:`phonons`.
    live, callback
        Progress bar; progress callback.

    Returns
    -------
    QHAResult
        Flags: ``imaginary_modes`` (at some volume; the free energy there is unreliable),
        ``negative_expansion``.
    """
    from phonopy import run_qha

    require_periodic(atoms, "qha")
    volume_range = validation.number("volume_range", volume_range, strict=True)
    n_volumes = validation.integer("n_volumes", n_volumes, minimum=5)
    temps = _temperatures(temperatures_K)
    if temps.size < 3:
        raise InputError("qha needs at least three temperatures (it differentiates in T)")
    started = time.perf_counter()
    pot = resolve(potential)
    pot.check(atoms)
    with Progress("qha", 3 + n_volumes, live=live, callback=callback) as progress:
        progress.stage("relaxing cell and positions")
        reference = relaxed_copy(atoms, pot, cell=True, fmax=fmax)
        progress.advance("relaxed")
        cells = []
        for k, s in enumerate(scaled_structures(reference, volume_range, n_volumes)):
            cells.append(relaxed_copy(s, pot, cell=False, fmax=fmax))
            progress.advance(f"relaxed volume {k + 1} of {n_volumes}")
        matrix = supercell_matrix(reference, supercell, min_length)
        models = [displaced_phonopy(c, matrix, displacement) for c in cells]
        displaced = [[_to_atoms(s) for s in ph.supercells_with_displacements] for ph in models]
        flat = [s for group in displaced for s in group]
        progress.stage(f"evaluating {len(flat)} displaced supercells of {n_volumes} volumes")
        forces = iter(r["forces"] for r in evaluate_all(pot, flat, ("forces",)))
        progress.advance("evaluated")
        results = []
        for ph, group, cell in zip(models, displaced, cells):
            ph.forces = np.array([next(forces) for _ in group])
            ph.produce_force_constants()
            results.append(_phonon_result(ph, cell, matrix, mesh, 11, temps))
        volumes = np.array([c.get_volume() for c in cells])
        energies = np.array([c.info["energy_eV"] for c in cells])
        # phonopy works per primitive cell: scale the static energies to it, and the fitted
        # volumes and energies back to the cell as given
        per_primitive = len(models[0].primitive) / len(models[0].unitcell)
        fit = run_qha(
            models,
            temps,
            internal_energies=energies * per_primitive,
            mesh=mesh,
            eos="vinet",
            exclude_gamma_acoustic=True,
        )
        progress.advance("QHA fitted")
    n = len(fit.temperatures)
    flags: dict[str, str] = {}
    bad = [f"{v:.1f} Å³" for r, v in zip(results, volumes) if r.imaginary]
    if bad:
        flags["imaginary_modes"] = (
            f"imaginary modes at volume(s) {', '.join(bad)}: the free energy there is not "
            "harmonic; narrow volume_range or check the structure"
        )
    beta = np.asarray(fit.thermal_expansion)
    if n > 1 and np.any(beta[1:] < -1e-7):
        flags["negative_expansion"] = (
            "the thermal expansion is negative at some temperatures: real for a few materials, "
            "but check the volume range and the phonons at every volume"
        )
    result = QHAResult(
        temperatures_K=np.asarray(fit.temperatures),
        volume_A3=np.asarray(fit.equilibrium_volumes) / per_primitive,
        thermal_expansion_per_K=beta,
        bulk_modulus_GPa=np.asarray(fit.bulk_moduli) * EV_A3_TO_GPA,
        gibbs_energy_eV=np.asarray(fit.gibbs_free_energies) / per_primitive,
        volumes_A3=volumes,
        energies_eV=energies,
        phonon_results=results,
        reference=reference,
        flags=flags,
    )
    parameters = dict(
        volume_range=volume_range,
        n_volumes=n_volumes,
        supercell=matrix,
        displacement=displacement,
        fmax=fmax,
        mesh=mesh,
    )
    return finish(result, pot, "qha", parameters, started)
