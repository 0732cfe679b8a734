"""The only ratings code that talks to DynamoDB: the reader's changes (transactions.py: their write
protocol) and the listings.

Listings are one Query of a newest-first index (a ratings index, or a reader's shelf), one item more than
asked so that a cursor is handed out only when another page exists; a shelf's page then gets its books'
summaries in one BatchGetItem, projected to what a shelf shows.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from tenacity import AsyncRetrying, RetryError, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from bookrec_catalog.changes import is_deleted
from bookrec_catalog.dynamo import from_item
from bookrec_common.clients import probe_table
from bookrec_common.errors import DependencyUnavailable
from bookrec_ratings.domain import RatingAggregate, ShelfCounts, user_shelf
from bookrec_ratings.transactions import ReaderChange, ReaderWrites

__all__ = ["BookCounts", "Page", "RatingStore", "ReaderChange"]

BOOK_RATINGS_INDEX = "by-book-recent"
USER_RATINGS_INDEX = "by-user"
SHELF_INDEX = "by-user-shelf"
BATCH_GET_MAX_ATTEMPTS = 6
# What a shelf shows of each book (deleted_at: a tombstone shows as a book no longer in the catalogue).
_SUMMARY_NAMES = ("book_id", "title", "authors", "cover_id", "cover_url", "deleted_at")
_COUNTS_PROJECTION = "book_id, ratings_distribution, shelf_counts, deleted_at"


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    last_key: dict[str, str] | None


@dataclass(frozen=True)
class BookCounts:
    aggregate: RatingAggregate
    shelves: ShelfCounts


class _Unprocessed(Exception):
    """DynamoDB left keys of a batch unprocessed (throttling): ask again for those."""


class RatingStore(ReaderWrites):
    async def ping(self) -> None:
        probes = [probe_table(self._client, self._books, {"book_id": "OL0W"}),
                  probe_table(self._client, self._ratings, {"book_id": "OL0W", "user_id": "-"})]
        if self._shelves:
            probes.append(probe_table(self._client, self._shelves, {"book_id": "OL0W", "user_id": "-"}))
        await asyncio.gather(*probes)

    async def book_counts(self, book_id: str) -> BookCounts | None:
        """The live book's rating aggregate and shelf counts; None when there is no book or a tombstone."""
        response = await self._client.get_item(
            TableName=self._books, Key={"book_id": {"S": book_id}}, ConsistentRead=True,
            ProjectionExpression=_COUNTS_PROJECTION)
        record = from_item(response["Item"]) if response.get("Item") else None
        if record is None or is_deleted(record):
            return None
        return BookCounts(RatingAggregate.from_record(record), ShelfCounts.from_record(record))

    async def _query(self, index: str, key_name: str, key_value: str, limit: int,
                     start: dict[str, str] | None, table: str | None = None, moment: str = "updated_at") -> Page:
        """One page of `index` (of `table`, the ratings table by default), newest first; its cursor key is
        the last item's key in the table and the index (`moment` the index's sort key)."""
        # One item more than asked: a cursor is handed out only when another page really exists.
        request: dict[str, Any] = {
            "TableName": table or self._ratings, "IndexName": index,
            "KeyConditionExpression": f"{key_name} = :k",
            "ExpressionAttributeValues": {":k": {"S": key_value}},
            "ScanIndexForward": False, "Limit": limit + 1,
        }
        if start:
            request["ExclusiveStartKey"] = {k: {"S": v} for k, v in start.items()}
        response = await self._client.query(**request)
        items = [from_item(i) for i in response.get("Items", [])]
        if len(items) > limit:
            items = items[:limit]
            last = items[-1]
            return Page(items, {name: last[name] for name in ("book_id", "user_id", key_name, moment)})
        # Fewer items than asked with a LastEvaluatedKey: DynamoDB's 1 MB page limit, more may follow.
        last_key = response.get("LastEvaluatedKey")
        return Page(items, {k: v["S"] for k, v in last_key.items()} if last_key else None)

    async def ratings_of_book(self, book_id: str, limit: int, start: dict[str, str] | None) -> Page:
        return await self._query(BOOK_RATINGS_INDEX, "book_id", book_id, limit, start)

    async def ratings_of_user(self, user_id: str, limit: int, start: dict[str, str] | None) -> Page:
        return await self._query(USER_RATINGS_INDEX, "user_id", user_id, limit, start)

    async def shelf_of_user(self, user_id: str, shelf: str, limit: int, start: dict[str, str] | None) -> Page:
        if self._shelves is None:
            raise RuntimeError("this store was built without a shelves table")
        return await self._query(SHELF_INDEX, "user_shelf", user_shelf(user_id, shelf), limit, start,
                                 table=self._shelves, moment="shelved_at")

    async def book_summaries(self, book_ids: list[str]) -> dict[str, dict[str, Any]]:
        """What a shelf shows of each book (up to 100 ids, one BatchGetItem plus retries of unprocessed
        keys); a tombstone comes back as {book_id, deleted_at}, an unknown id not at all."""
        if not book_ids:
            return {}
        names = {f"#n{i}": name for i, name in enumerate(_SUMMARY_NAMES)}
        request: dict[str, Any] = {self._books: {
            "Keys": [{"book_id": {"S": b}} for b in dict.fromkeys(book_ids)],
            "ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}}
        found: dict[str, dict[str, Any]] = {}
        retrying = AsyncRetrying(stop=stop_after_attempt(BATCH_GET_MAX_ATTEMPTS),
                                 wait=wait_random_exponential(multiplier=0.05),
                                 retry=retry_if_exception_type(_Unprocessed))
        try:
            async for attempt in retrying:
                with attempt:
                    response = await self._client.batch_get_item(RequestItems=request)
                    for item in response.get("Responses", {}).get(self._books, []):
                        record = from_item(item)
                        found[record["book_id"]] = record
                    request = response.get("UnprocessedKeys") or {}
                    if request:
                        raise _Unprocessed
        except RetryError:
            raise DependencyUnavailable("the books table kept returning unprocessed keys; retry shortly",
                                        code="batch_incomplete", headers={"Retry-After": "1"}) from None
        return found
