"""Edge geometry of nnp_lab's SevenNet-0: spherical harmonics and coupling coefficients.

Part of :mod:`nnp_lab.potentials.sevennet_fast`: the real spherical harmonics of the edge
directions in e3nn's convention, and the convolution paths of each input ``l1`` with their
coupling matrices (Wigner-3j symbols contracted with the harmonics).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from nnp_lab.potentials._sevennet_checkpoint import LMAX, wigner_3j

__all__ = ["N_SH", "Segments", "spherical_harmonics", "PathBlock"]

#: Number of spherical-harmonic components ``l = 0 .. LMAX``.
N_SH = (LMAX + 1) ** 2

#: Per ``l3`` of a block: (first row, end row, first path, number of paths, 2l3+1).
Segments = tuple[tuple[int, int, int, int, int], ...]


def spherical_harmonics(unit: torch.Tensor) -> torch.Tensor:
    """Real spherical harmonics ``l = 0, 1, 2`` of unit vectors in e3nn's convention.

    ``component`` normalisation (each ``l`` block has squared norm ``2l+1``); ``l = 1`` is
    ``sqrt(3) (x, y, z)``; ``l = 2`` uses ``y`` as the polar axis (e3nn's choice).

    Parameters
    ----------
    unit
        ``(n, 3)`` unit vectors.

    Returns
    -------
    torch.Tensor
        ``(n, 9)``.
    """
    x, y, z = unit.unbind(-1)
    s3, s5, s15 = math.sqrt(3.0), math.sqrt(5.0), math.sqrt(15.0)
    return torch.stack(
        [
            torch.ones_like(x),
            s3 * x,
            s3 * y,
            s3 * z,
            s15 * x * z,
            s15 * x * y,
            s5 * (y * y - 0.5 * (x * x + z * z)),
            s15 * y * z,
            0.5 * s15 * (z * z - x * x),
        ],
        dim=-1,
    )


@dataclass(frozen=True)
class PathBlock:
    """The convolution paths ``(l1, l2) -> l3`` that start from input features with one l1.

    Rows enumerate the output components ``(l3, m3, path)`` with ``l3`` slowest and the
    paths (sorted by ``l2``) fastest. Two properties follow: the rows of one ``l3`` reshape
    without a copy to ``(2l3+1, n_paths * mul)``, the layout the next linear layer
    multiplies; and a layer whose outputs stop at ``l3 <= k`` uses a prefix of the rows, so
    one edge matrix ``A`` per ``l1`` serves every layer.
    """

    l1: int
    paths: tuple[tuple[int, int], ...]  # (l2, l3), sorted by (l3, l2)
    rows: tuple[tuple[int, int, int], ...]  # (path index, l3, m3)

    @classmethod
    def build(cls, l1: int, lmax: int) -> PathBlock:
        """All paths from ``l1`` through edge harmonics ``l2 <= 2`` to outputs ``l3 <= lmax``."""
        paths = tuple(
            (l2, l3)
            for l3 in range(lmax + 1)
            for l2 in range(LMAX + 1)
            if abs(l1 - l2) <= l3 <= l1 + l2
        )
        rows: list[tuple[int, int, int]] = []
        for l3 in range(lmax + 1):
            idx = [k for k, p in enumerate(paths) if p[1] == l3]
            for m3 in range(2 * l3 + 1):
                rows.extend((k, l3, m3) for k in idx)
        return cls(l1, paths, tuple(rows))

    def n_rows(self, lmax_out: int) -> int:
        """Rows used by a layer with outputs ``l3 <= lmax_out``."""
        return sum(1 for _, l3, _ in self.rows if l3 <= lmax_out)

    def segments(self, lmax_out: int) -> Segments:
        """Per ``l3 <= lmax_out``: (first row, end row, first path, number of paths, 2l3+1)."""
        out: list[tuple[int, int, int, int, int]] = []
        row, path = 0, 0
        for l3 in range(lmax_out + 1):
            n_p = sum(1 for _, b in self.paths if b == l3)
            if n_p:
                out.append((row, row + n_p * (2 * l3 + 1), path, n_p, 2 * l3 + 1))
            row += n_p * (2 * l3 + 1)
            path += n_p
        return tuple(out)

    def coupling(self, state: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(9, rows * (2l1+1))``: ``A(edge) = (Y(edge) @ this).view(rows, 2l1+1)``.

        ``A[row, m1] = sqrt(2l3+1) sum_m2 C[m1, m2, m3] Y[l2, m2]`` with ``C`` e3nn's real
        Wigner-3j symbol; ``sqrt(2l3+1)`` is e3nn's ``component`` path normalisation.
        """
        cg = torch.zeros(N_SH, len(self.rows), 2 * self.l1 + 1, dtype=torch.float64)
        for r, (k, l3, m3) in enumerate(self.rows):
            l2 = self.paths[k][0]
            w3j = wigner_3j(self.l1, l2, l3, state)
            cg[l2 * l2 : (l2 + 1) ** 2, r, :] = math.sqrt(2 * l3 + 1) * w3j[:, :, m3].T
        return cg.reshape(N_SH, -1)
