"""The screen's database: one ``ase.db`` row per input structure, keyed by a content hash.

The key hashes what determines a result — the structure (numbers, positions, cell, pbc), the
task with its options and the model (name and version) — so running the same screen again
finds the rows already written and does only the rest. Rows are written (and committed,
SQLite) one by one as results arrive: a crash loses at most the structures in flight.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

__all__ = ["content_key", "Store", "task_name"]

#: Positions and cells are rounded to this many decimals (Å) before hashing, so that the
#: same structure read back from a file hashes the same.
KEY_DECIMALS = 8


def content_key(atoms: Atoms, task: dict[str, Any], model: dict[str, Any]) -> str:
    """The row key of ``atoms`` under ``task`` with ``model``: a SHA-256 hex digest (40 chars)."""
    h = hashlib.sha256()
    h.update(np.asarray(atoms.numbers, dtype=np.int64).tobytes())
    h.update(np.round(np.asarray(atoms.positions, dtype=float), KEY_DECIMALS).tobytes())
    h.update(np.round(np.asarray(atoms.cell[:], dtype=float), KEY_DECIMALS).tobytes())
    h.update(np.asarray(atoms.pbc, dtype=bool).tobytes())
    h.update(json.dumps(task, sort_keys=True, default=str).encode())
    h.update(json.dumps(model, sort_keys=True, default=str).encode())
    return h.hexdigest()[:40]


class Store:
    """An ``ase.db`` (a SQLite file or any URL ase.db accepts) holding a screen's rows.

    Parameters
    ----------
    db
        Path or URL.
    """

    def __init__(self, db: str | os.PathLike) -> None:
        import ase.db

        self.name = str(db)
        if "://" not in self.name:
            Path(self.name).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self.db = ase.db.connect(self.name)

    def keys(self) -> dict[str, int]:
        """``{key: row id}`` of every row written so far."""
        return {row.key: row.id for row in self.db.select(include_data=False) if "key" in row}

    def write_done(
        self,
        key: str,
        atoms: Atoms,
        index: int,
        numbers: dict[str, Any],
        arrays: dict[str, Any],
        meta: dict[str, Any],
    ) -> int:
        """Commit a finished row: the final structure (with its single-point results), its
        scalar numbers as key-value pairs and its arrays as data."""
        pairs = {_column(k): _scalar(v) for k, v in numbers.items() if _scalar(v) is not None}
        return int(
            self.db.write(
                atoms,
                key=key,
                status="done",
                input_index=int(index),
                **meta,
                **pairs,
                data={k: np.asarray(v) for k, v in arrays.items()},
            )
        )

    def write_failed(self, key: str, atoms: Atoms, index: int, error: str, meta: dict) -> int:
        """Commit a failed row: the input structure and the error message."""
        a = atoms.copy()
        a.calc = None
        return int(
            self.db.write(
                a, key=key, status="failed", input_index=int(index), error=error[:2000], **meta
            )
        )

    def rows(self) -> Iterator[Any]:
        """Every row, in the order written."""
        yield from self.db.select()


def _column(name: str) -> str:
    """``name`` as an ase.db key: names ase.db reserves (``fmax``, ``energy``, element
    symbols ...) get a ``task_`` prefix."""
    from ase.db.core import reserved_keys

    return f"task_{name}" if name in reserved_keys else name


def task_name(column: str) -> str:
    """The task's own name of a stored column (the inverse of the ``task_`` prefix)."""
    from ase.db.core import reserved_keys

    bare = column[len("task_") :] if column.startswith("task_") else ""
    return bare if bare in reserved_keys else column


def _scalar(value: Any) -> Any:
    """A value ase.db can store as a key-value pair (bool, int, float, str), or None."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, str):
        return value
    return None
