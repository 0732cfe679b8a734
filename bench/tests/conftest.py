from __future__ import annotations

import pytest

from bench.tests.makes import FLEET, make


@pytest.fixture(scope="session")
def bench_fleet_output() -> str:
    """make bench-fleet runs both services' halves and the cost table: once for every test that reads it."""
    return make("bench-fleet", *FLEET)
