"""The band of an NEB run: the interpolated starting path, and ASE's NEB evaluated in batches.

:func:`interpolated_images` builds the starting band (IDPP or linear, with the minimum image
convention when an atom crosses a periodic boundary); :class:`BatchedNEB` is ASE's
:class:`ase.mep.NEB` with every image that moved evaluated in one :meth:`Potential.evaluate`
call.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
from ase import Atoms
from ase.mep import NEB

from nnp_lab.errors import InputError
from nnp_lab.potentials import Potential

__all__ = ["BatchedNEB", "crosses_boundary", "interpolated_images"]

logger = logging.getLogger(__name__)


def crosses_boundary(initial: Atoms, final: Atoms) -> bool:
    """Whether some atom's displacement between the endpoints is shorter through a periodic
    boundary (it crossed the cell edge), so the band needs the minimum image convention."""
    if not initial.pbc.any():
        return False
    from ase.geometry import find_mic

    d = final.positions - initial.positions
    d_mic, _ = find_mic(d, initial.cell, initial.pbc)
    crossed = np.linalg.norm(d, axis=1) - np.linalg.norm(d_mic, axis=1) > 1e-6
    if crossed.any():
        logger.info(
            "atoms %s cross a periodic boundary between the endpoints; interpolating "
            "with the minimum image convention",
            np.flatnonzero(crossed)[:10].tolist(),
        )
    return bool(crossed.any())


def interpolated_images(
    initial: Atoms,
    final: Atoms,
    n_images: int,
    *,
    interpolation: str,
    mic: bool,
    k: float,
    method: str,
) -> list[Atoms]:
    """The starting band: ``n_images`` interpolated images between copies of the endpoints,
    all without a calculator.

    Parameters
    ----------
    initial, final
        Checked endpoints (:func:`~nnp_lab.simulate._neb_endpoints.check_endpoints`).
    n_images
        Number of intermediate images.
    interpolation
        ``"idpp"`` or ``"linear"``.
    mic
        Interpolate with the minimum image convention.
    k, method
        Spring constant and NEB method of the band (IDPP relaxes a band of its own).

    Raises
    ------
    InputError
        Constrained atoms that differ between the endpoints.
    """
    images = [initial.copy() for _ in range(n_images + 1)] + [final.copy()]
    # Interpolate on a plain ASE NEB (IDPP runs its own optimizer on the band with IDPP
    # calculators; the batched band must not evaluate the model during that).
    plain = NEB(images, k=k, method=method)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            plain.interpolate(method=interpolation, mic=mic)
    except RuntimeError as exc:
        if "onstraint" not in str(exc):
            raise
        raise InputError(
            "constrained atoms (e.g. FixAtoms) are at different positions in the initial "
            "and final states, so interpolating would move them; make the constrained "
            "atoms identical in both endpoints"
        ) from exc
    for image in images:
        image.calc = None
    return images


class BatchedNEB(NEB):
    """ASE's NEB whose images are evaluated together, one :meth:`Potential.evaluate` per band.

    Before ASE's force projection (:meth:`get_forces`) every image whose positions changed
    since it was last evaluated (and, on the first call, the endpoints) is evaluated in one
    call; each image then carries its own single-point results, which ASE reads back as usual.
    Repeated ``get_forces()`` calls at the same positions (optimizers make several per step)
    cost no model evaluation.
    """

    def __init__(self, images: list[Atoms], potential: Potential, **kwargs: Any) -> None:
        super().__init__(images, **kwargs)
        self.potential = potential
        #: Number of ``Potential.evaluate`` calls made so far.
        self.n_evaluate_calls = 0

    @staticmethod
    def _stale(image: Atoms) -> bool:
        calc = image.calc
        if calc is None or "forces" not in getattr(calc, "results", {}):
            return True
        # Exact comparison with the atoms the results belong to (ASE's check_state does the
        # same with tolerances and costs ~1 ms per image and call).
        done = getattr(calc, "atoms", None)
        return not (
            done is not None
            and len(done) == len(image)
            and np.array_equal(done.positions, image.positions)
            and np.array_equal(done.numbers, image.numbers)
            and np.array_equal(done.cell.array, image.cell.array)
            and np.array_equal(done.pbc, image.pbc)
        )

    def image_energies(self) -> np.ndarray:
        """Energy of every image, endpoints included (evaluating stale images first)."""
        self.evaluate_band()
        return np.array([image.calc.results["energy"] for image in self.images], dtype=float)

    def evaluate_band(self) -> int:
        """Evaluate all images whose results are missing or outdated; returns how many."""
        stale = [i for i, image in enumerate(self.images) if self._stale(image)]
        if not stale:
            return 0
        results = self.potential.evaluate([self.images[i] for i in stale], ("energy", "forces"))
        self.n_evaluate_calls += 1
        for i, res in zip(stale, results):
            self.freeze_results_on_image(
                self.images[i], energy=float(res["energy"]), forces=np.asarray(res["forces"])
            )
        return len(stale)

    def get_forces(self) -> np.ndarray:
        self.evaluate_band()
        forces = super().get_forces()
        self._last_forces = (self.get_positions().copy(), bool(self.climb), forces.copy())
        return forces

    def current_forces(self) -> np.ndarray:
        """NEB forces at the current positions, reusing the last projection when nothing moved
        (ASE recomputes tangents and springs on every ``get_forces`` call)."""
        last = getattr(self, "_last_forces", None)
        if (
            last is not None
            and last[1] == bool(self.climb)
            and np.array_equal(last[0], self.get_positions())
        ):
            return last[2]
        return self.get_forces()
