"""Recommendation benchmarks and the offline quality evaluation: `python -m bench.recommendation.<name>` from
the repository root."""
