"""The CI smoke run needs the local stack: the session `stack` fixture when the suite provides one."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from loadtest import harness

FALLBACK_PORT_OFFSET = 300  # only when no session `stack` fixture is visible from here


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "loadtest: the Locust smoke run through the local stack (-m loadtest)")


@pytest.fixture(scope="session")
def smoke_target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """(ALB URL, state directory) of the session's stack; starts a stack of its own only if the suite has
    no `stack` fixture."""
    try:
        yield request.getfixturevalue("stack"), request.getfixturevalue("stack_state_dir")
        return
    except pytest.FixtureLookupError:
        pass
    state_dir = tmp_path_factory.mktemp("loadtest-stack")
    options = ["--state-dir", str(state_dir), "--port-offset", str(FALLBACK_PORT_OFFSET)]
    result = subprocess.run([sys.executable, "-m", "scripts.stack", "up", *options, "--seed", "sample"],
                            cwd=harness.ROOT, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "RATE_LIMIT": "0"})
    if result.returncode != 0:
        pytest.fail(f"stack did not start:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    try:
        yield f"http://127.0.0.1:{8080 + FALLBACK_PORT_OFFSET}", state_dir
    finally:
        subprocess.run([sys.executable, "-m", "scripts.stack", "down", *options], cwd=harness.ROOT, timeout=120)
