"""Nothing in our model math is CPU-only: no tensor is made without a device, no float without
a dtype, inside a model evaluation.

On a CPU a tensor made without ``device=`` lands on the CPU, which is right here and wrong on a
GPU (a mixed-device error, or a silent copy per call). A ``TorchFunctionMode`` sees every torch
call of an evaluation; the test fails on a factory call (``torch.zeros``, ``arange``,
``tensor`` …) made directly by code in ``nnp_lab/`` without a ``device``, and on a float factory
without a ``dtype`` (it would take torch's default, float32, in a float64 model). Calls inside
the upstream packages (chgnet's graph converter, …) are theirs and are not judged.
"""

from __future__ import annotations

import traceback

import pytest
import torch
from ase.build import bulk
from torch.overrides import TorchFunctionMode

from nnp_lab.potentials import load_potential
from nnp_lab.potentials.torch_model import LennardJones, TorchModelPotential

FACTORIES = {
    torch.zeros,
    torch.ones,
    torch.empty,
    torch.full,
    torch.arange,
    torch.tensor,
    torch.as_tensor,
    torch.eye,
    torch.linspace,
    torch.rand,
    torch.randn,
    torch.randint,
}
#: Factories whose result is a float tensor unless told otherwise.
FLOAT_BY_DEFAULT = {torch.zeros, torch.ones, torch.empty, torch.rand, torch.randn, torch.eye}


class FactoryWatch(TorchFunctionMode):
    """Record factory calls made directly from nnp_lab code without device (or dtype)."""

    def __init__(self) -> None:
        super().__init__()
        self.n_calls = 0
        self.offences: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self.n_calls += 1
        if func in FACTORIES:
            caller = traceback.extract_stack()[-2]  # the Python line that called torch
            if "/nnp_lab/" in caller.filename:
                where = f"{caller.filename.split('/nnp_lab/')[-1]}:{caller.lineno}"
                if "device" not in kwargs:
                    self.offences.append(f"{where} torch.{func.__name__} without device")
                if func in FLOAT_BY_DEFAULT and "dtype" not in kwargs:
                    self.offences.append(f"{where} torch.{func.__name__} without dtype")
        return func(*args, **kwargs)


def _watched_evaluation(pot, structures):
    pot.evaluate(structures)  # first call: caches and lazy set-up are not the per-call path
    watch = FactoryWatch()
    with watch:
        pot.evaluate(structures, ("energy", "forces", "stress"))
    return watch


def _cells():
    si = bulk("Si", "diamond", a=5.43, cubic=True)
    si.rattle(0.02, seed=0)
    return [si, bulk("Si", "diamond", a=5.5) * (2, 1, 1)]


def test_the_watch_catches_a_factory_call_without_device():
    watch = FactoryWatch()
    with watch:
        exec(compile("torch.zeros(3)", "/x/nnp_lab/fake.py", "exec"), {"torch": torch})
        torch.zeros(3, device="cpu", dtype=torch.float64)  # from this test file: not judged
    assert watch.offences == [
        "fake.py:1 torch.zeros without device",
        "fake.py:1 torch.zeros without dtype",
    ]


@pytest.mark.slow
def test_fast_sevennet_evaluation_makes_every_tensor_on_its_device():
    watch = _watched_evaluation(load_potential("sevennet-0"), _cells())
    assert watch.n_calls > 100  # the mode saw the evaluation
    assert watch.offences == []


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_our_torch_models_make_every_tensor_on_their_device(dtype):
    from nnp_lab.models import BehlerParrinello, SchNet, TeaNet

    torch.manual_seed(0)
    cells = _cells()
    for model in (
        TeaNet(elements=["Si"]),
        SchNet(elements=["Si"]),
        BehlerParrinello(elements=["Si"]),
        LennardJones(),
    ):
        pot = TorchModelPotential(model, dtype=dtype)
        watch = _watched_evaluation(pot, cells)
        assert watch.n_calls > 10, type(model).__name__
        assert watch.offences == [], type(model).__name__
