"""Session fixtures shared by every test: real dependencies, started once.

- `stack`: the whole local stack (moto server, Redis, four services, local ALB), seeded with the
  sample catalogue, on ports offset by STACK_PORT_OFFSET; yields the ALB's URL.
- `moto_endpoint`: a moto server process over HTTP, exported as AWS_ENDPOINT_URL.
- `redis_url`: a real redis-server process on a free port.
- `tables`: fresh books/ratings tables (from infrastructure/definitions/tables.json) per test.
- `issuer`: a token issuer serving its JWKS over HTTP, for services' own tests (any `sub`, any group);
  the end-to-end tests use the stack's Cognito instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from scripts import definitions
from scripts.dev_issuer import TokenIssuer
from scripts.procs import (LOCAL_AWS_ENV, free_port, local_dynamodb, port_open, redis_command, running_moto, start,
                           stop, wait_until)


def pytest_configure(config: pytest.Config) -> None:
    # Tests never reach real AWS: fake credentials everywhere, endpoints always local.
    os.environ.update(LOCAL_AWS_ENV)


@pytest.fixture(scope="session")
def moto_endpoint() -> str:
    with running_moto() as moto:
        os.environ["AWS_ENDPOINT_URL"] = moto.endpoint
        yield moto.endpoint


@pytest.fixture(scope="session")
def dynamodb(moto_endpoint: str):
    return local_dynamodb(moto_endpoint)


@pytest.fixture
def tables(dynamodb, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Fresh, empty tables for one test; logical name -> table name, also exported as BOOKS_TABLE etc."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    names = definitions.create_tables(dynamodb, prefix)
    for variable, name in definitions.table_env(prefix).items():
        monkeypatch.setenv(variable, name)
    yield names
    definitions.delete_tables(dynamodb, prefix)


@pytest.fixture(scope="session")
def redis_url() -> str:
    port = free_port()
    command = redis_command(port)
    if command is None:
        pytest.skip("redis-server is not installed (make deps installs it from Debian's packages)")
    proc = start(command)
    wait_until(lambda: port_open(port), 15, "redis-server", proc)
    yield f"redis://127.0.0.1:{port}/0"
    stop(proc)


# The whole local stack, started once for the end-to-end tests and the load-test smoke run.
STACK_PORT_OFFSET = 200  # beside a developer's own `make up` on the default ports


@pytest.fixture(scope="session")
def stack_state_dir(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def stack(stack_state_dir) -> str:
    state_dir = stack_state_dir
    command = [sys.executable, "-m", "scripts.stack"]
    options = ["--state-dir", str(state_dir), "--port-offset", str(STACK_PORT_OFFSET)]
    # Limits off: the tests, the fuzzing and the load-test smoke all come from one address.
    result = subprocess.run([*command, "up", *options, "--seed", "sample"], cwd=definitions.ROOT,
                            capture_output=True, text=True, timeout=600, env={**os.environ, "RATE_LIMIT": "0"})
    if result.returncode != 0:
        logs = "".join(f"\n--- {p.name}\n{p.read_text()[-3000:]}" for p in (state_dir / "logs").glob("*.log"))
        pytest.fail(f"stack did not start:\n{result.stdout}\n{result.stderr}{logs}")
    yield f"http://127.0.0.1:{8080 + STACK_PORT_OFFSET}"
    subprocess.run([*command, "down", *options], cwd=definitions.ROOT, timeout=60)


@pytest.fixture(scope="session")
def stack_user(stack, stack_state_dir):
    """sign_in(username, admin=False) -> {"access_token", "sub", "username"} from the stack's Cognito."""
    from scripts.identity import issue_token

    env = json.loads((stack_state_dir / "env.json").read_text())

    def sign_in(username: str, admin: bool = False) -> dict[str, str]:
        return issue_token(env["AWS_ENDPOINT_URL"], env["COGNITO_USER_POOL_ID"], env["JWT_AUDIENCE"], username,
                           admin)

    return sign_in


@pytest.fixture(scope="session")
def issuer() -> TokenIssuer:
    token_issuer = TokenIssuer()
    yield token_issuer
    token_issuer.close()
