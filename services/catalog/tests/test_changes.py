"""The change feed's stamps and tombstones (bookrec_catalog.changes): pure, no I/O."""

from __future__ import annotations

from bookrec_catalog.catalog import utc_now
from bookrec_catalog.changes import (
    CHANGE_SHARDS,
    FEED_RETENTION_SECONDS,
    TOMBSTONE_LIFETIME_SECONDS,
    change_shard,
    change_stamp,
    is_deleted,
    tombstone,
)


def test_a_books_shard_is_fixed_and_the_shards_are_all_used():
    ids = [f"OL{n}W" for n in range(1, 2001)] + [f"GB{n}" for n in range(1, 2001)]
    shards = [change_shard(book_id) for book_id in ids]
    assert shards == [change_shard(book_id) for book_id in ids]
    assert set(shards) == {str(shard) for shard in range(CHANGE_SHARDS)}
    # roughly even: no shard takes twice its share of an import's writes
    assert max(shards.count(s) for s in set(shards)) < 2 * len(ids) / CHANGE_SHARDS


def test_a_stamp_is_the_writers_time_and_the_books_shard():
    now = utc_now()
    assert change_stamp("OL1W", now) == {"changed_at": now, "change_shard": change_shard("OL1W")}


def test_a_tombstone_keeps_only_the_id_and_the_feeds_attributes_and_outlives_the_retention():
    now = utc_now()
    dead = tombstone("GB7", now, 1_000_000.9)
    assert dead == {"book_id": "GB7", "deleted_at": now, "changed_at": now,
                    "change_shard": change_shard("GB7"), "expires_at": 1_000_000 + TOMBSTONE_LIFETIME_SECONDS}
    assert TOMBSTONE_LIFETIME_SECONDS > FEED_RETENTION_SECONDS
    assert is_deleted(dead) and not is_deleted({"book_id": "GB7", "title": "T", **change_stamp("GB7", now)})
