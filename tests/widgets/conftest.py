"""Fixtures for the Python-side widget tests (no browser, no kernel: comms are dummies)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("anywidget")

from ase import Atoms
from ase.build import fcc111, molecule

from nnp_lab.widgets import Viewer


@pytest.fixture
def ethanol() -> Atoms:
    return molecule("CH3CH2OH")


@pytest.fixture
def slab() -> Atoms:
    s = fcc111("Pt", size=(2, 2, 3), vacuum=5.0)
    s.set_tags(range(len(s)))
    return s


@pytest.fixture
def viewer(ethanol: Atoms) -> Iterator[Viewer]:
    v = Viewer(ethanol)
    yield v
    v.close()


class SentMessages:
    """Records the comm messages a widget sends (patched ``_send``)."""

    def __init__(self, widget: Any) -> None:
        self.messages: list[tuple[dict, list]] = []
        original = widget._send

        def record(msg: dict, buffers: list | None = None) -> None:
            self.messages.append((msg, list(buffers or [])))
            original(msg, buffers=buffers)

        widget._send = record

    @staticmethod
    def keys(msg: dict) -> set[str]:
        """Trait names in an update message (binary ones are moved to ``buffer_paths``)."""
        return set(msg.get("state", {})) | {p[0] for p in msg.get("buffer_paths", [])}

    def updates_with(self, key: str) -> list[dict]:
        return [m for m, _ in self.messages if m.get("method") == "update" and key in self.keys(m)]

    def custom(self) -> list[dict]:
        return [m["content"] for m, _ in self.messages if m.get("method") == "custom"]


@pytest.fixture
def sent() -> type[SentMessages]:
    return SentMessages
