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


class FakeMachine:
    """A 2-CPU machine whose clock, busy time and our own CPU time the test sets."""

    def __init__(self, n_cpus=2):
        self.n_cpus = n_cpus
        self.t = 0.0
        self.busy = [0.0] * n_cpus  # seconds per CPU
        self.own = 0.0

    def stat(self):
        tick = os.sysconf("SC_CLK_TCK")
        lines = ["cpu  0 0 0 0 0 0 0 0 0 0"]
        for i, b in enumerate(self.busy):
            # user nice system idle iowait irq softirq steal guest guest_nice
            lines.append(f"cpu{i} {round(b * tick)} 0 0 {round(self.t * tick)} 0 0 0 0 0 0")
        return "\n".join(lines) + "\n"

    def advance(self, seconds, others, own=0.0):
        """``seconds`` pass; other processes use ``others`` CPUs and we use ``own``."""
        self.t += seconds
        share = (others + own) * seconds / self.n_cpus
        self.busy = [b + share for b in self.busy]
        self.own += own * seconds

    def monitor(self):
        return threads.CpuMonitor(
            read_stat=self.stat,
            clock=lambda: self.t,
            own_cpu_s=lambda: self.own,
            cpus=lambda: set(range(self.n_cpus)),
            usable=lambda: self.n_cpus,
        )


@pytest.fixture
def machine(monkeypatch):
    """The "auto" policy watching a FakeMachine, with a fake clock timing each call."""
    fake = FakeMachine()
    monkeypatch.setattr(threads, "_auto", threads._AutoThreads(fake.monitor()))
    monkeypatch.setattr(threads, "usable_cpus", lambda: fake.n_cpus)
    monkeypatch.setattr(threads, "_perf_counter", lambda: fake.t)
    return fake


def test_busy_seconds_reads_the_watched_cpus_only():
    tick = os.sysconf("SC_CLK_TCK")
    text = f"cpu  9 9 9 9 9 9 9 9\ncpu0 {tick} 0 {tick} 50 7 0 0 0 0 0\ncpu1 {5 * tick} 0 0 0 0 0 0 0\n"
    assert threads._busy_seconds(text, {0}) == pytest.approx(2.0)  # user + system; not idle/iowait
    assert threads._busy_seconds(text, None) == pytest.approx(7.0)
    with pytest.raises(ValueError):
        threads._busy_seconds(text, {5})


def test_monitor_counts_what_other_processes_use():
    fake = FakeMachine()
    mon = fake.monitor()
    assert mon.sample() == (None, False)  # the first window is still open
    fake.advance(1.0, others=1.0, own=0.5)
    free, fresh = mon.sample()
    assert fresh and free == pytest.approx(1.0, abs=0.02)  # our own 0.5 CPU is not "taken"
    fake.advance(0.1, others=0.0)  # inside the sampling interval: the last estimate
    assert mon.sample() == (free, False)
    fake.advance(1.0, others=0.0, own=2.0)
    assert mon.sample()[0] == pytest.approx(2.0, abs=0.02)


def test_auto_uses_free_cpus_and_drops_at_once_but_rises_with_hysteresis(machine):
    auto = threads._auto
    assert auto.limit(512, cap=2) == 1  # not measured yet: the safe choice
    machine.advance(1.0, others=0.0)
    assert auto.limit(512, cap=2) == 2
    machine.advance(1.0, others=1.0)  # another process takes a core
    assert auto.limit(512, cap=2) == 1
    machine.advance(1.0, others=0.3)  # a browser drawing now and then: not free enough
    assert auto.limit(512, cap=2) == 1
    for _ in range(threads.RAISE_AFTER - 1):
        machine.advance(1.0, others=0.0)
        assert auto.limit(512, cap=2) == 1
    machine.advance(1.0, others=0.0)
    assert auto.limit(512, cap=2) == 2
    assert auto.limit(512, cap=1) == 1  # torch's own setting caps it
    assert auto.limit(threads.ATOMS_PER_THREAD, cap=2) == 1  # too small to share


