"""Peak-memory estimates of an evaluation, and the memory this process may still use.

A structure too large for the memory at hand makes torch fail deep inside a forward pass
(``RuntimeError: ... DefaultCPUAllocator: can't allocate memory``) or, without a limit, makes
the kernel's OOM killer end the process: in Jupyter, a dead kernel and no message.
:meth:`nnp_lab.potentials.Potential.evaluate` therefore compares, before any heavy work, an
estimate of the call's peak memory with what the process may still use, and raises
:class:`MemoryLimitError` (an :class:`~nnp_lab.errors.InputError`) saying how to fix it.

Estimate
--------
A call's peak memory above what the process already holds is modelled as
``overhead + per_atom * n_atoms + per_pair * n_pairs (+ per_triplet * n_triplets)`` for the
batch of structures that goes through the model together (all structures of the call, or the
largest chunk for models that evaluate long lists in chunks). ``n_pairs`` counts neighbour
pairs within the model's cutoff, each pair once, periodic images included; ``n_triplets``
counts angles (pairs of neighbours of one atom) within a three-body cutoff, for models with
three-body terms (CHGNet's bond graph, Behler–Parrinello angular functions).
:func:`estimate_neighbours` estimates pairs from local number densities, without building a
neighbour list, and counts angles with a short-range list. Each
:class:`~nnp_lab.potentials.Potential` carries its constants (``memory_per_atom_bytes``,
``memory_per_pair_bytes``, ``memory_overhead_bytes``, ``memory_per_triplet_bytes`` with
``memory_triplet_cutoff``), measured with ``bench/memory_model.py`` (peak RSS growth of
single points, fitted linear in atoms, pairs and angles, plus a margin).

Available memory
----------------
:func:`available_memory` takes the smallest of the limits that apply (each source is
optional; a missing or unreadable file is ignored):

* the cgroup memory limit minus the cgroup's current usage (cgroup v2 ``memory.max`` /
  ``memory.current``, v1 ``memory.limit_in_bytes`` / ``memory.usage_in_bytes``; reclaimable
  page cache, ``inactive_file``, counts as free), for the process's cgroup and its ancestors;
* the ``RLIMIT_AS`` soft limit minus the process's current virtual size (``/proc/self/statm``);
* ``MemAvailable`` of ``/proc/meminfo``;
* on a CUDA device, instead: the device's free memory (``torch.cuda.mem_get_info``) plus what
  torch's caching allocator holds unused.

Set the environment variable ``NNP_LAB_MEMORY_CHECK=0`` (or pass ``memory_check=False`` to
``evaluate``) to skip the check.

The estimators live in ``_memory_estimate`` and the readers of the limits in
``_memory_sources``; import them from here.
"""

from __future__ import annotations

import os

from nnp_lab.errors import InputError
from nnp_lab.potentials._memory_estimate import (
    MAX_NUMBER_DENSITY,
    MemoryEstimate,
    batch_bounds,
    estimate_neighbours,
    estimate_pairs,
    peak_bytes,
    upper_bound_bytes,
)
from nnp_lab.potentials._memory_sources import (
    MemoryLimit,
    available_memory,
    available_memory_bytes,
    forget_cgroup_discovery,
    memory_limits,
)

__all__ = [
    "ENV_VAR",
    "MIN_CHECKED_BYTES",
    "MAX_NUMBER_DENSITY",
    "MemoryLimitError",
    "MemoryLimit",
    "MemoryEstimate",
    "memory_check_enabled",
    "memory_limits",
    "available_memory",
    "available_memory_bytes",
    "forget_cgroup_discovery",
    "estimate_pairs",
    "estimate_neighbours",
    "peak_bytes",
    "upper_bound_bytes",
    "batch_bounds",
    "check_memory",
]

#: Environment variable that switches the check off when set to ``0``, ``false``, ``no`` or
#: ``off``.
ENV_VAR = "NNP_LAB_MEMORY_CHECK"

#: Calls that need less than this are not checked: when a quick bound from the atom count
#: (:func:`upper_bound_bytes`) is below it, nothing else is computed (~2 µs), and estimates
#: below it do not read the limits. A process that cannot find another 256 MiB is in
#: trouble whatever it evaluates; this keeps the check free for the small cells and light
#: models whose steps take milliseconds.
MIN_CHECKED_BYTES = 256 * 2**20


class MemoryLimitError(InputError):
    """A call whose estimated peak memory exceeds what this process may still use.

    Attributes
    ----------
    estimate : MemoryEstimate
        The estimate of the call.
    limit : MemoryLimit
        The tightest limit, with where it came from.
    """

    def __init__(self, message: str, estimate: MemoryEstimate, limit: MemoryLimit) -> None:
        super().__init__(message)
        self.estimate = estimate
        self.limit = limit


def memory_check_enabled() -> bool:
    """False when ``NNP_LAB_MEMORY_CHECK`` is ``0``, ``false``, ``no`` or ``off``."""
    value = os.environ.get(ENV_VAR, "").strip().lower()
    return value not in {"0", "false", "no", "off"}


def check_memory(
    estimate: MemoryEstimate,
    device: str = "cpu",
    *,
    limit: MemoryLimit | None = None,
    model: str = "",
) -> None:
    """Raise :class:`MemoryLimitError` when ``estimate`` exceeds the memory available.

    Parameters
    ----------
    estimate
        Peak-memory estimate of the call.
    device
        Where the call runs (``"cpu"`` or ``"cuda[:N]"``).
    limit
        The limit to compare with; None reads :func:`available_memory` (only for estimates
        of at least :data:`MIN_CHECKED_BYTES`).
    model
        Registered name of the potential, for the message.
    """
    if limit is None:
        if estimate.bytes < MIN_CHECKED_BYTES:
            return
        limit = available_memory(device)
        if limit is None:
            return
    if estimate.bytes <= limit.available:
        return
    on_gpu = str(device).startswith("cuda")
    gpu = (
        "a GPU with more free memory"
        if on_gpu
        else "a GPU with enough memory (nnp_lab.load_potential(..., device='cuda')) or a "
        "machine with more RAM"
    )
    who = f"{model} on {device}" if model else f"this evaluation on {device}"
    part = f" for {estimate.what}" if estimate.what and estimate.what != model else ""
    raise MemoryLimitError(
        f"{who} would need an estimated {estimate.describe()}{part}, but this process can "
        f"only get {limit.describe(' more')}; the call would fail inside torch or get the "
        f"process (the Jupyter kernel) killed. To fix: use a smaller cell (memory grows "
        f"linearly with atoms and neighbour pairs), evaluate fewer structures per call, run "
        f"on {gpu}, or distil a light model for this system (nnp_lab.models.distill: a few "
        f"kB per neighbour pair instead of tens). The estimate has a safety margin of about "
        f"25 %; set {ENV_VAR}=0 (or pass memory_check=False to evaluate) to try anyway.",
        estimate,
        limit,
    )
