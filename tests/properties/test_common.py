"""What every property shares: one batched evaluation split only on memory, progress, JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from ase.build import bulk

from nnp_lab.potentials.emt import EMTPotential
from nnp_lab.potentials.memory import MemoryLimitError
from nnp_lab.properties import PropertyProgress, eos
from nnp_lab.properties._common import Progress, evaluate_all, jsonable


class AtomBudget(EMTPotential):
    """EMT that refuses (like the memory guard) calls of more than ``limit`` atoms."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit, self.calls = limit, []

    def evaluate(self, structures, properties=("energy",), **kw):
        n = sum(len(s) for s in structures)
        if n > self.limit:
            raise MemoryLimitError(f"{n} atoms > {self.limit}", None, None)  # type: ignore[arg-type]
        self.calls.append(len(structures))
        return super().evaluate(structures, properties, **kw)


def test_one_call_unless_memory_says_no():
    cells = [bulk("Cu", "fcc", a=3.5 + 0.02 * k) * 2 for k in range(8)]  # 8 atoms each
    roomy = AtomBudget(limit=10_000)
    all_at_once = evaluate_all(roomy, cells, ("energy",))
    assert roomy.calls == [8]
    tight = AtomBudget(limit=20)  # two cells per call
    split = evaluate_all(tight, cells, ("energy",))
    assert tight.calls == [2, 2, 2, 2]
    assert [r["energy"] for r in split] == [r["energy"] for r in all_at_once]  # same order
    with pytest.raises(MemoryLimitError):
        evaluate_all(AtomBudget(limit=4), cells[:1], ("energy",))


def test_progress_reaches_the_total_and_the_callback():
    seen: list[PropertyProgress] = []
    eos(bulk("Cu", "fcc", a=3.6), "emt", relax=False, callback=seen.append)
    assert seen and seen[-1].done == seen[-1].total and seen[-1].property == "eos"
    assert [p.done for p in seen] == sorted(p.done for p in seen)
    p = Progress("x", 3)
    p.advance("a", 5)  # never past the total
    assert p.done == 3
    p.close()


def test_jsonable_makes_everything_json_safe():
    value = {
        "a": np.arange(3),
        "nan": float("nan"),
        "inf": np.float32(math.inf),
        "atoms": bulk("Cu"),
        "flag": np.bool_(True),
        7: (np.int64(2), None),
    }
    out = jsonable(value)
    json.dumps(out)
    assert out["a"] == [0, 1, 2] and out["nan"] is None and out["inf"] is None
    assert out["atoms"]["numbers"] == [29] and out["flag"] is True and out["7"] == [2, None]