def test_auto_falls_back_to_a_size_rule_without_proc_stat(monkeypatch):
    def unreadable():
        raise OSError("no /proc/stat")

    mon = threads.CpuMonitor(read_stat=unreadable)
    assert not mon.available
    auto = threads._AutoThreads(mon)
    assert auto.limit(threads.SERIAL_BELOW_ATOMS - 1, cap=2) == 1
    assert auto.limit(threads.SERIAL_BELOW_ATOMS, cap=2) == 2


class TimedSpy(ThreadSpy):
    """Each call takes ``cost[threads]`` seconds of the fake machine's clock."""

    def __init__(self, machine, cost):
        super().__init__()
        self.machine, self.cost = machine, cost
        self.others = 0.0  # CPUs other processes use while the call runs

    def _evaluate(self, structures, properties):
        self.machine.advance(self.cost[torch.get_num_threads()], others=self.others)
        return super()._evaluate(structures, properties)


@pytest.mark.parametrize("cost, best", [({1: 1.0, 2: 0.6}, 2), ({1: 1.0, 2: 1.3}, 1)])
def test_auto_keeps_the_thread_count_that_timed_fastest(machine, cost, best):
    machine.advance(1.0, others=0.0)
    spy = TimedSpy(machine, cost)
    atoms = cu(4)  # 256 atoms
    for _ in range(2 * threads.EXPLORE_CALLS + 5):
        spy.evaluate([atoms], ("energy", "forces"), validate=False)
    explored = spy.seen[: 2 * threads.EXPLORE_CALLS]
    assert sorted(explored) == [1] * threads.EXPLORE_CALLS + [2] * threads.EXPLORE_CALLS
    assert spy.seen[2 * threads.EXPLORE_CALLS :] == [best] * 5
    assert torch.get_num_threads() == 2  # restored after every call


def test_auto_retunes_after_a_while_and_when_cores_are_taken(machine):
    machine.advance(1.0, others=0.0)
    spy = TimedSpy(machine, {1: 1.0, 2: 0.6})
    atoms = cu(4)
    for _ in range(threads.RETUNE_AFTER):
        spy.evaluate([atoms], ("energy",), validate=False)
    assert spy.seen[-1] == 2
    spy.cost = {1: 1.0, 2: 1.5}  # the machine changed: 2 threads now lose
    for _ in range(2 * threads.EXPLORE_CALLS + 3):
        spy.evaluate([atoms], ("energy",), validate=False)
    assert spy.seen[-3:] == [1, 1, 1]
    # another process takes a core: 1 thread from the next sample on, without exploring
    spy.cost = {1: 1.0, 2: 0.6}
    spy.seen.clear()
    spy.others = 1.0
    for _ in range(6):
        spy.evaluate([atoms], ("energy",), validate=False)
    assert spy.seen[1:] == [1] * 5  # the first call started before the core was taken


def test_auto_never_gives_more_than_the_free_cpus_on_this_machine():
    free = threads.free_cpus()
    assert free is None or 0.0 <= free <= threads.usable_cpus()
    assert 1 <= threads.threads_for(10_000) <= threads.usable_cpus()


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


def test_cgroup_quota_is_read_from_v2_and_v1_files(tmp_path):
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")
    assert threads._cgroup_cpu_quota(v2) == pytest.approx(1.5)
    (v2 / "cpu.max").write_text("max 100000\n")
    assert threads._cgroup_cpu_quota(v2) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("200000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert threads._cgroup_cpu_quota(v1) == pytest.approx(2.0)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert threads._cgroup_cpu_quota(v1) is None


def test_usable_cpus_rounds_a_quota_up(monkeypatch):
    monkeypatch.setattr(threads, "_cgroup_cpu_quota", lambda: 0.5)
    assert threads.usable_cpus() == 1
