"""Shared test set-up.

Notebooks run in quick mode (``NNP_LAB_QUICK=1``) unless the caller set the variable. The
suite runs in a random order on every run (pytest-randomly; the seed is printed at the top,
``--randomly-seed=N`` repeats an order, ``-p no:randomly`` turns it
off), so no test may rely on another having run first.
"""

import os

os.environ.setdefault("NNP_LAB_QUICK", "1")
