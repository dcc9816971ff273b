"""Timing, statistics and memory helpers shared by the benchmark scripts (one copy of each).

Every benchmark in ``bench/`` measures the same way: run the work once or more untimed
(warm-up: first-call allocations, lazy imports, graph caches), then time ``repeats`` calls with
:func:`time.perf_counter` and report the **median** with the **min–max spread**
(:class:`Stats`). :func:`time_repeats` also respects a time budget, so a case that turns out
to be slow stops repeating instead of holding up the whole run.

Memory is the process's peak resident set size (:func:`peak_rss_mb`, from
``resource.getrusage``), so a case must run in its own process to get its own peak.
"""

from __future__ import annotations

import math
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "Stats",
    "Timing",
    "time_calls",
    "time_repeats",
    "peak_rss_mb",
    "current_rss_mb",
    "fmt_seconds",
]


@dataclass(frozen=True)
class Stats:
    """Median and min–max spread of repeated measurements (seconds unless stated).

    Attributes
    ----------
    median, min, max
        Of ``samples``.
    n
        Number of samples.
    samples
        The measurements, in the order taken.
    """

    median: float
    min: float
    max: float
    n: int
    samples: tuple[float, ...] = ()

    @classmethod
    def of(cls, samples: Sequence[float]) -> Stats:
        """Statistics of ``samples`` (at least one value)."""
        values = [float(s) for s in samples]
        if not values:
            raise ValueError("Stats.of needs at least one sample")
        return cls(statistics.median(values), min(values), max(values), len(values), tuple(values))

    def scaled(self, factor: float) -> Stats:
        """The same statistics multiplied by ``factor`` (e.g. seconds → ms per atom)."""
        return Stats.of([s * factor for s in self.samples])

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly dict (``samples`` as a list)."""
        out = asdict(self)
        out["samples"] = list(self.samples)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Stats:
        """Inverse of :meth:`to_dict`."""
        return cls.of(data["samples"])

    def ratio_to(self, other: Stats) -> tuple[float, float, float]:
        """``other / self`` as (median ratio, lowest, highest) — a speed-up when ``self`` is ours.

        The spread pairs the extremes: lowest = ``other.min / self.max``, highest =
        ``other.max / self.min``.
        """
        return (
            other.median / self.median,
            other.min / self.max,
            other.max / self.min,
        )


@dataclass
class Timing:
    """What :func:`time_repeats` measured.

    Attributes
    ----------
    samples
        Timed repeats in seconds (may be fewer than asked when the budget ran out).
    warmup
        Untimed warm-up calls, each still clocked, in seconds.
    requested
        Repeats asked for.
    budget_limited
        True when repeats were cut short (or not started) because of the budget.
    """

    samples: list[float] = field(default_factory=list)
    warmup: list[float] = field(default_factory=list)
    requested: int = 0
    budget_limited: bool = False

    @property
    def stats(self) -> Stats | None:
        """:class:`Stats` of the samples, or None when none was taken."""
        return Stats.of(self.samples) if self.samples else None


def time_repeats(
    fn: Callable[[], Any],
    *,
    repeats: int,
    warmup: int = 1,
    budget_s: float | None = None,
    started: float | None = None,
    on_sample: Callable[[Timing], None] | None = None,
) -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then up to ``repeats`` times timed.

    Parameters
    ----------
    fn
        The work to time (one call = one sample).
    repeats
        Timed calls wanted.
    warmup
        Calls made first and excluded from the statistics (their times are kept in
        :attr:`Timing.warmup`).
    budget_s
        Wall-time budget in seconds counted from ``started`` (default: now). A timed call is
        only started when the slowest call so far would still finish inside the budget; at
        least one timed call is made unless the warm-up alone used the budget up.
    started
        ``time.perf_counter()`` value the budget counts from (e.g. the process start, so
        model loading counts too).
    on_sample
        Called with the :class:`Timing` so far after every call (e.g. to save partial results).

    Returns
    -------
    Timing
    """
    t0 = time.perf_counter() if started is None else started
    out = Timing(requested=int(repeats))

    def fits() -> bool:
        if budget_s is None:
            return True
        longest = max(out.warmup + out.samples, default=0.0)
        return (time.perf_counter() - t0) + longest <= budget_s

    for _ in range(int(warmup)):
        t = time.perf_counter()
        fn()
        out.warmup.append(time.perf_counter() - t)
        if on_sample:
            on_sample(out)
    for _ in range(int(repeats)):
        if not fits():
            out.budget_limited = True
            break
        t = time.perf_counter()
        fn()
        out.samples.append(time.perf_counter() - t)
        if on_sample:
            on_sample(out)
    return out


def time_calls(fn: Callable[[], Any], repeats: int, *, warmup: int = 1) -> list[float]:
    """Seconds per call of ``fn`` for ``repeats`` timed calls after ``warmup`` untimed ones."""
    return time_repeats(fn, repeats=repeats, warmup=warmup).samples


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (10^6 bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6


def current_rss_mb() -> float:
    """Current resident set size in MB (Linux ``/proc``; the peak elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * resource.getpagesize() / 1e6
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()


def fmt_seconds(seconds: float | None) -> str:
    """Human-friendly duration: ``812 ms``, ``3.41 s``, ``2 min 05 s``."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    if seconds < 1:
        return f"{seconds * 1e3:.0f} ms" if seconds >= 0.01 else f"{seconds * 1e3:.2f} ms"
    if seconds < 100:
        return f"{seconds:.2f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    return f"{minutes} min {sec:02d} s"
