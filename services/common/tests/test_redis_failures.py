"""Every way Redis fails, on a real redis-server of each test's own put in that state
(`bookrec_local.redis_faults`): one classification (`redis_unavailable`), and what each consumer in
common does with it: the rate limits open (counted), a builder's lease is refused (nothing built,
counted), an error that escapes a route is a 503, never a 500. A mistake of the calling code is no
failure of Redis: it stays an error."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager

import pytest
import redis.exceptions
from litestar import Litestar, Request, get
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY

from bookrec_catalog.catalog import utc_now
from bookrec_common.artifacts import ArtifactStore
from bookrec_common.builder import Built, build_once
from bookrec_common.clients import redis_client, redis_unavailable, s3_client
from bookrec_common.lease import Lease, LeaseUnavailable
from bookrec_common.ratelimit import RATE_LIMIT_UNCHECKED, RateLimiter, TooManyRequests
from bookrec_common.service import create_service_app
from bookrec_common.settings import ServiceSettings
from bookrec_local.prometheus import current
from bookrec_local.redis_faults import STATES

PASSWORD = "the-right-token"  # every server has one: the wrong_password state rotates it


def builds(kind: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("artifact_builds_total", {"kind": kind, "outcome": outcome}) or 0.0


def unchecked(name: str) -> float:
    return current(RATE_LIMIT_UNCHECKED.labels(name))


async def what_consumers_meet(client) -> list[BaseException]:
    """The errors of the calls the consumers make: a read, the limiter's MULTI, a Lua write."""
    met: list[BaseException] = []
    script = client.register_script("return redis.call('INCR', KEYS[1])")

    async def limiter_sync():
        async with client.pipeline(transaction=True) as pipe:
            return await pipe.incrby("ratelimit:probe", 1).expire("ratelimit:probe", 60).execute()

    for call in (lambda: client.get("reco:probe"), limiter_sync, lambda: script(keys=["lease-fence:probe"])):
        try:
            await call()
        except Exception as exc:  # noqa: BLE001 - collected: what is asserted is their classification
            met.append(exc)
    return met


class Build:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, previous):
        self.calls += 1
        return Built(b"built", utc_now(), 1, 1)


@pytest.fixture
async def store(artifact_bucket):
    async with s3_client(ServiceSettings()) as s3:
        yield ArtifactStore(s3, artifact_bucket, f"kind-{uuid.uuid4().hex[:6]}")


@pytest.mark.parametrize("state", STATES)
async def test_every_failure_state_is_redis_unavailable_to_every_consumer(failing_redis, state):
    server = failing_redis(state, password=PASSWORD)
    async with redis_client(server.url, auth_token=PASSWORD) as client:
        assert await what_consumers_meet(client) == []  # healthy first, connections pooled
        server.fail()
        met = await what_consumers_meet(client)
    assert len(met) >= 2, met  # writes fail in every state (reads still answer on a replica or when full)
    assert all(redis_unavailable(exc) for exc in met), [f"{type(exc).__name__}: {exc}" for exc in met]


@pytest.mark.parametrize("state", STATES)
async def test_rate_limits_open_and_count_every_request_while_redis_fails(failing_redis, state):
    server = failing_redis(state, password=PASSWORD)
    name = f"test-{state}"
    async with redis_client(server.url, auth_token=PASSWORD) as client:
        limiter = RateLimiter(client, name, limit=2, window_seconds=60, local_allowance=1)
        await limiter.hit("olga")
        await limiter.hit("olga")
        with pytest.raises(TooManyRequests):  # the limit holds while Redis serves
            await limiter.hit("olga")
        server.fail()
        before = unchecked(name)
        for _ in range(5):
            await limiter.hit("olga")  # over the limit, yet let through: Redis cannot say
        assert unchecked(name) == before + 5
        await limiter.aclose()


