"""The write protocol of every reader's change of a book: a rating, a shelving, or both at once.

A change is read-compute-write. The book and the reader's items it touches (their rating, their shelf
entry) are read with strongly consistent GetItems, the new counts are computed by the domain, and one
TransactWriteItems writes each touched item and the book's counts, each conditioned on exactly what was
read: an item's previous value and timestamp (or its absence), the book's per-star counts and per-shelf
counts (or their absence), each only where the change writes it. Sum, count and average follow from the
star counts, so nothing else needs a condition, and no version attribute is added to the book. A lost race
cancels the whole transaction; we re-read and retry, a bounded number of times with jittered backoff
(tenacity), then answer 503.

- A rating (new or changed) of a book on no shelf also puts it on `read` (Open Library's rule), in the
  same transaction: the shelf entry's Put conditioned on there being none, and `shelf_counts.read` + 1.
  A removed rating leaves the shelf alone.
- A shelving puts, moves or removes the reader's shelf entry and moves one reader between the book's
  shelf counts. Putting a book on the shelf it is already on writes nothing.

Within one process, writers to the same book queue on a lock so they do not spend transactions racing
each other; across replicas the conditions alone keep the counts exact.

The counts update is a write of the book, so it stamps the change feed (bookrec_catalog.changes) with the
same `now`. A deleted book is a tombstone: reads treat it as no book (404), and the update's condition
refuses one, so a book deleted between read and write is re-read and answered 404. Its ratings and shelf
entries stay in their tables, and each reader may still remove theirs (a tombstone, or no item once its
TTL removed it, takes removals only): the transaction then deletes the item, conditioned as any other,
beside a ConditionCheck that the book is still deleted, and leaves the tombstone as it is: it carries no
counts, and nothing reads them from it. A book restored in between fails that check and the removal is
retried as a live book's.
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

from bookrec_catalog.catalog import SHELVES, STARS
from bookrec_catalog.changes import change_stamp, is_deleted
from bookrec_catalog.dynamo import from_item, to_attribute
from bookrec_common.errors import DependencyUnavailable, NotFound
from bookrec_ratings.domain import (
    UNTOUCHED,
    ChangeKind,
    RatingAggregate,
    ShelfCounts,
    ShelvingKind,
    Untouched,
    allowed_on_deleted_book,
    kind_of,
    shelf_after_rating,
    shelving_kind,
    user_shelf,
)

# Cancellation reasons that mean "someone else changed what we read": re-read and try again.
_RACE_REASONS = {"None", "ConditionalCheckFailed", "TransactionConflict", "ThrottlingError",
                 "ProvisionedThroughputExceeded"}
_BOOK_PROJECTION = "book_id, ratings_distribution, shelf_counts, deleted_at"
_STILL_DELETED = "attribute_not_exists(book_id) OR attribute_exists(deleted_at)"
_LIVE = ["attribute_exists(book_id)", "attribute_not_exists(deleted_at)"]

log = logging.getLogger("bookrec.ratings.store")
RATING_CHANGES = Counter("rating_changes_total", "Committed rating changes", ["kind"])
SHELF_CHANGES = Counter("shelf_changes_total", "Committed shelf changes", ["kind"])
# The rating_write_* metrics count every change of this protocol: ratings and shelvings alike.
RATING_WRITE_CONFLICTS = Counter("rating_write_conflicts_total",
                                 "Reader change transactions cancelled by a concurrent change and retried")
RATING_WRITE_GAVE_UP = Counter("rating_write_gave_up_total",
                               "Reader changes refused with 503 after the last retry lost its race")
# Attempts a committed change took (1: no lost race). Integer buckets up to the default 12 attempts, then
# coarser ones for WRITE_MAX_ATTEMPTS raised under heavy contention.
RATING_WRITE_ATTEMPTS = Histogram(
    "rating_write_attempts", "Read-compute-write attempts per committed reader change",
    buckets=(1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32, 64, 128, 256, 512, 1024))
AGGREGATE_DRIFT = Counter("rating_aggregate_drift_total",
                          "Changes that removed a star or a shelf entry the book's counts did not hold")


@dataclass(frozen=True)
class ReaderChange:
    """One committed change: each item before and after (None: absent), and the book's counts after it
    (None: not written, the book being deleted or the part untouched)."""

    previous: dict[str, Any] | None  # the rating item
    current: dict[str, Any] | None
    aggregate: RatingAggregate | None
    previous_shelf: dict[str, Any] | None = None  # the shelf entry
    current_shelf: dict[str, Any] | None = None
    shelf_counts: ShelfCounts | None = None

    @property
    def kind(self) -> ChangeKind:
        return kind_of(self.previous["rating"] if self.previous else None,
                       self.current["rating"] if self.current else None)

    @property
    def shelving(self) -> ShelvingKind:
        return shelving_kind(self.previous_shelf["shelf"] if self.previous_shelf else None,
                             self.current_shelf["shelf"] if self.current_shelf else None)


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


def _live_book(item: dict[str, Any] | None) -> dict[str, Any] | None:
    """The book as read, or None when there is none or only its tombstone."""
    record = from_item(item) if item else None
    return None if record is None or is_deleted(record) else record


def _drifted(book_id: str, what: str) -> None:
    AGGREGATE_DRIFT.inc()
    log.warning("book %s counts hold no %s to remove", book_id, what, extra={"book_id": book_id})


class ReaderWrites:
    """Rating and shelf changes, each one transaction with its book's counts."""

    def __init__(self, client: Any, books_table: str, ratings_table: str, max_attempts: int = 12,
                 backoff_cap: float = 0.2, *, shelves_table: str | None = None) -> None:
        self._client = client
        self._books = books_table
        self._ratings = ratings_table
        # None: a store without shelves (callers that predate them): ratings shelve nothing.
        self._shelves = shelves_table
        self._max_attempts = max_attempts
        self._backoff_cap = backoff_cap
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def change(self, book_id: str, user_id: str, new_rating: int | None, now: str) -> ReaderChange:
        """Set (new_rating) or remove (None) one user's rating of one book, with its aggregate (and the
        shelf a newly rated book goes on)."""
        change = await self._committed(book_id, user_id, new_rating, UNTOUCHED, now)
        RATING_CHANGES.labels(change.kind.value).inc()
        return change

    async def shelve(self, book_id: str, user_id: str, shelf: str | None, now: str) -> ReaderChange:
        """Put one reader's book on `shelf` (moving it from another) or on none (None), with its counts."""
        if self._shelves is None:
            raise RuntimeError("this store was built without a shelves table")
        change = await self._committed(book_id, user_id, UNTOUCHED, shelf, now)
        SHELF_CHANGES.labels(change.shelving.value).inc()
        return change

    async def _committed(self, book_id: str, user_id: str, rating: int | Untouched | None,
                         shelf: str | Untouched | None, now: str) -> ReaderChange:
        """The change, committed whole: per-book lock, read-compute-write, lost races retried."""
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
                        change = await self._attempt(book_id, user_id, rating, shelf, now)
            except RetryError:
                RATING_WRITE_GAVE_UP.inc()
                raise DependencyUnavailable(f"book {book_id} is being changed too busily; retry shortly",
                                            code="write_contention", headers={"Retry-After": "1"}) from None
        RATING_WRITE_ATTEMPTS.observe(attempt.retry_state.attempt_number)
        return change

    async def _read(self, book_id: str, user_id: str, rating: bool,
                    shelf: bool) -> tuple[dict[str, Any] | None, dict[str, Any] | None, dict[str, Any] | None]:
        """The live book (None: none, or its tombstone) and, when asked, the user's rating and shelf entry
        of it (None: absent or not asked), as stored now."""
        # Consistent GetItems, not TransactGetItems: a transactional read is itself cancelled by a
        # concurrent write, and the write's conditions catch any skew between the reads anyway.
        key = {"book_id": {"S": book_id}, "user_id": {"S": user_id}}
        reads = [self._client.get_item(TableName=self._books, Key={"book_id": {"S": book_id}},
                                       ConsistentRead=True, ProjectionExpression=_BOOK_PROJECTION)]
        tables = [table for table, wanted in ((self._ratings, rating), (self._shelves, shelf)) if wanted]
        reads += [self._client.get_item(TableName=table, ConsistentRead=True, Key=key) for table in tables]
        answers = dict(zip([self._books, *tables], await asyncio.gather(*reads), strict=True))

        def item(table: str | None) -> dict[str, Any] | None:
            found = answers.get(table, {}).get("Item") if table else None
            return from_item(found) if found else None

        return _live_book(answers[self._books].get("Item")), item(self._ratings), item(self._shelves)

    async def _attempt(self, book_id: str, user_id: str, rating: int | Untouched | None,
                       shelf: str | Untouched | None, now: str) -> ReaderChange:
        """One read-compute-conditional-write; _LostRace when another writer changed what was read."""
        rates, shelves = not isinstance(rating, Untouched), not isinstance(shelf, Untouched)
        # A new rating may put the book on a shelf: its shelf entry is read too.
        reads_shelf = self._shelves is not None and (shelves or (rates and rating is not None))
        book, previous, previous_entry = await self._read(book_id, user_id, rates, reads_shelf)
        previous_rating = previous["rating"] if previous else None
        was_on = previous_entry["shelf"] if previous_entry else None
        if isinstance(shelf, Untouched):
            shelf = shelf_after_rating(was_on, None if isinstance(rating, Untouched) else rating) \
                if reads_shelf else was_on
        actions: list[dict[str, Any]] = []
        current = previous
        if not isinstance(rating, Untouched):
            current = None if rating is None else {
                "book_id": book_id, "user_id": user_id, "rating": rating,
                "created_at": previous["created_at"] if previous else now, "updated_at": now}
            actions.append(self._item_write(self._ratings, book_id, user_id, previous, current,
                                            ("rating", "updated_at")))
        entry = previous_entry
        if shelf != was_on and self._shelves is not None:
            entry = None if shelf is None else {"book_id": book_id, "user_id": user_id, "shelf": shelf,
                                                "user_shelf": user_shelf(user_id, shelf), "shelved_at": now}
            actions.append(self._item_write(self._shelves, book_id, user_id, previous_entry, entry,
                                            ("user_shelf", "shelved_at")))
        if book is None:
            # Each part asked for must be the removal of an item that exists.
            removals = (not rates or allowed_on_deleted_book(previous_rating, rating)) and \
                (not shelves or allowed_on_deleted_book(was_on, shelf))
            if not removals:
                raise NotFound(f"book {book_id} not found", code="book_not_found")
            actions.append(self._still_deleted(book_id))
            await self._commit(actions)
            return ReaderChange(previous, current, None, previous_entry, entry, None)
        if rates and rating is None and previous is None:
            raise NotFound(f"user {user_id} has not rated book {book_id}", code="rating_not_found")
        if shelves and shelf is None and was_on is None:
            raise NotFound(f"book {book_id} is on none of {user_id}'s shelves", code="not_shelved")
        if not actions:
            return ReaderChange(previous, current, None, previous_entry, entry, None)  # on that shelf already
        aggregate = None if isinstance(rating, Untouched) else \
            self._aggregate_after(book_id, book, previous_rating, rating)
        counts = None
        if shelf != was_on:
            before = ShelfCounts.from_record(book)
            if was_on is not None and not before.holds(was_on):
                _drifted(book_id, f"{was_on} entry")
            counts = before.apply(was_on, shelf)
        actions.append(self._counts_write(book_id, book, aggregate, counts, now))
        await self._commit(actions)
        return ReaderChange(previous, current, aggregate, previous_entry, entry, counts)

    @staticmethod
    def _aggregate_after(book_id: str, book: dict[str, Any], previous: int | None,
                         new: int | None) -> RatingAggregate:
        before = RatingAggregate.from_record(book)
        if previous is not None and not before.holds(previous):
            _drifted(book_id, f"{previous}-star rating")
        return before.apply(previous, new)

    async def _commit(self, actions: list[dict[str, Any]]) -> None:
        try:
            await self._client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            if not _lost_race(exc):
                raise
            RATING_WRITE_CONFLICTS.inc()
            raise _LostRace from exc

    def _still_deleted(self, book_id: str) -> dict[str, Any]:
        """The book stays deleted (its tombstone, or no item): an item removed from it leaves no counts
        behind that a restored book would still count."""
        return {"ConditionCheck": {"TableName": self._books, "Key": {"book_id": {"S": book_id}},
                                   "ConditionExpression": _STILL_DELETED}}

    @staticmethod
    def _item_write(table: str, book_id: str, user_id: str, previous: dict[str, Any] | None,
                    current: dict[str, Any] | None, compared: tuple[str, str]) -> dict[str, Any]:
        """Put (or Delete, current None) a reader's item of a book, conditioned on its `compared` value and
        timestamp as read (or on its absence)."""
        key = {"book_id": {"S": book_id}, "user_id": {"S": user_id}}
        if previous is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(user_id)"}
        else:
            value, moment = compared
            condition = {"ConditionExpression": "#value = :prev_value AND #moment = :prev_moment",
                         "ExpressionAttributeNames": {"#value": value, "#moment": moment},
                         "ExpressionAttributeValues": {":prev_value": to_attribute(previous[value]),
                                                       ":prev_moment": to_attribute(previous[moment])}}
        if current is None:
            return {"Delete": {"TableName": table, "Key": key, **condition}}
        item = {k: to_attribute(v) for k, v in current.items()}
        return {"Put": {"TableName": table, "Item": item, **condition}}

    def _counts_write(self, book_id: str, book: dict[str, Any], aggregate: RatingAggregate | None,
                      shelves: ShelfCounts | None, now: str) -> dict[str, Any]:
        """The book's Update: the counts this change moves, each conditioned on being exactly as read (per
        star, per shelf; absent stays absent), on a live book, stamping the change feed."""
        stamp = change_stamp(book_id, now)
        names: dict[str, str] = {}
        values: dict[str, Any] = {":now": to_attribute(now), ":shard": to_attribute(stamp["change_shard"])}
        sets = ["updated_at = :now", "changed_at = :now", "change_shard = :shard"]
        conditions = list(_LIVE)
        if aggregate is not None:
            names["#dist"] = "ratings_distribution"
            values.update({":dist": to_attribute(aggregate.distribution), ":sum": to_attribute(aggregate.total),
                           ":count": to_attribute(aggregate.count), ":avg": to_attribute(aggregate.average)})
            sets[:0] = ["#dist = :dist", "rating_sum = :sum", "rating_count = :count", "avg_rating = :avg"]
            conditions += _as_read("#dist", "s", STARS, book.get("ratings_distribution"), names, values)
        if shelves is not None:
            names["#shelves"] = "shelf_counts"
            values[":shelves"] = to_attribute(shelves.counts)
            sets.insert(0, "#shelves = :shelves")
            conditions += _as_read("#shelves", "h", SHELVES, book.get("shelf_counts"), names, values)
        return {"Update": {
            "TableName": self._books, "Key": {"book_id": {"S": book_id}},
            "UpdateExpression": "SET " + ", ".join(sets),
            "ConditionExpression": " AND ".join(conditions),
            "ExpressionAttributeNames": names, "ExpressionAttributeValues": values,
        }}


def _as_read(map_name: str, tag: str, keys: tuple[str, ...], read: dict[str, Any] | None,
             names: dict[str, str], values: dict[str, Any]) -> list[str]:
    """Conditions that hold while the counts map `map_name` is exactly as read, key by key (an absent map
    or key stays absent)."""
    if read is None:
        return [f"attribute_not_exists({map_name})"]
    conditions = []
    for n, key in enumerate(keys):
        names[f"#{tag}{n}"] = key
        if key in read:
            values[f":{tag}{n}"] = to_attribute(read[key])
            conditions.append(f"{map_name}.#{tag}{n} = :{tag}{n}")
        else:
            conditions.append(f"attribute_not_exists({map_name}.#{tag}{n})")
    return conditions
