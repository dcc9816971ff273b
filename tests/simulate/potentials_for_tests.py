"""Stand-in potentials shared by the run tests."""

import numpy as np

from nnp_lab.potentials.emt import EMTPotential


class NaNAfter(EMTPotential):
    """EMT returning NaN energy and forces from the (k+1)-th evaluation on."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k
        self.calls = 0

    def _evaluate(self, structures, properties):
        results = super()._evaluate(structures, properties)
        self.calls += 1
        if self.calls > self.k:
            for res in results:
                res["energy"] = float("nan")
                res["forces"] = np.full_like(res["forces"], np.nan)
        return results
