"""Shared test set-up.

Notebooks run in quick mode (``NNP_LAB_QUICK=1``) unless the caller set the variable. The
suite runs in a random order on every run (pytest-randomly; the seed is printed at the top,
``--randomly-seed=N`` repeats an order, ``-p no:randomly`` turns it
off), so no test may rely on another having run first.

Model calls run on 1 torch thread (``NNP_LAB_THREADS=1``) unless the caller set the variable:
the default ``"auto"`` policy picks the count from the machine's load at that moment, and a
sum over 2 threads can round differently in the last bit than over 1, so a test comparing
two runs exactly would depend on the load. ``tests/test_threads.py`` tests ``"auto"`` itself
with a fake machine (run the suite under it with ``NNP_LAB_THREADS=auto``).
"""

import os

os.environ.setdefault("NNP_LAB_QUICK", "1")
os.environ.setdefault("NNP_LAB_THREADS", "1")
