"""Rate limiting for frames streamed to a widget: drop intermediate frames, never the last one.

A running relaxation or MD loop can produce frames far faster than a browser needs (or than a
comm channel should carry). :class:`FrameThrottle` delivers at most ``max_rate_hz`` frames per
second:

* **leading edge** — a frame submitted when the previous delivery is at least ``1/max_rate_hz``
  seconds old is delivered at once, in the caller's thread;
* **dropping** — frames submitted sooner replace the pending frame (optionally merged with it, so
  fields a newer frame leaves unset are kept from the one it replaces);
* **trailing edge** — the pending frame is delivered as soon as the interval has elapsed, by a
  small daemon worker thread, so the newest frame reaches the front end even if no further frame
  is submitted (a loop that ends, or stalls in a long computation). A busy Jupyter kernel cannot
  *receive* messages while a cell runs, but it can *send* them, also from other threads: ipykernel
  routes all IOPub traffic through its thread-safe IOPub thread;
* **flush** — :meth:`FrameThrottle.flush` delivers the pending frame immediately, ignoring the
  rate (use it for "this was the final frame").

Deliveries never run concurrently and never out of order: every delivery happens while holding
``lock`` (an :class:`threading.RLock` that the widget also takes around its own state syncs).

:class:`EventLog` is the other half for a live run: the engine thread records its events, and
each throttled update takes the batch recorded since the previous one.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from nnp_lab.errors import InputError

__all__ = ["EventLog", "FrameThrottle"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_IDLE_EXIT_S = 30.0  # the worker thread exits after this long without pending frames
_EPS = 1e-6  # clock slack (s) when comparing elapsed time with the interval


class FrameThrottle(Generic[T]):
    """Deliver at most ``max_rate_hz`` frames per second, always including the newest one.

    Parameters
    ----------
    deliver
        Called with a frame to send it. Runs in the submitting thread (leading edge, flush) or in
        the worker thread (trailing edge), always under ``lock``.
    max_rate_hz
        Maximum deliveries per second (``> 0``); ``math.inf`` disables throttling.
    merge
        ``merge(older, newer) -> frame`` combining a dropped pending frame with its replacement.
        Default: the newer frame replaces the older one.
    lock
        Re-entrant lock serialising deliveries with other users of the same sink.
    trailing
        Deliver pending frames from a worker thread when their interval has elapsed. With
        ``False`` a pending frame is only delivered by a later :meth:`submit` or :meth:`flush`.
    clock
        Monotonic clock in seconds (injectable for tests).
    """

    def __init__(
        self,
        deliver: Callable[[T], None],
        max_rate_hz: float = 10.0,
        *,
        merge: Callable[[T, T], T] | None = None,
        lock: threading.RLock | None = None,
        trailing: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._deliver = deliver
        self._merge = merge
        self._lock = lock if lock is not None else threading.RLock()
        self._cond = threading.Condition(threading.Lock())
        self._trailing = trailing
        self._clock = clock
        self._pending: T | None = None
        self._has_pending = False
        self._last = -math.inf
        self._thread: threading.Thread | None = None
        self._closed = False
        self._interval = 0.0
        self.max_rate_hz = max_rate_hz
        #: Number of frames delivered so far.
        self.delivered = 0
        #: Number of frames dropped (replaced by a newer frame before delivery).
        self.dropped = 0

    # ------------------------------------------------------------------ configuration
    @property
    def max_rate_hz(self) -> float:
        """Maximum deliveries per second."""
        return self._rate

    @max_rate_hz.setter
    def max_rate_hz(self, value: float) -> None:
        try:
            rate = float(value)
        except (TypeError, ValueError):
            raise InputError(
                f"max_rate_hz must be a positive number of frames per second, got {value!r}"
            ) from None
        if not rate > 0:
            raise InputError(
                f"max_rate_hz must be > 0 (frames per second), got {value!r}; "
                "use math.inf to send every frame"
            )
        with self._cond:
            self._rate = rate
            self._interval = 0.0 if math.isinf(rate) else 1.0 / rate
            self._cond.notify_all()

    @property
    def pending(self) -> bool:
        """Whether a frame is waiting to be delivered."""
        with self._cond:
            return self._has_pending

    # ------------------------------------------------------------------ public API
    def submit(self, frame: T) -> bool:
        """Offer a frame; deliver it now if the rate allows, else keep it as the pending frame.

        Returns
        -------
        bool
            ``True`` if the frame was delivered during this call.
        """
        with self._cond:
            if self._closed:
                raise RuntimeError("this FrameThrottle is closed")
            if self._has_pending:
                self.dropped += 1
                if self._merge is not None:
                    frame = self._merge(self._pending, frame)  # type: ignore[arg-type]
            now = self._clock()
            if now - self._last >= self._interval - _EPS:
                self._pending = None
                self._has_pending = False
                self._last = now
                send_now = True
            else:
                self._pending = frame
                self._has_pending = True
                send_now = False
                if self._trailing:
                    self._ensure_worker()
                    self._cond.notify_all()
        if send_now:
            with self._lock:
                self._do_deliver(frame)
        return send_now

    def flush(self) -> bool:
        """Deliver the pending frame now, regardless of the rate.

        Returns
        -------
        bool
            ``True`` if there was a pending frame.
        """
        with self._lock:
            with self._cond:
                if not self._has_pending:
                    return False
                frame = self._pending
                self._pending = None
                self._has_pending = False
                self._last = self._clock()
            self._do_deliver(frame)  # type: ignore[arg-type]
            return True

    def cancel(self) -> None:
        """Drop the pending frame without delivering it."""
        with self._cond:
            if self._has_pending:
                self.dropped += 1
            self._pending = None
            self._has_pending = False

    def close(self) -> None:
        """Drop the pending frame and stop the worker thread."""
        with self._cond:
            self._closed = True
            self._pending = None
            self._has_pending = False
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1.0)

    # ------------------------------------------------------------------ internals
    def _do_deliver(self, frame: T) -> None:
        self._deliver(frame)
        self.delivered += 1

    def _ensure_worker(self) -> None:
        # Called with self._cond held.
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="nnp_lab-frame-throttle", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                idle_since = self._clock()
                while not self._closed and not self._has_pending:
                    if self._clock() - idle_since > _IDLE_EXIT_S:
                        self._thread = None
                        return
                    self._cond.wait(timeout=_IDLE_EXIT_S)
                if self._closed:
                    self._thread = None
                    return
                wait = self._last + self._interval - self._clock()
                if wait > _EPS:
                    self._cond.wait(timeout=wait)
                    continue  # re-check: the frame may have been flushed or replaced
            with self._lock:
                with self._cond:
                    if not self._has_pending or self._closed:
                        continue
                    now = self._clock()
                    if now - self._last < self._interval - _EPS:
                        continue
                    frame = self._pending
                    self._pending = None
                    self._has_pending = False
                    self._last = now
                try:
                    self._do_deliver(frame)  # type: ignore[arg-type]
                except Exception:  # a failed send must not kill the worker
                    logger.exception("delivering a throttled frame failed")


class EventLog:
    """Events recorded by a producer thread, taken in batches by the UI (thread-safe).

    The engine thread only records (a lock and a list append); the UI takes everything
    recorded since its last batch when its throttled update runs.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[Any] = []
        self._due = False  # an update was asked for and has not taken its batch yet
        self._latest: Any = None
        self._first: tuple[Any, float] | None = None
        self._count = 0

    @property
    def count(self) -> int:
        """Number of events recorded so far."""
        return self._count

    def record(self, event: Any) -> bool:
        """Record ``event``; returns whether the UI must be asked for an update.

        ``False`` while an update is already due: it will take this event too.
        """
        with self._lock:
            self._pending.append(event)
            self._latest = event
            if self._first is None:
                self._first = (event, time.perf_counter())
            self._count += 1
            if self._due:
                return False
            self._due = True
            return True

    def take(self) -> tuple[list[Any], Any]:
        """The events recorded since the last call, and the newest event ever (or None)."""
        with self._lock:
            events, self._pending = self._pending, []
            self._due = False
            return events, self._latest

    def ends(self) -> tuple[Any, tuple[Any, float] | None]:
        """The newest event, and the first with the ``time.perf_counter()`` it arrived at."""
        with self._lock:
            return self._latest, self._first
