"""Session fixtures shared by every test: real dependencies, started once.

- `local_stack`: the whole local stack (emulator, Redis, four services, local ALB) as a
  `bookrec_local.stack.Stack`, seeded with the sample catalogue, on ports offset by STACK_PORT_OFFSET;
  `stack` is its ALB's URL.
- `moto_endpoint`: a moto server process over HTTP, exported as AWS_ENDPOINT_URL.
- `redis_url`: a real redis-server process on a free port.
- `tables`: fresh books/ratings tables (from infrastructure/definitions/tables.json) per test.
- `artifact_bucket`: a fresh versioned S3 bucket on the emulator per test.
- `issuer`: a token issuer serving its JWKS over HTTP, for services' own tests (any `sub`, any group);
  the end-to-end tests use the stack's Cognito instead.
- `failing_redis`: redis-servers of one test's own, each put on demand in a failure state
  (`bookrec_local.redis_faults`: read-only replica, out of memory, loading, busy script, ...).
"""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from bookrec_local import definitions
from bookrec_local.dev_issuer import TokenIssuer
from bookrec_local.procs import (
    LOCAL_AWS_ENV,
    free_port,
    local_dynamodb,
    port_open,
    redis_command,
    running_moto,
    start,
    stop,
    wait_until,
)
from bookrec_local.redis_faults import FailingRedis
from bookrec_local.stack import Stack


def pytest_configure(config: pytest.Config) -> None:
    # Tests never reach real AWS: fake credentials everywhere, endpoints always local.
    os.environ.update(LOCAL_AWS_ENV)


STACK_FIXTURES = {"start_stack", "local_stack", "stack", "stack_user"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The lanes stay honest: whatever needs the whole stack is marked e2e, so `make test-fast` never starts it.
    unmarked = [item.nodeid for item in items
                if STACK_FIXTURES & set(getattr(item, "fixturenames", ())) and not item.get_closest_marker("e2e")]
    if unmarked:
        raise pytest.UsageError(f"tests using the local stack must be marked e2e: {', '.join(unmarked)}")


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


@pytest.fixture
def artifact_bucket(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, versioned artifact bucket on the emulator for one test, also exported as ARTIFACT_BUCKET."""
    import boto3

    name = f"artifacts-{uuid.uuid4().hex[:10]}"
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    monkeypatch.setenv("ARTIFACT_BUCKET", name)
    return name


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
# Beside a developer's own `make up` on the default ports; BOOKREC_STACK_PORT_OFFSET moves it so that two
# suites can run side by side on one machine.
STACK_PORT_OFFSET = int(os.environ.get("BOOKREC_STACK_PORT_OFFSET", "200"))


@pytest.fixture(scope="session")
def start_stack():
    """start(stack) -> the stack, up; one that does not start fails the test with its processes' logs."""

    def start(stack: Stack) -> Stack:
        try:
            stack.up()
        except (RuntimeError, TimeoutError, SystemExit, subprocess.CalledProcessError) as error:
            logs = "".join(f"\n--- {p.name}\n{p.read_text()[-3000:]}" for p in stack.logs_dir.glob("*.log"))
            pytest.fail(f"stack did not start: {error}{logs}")
        return stack

    return start


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory, start_stack) -> Stack:
    # Limits off: the tests, the fuzzing and the load-test smoke all come from one address.
    stack = start_stack(Stack(tmp_path_factory.mktemp("stack"), STACK_PORT_OFFSET, seed="sample", rate_limit="0"))
    yield stack
    stack.down()


@pytest.fixture(scope="session")
def stack(local_stack: Stack) -> str:
    """The local stack's ALB URL."""
    return local_stack.alb_url


@pytest.fixture(scope="session")
def stack_user(local_stack: Stack):
    """sign_in(username, admin=False) -> {"access_token", "sub", "username"} from the stack's Cognito."""
    return local_stack.sign_in


@pytest.fixture(scope="session")
def issuer() -> TokenIssuer:
    token_issuer = TokenIssuer()
    yield token_issuer
    token_issuer.close()


@pytest.fixture
def failing_redis(tmp_path):
    """failing_redis(state, password="", port=None) -> a FailingRedis of this test's own, started healthy
    (its `fail()` breaks it, `heal()` mends it); every one is stopped after the test."""
    servers: list[FailingRedis] = []

    def make(state: str, password: str = "", port: int | None = None) -> FailingRedis:
        if redis_command(0) is None:
            pytest.skip("redis-server is not installed (make deps installs it from Debian's packages)")
        server = FailingRedis(state, tmp_path / f"redis-{len(servers)}", port=port, password=password)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()
