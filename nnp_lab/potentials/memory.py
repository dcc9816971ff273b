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
"""

from __future__ import annotations

import math
import os
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

from nnp_lab.errors import InputError

__all__ = [
    "ENV_VAR",
    "MemoryLimitError",
    "MemoryLimit",
    "MemoryEstimate",
    "memory_check_enabled",
    "memory_limits",
    "available_memory",
    "available_memory_bytes",
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

_CGROUP_ROOT = "/sys/fs/cgroup"
_PROC_SELF = "/proc/self"
_MEMINFO = "/proc/meminfo"
# A cgroup v1 limit this large means "no limit" (the kernel reports PAGE_COUNTER_MAX pages).
_NO_LIMIT = 2**60
_GB = 1e9


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


@dataclass(frozen=True)
class MemoryLimit:
    """How many more bytes the process may use, according to one source.

    Attributes
    ----------
    available : int
        Bytes the process may still allocate.
    source : str
        ``"cgroup"``, ``"RLIMIT_AS"``, ``"available RAM"`` or ``"CUDA free memory"``.
    detail : str
        Where the number came from, for messages (file, limit and usage).
    """

    available: int
    source: str
    detail: str = ""

    def describe(self, suffix: str = "") -> str:
        """``"3.1 GB (RLIMIT_AS: soft limit 6.0 GB (ulimit -v), 2.9 GB already mapped)"``;
        ``suffix`` goes after the number."""
        detail = f"{self.source}: {self.detail}" if self.detail else self.source
        return f"{self.available / _GB:.1f} GB{suffix} ({detail})"


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated peak memory of one evaluate call (the batch that needs the most).

    Attributes
    ----------
    bytes : float
        Estimated peak memory above what the process holds before the call.
    n_atoms : int
        Atoms in that batch.
    n_pairs : float
        Estimated neighbour pairs (each once) within the cutoff in that batch.
    n_triplets : float
        Estimated angles (pairs of neighbours of an atom) within the three-body cutoff, for
        models with three-body terms (0 otherwise).
    n_structures : int
        Structures in that batch.
    n_batches : int
        Batches the call is split into.
    what : str
        What the estimate is of, e.g. ``"sevennet-0"`` or ``"D3 dispersion"``.
    """

    bytes: float
    n_atoms: int = 0
    n_pairs: float = 0.0
    n_triplets: float = 0.0
    n_structures: int = 0
    n_batches: int = 1
    what: str = ""

    def describe(self) -> str:
        """``"15.1 GB (1 structure, 32,768 atoms, ~445,557 neighbour pairs in one batch)"``."""
        s = "" if self.n_structures == 1 else "s"
        if self.n_batches == 1:
            batch = "in one batch"
        else:
            batch = f"in the largest of {self.n_batches} batches"
        angles = f", ~{self.n_triplets:,.0f} angles" if self.n_triplets else ""
        return (
            f"{self.bytes / _GB:.1f} GB ({self.n_structures} structure{s}, {self.n_atoms:,} "
            f"atoms, ~{self.n_pairs:,.0f} neighbour pairs{angles} {batch})"
        )


# ---------------------------------------------------------------------------------------
# Available memory
# ---------------------------------------------------------------------------------------
def memory_check_enabled() -> bool:
    """False when ``NNP_LAB_MEMORY_CHECK`` is ``0``, ``false``, ``no`` or ``off``."""
    value = os.environ.get(ENV_VAR, "").strip().lower()
    return value not in {"0", "false", "no", "off"}


def _read(path: str | Path) -> str | None:
    # os.open/os.read: a third of the cost of open().read() for these tiny kernel files.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.read(fd, 1 << 16).decode("ascii", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def _read_int(path: str | Path) -> int | None:
    text = _read(path)
    if text is None:
        return None
    try:
        return int(text.split()[0])
    except (ValueError, IndexError):
        return None  # "max" (cgroup v2: no limit) or garbage


def _stat_value(path: str | Path, key: str) -> int:
    """A ``key value`` line of a cgroup ``memory.stat`` file (0 when absent)."""
    text = _read(path)
    if text:
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                try:
                    return int(value)
                except ValueError:
                    return 0
    return 0


