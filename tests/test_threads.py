"""nnp_lab.threads: the torch thread policy applied around every Potential.evaluate."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from ase.build import bulk

import nnp_lab
from nnp_lab import threads
from nnp_lab.errors import InputError
from nnp_lab.potentials.base import Potential


class ThreadSpy(Potential):
    """Zero energy and forces; records torch's thread count inside each evaluation."""

    name = "thread-spy"
    elements = frozenset({29})

    def __init__(self):
        super().__init__()
        self.seen = []

    def _evaluate(self, structures, properties):
        self.seen.append(torch.get_num_threads())
        return [{"energy": 0.0, "forces": np.zeros((len(a), 3))} for a in structures]


@pytest.fixture(autouse=True)
def restore_policy():
    old_policy, old_threads = threads.get_threads(), torch.get_num_threads()
    threads.set_threads("auto")  # whatever NNP_LAB_THREADS or an earlier test chose
    torch.set_num_threads(2)
    yield
    threads.set_threads(old_policy)
    torch.set_num_threads(old_threads)


def cu(n_repeat):
    return bulk("Cu", "fcc", a=3.6, cubic=True).repeat(n_repeat)


def test_auto_runs_small_structures_serially_and_restores_torch():
    spy = ThreadSpy()
    spy.evaluate([cu(2)], ("energy", "forces"))  # 32 atoms
    assert spy.seen == [1]
    assert torch.get_num_threads() == 2


def test_auto_keeps_torch_threads_for_large_calls_capped_by_usable_cpus():
    spy = ThreadSpy()
    big = cu(7)  # 1,372 atoms
    assert len(big) >= threads.SERIAL_BELOW_ATOMS
    spy.evaluate([big], ("energy", "forces"), validate=False)
    assert spy.seen == [min(2, threads.usable_cpus())]
    # several small structures in one call count together
    spy.evaluate([cu(5)] * 3, ("energy", "forces"), validate=False)  # 3 x 500 atoms
    assert spy.seen[-1] == min(2, threads.usable_cpus())


def test_fixed_and_none_policies():
    spy = ThreadSpy()
    nnp_lab.set_threads(3)
    spy.evaluate([cu(1)], ("energy",))
    nnp_lab.set_threads(None)
    spy.evaluate([cu(1)], ("energy",))
    assert spy.seen == [3, 2]
    assert nnp_lab.get_threads() is None
    assert torch.get_num_threads() == 2


def test_threads_restored_when_the_model_raises():
    class Broken(ThreadSpy):
        def _evaluate(self, structures, properties):
            raise RuntimeError("model failed")

    with pytest.raises(RuntimeError, match="model failed"):
        Broken().evaluate([cu(1)], ("energy",))
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("bad", [0, -1, "many", 1.5, True])
def test_bad_policy_is_explained(bad):
    with pytest.raises(InputError, match="threads must be"):
        nnp_lab.set_threads(bad)


def test_strings_are_parsed():
    nnp_lab.set_threads("4")
    assert nnp_lab.get_threads() == 4
    nnp_lab.set_threads("none")
    assert nnp_lab.get_threads() is None
    nnp_lab.set_threads("auto")
    assert nnp_lab.get_threads() == "auto"


def test_usable_cpus_is_within_the_machine():
    assert 1 <= threads.usable_cpus() <= (os.cpu_count() or 1)


def test_environment_variable_sets_the_initial_policy():
    code = "import nnp_lab; print(nnp_lab.get_threads())"
    env = {**os.environ, "NNP_LAB_THREADS": "2"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "2"
