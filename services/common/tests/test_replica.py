"""The replica's lifespan helper: a state loaded in the background, from the builder's artifacts (S3 on the
emulator) or from the tables, then kept fresh until the app stops; `/ready` meanwhile."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from bookrec_catalog.catalog import utc_now
from bookrec_common.artifacts import ArtifactStore, Manifest
from bookrec_common.clients import s3_client
from bookrec_common.follower import ArtifactFollower
from bookrec_common.replica import artifact_store, kept_loaded, live_checks
from bookrec_common.service import create_service_app
from bookrec_common.settings import ArtifactSettings

BOUND = 30.0  # seconds: generous, the conditions awaited come within milliseconds


class Words:
    """A state of the simplest kind: a list of words, from an artifact or 'the tables' (here a list that
    fails to load a given number of times first)."""

    def __init__(self, store: ArtifactStore | None, table: list[str], failures: int = 0) -> None:
        self.follower = ArtifactFollower(store, self._install, poll_seconds=0.05) if store else None
        self.words: list[str] | None = None
        self.table = table
        self.failures = failures
        self.loads = 0
        # The app runs on the test client's own loop and thread: thread-safe events.
        self.freshening = threading.Event()  # keep_fresh began
        self.stopped = threading.Event()  # keep_fresh was cancelled
        self.loaded_when_freshening: bool | None = None

    @property
    def ready(self) -> bool:
        return self.words is not None

    async def _install(self, manifest: Manifest, payload: bytes) -> None:
        self.words = payload.decode().split()

    async def load(self) -> None:
        self.loads += 1
        if self.loads <= self.failures:
            raise ConnectionError("the table is not there yet")
        self.words = list(self.table)

    async def keep_fresh(self) -> None:
        self.loaded_when_freshening = self.ready
        self.freshening.set()
        try:
            await asyncio.Event().wait()  # until cancelled
        finally:
            self.stopped.set()

    def state(self) -> dict[str, Any]:
        return {"words": len(self.words or [])}


async def until(condition, what: str) -> None:
    async with asyncio.timeout(BOUND):
        while not await condition():
            await asyncio.sleep(0.02)
    assert await condition(), what


def app_for(settings: ArtifactSettings, make_live) -> Litestar:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            app.state.live = make_live(await artifact_store(stack, settings, "words"))
            async with kept_loaded(app.state.live, retry_seconds=0.01):
                yield

    return create_service_app(settings, [], lifespan=[lifespan],
                              readiness=live_checks("words", lambda app: app.state.live,
                                                    artifacts=bool(settings.artifact_bucket)))


async def test_without_a_bucket_the_state_is_loaded_from_the_tables_retrying_then_kept_fresh():
    settings = ArtifactSettings(service_name="words")
    lives: list[Words] = []

    def make(store: ArtifactStore | None) -> Words:
        assert store is None
        lives.append(Words(store, ["alpha", "beta"], failures=2))
        return lives[-1]

    async with AsyncTestClient(app_for(settings, make)) as client:
        live = lives[0]

        async def ready() -> bool:
            return (await client.get("/ready")).status_code == 200

        await until(ready, "loaded after the failed attempts")
        body = (await client.get("/ready")).json()
        assert body["checks"]["words"] == {"ok": True, "required": True, "words": 2}
        assert "artifacts" not in body["checks"]
        assert live.loads == 3  # two failures, retried, then loaded
        assert await asyncio.to_thread(live.freshening.wait, BOUND)
        assert live.loaded_when_freshening is True  # kept fresh only once loaded
    assert live.stopped.is_set()  # the app's end cancels it


async def test_with_a_bucket_a_replica_waits_for_the_builder_then_takes_up_newer_artifacts(artifact_bucket):
    settings = ArtifactSettings(service_name="words", artifact_bucket=artifact_bucket,
                                artifact_prefix=f"words-{uuid.uuid4().hex[:6]}")
    lives: list[Words] = []

    def make(store: ArtifactStore | None) -> Words:
        assert store is not None and store.kind == settings.artifact_prefix
        lives.append(Words(store, ["never", "read"]))
        return lives[-1]

    async with AsyncTestClient(app_for(settings, make)) as client, s3_client(settings) as s3:
        builder = ArtifactStore(s3, artifact_bucket, settings.artifact_prefix)  # as the builder publishes
        live = lives[0]
        waiting = await client.get("/ready")
        assert waiting.status_code == 503
        assert waiting.json()["checks"]["words"]["error"] == "RuntimeError: waiting for the first artifact " \
                                                             "from the builder"
        assert not live.freshening.is_set()
        await builder.publish(b"one two three", version=1, watermark=utc_now(), items=3, build_reads=0)

        async def words_are(count: int):
            async def check() -> bool:
                answer = await client.get("/ready")
                return answer.status_code == 200 and answer.json()["checks"]["words"]["words"] == count
            return check

        await until(await words_are(3), "the first artifact loaded")
        checks = (await client.get("/ready")).json()["checks"]
        assert checks["words"]["artifact_version"] == 1 and checks["artifacts"]["ok"] is True
        assert await asyncio.to_thread(live.freshening.wait, BOUND)
        assert live.loaded_when_freshening is True and live.loads == 0  # never a scan with a bucket

        await builder.publish(b"one two three four", version=2, watermark=utc_now(), items=4, build_reads=0)
        await until(await words_are(4), "the newer artifact swapped in")
        assert (await client.get("/ready")).json()["checks"]["words"]["artifact_version"] == 2
    assert live.stopped.is_set()


@pytest.mark.parametrize("bucket", ["", "some-bucket"])
async def test_the_store_is_opened_only_with_a_bucket(bucket):
    settings = ArtifactSettings(artifact_bucket=bucket)
    checks = live_checks("state", lambda app: app.state.live, artifacts=bool(bucket))
    assert [c.name for c in checks] == (["state", "artifacts"] if bucket else ["state"])
    assert [c.required for c in checks] == ([True, False] if bucket else [True])

    async with AsyncExitStack() as stack:
        store = await artifact_store(stack, settings, "kind-a")
    assert (store is None) == (not bucket)
    if store is not None:
        assert (store.bucket, store.kind) == (bucket, "kind-a")
