"""The loader's reads and writes: a batch of lines is one BatchGetItem of what is stored (strongly
consistent), then one TransactWriteItems of what differs (plans.py), every action conditioned on what was
read, so no write races a reader's rating unseen.

- Round trips: a TransactWriteItems holds up to 100 conditional actions in one request (on the emulator a
  PutItem a line would manage ~150 a second, BatchWriteItem takes no condition at all).
- All or nothing: a transaction cancelled because something changed since the read (a condition failed,
  a reader's transaction on the same item, throttling) is read, planned and sent again, with backoff.
  A rating line that is then no newer than the stored rating is skipped.
- A batch DynamoDB refuses as invalid is split line by line, so only the bad line is rejected.
- Books whose rows must be counted into their aggregate (a revived tombstone, a legacy book adopting the
  line's imported part, an imported figure that would have taken a star below zero) are reconciled right
  after their batch is written (with a shelves table, their shelf counts too: a revived book's come
  back). Books whose ratings were written are handed back: the loader reconciles them once the file is
  loaded (reconcile.py: one Scan when they are many).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

from bookrec_catalog.catalog import utc_now
from bookrec_etl.dynamodb import MAX_ATTEMPTS, Unfinished, backoff, batch_get
from bookrec_etl.plans import Plan, book_guard, plan_book, plan_rating, unconditional
from bookrec_etl.reconcile import Findings, ReconcileError, Reconciler

MAX_ACTIONS = 100  # TransactWriteItems' and BatchGetItem's maximum
MAX_REQUEST_BYTES = 3_000_000  # of lines a batch holds: a transaction takes at most 4 MB
GUARD_MIN_SAVING = 10  # conditions a batch's book guards must spare to be worth their read
NOT_NEWER = "rating not newer than the stored one"
# Cancellation reasons that mean "something changed since the read": read again and retry.
_RACE_REASONS = {"None", "ConditionalCheckFailed", "TransactionConflict", "ThrottlingError",
                 "ProvisionedThroughputExceeded", "RequestLimitExceeded"}
_INVALID_REASONS = {"ValidationError", "ValidationException"}  # DynamoDB's, the emulator's
_RETRIED_ERRORS = {"TransactionConflictException", "ThrottlingException",
                   "ProvisionedThroughputExceededException", "RequestLimitExceeded"}
_RATING_KEY = {"ProjectionExpression": "#b, #u, #t",
               "ExpressionAttributeNames": {"#b": "book_id", "#u": "user_id", "#t": "updated_at"}}
_GUARD_KEY = {"ProjectionExpression": "#b, #c",
              "ExpressionAttributeNames": {"#b": "book_id", "#c": "changed_at"}}
_GUARDED = "guard"  # the key under which a guarded book's stamp is kept among what was read


def lost_race(exc: ClientError) -> bool:
    """A transaction cancelled because something changed since the read (or throttled): read and retry."""
    error = exc.response.get("Error", {})
    reasons = exc.response.get("CancellationReasons") or []
    return error.get("Code") in _RETRIED_ERRORS or (error.get("Code") == "TransactionCanceledException" and all(
        str(r.get("Code", "None")) in _RACE_REASONS for r in reasons))


class WriteError(RuntimeError):
    """The tables could not take a batch (not an input problem)."""


@dataclass
class Line:
    """One accepted line: its number, its table, its key there and the record to store."""

    number: int
    table: str
    key: tuple  # (table, *key values): never twice in one batch
    record: dict[str, Any]
    text: bytes  # the line's start, for the rejects file should DynamoDB refuse the item
    size: int

    def item_key(self) -> dict[str, Any]:
        key = {"book_id": {"S": self.record["book_id"]}}
        if "user_id" in self.record:
            key["user_id"] = {"S": self.record["user_id"]}
        return key


@dataclass
class BatchResult:
    written: int = 0
    unchanged: int = 0  # books whose line changes nothing: not written
    skipped: list[tuple[Line, str]] = field(default_factory=list)
    refused: list[tuple[Line, str]] = field(default_factory=list)
    rated_books: set[str] = field(default_factory=set)  # books whose ratings were written
    reconciled: int = 0
    repaired: int = 0
    calls: int = 0
    retried: int = 0
    notes: Counter = field(default_factory=Counter)  # what delete and redirect lines did (lifecycle.py)


class _Cancelled(Exception):
    """The transaction was cancelled by a change since the read."""


class _Invalid(Exception):
    """DynamoDB refused the request as invalid."""


class Batch:
    """Lines gathered for one transaction: each key once, at most MAX_REQUEST_BYTES of lines and at most
    MAX_ACTIONS actions, counting a guard for every book that may get one (several rating lines, no book
    line: `guarded`)."""

    def __init__(self, ratings_table: str | None) -> None:
        self.ratings = ratings_table
        self.lines: list[Line] = []
        self.keys: set[tuple] = set()
        self.bytes = 0
        self._rows: Counter = Counter()  # rating lines per book
        self._books: set[str] = set()  # books with a book line
        self._guards = 0

    def __bool__(self) -> bool:
        return bool(self.lines)

    def _guards_with(self, line: Line) -> int:
        book_id = line.record["book_id"]
        if line.table != self.ratings:
            return self._guards - (self._rows[book_id] > 1 and book_id not in self._books)
        return self._guards + (self._rows[book_id] == 1 and book_id not in self._books)

    def fits(self, line: Line) -> bool:
        return line.key not in self.keys and self.bytes + line.size <= MAX_REQUEST_BYTES and \
            len(self.lines) + 1 + self._guards_with(line) <= MAX_ACTIONS

    def add(self, line: Line) -> None:
        self._guards = self._guards_with(line)
        self.lines.append(line)
        self.keys.add(line.key)
        self.bytes += line.size
        if line.table == self.ratings:
            self._rows[line.record["book_id"]] += 1
        else:
            self._books.add(line.record["book_id"])


def guarded(lines: list[Line], ratings_table: str | None) -> set[str]:
    """Books of which the lines hold several ratings and no book line, when guarding them saves at least
    GUARD_MIN_SAVING conditions (a guard costs a read of the books first)."""
    rows = Counter(line.record["book_id"] for line in lines if line.table == ratings_table)
    written = {line.record["book_id"] for line in lines if line.table != ratings_table}
    several = {book_id: n for book_id, n in rows.items() if n > 1 and book_id not in written}
    return set(several) if sum(several.values()) - len(several) >= GUARD_MIN_SAVING else set()


class BatchWriter:
    def __init__(self, client: Any, books_table: str | None, ratings_table: str | None,
                 reconciler: Reconciler | None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client, self.books, self.ratings = client, books_table, ratings_table
        self.reconciler = reconciler
        self._sleep = sleep

    def write(self, lines: list[Line]) -> BatchResult:
        result = BatchResult()
        self._write(lines, result)
        return result

    def _write(self, lines: list[Line], result: BatchResult) -> None:
        retrying = Retrying(retry=retry_if_exception_type(_Cancelled), stop=stop_after_attempt(MAX_ATTEMPTS),
                            wait=backoff(), sleep=self._sleep, reraise=True)
        try:
            for attempt in retrying:
                with attempt:
                    plans = self._attempt(lines, result)
        except _Cancelled:
            raise WriteError(f"a transaction of {len(lines)} items was cancelled {MAX_ATTEMPTS} times "
                             "(its items are being written busily)") from None
        except _Invalid as exc:
            if len(lines) == 1:
                result.refused.append((lines[0], str(exc)))
                return
            for line in lines:
                self._write([line], result)
            return
        except Unfinished as exc:
            raise WriteError(str(exc)) from None
        self._settled(plans, result)

    def _attempt(self, lines: list[Line], result: BatchResult) -> list[tuple[Line, Plan]]:
        books = guarded(lines, self.ratings) if self.books else set()
        stored = self._read(lines, books, result)
        now = utc_now()
        plans = [(line, self._plan(line, stored.get(line.key), now)) for line in lines]
        actions = self._actions(plans, books, stored)
        if not actions:
            return plans
        try:
            # The token makes the SDK's own retry of a transaction that did commit (a dropped answer) a no-op.
            self.client.transact_write_items(TransactItems=actions, ClientRequestToken=str(uuid.uuid4()))
        except ClientError as exc:
            result.calls += 1
            error = exc.response.get("Error", {})
            reasons = exc.response.get("CancellationReasons") or []
            invalid = [r for r in reasons if r.get("Code") in _INVALID_REASONS]
            if error.get("Code") == "ValidationException" or invalid:
                raise _Invalid((invalid[0] if invalid else error).get("Message", "refused by DynamoDB")) \
                    from None
            lost = error.get("Code") == "TransactionCanceledException" and \
                all(str(r.get("Code", "None")) in _RACE_REASONS for r in reasons)
            if lost or error.get("Code") in _RETRIED_ERRORS:
                result.retried += len(actions)
                raise _Cancelled from None
            raise
        result.calls += 1
        return plans

    def _read(self, lines: list[Line], guarded: set[str], result: BatchResult) -> dict[tuple, dict[str, Any]]:
        """What is stored under the lines' keys, and the change stamps of the guarded books (under
        ("guard", book_id)), strongly consistent. The stamps first: a reader's rating landing after them
        changes the stamp, so the guard fails even if the rows were read after the rating landed."""
        stored = {}
        if guarded and self.books is not None:
            keys = [{"book_id": {"S": book_id}} for book_id in sorted(guarded)]
            guards = {self.books: {"Keys": keys, "ConsistentRead": True, **_GUARD_KEY}}
            for _, item in batch_get(self.client, guards, self._sleep):
                stored[(_GUARDED, item["book_id"]["S"])] = item
            result.calls += 1
        request: dict[str, dict[str, Any]] = {}
        for line in lines:
            if line.table not in request:
                request[line.table] = {"Keys": [], "ConsistentRead": True,
                                       **(_RATING_KEY if line.table == self.ratings else {})}
            request[line.table]["Keys"].append(line.item_key())
        for table, item in batch_get(self.client, request, self._sleep):
            user = (item["user_id"]["S"],) if table == self.ratings else ()
            stored[(table, item["book_id"]["S"], *user)] = item
        result.calls += 1
        return stored

    def _actions(self, plans: list[tuple[Line, Plan]], guarded: set[str],
                 stored: dict[tuple, dict[str, Any]]) -> list[dict[str, Any]]:
        """The transaction: each plan's action; the rows of a guarded book without their own condition, and
        the book's guard once."""
        actions: list[dict[str, Any]] = []
        guards: dict[str, dict[str, Any]] = {}
        for line, plan in plans:
            if plan.action is None:
                continue
            book_id = line.record["book_id"]
            if line.table == self.ratings and book_id in guarded and self.books is not None:
                actions.append(unconditional(plan.action))
                guards.setdefault(book_id, book_guard(self.books, book_id, stored.get((_GUARDED, book_id))))
            else:
                actions.append(plan.action)
        return actions + list(guards.values())

    def _plan(self, line: Line, stored: dict[str, Any] | None, now: str) -> Plan:
        if line.table == self.ratings:
            return plan_rating(line.table, line.record, stored)
        return plan_book(line.table, line.record, stored, now)

    def _settled(self, plans: list[tuple[Line, Plan]], result: BatchResult) -> None:
        """Count what the batch did, then count the rows of the books that need it into their aggregate."""
        findings = Findings()
        for line, plan in plans:
            if plan.outcome == "unchanged":
                result.unchanged += 1
            elif plan.outcome == "not newer":
                result.skipped.append((line, NOT_NEWER))
            else:
                result.written += 1
            if plan.outcome == "rating":
                result.rated_books.add(line.record["book_id"])
            if plan.reconcile and self.reconciler is not None:
                try:
                    self.reconciler.check(line.record["book_id"], findings, fix=True, adopt=plan.adopt)
                except ReconcileError as exc:
                    raise WriteError(str(exc)) from None
                result.reconciled += 1
        result.repaired += findings.fixed
