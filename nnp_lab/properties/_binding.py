"""Binding of guest molecules in a host (molecules in the pores of a MOF or zeolite)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
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
    gas_reference,
    relaxed_copy,
    resolve,
)

__all__ = ["BindingResult", "binding_energy"]

#: eV -> kJ/mol.
EV_TO_KJ_MOL = units.mol / units.kJ


@dataclass(frozen=True, repr=False)
class BindingResult(PropertyResult):
    """Binding energy of guest molecules in a host, per molecule.

    ``E_b = [E(host + n guests) − E(host) − n E(guest, gas)] / n``; negative: bound. No
    counterpoise correction (there is no basis set) and no zero-point or thermal terms:
    compare with binding *energies*, not enthalpies or free energies, or say why not.

    Attributes
    ----------
    binding_energy_eV, binding_energy_kJ_mol : float
        Per guest molecule, relaxed.
    unrelaxed_binding_energy_eV : float
        With the structures as given (host and complex unrelaxed, the gas molecule as given).
    n_guests : int
    complex_energy_eV, host_energy_eV, guest_energy_eV : float
        The three energies (the guest's: one molecule in the gas phase).
    complex, host, guest : ase.Atoms
        The relaxed structures.
    """

    binding_energy_eV: float
    binding_energy_kJ_mol: float
    unrelaxed_binding_energy_eV: float
    n_guests: int
    complex_energy_eV: float
    host_energy_eV: float
    guest_energy_eV: float
    complex: Atoms
    host: Atoms
    guest: Atoms

    def headline(self) -> str:
        return (
            f"E_b={self.binding_energy_eV:.3f} eV ({self.binding_energy_kJ_mol:.1f} kJ/mol) per "
            f"{self.guest.get_chemical_formula()}, {self.n_guests} guest(s)"
        )

    def plot(self) -> Any:
        """Binding energy per molecule, unrelaxed and relaxed."""
        import plotly.graph_objects as go

        fig = go.Figure(
            go.Bar(
                x=["as given", "relaxed"],
                y=[self.unrelaxed_binding_energy_eV, self.binding_energy_eV],
            )
        )
        fig.update_layout(
            title=f"binding of {self.guest.get_chemical_formula()} ({self.n_guests} per cell)",
            yaxis_title="E_b per molecule (eV)",
            height=340,
            width=420,
        )
        return fig


def binding_energy(
    host: Atoms,
    guests: Atoms,
    potential: Potential | str | None = None,
    *,
    n_guests: int = 1,
    relax: bool = True,
    relax_cell: bool = False,
    fmax: float = 0.05,
    vacuum: float = 10.0,
    live: bool = False,
    callback: Callable[[PropertyProgress], Any] | None = None,
) -> BindingResult:
    """Binding energy of guest molecules placed in a host (e.g. H2O or CO2 in a MOF).

    Parameters
    ----------
    host
        The empty host (periodic, e.g. a MOF cell; not modified).
    guests
        The guest atoms, already placed in the host's coordinates (``n_guests`` copies of
        one molecule, atoms of each copy together and in the same order). The complex is
        ``host + guests``.
    potential
        A :class:`~nnp_lab.potentials.Potential` (with ``dispersion="d3"`` for D3), a
        registered name or None (default model); the same for all three energies.
    n_guests
        Number of molecules in ``guests``.
    relax
        Relax the host, the complex and the gas-phase molecule (positions).
    relax_cell
        Also relax the cells of the host and the complex.
    fmax
        Force target of the relaxations, eV/Å.
    vacuum
        Vacuum around the gas-phase molecule in its periodic box, Å.
    live, callback
        Progress bar; progress callback.

    Returns
    -------
    BindingResult
        Flags: ``unbound`` (E_b > 0), ``guest_left`` (a guest atom ended more than 1 Å
        further from every host atom than it started: it drifted out of the site).

    Raises
    ------
    InputError
        ``guests`` not divisible into ``n_guests`` equal molecules; overlapping atoms;
        elements the model lacks.
    """
    n_guests = validation.integer("n_guests", n_guests, minimum=1)
    if len(guests) == 0 or len(guests) % n_guests:
        raise InputError(
            f"{len(guests)} guest atoms cannot be {n_guests} equal molecules; pass n_guests= "
            "the number of molecules in guests"
        )
    per = len(guests) // n_guests
    first = guests[:per]
    if any(
        guests[k * per : (k + 1) * per].get_chemical_symbols() != first.get_chemical_symbols()
        for k in range(n_guests)
    ):
        raise InputError("the guests are not n_guests copies of one molecule (same atom order)")
    fmax = validation.number("fmax", fmax, strict=True, unit="eV/Å")
    started = time.perf_counter()
    pot = resolve(potential)
    host0 = host.copy()
    host0.calc = None
    complex0 = host0 + Atoms(guests.numbers, positions=guests.positions)
    gas0 = gas_reference(first, vacuum)
    for s in (host0, complex0, gas0):
        pot.check(s)
    with Progress("binding", 2 + 3 * int(relax), live=live, callback=callback) as progress:
        progress.stage("evaluating the host, the complex and the molecule")
        e_host0, e_complex0, e_gas0 = (
            r["energy"] for r in evaluate_all(pot, [host0, complex0, gas0], ("energy",))
        )
        progress.advance("evaluated")
        host1, complex1, gas1 = host0, complex0, gas0
        e_host, e_complex, e_gas = e_host0, e_complex0, e_gas0
        if relax:
            host1 = relaxed_copy(host0, pot, cell=relax_cell, fmax=fmax)
            progress.advance("host relaxed")
            complex1 = relaxed_copy(complex0, pot, cell=relax_cell, fmax=fmax)
            progress.advance("complex relaxed")
            gas1 = relaxed_copy(gas0, pot, cell=False, fmax=fmax)
            progress.advance("molecule relaxed")
            e_host, e_complex, e_gas = (s.info["energy_eV"] for s in (host1, complex1, gas1))
        progress.advance("done")
    e_b = (float(e_complex) - float(e_host) - n_guests * float(e_gas)) / n_guests
    e_b0 = (float(e_complex0) - float(e_host0) - n_guests * float(e_gas0)) / n_guests
    flags: dict[str, str] = {}
    if e_b > 0:
        flags["unbound"] = (
            f"the guests are not bound (E_b = {e_b:+.3f} eV per molecule): the model finds them "
            "more stable in the gas phase; without D3 universal models miss most of the "
            "dispersion that binds molecules in pores (try dispersion='d3')"
        )
    if _drifted(complex0, complex1, len(host0)):
        flags["guest_left"] = (
            "a guest drifted away from the host during the relaxation (> 1 Å further from "
            "every host atom): the starting position was not a binding site"
        )
    result = BindingResult(
        binding_energy_eV=e_b,
        binding_energy_kJ_mol=e_b * EV_TO_KJ_MOL,
        unrelaxed_binding_energy_eV=e_b0,
        n_guests=n_guests,
        complex_energy_eV=float(e_complex),
        host_energy_eV=float(e_host),
        guest_energy_eV=float(e_gas),
        complex=complex1,
        host=host1,
        guest=gas1,
        flags=flags,
    )
    parameters = dict(
        n_guests=n_guests, relax=relax, relax_cell=relax_cell, fmax=fmax, vacuum=vacuum
    )
    return finish(result, pot, "binding_energy", parameters, started)


def _drifted(before: Atoms, after: Atoms, n_host: int) -> bool:
    """Whether a guest atom got more than 1 Å further from its nearest host atom."""

    def nearest(atoms: Atoms) -> np.ndarray:
        d = atoms.get_all_distances(mic=bool(atoms.pbc.any()))
        return d[n_host:, :n_host].min(axis=1)

    return bool(np.any(nearest(after) - nearest(before) > 1.0))
