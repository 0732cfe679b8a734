"""Benchmarks and offline experiments: run from the repository root as `python -m bench.<area>.<name>` (the make
targets do). They import the services, the tooling and the ETL; nothing imports them."""
