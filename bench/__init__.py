"""Benchmarks: ``python -m bench [serving|...]`` (see `bench.__main__`)."""
