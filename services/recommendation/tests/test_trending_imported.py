"""Open Library's dated dump events reach trending: crafted ratings and reading-log dumps in the real format go
through `bookrec-etl extract` and `load` (moto server over HTTP), the builder's run sets each book's share of the
counts in a real Redis, and GET /trending ranks them beside readers' own events; importing the same dumps again,
running the builder again, a full resync or Redis losing everything never counts them twice."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from click.testing import CliRunner
from litestar.testing import AsyncTestClient

from bookrec_catalog.catalog import with_derived_attributes
from bookrec_catalog.dynamo import to_item
from bookrec_common.activity import ActivityLog
from bookrec_common.artifacts import ArtifactStore
from bookrec_common.builder import build_once
from bookrec_common.clients import dynamodb_client, s3_client
from bookrec_common.feed import ChangeFeed
from bookrec_common.lease import Lease
from bookrec_etl.cli import main as etl_main
from bookrec_recommendation.app import create_app
from bookrec_recommendation.artifact import KIND
from bookrec_recommendation.builder import ModelBuild
from bookrec_recommendation.store import RatingsSource
from bookrec_recommendation.trending import imported_hours
from bookrec_recommendation.trending_store import ActivityTables, ImportedActivity, keep_trending, sync_imported

from .test_api import seed, settings_for, wait_ready
from .test_artifacts import settings_for_tables
from .test_trending import refreshed, stamp

TODAY = datetime.now(UTC).date()
LONG_AGO = "2017-09-01T00:00:00.000000Z"


def day(days_ago: int) -> str:
    return (TODAY - timedelta(days=days_ago)).isoformat()


def dump_line(kind: str, key: str, doc: str) -> str:
    return f"{kind}\t{key}\t1\t2020-01-01T00:00:00.000000\t{doc}\n"


WORKS = "".join(dump_line("/type/work", f"/works/OL{n}W", f'{{"key": "/works/OL{n}W", "title": "Dumped {n}"}}')
                for n in (101, 103, 105)) + \
    dump_line("/type/redirect", "/works/OL102W", '{"location": "/works/OL101W"}')
# OL105W: 4 reading-log lines and a rating in the month, one of them today; OL101W: its own and its redirect's
# lines of the last 30 days (the 40-day-old line and the rating 30 days before the newest date are older).
READING_LOG = "".join(f"{work}\t{edition}\t{shelf}\t{date}\n" for work, edition, shelf, date in [
    ("/works/OL101W", "", "Want to Read", day(1)), ("/works/OL101W", "\\N", "Already Read", day(40)),
    ("/works/OL102W", "/books/OL7M", "Currently Reading", day(2)), ("/works/OL102W", "", "Want to Read", day(2)),
    *[("/works/OL105W", "\\N", "Want to Read", day(3))] * 3, ("/works/OL105W", "", "Already Read", day(0))])
RATINGS = f"/works/OL105W\t\t5\t{day(3)}\n/works/OL102W\t\\N\t4\t{day(29)}\n/works/OL101W\t\t3\t{day(30)}\n"


def import_dumps(tmp_path: Path, reading_log: str = READING_LOG) -> str:
    """The monthly job: extract the dumps, then load the books (tables from the environment)."""
    tmp_path.mkdir()
    (tmp_path / "works.txt").write_text(WORKS)
    (tmp_path / "ratings.txt").write_text(RATINGS)
    (tmp_path / "reading-log.txt").write_text(reading_log)
    runner = CliRunner()
    extracted = runner.invoke(etl_main, ["extract", "--works", str(tmp_path / "works.txt"),
                                         "--ratings", str(tmp_path / "ratings.txt"),
                                         "--reading-log", str(tmp_path / "reading-log.txt"),
                                         "--out", str(tmp_path / "books.jsonl")])
    assert extracted.exit_code == 0, extracted.output
    loaded = runner.invoke(etl_main, ["load", str(tmp_path / "books.jsonl")])
    assert loaded.exit_code == 0, loaded.output
    return loaded.output


@pytest.fixture
async def redis(redis_url):
    client = aioredis.from_url(redis_url)
    async for key in client.scan_iter(match="trending:*"):  # the service's keys are fixed: start from none
        await client.delete(key)
    await client.delete("lease:trending-counts")
    yield client
    await client.aclose()


@pytest.fixture
async def builder(tables, redis, artifact_bucket):
    """(run, imported): run() is the builder's run (model and trending, under its lease); `imported.reads`
    counts the books' items it read for imported activity."""
    settings = settings_for_tables(tables)
    async with dynamodb_client(settings) as client, s3_client(settings) as s3:
        activity = ActivityLog(redis)
        activity_tables = ActivityTables(client, tables["ratings"], tables["shelves"])
        imported = ImportedActivity(client, tables["books"])
        model_build = ModelBuild(RatingsSource(client, tables["books"], tables["ratings"]),
                                 ChangeFeed(client, tables["books"]), neighbours=5, regularisation=1.0,
                                 margin_seconds=0,
                                 trending=lambda: keep_trending(activity, activity_tables, imported))
        store = ArtifactStore(s3, artifact_bucket, KIND)
        lease = Lease(redis, f"builder-{artifact_bucket}", ttl_seconds=10)

        async def run() -> str:
            return await build_once(lease, store, model_build)

        yield run, imported


