"""Shared test set-up: quick mode for notebooks, a per-session cache of loaded models."""

import os

os.environ.setdefault("NNP_LAB_QUICK", "1")
