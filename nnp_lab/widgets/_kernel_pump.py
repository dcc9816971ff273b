"""Handling widget messages while the kernel's main thread is blocked by a running cell.

:meth:`nnp_lab.widgets.LiveRun.wait` blocks the cell that runs it; :class:`KernelPump` lets it
handle the button clicks and slider moves that arrive meanwhile (see the class docstring for
how, and :mod:`nnp_lab.widgets.live` for the whole picture).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
import threading
import time
import warnings
from typing import Any

__all__ = ["KernelPump", "wait_handling_widgets"]

logger = logging.getLogger(__name__)


class KernelPump:
    """Handle widget (comm) messages that arrive while the kernel's main thread is busy.

    A Jupyter kernel executes a cell on its main thread inside its asyncio event loop; shell
    messages (including the frontend's ``comm_msg`` for a button click) are read by that
    same loop, so none is handled until the cell returns. This pump is called from the
    blocked cell itself (on the thread that runs it) and drains the socket that feeds that
    thread:

    * ipykernel >= 7 (subshells): the shell-channel thread forwards messages for the main
      shell over an inproc ``PAIR`` socket whose receiving ``ZMQStream`` lives on the main
      thread (``shell_channel_thread.manager.get_shell_channel_to_subshell_pair(None)``;
      for a cell running in a subshell, that subshell's pair);
    * ipykernel 6 (and 7 without a shell-channel thread): ``kernel.shell_stream``.

    Each message's header is read without verifying/recording its signature digest; comm
    messages are then deserialized and passed to the kernel's registered handler
    (``kernel.shell_handlers[msg_type]``, i.e. the comm manager) with the message set as the
    kernel's parent and framed by busy/idle status messages, exactly as the kernel's
    ``dispatch_shell`` would (the browser's ipywidgets code needs the idle status of one
    state update before it sends the next); every other message is handed to the stream's
    own receive callback (what the event loop would have called), so it is queued behind the
    running cell in arrival order.

    Everything here touches kernel internals that differ between ipykernel versions, so
    :meth:`create` returns ``None`` (no pumping; clicks are handled after the cell) when the
    expected objects are missing, and a pump that fails disables itself with a warning.
    Tested with ipykernel 7.4 (subshell path).
    """

    COMM_TYPES = frozenset({"comm_open", "comm_msg", "comm_close"})

    def __init__(self, kernel: Any, stream: Any, reply_stream: Any, mechanism: str) -> None:
        self.kernel = kernel
        self.stream = stream
        self.reply_stream = reply_stream
        self.mechanism = mechanism
        self.loop = None
        try:
            self.loop = asyncio.get_event_loop()
        except RuntimeError:
            self.loop = None
        #: Comm messages handled / other messages handed back, for diagnostics and tests.
        self.n_comm = 0
        self.n_forwarded = 0
        self.broken = False

    @classmethod
    def create(cls) -> KernelPump | None:
        """A pump for the calling thread's kernel shell, or None outside a kernel."""
        try:
            ipython = sys.modules.get("IPython")
            if ipython is None:
                return None
            shell = ipython.get_ipython()
            kernel = getattr(shell, "kernel", None)
            if kernel is None or getattr(kernel, "session", None) is None:
                return None
            sct = getattr(kernel, "shell_channel_thread", None)
            if sct is not None:  # ipykernel >= 7 with subshell support
                manager = sct.manager
                subshell_id = None
                if threading.current_thread() is not threading.main_thread():
                    subshell_id = manager.subshell_id_from_thread_id(threading.get_ident())
                pair = manager.get_shell_channel_to_subshell_pair(subshell_id)
                stream = pair.to_stream
                reply = manager.get_subshell_to_shell_channel_socket(subshell_id)
                mechanism = "ipykernel>=7 inproc subshell socket" + (
                    f" (subshell {subshell_id})" if subshell_id else " (main shell)"
                )
            else:
                if threading.current_thread() is not threading.main_thread():
                    return None
                stream = getattr(kernel, "shell_stream", None)
                reply = stream
                mechanism = "shell stream (ipykernel 6 style)"
            if stream is None or getattr(stream, "_recv_callback", None) is None:
                return None
            if not hasattr(stream, "socket") or not hasattr(stream, "_run_callback"):
                return None
            return cls(kernel, stream, reply, mechanism)
        except Exception as exc:  # unknown kernel layout: no pumping
            logger.warning(
                "cannot process widget events while the cell runs (%s: %s); Stop/Pause "
                "clicks will act only after the cell ends — use the notebook's interrupt "
                "button to stop the run",
                type(exc).__name__,
                exc,
            )
            return None

    def poll(self, limit: int = 200) -> int:
        """Handle up to ``limit`` queued messages; returns how many were read."""
        if self.broken:
            return 0
        import zmq

        n = 0
        socket = self.stream.socket
        copy = bool(getattr(self.stream, "_recv_copy", False))
        try:
            while n < limit:
                try:
                    frames = socket.recv_multipart(zmq.NOBLOCK, copy=copy)
                except zmq.Again:
                    break
                n += 1
                self._handle(frames)
        except Exception as exc:
            self.broken = True
            warnings.warn(
                f"nnp_lab stopped processing widget events during the run ({type(exc).__name__}: "
                f"{exc}); controls act after the cell ends. Please report this with your "
                "ipykernel version.",
                RuntimeWarning,
                stacklevel=2,
            )
        return n

    def _handle(self, frames: list[Any]) -> None:
        session = self.kernel.session
        msg_type = None
        try:
            idents, parts = session.feed_identities(frames, copy=False)
            header = session.deserialize(parts, content=False, copy=False)["header"]
            msg_type = header.get("msg_type")
        except Exception:
            idents, parts = None, None
        if msg_type not in self.COMM_TYPES:
            self._forward(frames)
            return
        msg = session.deserialize(parts, content=True, copy=False)
        handler = self.kernel.shell_handlers.get(msg_type)
        if handler is None:
            return
        self.n_comm += 1
        kernel = self.kernel
        # As the kernel's dispatch_shell does: the message is the parent while its handler
        # runs, framed by busy/idle status messages. The browser relies on both: ipywidgets
        # sends a widget's next state update only after the idle status *of the previous
        # update* arrives, and matches echo_update replies by their parent's msg_id.
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
        saved_parent = kernel.get_parent("shell")
        saved_ident = kernel._parent_ident["shell"]
        kernel.set_parent(idents, msg, channel="shell")
        kernel._publish_status("busy", "shell")
        try:
            result = handler(self.reply_stream, idents, msg)
            if inspect.isawaitable(result):
                asyncio.ensure_future(result, loop=self.loop)
        except Exception:
            logger.exception("widget message handler failed (%s)", msg_type)
        finally:
            for stream in (sys.stdout, sys.stderr):
                if stream is not None:
                    stream.flush()
            kernel._publish_status("idle", "shell")
            kernel.set_parent(saved_ident, saved_parent, channel="shell")
            # The cell is still running: say so again (the frontend's kernel indicator).
            kernel._publish_status("busy", "shell")

    def _forward(self, frames: list[Any]) -> None:
        """Give a message back to the kernel's own dispatch (runs after the current cell)."""
        self.n_forwarded += 1
        self.stream._run_callback(self.stream._recv_callback, frames)


def wait_handling_widgets(
    done: threading.Event, lock: threading.RLock, *, interval_s: float, deadline: float | None
) -> bool:
    """Wait until ``done`` is set, handling widget messages every ``interval_s`` seconds.

    Outside a kernel (or with an unknown kernel layout) this only waits. Messages are
    handled while holding ``lock``.

    Parameters
    ----------
    done
        What to wait for.
    lock
        Held while the widget messages' handlers run (the caller's UI lock).
    interval_s
        Seconds between two rounds of message handling.
    deadline
        ``time.monotonic()`` value after which to give up, or ``None``.

    Returns
    -------
    bool
        ``True`` when ``done`` was set, ``False`` when the deadline passed first.
    """
    pump = KernelPump.create() if not done.is_set() else None
    while not done.wait(interval_s):
        if pump is not None:
            with lock:
                pump.poll()
        if deadline is not None and time.monotonic() > deadline:
            return False
    if pump is not None:
        logger.debug(
            "live run: handled %d widget messages during the run (%s), handed back %d",
            pump.n_comm,
            pump.mechanism,
            pump.n_forwarded,
        )
    return True