def _cgroup_dirs(root: Path, relative: str) -> list[Path]:
    """The process's cgroup directory under ``root`` and its ancestors up to ``root``.

    Inside a container with its own cgroup namespace ``/proc/self/cgroup`` says ``/`` and the
    mount is the container's own cgroup; on a host the path is relative to the mount.
    """
    relative = relative.strip().lstrip("/")
    dirs = []
    if relative:
        leaf = root / relative
        if leaf.is_dir():
            d = leaf
            while d != root and root in d.parents:
                dirs.append(d)
                d = d.parent
    dirs.append(root)
    return dirs


@dataclass(frozen=True)
class _CgroupFiles:
    """The files of one cgroup level that has a memory limit."""

    limit: str
    usage: str
    stat: str
    reclaimable: str  # key of the reclaimable page cache in ``stat``


def _discover_cgroups(cgroup_root: Path, proc_self: Path) -> list[_CgroupFiles]:
    """Cgroup levels (v2 and v1, the process's own and its ancestors) with a finite limit."""
    text = _read(proc_self / "cgroup") or ""
    v2_path: str | None = None
    v1_path: str | None = None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":
            v2_path = path
        elif "memory" in controllers.split(","):
            v1_path = path
    found: list[_CgroupFiles] = []
    # cgroup v2: unified mount at the root, or at root/unified in hybrid set-ups.
    for v2_root in (cgroup_root, cgroup_root / "unified"):
        if (v2_root / "cgroup.controllers").is_file() or (v2_root / "memory.max").is_file():
            for d in _cgroup_dirs(v2_root, v2_path or ""):
                limit = _read_int(d / "memory.max")
                if limit is not None and limit < _NO_LIMIT:
                    found.append(
                        _CgroupFiles(
                            str(d / "memory.max"),
                            str(d / "memory.current"),
                            str(d / "memory.stat"),
                            "inactive_file",
                        )
                    )
            break
    # cgroup v1: the memory controller's own hierarchy.
    v1_root = cgroup_root / "memory"
    if (v1_root / "memory.limit_in_bytes").is_file():
        for d in _cgroup_dirs(v1_root, v1_path or ""):
            limit = _read_int(d / "memory.limit_in_bytes")
            if limit is not None and limit < _NO_LIMIT:
                found.append(
                    _CgroupFiles(
                        str(d / "memory.limit_in_bytes"),
                        str(d / "memory.usage_in_bytes"),
                        str(d / "memory.stat"),
                        "total_inactive_file",
                    )
                )
    return found


#: Seconds a discovery of the cgroup levels with a limit is reused: limits are read on
#: every check, but which levels have one is looked up again only this often.
_DISCOVERY_TTL_S = 30.0
_discovered: dict[tuple[str, str], tuple[float, list[_CgroupFiles]]] = {}


def _cgroup_limits(cgroup_root: str, proc_self: str) -> list[MemoryLimit]:
    key = (cgroup_root, proc_self)
    now = time.monotonic()
    cached = _discovered.get(key)
    if cached is None or now - cached[0] > _DISCOVERY_TTL_S:
        cached = (now, _discover_cgroups(Path(cgroup_root), Path(proc_self)))
        _discovered[key] = cached
    out = []
    for files in cached[1]:
        limit = _read_int(files.limit)
        usage = _read_int(files.usage)
        if limit is None or limit >= _NO_LIMIT or usage is None:
            continue
        usage -= _stat_value(files.stat, files.reclaimable)
        out.append(_cgroup_limit(files.limit, limit, usage))
    return out


def _cgroup_limit(path: str, limit: int, usage: int) -> MemoryLimit:
    usage = max(usage, 0)
    return MemoryLimit(
        max(limit - usage, 0),
        "cgroup",
        f"{path} = {limit / _GB:.1f} GB, {usage / _GB:.1f} GB in use",
    )


