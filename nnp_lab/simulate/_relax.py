"""Geometry (and cell) relaxation with ASE's optimizers, streamed step by step.

:func:`relax` is the one-call entry point; :class:`Relaxation` is the run object behind it
(iterate :meth:`~nnp_lab.simulate._run.Run.irun` for live updates, call
:meth:`~nnp_lab.simulate._run.Run.stop` from another thread or a subscriber to end early).
The optimizers themselves are ASE's (``FIRE``, ``BFGS``, ``LBFGS``, ...); this module wraps
their ``irun()`` generators, turns every step into a frozen :class:`RelaxStep` event, and
writes each frame to the trajectory as it is produced.

Examples
--------
>>> from ase.cluster import Icosahedron
>>> result = relax(Icosahedron("Cu", 2), "emt", fmax=0.01)  # doctest: +SKIP
>>> result.converged, result.energy  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms, units

from nnp_lab.errors import InputError, SimulationError, StructureError
from nnp_lab.potentials import Potential
from nnp_lab import validation
from nnp_lab.simulate._keywords import PRESSURE_BAR, forwarded
from nnp_lab.simulate._optimizers import OPTIMIZERS, resolve_optimizer
from nnp_lab.simulate._run import Event, Run, RunResult, frozen_array, run_to_end

__all__ = ["OPTIMIZERS", "RelaxStep", "RelaxResult", "Relaxation", "relax"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RelaxStep(Event):
    """One optimizer step (step 0 is the starting structure).

    Attributes
    ----------
    fmax : float
        Largest force norm in eV/Å that the optimizer sees: the atomic forces with the
        structure's constraints applied and, for a cell relaxation, also the cell filter's
        generalized (stress) forces. The run converges when ``fmax`` drops below the target.
    forces : numpy.ndarray or None
        Atomic forces in eV/Å, shape ``(n, 3)``, constraints applied; read-only (for force
        arrows in a viewer).
    converged : bool
        Whether ``fmax`` is below the target at this step.
    """

    fmax: float
    forces: np.ndarray | None = None
    converged: bool = False


@dataclass(repr=False)
class RelaxResult(RunResult):
    """Outcome of a relaxation.

    Attributes
    ----------
    atoms : ase.Atoms
        The relaxed structure (a new object) with a single-point calculator holding its
        energy, forces and (periodic cells) stress.
    energy : float
        Final potential energy in eV.
    fmax : float
        Final largest force norm in eV/Å (cell forces included for a cell relaxation).
    converged : bool
        Whether ``fmax`` dropped below the requested target.
    n_steps : int
        Optimizer steps taken (0 when the input was already converged).
    frames : list of ase.Atoms
        One snapshot per step, step 0 (the input) first, each with its single-point results.
    trajectory, stopped, provenance
        See :class:`~nnp_lab.simulate._run.RunResult`.
    """

    atoms: Atoms
    energy: float
    fmax: float
    converged: bool
    n_steps: int
    frames: list[Atoms] = field(default_factory=list)

    @property
    def energies(self) -> np.ndarray:
        """Potential energy (eV) of every frame, step 0 first."""
        return np.array([f.get_potential_energy() for f in self.frames], dtype=float)

    @property
    def initial_energy(self) -> float:
        """Energy (eV) of the starting structure."""
        return float(self.frames[0].get_potential_energy()) if self.frames else self.energy

    def summary(self) -> str:
        """A few lines describing the outcome (energy change, convergence, model, file)."""
        model = self.provenance.get("model", "?")
        params = self.provenance.get("parameters", {})
        target = params.get("fmax")
        state = "converged" if self.converged else "NOT converged"
        if self.stopped:
            state += " (stopped early)"
        lines = [
            f"Relaxation of {self.atoms.get_chemical_formula()} ({len(self.atoms)} atoms) "
            f"with {model}, {params.get('optimizer', '?')}"
            + (", cell relaxed" if params.get("cell") else ""),
            f"  {state} after {self.n_steps} steps: fmax {self.fmax:.4f} eV/Å"
            + (f" (target {target})" if target is not None else ""),
            f"  energy {self.initial_energy:.6f} -> {self.energy:.6f} eV "
            f"(change {self.energy - self.initial_energy:+.6f} eV)",
        ]
        return self._summary_text(lines)

    def __repr__(self) -> str:
        return (
            f"RelaxResult({self.atoms.get_chemical_formula()}, converged={self.converged}, "
            f"n_steps={self.n_steps}, energy={self.energy:.6f} eV, fmax={self.fmax:.4f} eV/Å, "
            f"stopped={self.stopped}, trajectory={self._trajectory_repr})"
        )


class Relaxation(Run):
    """Relax atomic positions (and optionally the cell) with an ASE optimizer, step by step.

    The caller's Atoms is never modified: the run works on a copy (constraints such as
    ``FixAtoms`` are kept). Iterate :meth:`irun` to receive a :class:`RelaxStep` per step, or
    call :meth:`run` to get the :class:`RelaxResult`.

    Parameters
    ----------
    atoms
        Structure to relax (not modified).
    potential
        A :class:`~nnp_lab.potentials.Potential`, a registered name such as ``"emt"``, or
        None for the default universal model.
    fmax
        Convergence target in eV/Å: the run stops when every atomic force norm (and, with
        ``cell=True``, every generalized cell force) is below it.
    steps
        Maximum number of optimizer steps.
    optimizer
        ``"FIRE"`` (default, robust for rough starting structures), ``"BFGS"``, ``"LBFGS"``,
        ``"FIRE2"``, ``"BFGSLineSearch"`` or ``"GPMin"`` (case-insensitive), or an
        :class:`ase.optimize.optimize.Optimizer` subclass.
    cell
        Also relax the cell (``ase.filters.FrechetCellFilter``); needs a 3D periodic
        structure.
    pressure_GPa
        External hydrostatic pressure in GPa for a cell relaxation (default 0; 1 bar =
        1e-4 GPa).
    cell_mask
        Which cell strain components may relax, six booleans in Voigt order xx yy zz yz xz
        xy (``FrechetCellFilter``'s ``mask``); e.g. ``(False, False, True, False, False,
        False)`` relaxes only the length of the third cell vector. None: all of them.
    trajectory
        Path of an ASE ``.traj`` file to write every step to, as it happens.
    pressure_bar
        Deprecated: the pressure in bar (converted, 1 bar = 1e-4 GPa); use ``pressure_GPa``.
        Warns; giving both raises.

    Raises
    ------
    InputError
        Unknown optimizer, non-positive ``fmax``, negative ``steps``, ``cell=True`` on a
        non-periodic structure, or a structure the potential cannot evaluate.
    """

    kind = "relax"

    def __init__(
        self,
        atoms: Atoms,
        potential: Potential | str | None = None,
        *,
        fmax: float = 0.05,
        steps: int = 500,
        optimizer: str | type = "FIRE",
        cell: bool = False,
        pressure_GPa: float = 0.0,
        cell_mask: Sequence[bool] | None = None,
        trajectory: str | os.PathLike | None = None,
        pressure_bar: float | None = None,
    ) -> None:
        pressure_GPa = PRESSURE_BAR.resolve(type(self).__name__, pressure_bar, pressure_GPa, 0.0)
        if not isinstance(atoms, Atoms):
            raise InputError(
                f"relax needs an ase.Atoms, got {type(atoms).__name__}; build one with "
                "nnp_lab.build or ase.io.read"
            )
        validation.number("fmax", fmax, strict=True, unit="eV/Å")
        validation.integer("steps", steps, minimum=0)
        validation.number("pressure_GPa", pressure_GPa, minimum=None, unit="GPa")
        opt_name, opt_cls = resolve_optimizer(optimizer, OPTIMIZERS)
        cell = bool(cell)
        if cell and not bool(np.all(atoms.pbc)):
            raise InputError(
                f"cell=True needs a structure periodic in all three directions, but pbc is "
                f"{atoms.pbc.tolist()}; relax positions only (cell=False), or set "
                "atoms.pbc = True and a cell"
            )
        if pressure_GPa and not cell:
            raise InputError("pressure_GPa only applies to a cell relaxation; pass cell=True")
        if cell_mask is not None:
            if not cell:
                raise InputError("cell_mask only applies to a cell relaxation; pass cell=True")
            cell_mask = tuple(bool(m) for m in cell_mask)
            if len(cell_mask) != 6 or not any(cell_mask):
                raise InputError(
                    "cell_mask must be six booleans (Voigt xx yy zz yz xz xy), at least one "
                    f"True; got {cell_mask}"
                )
        super().__init__(potential, trajectory=trajectory)
        self.potential.check(atoms)  # fail now, not inside the optimizer

        self.atoms = atoms.copy()  # constraints and info are copied; the caller's stay as is
        self.atoms.calc = self.potential.calculator()
        self.fmax = float(fmax)
        self.steps = int(steps)
        self.optimizer_name = opt_name
        self._optimizer_cls = opt_cls
        self.cell = cell
        self.pressure_GPa = float(pressure_GPa)
        self.cell_mask = cell_mask
        self.frames: list[Atoms] = []
        self._fmax_now = float("nan")
        self._converged = False
        self._step = 0
        self.parameters = {
            "fmax": self.fmax,
            "steps": self.steps,
            "optimizer": opt_name,
            "cell": cell,
            "pressure_GPa": self.pressure_GPa,
            "cell_mask": None if cell_mask is None else list(cell_mask),
            "n_atoms": len(atoms),
            "formula": atoms.get_chemical_formula(),
        }

    # ------------------------------------------------------------------------------------
    def _optimizer_target(self) -> Any:
        """What the optimizer moves: the atoms, or for a cell relaxation a
        ``FrechetCellFilter`` on them at the external pressure."""
        if not self.cell:
            return self.atoms
        from ase.filters import FrechetCellFilter

        return FrechetCellFilter(
            self.atoms,
            mask=None if self.cell_mask is None else list(self.cell_mask),
            scalar_pressure=self.pressure_GPa * units.GPa,
        )

    def _steps(self) -> Iterator[RelaxStep]:
        atoms = self.atoms
        target = self._optimizer_target()
        with warnings.catch_warnings():
            # ASE warns about deprecated defaults of some optimizers; they are not the user's.
            warnings.simplefilter("ignore", FutureWarning)
            opt = self._optimizer_cls(target, logfile=None)
        logger.info(
            "relaxing %s (%d atoms) with %s, fmax=%g, steps=%d%s",
            atoms.get_chemical_formula(),
            len(atoms),
            self.optimizer_name,
            self.fmax,
            self.steps,
            ", cell" if self.cell else "",
        )
        generator = opt.irun(fmax=self.fmax, steps=self.steps)
        while True:
            try:
                with warnings.catch_warnings():
                    # FrechetCellFilter's matrix logarithm: scipy warns on every step that
                    # logm "may be inaccurate" with an error estimate of ~1e-13; not actionable.
                    warnings.filterwarnings("ignore", "logm result may be inaccurate")
                    converged = next(generator)
            except StopIteration:
                break
            except StructureError as exc:
                raise SimulationError(
                    f"the relaxation produced an invalid structure after step {self._step}: "
                    f"{exc}. {self._kept_note()}Try another optimizer (e.g. 'FIRE') or check the "
                    "starting structure."
                ) from exc
            step = int(opt.nsteps)
            yield self._record(target, step, bool(converged))
        if not self._converged and not self.stop_requested:
            warnings.warn(
                f"relaxation not converged after {self._step} steps: fmax {self._fmax_now:.4f} "
                f"eV/Å > {self.fmax}; continue from result.atoms, raise steps=, or try "
                "another optimizer",
                stacklevel=2,
            )

    def _record(self, target: Any, step: int, converged: bool) -> RelaxStep:
        atoms = self.atoms
        energy = float(atoms.get_potential_energy())
        forces = atoms.get_forces()  # constraints applied
        gen_forces = target.get_forces() if target is not atoms else forces
        if not (np.isfinite(energy) and np.all(np.isfinite(gen_forces))):
            raise SimulationError(
                f"the potential returned a non-finite energy or forces at relaxation step "
                f"{step} (energy={energy}). {self._kept_note()}Check the structure and the model."
            )
        fmax = float(np.sqrt((np.asarray(gen_forces) ** 2).sum(axis=1)).max())
        self.frames.append(self.keep_frame(atoms, step))
        self._fmax_now = fmax
        self._converged = converged
        self._step = step
        return RelaxStep(
            **self.event_fields(atoms, step),
            energy=energy,
            fmax=fmax,
            forces=frozen_array(forces),
            converged=converged,
        )

    def _result(self) -> RelaxResult:
        if self.frames:
            last = self.frames[-1]
            final = last.copy()
            final.calc = last.calc  # single point results of that frame
            final.info.pop("step", None)
            energy = float(last.get_potential_energy())
        else:  # interrupted before step 0 finished
            final = self.atoms.copy()
            final.calc = None
            energy = float("nan")
        return RelaxResult(
            atoms=final,
            energy=energy,
            fmax=self._fmax_now,
            converged=self._converged,
            n_steps=self._step,
            frames=list(self.frames),
        )


def relax(
    atoms: Atoms,
    potential: Potential | str | None = None,
    *,
    fmax: float = 0.05,
    steps: int = 500,
    optimizer: str | type = "FIRE",
    cell: bool = False,
    pressure_GPa: float = 0.0,
    cell_mask: Sequence[bool] | None = None,
    trajectory: str | os.PathLike | None = None,
    live: bool = False,
    pressure_bar: float | None = None,
) -> RelaxResult:
    """Relax a structure's atomic positions (and optionally its cell).

    Parameters
    ----------
    atoms
        Structure to relax; it is not modified (the result holds a new Atoms).
    potential
        A :class:`~nnp_lab.potentials.Potential`, a registered name (``"sevennet-0"``,
        ``"emt"``, ...) or None for the default universal model.
    fmax
        Force convergence target in eV/Å.
    steps
        Maximum number of optimizer steps.
    optimizer
        ``"FIRE"``, ``"BFGS"``, ``"LBFGS"``, ``"FIRE2"``, ``"BFGSLineSearch"``, ``"GPMin"``
        (case-insensitive) or an ASE Optimizer subclass.
    cell
        Relax the cell too (``FrechetCellFilter``; needs ``pbc=True``).
    pressure_GPa
        External pressure in GPa for a cell relaxation (1 bar = 1e-4 GPa).
    cell_mask
        Which cell strain components (Voigt order xx yy zz yz xz xy) may relax; None: all.
    trajectory
        ``.traj`` path to write each step to while the run goes on.
    live
        Show live progress while running.
    pressure_bar
        Deprecated: the pressure in bar; use ``pressure_GPa``. Warns; giving both raises.

    Returns
    -------
    RelaxResult
        Final structure, energy, fmax, convergence flag, all frames and provenance.
        ``stopped`` is True when the run was interrupted (Ctrl-C) — the partial result is
        returned, not lost.

    Raises
    ------
    InputError
        Bad options or a structure the potential cannot evaluate (see :class:`Relaxation`).
    SimulationError
        The potential returned NaN/inf forces during the run.

    Examples
    --------
    >>> from ase.build import bulk
    >>> res = relax(bulk("Cu", a=3.7), "emt", cell=True)  # doctest: +SKIP
    >>> res.atoms.cell.cellpar()[0]  # doctest: +SKIP
    """
    run = Relaxation(atoms, potential, **forwarded(Relaxation, locals()))
    return run_to_end(run, live=live, total=steps)
