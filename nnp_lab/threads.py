"""How many CPU threads torch may use while nnp_lab evaluates a potential.

Why this exists: torch's intra-op threads wait for each other at the end of every
operation. When another process keeps a core busy (a second kernel, the browser drawing
a live view, a neighbour on a shared Binder node) the waiting thread is descheduled and
each of the thousands of small operations of a model call waits for a time slice.
Measured on this project's 2-core machine (``bench/threads.py``), our SevenNet-0:

- idle machine: 2 threads are 1.37–1.49× the speed of 1 at 64–512 atoms;
- one core kept busy by a spinning process: 2 threads are 0.39× (64 atoms) and 0.29×
  (512 atoms) the speed of 1; next to a numeric benchmark process a 64-atom call took
  9–14 s with 2 threads against 0.14 s with 1.

So neither fixed choice is right: all cores win on an idle machine and lose badly on a
shared one. The default policy measures which it is.

The policy (:func:`set_threads`, or the ``NNP_LAB_THREADS`` environment variable):

``"auto"`` (default)
    Decided per call, from two measurements:

    1. **the CPUs free right now**: the CPUs this process may use (affinity mask and
       cgroup quota, :func:`usable_cpus`) minus the CPU time other processes took on them
       since the last look (``/proc/stat``'s busy time of those CPUs minus this process's
       own CPU time, over at least :data:`SAMPLE_INTERVAL_S`; a CPU counts as free when at
       least ``1 - FREE_MARGIN`` of it was idle), with hysteresis: fewer free CPUs take
       effect at once (a stall costs far more than a lost speed-up), more only after
       :data:`RAISE_AFTER` samples in a row. Also capped by torch's own setting
       (``torch.get_num_threads()``, what torch would use without nnp_lab) and by the
       call's size (one thread per :data:`ATOMS_PER_THREAD` atoms);
    2. **which thread count is fastest for this kind of call**: among 1, 2, 4 … up to
       that limit, the first calls of each (potential, size class within a factor of 2)
       are timed round-robin, :data:`EXPLORE_CALLS` each, and the fastest per atom is kept
       for the next :data:`RETUNE_AFTER` calls, then timed again. On a virtual machine
       whose second core is slow to wake, or a many-core node where a mid-sized call
       gains nothing beyond a few threads, this finds it instead of assuming.

    Where ``/proc/stat`` cannot be read (not Linux) it falls back to 1 thread below
    :data:`SERIAL_BELOW_ATOMS` atoms per call and torch's setting above.
an integer ``n``
    Always ``n`` threads.
``None``
    Leave torch's setting alone.

It only applies inside :meth:`nnp_lab.potentials.Potential.evaluate` (and so to every
calculator, relaxation, MD and NEB run) and to training; torch's global setting is
restored afterwards. On a GPU it changes nothing that matters. :func:`threads_for` says
what a call of a given size would get now; :func:`free_cpus` what the monitor sees.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from nnp_lab.errors import InputError

__all__ = [
    "ATOMS_PER_THREAD",
    "FREE_MARGIN",
    "RAISE_AFTER",
    "SAMPLE_INTERVAL_S",
    "SERIAL_BELOW_ATOMS",
    "EXPLORE_CALLS",
    "RETUNE_AFTER",
    "CpuMonitor",
    "evaluation_threads",
    "free_cpus",
    "set_threads",
    "get_threads",
    "threads_for",
    "torch_threads",
    "usable_cpus",
]

#: Shortest window over which the free CPUs are measured again (seconds). Model calls are
#: 10–500 ms, so a run is re-decided every call or few calls; reading /proc/stat costs ~50 µs.
SAMPLE_INTERVAL_S = 0.25
#: A CPU counts as free when other processes used less than this fraction of it.
FREE_MARGIN = 0.25
#: Samples in a row that must show more free CPUs before the thread count goes up.
RAISE_AFTER = 2
#: At most one thread per this many atoms in a call (``bench/threads.py --sizes 8 16 32``).
ATOMS_PER_THREAD = 16
#: Timed calls per candidate thread count before the fastest is kept.
EXPLORE_CALLS = 3
#: Calls of one kind after which the candidates are timed again (the machine changes).
RETUNE_AFTER = 200
#: Without /proc/stat (not Linux): below this many atoms per call, 1 thread.
SERIAL_BELOW_ATOMS = 1000

_policy: int | str | None = "auto"


def _parse(value: int | str | None) -> int | str | None:
    if value is None or value == "auto":
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("", "auto"):
            return "auto"
        if text in ("none", "torch"):
            return None
        try:
            value = int(text)
        except ValueError:
            raise InputError(
                f"threads must be 'auto', None or a positive integer, got {value!r}"
            ) from None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"threads must be 'auto', None or a positive integer, got {value!r}")
    return int(value)


def set_threads(threads: int | str | None = "auto") -> None:
    """Set how many torch CPU threads nnp_lab's evaluations use (see the module docstring).

    Parameters
    ----------
    threads
        ``"auto"`` (default: the CPUs free right now, measured), a positive integer, or
        ``None`` to leave torch's own setting (``torch.set_num_threads``) in charge.

    Examples
    --------
    >>> import nnp_lab
    >>> nnp_lab.set_threads(2)       # always 2, whatever else runs
    >>> nnp_lab.set_threads("auto")  # back to the default
    """
    global _policy
    _policy = _parse(threads)


def get_threads() -> int | str | None:
    """The current policy: ``"auto"``, an integer or ``None``."""
    return _policy


def _affinity() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota."""
    cpus = _affinity()
    n = len(cpus) if cpus is not None else (os.cpu_count() or 1)
    quota = _cgroup_cpu_quota()
    if quota is not None:
        n = min(n, max(1, math.ceil(quota)))
    return max(1, n)


