"""Artifacts in S3, the builders' lease and the change feed, on the emulator and a real Redis."""

from __future__ import annotations

import asyncio
import uuid

import boto3
import pytest
from prometheus_client import REGISTRY

from bookrec_catalog.catalog import iso_stamp, utc_now
from bookrec_catalog.changes import FEED_RETENTION_SECONDS, change_stamp, tombstone
from bookrec_common.artifacts import ArtifactStore, CorruptArtifact, Superseded, UnreadableArtifact
from bookrec_common.builder import Built, build_once
from bookrec_common.clients import dynamodb_client, redis_client, s3_client
from bookrec_common.feed import ChangeFeed, FeedGap, epoch_of, latest_of
from bookrec_common.follower import ArtifactFollower, artifacts_reachable
from bookrec_common.lease import Lease
from bookrec_common.settings import ServiceSettings


def refused(kind: str, reason: str) -> float:
    return REGISTRY.get_sample_value("artifact_refused_total", {"kind": kind, "reason": reason}) or 0.0


@pytest.fixture
async def store(artifact_bucket):
    async with s3_client(ServiceSettings()) as s3:
        yield ArtifactStore(s3, artifact_bucket, f"kind-{uuid.uuid4().hex[:6]}")


@pytest.fixture
async def redis(redis_url):
    async with redis_client(redis_url, timeout=2.0) as client:
        yield client


async def test_a_published_artifact_is_found_and_read_back_checked(store):
    assert await store.latest() is None
    manifest = await store.publish(b"payload" * 1000, version=3, watermark="2026-12-02T09:00:00.000000Z",
                                   items=12, build_reads=40)
    latest = await store.latest()
    assert latest == manifest and latest.version == 3 and latest.items == 12 and latest.build_reads == 40
    assert await store.fetch(latest) == b"payload" * 1000


async def test_a_corrupt_or_truncated_payload_is_refused_and_counted(store, moto_endpoint):
    manifest = await store.publish(b"x" * 5000, version=1, watermark=utc_now(), items=1, build_reads=1)
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    before_size, before_sum = refused(store.kind, "size"), refused(store.kind, "checksum")
    s3.put_object(Bucket=store.bucket, Key=manifest.key, Body=b"x" * 4000)  # truncated
    with pytest.raises(CorruptArtifact, match="4000 bytes"):
        await store.fetch(manifest)
    s3.put_object(Bucket=store.bucket, Key=manifest.key, Body=b"y" * 5000)  # altered, same size
    with pytest.raises(CorruptArtifact, match="SHA-256"):
        await store.fetch(manifest)
    assert refused(store.kind, "size") == before_size + 1 and refused(store.kind, "checksum") == before_sum + 1
    s3.put_object(Bucket=store.bucket, Key=f"{store.kind}/latest.json", Body=b"{not json")
    with pytest.raises(CorruptArtifact, match="manifest"):
        await store.latest()


async def test_a_replaced_payload_is_tagged_for_the_lifecycle_rule(store, moto_endpoint):
    first = await store.publish(b"one", version=1, watermark=utc_now(), items=1, build_reads=0)
    second = await store.publish(b"two", version=2, watermark=utc_now(), items=1, build_reads=0)
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    assert s3.get_object_tagging(Bucket=store.bucket, Key=first.key)["TagSet"] == [
        {"Key": "superseded", "Value": "true"}]
    assert s3.get_object_tagging(Bucket=store.bucket, Key=second.key)["TagSet"] == []


async def test_a_lower_version_never_replaces_a_published_one(store):
    await store.publish(b"new", version=7, watermark=utc_now(), items=1, build_reads=0)
    with pytest.raises(Superseded):
        await store.publish(b"old", version=5, watermark=utc_now(), items=1, build_reads=0)
    assert (await store.latest()).version == 7


async def test_the_manifest_is_replaced_by_compare_and_swap(store, moto_endpoint):
    """A manifest written between a builder's read and its write makes the write fail, not overwrite."""
    await store.publish(b"one", version=1, watermark=utc_now(), items=1, build_reads=0)
    s3_put = store._s3.put_object  # noqa: SLF001 - interpose between the read and the conditional write

    async def racing_put(**request):
        if request["Key"].endswith("latest.json"):
            boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").put_object(
                Bucket=store.bucket, Key=request["Key"], Body=b'{"racer": true}')
        return await s3_put(**request)

    store._s3.put_object = racing_put  # noqa: SLF001 - the store's S3 client raced at its PutObject
    try:
        with pytest.raises(Superseded):
            await store.publish(b"two", version=2, watermark=utc_now(), items=1, build_reads=0)
    finally:
        store._s3.put_object = s3_put  # noqa: SLF001 - the store's S3 client raced at its PutObject