def _rlimit_limit(proc_self: str, rlimit_as: int | None) -> MemoryLimit | None:
    if rlimit_as is None:
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    else:
        soft = rlimit_as
    if soft == resource.RLIM_INFINITY or soft < 0:
        return None
    pages = _read_int(os.path.join(proc_self, "statm"))
    if pages is None:
        return None
    size = pages * resource.getpagesize()
    return MemoryLimit(
        max(soft - size, 0),
        "RLIMIT_AS",
        f"soft limit {soft / _GB:.1f} GB (ulimit -v), {size / _GB:.1f} GB already mapped",
    )


def _meminfo_limit(meminfo: str) -> MemoryLimit | None:
    text = _read(meminfo)
    if not text:
        return None
    at = text.find("MemAvailable:")
    if at < 0:
        return None
    try:
        kib = int(text[at:].split(None, 2)[1])
    except (ValueError, IndexError):
        return None
    return MemoryLimit(kib * 1024, "available RAM", f"MemAvailable in {meminfo}")


def _cuda_limit(device: str) -> MemoryLimit | None:
    import torch

    if not torch.cuda.is_available():
        return None
    try:
        free, total = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    except (RuntimeError, ValueError, AssertionError):
        return None
    return MemoryLimit(
        int(free + max(cached, 0)),
        "CUDA free memory",
        f"{device}: {free / _GB:.1f} GB free of {total / _GB:.1f} GB, {cached / _GB:.1f} GB "
        "cached by torch",
    )


def memory_limits(
    device: str = "cpu",
    *,
    cgroup_root: str | os.PathLike = _CGROUP_ROOT,
    proc_self: str | os.PathLike = _PROC_SELF,
    meminfo: str | os.PathLike = _MEMINFO,
    rlimit_as: int | None = None,
) -> list[MemoryLimit]:
    """Every limit that applies to allocations of this process on ``device``.

    Parameters
    ----------
    device
        ``"cpu"`` or ``"cuda[:N]"``. On CUDA only the device's free memory counts.
    cgroup_root, proc_self, meminfo
        Where to read ``/sys/fs/cgroup``, ``/proc/self`` (``cgroup``, ``statm``) and
        ``/proc/meminfo`` (for tests).
    rlimit_as
        The ``RLIMIT_AS`` soft limit in bytes to assume; None reads the process's own
        (``resource.RLIM_INFINITY``: no limit).

    Returns
    -------
    list of MemoryLimit
        Possibly empty (nothing readable: no limit known).
    """
    device = str(device)
    if device.startswith("cuda"):
        cuda = _cuda_limit(device)
        return [] if cuda is None else [cuda]
    proc = os.fspath(proc_self)
    out = _cgroup_limits(os.fspath(cgroup_root), proc)
    for limit in (_rlimit_limit(proc, rlimit_as), _meminfo_limit(os.fspath(meminfo))):
        if limit is not None:
            out.append(limit)
    return out


def available_memory(device: str = "cpu", **sources: object) -> MemoryLimit | None:
    """The tightest of :func:`memory_limits` (None when no limit could be read).

    Parameters
    ----------
    device
        ``"cpu"`` or ``"cuda[:N]"``.
    **sources
        Passed to :func:`memory_limits` (file locations, for tests).
    """
    limits = memory_limits(device, **sources)  # type: ignore[arg-type]
    return min(limits, key=lambda limit: limit.available) if limits else None


def available_memory_bytes(device: str = "cpu", **sources: object) -> int | None:
    """Bytes this process may still allocate on ``device``: the smallest of the cgroup
    limit minus usage, ``RLIMIT_AS`` minus the virtual size, ``MemAvailable`` (CPU) or the
    CUDA device's free memory. None when none of them could be read.

    Parameters
    ----------
    device
        ``"cpu"`` or ``"cuda[:N]"``.
    **sources
        Passed to :func:`memory_limits` (file locations, for tests).
    """
    limit = available_memory(device, **sources)
    return None if limit is None else limit.available


# ---------------------------------------------------------------------------------------
# Estimate
# ---------------------------------------------------------------------------------------
#: Bins per direction at most (keeps the flat bin index far from int64 overflow).
_MAX_BINS = 2**20
#: Offset of periodic bins, in bins (an irrational number: no crystal plane sits on a bin edge).
_BIN_PHASE = (math.sqrt(5.0) - 1.0) / 2.0 * 0.5


