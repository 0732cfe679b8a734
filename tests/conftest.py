"""The whole local stack, started once for the end-to-end tests and stopped after."""

from __future__ import annotations

import subprocess
import sys

import pytest

from scripts import definitions

PORT_OFFSET = 200  # beside a developer's own `make up` on the default ports


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> str:
    state_dir = tmp_path_factory.mktemp("stack")
    command = [sys.executable, "-m", "scripts.stack"]
    options = ["--state-dir", str(state_dir), "--port-offset", str(PORT_OFFSET)]
    result = subprocess.run([*command, "up", *options, "--seed", "sample"], cwd=definitions.ROOT,
                            capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        logs = "".join(f"\n--- {p.name}\n{p.read_text()[-3000:]}" for p in (state_dir / "logs").glob("*.log"))
        pytest.fail(f"stack did not start:\n{result.stdout}\n{result.stderr}{logs}")
    yield f"http://127.0.0.1:{8080 + PORT_OFFSET}"
    subprocess.run([*command, "down", *options], cwd=definitions.ROOT, timeout=60)
