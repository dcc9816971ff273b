"""The memory this process may still use: cgroup, ``RLIMIT_AS``, ``MemAvailable``, CUDA.

Part of :mod:`nnp_lab.potentials.memory` (which re-exports the public names). Each source is
optional: a missing or unreadable file is ignored.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "MemoryLimit",
    "memory_limits",
    "available_memory",
    "available_memory_bytes",
    "forget_cgroup_discovery",
]

_CGROUP_ROOT = "/sys/fs/cgroup"
_PROC_SELF = "/proc/self"
_MEMINFO = "/proc/meminfo"
# A cgroup v1 limit this large means "no limit" (the kernel reports PAGE_COUNTER_MAX pages).
_NO_LIMIT = 2**60
_GB = 1e9


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


#: Names of the limit, usage and stat files and the reclaimable key in ``stat`` of cgroup v2 and v1.
_V2_FILES = ("memory.max", "memory.current", "memory.stat", "inactive_file")
_V1_FILES = (
    "memory.limit_in_bytes",
    "memory.usage_in_bytes",
    "memory.stat",
    "total_inactive_file",
)


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
            found += _limited_levels(v2_root, v2_path, _V2_FILES)
            break
    # cgroup v1: the memory controller's own hierarchy.
    v1_root = cgroup_root / "memory"
    if (v1_root / "memory.limit_in_bytes").is_file():
        found += _limited_levels(v1_root, v1_path, _V1_FILES)
    return found


def _limited_levels(
    root: Path, relative: str | None, names: tuple[str, str, str, str]
) -> list[_CgroupFiles]:
    """The levels from the process's cgroup up to ``root`` whose limit file holds a finite
    limit; ``names`` is :data:`_V2_FILES` or :data:`_V1_FILES`."""
    limit_name, usage_name, stat_name, reclaimable = names
    found = []
    for d in _cgroup_dirs(root, relative or ""):
        limit = _read_int(d / limit_name)
        if limit is not None and limit < _NO_LIMIT:
            found.append(
                _CgroupFiles(
                    str(d / limit_name), str(d / usage_name), str(d / stat_name), reclaimable
                )
            )
    return found


#: Seconds a discovery of the cgroup levels with a limit is reused: limits are read on
#: every check, but which levels have one is looked up again only this often.
_DISCOVERY_TTL_S = 30.0
_discovered: dict[tuple[str, str], tuple[float, list[_CgroupFiles]]] = {}


def forget_cgroup_discovery() -> None:
    """Look the cgroup levels with a limit up afresh on the next check (after a change)."""
    _discovered.clear()


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