def estimate_pairs(atoms: Atoms, cutoff: float) -> float:
    """Estimated number of neighbour pairs within ``cutoff`` Å, each pair once.

    Atoms are binned into boxes at least ``cutoff`` wide (along the cell vectors of a
    periodic structure, along x, y, z otherwise) and each atom is given the number density
    of its box: ``n_pairs ≈ sum_boxes n_box² · (4/3)π cutoff³ / V_box / 2``. For a bulk cell
    that is the number density times the cutoff sphere; slabs with vacuum, molecules and
    particles get their local density. Non-periodic structures are capped at
    ``n (n - 1) / 2``. No neighbour list is built: O(n) NumPy work, ~20-60 µs for 64 atoms.

    Parameters
    ----------
    atoms
        The structure (not modified).
    cutoff
        Pair cutoff in Å.

    Returns
    -------
    float
        Estimated pair count; periodic images count as pairs (an atom may pair with its own
        image).
    """
    return estimate_neighbours(atoms, cutoff)[0]


def estimate_neighbours(
    atoms: Atoms, cutoff: float, triplet_cutoff: float | None = None
) -> tuple[float, float]:
    """Estimated pairs within ``cutoff`` and angles within ``triplet_cutoff`` (Å).

    Pairs as in :func:`estimate_pairs`. Angles (unordered pairs of neighbours of one atom,
    what three-body terms loop over) are counted exactly, ``sum_atoms k_i (k_i - 1) / 2``
    with ``k_i`` the neighbours within ``triplet_cutoff`` from a vesin neighbour list: that
    cutoff is short (CHGNet's bond graph: 3 Å), where the count depends on the first
    neighbour shell rather than on the density (diamond Si has 4 neighbours within 3 Å,
    fcc Cu 12), and the list is cheap (~0.1 ms for 64 atoms, ~1 µs per atom).

    Parameters
    ----------
    atoms
        The structure (not modified).
    cutoff
        Pair cutoff in Å.
    triplet_cutoff
        Three-body cutoff in Å (None or 0: no angles counted).

    Returns
    -------
    pairs, triplets
        Estimated counts (floats).
    """
    n = len(atoms)
    if n == 0 or cutoff <= 0:
        return 0.0, 0.0
    # 3-vectors are handled as Python floats: on arrays of length 3 every NumPy call costs
    # more than the arithmetic, and this runs before every evaluation.
    positions = atoms.positions
    periodic = [bool(p) for p in atoms.pbc]
    m = atoms.cell.array.tolist()
    det = _det3(m) if any(periodic) else 0.0
    if any(periodic) and abs(det) <= 1e-8:  # e.g. a slab with c = 0: complete the cell
        m = _complete_cell(atoms.cell.array, periodic)
        det = _det3(m)
    volume = abs(det)
    if volume > 1e-8:
        inverse = _inverse3(m, det)
        frac = positions @ np.array(inverse)
        # Distance between opposite cell faces = 1 / |reciprocal vector| (columns of the
        # inverse).
        heights = [
            1.0 / math.sqrt(inverse[0][k] ** 2 + inverse[1][k] ** 2 + inverse[2][k] ** 2)
            for k in range(3)
        ]
    else:  # non-periodic (or no 3D cell): Cartesian boxes around the atoms
        frac = positions
        heights = [1.0, 1.0, 1.0]
        periodic = [False, False, False]
        volume = 1.0
    if all(periodic):
        lows, highs = [0.0] * 3, [1.0] * 3
    else:
        lows, highs = frac.min(axis=0).tolist(), frac.max(axis=0).tolist()
    scale, offset, n_bins, span_product = [], [], [], 1.0
    for k in range(3):
        if periodic[k]:
            lo, span = 0.0, 1.0
        else:  # half a cutoff of room around the atoms
            pad = 0.5 * cutoff / heights[k]
            lo, span = lows[k] - pad, highs[k] - lows[k] + 2.0 * pad
        bins = int(min(max(math.floor(span * heights[k] / cutoff), 1), _MAX_BINS))
        n_bins.append(bins)
        scale.append(bins / span)
        # Periodic bins start at an irrational fraction of a bin, so that the atomic planes
        # of a perfect crystal (at simple fractions of the cell) never sit on a bin edge.
        offset.append(_BIN_PHASE if periodic[k] else -lo * bins / span)
        span_product *= span
    total_bins = n_bins[0] * n_bins[1] * n_bins[2]
    if total_bins == 1:
        counts = np.array([n], dtype=np.float64)
    else:
        idx = np.floor(frac * np.array(scale) + np.array(offset)).astype(np.int64)
        if all(periodic):
            idx %= np.array(n_bins)
        else:
            for k in range(3):
                if periodic[k]:
                    idx[:, k] %= n_bins[k]
                else:
                    np.clip(idx[:, k], 0, n_bins[k] - 1, out=idx[:, k])
        flat = idx @ np.array([n_bins[1] * n_bins[2], n_bins[2], 1], dtype=np.int64)
        if total_bins <= 8 * n + 4096:
            counts = np.bincount(flat, minlength=total_bins).astype(np.float64)
        else:
            counts = np.unique(flat, return_counts=True)[1].astype(np.float64)
    box_volume = volume * span_product / total_bins
    pairs = 0.5 * float(np.dot(counts, counts)) * _sphere(cutoff) / box_volume
    if not any(periodic):
        pairs = min(pairs, 0.5 * n * (n - 1))
    return pairs, (_count_triplets(atoms, triplet_cutoff) if triplet_cutoff else 0.0)


