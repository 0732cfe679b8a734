"""Fault injection through the local ALB, on a stack of its own (these tests break things on purpose).

Each prints its figures: requests sent, failed, and how long recovery took."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import httpx
import pytest
import redis

from bookrec_catalog.catalog import utc_now, with_derived_attributes
from bookrec_catalog.changes import change_stamp
from bookrec_catalog.dynamo import to_item
from bookrec_local import definitions
from bookrec_local.procs import local_dynamodb, moto_command, port_open, redis_command, wait_until
from bookrec_local.stack import Stack

pytestmark = pytest.mark.e2e
# 200 ports above the session's stack (BOOKREC_STACK_PORT_OFFSET, default 200), so suites can run side by side.
OFFSET = int(os.environ.get("BOOKREC_STACK_PORT_OFFSET", "200")) + 200


@pytest.fixture(scope="module")
def faulty(tmp_path_factory, start_stack) -> Stack:
    # redis_url=None: a Redis of its own, never a developer's (this one gets killed). No seed: these tests
    # need a few books, not volume, and the emulator's start-up scans stay short. Rate limits on (counted in
    # Redis, so they must open when it fails) but far above what these tests send from one address.
    stack = start_stack(Stack(tmp_path_factory.mktemp("faulty"), OFFSET, seed="none", rate_limit="1000000"))
    client = local_dynamodb(stack.aws_endpoint)
    for i in range(1, 60):
        client.put_item(TableName=stack.env["BOOKS_TABLE"],
                        Item=to_item(with_derived_attributes({"book_id": f"GB{i}", "title": f"Fault book {i}",
                                                              **change_stamp(f"GB{i}", utc_now())})))
    yield stack
    stack.down()


ALB = f"http://127.0.0.1:{8080 + OFFSET}"


def counter(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ") or
               line.startswith(name + "{"))


async def hammer(path: str, seconds: float, concurrency: int = 8) -> tuple[int, int, list[str]]:
    sent = failed = 0
    errors: list[str] = []
    deadline = time.monotonic() + seconds
    # A slow answer from the emulator is not a failure; an error status or a hang is.
    async with httpx.AsyncClient(base_url=ALB, timeout=30) as client:
        async def worker(n: int) -> None:
            nonlocal sent, failed
            i = 0
            while time.monotonic() < deadline:
                i += 1
                sent += 1
                try:
                    r = await client.get(path.format(n=n, i=i))
                    if r.status_code != 200:
                        failed += 1
                        errors.append(f"{r.status_code} {r.text[:120]}")
                except httpx.HTTPError as exc:
                    failed += 1
                    errors.append(repr(exc))
        await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return sent, failed, errors[:5]


def test_redis_killed_during_load_on_recommendations(faulty):
    redis_pid = faulty.pids()["redis"]
    port = int(faulty.env["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])

    async def scenario():
        load = asyncio.create_task(hammer("/recommendations/gb-{n}?limit=10", 30))
        await asyncio.sleep(8)
        os.kill(redis_pid, signal.SIGKILL)
        await asyncio.sleep(2)
        degraded = httpx.get(faulty.service_url("recommendation") + "/ready").json()
        await asyncio.sleep(10)
        faulty.launch("redis", redis_command(port))
        restarted = time.monotonic()
        wait_until(lambda: port_open(port), 10, "redis")
        recovered = None
        while time.monotonic() - restarted < 15:
            if httpx.get(faulty.service_url("recommendation") + "/ready").json().get("status") == "ready":
                recovered = time.monotonic() - restarted
                break
            await asyncio.sleep(0.2)
        return await load, degraded, recovered

    (sent, failed, errors), degraded, recovered = asyncio.run(scenario())
    print(f"\nredis killed under load: sent {sent}, failed {failed}, ready again {recovered:.1f}s after restart")
    assert failed == 0, errors
    assert degraded["status"] == "degraded" and degraded["checks"]["redis"]["ok"] is False
    assert recovered is not None
    metrics = httpx.get(faulty.service_url("recommendation") + "/metrics").text
    assert counter(metrics, "recommendation_cache_errors_total") > 0


async def rate_for(seconds: float, auth: dict[str, str]) -> tuple[int, int, list[str]]:
    """One reader rating books one after another for `seconds`: (sent, failed, first errors)."""
    sent = failed = 0
    errors: list[str] = []
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=ALB, timeout=30, headers=auth) as client:
        while time.monotonic() < deadline:
            sent += 1
            r = await client.post(f"/books/GB{sent % 59 + 1}/rate", json={"rating": sent % 5 + 1})
            if r.status_code not in (200, 201):
                failed += 1
                errors.append(f"{r.status_code} {r.text[:120]}")
    return sent, failed, errors[:5]


def test_redis_failing_over_under_load_fails_no_request(faulty):
    """An ElastiCache Multi-AZ failover as clients see it: Redis turns into a read-only replica under load
    (searches, recommendation reads of ever new ids, rating writes), then back to a primary."""
    port = int(faulty.env["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
    admin = redis.Redis(port=port, socket_timeout=10)
    auth = rater_headers(faulty, "failover-rater")
    search_metrics = faulty.service_url("search") + "/metrics"

    def reco_metrics() -> str:
        return "".join(httpx.get(url + "/metrics").text for url in faulty.service_urls("recommendation"))

    unchecked = counter(httpx.get(search_metrics).text, "rate_limit_unchecked_total")
    bypassed = counter(reco_metrics(), "recommendation_cache_errors_total")

    async def scenario():
        load = asyncio.gather(hammer("/recommendations/failover-{n}-{i}?limit=10", 24, concurrency=4),
                              hammer("/search?q=fault+book+{i}", 24, concurrency=4), rate_for(24, auth))
        await asyncio.sleep(6)
        admin.replicaof("127.0.0.1", "1")  # nobody there: it stays a read-only replica
        await asyncio.sleep(12)
        admin.replicaof("NO", "ONE")
        return await load

    (reads, searches, ratings) = asyncio.run(scenario())
    print(f"\nRedis read-only for 12 s under load: recommendations {reads[:2]}, searches {searches[:2]}, "
          f"ratings {ratings[:2]} (sent, failed)")
    assert reads[1] == searches[1] == ratings[1] == 0, (reads[2], searches[2], ratings[2])
    assert counter(httpx.get(search_metrics).text, "rate_limit_unchecked_total") > unchecked
    assert counter(reco_metrics(), "recommendation_cache_errors_total") > bypassed


def rater_headers(stack: Stack, username: str) -> dict[str, str]:
    """A bearer token of the stack's own Cognito for `username`."""
    return {"Authorization": f"Bearer {stack.sign_in(username)['access_token']}"}