@pytest.mark.parametrize("state", STATES)
async def test_a_builder_gets_no_lease_builds_nothing_and_says_so(failing_redis, store, state):
    server = failing_redis(state, password=PASSWORD)
    async with redis_client(server.url, timeout=1.0, auth_token=PASSWORD) as client:
        server.fail()
        build = Build()
        before = builds(store.kind, "redis_unavailable")
        assert await build_once(Lease(client, store.kind), store, build) == "redis_unavailable"
    assert build.calls == 0 and await store.latest() is None
    assert builds(store.kind, "redis_unavailable") == before + 1


async def test_a_lease_redis_cannot_renew_for_a_whole_ttl_stops_the_build(failing_redis, store):
    server = failing_redis("read_only")
    started = asyncio.Event()

    async def endless(previous):
        started.set()
        await asyncio.Event().wait()  # stopped only by the lease's loss

    async with redis_client(server.url, timeout=1.0) as client:
        run = asyncio.create_task(build_once(Lease(client, store.kind, ttl_seconds=1), store, endless))
        await asyncio.wait_for(started.wait(), 30)
        server.fail()  # renewals now fail: after a TTL without one, the lease may be a successor's
        assert await asyncio.wait_for(run, 30) == "lease_lost"
    assert await store.latest() is None


async def test_a_lease_refused_by_redis_is_its_own_exception(failing_redis):
    server = failing_redis("out_of_memory")
    async with redis_client(server.url) as client:
        lease = Lease(client, "kind-oom")
        server.fail()
        with pytest.raises(LeaseUnavailable, match="OutOfMemoryError"):
            await lease.acquire()


async def test_mistakes_of_the_calling_code_are_not_redis_failures(redis_url):
    async with redis_client(redis_url) as client:
        key = f"a-hash-{uuid.uuid4().hex[:6]}"
        await client.hset(key, "field", "1")
        with pytest.raises(redis.exceptions.ResponseError) as wrong_type:
            await client.incr(key)
        with pytest.raises(redis.exceptions.ResponseError) as script_error:
            await client.eval("return redis.call('NOSUCHCOMMAND')", 0)
        with pytest.raises(redis.exceptions.DataError) as bad_argument:
            await client.set(key, {"not": "a value"})
    for mistake in (wrong_type.value, script_error.value, bad_argument.value):
        assert not redis_unavailable(mistake), mistake


async def test_a_limiter_whose_key_is_of_the_wrong_type_fails_loudly(redis_url):
    now = 3600 * 500_000 + 10.0
    async with redis_client(redis_url) as client:
        limiter = RateLimiter(client, f"test-wrongtype-{uuid.uuid4().hex[:6]}", limit=5, window_seconds=3600,
                              clock=lambda: now)
        await client.hset(f"ratelimit:{limiter.name}:pia:{int(now // 3600)}", "field", "1")
        before = unchecked(limiter.name)
        with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE"):
            await limiter.hit("pia")
        assert unchecked(limiter.name) == before  # a bug is not counted as Redis being away


@pytest.mark.parametrize("state", ["read_only", "busy_script", "wrong_password"])
async def test_a_redis_failure_escaping_a_route_is_a_503_problem(failing_redis, state):
    server = failing_redis(state, password=PASSWORD)

    @asynccontextmanager
    async def clients(app: Litestar):
        async with redis_client(server.url, auth_token=PASSWORD) as client:
            app.state.redis = client
            yield

    @get("/write")
    async def write(request: Request) -> str:
        await request.app.state.redis.set("k", "v")  # nothing degrades here: the shared handler answers
        return "written"

    app = create_service_app(ServiceSettings(service_name="probe", access_log=False), [write],
                             lifespan=[clients])
    async with AsyncTestClient(app) as http:
        assert (await http.get("/write")).status_code == 200
        server.fail()
        failed = await http.get("/write")
    assert failed.status_code == 503 and failed.headers["content-type"] == "application/problem+json"
    assert failed.json()["code"] == "dependency_unavailable" and failed.headers["retry-after"] == "1"
