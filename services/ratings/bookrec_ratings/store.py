"""The only ratings code that talks to DynamoDB.

A change is read-compute-write. Both items are read with strongly consistent
GetItems, the new aggregate is computed by the domain, and one
TransactWriteItems writes the rating item and the book's aggregate, each
conditioned on exactly what was read: the rating's previous value and
timestamp (or its absence), the book's per-star counts (or their absence).
Sum, count and average follow from the counts, so nothing else needs a
condition, and no version attribute is added to the book. A lost race
cancels the whole transaction; we re-read and retry, a bounded number of
times with jittered backoff (tenacity), then answer 503.

Within one process, writers to the same book queue on a lock so they do not
spend transactions racing each other; across replicas the conditions alone
keep the aggregate exact.

The aggregate update is a write of the book, so it stamps the change feed
(bookrec_catalog.changes) with the same `now`. A deleted book is a tombstone:
reads treat it as no book (404), and the update's condition refuses one, so a
book deleted between read and write is re-read and answered 404. Its ratings
stay in the ratings table, and each reader may still delete theirs (a
tombstone, or no item once its TTL removed it, takes that deletion only): the
transaction then deletes the rating, conditioned as any other, beside a
ConditionCheck that the book is still deleted, and leaves the tombstone as it
is: it carries no aggregate, and nothing reads one from it. A book restored in
between fails that check and the deletion is retried as a live book's.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from prometheus_client import Counter, Histogram
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from bookrec_catalog.catalog import STARS
from bookrec_catalog.changes import change_stamp, is_deleted
from bookrec_catalog.dynamo import from_item, to_attribute
from bookrec_common.clients import probe_table
from bookrec_common.errors import DependencyUnavailable, NotFound
from bookrec_ratings.domain import ChangeKind, RatingAggregate, allowed_on_deleted_book, kind_of

BOOK_RATINGS_INDEX = "by-book-recent"
USER_RATINGS_INDEX = "by-user"
# Cancellation reasons that mean "someone else changed what we read": re-read and try again.
_RACE_REASONS = {"None", "ConditionalCheckFailed", "TransactionConflict", "ThrottlingError",
                 "ProvisionedThroughputExceeded"}

log = logging.getLogger("bookrec.ratings.store")
RATING_CHANGES = Counter("rating_changes_total", "Committed rating changes", ["kind"])
RATING_WRITE_CONFLICTS = Counter("rating_write_conflicts_total",
                                 "Rating transactions cancelled by a concurrent change and retried")
RATING_WRITE_GAVE_UP = Counter("rating_write_gave_up_total",
                               "Rating changes refused with 503 after the last retry lost its race")
# Attempts a committed change took (1: no lost race). Integer buckets up to the default 12 attempts, then
# coarser ones for WRITE_MAX_ATTEMPTS raised under heavy contention.
RATING_WRITE_ATTEMPTS = Histogram(
    "rating_write_attempts", "Read-compute-write attempts per committed rating change",
    buckets=(1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32, 64, 128, 256, 512, 1024))
AGGREGATE_DRIFT = Counter("rating_aggregate_drift_total",
                          "Changes that removed a star the book's aggregate did not hold")


@dataclass(frozen=True)
class RatingChange:
    previous: dict[str, Any] | None
    current: dict[str, Any] | None
    aggregate: RatingAggregate | None  # None: the book is deleted (a rating removed from its tombstone)

    @property
    def kind(self) -> ChangeKind:
        return kind_of(self.previous["rating"] if self.previous else None,
                       self.current["rating"] if self.current else None)


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    last_key: dict[str, str] | None


_BOOK_PROJECTION = "book_id, ratings_distribution, deleted_at"


def _live_book(item: dict[str, Any] | None) -> dict[str, Any] | None:
    """The book as read, or None when there is none or only its tombstone."""
    record = from_item(item) if item else None
    return None if record is None or is_deleted(record) else record


_STILL_DELETED = "attribute_not_exists(book_id) OR attribute_exists(deleted_at)"


class _LostRace(Exception):
    """The transaction was cancelled because another writer changed what this one read."""


def _lost_race(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    if error.get("Code") == "TransactionConflictException":
        return True
    if error.get("Code") != "TransactionCanceledException":
        return False
    reasons = exc.response.get("CancellationReasons") or []
    return all(str(reason.get("Code", "None")) in _RACE_REASONS for reason in reasons)


class RatingStore:
    def __init__(self, client: Any, books_table: str, ratings_table: str, max_attempts: int = 12,
                 backoff_cap: float = 0.2) -> None:
        self._client = client
        self._books = books_table
        self._ratings = ratings_table
        self._max_attempts = max_attempts
        self._backoff_cap = backoff_cap
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def ping(self) -> None:
        await asyncio.gather(probe_table(self._client, self._books, {"book_id": "OL0W"}),
                             probe_table(self._client, self._ratings, {"book_id": "OL0W", "user_id": "-"}))

    async def book_aggregate(self, book_id: str) -> RatingAggregate | None:
        response = await self._client.get_item(
            TableName=self._books, Key={"book_id": {"S": book_id}}, ConsistentRead=True,
            ProjectionExpression=_BOOK_PROJECTION)
        book = _live_book(response.get("Item"))
        return RatingAggregate.from_record(book) if book else None

    async def _read(self, book_id: str, user_id: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The live book (None: none, or its tombstone) and the user's rating of it, as stored now."""
        # Two consistent GetItems, not TransactGetItems: a transactional read is itself cancelled by a
        # concurrent write, and the write's conditions catch any skew between the two reads anyway.
        book, rating = await asyncio.gather(
            self._client.get_item(TableName=self._books, Key={"book_id": {"S": book_id}}, ConsistentRead=True,
                                  ProjectionExpression=_BOOK_PROJECTION),
            self._client.get_item(TableName=self._ratings, ConsistentRead=True,
                                  Key={"book_id": {"S": book_id}, "user_id": {"S": user_id}}),
        )
        return (_live_book(book.get("Item")),
                from_item(rating["Item"]) if rating.get("Item") else None)

    async def change(self, book_id: str, user_id: str, new_rating: int | None, now: str) -> RatingChange:
        """Set (new_rating) or remove (None) one user's rating of one book, with its aggregate."""
        lock = self._locks.get(book_id)
        if lock is None:
            lock = self._locks[book_id] = asyncio.Lock()
        # A lost race is read again after a jittered pause, up to 0.005 s x 2^attempt (at most backoff_cap).
        retrying = AsyncRetrying(stop=stop_after_attempt(self._max_attempts),
                                 wait=wait_random_exponential(multiplier=0.01, max=self._backoff_cap),
                                 retry=retry_if_exception_type(_LostRace))
        async with lock:
            try:
                async for attempt in retrying:
                    with attempt:
                        change = await self._attempt(book_id, user_id, new_rating, now)
            except RetryError:
                RATING_WRITE_GAVE_UP.inc()
                raise DependencyUnavailable(f"book {book_id} is being rated too busily; retry shortly",
                                            code="write_contention", headers={"Retry-After": "1"}) from None
        RATING_WRITE_ATTEMPTS.observe(attempt.retry_state.attempt_number)
        RATING_CHANGES.labels(change.kind.value).inc()
        return change

    async def _attempt(self, book_id: str, user_id: str, new_rating: int | None, now: str) -> RatingChange:
        """One read-compute-conditional-write; _LostRace when another writer changed what was read."""
        book, previous = await self._read(book_id, user_id)
        previous_rating = previous["rating"] if previous else None
        current = None if new_rating is None else {
            "book_id": book_id, "user_id": user_id, "rating": new_rating,
            "created_at": previous["created_at"] if previous else now, "updated_at": now}
        after: RatingAggregate | None = None
        if book is None:
            if not allowed_on_deleted_book(previous_rating, new_rating):
                raise NotFound(f"book {book_id} not found", code="book_not_found")
            book_write = self._still_deleted(book_id)
        else:
            if new_rating is None and previous is None:
                raise NotFound(f"user {user_id} has not rated book {book_id}", code="rating_not_found")
            before = RatingAggregate.from_record(book)
            if previous_rating is not None and not before.holds(previous_rating):
                AGGREGATE_DRIFT.inc()
                log.warning("book %s aggregate holds no %s-star rating to remove", book_id, previous_rating,
                            extra={"book_id": book_id})
            after = before.apply(previous_rating, new_rating)
            book_write = self._aggregate_write(book_id, book.get("ratings_distribution"), after, now)
        try:
            await self._client.transact_write_items(TransactItems=[
                self._rating_write(book_id, user_id, previous, current), book_write])
        except ClientError as exc:
            if not _lost_race(exc):
                raise
            RATING_WRITE_CONFLICTS.inc()
            raise _LostRace from exc
        return RatingChange(previous, current, after)

    def _still_deleted(self, book_id: str) -> dict[str, Any]:
        """The book stays deleted (its tombstone, or no item): a rating removed from it leaves no aggregate
        behind that a restored book would still count."""
        return {"ConditionCheck": {"TableName": self._books, "Key": {"book_id": {"S": book_id}},
                                   "ConditionExpression": _STILL_DELETED}}

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

    def _aggregate_write(self, book_id: str, read_distribution: dict[str, Any] | None, after: RatingAggregate,
                         now: str) -> dict[str, Any]:
        names: dict[str, str] = {"#dist": "ratings_distribution"}
        stamp = change_stamp(book_id, now)
        values: dict[str, Any] = {
            ":dist": to_attribute(after.distribution), ":sum": to_attribute(after.total),
            ":count": to_attribute(after.count), ":avg": to_attribute(after.average),
            ":now": to_attribute(now), ":shard": to_attribute(stamp["change_shard"]),
        }
        # The condition is a live book (no tombstone) whose distribution is exactly as read, star by star
        # (absent stays absent).
        conditions = ["attribute_exists(book_id)", "attribute_not_exists(deleted_at)"]
        if read_distribution is None:
            conditions.append("attribute_not_exists(#dist)")
        else:
            for star in STARS:
                names[f"#s{star}"] = star
                if star in read_distribution:
                    values[f":was{star}"] = to_attribute(read_distribution[star])
                    conditions.append(f"#dist.#s{star} = :was{star}")
                else:
                    conditions.append(f"attribute_not_exists(#dist.#s{star})")
        return {"Update": {
            "TableName": self._books, "Key": {"book_id": {"S": book_id}},
            "UpdateExpression": "SET #dist = :dist, rating_sum = :sum, rating_count = :count, "
                                "avg_rating = :avg, updated_at = :now, "
                                "changed_at = :now, change_shard = :shard",
            "ConditionExpression": " AND ".join(conditions),
            "ExpressionAttributeNames": names, "ExpressionAttributeValues": values,
        }}

    async def _query(self, index: str, key_name: str, key_value: str, limit: int,
                     start: dict[str, str] | None) -> Page:
        # One item more than asked: a cursor is handed out only when another page really exists.
        request: dict[str, Any] = {
            "TableName": self._ratings, "IndexName": index,
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
            return Page(items, {"book_id": last["book_id"], "user_id": last["user_id"],
                                "updated_at": last["updated_at"]})
        # Fewer items than asked with a LastEvaluatedKey: DynamoDB's 1 MB page limit, more may follow.
        last_key = response.get("LastEvaluatedKey")
        return Page(items, {k: v["S"] for k, v in last_key.items()} if last_key else None)

    async def ratings_of_book(self, book_id: str, limit: int, start: dict[str, str] | None) -> Page:
        return await self._query(BOOK_RATINGS_INDEX, "book_id", book_id, limit, start)

    async def ratings_of_user(self, user_id: str, limit: int, start: dict[str, str] | None) -> Page:
        return await self._query(USER_RATINGS_INDEX, "user_id", user_id, limit, start)