async def rankings(service, redis) -> dict[str, list[tuple[str, int]]]:
    await refreshed(service, redis)
    return {window: [(item["book_id"], item["events"])
                     for item in (await service.get(f"/trending?window={window}")).json()["items"]]
            for window in ("day", "week", "month")}


async def test_the_dumps_dated_events_trend_once_however_often_they_are_imported_or_applied(
        tables, dynamodb, redis, redis_url, issuer, builder, tmp_path):
    run, imported = builder
    seed(dynamodb, tables)  # readers' ratings of other books, for the model; then dated long ago, in no window
    for item in dynamodb.scan(TableName=tables["ratings"])["Items"]:
        dynamodb.put_item(TableName=tables["ratings"], Item={**item, "created_at": {"S": LONG_AGO},
                                                             "updated_at": {"S": LONG_AGO}})
    assert "written 3" in import_dumps(tmp_path / "first")
    # A reader of the stack rates OL103W now: the write path's event, beside the dumps' anonymous ones.
    now = stamp(time.time() - 60)
    dynamodb.put_item(TableName=tables["ratings"], Item={
        "book_id": {"S": "OL103W"}, "user_id": {"S": "reader-1"}, "rating": {"N": "4"},
        "created_at": {"S": now}, "updated_at": {"S": now}})
    await ActivityLog(redis).record("OL103W", "reader-1", now)
    assert await run() == "published"
    expected = {"day": [("OL103W", 1), ("OL105W", 1)],
                "week": [("OL105W", 5), ("OL101W", 3), ("OL103W", 1)],
                "month": [("OL105W", 5), ("OL101W", 4), ("OL103W", 1)]}
    # A replica of its own model (no bucket: its trending lease is the one `refreshed` drops).
    async with AsyncTestClient(create_app(settings_for(tables, redis_url, issuer, artifact_bucket="",
                                                       trending_refresh_seconds=0.1))) as service:
        await wait_ready(service)
        assert await rankings(service, redis) == expected
        month = (await service.get("/trending?window=month")).json()["items"]
        assert month[0]["title"] == "Dumped 105"

        # The same dumps again: the load writes nothing, the builder's runs set nothing new.
        assert "written 0" in import_dumps(tmp_path / "second")
        reads = imported.reads
        assert await run() == "unchanged" and await run() == "unchanged"
        assert await rankings(service, redis) == expected
        # Each run reads the feed since the last one (less a 5 s overlap): at most the 3 loaded books again,
        # never the whole table (15 books).
        assert imported.reads - reads <= 2 * 3
        # A full resync (the position lost): every book's share set again, nothing counted twice.
        await redis.delete("trending:imported-position")
        assert await run() == "unchanged"
        assert await rankings(service, redis) == expected

        # Redis loses everything: the tables and the books' imported activity bring the same rankings back.
        async for key in redis.scan_iter(match="trending:*"):
            await redis.delete(key)
        assert await run() == "unchanged"
        assert await rankings(service, redis) == expected

        # The next dump: OL105W's reading-log lines of 3 days ago are gone. Its share moves by the difference.
        later = READING_LOG.replace(f"/works/OL105W\t\\N\tWant to Read\t{day(3)}\n", "")
        assert "written 1" in import_dumps(tmp_path / "third", later)
        assert await run() in ("published", "unchanged")
        assert (await rankings(service, redis))["month"] == [("OL101W", 4), ("OL105W", 2), ("OL103W", 1)]


async def test_past_the_feeds_retention_a_scan_resyncs_and_clears_the_shares_of_books_that_lost_theirs(
        tables, dynamodb, redis):
    for book_id, days in (("OL201W", {day(1): 2}), ("OL202W", {day(2): 3})):
        dynamodb.put_item(TableName=tables["books"], Item=to_item(with_derived_attributes(
            {"book_id": book_id, "title": book_id, "imported_activity": days})))
    activity = ActivityLog(redis)
    async with dynamodb_client(settings_for_tables(tables)) as client:
        source = ImportedActivity(client, tables["books"])
        assert await sync_imported(activity, source) == 2  # no position yet: a Scan
        assert dict((await activity.counts()).windows[720]) == {"OL202W": 3, "OL201W": 2}
        # OL201W's activity goes while the builder is away longer than the feed keeps changes.
        dynamodb.update_item(TableName=tables["books"], Key={"book_id": {"S": "OL201W"}},
                             UpdateExpression="REMOVE imported_activity")
        await activity.set_imported_position(0.0)
        assert await sync_imported(activity, source) == 1  # the Scan, and OL201W's share cleared
        assert dict((await activity.counts()).windows[720]) == {"OL202W": 3}
        assert await sync_imported(activity, source) == 0


def test_imported_hours_put_each_day_at_its_first_hour_and_leave_out_what_is_not_kept():
    now_hour = (datetime.combine(TODAY, datetime.min.time(), UTC).timestamp() // 3600) + 5
    midnight = int(now_hour) - 5
    assert imported_hours({day(0): 2, day(1): 3}, int(now_hour), 888) == {midnight: 2, midnight - 24: 3}
    assert imported_hours({day(-1): 1}, int(now_hour), 888) == {int(now_hour): 1}  # ahead of the clock: now
    assert imported_hours({day(40): 1}, int(now_hour), 888) == {}  # older than what is kept
    assert imported_hours({"yesterday": 1}, int(now_hour), 888) == {} == imported_hours(None, int(now_hour), 888)