async def test_the_lease_has_one_holder_growing_fencing_tokens_and_expires(redis):
    kind = f"lease-{uuid.uuid4().hex[:6]}"
    first, second = Lease(redis, kind, ttl_seconds=1), Lease(redis, kind, ttl_seconds=1)
    token = await first.acquire()
    assert token is not None and await second.acquire() is None
    assert not await second.renew() and await first.renew()
    await asyncio.sleep(1.2)  # first stops renewing (it died): the lease expires
    taken = await second.acquire()
    assert taken is not None and taken > token
    assert not await first.renew()  # the old holder cannot get it back
    await second.release()
    assert await first.acquire() > taken


class SlowBuild:
    def __init__(self, seconds: float, payload: bytes = b"built") -> None:
        self.seconds = seconds
        self.payload = payload
        self.calls = 0

    async def __call__(self, previous):
        self.calls += 1
        await asyncio.sleep(self.seconds)
        return Built(self.payload, utc_now(), 1, 10)


async def test_builders_started_together_build_exactly_once(store, redis):
    builds = [SlowBuild(0.3) for _ in range(4)]
    outcomes = await asyncio.gather(*(build_once(Lease(redis, store.kind), store, b) for b in builds))
    assert sorted(outcomes) == ["busy", "busy", "busy", "published"]
    assert sum(b.calls for b in builds) == 1


async def test_a_builder_that_dies_mid_build_lets_the_next_take_over(store, redis):
    dead = Lease(redis, store.kind, ttl_seconds=1)
    stale_token = await dead.acquire()  # acquired, then the process died: never renewed, never released
    assert await build_once(Lease(redis, store.kind, ttl_seconds=1), store, SlowBuild(0)) == "busy"
    await asyncio.sleep(1.2)
    assert await build_once(Lease(redis, store.kind, ttl_seconds=1), store, SlowBuild(0)) == "published"
    published = await store.latest()
    assert published.version > stale_token
    with pytest.raises(Superseded):  # had it woken up and finished, its older token loses
        await store.publish(b"late", version=stale_token, watermark=utc_now(), items=1, build_reads=0)


async def test_a_builder_that_loses_its_lease_mid_build_does_not_publish(store, redis):
    lease = Lease(redis, store.kind, ttl_seconds=1)

    class StealingBuild(SlowBuild):
        async def __call__(self, previous):
            await redis.set(f"lease:{store.kind}", b"someone-else")  # e.g. expired during a long pause
            return await super().__call__(previous)

    assert await build_once(lease, store, StealingBuild(0.8)) == "lease_lost"
    assert await store.latest() is None


async def test_nothing_changed_publishes_nothing(store, redis):
    async def unchanged(previous):
        return None

    assert await build_once(Lease(redis, store.kind), store, unchanged) == "unchanged"
    assert await store.latest() is None


def put_book(dynamodb, table: str, book_id: str, stamp: str, **extra) -> None:
    item = {"book_id": {"S": book_id}, "title": {"S": f"Title {book_id}"}}
    item.update({k: {"S": v} for k, v in change_stamp(book_id, stamp).items()})
    item.update({k: {"S": v} for k, v in extra.items()})
    dynamodb.put_item(TableName=table, Item=item)


