"""Runs: relaxation, molecular dynamics, NEB, vibrations and element-swap Monte Carlo.

Every run exists as a function that returns a result (``relax``, ``md``, ``neb``,
``vibrations``, ``swap_mc``) and, except vibrations, as an object whose ``irun()`` yields one
frozen event per step (``Relaxation``, ``MolecularDynamics``, ``NEBRun``, ``SwapMonteCarlo``);
the functions drain it.

The modules are private (``_md.py`` ...) so that every public dotted name means one thing:
``nnp_lab.simulate.md`` is the function. Import everything from ``nnp_lab.simulate``.
"""

from nnp_lab.simulate._run import Event, Run, RunResult, TrajectoryWriter, attach_progress
from nnp_lab.simulate._md import (
    ENSEMBLES,
    THERMOSTATS,
    MDResult,
    MDStep,
    MolecularDynamics,
    kinetic_temperature,
    md,
)
from nnp_lab.simulate._neb import NEBResult, NEBRun, NEBStep, neb
from nnp_lab.simulate._replicas import LangevinReplicas
from nnp_lab.simulate._relax import OPTIMIZERS, Relaxation, RelaxResult, RelaxStep, relax
from nnp_lab.simulate._swap_mc import SwapMCResult, SwapMCStep, SwapMonteCarlo, swap_mc
from nnp_lab.simulate._vibrations import VibrationsResult, vibrations

__all__ = [
    "Event",
    "Run",
    "RunResult",
    "TrajectoryWriter",
    "attach_progress",
    "relax",
    "Relaxation",
    "RelaxResult",
    "RelaxStep",
    "md",
    "MolecularDynamics",
    "MDResult",
    "MDStep",
    "kinetic_temperature",
    "neb",
    "NEBRun",
    "NEBResult",
    "NEBStep",
    "vibrations",
    "VibrationsResult",
    "swap_mc",
    "SwapMonteCarlo",
    "SwapMCResult",
    "SwapMCStep",
    "ENSEMBLES",
    "THERMOSTATS",
    "OPTIMIZERS",
    "LangevinReplicas",
]
