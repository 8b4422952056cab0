"""Data generators of the benchmark, one module per step (see bench/generate.py)."""