def _cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs granted by a cgroup v2 (``cpu.max``) or v1 (``cfs_quota_us``) quota, if any."""
    try:
        text = (root / "cpu.max").read_text().split()
        if text and text[0] != "max":
            return int(text[0]) / int(text[1])
    except (OSError, ValueError, IndexError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        if quota > 0 and period > 0:
            return quota / period
    except (OSError, ValueError):
        pass
    return None


#: /proc/stat's time unit (USER_HZ).
_TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _read_proc_stat() -> str:
    with open("/proc/stat") as f:
        return f.read()


def _busy_seconds(stat: str, cpus: set[int] | None) -> float:
    """Busy time (s) summed over ``cpus`` (None: all) from the text of ``/proc/stat``.

    Busy is everything but idle and iowait: user, nice, system, irq, softirq and steal
    (time the hypervisor gave to someone else is not ours either); guest time is already
    inside user. Raises ValueError when no line matches.
    """
    total = 0
    found = False
    for line in stat.splitlines():
        if not line.startswith("cpu") or line.startswith("cpu "):
            continue
        name, *fields = line.split()
        index = int(name[3:])
        if cpus is not None and index not in cpus:
            continue
        values = [int(v) for v in fields[:8]] + [0] * max(0, 8 - len(fields))
        user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
        total += user + nice + system + irq + softirq + steal
        found = True
    if not found:
        raise ValueError("no matching cpuN line in /proc/stat")
    return total / _TICKS_PER_S


class CpuMonitor:
    """How many of this process's CPUs other processes leave free, measured from /proc/stat.

    Each :meth:`sample` at least ``interval_s`` after the previous one compares the busy
    time of the usable CPUs with this process's own CPU time over the window in between:
    ``free = usable − (busy − own) / wall``. Between samples it returns the last estimate.
    The clock, the process CPU-time source and the /proc/stat reader can be replaced (the
    tests drive it with a fake machine).

    Parameters
    ----------
    interval_s
        Shortest window between two measurements.
    read_stat, clock, own_cpu_s, cpus, usable
        ``/proc/stat`` reader, wall clock, this process's CPU seconds, a function giving
        the CPU indices to watch (default: the affinity mask; None watches all) and one
        giving how many CPUs the process may use (:func:`usable_cpus`).
    """

    def __init__(
        self,
        interval_s: float = SAMPLE_INTERVAL_S,
        *,
        read_stat: Callable[[], str] = _read_proc_stat,
        clock: Callable[[], float] = time.monotonic,
        own_cpu_s: Callable[[], float] = time.process_time,
        cpus: Callable[[], set[int] | None] = _affinity,
        usable: Callable[[], int] = usable_cpus,
    ) -> None:
        self.interval_s = float(interval_s)
        self._read_stat, self._clock, self._own, self._cpus = read_stat, clock, own_cpu_s, cpus
        self._usable = usable
        self._lock = threading.Lock()
        self._last: tuple[float, float, float] | None = None
        self.estimate: float | None = None  # free CPUs at the last measurement
        self.samples = 0  # measurements made so far
        self.available = True  # False once /proc/stat proved unreadable
        self._take()  # the first window starts now

    def _take(self) -> bool:
        """Read the counters; update the estimate if a window closed. True if it did."""
        now = self._clock()
        try:
            cpus = self._cpus()
            busy = _busy_seconds(self._read_stat(), cpus)
        except (OSError, ValueError):
            self.available = False
            return False
        own = self._own()
        last, self._last = self._last, (now, busy, own)
        if last is None:
            return False
        wall = now - last[0]
        others = max(0.0, (busy - last[1]) - (own - last[2])) / wall
        n = min(len(cpus), self._usable()) if cpus is not None else self._usable()
        self.estimate = max(0.0, n - others)
        self.samples += 1
        return True

    def sample(self) -> tuple[float | None, bool]:
        """``(free CPUs, whether this call measured anew)``; free is None until the first
        window has closed or where /proc/stat cannot be read."""
        with self._lock:
            if not self.available:
                return None, False
            fresh = False
            if self._last is None or self._clock() - self._last[0] >= self.interval_s:
                fresh = self._take()
            return self.estimate, fresh


class _Tuner:
    """Times real calls of one (potential, size class) at each candidate thread count and
    keeps the fastest; explores again every :data:`RETUNE_AFTER` calls or when the free
    CPUs change."""

    def __init__(self) -> None:
        self.candidates: tuple[int, ...] = ()
        self.samples: dict[int, list[float]] = {}
        self.best: int | None = None
        self.calls = 0

    def choose(self, candidates: tuple[int, ...]) -> int:
        if candidates != self.candidates or self.calls >= RETUNE_AFTER:
            self.candidates, self.calls, self.best = candidates, 0, None
            self.samples = {c: [] for c in candidates}
        self.calls += 1
        if len(candidates) == 1:
            return candidates[0]
        if self.best is not None:
            return self.best
        # round-robin over the candidates until each has EXPLORE_CALLS timings
        return min(candidates, key=lambda c: (len(self.samples[c]), c))

    def record(self, threads: int, seconds_per_atom: float) -> None:
        if self.best is not None or threads not in self.samples:
            return
        self.samples[threads].append(seconds_per_atom)
        if all(len(v) >= EXPLORE_CALLS for v in self.samples.values()):
            medians = {c: statistics.median(v) for c, v in self.samples.items()}
            self.best = min(medians, key=lambda c: medians[c])


class _AutoThreads:
    """The ``"auto"`` policy: free CPUs with hysteresis, capped by torch and call size, and
    among 1, 2, 4 … up to that, the count that measured fastest for this kind of call."""

    def __init__(self, monitor: CpuMonitor) -> None:
        self.monitor = monitor
        self.level: int | None = None  # threads the machine allows now (None: not measured)
        self._higher_seen = 0
        self._tuners: dict[tuple[str, int], _Tuner] = {}
        self._lock = threading.Lock()

    def limit(self, n_atoms: int, cap: int) -> int:
        """The most threads a call on ``n_atoms`` atoms may use now."""
        free, fresh = self.monitor.sample()
        if free is None:
            if not self.monitor.available:
                return 1 if n_atoms < SERIAL_BELOW_ATOMS else cap
            return 1  # the first window is still open: the safe choice
        with self._lock:
            if fresh:
                self._update(max(1, math.floor(free + FREE_MARGIN)))
            level = self.level or 1
        by_size = max(1, n_atoms // ATOMS_PER_THREAD)
        return max(1, min(level, cap, by_size))

    def choose(self, key: str, n_atoms: int, cap: int) -> int:
        limit = self.limit(n_atoms, cap)
        candidates = tuple(sorted({c for c in (1, 2, 4, 8, 16, 32, 64) if c < limit} | {limit}))
        with self._lock:
            tuner = self._tuners.setdefault((key, n_atoms.bit_length()), _Tuner())
            return tuner.choose(candidates)

    def record(self, key: str, n_atoms: int, threads: int, seconds: float) -> None:
        with self._lock:
            tuner = self._tuners.get((key, n_atoms.bit_length()))
            if tuner is not None:
                tuner.record(threads, seconds / max(n_atoms, 1))

    def _update(self, target: int) -> None:
        if self.level is None or target < self.level:
            self.level, self._higher_seen = target, 0
        elif target > self.level:
            self._higher_seen += 1
            if self._higher_seen >= RAISE_AFTER:
                self.level, self._higher_seen = target, 0
        else:
            self._higher_seen = 0


_auto = _AutoThreads(CpuMonitor())
_perf_counter = time.perf_counter  # the clock that times calls (replaceable in tests)


def free_cpus() -> float | None:
    """Free CPUs as the ``"auto"`` policy last measured them (None: not measured yet, or
    no /proc/stat on this system). Reads the last estimate; takes no measurement of its
    own, so asking does not use up a sample the policy's hysteresis counts."""
    return _auto.monitor.estimate


