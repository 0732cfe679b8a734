"""Every way Redis fails, through the local ALB, on a stack of this module's own: each test puts a
redis-server of its own, on the stack's Redis port, in one failure state (`bookrec_local.redis_faults`)
and checks what clients see (search, a rating write, a recommendation read: 200; an invalidation:
`unavailable`), what each service counts, and that both builders get no lease and exit 0.

The stack sits 50 ports above BOOKREC_STACK_PORT_OFFSET (default 200), beside the session's stack."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bookrec_catalog.catalog import utc_now, with_derived_attributes
from bookrec_catalog.changes import change_stamp
from bookrec_catalog.dynamo import to_item
from bookrec_local.procs import local_dynamodb, port_open, wait_until
from bookrec_local.redis_faults import STATES
from bookrec_local.stack import Stack

pytestmark = pytest.mark.e2e
OFFSET = int(os.environ.get("BOOKREC_STACK_PORT_OFFSET", "200")) + 50
BUILDERS = ("recommendation", "search")


@pytest.fixture(scope="module")
def redis_less(tmp_path_factory, start_stack) -> Stack:
    """A stack with limits on (each service's default) whose own Redis is stopped once it is up: each test
    brings one of its own on that port."""
    stack = start_stack(Stack(tmp_path_factory.mktemp("redis-failures"), OFFSET, seed="none"))
    client = local_dynamodb(stack.aws_endpoint)
    for i in range(1, 13):
        client.put_item(TableName=stack.env["BOOKS_TABLE"], Item=to_item(with_derived_attributes(
            {"book_id": f"GB{i}", "title": f"Failover book {i}", **change_stamp(f"GB{i}", utc_now())})))
    port = redis_port(stack)
    os.killpg(stack.pids()["redis"], signal.SIGKILL)
    wait_until(lambda: not port_open(port), 10, "the stack's Redis gone")
    yield stack
    stack.down()


def redis_port(stack: Stack) -> int:
    return int(stack.env["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])


def sample(urls: list[str], name: str, **labels: str) -> float:
    """A counter's value summed over the replicas at `urls` (0 where it has not been counted yet)."""
    total = 0.0
    for url in urls:
        for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=10).text):
            total += sum(s.value for s in family.samples
                         if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))
    return total


def counters(stack: Stack) -> dict[str, float]:
    search, ratings = stack.service_urls("search"), stack.service_urls("ratings")
    recommendation = stack.service_urls("recommendation")
    return {
        "search unchecked": sample(search, "rate_limit_unchecked_total", limit="search"),
        "rating writes unchecked": sample(ratings, "rate_limit_unchecked_total", limit="rating_writes"),
        "invalidations unconfirmed": sample(ratings, "invalidation_failures_total"),
        "recommendations unchecked": sample(recommendation, "rate_limit_unchecked_total",
                                            limit="recommendations"),
        "cache errors": sample(recommendation, "recommendation_cache_errors_total"),
        "invalidations unavailable": sample(recommendation, "recommendation_cache_invalidations_total",
                                            outcome="unavailable"),
    }


def all_ready(stack: Stack) -> bool:
    return all(httpx.get(f"{url}/ready", timeout=10).json().get("status") == "ready"
               for url in stack.service_urls("recommendation"))


@pytest.mark.parametrize("state", STATES)
def test_every_redis_failure_through_the_alb_is_a_degraded_answer_never_a_5xx(redis_less, failing_redis,
                                                                               state):
    stack = redis_less
    server = failing_redis(state, port=redis_port(stack))
    wait_until(lambda: all_ready(stack), 30, "the recommender back on a healthy Redis")
    rater = stack.sign_in(f"failover-{state.replace('_', '-')}")
    auth = {"Authorization": f"Bearer {rater['access_token']}"}
    server.fail()
    before = counters(stack)
    with httpx.Client(base_url=stack.alb_url, timeout=30) as alb:
        searched = alb.get("/search", params={"q": "failover book"})
        rated = alb.post("/books/GB5/rate", json={"rating": 4}, headers=auth)
        read = [alb.get(f"/recommendations/{rater['sub']}") for _ in stack.service_urls("recommendation")]
    assert searched.status_code == 200 and searched.json()["query"] == "failover book", searched.text
    assert rated.status_code in (200, 201), rated.text
    assert [r.status_code for r in read] == [200] * len(read), [r.text for r in read]
    invalidated = [httpx.post(f"{url}/recommendations/invalidate/{rater['sub']}", timeout=10,
                              headers={"X-Internal-Token": stack.env["INTERNAL_TOKEN"]})
                   for url in stack.service_urls("recommendation")]
    assert {(r.status_code, r.json()["cache"]) for r in invalidated} == {(200, "unavailable")}
    readiness = [httpx.get(f"{url}/ready", timeout=10).json() for url in stack.service_urls("recommendation")]
    assert {r["status"] for r in readiness} == {"degraded"}
    after = counters(stack)
    grown = {name: after[name] - before[name] for name in before}
    print(f"\nRedis {state}: counted {grown}")
    # Every request let through unchecked is counted once, by the replica that let it through.
    assert grown["search unchecked"] == 1 and grown["rating writes unchecked"] == 1
    assert grown["recommendations unchecked"] == len(read) and grown["cache errors"] >= len(read)
    assert grown["invalidations unconfirmed"] == 1  # the rating's, answered unavailable
    assert grown["invalidations unavailable"] == 1 + len(invalidated)
    for service in BUILDERS:  # one run each, as the scheduled task runs
        environment = stack.builder_env(service, server.url, stack.env["ARTIFACT_BUCKET"])
        run = subprocess.run([sys.executable, "-m", f"bookrec_{service}.builder"], capture_output=True,
                             text=True, timeout=120, env={**os.environ, **environment})
        assert run.returncode == 0, run.stderr[-2000:]
        assert '"outcome": "redis_unavailable"' in run.stdout, run.stdout[-2000:]


def test_a_rating_through_the_alb_records_its_accepted_change_for_the_recommender(redis_less, failing_redis):
    stack = redis_less
    server = failing_redis("read_only", port=redis_port(stack))  # healthy throughout: never failed
    wait_until(lambda: all_ready(stack), 30, "the recommender on a healthy Redis")
    rater = stack.sign_in("failover-freshness")
    rated = httpx.post(f"{stack.alb_url}/books/GB7/rate", json={"rating": 5}, timeout=30,
                       headers={"Authorization": f"Bearer {rater['access_token']}"})
    assert rated.status_code == 201, rated.text
    recorded = server.admin().get(f"reco-latest:{rater['sub']}")
    assert recorded == f"{rated.json()['updated_at']} GB7 0".encode()