def test_a_stopped_recommender_never_fails_a_rating(faulty):
    reco = faulty.pids()["recommendation"]
    auth = rater_headers(faulty, "fault-rater")
    ratings_metrics = faulty.service_url("ratings") + "/metrics"
    before = counter(httpx.get(ratings_metrics).text, "invalidation_failures_total")
    os.killpg(reco, signal.SIGSTOP)  # hung, not gone: the harder case (timeouts, not refusals)
    try:
        results = [httpx.post(f"{ALB}/books/GB{i}/rate", json={"rating": 3}, headers=auth, timeout=30)
                   for i in range(1, 21)]
    finally:
        os.killpg(reco, signal.SIGCONT)
    during = counter(httpx.get(ratings_metrics).text, "invalidation_failures_total")
    print(f"\nrecommender stopped: 20 ratings sent, {sum(r.status_code not in (200, 201) for r in results)} failed, "
          f"{during - before:.0f} invalidations counted as failed")
    assert all(r.status_code in (200, 201) for r in results)
    assert during - before == 20
    # Resumed, the recommender first drains the invalidations queued while it was stopped.
    resumed = time.monotonic()
    confirmed = counter(httpx.get(ratings_metrics).text, "invalidations_total")
    for i in range(22, 42):
        r = httpx.post(f"{ALB}/books/GB{i}/rate", json={"rating": 4}, headers=auth, timeout=30)
        assert r.status_code == 201
        if counter(httpx.get(ratings_metrics).text, "invalidations_total") > confirmed:
            break
        time.sleep(0.5)
    print(f"invalidation confirmed again {time.monotonic() - resumed:.1f}s after the recommender resumed")
    assert counter(httpx.get(ratings_metrics).text, "invalidations_total") > confirmed  # works again


def test_dynamodb_emulator_stopped_and_restarted(faulty):
    env = faulty.env
    port = int(env["AWS_ENDPOINT_URL"].rsplit(":", 1)[1])
    os.killpg(faulty.pids()["moto"], signal.SIGKILL)
    wait_until(lambda: not port_open(port), 10, "moto gone")
    timings = []
    for path in ("/books/GB1", "/books/GB1/ratings", "/users/x/ratings", "/recommendations/x"):
        started = time.monotonic()
        r = httpx.get(ALB + path, timeout=20)
        timings.append(time.monotonic() - started)
        assert r.status_code == 503 and r.headers["content-type"].startswith("application/problem+json"), r.text
    assert httpx.get(faulty.service_url("bookdetail") + "/ready").status_code == 503
    faulty.launch("moto", moto_command(port))
    wait_until(lambda: port_open(port), 30, "moto")
    restarted = time.monotonic()
    client = local_dynamodb(env["AWS_ENDPOINT_URL"])
    definitions.create_tables(client, "bookrec-local")  # a restarted emulator starts empty
    back = with_derived_attributes({"book_id": "GB1", "title": "Back"})
    client.put_item(TableName=env["BOOKS_TABLE"], Item=to_item(back))
    wait_until(lambda: httpx.get(ALB + "/books/GB1").status_code == 200, 30, "bookdetail recovery")
    print(f"\nemulator down: slowest 503 after {max(timings):.2f}s; bookdetail recovered "
          f"{time.monotonic() - restarted:.1f}s after the emulator came back, without a restart")
    assert max(timings) < 5  # refused connections fail fast; nothing waits for a read timeout
    assert httpx.get(ALB + "/books/GB1").json()["title"] == "Back"


def test_a_target_down_behind_the_alb_is_a_503_problem(faulty):
    """No replica of search can take a connection: HAProxy answers 503 (the real ALB says 502 for a refused
    connection and 503 once the target group has no healthy target), as Problem Details of its own."""
    os.killpg(faulty.pids()["search"], signal.SIGKILL)
    wait_until(lambda: not port_open(faulty.service_port("search")), 10, "search gone")
    r = httpx.get(ALB + "/search", params={"q": "zen"})
    assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "service_unavailable" and r.headers["x-service"] == "alb"