def _torch_default() -> int:
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else usable_cpus()


def threads_for(n_atoms: int) -> int | None:
    """The most threads the current policy lets a call on ``n_atoms`` atoms use now
    (None: torch's own). Without timing feedback, e.g. to size a training run."""
    if _policy is None:
        return None
    if isinstance(_policy, int):
        return _policy
    return _auto.limit(n_atoms, max(1, min(_torch_default(), usable_cpus())))


@contextlib.contextmanager
def evaluation_threads(key: str, n_atoms: int) -> Iterator[int | None]:
    """Run one model call on ``n_atoms`` atoms with the threads the policy picks, and (for
    ``"auto"``) feed its wall time back to the choice for calls of the same ``key`` (e.g.
    the potential's name) and size class (atoms within a factor of 2). Yields the count."""
    if _policy is None or isinstance(_policy, int):
        with torch_threads(_policy):
            yield _policy
        return
    n = _auto.choose(key, n_atoms, max(1, min(_torch_default(), usable_cpus())))
    start = _perf_counter()
    with torch_threads(n):
        yield n
    _auto.record(key, n_atoms, n, _perf_counter() - start)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run torch's CPU kernels with ``n`` threads inside the block (None: leave as is).

    Does nothing when torch has not been imported (e.g. an EMT-only session).
    """
    torch = sys.modules.get("torch")
    if n is None or torch is None:
        yield
        return
    old = torch.get_num_threads()
    if old == n:
        yield
        return
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


# The environment variable sets the initial policy (e.g. NNP_LAB_THREADS=2 or =none).
if os.environ.get("NNP_LAB_THREADS") is not None:
    _policy = _parse(os.environ["NNP_LAB_THREADS"])
