"""Property-based fuzzing of every service's OpenAPI with schemathesis, against the running stack:
no 5xx, and every documented response matches its schema. Bounded examples per operation."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

from bookrec_local import definitions

pytestmark = pytest.mark.e2e
EXAMPLES = 15
# The emulator queues requests behind its table-walking GSI queries under fuzzing load: a slow answer
# is not a hang, so the timeout is generous; a 5xx or a schema violation still fails.


@pytest.mark.parametrize("service", list(definitions.services()))
def test_openapi_fuzzing_finds_no_server_errors(stack, stack_user, service, tmp_path):
    spec = definitions.services()[service]
    port = spec["port"] + urlparse(stack).port - 8080
    cli = Path(sys.executable).with_name("schemathesis")
    # Authenticated routes are fuzzed past their token check (as a plain user: admin refreshes rebuild the model).
    auth = ["-H", f"Authorization: Bearer {stack_user('fuzzer')['access_token']}"] if spec.get("auth") else []
    result = subprocess.run(
        [str(cli), "run", f"http://127.0.0.1:{port}/schema/openapi.json",
         "--checks", "not_a_server_error,response_schema_conformance",
         "--phases", "examples,coverage,fuzzing", "--max-examples", str(EXAMPLES),
         "--request-timeout", "30", "--seed", "7", "--no-color", *auth],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    summary = re.findall(r"(\d+) (?:generated|tested|cases|operations)[^\n]*", result.stdout)
    print(f"\n{service}: {summary}\n" + result.stdout[-1500:])
    assert result.returncode == 0, result.stdout[-6000:]
