"""Surfaces: surface energies converged in slab thickness, and adsorption energies by site."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms

from nnp_lab import build, validation
from nnp_lab.errors import InputError
from nnp_lab.potentials import Potential
from nnp_lab.properties._common import (
    EV_A2_TO_J_M2,
    Progress,
    PropertyProgress,
    PropertyResult,
    evaluate_all,
    finish,
    gas_reference,
    reference_cell,
    relaxed_copy,
    require_periodic,
    resolve,
)

__all__ = [
    "SurfaceEnergyResult",
    "surface_energy",
    "AdsorptionSite",
    "AdsorptionResult",
    "adsorption_energy",
]

#: Change of the surface energy (J/m²) between the two thickest slabs above which it is
#: flagged as not converged in thickness.
CONVERGENCE_J_M2 = 0.02


@dataclass(frozen=True, repr=False)
class SurfaceEnergyResult(PropertyResult):
    """Surface energy ``γ = (E_slab − N e_bulk) / (2 A)`` of a symmetric slab, per thickness.

    Attributes
    ----------
    surface_energy_J_m2 : float
        γ of the thickest slab, relaxed (unrelaxed when ``relax=False``).
    unrelaxed_surface_energy_J_m2 : float
        γ of the thickest slab with the atoms at their bulk positions.
    miller : tuple of int
    layers : tuple of int
        Slab thicknesses computed (atomic layers).
    surface_energies_J_m2, unrelaxed_surface_energies_J_m2 : numpy.ndarray
        γ for every thickness in ``layers`` (the convergence table).
    area_A2 : float
        Area of one face of the slab cell.
    bulk_energy_per_atom_eV : float
        ``e_bulk`` of the relaxed crystal.
    reference : ase.Atoms
        The (relaxed) bulk cell.
    structures : list of ase.Atoms
        The (relaxed) slabs, thinnest first.
    """

    surface_energy_J_m2: float
    unrelaxed_surface_energy_J_m2: float
    miller: tuple[int, ...]
    layers: tuple[int, ...]
    surface_energies_J_m2: np.ndarray
    unrelaxed_surface_energies_J_m2: np.ndarray
    area_A2: float
    bulk_energy_per_atom_eV: float
    reference: Atoms
    structures: list[Atoms] = field(default_factory=list)

    def headline(self) -> str:
        hkl = "".join(str(i) for i in self.miller)
        return (
            f"γ({hkl})={self.surface_energy_J_m2:.3f} J/m² "
            f"(unrelaxed {self.unrelaxed_surface_energy_J_m2:.3f}) at {self.layers[-1]} layers"
        )

    def plot(self) -> Any:
        """γ against slab thickness: the convergence."""
        import plotly.graph_objects as go

        fig = go.Figure()
        fig.add_scatter(x=list(self.layers), y=self.surface_energies_J_m2, name="relaxed")
        fig.add_scatter(
            x=list(self.layers), y=self.unrelaxed_surface_energies_J_m2, name="unrelaxed"
        )
        hkl = "".join(str(i) for i in self.miller)
        fig.update_layout(
            title=f"({hkl}) surface energy vs slab thickness",
            xaxis_title="atomic layers",
            yaxis_title="γ (J/m²)",
            height=360,
            width=560,
        )
        return fig


def surface_energy(
    bulk: Atoms,
    miller: Sequence[int],
    potential: Potential | str | None = None,
    *,
    layers: Sequence[int] = (4, 6, 8),
    vacuum: float = 10.0,
    size: Sequence[int] = (1, 1),
    relax: bool = True,
    fmax: float = 0.01,
    live: bool = False,
    callback: Callable[[PropertyProgress], Any] | None = None,
) -> SurfaceEnergyResult:
    """Surface energy of a crystal facet, converged in slab thickness.

    The bulk cell is relaxed (cell and positions), slabs of every thickness in ``layers``
    are cut from it with :func:`nnp_lab.build.surface` (symmetric: the same termination on
    both faces, checked), evaluated unrelaxed in one batched call and relaxed (positions,
    fixed cell), and ``γ = (E_slab − N e_bulk) / (2 A)`` is reported per thickness.

    Parameters
    ----------
    bulk
        The crystal (periodic in 3D; not modified).
    miller
        Miller indices of the facet (conventional cell; see :func:`nnp_lab.build.surface`).
    potential
        A :class:`~nnp_lab.potentials.Potential`, a registered name or None (default model).
    layers
        Slab thicknesses (atomic layers) to compute, thinnest first; the thickest gives the
        reported value, the others show the convergence.
    vacuum
        Vacuum on each side of the slab, Å.
    size
        Lateral repetitions of the surface cell.
    relax
        Relax the bulk first and every slab's positions.
    fmax
        Force target of the relaxations, eV/Å.
    live, callback
        Progress bar; progress callback.

    Returns
    -------
    SurfaceEnergyResult
        Flags: ``not_converged`` (γ of the two thickest slabs differs by more than
        :data:`CONVERGENCE_J_M2` J/m²: add thicker slabs), ``asymmetric`` (the two faces of a
        slab differ in composition: γ is then an average of two terminations), ``negative``.

    Raises
    ------
    InputError
        Not a crystal, a Miller index of zeros, fewer than one thickness.
    """
    require_periodic(bulk, "surface_energy")
    hkl = tuple(int(i) for i in miller)
    if not any(hkl):
        raise InputError(
            f"miller={tuple(miller)} names no plane; give a non-zero index such as (1, 1, 1)"
        )
    thicknesses = sorted({validation.integer("layers", n, minimum=2) for n in layers})
    if not thicknesses:
        raise InputError("layers must hold at least one slab thickness, e.g. (4, 6, 8)")
    fmax = validation.number("fmax", fmax, strict=True, unit="eV/Å")
    started = time.perf_counter()
    pot = resolve(potential)
    pot.check(bulk)
    total = 2 + int(relax) * (1 + len(thicknesses))
    with Progress("surface_energy", total, live=live, callback=callback) as progress:
        reference = reference_cell(bulk, pot, relax=relax, fmax=fmax, progress=progress)
        slabs = [
            build.surface(reference, hkl, n, vacuum=vacuum, size=tuple(size)) for n in thicknesses
        ]
        progress.stage(f"evaluating the crystal and {len(slabs)} slabs")
        results = evaluate_all(pot, [reference] + slabs, ("energy",))
        e_bulk = results[0]["energy"] / len(reference)
        unrelaxed = np.array([r["energy"] for r in results[1:]])
        progress.advance("evaluated")
        relaxed_slabs, energies = slabs, unrelaxed
        if relax:
            relaxed_slabs = []
            for k, slab in enumerate(slabs):
                relaxed_slabs.append(relaxed_copy(slab, pot, cell=False, fmax=fmax))
                progress.advance(f"relaxed slab {k + 1} of {len(slabs)}")
            energies = np.array([s.info["energy_eV"] for s in relaxed_slabs])
        progress.advance("done")
    area = float(np.linalg.norm(np.cross(slabs[0].cell[0], slabs[0].cell[1])))
    n_atoms = np.array([len(s) for s in slabs])
    gamma = (energies - n_atoms * e_bulk) / (2 * area) * EV_A2_TO_J_M2
    gamma_unrelaxed = (unrelaxed - n_atoms * e_bulk) / (2 * area) * EV_A2_TO_J_M2
    flags = _surface_flags(slabs, gamma, thicknesses)
    result = SurfaceEnergyResult(
        surface_energy_J_m2=float(gamma[-1]),
        unrelaxed_surface_energy_J_m2=float(gamma_unrelaxed[-1]),
        miller=hkl,
        layers=tuple(thicknesses),
        surface_energies_J_m2=gamma,
        unrelaxed_surface_energies_J_m2=gamma_unrelaxed,
        area_A2=area,
        bulk_energy_per_atom_eV=float(e_bulk),
        reference=reference,
        structures=relaxed_slabs,
        flags=flags,
    )
    parameters = dict(
        miller=hkl, layers=thicknesses, vacuum=vacuum, size=tuple(size), relax=relax, fmax=fmax
    )
    return finish(result, pot, "surface_energy", parameters, started)


def _surface_flags(slabs: list[Atoms], gamma: np.ndarray, layers: list[int]) -> dict[str, str]:
    flags: dict[str, str] = {}
    if len(gamma) >= 2 and abs(gamma[-1] - gamma[-2]) > CONVERGENCE_J_M2:
        flags["not_converged"] = (
            f"γ changes by {abs(gamma[-1] - gamma[-2]):.3f} J/m² from {layers[-2]} to "
            f"{layers[-1]} layers (> {CONVERGENCE_J_M2} J/m²): add thicker slabs to layers="
        )
    for slab in slabs:
        layer = slab.arrays.get("layer")
        if layer is None:
            continue
        bottom = sorted(slab[layer == layer.min()].get_chemical_symbols())
        top = sorted(slab[layer == layer.max()].get_chemical_symbols())
        if bottom != top:
            flags["asymmetric"] = (
                f"the {len(slab)}-atom slab has different top ({''.join(top)}) and bottom "
                f"({''.join(bottom)}) layers: γ is the average of two terminations; choose a "
                "thickness or termination that makes the slab symmetric"
            )
            break
    if gamma[-1] < 0:
        flags["negative"] = (
            f"γ is negative ({gamma[-1]:.3f} J/m²): the slab is more stable than the crystal "
            "in this model — check the bulk phase and the relaxation"
        )
    return flags


@dataclass(frozen=True)
class AdsorptionSite:
    """One adsorption site and its energy.

    Attributes
    ----------
    label, kind : str
        The site's label (``"fcc-0"``) and kind (``"top"``, ``"bridge"``, ``"fcc"``,
        ``"hcp"``, ``"hollow"``) as :func:`nnp_lab.build.adsorption_sites` names them.
    adsorption_energy_eV : float
        ``E(slab + adsorbate) − E(slab) − E(gas adsorbate)``, relaxed (negative: binds).
    unrelaxed_adsorption_energy_eV : float
        The same with the adsorbate as placed and the slab as relaxed alone.
    displacement_A : float
        How far (in the surface plane) the binding atom moved during the relaxation; a
        large value means it left the site.
    structure : ase.Atoms
        The relaxed slab with the adsorbate.
    """

    label: str
    kind: str
    adsorption_energy_eV: float
    unrelaxed_adsorption_energy_eV: float
    displacement_A: float
    structure: Atoms


@dataclass(frozen=True, repr=False)
class AdsorptionResult(PropertyResult):
    """Adsorption energies of one adsorbate on a slab, strongest site first.

    Attributes
    ----------
    adsorption_energy_eV : float
        The lowest (most binding) adsorption energy over the sites computed.
    best : AdsorptionSite
        The site it belongs to.
    sites : list of AdsorptionSite
        Every site computed, sorted by adsorption energy.
    slab_energy_eV, gas_energy_eV : float
        References: the relaxed clean slab and the relaxed molecule in a periodic box.
    adsorbate : str
        Formula of the adsorbate.
    slab, gas : ase.Atoms
        The relaxed clean slab and gas-phase molecule.
    """

    adsorption_energy_eV: float
    best: AdsorptionSite
    sites: list[AdsorptionSite]
    slab_energy_eV: float
    gas_energy_eV: float
    adsorbate: str
    slab: Atoms
    gas: Atoms

    def headline(self) -> str:
        return (
            f"E_ads({self.adsorbate})={self.adsorption_energy_eV:.3f} eV at {self.best.label}"
            f" ({len(self.sites)} sites)"
        )

    def plot(self) -> Any:
        """Adsorption energy per site (relaxed and as placed)."""
        import plotly.graph_objects as go

        labels = [s.label for s in self.sites]
        fig = go.Figure()
        fig.add_bar(x=labels, y=[s.adsorption_energy_eV for s in self.sites], name="relaxed")
        fig.add_bar(
            x=labels, y=[s.unrelaxed_adsorption_energy_eV for s in self.sites], name="as placed"
        )
        fig.update_layout(
            title=f"{self.adsorbate} adsorption energy by site",
            yaxis_title="E_ads (eV)",
            barmode="group",
            height=360,
            width=560,
        )
        return fig


def adsorption_energy(
    slab: Atoms,
    adsorbate: Atoms | str,
    potential: Potential | str | None = None,
    *,
    site: Any = "all",
    height: float = 2.0,
    binding_atom: int | str = 0,
    relax: bool = True,
    fmax: float = 0.05,
    vacuum: float = 10.0,
    live: bool = False,
    callback: Callable[[PropertyProgress], Any] | None = None,
) -> AdsorptionResult:
    """Adsorption energy of a molecule or atom on a slab, at one site or every distinct one.

    ``E_ads = E(slab + adsorbate) − E(slab) − E(adsorbate in the gas phase)``, each relaxed
    with the same potential (pass a potential with ``dispersion="d3"`` for D3; it applies to
    all three). The gas reference is the molecule relaxed alone in a periodic box with
    ``vacuum`` Å on every side, the same periodic-box convention as the slab. No
    counterpoise or zero-point correction is applied.

    Parameters
    ----------
    slab
        A slab with its surface normal along +z (e.g. from :func:`nnp_lab.build.surface`;
        not modified); its constraints (fixed bottom layers) are kept.
    adsorbate
        An Atoms or a name/SMILES for :func:`nnp_lab.build.molecule` (``"CO"``, ``"H2O"``).
    potential
        A :class:`~nnp_lab.potentials.Potential`, a registered name or None (default model).
    site
        ``"all"`` (every symmetry-distinct site of :func:`nnp_lab.build.adsorption_sites`),
        a site kind or label, a :class:`~nnp_lab.build.Site`, x/y coordinates, or a list of
        these.
    height, binding_atom
        Placement, as in :func:`nnp_lab.build.add_adsorbate`.
    relax
        Relax the clean slab, the molecule and every adsorbed structure (positions).
    fmax
        Force target of the relaxations, eV/Å.
    vacuum
        Vacuum around the gas-phase molecule, Å.
    live, callback
        Progress bar; progress callback.

    Returns
    -------
    AdsorptionResult
        Sorted by adsorption energy. Flags: ``moved`` (a binding atom left its site by more
        than 1 Å during the relaxation: that site is not a minimum), ``unbound`` (no site
        binds: every energy > 0).

    Raises
    ------
    InputError
        A structure that is not a slab, an unknown site, elements the model lacks.
    """
    molecule = build.molecule(adsorbate) if isinstance(adsorbate, str) else adsorbate.copy()
    sites = _sites(slab, site)
    fmax = validation.number("fmax", fmax, strict=True, unit="eV/Å")
    started = time.perf_counter()
    pot = resolve(potential)
    placed = [
        build.add_adsorbate(slab, molecule, s, height=height, binding_atom=binding_atom)
        for s in sites
    ]
    for structure in placed:
        pot.check(structure)
    with Progress("adsorption", 3 + len(placed), live=live, callback=callback) as progress:
        clean = slab.copy()
        clean.calc = None
        gas = gas_reference(molecule, vacuum)
        progress.stage("evaluating the slab, the molecule and the placed adsorbates")
        results = evaluate_all(pot, [clean, gas] + placed, ("energy",))
        e_slab, e_gas = results[0]["energy"], results[1]["energy"]
        unrelaxed = [r["energy"] for r in results[2:]]
        progress.advance("evaluated")
        final = placed
        if relax:
            clean = relaxed_copy(clean, pot, cell=False, fmax=fmax)
            gas = relaxed_copy(gas, pot, cell=False, fmax=fmax)
            e_slab, e_gas = clean.info["energy_eV"], gas.info["energy_eV"]
            progress.advance("relaxed the references", 2)
            final = []
            for k, structure in enumerate(placed):
                final.append(relaxed_copy(structure, pot, cell=False, fmax=fmax))
                progress.advance(f"relaxed site {k + 1} of {len(placed)}")
        energies = [f.info["energy_eV"] for f in final] if relax else unrelaxed
    n_slab = len(slab)
    out = []
    for s, before, after, e, e0 in zip(sites, placed, final, energies, unrelaxed):
        moved = float(np.linalg.norm((after.positions[n_slab] - before.positions[n_slab])[:2]))
        out.append(
            AdsorptionSite(
                label=s.label,
                kind=s.kind,
                adsorption_energy_eV=float(e - e_slab - e_gas),
                unrelaxed_adsorption_energy_eV=float(e0 - e_slab - e_gas),
                displacement_A=moved,
                structure=after,
            )
        )
    out.sort(key=lambda a: a.adsorption_energy_eV)
    result = AdsorptionResult(
        adsorption_energy_eV=out[0].adsorption_energy_eV,
        best=out[0],
        sites=out,
        slab_energy_eV=float(e_slab),
        gas_energy_eV=float(e_gas),
        adsorbate=molecule.get_chemical_formula(),
        slab=clean,
        gas=gas,
        flags=_adsorption_flags(out),
    )
    parameters = dict(
        site=[s.label for s in sites],
        height=height,
        binding_atom=binding_atom,
        relax=relax,
        fmax=fmax,
        vacuum=vacuum,
    )
    return finish(result, pot, "adsorption_energy", parameters, started)


def _sites(slab: Atoms, site: Any) -> list[Any]:
    """The :class:`~nnp_lab.build.Site` objects that ``site`` names."""
    available = build.adsorption_sites(slab)
    if isinstance(site, str) and site == "all":
        return available
    wanted = site if isinstance(site, list) else [site]
    out = []
    for w in wanted:
        if isinstance(w, build.Site):
            out.append(w)
        elif isinstance(w, str):
            match = [s for s in available if w in (s.label, s.kind)]
            if not match:
                names = sorted({s.label for s in available} | {s.kind for s in available})
                raise InputError(f"no adsorption site {w!r} on this slab; choose from {names}")
            out.append(match[0])
        else:
            xy = np.asarray(w, dtype=float)[:2]
            out.append(
                build.Site(kind="point", position=np.array([*xy, 0.0]), atoms=(), label="xy")
            )
    return out


def _adsorption_flags(sites: list[AdsorptionSite]) -> dict[str, str]:
    flags: dict[str, str] = {}
    moved = [s.label for s in sites if s.displacement_A > 1.0]
    if moved:
        flags["moved"] = (
            f"the adsorbate left site(s) {', '.join(moved)} during the relaxation (> 1 Å in "
            "the surface plane): those sites are not minima in this model; the energies belong "
            "to where it ended"
        )
    if all(s.adsorption_energy_eV > 0 for s in sites):
        flags["unbound"] = (
            "no site binds the adsorbate (every adsorption energy > 0): the model finds the "
            "gas phase more stable; universal models trained on bulk data (MPtrj) are least "
            "reliable for adsorbates — compare with a reference calculation"
        )
    return flags
