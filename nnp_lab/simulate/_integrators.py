"""ASE's MD integrators by ensemble and thermostat: one table to build them, one to retarget.

:class:`~nnp_lab.simulate.MolecularDynamics` chooses here; adding a thermostat means adding
one factory (and one retarget function) to the tables below.

Changing the target temperature of a running Nose–Hoover chain, MTK barostat or Bussi
integrator has no public API in ASE: :func:`retarget` sets their internal attributes
(``_kT``, ``_Q``, ``_p_eta``, ``_W``, ``_R``, ``_p_xi``, ``_p_eps``/``_p_g``,
``target_kinetic_energy``) as laid out in ASE 3.29. Neither has telling them how many degrees
of freedom carry the heat (:func:`degrees_of_freedom`): :func:`make_integrator` sets Bussi's
``ndof`` and the chains' ``_num_atoms_global`` and ``_Q[0]``. ``pyproject.toml`` therefore pins
``ase`` to the tested minor release, :func:`check_ase_internals` fails with a clear message
if a future ASE renames them, and ``tests/simulate/test_md.py`` tests every retargeting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms, units

__all__ = [
    "IntegratorSettings",
    "make_integrator",
    "retarget",
    "check_ase_internals",
    "degrees_of_freedom",
]


@dataclass(frozen=True)
class IntegratorSettings:
    """What an integrator factory needs (ASE names, our units)."""

    ensemble: str
    thermostat: str | None
    barostat: str | None
    timestep_fs: float
    temperature_K: float
    friction_per_fs: float
    taut_fs: float
    taup_fs: float
    pressure_GPa: float | None
    rng: np.random.Generator
    #: The degrees of freedom the run's heat is spread over (:func:`degrees_of_freedom`);
    #: None: ASE's count (``atoms.get_number_of_degrees_of_freedom()``).
    ndof: int | None = None

    @property
    def thermostatted(self) -> dict[str, Any]:
        """The keywords every thermostatted ASE integrator takes (ASE units)."""
        return {"timestep": self.timestep_fs * units.fs, "temperature_K": self.temperature_K}


def _verlet(atoms: Atoms, s: IntegratorSettings) -> Any:
    from ase.md.verlet import VelocityVerlet

    return VelocityVerlet(atoms, timestep=s.timestep_fs * units.fs)


def _langevin(atoms: Atoms, s: IntegratorSettings) -> Any:
    from ase.md.langevin import Langevin

    # fixcm=False: ASE deprecates fixcm=True (it does not sample NVT exactly).
    friction = s.friction_per_fs / units.fs
    return Langevin(atoms, **s.thermostatted, friction=friction, fixcm=False, rng=s.rng)


def _bussi(atoms: Atoms, s: IntegratorSettings) -> Any:
    from ase.md.bussi import Bussi

    return Bussi(atoms, **s.thermostatted, taut=s.taut_fs * units.fs, rng=s.rng)


def _nose_hoover(atoms: Atoms, s: IntegratorSettings) -> Any:
    from ase.md.nose_hoover_chain import NoseHooverChainNVT

    return NoseHooverChainNVT(atoms, **s.thermostatted, tdamp=s.taut_fs * units.fs)


def _berendsen(atoms: Atoms, s: IntegratorSettings) -> Any:
    from ase.md.nvtberendsen import NVTBerendsen

    dyn: Any = NVTBerendsen(atoms, **s.thermostatted, taut=s.taut_fs * units.fs)
    dyn.nnp_lab_ndof = s.ndof or atoms.get_number_of_degrees_of_freedom()  # ours, read below
    dyn.set_temperature(temperature_K=_berendsen_target(dyn, s.temperature_K))
    return dyn


def _berendsen_target(dyn: Any, temperature_K: float) -> float:
    # NVTBerendsen scales towards ASE's temperature, which counts every unconstrained degree
    # of freedom; when fewer carry heat (the centre of mass held still), the same kinetic
    # energy is a higher temperature, so ASE's target is lowered by the ratio of the counts.
    return temperature_K * dyn.nnp_lab_ndof / dyn.atoms.get_number_of_degrees_of_freedom()


def _mtk(atoms: Atoms, s: IntegratorSettings) -> Any:
    from ase.md.nose_hoover_chain import IsotropicMTKNPT, MTKNPT

    cls = IsotropicMTKNPT if s.barostat == "isotropic" else MTKNPT
    assert s.pressure_GPa is not None  # ensemble_settings requires it for NPT
    return cls(
        atoms,
        **s.thermostatted,
        pressure_au=s.pressure_GPa * units.GPa,
        tdamp=s.taut_fs * units.fs,
        pdamp=s.taup_fs * units.fs,
    )


#: (ensemble, thermostat) -> factory(atoms, settings) -> ASE integrator.
_FACTORIES: dict[tuple[str, str | None], Callable[[Atoms, IntegratorSettings], Any]] = {
    ("nve", None): _verlet,
    ("nvt", "langevin"): _langevin,
    ("nvt", "bussi"): _bussi,
    ("nvt", "nose-hoover"): _nose_hoover,
    ("nvt", "berendsen"): _berendsen,
    ("npt", "nose-hoover"): _mtk,
}


#: Integrators that conserve the total momentum (and, for a structure in vacuum, the angular
#: momentum): motion md has zeroed at the start stays zero and holds no heat.
_CONSERVING = {
    ("nve", None),
    ("nvt", "bussi"),
    ("nvt", "nose-hoover"),
    ("nvt", "berendsen"),
    ("npt", "nose-hoover"),
}


def degrees_of_freedom(
    atoms: Atoms,
    ensemble: str,
    thermostat: str | None,
    *,
    momentum_zeroed: bool,
    rotation_zeroed: bool,
) -> int:
    """How many degrees of freedom carry the run's kinetic energy.

    ASE's count (``3N`` minus what constraints remove) less the centre-of-mass motion (3)
    when it was zeroed at the start and the integrator conserves momentum, and less the
    rotation (3, or 2 for a linear molecule) when that was zeroed in vacuum too. Langevin
    dynamics thermalises every Cartesian degree of freedom, the centre of mass included,
    so it keeps ASE's count.
    """
    ndof = int(atoms.get_number_of_degrees_of_freedom())
    if (ensemble, thermostat) in _CONSERVING:
        if momentum_zeroed:
            ndof -= 3
        if rotation_zeroed:
            inertia = atoms.get_moments_of_inertia()
            ndof -= int(np.sum(inertia > 1e-8 * max(float(inertia.max()), 1e-300)))
    return max(ndof, 1)


def _count_dof(dyn: Any, s: IntegratorSettings) -> None:
    """Make ``dyn``'s thermostat spread the heat over ``s.ndof`` degrees of freedom.

    ASE's Bussi takes its count from the atoms (``ndof``), and its Nose–Hoover chains use
    ``3 N`` in their equations (``_num_atoms_global``, the first chain mass ``Q[0]``); both
    are set here (ASE 3.29 internals, see :func:`check_ase_internals`). Berendsen's target
    is adjusted in its factory.
    """
    if s.ndof is None:
        return
    if s.thermostat == "bussi":
        dyn.ndof = s.ndof
        dyn.target_kinetic_energy = 0.5 * dyn.temp * s.ndof
    elif s.thermostat == "nose-hoover":
        chain = dyn._thermostat
        ratio = (s.ndof / 3.0) / chain._num_atoms_global
        chain._Q[0] = chain._Q[0] * ratio
        chain._num_atoms_global = s.ndof / 3.0  # only ever used as 3 * this


def make_integrator(atoms: Atoms, settings: IntegratorSettings) -> Any:
    """The ASE integrator for ``settings`` (ensemble and thermostat already validated)."""
    dyn = _FACTORIES[(settings.ensemble, settings.thermostat)](atoms, settings)
    check_ase_internals(dyn)
    _count_dof(dyn, settings)
    return dyn


# -- retargeting a running integrator ----------------------------------------------------
def _set_temperature(dyn: Any, old_K: float, new_K: float) -> None:
    dyn.set_temperature(temperature_K=new_K)  # Langevin: public API


def _retarget_berendsen(dyn: Any, old_K: float, new_K: float) -> None:
    dyn.set_temperature(temperature_K=_berendsen_target(dyn, new_K))


def _retarget_bussi(dyn: Any, old_K: float, new_K: float) -> None:
    dyn.temp = new_K * units.kB
    dyn.target_kinetic_energy = 0.5 * dyn.temp * dyn.ndof


def _retarget_chain(thermostat: Any, ratio: float) -> None:
    # The chain masses Q are proportional to kT; scaling the chain momenta by the same ratio
    # keeps the chain velocities p/Q continuous, so the change is smooth.
    thermostat._kT *= ratio
    thermostat._Q = thermostat._Q * ratio
    thermostat._p_eta = thermostat._p_eta * ratio


def _retarget_nose_hoover(dyn: Any, old_K: float, new_K: float) -> None:
    _retarget_chain(dyn._thermostat, new_K / old_K)


def _retarget_mtk(dyn: Any, old_K: float, new_K: float) -> None:
    ratio = new_K / old_K
    _retarget_chain(dyn._thermostat, ratio)
    barostat = dyn._barostat  # cell mass W and barostat chain masses R scale with kT too
    barostat._kT *= ratio
    barostat._W = barostat._W * ratio
    barostat._R = barostat._R * ratio
    barostat._p_xi = barostat._p_xi * ratio
    for name in ("_p_eps", "_p_g"):  # isotropic / anisotropic cell momentum
        if hasattr(dyn, name):
            setattr(dyn, name, getattr(dyn, name) * ratio)
    dyn._temperature_K = new_K
    dyn._kT = units.kB * new_K


_RETARGET: dict[tuple[str, str | None], Callable[[Any, float, float], None]] = {
    ("nvt", "langevin"): _set_temperature,
    ("nvt", "berendsen"): _retarget_berendsen,
    ("nvt", "bussi"): _retarget_bussi,
    ("nvt", "nose-hoover"): _retarget_nose_hoover,
    ("npt", "nose-hoover"): _retarget_mtk,
}

#: The ASE-internal attributes :func:`retarget` relies on, per integrator class.
_INTERNALS = {
    "Bussi": ("temp", "target_kinetic_energy", "ndof"),
    "NoseHooverChainNVT": ("_thermostat",),
    "IsotropicMTKNPT": ("_thermostat", "_barostat", "_kT", "_temperature_K"),
    "MTKNPT": ("_thermostat", "_barostat", "_kT", "_temperature_K"),
}


def check_ase_internals(dyn: Any) -> None:
    """Raise a clear error if this ASE lacks what :func:`retarget` needs for ``dyn``."""
    import ase

    missing = [a for a in _INTERNALS.get(type(dyn).__name__, ()) if not hasattr(dyn, a)]
    chain = getattr(dyn, "_thermostat", None)
    if chain is not None:
        wanted = ("_kT", "_Q", "_p_eta", "_num_atoms_global")
        missing += [f"_thermostat.{a}" for a in wanted if not hasattr(chain, a)]
    if missing:
        raise RuntimeError(
            f"changing the temperature of a running {type(dyn).__name__} needs ASE internals "
            f"{missing} that ase {ase.__version__} does not have; nnp_lab was tested with "
            "ase 3.29 (pip install 'ase>=3.29,<3.30')"
        )


def retarget(dyn: Any, ensemble: str, thermostat: str | None, old_K: float, new_K: float) -> None:
    """Change a running integrator's target temperature from ``old_K`` to ``new_K``."""
    check_ase_internals(dyn)
    _RETARGET[(ensemble, thermostat)](dyn, old_K, new_K)
