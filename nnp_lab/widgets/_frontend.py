"""The viewer's browser side: where its ES module and stylesheet are, and PNG exports.

The front end (``widgets/viewer.js`` in the source tree, ``nnp_lab/widgets/static/viewer.js``
in a wheel) is found here; :class:`PngRequests` keeps track of the PNG images the viewer asked
the browser for, and completes each request's future when the browser's reply arrives.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

__all__ = ["PngRequests", "css_source", "esm_source"]

logger = logging.getLogger(__name__)

FALLBACK_ESM = """
export default {
  render({ el }) {
    el.textContent = "nnp_lab viewer: the front-end file viewer.js is missing from this " +
      "installation; reinstall nnp_lab (pip install --force-reinstall nnp_lab).";
  },
};
"""


def frontend_file(name: str) -> Path | None:
    """Locate a front-end file: inside the installed package, else in the source tree."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "static" / name, here.parent.parent / "widgets" / name):
        if candidate.is_file():
            return candidate
    return None


def esm_source() -> Path | str:
    path = frontend_file("viewer.js")
    if path is None:
        logger.warning("nnp_lab viewer front end (viewer.js) not found; the viewer will not draw")
        return FALLBACK_ESM
    return path


def css_source() -> Path | str:
    path = frontend_file("viewer.css")
    return path if path is not None else ""


class PngRequests:
    """PNG images asked of the browser and not answered yet, each with its future and file.

    Parameters
    ----------
    on_png
        Called with the bytes of every PNG received, before its file is written and its
        future completes.
    """

    def __init__(self, on_png: Callable[[bytes], None]) -> None:
        self._on_png = on_png
        self._pending: dict[str, tuple[Future[bytes], Path | None]] = {}

    def new(self, target: Path | None) -> tuple[str, Future[bytes]]:
        """Register a request; returns its id (for the browser) and the future of its bytes."""
        request_id = uuid.uuid4().hex
        future: Future[bytes] = Future()
        self._pending[request_id] = (future, target)
        return request_id, future

    def answer(self, content: Any, buffers: Sequence[Any]) -> None:
        """Handle a custom message from the browser.

        Messages other than PNG replies, and replies already answered (several views of one
        widget) or unknown, are ignored. A reply completes its request's future: with the
        bytes (written to the request's file first, if it has one), or with an exception when
        the browser could not export, sent no data or sent something that is not a PNG.
        """
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind not in ("png", "png_error"):
            return
        entry = self._pending.pop(str(content.get("id")), None)
        if entry is None:  # answered already (several views of one widget) or unknown
            return
        future, target = entry
        if kind == "png_error":
            future.set_exception(
                RuntimeError(f"the browser could not export a PNG: {content.get('error')}")
            )
            return
        if not buffers:
            future.set_exception(RuntimeError("the browser replied without PNG data"))
            return
        data = bytes(buffers[0])
        if not data.startswith(b"\x89PNG\r\n\x1a\n"):
            future.set_exception(RuntimeError("the browser's reply is not a PNG image"))
            return
        self._on_png(data)
        try:
            if target is not None:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        except OSError as exc:
            future.set_exception(exc)
            return
        future.set_result(data)
