"""Drive a real JupyterLab in headless Chromium: start a server, open and run notebooks.

Shared by the browser tests (tests/browser/) and bench/viewer_fps.py. Installs nothing: it
needs Debian's ``/usr/bin/chromium`` and the ``playwright`` Python package (never
``playwright install``; Playwright drives the system Chromium through ``executable_path``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("NNP_LAB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
VIEWPORT = {"width": 1280, "height": 1000}


def missing_requirements() -> str | None:
    """Why a browser test cannot run here, or ``None`` if it can."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found (Debian: apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install playwright; never run `playwright install`)"
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        return "jupyterlab is not installed"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_notebook(path: Path, cells: Sequence[str]) -> Path:
    """Write a minimal nbformat-4 notebook with the given code cells."""
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": f"cell{i}",
                "metadata": {},
                "outputs": [],
                "source": src,
            }
            for i, src in enumerate(cells)
        ],
        "metadata": {
            "kernelspec": {
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
                "name": "python3",
            },
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb, indent=1))
    return path


class LabServer:
    """A JupyterLab server on 127.0.0.1 with a random port, a temporary root and a known token.

    By default server and kernel run ``sys.executable`` with the repository on ``PYTHONPATH``,
    so nnp_lab is importable whether or not it is installed. With ``python=`` (the interpreter
    of another environment, e.g. the Binder check's venv) they run that interpreter with its
    ``bin/`` first on ``PATH`` and nothing added to ``PYTHONPATH``: nnp_lab must then come from
    that environment's own install.
    """

    def __init__(
        self,
        root: Path | None = None,
        *,
        log_path: Path | None = None,
        python: str | os.PathLike[str] | None = None,
    ) -> None:
        self.python = str(python) if python is not None else sys.executable
        self.isolated = python is not None
        self._tmp = tempfile.TemporaryDirectory(prefix="nnp_lab_lab_")
        base = Path(self._tmp.name)
        self.root = root if root is not None else base / "root"
        self.root.mkdir(parents=True, exist_ok=True)
        self.base = base
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.log_path = log_path if log_path is not None else base / "jupyterlab.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?token={self.token}"

    def _settings(self) -> Path:
        settings = self.base / "user-settings"
        entries = {
            "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
                "fetchNews": "false",
                "checkForUpdates": False,
            },
            "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        }
        for rel, value in entries.items():
            p = settings / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(json.dumps(value))
        return settings

    def start(self, timeout: float = 90.0) -> LabServer:
        env = dict(os.environ)
        if self.isolated:
            env.pop("PYTHONPATH", None)
            env.pop("VIRTUAL_ENV", None)
            env["PATH"] = os.pathsep.join([str(Path(self.python).parent), env.get("PATH", "")])
        else:
            env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
        env["JUPYTER_CONFIG_DIR"] = str(self.base / "config")
        env["JUPYTER_RUNTIME_DIR"] = str(self.base / "runtime")
        env["IPYTHONDIR"] = str(self.base / "ipython")
        env["JUPYTER_PLATFORM_DIRS"] = "1"
        env.setdefault("NNP_LAB_QUICK", "1")
        cmd = [
            self.python,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.open_browser=False",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--ServerApp.terminals_enabled=False",
            "--LabApp.extension_manager=readonly",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            f"--LabApp.user_settings_dir={self._settings()}",
            f"--LabApp.workspaces_dir={self.base / 'workspaces'}",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._log = log
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        status = f"{self.url}/api/status?token={self.token}"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"JupyterLab exited early; log:\n{self.log_path.read_text()[-3000:]}"
                )
            try:
                with urllib.request.urlopen(status, timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.25)
        self.stop()
        raise TimeoutError(f"JupyterLab did not answer within {timeout} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.proc = None
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None

    def cleanup(self) -> None:
        self.stop()
        self._tmp.cleanup()

    def __enter__(self) -> LabServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


@contextlib.contextmanager
def chromium_page(
    console: list[str] | None = None, page_errors: list[str] | None = None
) -> Iterator[Any]:
    """A Playwright page in headless system Chromium with software WebGL (SwiftShader)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
            page = context.new_page()
            if console is not None:
                page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            if page_errors is not None:
                page.on(
                    "pageerror", lambda e: page_errors.append(f"{e}\n{getattr(e, 'stack', '')}")
                )
            yield page
        finally:
            browser.close()


class NotebookPage:
    """Run cells of an open notebook and read their state from the DOM."""

    def __init__(self, page: Any) -> None:
        self.page = page

    def open(self, url: str, timeout_ms: float = 120_000) -> None:
        self.page.goto(url, wait_until="domcontentloaded", timeout=timeout_ms)
        self.page.locator(".jp-Notebook .jp-Cell").first.wait_for(
            state="visible", timeout=timeout_ms
        )
        # Wait until the kernel is connected: the status bar reads "<kernel> | Idle".
        self.page.wait_for_function(
            """() => Array.from(document.querySelectorAll('.jp-StatusBar-TextItem'))
                      .some((e) => /\\| *Idle/.test(e.textContent))""",
            timeout=timeout_ms,
        )

    def cell(self, i: int) -> Any:
        return self.page.locator(".jp-Notebook .jp-Cell").nth(i)

    def run_cell(self, i: int, *, retry_s: float = 0.0) -> None:
        """Select cell i and run it (Shift+Enter), returning as soon as it is queued.

        With ``retry_s`` > 0, press again if the cell has not started within that time (a
        just-connected kernel can drop the very first request; use only for idempotent cells).
        """
        before = self.prompt(i)
        for _attempt in range(3):
            editor = self.cell(i).locator(".jp-InputArea-editor")
            editor.click()
            self.page.keyboard.press("Shift+Enter")
            if retry_s <= 0:
                return
            deadline = time.monotonic() + retry_s
            while time.monotonic() < deadline:
                if self.prompt(i) != before:
                    return
                time.sleep(0.1)

    def prompt(self, i: int) -> str:
        return self.cell(i).locator(".jp-InputPrompt").first.inner_text().strip()

    def is_running(self, i: int) -> bool:
        return "*" in self.prompt(i)

    def output_text(self, i: int) -> str:
        out = self.cell(i).locator(".jp-OutputArea")
        return out.inner_text() if out.count() else ""

    def wait_output(self, i: int, text: str, timeout_s: float = 60.0) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            out = self.output_text(i)
            if text in out:
                return out
            if "Traceback" in out:
                raise AssertionError(f"cell {i} failed:\n{out}")
            time.sleep(0.2)
        raise TimeoutError(
            f"cell {i} did not print {text!r} within {timeout_s} s; output:\n{self.output_text(i)}"
        )

    def wait_done(self, i: int, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            p = self.prompt(i)
            if p and "*" not in p and p != "[ ]:":
                return
            time.sleep(0.2)
        raise TimeoutError(f"cell {i} still running after {timeout_s} s")

    def viewer_root(self, i: int, k: int = 0) -> Any:
        """The k-th viewer root element (``.nnpv-root``) in the output of cell i."""
        return self.cell(i).locator(".nnpv-root").nth(k)

    def viewer_data(self, root: Any, key: str) -> str | None:
        return root.get_attribute(f"data-{key}")


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    """Poll ``predicate`` every 0.1 s; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def assert_no_console_errors(
    browser_logs: dict[str, list[str]], ours: str, *, gl_warnings: bool = False
) -> None:
    """No console error matching the regex ``ours`` (case-insensitive), no page error, and
    with ``gl_warnings`` no WebGL ``GL_INVALID`` warning, in what the page logged so far."""
    pattern = re.compile(ours, re.I)
    errors = [m for m in browser_logs["console"] if m.startswith("error") and pattern.search(m)]
    assert not errors, "\n".join(errors)
    assert not browser_logs["page_errors"], "\n".join(browser_logs["page_errors"])
    if gl_warnings:
        invalid = [m for m in browser_logs["console"] if "GL_INVALID" in m]
        assert not invalid, "\n".join(invalid[:5])


def count_foreground(
    png: bytes, background: tuple[int, int, int] = (255, 255, 255), tol: int = 12
) -> tuple[int, int]:
    """(pixels differing from ``background`` by more than ``tol`` in any channel, total pixels)."""
    from PIL import Image
    import numpy as np

    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    diff = np.abs(img - np.array(background)).max(axis=2)
    return int((diff > tol).sum()), int(diff.size)


def artifacts_dir() -> Path:
    d = REPO / "test-artifacts"
    d.mkdir(exist_ok=True)
    return d
