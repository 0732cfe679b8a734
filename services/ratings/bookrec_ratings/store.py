"""The only ratings code that talks to DynamoDB.

A change is read-compute-write: both items are read in one TransactGetItems
(a consistent snapshot), the new aggregate is computed by the domain, and
one TransactWriteItems writes the rating item and the book's aggregate,
each conditioned on what was read (the rating's previous state, the book's
`rating_version`). A lost race cancels the whole transaction; we re-read and
retry. Within one process, writers to the same book queue on a lock so they
do not waste transactions racing each other; across replicas the conditions
keep it exact.
"""

from __future__ import annotations

import asyncio
import random
import weakref
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from bookrec_common.clients import probe_table
from bookrec_common.dynamo import from_item, to_attribute
from bookrec_common.errors import DependencyUnavailable, NotFound

from bookrec_ratings.domain import RatingAggregate

_RETRYABLE = {"TransactionCanceledException", "TransactionConflictException"}
BOOK_RATINGS_INDEX = "by-book-recent"
USER_RATINGS_INDEX = "by-user"


@dataclass(frozen=True)
class RatingChange:
    previous: dict[str, Any] | None
    current: dict[str, Any] | None
    aggregate: RatingAggregate


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    last_key: dict[str, str] | None


class RatingStore:
    def __init__(self, client: Any, books_table: str, ratings_table: str, max_attempts: int = 12) -> None:
        self._client = client
        self._books = books_table
        self._ratings = ratings_table
        self._max_attempts = max_attempts
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self.conflicts = 0  # lost races, for metrics and tests

    async def ping(self) -> None:
        await asyncio.gather(probe_table(self._client, self._books, {"book_id": "OL0W"}),
                             probe_table(self._client, self._ratings, {"book_id": "OL0W", "user_id": "-"}))

    async def book_aggregate(self, book_id: str) -> RatingAggregate | None:
        response = await self._client.get_item(
            TableName=self._books, Key={"book_id": {"S": book_id}},
            ProjectionExpression="book_id, ratings_distribution")
        item = response.get("Item")
        return RatingAggregate.from_record(from_item(item)) if item else None

    async def _snapshot(self, book_id: str, user_id: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        response = await self._client.transact_get_items(TransactItems=[
            {"Get": {"TableName": self._books, "Key": {"book_id": {"S": book_id}},
                     "ProjectionExpression": "book_id, ratings_distribution, rating_version"}},
            {"Get": {"TableName": self._ratings, "Key": {"book_id": {"S": book_id}, "user_id": {"S": user_id}}}},
        ])
        book, rating = (from_item(r["Item"]) if r.get("Item") else None for r in response["Responses"])
        return book, rating

    async def change(self, book_id: str, user_id: str, new_rating: int | None, now: str) -> RatingChange:
        """Set (new_rating) or remove (None) one user's rating of one book, with its aggregate."""
        lock = self._locks.get(book_id)
        if lock is None:
            lock = self._locks[book_id] = asyncio.Lock()
        async with lock:
            for attempt in range(self._max_attempts):
                book, previous = await self._snapshot(book_id, user_id)
                if book is None:
                    raise NotFound(f"book {book_id} not found", code="book_not_found")
                if new_rating is None and previous is None:
                    raise NotFound(f"user {user_id} has not rated book {book_id}", code="rating_not_found")
                aggregate = RatingAggregate.from_record(book).apply(
                    previous["rating"] if previous else None, new_rating)
                current = None if new_rating is None else {
                    "book_id": book_id, "user_id": user_id, "rating": new_rating,
                    "created_at": previous["created_at"] if previous else now, "updated_at": now}
                try:
                    await self._client.transact_write_items(TransactItems=[
                        self._rating_write(book_id, user_id, previous, current),
                        self._aggregate_write(book_id, book.get("rating_version"), aggregate, now),
                    ])
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") not in _RETRYABLE:
                        raise
                    self.conflicts += 1
                    await asyncio.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))
                    continue
                return RatingChange(previous, current, aggregate)
        raise DependencyUnavailable(f"book {book_id} is being rated too busily; retry shortly",
                                    code="write_contention")

    def _rating_write(self, book_id: str, user_id: str, previous: dict[str, Any] | None,
                      current: dict[str, Any] | None) -> dict[str, Any]:
        key = {"book_id": {"S": book_id}, "user_id": {"S": user_id}}
        if previous is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(user_id)"}
        else:
            condition = {"ConditionExpression": "rating = :prev_rating AND updated_at = :prev_updated",
                         "ExpressionAttributeValues": {":prev_rating": to_attribute(previous["rating"]),
                                                       ":prev_updated": to_attribute(previous["updated_at"])}}
        if current is None:
            return {"Delete": {"TableName": self._ratings, "Key": key, **condition}}
        item = {k: to_attribute(v) for k, v in current.items()}
        return {"Put": {"TableName": self._ratings, "Item": item, **condition}}

    def _aggregate_write(self, book_id: str, version: int | None, aggregate: RatingAggregate,
                         now: str) -> dict[str, Any]:
        values = {
            ":dist": to_attribute(aggregate.distribution), ":sum": to_attribute(aggregate.total),
            ":count": to_attribute(aggregate.count), ":avg": to_attribute(aggregate.average),
            ":now": to_attribute(now), ":next": to_attribute((version or 0) + 1),
        }
        if version is None:
            condition = "attribute_exists(book_id) AND attribute_not_exists(rating_version)"
        else:
            condition = "rating_version = :version"
            values[":version"] = to_attribute(version)
        return {"Update": {
            "TableName": self._books, "Key": {"book_id": {"S": book_id}},
            "UpdateExpression": "SET ratings_distribution = :dist, rating_sum = :sum, rating_count = :count, "
                                "avg_rating = :avg, updated_at = :now, rating_version = :next",
            "ConditionExpression": condition, "ExpressionAttributeValues": values,
        }}

    async def _query(self, index: str, key_name: str, key_value: str, limit: int,
                     start: dict[str, str] | None) -> Page:
        request: dict[str, Any] = {
            "TableName": self._ratings, "IndexName": index,
            "KeyConditionExpression": f"{key_name} = :k",
            "ExpressionAttributeValues": {":k": {"S": key_value}},
            "ScanIndexForward": False, "Limit": limit,
        }
        if start:
            request["ExclusiveStartKey"] = {k: {"S": v} for k, v in start.items()}
        response = await self._client.query(**request)
        last = response.get("LastEvaluatedKey")
        return Page([from_item(i) for i in response.get("Items", [])],
                    {k: v["S"] for k, v in last.items()} if last else None)

    async def ratings_of_book(self, book_id: str, limit: int, start: dict[str, str] | None) -> Page:
        return await self._query(BOOK_RATINGS_INDEX, "book_id", book_id, limit, start)

    async def ratings_of_user(self, user_id: str, limit: int, start: dict[str, str] | None) -> Page:
        return await self._query(USER_RATINGS_INDEX, "user_id", user_id, limit, start)
