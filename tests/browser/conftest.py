"""Real-browser fixtures: JupyterLab on 127.0.0.1 + headless Chromium (SwiftShader WebGL).

Nothing is installed here. The tests skip, with the reason, only when ``/usr/bin/chromium`` or
the ``playwright`` Python package is missing (``make test`` installs both).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lab_harness  # noqa: E402


@pytest.fixture(scope="module")
def browser_requirements() -> None:
    reason = lab_harness.missing_requirements()
    if reason is not None:
        pytest.skip(f"real-browser test skipped: {reason}")


@pytest.fixture(scope="module")
def lab(browser_requirements: None) -> Iterator[lab_harness.LabServer]:
    server = lab_harness.LabServer()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
def browser_logs() -> dict[str, list[str]]:
    return {"console": [], "page_errors": []}


@pytest.fixture(scope="module")
def page(lab: lab_harness.LabServer, browser_logs: dict[str, list[str]]) -> Iterator[Any]:
    with lab_harness.chromium_page(browser_logs["console"], browser_logs["page_errors"]) as p:
        yield p


@pytest.fixture(scope="session")
def artifacts() -> Path:
    return lab_harness.artifacts_dir()
