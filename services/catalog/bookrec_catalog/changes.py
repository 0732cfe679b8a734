"""The books change feed: what every writer of a book stamps, and what a reader asks for.

Every write of a book item (the ETL's imports and deletions, the ratings service's aggregate
updates) stamps `changed_at` (the writer's clock, `catalog.utc_now()` form, so stamps sort as
strings) and `change_shard`. The `changes` GSI, (change_shard, changed_at), then lets a reader
fetch exactly the books changed after a moment: one Query per shard, each reading only the
changed items, whatever the table's size. Shards spread the GSI's writes, since a single
partition key takes at most 1,000 writes a second (8 shards: an import at up to ~8,000 books/s).

A deleted book is a tombstone: the item keeps only its id and these stamps plus `deleted_at`
and `expires_at` (the table's TTL attribute), so the deletion travels through the same feed and
then disappears. A reader whose position is older than `FEED_RETENTION_SECONDS` may have missed
a tombstone and must reload from a snapshot instead.
"""

from __future__ import annotations

import zlib
from typing import Any

CHANGES_INDEX = "changes"
CHANGE_SHARDS = 8
FEED_RETENTION_SECONDS = 7 * 86_400
# DynamoDB's TTL deletes expired items within a few days of expiry, never before: tombstones outlive
# the retention readers rely on by a day at least.
TOMBSTONE_LIFETIME_SECONDS = FEED_RETENTION_SECONDS + 86_400


def change_shard(book_id: str) -> str:
    """The feed shard of a book: fixed per book, so its changes stay in order within one shard."""
    return str(zlib.crc32(book_id.encode()) % CHANGE_SHARDS)


def change_stamp(book_id: str, now: str) -> dict[str, str]:
    """The attributes every write of a book sets, `now` being `catalog.utc_now()`."""
    return {"changed_at": now, "change_shard": change_shard(book_id)}


def tombstone(book_id: str, now: str, epoch_seconds: float) -> dict[str, Any]:
    """The whole item that replaces a deleted book."""
    return {"book_id": book_id, "deleted_at": now, **change_stamp(book_id, now),
            "expires_at": int(epoch_seconds) + TOMBSTONE_LIFETIME_SECONDS}


def is_deleted(record: dict[str, Any]) -> bool:
    return "deleted_at" in record
