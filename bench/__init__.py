"""Benchmarks for the session store (run with ``python -m bench.run``; never timed tests)."""
