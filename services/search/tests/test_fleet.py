"""Replicas start from the builder's artifact, follow the feed, swap newer artifacts, survive failures.

Real parts: the emulator's DynamoDB and S3, a real Redis for the builder's lease.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from contextlib import asynccontextmanager

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY

from bookrec_catalog.catalog import utc_now
from bookrec_catalog.changes import tombstone
from bookrec_catalog.dynamo import to_item
from bookrec_common.artifacts import ArtifactStore
from bookrec_common.clients import s3_client
from bookrec_search.app import create_app
from bookrec_search.artifact import KIND
from bookrec_search.builder import build
from bookrec_search.store import BookSource

from .test_api import put_books, seed, settings_for
from .test_api import wait_until as wait_briefly


async def wait_until(check, seconds: float = 45.0) -> None:
    """Builders, feed reads and artifact looks take turns on a busy machine: a patient wait."""
    await wait_briefly(check, seconds)


def settings_with_artifacts(tables, redis_url, **overrides):
    return settings_for(tables, redis_url=redis_url, artifact_bucket=overrides.pop("bucket"),
                        index_refresh_seconds=0.2, artifact_poll_seconds=0.3, **overrides)


async def total(client, query: str) -> int:
    return (await client.get("/search", params={"q": query})).json()["total"]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@asynccontextmanager
async def serving_replica(tables, dynamodb, redis_url, artifact_bucket):
    """(settings, app, client): the seed books built once by the builder, and a replica ready on its artifact."""
    seed(dynamodb, tables)
    settings = settings_with_artifacts(tables, redis_url, bucket=artifact_bucket)
    await build(settings, every=0)
    app = create_app(settings)
    async with AsyncTestClient(app) as client:
        await wait_until(lambda: _ready(client))
        yield settings, app, client


async def test_a_replica_waits_for_the_artifact_then_follows_the_feed_without_scanning(
        tables, dynamodb, redis_url, artifact_bucket, monkeypatch):
    seed(dynamodb, tables)
    settings = settings_with_artifacts(tables, redis_url, bucket=artifact_bucket)
    async with AsyncTestClient(create_app(settings)) as client:
        waiting = await client.get("/ready")
        assert waiting.status_code == 503
        assert "waiting for the first artifact" in waiting.json()["checks"]["index"]["error"]
        await build(settings, every=0)  # the builder: a full Scan, once for the fleet

        refused_scans: list[str] = []

        async def refuse(self, consume):
            refused_scans.append(self._table)
            raise AssertionError("a replica scanned the table")

        monkeypatch.setattr(BookSource, "scan", refuse)
        await wait_until(lambda: _ready(client))
        report = (await client.get("/ready")).json()["checks"]["index"]
        assert report["artifact_version"] >= 1 and report["books"] == 9 and report["feed_lag_seconds"] < 5
        assert await total(client, "ethics") == 2

        # Added and deleted books reach the replica through the feed.
        put_books(dynamodb, tables, [{"book_id": "OL99W", "title": "Monadology"}])
        dynamodb.put_item(TableName=tables["books"], Item=to_item(tombstone("OL4W", utc_now(), time.time())))

        async def fresh() -> bool:
            return await total(client, "monadology") == 1 and await total(client, "ethics") == 1

        await wait_until(fresh)
        metrics = (await client.get("/metrics")).text
        assert f'artifact_version{{kind="{KIND}"}}' in metrics and "search_feed_lag_seconds" in metrics
        assert 'dynamodb_items_read_total{purpose="feed"}' in metrics
        assert refused_scans == []


async def _ready(client) -> bool:
    return (await client.get("/ready")).status_code == 200


class HeldManifestReads:
    """A replica's manifest reads, held on demand: while held, no read is in flight and new ones wait, so a
    test can publish and damage an artifact before the replica can see it (never racing the follower)."""

    def __init__(self, store: ArtifactStore) -> None:
        self._latest, self._in_flight = store.latest, 0
        self._open, self._idle = asyncio.Event(), asyncio.Event()
        self._open.set()
        self._idle.set()
        store.latest = self._read

    async def _read(self):
        await self._open.wait()
        self._in_flight += 1
        self._idle.clear()
        try:
            return await self._latest()
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def hold(self) -> None:
        self._open.clear()
        await self._idle.wait()

    def release(self) -> None:
        self._open.set()


async def test_a_newer_artifact_is_swapped_in_and_a_corrupt_one_refused(
        tables, dynamodb, redis_url, artifact_bucket, moto_endpoint):
    async with serving_replica(tables, dynamodb, redis_url, artifact_bucket) as (settings, app, client):
        first = (await client.get("/ready")).json()["checks"]["index"]["artifact_version"]
        put_books(dynamodb, tables, [{"book_id": "OL98W", "title": "Pensées"}])
        await build(settings, every=0)  # incremental: the previous artifact plus the feed

        async def swapped() -> bool:
            return (await client.get("/ready")).json()["checks"]["index"]["artifact_version"] > first

        await wait_until(swapped)
        assert await total(client, "pensees") == 1
        second = (await client.get("/ready")).json()["checks"]["index"]["artifact_version"]

        # A third artifact, its payload damaged before the replica may look: refused, counted, current kept.
        put_books(dynamodb, tables, [{"book_id": "OL97W", "title": "Candide"}])
        before = sample("artifact_refused_total", kind=KIND, reason="checksum")
        s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
        manifests = HeldManifestReads(app.state.live.follower.store)
        await manifests.hold()
        await build(settings, every=0)
        manifest = s3.get_object(Bucket=artifact_bucket, Key=f"{KIND}/latest.json")["Body"].read()
        key = json.loads(manifest)["key"]
        payload = s3.get_object(Bucket=artifact_bucket, Key=key)["Body"].read()
        s3.put_object(Bucket=artifact_bucket, Key=key, Body=payload[:-1] + bytes([payload[-1] ^ 1]))
        manifests.release()

        async def refused() -> bool:
            return sample("artifact_refused_total", kind=KIND, reason="checksum") > before

        await wait_until(refused)
        assert (await client.get("/ready")).json()["checks"]["index"]["artifact_version"] == second
        assert await total(client, "candide") == 1  # the feed still brought the change to the kept index


async def test_the_artifact_store_unreachable_keeps_serving_degraded_then_recovers(
        tables, dynamodb, redis_url, artifact_bucket):
    async with serving_replica(tables, dynamodb, redis_url, artifact_bucket) as (_, app, client):
        s3 = app.state.live.follower.store._s3  # noqa: SLF001 - cut the network to S3 only
        real_get = s3.get_object

        async def unreachable(**request):
            raise EndpointConnectionError(endpoint_url="http://s3.unreachable")

        s3.get_object = unreachable
        try:
            async def degraded() -> bool:
                body = (await client.get("/ready")).json()
                return body["status"] == "degraded" and not body["checks"]["artifacts"]["ok"]

            await wait_until(degraded)
            put_books(dynamodb, tables, [{"book_id": "OL96W", "title": "Zadig"}])

            async def still_fresh() -> bool:
                return await total(client, "zadig") == 1

            await wait_until(still_fresh)  # the feed keeps the index fresh meanwhile
            assert (await client.get("/ready")).status_code == 200
        finally:
            s3.get_object = real_get

        async def recovered() -> bool:
            return (await client.get("/ready")).json()["status"] == "ready"

        await wait_until(recovered)


async def test_a_position_older_than_the_feed_retention_reloads_the_newest_artifact(
        tables, dynamodb, redis_url, artifact_bucket):
    async with serving_replica(tables, dynamodb, redis_url, artifact_bucket) as (_, app, client):
        live = app.state.live
        loaded = live.index
        live._position -= 8 * 86_400  # noqa: SLF001 - as if the replica had been paused for 8 days

        async def reloaded() -> bool:
            return live.index is not loaded and live.position > time.time() - 60

        await wait_until(reloaded)
        assert await total(client, "ethics") == 2


@pytest.mark.parametrize(("env", "says"), [
    ({}, "missing or invalid settings: BOOKS_TABLE"),
    ({"BOOKS_TABLE": "books"}, "ARTIFACT_BUCKET and REDIS_URL must be set"),
])
def test_the_builder_without_its_settings_says_so_in_one_line(env, says):
    clean = {k: v for k, v in os.environ.items()
             if k not in {"BOOKS_TABLE", "REDIS_URL", "ARTIFACT_BUCKET", "RATINGS_TABLE"}}
    done = subprocess.run([sys.executable, "-m", "bookrec_search.builder"], env={**clean, **env},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith(f"builder: {says}")


async def test_the_artifact_prefix_follows_the_setting_iam_scopes(tables, dynamodb, redis_url,
                                                                   artifact_bucket, moto_endpoint):
    seed(dynamodb, tables)
    settings = settings_with_artifacts(tables, redis_url, bucket=artifact_bucket, artifact_prefix="elsewhere")
    await build(settings, every=0)
    keys = [o["Key"] for o in boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
            .list_objects_v2(Bucket=artifact_bucket)["Contents"]]
    assert keys and all(k.startswith("elsewhere/") for k in keys)
    async with AsyncTestClient(create_app(settings)) as client:
        await wait_until(lambda: _ready(client))
        assert await total(client, "ethics") == 2


async def test_a_builder_facing_an_unreadable_artifact_rebuilds_from_the_table(
        tables, dynamodb, redis_url, artifact_bucket):
    seed(dynamodb, tables)
    settings = settings_with_artifacts(tables, redis_url, bucket=artifact_bucket)
    async with s3_client(settings) as s3:
        store = ArtifactStore(s3, artifact_bucket, KIND)
        await store.publish(b"not a snapshot", version=1, watermark=utc_now(), items=0, build_reads=0)
        await build(settings, every=0)
        latest = await store.latest()
        assert latest.version > 1 and latest.items == 9 and latest.build_reads == 9  # a full Scan
    async with AsyncTestClient(create_app(settings)) as client:
        await wait_until(lambda: _ready(client))
        assert await total(client, "ethics") == 2


async def test_a_build_with_nothing_changed_publishes_nothing_and_fetches_nothing(
        tables, dynamodb, redis_url, artifact_bucket, monkeypatch):
    seed(dynamodb, tables)
    settings = settings_with_artifacts(tables, redis_url, bucket=artifact_bucket,
                                       index_refresh_overlap_seconds=0)
    await build(settings, every=0)
    fetched: list[str] = []
    fetch = ArtifactStore.fetch

    async def counted(self, manifest):
        fetched.append(manifest.key)
        return await fetch(self, manifest)

    monkeypatch.setattr(ArtifactStore, "fetch", counted)
    async with s3_client(settings) as s3:
        store = ArtifactStore(s3, artifact_bucket, KIND)
        first = await store.latest()
        await build(settings, every=0)
        assert (await store.latest()).version == first.version and fetched == []
        put_books(dynamodb, tables, [{"book_id": "OL95W", "title": "Micromégas"}])
        await build(settings, every=0)
        assert (await store.latest()).version > first.version and fetched == [first.key]
