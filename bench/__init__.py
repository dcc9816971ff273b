"""Benchmarks of nnp_lab (scripts; ``bench/run.py`` is the harness). A package so that
``bench.timing`` and friends import reliably, even when some other ``bench`` module is on the
path."""
