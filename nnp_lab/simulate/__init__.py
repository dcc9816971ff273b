"""Runs: relaxation, molecular dynamics, NEB and vibrations.

Every run exists as a function that returns a result (``relax``, ``md``, ``neb``,
``vibrations``) and, except vibrations, as an object whose ``irun()`` yields one frozen event
per step (``Relaxation``, ``MolecularDynamics``, ``NEBRun``); the functions drain it.
"""

from nnp_lab.simulate._run import Event, Run, RunResult, TrajectoryWriter, attach_progress
from nnp_lab.simulate.md import MDResult, MDStep, MolecularDynamics, md
from nnp_lab.simulate.neb import NEBResult, NEBRun, NEBStep, neb
from nnp_lab.simulate.relax import Relaxation, RelaxResult, RelaxStep, relax
from nnp_lab.simulate.vibrations import VibrationsResult, vibrations

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
    "neb",
    "NEBRun",
    "NEBResult",
    "NEBStep",
    "vibrations",
    "VibrationsResult",
]
