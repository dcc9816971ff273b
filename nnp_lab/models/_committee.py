"""The committee of :func:`nnp_lab.models.distill`: its members, their disagreement, and
the student MD that looks for frames worth labelling.

- :data:`ARCHITECTURES` and :func:`build_model`: the light models distill can build.
- :func:`committee_disagreement`: DP-GEN's ``max_devi_f`` of a committee on structures.
- :func:`student_md`: MD with the first member; every ``check_interval`` steps the committee
  scores the frames; trajectories that leave the known region restart from their last
  trusted frame.
- :func:`pick_frames`: the candidates to label, trust window first.
"""

from __future__ import annotations

import importlib
import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from ase import Atoms

from nnp_lab.errors import InputError
from nnp_lab.models.sampling import min_distance
from nnp_lab.potentials.torch_model import EnergyModel, GraphBatch, TorchModelPotential
from nnp_lab.simulate._replicas import LangevinReplicas
from nnp_lab.validation import choice

__all__ = [
    "ARCHITECTURES",
    "MAX_RESTARTS",
    "build_model",
    "committee_disagreement",
    "pick_frames",
    "student_md",
]

# distill's messages keep their logger name (scripts filter on it)
logger = logging.getLogger("nnp_lab.models.distill")

#: Architectures :func:`distill` can build, with light default settings chosen for speed
#: (~10 ms per MD step for ~60 atoms on one CPU core). A module's own ``LIGHT_SETTINGS``
#: (TeaNet has them) replace the settings here; ``**architecture_options`` override both.
ARCHITECTURES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "teanet": (
        "nnp_lab.models.teanet",
        "TeaNet",
        {"layer_cutoffs": [3.5, 5.0], "n_scalar": 32, "n_vector": 8, "n_tensor": 4, "n_rbf": 8},
    ),
    "schnet": (
        "nnp_lab.models.schnet",
        "SchNet",
        {"cutoff": 5.0, "n_features": 32, "n_interactions": 2, "n_rbf": 16},
    ),
    "behler-parrinello": ("nnp_lab.models.behler_parrinello", "BehlerParrinello", {}),
}
#: Accepted spellings of the architecture names -> the names of :data:`ARCHITECTURES`.
_NAMES = {
    **{name: name for name in ARCHITECTURES},
    "behler_parrinello": "behler-parrinello",
    "bp": "behler-parrinello",
    "behlerparrinello": "behler-parrinello",
}

#: Restarts (from the last trusted frame) of one student trajectory per round.
MAX_RESTARTS = 4


def build_model(
    architecture: Any, elements: list[int], options: dict[str, Any], seed: int
) -> tuple[EnergyModel, str, dict[str, Any]]:
    """A fresh committee member: ``(model, architecture name, constructor options)``.

    Parameters
    ----------
    architecture
        A name of :data:`ARCHITECTURES` (case-insensitive; ``"bp"`` and
        ``"behler_parrinello"`` also work) or an
        :class:`~nnp_lab.potentials.torch_model.EnergyModel` subclass taking ``elements=``.
    elements
        Atomic numbers to cover.
    options
        Constructor options over the light defaults (for TeaNet, ``cutoff=`` sets the last
        layer cutoff and caps the others).
    seed
        Seed of torch's global generator before the weights are drawn.
    """
    if isinstance(architecture, type) and issubclass(architecture, EnergyModel):
        cls, name, opts = architecture, architecture.__name__, dict(options)
    else:
        if not isinstance(architecture, str):
            raise InputError(
                f"architecture must be a name ({', '.join(ARCHITECTURES)}) or an EnergyModel "
                f"class, got {architecture!r}"
            )
        key = choice("architecture", architecture, _NAMES)
        module, clsname, defaults = ARCHITECTURES[key]
        try:
            mod = importlib.import_module(module)
            cls = getattr(mod, clsname)
        except (ImportError, AttributeError) as exc:
            raise InputError(f"architecture {key!r} is not available here ({exc})") from None
        # an architecture's own light settings, when it publishes them, win over ours
        defaults = dict(getattr(mod, "LIGHT_SETTINGS", defaults))
        name = key
        opts = dict(defaults)
        if key == "teanet" and "cutoff" in options and "layer_cutoffs" not in options:
            rc = float(options["cutoff"])
            opts["layer_cutoffs"] = [min(c, rc) for c in opts["layer_cutoffs"]]
            opts["layer_cutoffs"][-1] = rc
            opts.pop("cutoff", None)
            options = {k: v for k, v in options.items() if k != "cutoff"}
        opts.update(options)
    torch.manual_seed(seed)
    try:
        model = cls(elements=elements, **opts)
    except TypeError as exc:
        raise InputError(f"bad options for {name}: {exc}") from None
    return model, name, opts


