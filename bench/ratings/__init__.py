"""Rating write benchmarks: `python -m bench.ratings.<name>` from the repository root."""
