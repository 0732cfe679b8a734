"""Trending is derived state: when Redis loses it, the builder's run replays the ratings and shelves tables
(moto server over HTTP) into a real Redis, and the windows come back as the write path had counted them."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from bookrec_common.activity import ActivityLog
from bookrec_common.artifacts import ArtifactStore
from bookrec_common.builder import build_once
from bookrec_common.clients import dynamodb_client, s3_client
from bookrec_common.feed import ChangeFeed
from bookrec_common.lease import Lease
from bookrec_recommendation.artifact import KIND
from bookrec_recommendation.builder import ModelBuild
from bookrec_recommendation.store import RatingsSource
from bookrec_recommendation.trending_store import ActivityTables, rebuild_if_lost

from .test_api import seed
from .test_artifacts import settings_for_tables

HOUR, DAY = 3600, 86400
NOW = time.time()
# Imported ratings (goodbooks) carry a fixed old stamp: never in a window.
IMPORT_EPOCH = "2017-01-01T00:00:00.000000Z"


def stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def put_rating(dynamodb, tables, book_id: str, user_id: str, at: str) -> None:
    dynamodb.put_item(TableName=tables["ratings"], Item={
        "book_id": {"S": book_id}, "user_id": {"S": user_id}, "rating": {"N": "4"},
        "created_at": {"S": at}, "updated_at": {"S": at}})


def put_shelf(dynamodb, tables, book_id: str, user_id: str, shelf: str, at: str) -> None:
    dynamodb.put_item(TableName=tables["shelves"], Item={
        "book_id": {"S": book_id}, "user_id": {"S": user_id}, "shelf": {"S": shelf},
        "user_shelf": {"S": f"{user_id}#{shelf}"}, "shelved_at": {"S": at}})


@pytest.fixture
async def redis(redis_url):
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


async def windows(activity: ActivityLog) -> dict[int, dict[str, int]]:
    counts = await activity.counts()
    return {hours: dict(rows) for hours, rows in counts.windows.items()}


async def test_a_lost_activity_is_rebuilt_from_the_tables_by_the_builders_run(
        tables, dynamodb, redis, artifact_bucket):
    seed(dynamodb, tables)  # the catalogue, and ratings stamped now (on other books)
    put_rating(dynamodb, tables, "OL101W", "ann", stamp(NOW - HOUR))
    put_shelf(dynamodb, tables, "OL101W", "ann", "read", stamp(NOW - 2 * HOUR))  # ann twice: counted once
    put_shelf(dynamodb, tables, "OL101W", "bob", "want_to_read", stamp(NOW - 3 * DAY))
    put_rating(dynamodb, tables, "OL102W", "cid", stamp(NOW - 10 * DAY))
    put_rating(dynamodb, tables, "OL103W", "dee", IMPORT_EPOCH)
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    activity = ActivityLog(redis, prefix=prefix)
    # What the write path counted before Redis lost it (the seed's ratings are stamped now: counted too).
    written = ActivityLog(redis, prefix=f"{prefix}written:")
    for item in dynamodb.scan(TableName=tables["ratings"])["Items"]:
        await written.record(item["book_id"]["S"], item["user_id"]["S"], item["updated_at"]["S"])
    for item in dynamodb.scan(TableName=tables["shelves"])["Items"]:
        await written.record(item["book_id"]["S"], item["user_id"]["S"], item["shelved_at"]["S"])

    settings = settings_for_tables(tables)
    async with dynamodb_client(settings) as client, s3_client(settings) as s3:
        activity_tables = ActivityTables(client, tables["ratings"], tables["shelves"])
        model_build = ModelBuild(RatingsSource(client, tables["books"], tables["ratings"]),
                                 ChangeFeed(client, tables["books"]), neighbours=5, regularisation=1.0,
                                 margin_seconds=0, trending=lambda: rebuild_if_lost(activity, activity_tables))
        store = ArtifactStore(s3, artifact_bucket, KIND)
        lease = Lease(redis, f"{prefix}{KIND}", ttl_seconds=10)

        assert not await activity.complete()
        assert await build_once(lease, store, model_build) == "published"
        assert await activity.complete()
        rebuilt = await windows(activity)
        assert rebuilt == await windows(written)
        assert rebuilt[24]["OL101W"] == 1 and rebuilt[168]["OL101W"] == 2 and rebuilt[720]["OL102W"] == 1
        assert "OL102W" not in rebuilt[168] and all("OL103W" not in w for w in rebuilt.values())

        reads = activity_tables.reads
        assert await build_once(lease, store, model_build) == "unchanged"
        assert activity_tables.reads == reads  # the marker is there: no table read at all

        async for key in redis.scan_iter(match=f"{prefix}*"):  # Redis loses everything, marker included
            if not key.startswith(f"{prefix}written:".encode()):
                await redis.delete(key)
        assert await windows(activity) == {24: {}, 168: {}, 720: {}}
        assert await build_once(lease, store, model_build) == "unchanged"  # the model: nothing changed
        assert await windows(activity) == rebuilt and activity_tables.reads > reads


async def test_the_local_stacks_replay_times_the_seeds_ratings_within_30_days_the_same_on_every_start(
        tables, dynamodb, redis, redis_url, moto_endpoint):
    from bookrec_local.activity_seed import SPREAD_SECONDS, replay, replay_time

    for user in range(3):
        for book in range(4):
            put_rating(dynamodb, tables, f"GB{book}", f"gb{user}", IMPORT_EPOCH)
    put_rating(dynamodb, tables, "GB9", "reader", stamp(NOW - 60))  # a real rating: the write path's to count
    times = {replay_time(f"gb{u}", f"GB{b}", NOW) for u in range(3) for b in range(4)}
    assert all(NOW - SPREAD_SECONDS <= t <= NOW for t in times) and len(times) == 12
    assert replay_time("gb0", "GB0", NOW) == replay_time("gb0", "GB0", NOW)
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    assert await replay(moto_endpoint, tables["ratings"], redis_url, now=NOW, prefix=prefix) == 12
    month = dict((await ActivityLog(redis, prefix=prefix).counts()).windows[720])
    assert {book: month.get(book) for book in ("GB0", "GB1", "GB2", "GB3", "GB9")} == {
        "GB0": 3, "GB1": 3, "GB2": 3, "GB3": 3, "GB9": None}
