"""What the trajectory analyses (diffusion, RDF, vibrational DOS) share: reading the input,
the time between frames, unwrapping across periodic boundaries, and provenance.

These analyses evaluate no potential: they read frames that an MD run (ours or anyone's)
already made. Their input ``traj`` is an :class:`~nnp_lab.simulate.MDResult`, a trajectory
file (anything :func:`ase.io.read` reads, all frames) or a list of :class:`ase.Atoms`; it is
never modified.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeVar, Union

import numpy as np
from ase import Atoms

from nnp_lab import validation
from nnp_lab.errors import InputError
from nnp_lab.properties._common import PropertyResult, PropertyWarning, jsonable
from nnp_lab.simulate import MDResult, kinetic_temperature

__all__ = [
    "TrajectoryInput",
    "Frames",
    "read_frames",
    "frame_interval_fs",
    "skip_frames",
    "unwrapped_displacements",
    "species_indices",
    "analysis_provenance",
    "finish_analysis",
]

#: What the analyses accept as ``traj``.
TrajectoryInput = Union[MDResult, str, os.PathLike, Sequence[Atoms]]

R = TypeVar("R", bound=PropertyResult)

#: Relative tolerance on the spacing of frame times before frames count as unevenly spaced.
_EVEN_RTOL = 1e-6


@dataclass(frozen=True)
class Frames:
    """Frames read from a ``traj`` input, with what the input says about them.

    Attributes
    ----------
    atoms : list of ase.Atoms
        The frames (the caller's objects: read, never modified).
    time_ps : numpy.ndarray or None
        Time of each frame in ps, when the input records it (MDResult, our ``.traj`` files'
        ``info["time_ps"]``).
    md_temperature_K : numpy.ndarray or None
        Instantaneous temperature per frame, K (MDResult, or frames with momenta).
    target_temperature_K : float or None
        The thermostat target of an NVT/NPT MDResult whose target never changed.
    source : dict
        What the input was (kind, path, number of frames, the MD run's model and parameters).
    """

    atoms: list[Atoms]
    time_ps: np.ndarray | None
    md_temperature_K: np.ndarray | None
    target_temperature_K: float | None
    source: dict[str, Any] = field(default_factory=dict)

    def subset(self, keep: slice) -> Frames:
        """The frames ``keep`` selects, with their times and temperatures."""
        return dataclasses.replace(
            self,
            atoms=self.atoms[keep],
            time_ps=None if self.time_ps is None else self.time_ps[keep],
            md_temperature_K=None if self.md_temperature_K is None else self.md_temperature_K[keep],
        )

    def mean_temperature_K(self) -> float | None:
        """The thermostat target, else the mean instantaneous temperature, else None."""
        if self.target_temperature_K is not None:
            return self.target_temperature_K
        if self.md_temperature_K is not None and len(self.md_temperature_K):
            value = float(np.mean(self.md_temperature_K))
            return value if value > 0 else None
        return None


def read_frames(traj: Any, what: str, *, min_frames: int = 2) -> Frames:
    """The frames of an MDResult, a trajectory file or a list of Atoms.

    Parameters
    ----------
    traj
        :class:`~nnp_lab.simulate.MDResult`, a path (read with ``ase.io.read(path, ":")``)
        or a sequence of :class:`ase.Atoms`.
    what
        The analysis' name, for messages.
    min_frames
        Fewest frames accepted.

    Raises
    ------
    InputError
        A missing file, too few frames, frames whose atoms differ.
    TypeError
        Anything else.
    """
    if isinstance(traj, MDResult):
        frames = _from_md_result(traj)
    elif isinstance(traj, (str, os.PathLike)):
        frames = _from_file(Path(traj), what)
    elif isinstance(traj, Atoms):
        raise InputError(
            f"{what} needs a trajectory (several frames), got a single Atoms; pass an MDResult, "
            "a .traj path or a list of Atoms"
        )
    elif isinstance(traj, Sequence) and all(isinstance(a, Atoms) for a in traj):
        frames = _from_atoms(list(traj), {"input": "list of Atoms"})
    else:
        raise TypeError(
            f"{what} takes an MDResult, a trajectory path or a list of ase.Atoms, not "
            f"{type(traj).__name__}"
        )
    _check_frames(frames.atoms, what, min_frames)
    return frames


def _from_md_result(res: MDResult) -> Frames:
    atoms = list(res.frames)
    prov = res.provenance or {}
    params = dict(prov.get("parameters", {}))
    target = None
    if params.get("ensemble") in ("nvt", "npt") and "temperature_schedule" not in params:
        value = params.get("temperature_K")
        target = float(value) if value is not None and value > 0 else None
    times = np.asarray(res.time_ps, dtype=float)
    temps = np.asarray(res.temperature_K, dtype=float)
    source = {
        "input": "MDResult",
        "trajectory": None if res.trajectory is None else str(res.trajectory),
        "md": {k: prov.get(k) for k in ("model", "model_version", "level_of_theory", "dispersion")}
        | {"parameters": params},
    }
    return Frames(
        atoms=atoms,
        time_ps=times if len(times) == len(atoms) else None,
        md_temperature_K=temps if len(temps) == len(atoms) else None,
        target_temperature_K=target,
        source=source,
    )


def _from_file(path: Path, what: str) -> Frames:
    if not path.exists():
        raise InputError(f"{what}: no trajectory file {str(path)!r}; check the path")
    import ase.io

    try:
        images = ase.io.read(path, ":")
    except Exception as exc:  # ase raises many kinds for unreadable files
        raise InputError(f"{what}: ase.io.read could not read {str(path)!r}: {exc}") from None
    images = images if isinstance(images, list) else [images]
    return _from_atoms(images, {"input": "file", "path": str(path)})


def _from_atoms(atoms: list[Atoms], source: dict[str, Any]) -> Frames:
    times = None
    if atoms and all("time_ps" in a.info for a in atoms):
        times = np.array([float(a.info["time_ps"]) for a in atoms])
    temps = None
    if atoms and all(a.has("momenta") for a in atoms):
        # Frames written by md carry the run's degrees of freedom (the centre-of-mass motion
        # it held still excluded); others get ASE's count.
        temps = np.array(
            [
                float(kinetic_temperature(a.get_kinetic_energy(), a.info["degrees_of_freedom"]))
                if "degrees_of_freedom" in a.info
                else a.get_temperature()
                for a in atoms
            ]
        )
    return Frames(atoms, times, temps, None, source)


def _check_frames(atoms: list[Atoms], what: str, min_frames: int) -> None:
    if len(atoms) < min_frames:
        raise InputError(
            f"{what} needs at least {min_frames} frames, got {len(atoms)}; run longer or record "
            "frames more often (md(..., interval=...))"
        )
    first = atoms[0]
    if len(first) == 0:
        raise InputError(f"{what}: the frames hold no atoms")
    for k, a in enumerate(atoms):
        if len(a) != len(first) or not np.array_equal(a.numbers, first.numbers):
            raise InputError(
                f"{what}: frame {k} has other atoms than frame 0 ({a.get_chemical_formula()} vs "
                f"{first.get_chemical_formula()}, or another order); every frame must hold the "
                "same atoms in the same order"
            )
        if not np.all(np.isfinite(a.positions)):
            raise InputError(f"{what}: frame {k} has NaN or infinite positions")


def frame_interval_fs(frames: Frames, timestep_fs: float | None, what: str) -> tuple[Frames, float]:
    """The time between consecutive frames in fs, and the frames (the last one dropped when
    only it is off the even spacing, as an MD run's last frame can be).

    ``timestep_fs`` is the user's value (time between *frames*); when the frames record
    their times it must agree with them.

    Raises
    ------
    InputError
        No time known and none given, uneven frame times, or a ``timestep_fs`` that
        contradicts the recorded times.
    """
    given = validation.number("timestep_fs", timestep_fs, strict=True, allow_none=True, unit="fs")
    if frames.time_ps is None:
        if given is None:
            raise InputError(
                f"{what} needs the time between frames: pass timestep_fs= (in fs: the MD time "
                "step times the recording interval), or pass the MDResult itself"
            )
        return frames, given
    steps_fs = np.diff(frames.time_ps) * 1000.0
    if (
        len(steps_fs) > 1
        and not _even(steps_fs[-1:], steps_fs[0])
        and _even(steps_fs[:-1], steps_fs[0])
    ):
        frames = frames.subset(slice(0, -1))  # a run's last frame, off the recording interval
        steps_fs = steps_fs[:-1]
    if not steps_fs[0] > 0 or not _even(steps_fs, steps_fs[0]):
        raise InputError(
            f"{what} needs frames evenly spaced in time; these are "
            f"{np.min(steps_fs):.4g}–{np.max(steps_fs):.4g} fs apart (from their time_ps); pass "
            "frames recorded at one interval"
        )
    recorded = float(np.mean(steps_fs))
    if given is not None and abs(given - recorded) > 1e-3 * recorded:
        raise InputError(
            f"timestep_fs={given:g} but the frames are {recorded:g} fs apart (their recorded "
            "time_ps); timestep_fs means the time between frames (MD time step × interval): "
            "leave it out to use the recorded times"
        )
    return frames, recorded


def _even(steps: np.ndarray, reference: float) -> bool:
    return bool(np.all(np.abs(steps - reference) <= _EVEN_RTOL * abs(reference) + 1e-9))


def skip_frames(frames: Frames, interval_fs: float, skip_ps: float, what: str) -> Frames:
    """``frames`` without those in the first ``skip_ps`` (equilibration)."""
    skip_ps = validation.number("skip_ps", skip_ps, unit="ps")
    n_skip = int(np.ceil(skip_ps * 1000.0 / interval_fs - 1e-9))
    if n_skip >= len(frames.atoms) - 1:
        total = (len(frames.atoms) - 1) * interval_fs / 1000.0
        raise InputError(
            f"{what}: skip_ps={skip_ps:g} drops all but {max(len(frames.atoms) - n_skip, 0)} of "
            f"the {len(frames.atoms)} frames (the run is {total:.4g} ps long); use a smaller "
            "skip_ps or a longer run"
        )
    return frames.subset(slice(n_skip, None))


def unwrapped_displacements(atoms: Sequence[Atoms]) -> tuple[np.ndarray, float]:
    """Displacement of every atom from frame 0, unwrapped across periodic boundaries.

    Consecutive frames are joined by the minimum image: the fractional step of every atom
    along a periodic direction is shifted by a whole number of cell vectors into
    ``[-1/2, 1/2)``, converted to Cartesian with the mean cell of the two frames, and the
    steps are summed. The result does not depend on whether the frames' positions were
    wrapped into the cell; it is right as long as no atom moves more than half a cell width
    between two frames (see the returned fraction).

    Parameters
    ----------
    atoms
        Frames holding the same atoms in the same order.

    Returns
    -------
    displacements : numpy.ndarray
        ``(n_atoms, n_frames, 3)``, Å; ``displacements[:, 0] == 0``.
    largest_step_fraction : float
        The largest step of any atom between two frames as a fraction of the cell width
        along that direction (periodic directions; 0 when there are none). Above ~0.25
        the unwrapping becomes unreliable: record frames more often.
    """
    pbc = np.asarray(atoms[0].pbc, dtype=bool)
    pos = np.array([a.positions for a in atoms])  # (n_frames, n_atoms, 3)
    if not pbc.any():
        return np.transpose(pos - pos[0], (1, 0, 2)), 0.0
    cells = np.array([_full_cell(a) for a in atoms])  # (n_frames, 3, 3), rows = cell vectors
    frac = np.einsum("fnj,fjk->fnk", pos, np.linalg.inv(cells))
    dfrac = np.diff(frac, axis=0)
    dfrac[..., pbc] -= np.round(dfrac[..., pbc])
    largest = float(np.max(np.abs(dfrac[..., pbc]))) if dfrac.size else 0.0
    mean_cells = 0.5 * (cells[1:] + cells[:-1])
    steps = np.einsum("fnk,fkj->fnj", dfrac, mean_cells)
    disp = np.concatenate([np.zeros((1, *pos.shape[1:])), np.cumsum(steps, axis=0)])
    return np.transpose(disp, (1, 0, 2)), largest


def _full_cell(atoms: Atoms) -> np.ndarray:
    """The cell with any missing (zero) vector along a non-periodic direction completed, so
    that fractional coordinates exist."""
    cell = atoms.cell.complete()
    if abs(np.linalg.det(cell)) < 1e-9:
        raise InputError(
            "the frames' cell is degenerate along a periodic direction (volume ~0); give the "
            "frames a proper cell"
        )
    return np.asarray(cell)


def species_indices(atoms: Atoms, species: str, what: str) -> np.ndarray:
    """Indices of the atoms of element ``species``; InputError naming those present."""
    if not isinstance(species, str):
        raise InputError(f"{what}: species must be an element symbol such as 'Li', got {species!r}")
    symbol = species.strip()
    idx = np.flatnonzero(np.array(atoms.get_chemical_symbols()) == symbol)
    if idx.size == 0:
        present = ", ".join(sorted(set(atoms.get_chemical_symbols())))
        raise InputError(
            f"{what}: no {symbol!r} atoms in the trajectory; it holds {present}: pass one of "
            "those as species"
        )
    return idx


def _package_version(pkg: str) -> str | None:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return None


def analysis_provenance(
    kind: str,
    parameters: dict[str, Any],
    source: dict[str, Any],
    started: float,
    packages: Sequence[str] = (),
) -> dict[str, Any]:
    """Provenance of a potential-free analysis: what was analysed (``source``, incl. the MD
    run's model when the input was an MDResult), the parameters, package versions, time."""
    names = ["nnp_lab", "ase", "numpy", "scipy", *packages]
    return {
        "property": kind,
        "model": None,
        "source": jsonable(source),
        "parameters": jsonable(parameters),
        "packages": {p: _package_version(p) for p in dict.fromkeys(names)},
        "python": platform.python_version(),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "wall_time_s": round(time.perf_counter() - started, 3),
    }


def finish_analysis(
    result: R,
    kind: str,
    parameters: dict[str, Any],
    source: dict[str, Any],
    started: float,
    packages: Sequence[str] = (),
) -> R:
    """``result`` with its provenance, after one :class:`PropertyWarning` per flag (the
    potential-free counterpart of :func:`nnp_lab.properties._common.finish`; called last by
    the analysis function so that the warnings point at the user's call)."""
    for message in result.flags.values():
        warnings.warn(message, PropertyWarning, stacklevel=3)
    provenance = analysis_provenance(kind, parameters, source, started, packages)
    return dataclasses.replace(result, provenance=provenance)