def _count_triplets(atoms: Atoms, cutoff: float) -> float:
    """Exact number of angles ``sum_i k_i (k_i - 1) / 2`` within ``cutoff`` (vesin list)."""
    from nnp_lab.potentials.neighbours import neighbour_list

    i, j = neighbour_list(atoms, cutoff, quantities="ij")
    n = len(atoms)
    k = (np.bincount(i, minlength=n) + np.bincount(j, minlength=n)).astype(np.float64)
    return 0.5 * float(np.dot(k, k - 1.0))


def _complete_cell(cell: np.ndarray, periodic: list[bool]) -> list[list[float]]:
    """``cell`` with its non-periodic vectors replaced by unit vectors normal to the
    periodic ones (a 2D or 1D periodic structure given without a third vector)."""
    _, _, vt = np.linalg.svd(cell[periodic])
    rank = int(sum(periodic))
    normals = iter(vt[rank:])
    return [cell[k].tolist() if periodic[k] else next(normals).tolist() for k in range(3)]


def _sphere(radius: float) -> float:
    return 4.0 / 3.0 * math.pi * radius**3


def _det3(m: list[list[float]]) -> float:
    return (
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    )


def _inverse3(m: list[list[float]], det: float) -> list[list[float]]:
    """Inverse of a 3x3 matrix (nested lists) with determinant ``det``: the adjugate / det."""
    (a, b, c), (d, e, f), (g, h, i) = m
    r = 1.0 / det
    return [
        [(e * i - f * h) * r, (c * h - b * i) * r, (b * f - c * e) * r],
        [(f * g - d * i) * r, (a * i - c * g) * r, (c * d - a * f) * r],
        [(d * h - e * g) * r, (b * g - a * h) * r, (a * e - b * d) * r],
    ]


#: Number density (atoms/Å³) above that of any solid at ambient pressure (diamond: 0.176),
#: for :func:`upper_bound_bytes`.
MAX_NUMBER_DENSITY = 0.2