def committee_disagreement(
    models: Sequence[EnergyModel], structures: Sequence[Atoms], *, batch_size: int = 16
) -> np.ndarray:
    """Largest per-atom force disagreement of a committee on each structure (eV/Å).

    For every atom, the RMS deviation of the members' force vectors from their mean,
    ``σ_i = sqrt(mean_k |F_ki − F̄_i|²)``; the value of a structure is ``max_i σ_i``
    (DP-GEN's ``max_devi_f``). One graph per batch is shared by all members.

    Parameters
    ----------
    models
        Two or more models (same cutoff).
    structures
        Structures to score.
    batch_size
        Structures per forward pass.

    Returns
    -------
    numpy.ndarray
        Shape ``(len(structures),)``.
    """
    if len(models) < 2:
        raise InputError("a committee needs at least two models")
    param = next(iter(models[0].parameters()))
    cutoff = max(float(m.cutoff) for m in models)
    out = []
    for b in range(0, len(structures), batch_size):
        chunk = list(structures[b : b + batch_size])
        graph = GraphBatch.from_structures(chunk, cutoff, dtype=param.dtype, device=param.device)
        forces = []
        for m in models:
            _, f, _ = graph.energy_forces_virial(m, stress=False)
            forces.append(f.detach().double())
        stack = torch.stack(forces)  # (K, n_atoms, 3)
        dev = stack - stack.mean(0, keepdim=True)
        sigma = torch.sqrt((dev * dev).sum(-1).mean(0))  # (n_atoms,)
        n = graph.n_atoms.tolist()
        for part in torch.split(sigma, n):
            out.append(float(part.max()) if part.numel() else 0.0)
    return np.asarray(out)


def student_md(
    student: TorchModelPotential,
    committee: list[EnergyModel],
    state: list[Atoms],
    trusted: list[Atoms],
    temps: list[float],
    ref_min: list[float],
    steps: int,
    check_interval: int,
    timestep_fs: float,
    friction: float,
    threshold: float,
    stop_factor: float,
    rng: np.random.Generator,
) -> tuple[list[Atoms], list[float], int, int]:
    """Run the student MD for all replicas from ``state``; return candidate frames with their
    committee disagreement, the steps done and the number of stopped trajectories.
    ``state`` and ``trusted`` are updated in place for the next round."""
    for m in committee:
        m.eval()
    dyn = LangevinReplicas(
        state,
        student,
        temps,
        timestep_fs=timestep_fs,
        friction_per_fs=friction,
        rng=rng,
        keep_velocities=True,
        initial_temperature_factor=2.0,
    )
    cands: list[Atoms] = []
    scores: list[float] = []
    n = len(state)
    stopped = 0
    restarts = [0] * n
    stop_level = stop_factor * threshold
    for step in range(1, steps + 1):
        results = dyn.step(("energy", "forces"))
        bad = []
        for k in range(n):
            if not dyn.active[k]:
                continue
            result = results[k]
            assert result is not None  # an active replica always has a result
            f = result["forces"]
            if (
                not np.all(np.isfinite(f))
                or np.abs(f).max() > 50.0
                or dyn.temperature(k) > 4 * temps[k] + 500
            ):
                bad.append(k)
        if step % check_interval and not bad and step != steps:
            continue
        active = [k for k in range(n) if dyn.active[k]]
        if not active:
            break
        frames = [dyn.snapshot(k) for k in active]
        for fr, k in zip(frames, active):
            fr.calc = None
            fr.info = {
                "source": state[k].info.get("source", 0),
                "temperature_K": temps[k],
                "replica": k,
                "md_step": step,
            }
        dis = committee_disagreement(committee, frames)
        for fr, k, d in zip(frames, active, dis):
            unphysical = k in bad or min_distance(fr, 2.0) < ref_min[k]
            if not unphysical:
                cands.append(fr)
                scores.append(float(d))
            if unphysical or d > stop_level:
                # left the region the committee knows: restart from the last trusted frame
                # with new velocities (a new direction), a few times per round
                stopped += 1
                logger.debug(
                    "distill: trajectory %d stopped at step %d (%s)",
                    k,
                    step,
                    "unphysical" if unphysical else f"disagreement {d:.2f} eV/Å",
                )
                if restarts[k] < MAX_RESTARTS:
                    restarts[k] += 1
                    dyn.reset(k, trusted[k])
                else:
                    dyn.active[k] = False
            elif d < threshold:
                trusted[k] = dyn.snapshot(k)
                trusted[k].calc = None
                trusted[k].info = dict(state[k].info)
    for k in range(n):
        if dyn.active[k]:
            new = dyn.snapshot(k)
            new.calc = None
            new.info = dict(state[k].info)
            state[k] = new
        else:
            # restart from the last trusted frame with fresh velocities
            new = trusted[k].copy()
            new.set_velocities(np.zeros((len(new), 3)))
            new.info = dict(state[k].info)
            state[k] = new
    return cands, scores, dyn.n_steps, stopped


def pick_frames(
    cands: list[Atoms],
    scores: list[float],
    threshold: float,
    limit: int,
    min_gap: int,
    stop_level: float = math.inf,
) -> list[int]:
    """Indices of up to ``limit`` candidates above ``threshold``: those up to
    ``stop_level`` first, largest disagreement first (DP-GEN's trust window), then the ones
    beyond it, closest to it first (they are often far from anything physical); frames at
    least ``min_gap`` steps apart within one trajectory are preferred (consecutive checks
    are nearly the same structure)."""
    inside = [int(i) for i in np.argsort(scores)[::-1] if threshold < scores[i] <= stop_level]
    beyond = [int(i) for i in np.argsort(scores) if scores[i] > stop_level]
    order = inside + beyond
    picked: list[int] = []

    def close(i: int, j: int) -> bool:
        a, b = cands[i].info, cands[j].info
        return a["replica"] == b["replica"] and abs(a["md_step"] - b["md_step"]) < min_gap

    for i in order:
        if len(picked) >= limit:
            break
        if not any(close(i, j) for j in picked):
            picked.append(i)
    for i in order:  # fill up with the skipped ones if there is room
        if len(picked) >= limit:
            break
        if i not in picked:
            picked.append(i)
    return picked
