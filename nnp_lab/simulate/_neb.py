"""Nudged elastic band (NEB) runs: minimum energy paths and barriers, streamed band by band.

:func:`neb` is the one-call entry point; :class:`NEBRun` is the run object behind it
(iterate :meth:`~nnp_lab.simulate._run.Run.irun` for live updates, call
:meth:`~nnp_lab.simulate._run.Run.stop` to end early). The NEB itself is ASE's
(:class:`ase.mep.NEB`, improved-tangent method by default) driven by an ASE optimizer; what this
module adds is

* **one model call per iteration**: before ASE projects the forces, all images whose positions
  changed are evaluated together with a single :meth:`Potential.evaluate` call (the endpoints
  once, in the first call), so a universal model sees the whole band as one batch;
* a climbing-image strategy in two stages (see :class:`NEBRun`);
* a frozen :class:`NEBStep` event per iteration and the whole band written to the trajectory
  at every iteration;
* an :class:`NEBResult` with barriers, the path length and a smooth energy profile.

Conventions
-----------
``n_images`` counts the **intermediate** (moving) images, as in most ASE scripts: a run with
``n_images=7`` has 9 images in total, the two fixed endpoints included. Everything that is
indexed by image (event ``positions``/``energies``, ``NEBResult.images``/``energies``,
``highest_image``, ``climbing``) covers all ``n_images + 2`` images, endpoint 0 first.

Examples
--------
>>> result = neb(initial, final, "emt", n_images=5, fmax=0.05)  # doctest: +SKIP
>>> result.forward_barrier, result.backward_barrier  # doctest: +SKIP
>>> x, e = result.profile  # smooth curve for plotting, energies relative to the initial state
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
from ase import Atoms

from nnp_lab.errors import InputError, SimulationError, StructureError
from nnp_lab.potentials import Potential
from nnp_lab import validation
from nnp_lab.simulate._keywords import forwarded
from nnp_lab.simulate._neb_band import BatchedNEB, crosses_boundary, interpolated_images
from nnp_lab.simulate._neb_endpoints import check_endpoints, relaxed_endpoint
from nnp_lab.simulate._neb_result import NEBProfile, NEBResult, NEBStep
from nnp_lab.simulate._optimizers import NEB_OPTIMIZERS, resolve_optimizer
from nnp_lab.simulate._run import Run, frozen_array, run_to_end, snapshot

__all__ = [
    "NEB_OPTIMIZERS",
    "NEB_METHODS",
    "check_endpoints",
    "NEBStep",
    "NEBProfile",
    "NEBResult",
    "NEBRun",
    "NudgedElasticBand",
    "neb",
]

logger = logging.getLogger(__name__)

#: NEB force projections accepted as ``method=`` (see :class:`ase.mep.NEB`).
NEB_METHODS = ("improvedtangent", "aseneb", "eb", "spline", "string")


class NEBRun(Run):
    """A nudged elastic band between two states, run iteration by iteration.

    The caller's Atoms are never modified: the band is made of copies (constraints such as
    ``FixAtoms`` on the initial state are kept on every image). Iterate :meth:`irun` to get
    an :class:`NEBStep` per iteration, or call :meth:`run` for the :class:`NEBResult`.

    Each iteration costs **one** :meth:`Potential.evaluate` call with all moving images (the
    first call also evaluates both endpoints, which never move).

    Parameters
    ----------
    initial, final
        Endpoint structures: the same atoms in the same order, same cell and periodicity.
        They should be relaxed minima (pass ``relax_endpoints=True`` to relax them first).
    potential
        A :class:`~nnp_lab.potentials.Potential`, a registered name such as ``"emt"``, or
        None for the default universal model.
    n_images
        Number of **intermediate** images (the band has ``n_images + 2`` images).
    climb
        Use a climbing image (Henkelman et al. 2000) so the highest image converges to the
        saddle point. Climbing is switched on in a second stage, see ``climb_after_fmax``.
    fmax
        Convergence target in eV/Å for the NEB forces on the moving images.
    steps
        Maximum number of optimizer iterations, all stages together.
    interpolation
        Initial path: ``"idpp"`` (image-dependent pair potential, Smidstrup et al. 2014;
        avoids atoms passing through each other) or ``"linear"``.
    optimizer
        ``"FIRE"`` (default), ``"BFGS"``, ``"LBFGS"``, ``"FIRE2"`` or ``"MDMin"``
        (case-insensitive), or an :class:`ase.optimize.optimize.Optimizer` subclass. A new
        optimizer is started when climbing switches on.
    k
        Spring constant in eV/Å² (ASE's default 0.1).
    trajectory
        Path of an ASE ``.traj`` file: the whole band (``n_images + 2`` frames, endpoints
        included, each with its energy and forces) is appended at every iteration, step 0
        first, so ``ase.io.read(path, f"-{n_images + 2}:")`` is the last band and
        ``ase.mep.NEBTools`` can analyse the file.
    relax_endpoints
        Relax both endpoints (positions only, same potential, optimizer and ``fmax``) with
        :func:`nnp_lab.simulate.relax.relax` before building the band.
    climb_after_fmax
        Two-stage climbing strategy: the band first relaxes without a climbing image until
        ``fmax`` drops below ``max(climb_after_fmax, fmax)`` eV/Å, then the highest image
        starts climbing and the run continues to ``fmax``. Starting to climb on a rough
        band can pick the wrong image. ``None`` climbs from the first iteration (ASE's
        ``NEB(climb=True)`` behaviour). Ignored with ``climb=False``.
    method
        NEB force projection of :class:`ase.mep.NEB`: ``"improvedtangent"`` (default),
        ``"aseneb"``, ``"eb"``, ``"spline"`` or ``"string"``.
    mic
        Interpolate with the minimum image convention. ``None`` (default) decides: on when
        some atom's displacement between the endpoints is shorter through a periodic
        boundary (it crossed the cell edge), else off.

    Raises
    ------
    InputError
        Endpoints that differ in atom count, element order, periodicity or cell; bad
        options; or structures the potential cannot evaluate.
    """

    kind = "neb"
    frame_noun = "bands"

    def __init__(
        self,
        initial: Atoms,
        final: Atoms,
        potential: Potential | str | None = None,
        *,
        n_images: int = 7,
        climb: bool = True,
        fmax: float = 0.05,
        steps: int = 300,
        interpolation: str = "idpp",
        optimizer: str | type = "FIRE",
        k: float = 0.1,
        trajectory: str | os.PathLike | None = None,
        relax_endpoints: bool = False,
        climb_after_fmax: float | None = 0.5,
        method: str = "improvedtangent",
        mic: bool | None = None,
    ) -> None:
        check_endpoints(initial, final)
        validation.integer("n_images", n_images, minimum=1)
        validation.number("fmax", fmax, strict=True, unit="eV/Å")
        validation.integer("steps", steps, minimum=0)
        validation.number("k", k, strict=True, unit="eV/Å²")
        if climb_after_fmax is not None:
            validation.number("climb_after_fmax", climb_after_fmax, strict=True, unit="eV/Å")
        if not isinstance(interpolation, str) or interpolation.lower() not in ("idpp", "linear"):
            raise InputError(f"interpolation must be 'idpp' or 'linear', got {interpolation!r}")
        if method not in NEB_METHODS:
            raise InputError(
                f"unknown NEB method {method!r}; choose one of {', '.join(NEB_METHODS)}"
            )
        opt_name, opt_cls = resolve_optimizer(
            optimizer,
            NEB_OPTIMIZERS,
            what="NEB optimizer",
            hint=" (line-search optimizers such as BFGSLineSearch do not suit NEB: the band "
            "has no single energy)",
        )
        super().__init__(potential, trajectory=trajectory)
        for atoms in (initial, final):
            self.potential.check(atoms)  # fail now, with the potential's own message

        self.initial = initial.copy()
        self.final = final.copy()
        for atoms in (self.initial, self.final):
            atoms.calc = None
        self.n_images = int(n_images)
        self.climb = bool(climb)
        self.fmax = float(fmax)
        self.steps = int(steps)
        self.interpolation = interpolation.lower()
        self.optimizer_name = opt_name
        self._optimizer_cls = opt_cls
        self.k = float(k)
        self.relax_endpoints = bool(relax_endpoints)
        self.climb_after_fmax = None if climb_after_fmax is None else float(climb_after_fmax)
        self.method = method
        self.mic = mic
        self.band: BatchedNEB | None = None
        self._step = 0
        self._fmax_now = float("nan")
        self._converged = False
        self._history: list[np.ndarray] = []
        self.parameters = {
            "n_images": self.n_images,
            "climb": self.climb,
            "fmax": self.fmax,
            "steps": self.steps,
            "interpolation": self.interpolation,
            "optimizer": opt_name,
            "k": self.k,
            "relax_endpoints": self.relax_endpoints,
            "climb_after_fmax": self.climb_after_fmax,
            "method": method,
            "mic": mic,
            "n_atoms": len(initial),
            "formula": initial.get_chemical_formula(),
        }

    # -- set-up ---------------------------------------------------------------------------
    @property
    def n_evaluate_calls(self) -> int:
        """How many :meth:`Potential.evaluate` calls the band has made so far."""
        return 0 if self.band is None else self.band.n_evaluate_calls

    def _relax_endpoints(self) -> None:
        self.initial = relaxed_endpoint("initial", self.initial, self.potential, self.fmax)
        self.final = relaxed_endpoint("final", self.final, self.potential, self.fmax)

    def _build_band(self) -> BatchedNEB:
        mic = crosses_boundary(self.initial, self.final) if self.mic is None else bool(self.mic)
        self.parameters["mic"] = mic
        images = interpolated_images(
            self.initial,
            self.final,
            self.n_images,
            interpolation=self.interpolation,
            mic=mic,
            k=self.k,
            method=self.method,
        )
        return BatchedNEB(images, self.potential, k=self.k, climb=False, method=self.method)

    # -- the run --------------------------------------------------------------------------
    def _steps(self) -> Iterator[NEBStep]:
        if self.relax_endpoints:
            self._relax_endpoints()
        band = self.band = self._build_band()
        climbing = self.climb and self.climb_after_fmax is None
        band.climb = climbing
        logger.info(
            "NEB of %s (%d atoms): %d intermediate images, %s, fmax=%g, steps=%d, climb=%s",
            self.initial.get_chemical_formula(),
            len(self.initial),
            self.n_images,
            self.optimizer_name,
            self.fmax,
            self.steps,
            self.climb,
        )
        done = 0  # optimizer iterations finished in earlier stages
        first = True
        while True:
            final_stage = climbing or not self.climb
            target = self._stage_target(final_stage)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                opt = self._optimizer_cls(band, logfile=None)
            generator = opt.irun(fmax=target, steps=max(self.steps - done, 0))
            converged = False
            while True:
                try:
                    converged = bool(next(generator))
                except StopIteration:
                    break
                except StructureError as exc:
                    raise SimulationError(
                        f"the NEB produced an invalid image after iteration {self._step}: {exc}. "
                        f"{self._kept_note()}Try more images, a smaller k, interpolation='idpp', or "
                        "check the endpoints."
                    ) from exc
                step = done + int(opt.nsteps)
                if not first and opt.nsteps == 0:
                    # A new stage starts from the band we already reported.
                    self._update_state(band, converged and final_stage)
                    continue
                first = False
                yield self._record(band, step, converged and final_stage)
            done += int(opt.nsteps)
            if converged and not final_stage:
                climbing = band.climb = True
                logger.info(
                    "NEB: band relaxed to fmax < %g eV/Å after %d iterations; climbing image on",
                    target,
                    done,
                )
                continue
            break
        if self._history:
            last = self._history[-1]
            if int(np.argmax(last)) in (0, len(last) - 1):
                warnings.warn(
                    "the highest-energy image is an endpoint: the path is downhill all the way "
                    "(the barrier is just the reaction energy) or an endpoint is not a minimum; "
                    "check the endpoints (relax_endpoints=True)",
                    stacklevel=2,
                )
        if not self._converged and not self.stop_requested:
            warnings.warn(
                f"NEB not converged after {self._step} iterations: fmax {self._fmax_now:.4f} "
                f"eV/Å > {self.fmax}"
                + ("" if band.climb or not self.climb else " (climbing image never switched on)")
                + "; continue from result.images, raise steps=, or add images",
                stacklevel=2,
            )

    def _stage_target(self, final_stage: bool) -> float:
        """The fmax target of a stage: the run's, or, before climbing, the looser
        ``climb_after_fmax``."""
        if final_stage or self.climb_after_fmax is None:
            return self.fmax
        return max(self.climb_after_fmax, self.fmax)

    @staticmethod
    def _band_fmax(band: BatchedNEB) -> float:
        forces = band.current_forces()  # no model evaluation at unchanged positions
        return float(np.sqrt((forces**2).sum(axis=1)).max()) if len(forces) else 0.0

    def _climbing_index(self) -> int | None:
        band = self.band
        if band is None or not band.climb or band.energies is None:
            return None
        imax = int(band.imax)  # the image ASE treats as climbing (moving images only)
        return imax if 0 < imax < band.nimages - 1 else None

    def _update_state(self, band: BatchedNEB, converged: bool) -> None:
        self._fmax_now = self._band_fmax(band)
        self._converged = converged

    def _record(self, band: BatchedNEB, step: int, converged: bool) -> NEBStep:
        # From the images' own results (ASE's band.energies leaves the endpoints unset
        # with method="aseneb").
        energies = band.image_energies()
        if not np.all(np.isfinite(energies)):
            raise SimulationError(
                f"the potential returned a non-finite energy at NEB iteration {step} "
                f"(energies {energies.tolist()}). {self._kept_note()}Check the endpoints and model."
            )
        self._update_state(band, converged)
        self._step = step
        self._history.append(energies.copy())
        for image in band.images:
            self.keep_frame(image, step)
        return NEBStep(
            run=self.kind,
            step=step,
            positions=frozen_array(np.stack([image.positions for image in band.images])),
            cell=frozen_array(band.images[0].cell[:]),
            energy=float(energies.max()),
            energies=frozen_array(energies),
            fmax=self._fmax_now,
            climbing=self._climbing_index(),
            converged=converged,
        )

    def _result(self) -> NEBResult:
        band = self.band
        if band is None or band.energies is None or not self._history:
            images = (
                [self.initial.copy(), self.final.copy()]
                if band is None
                else [image.copy() for image in band.images]
            )
            for image in images:
                image.calc = None
            nan = float("nan")
            n = len(images)
            return NEBResult(
                images=images,
                energies=np.full(n, nan),
                forward_barrier=nan,
                backward_barrier=nan,
                highest_image=0,
                reaction_coordinate=np.full(n, nan),
                profile=NEBProfile(np.zeros(0), np.zeros(0)),
                converged=False,
                n_steps=0,
                fmax=nan,
                climbing=None,
                energy_history=np.zeros((0, n)),
            )
        images = [snapshot(image) for image in band.images]
        energies = np.array([image.get_potential_energy() for image in images], dtype=float)
        imax = int(np.argmax(energies))
        from ase.utils.forcecurve import fit_images

        fit = fit_images(images)
        return NEBResult(
            images=images,
            energies=energies,
            forward_barrier=float(energies[imax] - energies[0]),
            backward_barrier=float(energies[imax] - energies[-1]),
            highest_image=imax,
            reaction_coordinate=np.asarray(fit.path, dtype=float),
            profile=NEBProfile(
                np.asarray(fit.fit_path, dtype=float), np.asarray(fit.fit_energies, dtype=float)
            ),
            converged=self._converged,
            n_steps=self._step,
            fmax=self._fmax_now,
            climbing=self._climbing_index(),
            energy_history=np.array(self._history),
        )


#: Alias of :class:`NEBRun`.
NudgedElasticBand = NEBRun


def neb(
    initial: Atoms,
    final: Atoms,
    potential: Potential | str | None = None,
    *,
    n_images: int = 7,
    climb: bool = True,
    fmax: float = 0.05,
    steps: int = 300,
    interpolation: str = "idpp",
    trajectory: str | os.PathLike | None = None,
    live: bool = False,
    **options: Any,
) -> NEBResult:
    """Find the minimum energy path and barrier between two states with a (climbing-image) NEB.

    Parameters
    ----------
    initial, final
        Endpoint structures (not modified): same atoms in the same order, same cell. They
        should be relaxed minima; pass ``relax_endpoints=True`` to relax them first.
    potential
        A :class:`~nnp_lab.potentials.Potential`, a registered name (``"sevennet-0"``,
        ``"emt"``, ...) or None for the default universal model.
    n_images
        Number of **intermediate** images; the band has ``n_images + 2`` images.
    climb
        Converge the highest image to the saddle point (climbing image, switched on once
        the band is roughly relaxed; see ``climb_after_fmax`` in :class:`NEBRun`).
    fmax
        Force convergence target in eV/Å.
    steps
        Maximum number of NEB iterations.
    interpolation
        ``"idpp"`` (default) or ``"linear"`` initial path.
    trajectory
        ``.traj`` path; the whole band is appended at every iteration.
    live
        Show live progress while running.
    **options
        Further keywords of :class:`NEBRun`: ``optimizer``, ``k``, ``relax_endpoints``,
        ``climb_after_fmax``, ``method``, ``mic``.

    Returns
    -------
    NEBResult
        Final band, energies, forward/backward barriers, reaction coordinate, smooth
        profile, convergence and provenance. ``stopped`` is True when the run was
        interrupted; the partial band is returned.

    Raises
    ------
    InputError
        Mismatched endpoints (atom count, order, cell), bad options, or structures the
        potential cannot evaluate.
    SimulationError
        The potential returned NaN/inf or produced overlapping atoms during the run.

    Examples
    --------
    >>> res = neb(initial, final, "emt", n_images=5)  # doctest: +SKIP
    >>> print(res.summary())  # doctest: +SKIP
    """
    run = NEBRun(initial, final, potential, **forwarded(NEBRun, locals(), options))
    return run_to_end(run, live=live, total=steps)