async def test_the_feed_reads_only_what_changed_after_a_moment_tombstones_included(dynamodb, tables):
    books = tables["books"]
    for i in range(30):
        put_book(dynamodb, books, f"OL{i}W", "2026-12-01T10:00:00.000000Z")
    dynamodb.put_item(TableName=books, Item={"book_id": {"S": "OL99W"}, "title": {"S": "never stamped"}})
    put_book(dynamodb, books, "OL3W", "2026-12-02T10:00:01.000000Z")
    put_book(dynamodb, books, "OL4W", "2026-12-02T10:00:02.000000Z")
    stone = tombstone("OL5W", "2026-12-02T10:00:03.000000Z", 0)
    dynamodb.put_item(TableName=books, Item={k: ({"N": str(v)} if isinstance(v, int) else {"S": v})
                                             for k, v in stone.items()})
    async with dynamodb_client(ServiceSettings()) as client:
        feed = ChangeFeed(client, books, "book_id, title")
        after = epoch_of("2026-12-02T10:00:00.000000Z")
        records = await feed.since(after, after + 60)
        assert [r["book_id"] for r in records] == ["OL3W", "OL4W", "OL5W"]
        assert feed.items_read == 3  # the 28 unchanged books and the unstamped one are never read
        changed, deleted = latest_of(records)
        assert [c["book_id"] for c in changed] == ["OL3W", "OL4W"] and deleted == ["OL5W"]
        assert await feed.changed_since(after) and not await feed.changed_since(after + 10)
        with pytest.raises(FeedGap):
            await feed.since(after, after + FEED_RETENTION_SECONDS + 1)


def test_stamps_round_trip():
    assert iso_stamp(epoch_of("2026-12-02T10:00:03.250000Z")) == "2026-12-02T10:00:03.250000Z"


async def test_a_redis_that_lost_the_fencing_counter_does_not_block_publishing(store, redis):
    await store.publish(b"old", version=41, watermark=utc_now(), items=1, build_reads=0)
    lease = Lease(redis, store.kind)
    await redis.delete(f"lease-fence:{store.kind}")  # a failover without persistence
    assert await build_once(lease, store, SlowBuild(0)) == "published"
    assert (await store.latest()).version == 42


async def test_leases_of_fleets_sharing_a_redis_are_apart(redis):
    kind = f"lease-{uuid.uuid4().hex[:6]}"
    assert await Lease(redis, kind, namespace="fleet-a").acquire() is not None
    assert await Lease(redis, kind, namespace="fleet-b").acquire() is not None
    assert await Lease(redis, kind, namespace="fleet-a").acquire() is None


async def test_a_follower_backs_off_while_the_store_is_away_and_keeps_what_it_has(store):
    installed: list[bytes] = []

    async def install(manifest, payload):
        installed.append(payload)

    follower = ArtifactFollower(store, install, poll_seconds=10)
    assert follower.waiting and not await follower.check()  # nothing published: waiting, not failing
    await store.publish(b"v1", version=1, watermark=utc_now(), items=1, build_reads=0)
    assert await follower.check() and installed == [b"v1"] and follower.state()["artifact_version"] == 1
    real_latest = store.latest

    async def unreachable():
        raise ConnectionError("S3 unreachable")

    store.latest = unreachable
    assert [await follower.look() for _ in range(8)] == [20, 40, 80, 160, 320, 600, 600, 600]
    assert "S3 unreachable" in follower.error and follower.manifest.version == 1
    with pytest.raises(RuntimeError, match="unreachable"):
        await artifacts_reachable(follower)
    store.latest = real_latest
    await store.publish(b"v2", version=2, watermark=utc_now(), items=1, build_reads=0)
    assert await follower.look() == 10 and follower.error is None and installed == [b"v1", b"v2"]
    await artifacts_reachable(follower)


async def test_a_follower_skips_a_refused_version_until_a_newer_one(store, moto_endpoint):
    installed: list[bytes] = []

    async def install(manifest, payload):
        installed.append(payload)

    follower = ArtifactFollower(store, install)
    bad = await store.publish(b"good bytes", version=1, watermark=utc_now(), items=1, build_reads=0)
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").put_object(
        Bucket=store.bucket, Key=bad.key, Body=b"evil bytes")
    assert not await follower.check() and not await follower.check() and installed == []
    await store.publish(b"fixed", version=2, watermark=utc_now(), items=1, build_reads=0)
    assert await follower.check() and installed == [b"fixed"]


async def test_a_payload_that_cannot_be_decoded_is_refused_not_taken_for_an_outage(store):
    async def install(manifest, payload):
        if payload == b"format 2":
            raise UnreadableArtifact("format 2, expected 1")

    follower = ArtifactFollower(store, install)
    before = refused(store.kind, "format")
    await store.publish(b"format 2", version=1, watermark=utc_now(), items=1, build_reads=0)
    assert not await follower.check() and follower.error is None and follower.manifest is None
    assert refused(store.kind, "format") == before + 1
    assert not await follower.check() and refused(store.kind, "format") == before + 1  # not fetched again
