"""How many CPU threads torch may use while nnp_lab evaluates a potential.

Why this exists: torch's intra-op threads wait for each other at the end of every
operation. When another process keeps a core busy (a second kernel, the browser drawing
a live view, a neighbour on a shared Binder node) the waiting thread is descheduled and
each of the thousands of small operations of a model call waits for a time slice.
Measured on this project's 2-core machine (``bench/threads.py``), our SevenNet-0:

- idle machine: 2 threads are 1.37–1.49× the speed of 1 at 64–512 atoms, 0.96× at 1,728;
- one core kept busy by a spinning process: 2 threads are 0.39× (64 atoms) and 0.29×
  (512 atoms) the speed of 1; next to a numeric benchmark process a 64-atom call took
  9–14 s with 2 threads against 0.14 s with 1;
- a light distilled TeaNet (56 atoms): 1.12× idle, 0.58× busy.

An interactive session is rarely idle (the browser renders while a run streams), so the
default trades up to ~1.5× on an idle machine for never stalling. Containers make it
worse: torch counts the host's cores, not the container's CPU quota.

The policy (:func:`set_threads`, or the ``NNP_LAB_THREADS`` environment variable):

``"auto"`` (default)
    1 thread for structures smaller than :data:`SERIAL_BELOW_ATOMS` atoms per call (their
    operations are too small to gain from threads, and lose most when cores are shared);
    above it, torch's setting capped at the CPUs this process may really use (affinity and
    cgroup quota, :func:`usable_cpus`).
an integer ``n``
    Always ``n`` threads.
``None``
    Leave torch's setting alone.

It only applies inside :meth:`nnp_lab.potentials.Potential.evaluate` (and so to every
calculator, relaxation, MD and NEB run); torch's global setting is restored afterwards. On a
GPU it changes nothing that matters.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from nnp_lab.errors import InputError

__all__ = [
    "SERIAL_BELOW_ATOMS",
    "set_threads",
    "get_threads",
    "threads_for",
    "torch_threads",
    "usable_cpus",
]

#: Below this many atoms per call the ``"auto"`` policy uses 1 thread.
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
        ``"auto"`` (default), a positive integer, or ``None`` to leave torch's own setting
        (``torch.set_num_threads``) in charge.

    Examples
    --------
    >>> import nnp_lab
    >>> nnp_lab.set_threads(2)       # a quiet machine and a large cell: use both cores
    >>> nnp_lab.set_threads("auto")  # back to the default
    """
    global _policy
    _policy = _parse(threads)


def get_threads() -> int | str | None:
    """The current policy: ``"auto"``, an integer or ``None``."""
    return _policy


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota is not None:
        n = min(n, max(1, math.ceil(quota)))
    return max(1, n)


def _cgroup_cpu_quota() -> float | None:
    """CPUs granted by a cgroup v2 (``cpu.max``) or v1 (``cfs_quota_us``) quota, if any."""
    try:
        text = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if text and text[0] != "max":
            return int(text[0]) / int(text[1])
    except (OSError, ValueError, IndexError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        if quota > 0 and period > 0:
            return quota / period
    except (OSError, ValueError):
        pass
    return None


def threads_for(n_atoms: int) -> int | None:
    """Threads the current policy gives a call on ``n_atoms`` atoms (None: torch's own)."""
    if _policy is None:
        return None
    if isinstance(_policy, int):
        return _policy
    if n_atoms < SERIAL_BELOW_ATOMS:
        return 1
    torch = sys.modules.get("torch")
    current = torch.get_num_threads() if torch is not None else usable_cpus()
    return max(1, min(current, usable_cpus()))


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
