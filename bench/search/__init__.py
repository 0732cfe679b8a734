"""Search benchmarks and experiments: `python -m bench.search.<name>` from the repository root."""
