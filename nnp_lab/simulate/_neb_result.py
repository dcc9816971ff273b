"""What an NEB run emits (:class:`NEBStep`, one per iteration) and returns (:class:`NEBResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from ase import Atoms

from nnp_lab.simulate._run import Event, RunResult

__all__ = ["NEBStep", "NEBProfile", "NEBResult"]


@dataclass(frozen=True)
class NEBStep(Event):
    """One NEB iteration (step 0 is the interpolated starting band).

    Attributes
    ----------
    positions : numpy.ndarray
        Positions of **all** images in Å, endpoints included: shape
        ``(n_images + 2, n_atoms, 3)``; read-only.
    energy : float
        Energy of the highest image in eV.
    energies : numpy.ndarray
        Potential energy of every image in eV, shape ``(n_images + 2,)``; read-only.
    fmax : float
        Largest NEB force (projected true force plus spring force; for the climbing image the
        inverted tangential force) on any atom of the moving images, eV/Å. The run converges
        when it drops below the target with the climbing image active.
    climbing : int or None
        Index (in ``0 .. n_images + 1``) of the climbing image, or None while climbing is off
        (or when the highest image is an endpoint).
    converged : bool
        Whether the run has converged at this step.
    """

    energies: np.ndarray
    fmax: float
    climbing: int | None = None
    converged: bool = False


class NEBProfile(NamedTuple):
    """A smooth energy profile along the band (unpack as ``x, energy = result.profile``).

    Attributes
    ----------
    x : numpy.ndarray
        Reaction coordinate in Å (cumulative path length, minimum image convention).
    energy : numpy.ndarray
        Energy in eV **relative to the initial state**, from a cubic interpolation between
        images that matches each image's energy and its force along the path
        (:func:`ase.utils.forcecurve.fit_images`, the curve ASE's ``NEBTools`` plots).
    """

    x: np.ndarray
    energy: np.ndarray


@dataclass(repr=False)
class NEBResult(RunResult):
    """Outcome of a NEB run.

    Attributes
    ----------
    images : list of ase.Atoms
        The final band, ``n_images + 2`` new Atoms (endpoints included), each with a
        single-point calculator holding its energy and forces.
    energies : numpy.ndarray
        Potential energy of every image in eV.
    forward_barrier : float
        ``E_max - E_initial`` in eV, with ``E_max`` the highest image energy (the climbing
        image when the run converged with climbing on).
    backward_barrier : float
        ``E_max - E_final`` in eV.
    highest_image : int
        Index of the highest-energy image in ``images``.
    reaction_coordinate : numpy.ndarray
        Cumulative path length at each image, Å (0 at the initial state).
    profile : NEBProfile
        Smooth ``(x, energy)`` curve through the images, energies relative to the initial
        state. ``profile.energy.max()`` estimates the barrier between images.
    converged : bool
        Whether ``fmax`` dropped below the target (with the climbing image, if requested).
    n_steps : int
        Optimizer iterations taken (all stages).
    fmax : float
        Final largest NEB force on the moving images, eV/Å.
    climbing : int or None
        Index of the climbing image at the end, or None.
    energy_history : numpy.ndarray
        Image energies at every iteration, shape ``(n_steps + 1, n_images + 2)`` in eV.
    trajectory, stopped, provenance
        See :class:`~nnp_lab.simulate._run.RunResult`.
    """

    images: list[Atoms]
    energies: np.ndarray
    forward_barrier: float
    backward_barrier: float
    highest_image: int
    reaction_coordinate: np.ndarray
    profile: NEBProfile
    converged: bool
    n_steps: int
    fmax: float
    climbing: int | None = None
    energy_history: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    @property
    def n_images(self) -> int:
        """Number of intermediate (moving) images."""
        return max(len(self.images) - 2, 0)

    @property
    def reaction_energy(self) -> float:
        """``E_final - E_initial`` in eV."""
        return float(self.energies[-1] - self.energies[0])

    @property
    def transition_state(self) -> Atoms:
        """The highest image (the saddle-point estimate when converged with climbing)."""
        return self.images[self.highest_image]

    def plot(self, ax: Any = None) -> Any:
        """Plot the band (images, force tangents and the smooth fit) with matplotlib.

        Parameters
        ----------
        ax
            Matplotlib axes to draw on (default: the current axes).

        Returns
        -------
        matplotlib.axes.Axes
        """
        from ase.utils.forcecurve import fit_images

        return fit_images(self.images).plot(ax=ax)

    def summary(self) -> str:
        """A few lines describing the outcome (barriers, convergence, model, file)."""
        model = self.provenance.get("model", "?")
        params = self.provenance.get("parameters", {})
        state = "converged" if self.converged else "NOT converged"
        if self.stopped:
            state += " (stopped early)"
        target = params.get("fmax")
        lines = [
            f"NEB of {self.images[0].get_chemical_formula() if self.images else '?'} with "
            f"{model}: {self.n_images} intermediate images, {params.get('optimizer', '?')}, "
            f"climbing image {'on' if params.get('climb') else 'off'}",
            f"  {state} after {self.n_steps} iterations: fmax {self.fmax:.4f} eV/Å"
            + (f" (target {target})" if target is not None else ""),
            f"  forward barrier {self.forward_barrier:.4f} eV, backward barrier "
            f"{self.backward_barrier:.4f} eV, reaction energy {self.reaction_energy:+.4f} eV "
            f"(highest image {self.highest_image})",
        ]
        return self._summary_text(lines)

    def __repr__(self) -> str:
        formula = self.images[0].get_chemical_formula() if self.images else "?"
        return (
            f"NEBResult({formula}, n_images={self.n_images}, converged={self.converged}, "
            f"n_steps={self.n_steps}, forward_barrier={self.forward_barrier:.4f} eV, "
            f"backward_barrier={self.backward_barrier:.4f} eV, highest_image="
            f"{self.highest_image}, fmax={self.fmax:.4f} eV/Å, stopped={self.stopped}, "
            f"trajectory={self._trajectory_repr})"
        )
