"""The model built once by the builder, shipped through S3, taken up by replicas that never scan."""

from __future__ import annotations

import asyncio

import pytest
from litestar.testing import AsyncTestClient

from bookrec_catalog.catalog import utc_now
from bookrec_catalog.changes import change_shard
from bookrec_common.artifacts import ArtifactStore
from bookrec_common.builder import build_once
from bookrec_common.clients import dynamodb_client, redis_client, s3_client
from bookrec_common.feed import ChangeFeed
from bookrec_common.lease import Lease
from bookrec_recommendation.app import create_app
from bookrec_recommendation.artifact import KIND, ArtifactFormatError, dump, load
from bookrec_recommendation.builder import ModelBuild
from bookrec_recommendation.model import train
from bookrec_recommendation.settings import ModelSettings
from bookrec_recommendation.store import RatingsSource

from .test_api import TOKEN, seed, settings_for, wait_ready


def rate_as_ratings_does(dynamodb, tables, user_id: str, book_id: str) -> None:
    """The rating and its book's changed aggregate (stamped for the feed), as the ratings service writes."""
    now = utc_now()
    dynamodb.put_item(TableName=tables["ratings"], Item={
        "book_id": {"S": book_id}, "user_id": {"S": user_id}, "rating": {"N": "4"},
        "created_at": {"S": now}, "updated_at": {"S": now}})
    dynamodb.update_item(TableName=tables["books"], Key={"book_id": {"S": book_id}},
                         UpdateExpression="SET changed_at = :now, change_shard = :shard",
                         ExpressionAttributeValues={":now": {"S": now}, ":shard": {"S": change_shard(book_id)}})


@pytest.fixture
async def builder(tables, dynamodb, redis_url, artifact_bucket):
    """One builder run at a time: `await builder()` is the outcome of a scheduled run."""
    seed(dynamodb, tables)
    async with dynamodb_client(settings_for_tables(tables)) as client, s3_client(settings_for_tables(tables)) as s3, \
            redis_client(redis_url, timeout=2.0) as redis:
        store = ArtifactStore(s3, artifact_bucket, KIND)
        source = RatingsSource(client, tables["books"], tables["ratings"])
        model_build = ModelBuild(source, ChangeFeed(client, tables["books"]), neighbours=5, regularisation=1.0,
                                 margin_seconds=0)

        async def run() -> str:
            return await build_once(Lease(redis, KIND, ttl_seconds=5), store, model_build)

        run.source = source  # type: ignore[attr-defined]  # the tests reach the builder's source through it
        yield run


def settings_for_tables(tables) -> ModelSettings:
    return ModelSettings(books_table=tables["books"], ratings_table=tables["ratings"])


async def test_the_artifact_answers_like_the_model_it_was_made_from(tables, dynamodb):
    seed(dynamodb, tables)
    async with dynamodb_client(settings_for_tables(tables)) as client:
        data = await RatingsSource(client, tables["books"], tables["ratings"]).training_data()
    recommender = train(data, 5, 1.0)
    loaded = load(dump(recommender))
    for rated in ({}, {"OL1W": 5}, {"OL1W": 5, "OL2W": 4, "OL3W": 5}, {"OL8W": 3, "OL9W": 5, "OL10W": 4}):
        assert loaded.recommend(rated, 10) == recommender.recommend(rated, 10)
    assert loaded.version == recommender.version and loaded.active_users == recommender.active_users
    for junk in (b"", b"not a zip", dump(recommender)[:-20]):
        with pytest.raises(ArtifactFormatError):
            load(junk)


async def test_a_build_happens_only_when_something_changed(builder, tables, dynamodb):
    assert await builder() == "published"
    reads = builder.source.build_reads
    assert reads > 0
    await asyncio.sleep(0.01)
    assert await builder() == "unchanged" and builder.source.build_reads == reads  # no scan at all
    rate_as_ratings_does(dynamodb, tables, "reader3", "OL8W")
    assert await builder() == "published" and builder.source.build_reads > reads


async def test_replicas_wait_for_the_model_then_take_up_newer_ones_without_scanning(
        builder, tables, dynamodb, redis_url, issuer, artifact_bucket, monkeypatch):
    settings = settings_for(tables, redis_url, issuer).model_copy(
        update={"artifact_bucket": artifact_bucket, "artifact_poll_seconds": 0.3})
    async with AsyncTestClient(create_app(settings)) as first, AsyncTestClient(create_app(settings)) as second:
        waiting = await first.get("/ready")
        assert waiting.status_code == 503
        assert "waiting for the first artifact" in waiting.json()["checks"]["model"]["error"]
        assert (await first.get("/recommendations/reader1")).json()["code"] == "model_loading"
        assert await builder() == "published"

        async def refuse(self, *args, **kwargs):
            raise AssertionError("a replica scanned a table")

        monkeypatch.setattr(RatingsSource, "_scan", refuse)
        for replica in (first, second):
            await wait_ready(replica)
        version = (await first.get("/ready")).json()["checks"]["model"]["artifact_version"]
        for user in ("reader1", "reader2"):  # lists cached by earlier tests (one Redis for the session)
            await first.post(f"/recommendations/invalidate/{user}", headers={"X-Internal-Token": TOKEN})
        answer = (await first.get("/recommendations/reader1")).json()
        assert answer["model_version"] == f"v{version}" and answer["strategy"] == "collaborative"
        assert (await second.get("/recommendations/reader2")).json()["model_version"] == f"v{version}"

        monkeypatch.undo()  # the builder scans; replicas still may not
        rate_as_ratings_does(dynamodb, tables, "reader3", "OL8W")
        assert await builder() == "published"
        monkeypatch.setattr(RatingsSource, "_scan", refuse)
        for replica in (first, second):
            for _ in range(400):
                body = (await replica.get("/ready")).json()["checks"]["model"]
                if body["artifact_version"] > version:
                    break
                await asyncio.sleep(0.1)
            assert body["artifact_version"] > version and body["model_version"] == f"v{body['artifact_version']}"
        metrics = (await second.get("/metrics")).text
        assert f'artifact_version{{kind="{KIND}"}}' in metrics
        assert 'dynamodb_items_read_total{purpose="serving"}' in metrics
