"""Test set-up for nnp_lab.build: make the source tree importable when nnp_lab is not installed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("nnp_lab") is None:  # e.g. plain `pytest` without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