def upper_bound_bytes(
    n_atoms: int,
    cutoff: float,
    *,
    per_atom: float,
    per_pair: float,
    overhead: float = 0.0,
    per_triplet: float = 0.0,
    triplet_cutoff: float | None = None,
) -> float:
    """An upper bound of :func:`peak_bytes` from the atom count alone (no geometry).

    Neighbours are bounded by :data:`MAX_NUMBER_DENSITY` times the cutoff sphere, so a call
    whose bound is below :data:`MIN_CHECKED_BYTES` needs no closer look (~1 µs).

    Parameters
    ----------
    n_atoms
        Atoms of all structures of the call.
    cutoff, triplet_cutoff
        The model's pair and three-body cutoffs in Å.
    per_atom, per_pair, overhead, per_triplet
        The model's constants (see :func:`peak_bytes`).
    """
    if per_atom <= 0 and per_pair <= 0 and overhead <= 0 and per_triplet <= 0:
        return 0.0
    per = per_atom + per_pair * 0.5 * MAX_NUMBER_DENSITY * _sphere(max(cutoff, 0.0))
    if per_triplet > 0 and triplet_cutoff:
        neighbours = MAX_NUMBER_DENSITY * _sphere(triplet_cutoff)
        per += per_triplet * 0.5 * neighbours * neighbours
    return overhead + n_atoms * per


def batch_bounds(
    sizes: Sequence[int], max_atoms: int | None = None, max_structures: int | None = None
) -> list[tuple[int, int]]:
    """Split structures (in order) into batches of at most ``max_atoms`` atoms and
    ``max_structures`` structures; a structure larger than ``max_atoms`` is a batch alone.

    Parameters
    ----------
    sizes
        Atoms per structure.
    max_atoms, max_structures
        Limits per batch (None: no limit).

    Returns
    -------
    list of (start, stop)
        Index ranges into ``sizes``.
    """
    bounds: list[tuple[int, int]] = []
    start, n_chunk = 0, 0
    for k, n in enumerate(sizes):
        full_atoms = max_atoms is not None and n_chunk + n > max_atoms
        full_count = max_structures is not None and k - start >= max_structures
        if k > start and (full_atoms or full_count):
            bounds.append((start, k))
            start, n_chunk = k, 0
        n_chunk += n
    if len(sizes) > start:
        bounds.append((start, len(sizes)))
    return bounds


def peak_bytes(
    structures: Sequence[Atoms],
    cutoff: float,
    *,
    per_atom: float,
    per_pair: float,
    overhead: float = 0.0,
    per_triplet: float = 0.0,
    triplet_cutoff: float | None = None,
    max_atoms: int | None = None,
    max_structures: int | None = None,
    what: str = "",
) -> MemoryEstimate:
    """Estimated peak memory of evaluating ``structures`` with a model of these constants.

    ``overhead + per_atom * n_atoms + per_pair * n_pairs + per_triplet * n_triplets`` of the
    batch (see :func:`batch_bounds`) that needs the most; pairs and angles from
    :func:`estimate_neighbours`.

    Parameters
    ----------
    structures
        The structures of one call.
    cutoff
        The model's pair cutoff in Å.
    per_atom, per_pair, overhead
        Bytes per atom, per neighbour pair (each pair once) and per call.
    per_triplet, triplet_cutoff
        Bytes per angle within ``triplet_cutoff`` Å, for models with three-body terms.
    max_atoms, max_structures
        How the model splits long lists into batches (None: all in one).
    what
        Label for messages.

    Returns
    -------
    MemoryEstimate
    """
    if not structures or max(per_atom, per_pair, overhead, per_triplet) <= 0:
        return MemoryEstimate(0.0, what=what, n_batches=0)
    sizes = [len(a) for a in structures]
    angles = triplet_cutoff if per_triplet > 0 else None
    if per_pair > 0 or angles:
        counts = [estimate_neighbours(a, cutoff, angles) for a in structures]
    else:
        counts = [(0.0, 0.0)] * len(structures)
    bounds = batch_bounds(sizes, max_atoms, max_structures)
    best: MemoryEstimate | None = None
    for start, stop in bounds:
        n_atoms = sum(sizes[start:stop])
        n_pairs = sum(c[0] for c in counts[start:stop])
        n_triplets = sum(c[1] for c in counts[start:stop])
        estimate = MemoryEstimate(
            overhead + per_atom * n_atoms + per_pair * n_pairs + per_triplet * n_triplets,
            n_atoms,
            n_pairs,
            n_triplets,
            stop - start,
            len(bounds),
            what,
        )
        if best is None or estimate.bytes > best.bytes:
            best = estimate
    assert best is not None
    return best


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
