"""Inline messages of the builder panels and the Lab: escaped HTML lines in red, grey or green."""

from __future__ import annotations

import html
import logging

from nnp_lab.errors import InputError

__all__ = ["describe_error", "error_html", "fmt2", "info_html", "ok_html"]

logger = logging.getLogger(__name__)

RED = "#c62828"
GREY = "#555555"
GREEN = "#2e7d32"


def _html_line(text: str, color: str, *, icon: str = "") -> str:
    """One line of escaped text in ``color`` (an HTML widget value)."""
    if not text:
        return ""
    return (
        f'<div style="color:{color}; white-space:pre-wrap; line-height:1.35">'
        f"{icon}{html.escape(text)}</div>"
    )


def fmt2(x: float) -> str:
    """Two decimals without a negative zero."""
    return f"{round(float(x), 2) + 0.0:.2f}"


def error_html(message: str) -> str:
    """HTML for an inline error message (red)."""
    return _html_line(message, RED, icon="&#10006; ")


def info_html(message: str) -> str:
    """HTML for an inline status message (grey)."""
    return _html_line(message, GREY)


def ok_html(message: str) -> str:
    """HTML for an inline success message (green)."""
    return _html_line(message, GREEN, icon="&#10004; ")


def describe_error(exc: BaseException, context: str = "") -> str:
    """A one-paragraph, user-facing description of ``exc``.

    Input errors from the builders already say what was wrong and how to fix it; other
    exceptions are unexpected and are shown with their type (and logged with a traceback).
    """
    prefix = f"{context}: " if context else ""
    if isinstance(exc, (InputError, ValueError)):
        return f"{prefix}{exc}"
    logger.warning("unexpected error in a builder panel (%s)", context or "build", exc_info=exc)
    return (
        f"{prefix}unexpected {type(exc).__name__}: {exc}. Check the inputs; if they look right, "
        "this is a bug in nnp_lab (the traceback is in the log)."
    )
