"""Benchmarks (not part of the test suite): ``python -m bench`` from the repository root; see README.md."""
