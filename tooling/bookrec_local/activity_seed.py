"""Trending on the local stack: the seed's goodbooks ratings replayed as reader activity.

goodbooks ratings carry no time: the ETL stamps them at a fixed old IMPORT_EPOCH, so no trending window
(and no rebuild from the tables) ever sees them. So that `GET /trending` shows something on `make run`,
the stack replays every rating stamped before the month window as an activity event at a made-up
time within the 30 days before the stack starts, chosen by a hash of reader and book (the same on every
start), through the `ActivityLog` the ratings service writes with. These are the seed's real readers and
books at invented times: which books trend in which window says nothing about when they were read.
Ratings and shelvings made on the running stack are counted at their real time, as on AWS.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator

import redis.asyncio as aioredis

from bookrec_common.activity import ActivityEvent, ActivityLog
from bookrec_local import definitions
from bookrec_local.procs import local_dynamodb

SPREAD_SECONDS = 30 * 86400


def replay_time(user_id: str, book_id: str, now: float) -> float:
    """A time within the SPREAD_SECONDS before `now`, fixed by the reader and the book."""
    digest = hashlib.blake2b(f"{user_id}\x00{book_id}".encode(), digest_size=8).digest()
    return now - SPREAD_SECONDS * (int.from_bytes(digest, "big") / 2**64)


def timeless_ratings(endpoint: str, ratings_table: str, before: str) -> Iterator[tuple[str, str]]:
    """(user_id, book_id) of every rating stamped before `before` (imported, so carrying no real time)."""
    paginator = local_dynamodb(endpoint).get_paginator("scan")
    for page in paginator.paginate(TableName=ratings_table, ProjectionExpression="book_id, user_id",
                                   FilterExpression="updated_at < :before",
                                   ExpressionAttributeValues={":before": {"S": before}}):
        for item in page.get("Items", []):
            yield item["user_id"]["S"], item["book_id"]["S"]


async def replay(endpoint: str, ratings_table: str, redis_url: str, now: float | None = None,
                 prefix: str = "trending:") -> int:
    """Replay the timeless ratings into the activity at `redis_url`; how many events were sent."""
    now = time.time() if now is None else now
    before = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(now - SPREAD_SECONDS))
    events = (ActivityEvent(book_id, user_id, replay_time(user_id, book_id, now))
              for user_id, book_id in timeless_ratings(endpoint, ratings_table, before))
    client = aioredis.from_url(redis_url, socket_timeout=10)
    try:
        return await ActivityLog(client, prefix=prefix, clock=lambda: now).add(events)
    finally:
        await client.aclose()


def replay_seed_activity(endpoint: str, table_prefix: str, redis_url: str) -> int:
    """What the stack calls once the seed is loaded (its tables are named by `table_prefix`)."""
    return asyncio.run(replay(endpoint, definitions.table_names(table_prefix)["ratings"], redis_url))
