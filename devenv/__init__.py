"""Development environment: the local control plane and the real services tests use.

Nothing here ships in the wheel; it serves `make`, the tests, the benchmarks and the demo.
"""
