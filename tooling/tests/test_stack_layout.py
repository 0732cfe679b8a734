"""The local stack's replicas, builders and artifact bucket, from services.json (no service started)."""

from __future__ import annotations

import sys
from itertools import product

import pytest

from bookrec_local import definitions
from bookrec_local.procs import local_s3
from bookrec_local.stack import ALB_PORT, BUILDER_EVERY_SECONDS, MOTO_PORT, REDIS_PORT, Stack, builder_command

SERVICES = definitions.services()
# The port offsets of the stacks the tests and experiments start beside a developer's own (0).
OFFSETS = (0, 200, 400, 500, 700)


def test_replica_i_listens_at_the_service_port_plus_ten_i():
    stack = Stack(port_offset=200)
    assert stack.replica_names("recommendation") == ["recommendation", "recommendation-2"]
    assert stack.service_ports("recommendation") == [8204, 8214]
    assert stack.service_urls("recommendation") == ["http://127.0.0.1:8204", "http://127.0.0.1:8214"]
    assert stack.service_url("recommendation") == "http://127.0.0.1:8204"  # the first: the one ratings calls
    assert stack.service_ports("search") == [8201] and stack.replica_names("search") == ["search"]


def test_no_port_of_one_stack_collides_with_another_stacks_or_its_own():
    seen: dict[int, str] = {}
    bases = [("alb", ALB_PORT), ("moto", MOTO_PORT), ("redis", REDIS_PORT),
             *((f"{s}[{i}]", p) for s in SERVICES for i, p in enumerate(definitions.replica_ports(s)))]
    for offset, (name, base) in product(OFFSETS, bases):
        port = base + offset
        assert port not in seen, f"{name} at offset {offset} takes {port}, already {seen[port]}'s"
        seen[port] = f"{name} at offset {offset}"
    # The experiments' extra replicas (search-2 at +10, request_budget's variants at +50 + n) stay clear too.
    services = {p for s in SERVICES for p in definitions.replica_ports(s)}
    assert SERVICES["search"]["port"] + 10 not in services
    assert not {p + 50 + n for p in (spec["port"] for spec in SERVICES.values()) for n in range(4)} & services


def test_search_and_recommendation_load_artifacts_from_the_stacks_bucket():
    stack = Stack(prefix="bookrec-x")
    for name, spec in SERVICES.items():
        env = stack.service_env(name, "redis://127.0.0.1:6379/0", {}, "bookrec-x-artifacts")
        assert env.get("ARTIFACT_BUCKET") == ("bookrec-x-artifacts" if spec.get("artifacts") else None)
        assert "ARTIFACT_BUCKET" not in stack.service_env(name, "", {})  # no bucket: they build their own
    # The ratings service calls one replica of the recommender directly, not through the ALB.
    ratings = stack.service_env("ratings", "redis://127.0.0.1:6379/0", {})
    assert ratings["RECOMMENDATION_URL"] == stack.service_urls("recommendation")[0]


@pytest.mark.parametrize("service", ["search", "recommendation"])
def test_a_builder_runs_its_module_in_a_loop_with_the_lease_the_bucket_and_the_tables(service):
    assert service in definitions.builders()
    builder = SERVICES[service]["builder"]
    command = builder_command(service)
    every = str(BUILDER_EVERY_SECONDS[service])
    assert command == [sys.executable, "-m", builder["module"], "--every", every]
    env = Stack(prefix="bookrec-x").builder_env(service, "redis://127.0.0.1:6379/0", "bookrec-x-artifacts")
    assert env["ARTIFACT_BUCKET"] == "bookrec-x-artifacts" and env["REDIS_URL"] == "redis://127.0.0.1:6379/0"
    assert env["BOOKS_TABLE"] == "bookrec-x-books" and env["RATINGS_TABLE"] == "bookrec-x-ratings"
    assert env["AWS_ENDPOINT_URL"] == Stack().aws_endpoint and "PORT" not in env
    for variable, value in builder.get("environment", {}).items():
        assert env[variable] == value


def test_stopping_a_service_stops_every_replica_of_it_and_nothing_else(tmp_path):
    stack = Stack(tmp_path / "state")
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    for name in ("recommendation", "recommendation-2", "recommendation-builder", "search"):
        stack.launch(name, sleeper)
    try:
        assert set(stack.pids()) == {"recommendation", "recommendation-2", "recommendation-builder", "search"}
        assert stack.stop("recommendation") == 2
        assert set(stack.pids()) == {"recommendation-builder", "search"}
        assert stack.stop("recommendation-builder") == 1 and set(stack.pids()) == {"search"}
    finally:
        stack.stop()
    assert stack.pids() == {}


def test_every_replica_of_a_service_writes_to_the_services_log(tmp_path):
    """As every task of a service logs to its one log group: logs/recommendation.log has both replicas'."""
    stack = Stack(tmp_path / "state")
    for i, name in enumerate(stack.replica_names("recommendation")):
        proc = stack.launch(name, [sys.executable, "-c", f"print('replica {i}')"], log="recommendation")
        proc.wait(10)
    stack.stop()
    assert (stack.logs_dir / "recommendation.log").read_text().split() == ["replica", "0", "replica", "1"]
    assert sorted(p.name for p in stack.logs_dir.iterdir()) == ["recommendation.log"]


def test_the_artifact_bucket_is_versioned_and_named_after_the_prefix(moto_endpoint, tmp_path):
    stack = Stack(tmp_path / "state", prefix="bookrec-bucket-test")
    name = stack.create_artifact_bucket(moto_endpoint)
    assert name == definitions.artifact_bucket_name("bookrec-bucket-test") == "bookrec-bucket-test-artifacts"
    assert stack.create_artifact_bucket(moto_endpoint) == name  # again: the same bucket, no error
    s3 = local_s3(moto_endpoint)
    assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
