"""The viewer sends coordinates, cells and forces as float32: compare at that resolution."""

from __future__ import annotations

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)


def assert_float32_close(actual, expected, *, ulps: float = 2.0) -> None:
    """``actual`` equals ``expected`` to within ``ulps`` float32 units at the values' magnitude.

    Rounding a float64 to float32 errs by at most half an ulp of the value, so the tolerance
    grows with the largest coordinate instead of being an absolute number of Å.
    """
    expected = np.asarray(expected, dtype=np.float64)
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(
        np.asarray(actual, dtype=np.float64), expected, rtol=0, atol=ulps * EPS32 * scale
    )
