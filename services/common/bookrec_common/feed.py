"""Reading the books change feed (see `bookrec_catalog.changes`), and counting what DynamoDB reads.

`ChangeFeed.since(moment)` runs one Query per shard of the `changes` GSI for the books whose
`changed_at` is after `moment`: it reads the changed items and nothing else, so its cost follows the
rate of change, not the size of the table. Readers ask from their previous position less an overlap
(writers' clocks, the GSI's propagation delay): with an overlap shorter than the refresh period a
change is read at most twice.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from prometheus_client import Counter

from bookrec_catalog.catalog import iso_stamp
from bookrec_catalog.changes import CHANGE_SHARDS, CHANGES_INDEX, FEED_RETENTION_SECONDS
from bookrec_catalog.dynamo import from_item

ITEMS_READ = Counter("dynamodb_items_read_total",
                     "Items DynamoDB read (and bills), from ScannedCount: serving requests, "
                     "following the change feed, building derived state", ["purpose"])


def count_read(purpose: str, response: dict[str, Any]) -> int:
    """Count one Query or Scan response's items read (ScannedCount: what is billed, filter or not)."""
    return count_items(purpose, int(response.get("ScannedCount", response.get("Count",
                                                                             len(response.get("Items", []))))))


def count_items(purpose: str, read: int) -> int:
    """Count items read by a GetItem or BatchGetItem (the items returned)."""
    ITEMS_READ.labels(purpose).inc(read)
    return read


def epoch_of(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


class FeedGap(Exception):
    """The position is older than the feed's retention: deletions may have been missed."""


class ChangeFeed:
    def __init__(self, client: Any, books_table: str, projection: str | None = None,
                 names: dict[str, str] | None = None) -> None:
        self._client = client
        self._table = books_table
        self._projection = projection
        self._names = names
        self.items_read = 0  # by this reader, for benchmarks and logs

    def _request(self, shard: int, after: str) -> dict[str, Any]:
        request: dict[str, Any] = {
            "TableName": self._table, "IndexName": CHANGES_INDEX,
            "KeyConditionExpression": "change_shard = :shard AND changed_at > :after",
            "ExpressionAttributeValues": {":shard": {"S": str(shard)}, ":after": {"S": after}},
        }
        if self._projection:
            # Tombstones must come through whatever else is asked for.
            request["ProjectionExpression"] = f"{self._projection}, changed_at, deleted_at"
        if self._names:
            request["ExpressionAttributeNames"] = self._names
        return request

    async def since(self, after: float, now: float) -> list[dict[str, Any]]:
        """Every book changed after `after` (epoch seconds), tombstones included, oldest change first."""
        if now - after > FEED_RETENTION_SECONDS:
            raise FeedGap(f"position {iso_stamp(after)} is older than the feed's retention "
                          f"({FEED_RETENTION_SECONDS // 86_400} days)")

        async def shard(number: int) -> list[dict[str, Any]]:
            request = self._request(number, iso_stamp(after))
            records: list[dict[str, Any]] = []
            while True:
                response = await self._client.query(**request)
                self.items_read += count_read("feed", response)
                records += (from_item(item) for item in response.get("Items", []))
                if "LastEvaluatedKey" not in response:
                    return records
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

        parts = await asyncio.gather(*(shard(n) for n in range(CHANGE_SHARDS)))
        return sorted((r for part in parts for r in part), key=lambda r: r.get("changed_at", ""))

    async def changed_since(self, after: float) -> bool:
        """Whether any book changed after `after`: at most one item read per shard."""
        async def shard(number: int) -> bool:
            request = {**self._request(number, iso_stamp(after)), "Limit": 1,
                       "ProjectionExpression": "book_id"}
            request.pop("ExpressionAttributeNames", None)
            response = await self._client.query(**request)
            self.items_read += count_read("feed", response)
            return bool(response.get("Items"))

        return any(await asyncio.gather(*(shard(n) for n in range(CHANGE_SHARDS))))


def latest_of(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """(books to add or replace, ids to delete): each book's latest change only."""
    latest: dict[str, dict[str, Any]] = {}
    for record in records:
        book_id = record.get("book_id")
        if isinstance(book_id, str):
            latest[book_id] = record
    changed = [r for r in latest.values() if "deleted_at" not in r]
    deleted = [b for b, r in latest.items() if "deleted_at" in r]
    return changed, deleted
