"""The loader's delete and redirect lines (lifecycle_records.py): a work the source deleted becomes a
tombstone, a work it merged into another becomes one once its readers' ratings and shelf entries have
followed it to the target.

- The books of up to 100 lines are read at once (BatchGetItem, strongly consistent): a tombstone is
  left as it is (not restamped: `unchanged`), an id the table does not hold creates nothing (skipped).
- Delete line: a live book is replaced by its tombstone exactly as
  `bookrec-etl delete` does it (delete.delete_one: one conditional PutItem), its ratings and shelf entries
  kept in their tables.
- Redirect line (source -> target): both books are read; while the source is live and the target is a
  live book, steps (moves.py) move up to 20 of the source's rating rows and 20 of its shelf entries each,
  with the counts they feed, in one conditional transaction; when the source has none left, it is
  replaced by its tombstone, conditioned on its change stamp as read (a reader's rating or shelving of it
  since restamps it: read again). The tombstone comes last, so a run stopped anywhere leaves the source
  live with what is not moved yet, both books exact, and the same line run again finishes the move. The
  target is then reconciled (reconcile.py) against its rows and shelf entries. A source that is already a
  tombstone is left as it is (its kept ratings stay with it, as `delete` keeps them); a target that is
  not a live book makes the move wait (skipped: the source stays as it is until a load finds the target).
- Races: a step or tombstone that loses one is read and planned again, with backoff, up to MAX_ATTEMPTS
  times in a row; then the load stops (a rerun carries on).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

from bookrec_catalog.catalog import utc_now
from bookrec_catalog.dynamo import from_item
from bookrec_etl.delete import delete_one
from bookrec_etl.dynamodb import MAX_ATTEMPTS, Unfinished, backoff, batch_get
from bookrec_etl.lifecycle_records import REDIRECT_TO, is_redirect
from bookrec_etl.moves import MOVE_CHUNK, Step, Tables, plan_step
from bookrec_etl.reconcile import Findings, ReconcileError, Reconciler
from bookrec_etl.writes import BatchResult, Line, WriteError, lost_race

NOT_IN_TABLE = "deleted or redirected work not in the table"
TARGET_MISSING = "redirect target not in the table (the work stays until it is)"
DELETED = "works deleted (tombstones written)"
REDIRECTED = "works redirected (tombstones written)"
RATINGS_MOVED = "ratings moved to the work they were merged into"
ENTRIES_MOVED = "shelf entries moved to the work they were merged into"
RATINGS_DROPPED = "ratings dropped (the reader rated both works: the more recent kept)"
ENTRIES_DROPPED = "shelf entries dropped (the reader shelved both works: the more recent kept)"
MOVE_STEPS = "move transactions"


class _LostRace(Exception):
    """A step or the tombstone lost a race with a reader (or was throttled): read again."""


class LifecycleWriter:
    def __init__(self, client: Any, books_table: str, ratings_table: str | None, shelves_table: str | None,
                 reconciler: Reconciler | None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client, self.books = client, books_table
        self.tables = Tables(books_table, ratings_table, shelves_table) \
            if ratings_table and shelves_table else None
        self.reconciler = reconciler
        self._sleep = sleep

    def write(self, lines: list[Line]) -> BatchResult:
        """Up to 100 lines: their books read in one BatchGetItem (a monthly dump's lines are nearly all
        applied already: tombstones or no item), then each live one deleted or moved."""
        result = BatchResult()
        stored = self._books_of(lines, result)
        for line in lines:
            found = stored.get(line.record["book_id"])
            if found is None:
                result.skipped.append((line, NOT_IN_TABLE))
            elif "deleted_at" in found:
                result.unchanged += 1
            elif is_redirect(line.record):
                self._redirect(line, result)
            else:
                self._delete(line, result)
        return result

    def _books_of(self, lines: list[Line], result: BatchResult) -> dict[str, dict[str, Any]]:
        """book_id -> {book_id, deleted_at?} of the lines' books that have an item, strongly consistent."""
        keys = [{"book_id": {"S": book_id}} for book_id in dict.fromkeys(line.record["book_id"] for line in lines)]
        request = {self.books: {"Keys": keys, "ConsistentRead": True, "ProjectionExpression": "#b, #d",
                                "ExpressionAttributeNames": {"#b": "book_id", "#d": "deleted_at"}}}
        result.calls += 1
        try:
            return {item["book_id"]["S"]: from_item(item) for _, item in batch_get(self.client, request, self._sleep)}
        except Unfinished as exc:
            raise WriteError(str(exc)) from None

    def _get(self, book_id: str, result: BatchResult) -> dict[str, Any] | None:
        result.calls += 1
        item = self.client.get_item(TableName=self.books, Key={"book_id": {"S": book_id}},
                                    ConsistentRead=True).get("Item")
        return from_item(item) if item else None

    def _delete(self, line: Line, result: BatchResult) -> None:
        """A book read live: its tombstone, conditioned on a live book (a deletion meanwhile: unchanged)."""
        outcome = delete_one(self.client, self.books, line.record["book_id"])
        result.calls += 1
        if outcome == "deleted":
            result.written += 1
            result.notes[DELETED] += 1
        elif outcome == "already deleted":
            result.unchanged += 1
        else:
            result.skipped.append((line, NOT_IN_TABLE))

    def _redirect(self, line: Line, result: BatchResult) -> None:
        if self.tables is None:
            raise WriteError("a redirect line moves readers' ratings and shelf entries: it needs the ratings "
                             "and shelves tables too")
        retrying = Retrying(retry=retry_if_exception_type(_LostRace), stop=stop_after_attempt(MAX_ATTEMPTS),
                            wait=backoff(), sleep=self._sleep, reraise=True)
        wrote = False  # a step or the tombstone: the target is reconciled once the line is done
        while True:
            try:
                for attempt in retrying:
                    with attempt:
                        done, stepped = self._step(line, result)
            except _LostRace:
                raise WriteError(f"the move of {line.record['book_id']} lost {MAX_ATTEMPTS} races in a row "
                                 "(its books are being changed busily); run the load again to finish it") from None
            except Unfinished as exc:
                raise WriteError(str(exc)) from None
            wrote = wrote or stepped
            if done:
                break
        if wrote and self.reconciler is not None:
            findings = Findings()
            try:
                self.reconciler.check(line.record[REDIRECT_TO], findings, fix=True)
            except ReconcileError as exc:
                raise WriteError(str(exc)) from None
            result.reconciled += 1
            result.repaired += findings.fixed

    def _step(self, line: Line, result: BatchResult) -> tuple[bool, bool]:
        """One read and one write of the move: (the line is done, something was written)."""
        assert self.tables is not None
        source_id, target_id = line.record["book_id"], line.record[REDIRECT_TO]
        source = self._get(source_id, result)
        if source is None or "deleted_at" in source:
            if source is None:
                result.skipped.append((line, NOT_IN_TABLE))
            else:
                result.unchanged += 1
            return True, False
        target = self._get(target_id, result)
        if target is None or "deleted_at" in target:
            result.skipped.append((line, TARGET_MISSING))
            return True, False
        rows = self._items(self.tables.ratings, source_id, result)
        entries = self._items(self.tables.shelves, source_id, result)
        if not rows and not entries:
            outcome = delete_one(self.client, self.books, source_id, as_read=source)
            result.calls += 1
            if outcome == "deleted":
                result.written += 1
                result.notes[REDIRECTED] += 1
                return True, True
            result.retried += 1
            raise _LostRace
        there = self._targets_items(target_id, rows, entries, result)
        step = plan_step(self.tables, source, target, rows, there[self.tables.ratings], entries,
                         there[self.tables.shelves], utc_now())
        self._commit(step, result)
        result.notes[RATINGS_MOVED] += step.ratings_moved
        result.notes[ENTRIES_MOVED] += step.entries_moved
        result.notes[RATINGS_DROPPED] += step.ratings_dropped
        result.notes[ENTRIES_DROPPED] += step.entries_dropped
        result.notes[MOVE_STEPS] += 1
        return False, True

    def _items(self, table: str, book_id: str, result: BatchResult) -> list[dict[str, Any]]:
        """Up to MOVE_CHUNK of the book's items in a ratings-keyed table, strongly consistent."""
        result.calls += 1
        answer = self.client.query(TableName=table, KeyConditionExpression="book_id = :b", ConsistentRead=True,
                                   ExpressionAttributeValues={":b": {"S": book_id}}, Limit=MOVE_CHUNK)
        return [from_item(item) for item in answer.get("Items", [])]

    def _targets_items(self, target_id: str, rows: list[dict[str, Any]], entries: list[dict[str, Any]],
                       result: BatchResult) -> dict[str, dict[str, dict[str, Any]]]:
        """The target's rating and shelf entry of each reader moved (table -> user_id -> item)."""
        assert self.tables is not None
        request: dict[str, dict[str, Any]] = {}
        for table, items in ((self.tables.ratings, rows), (self.tables.shelves, entries)):
            if items:
                request[table] = {"ConsistentRead": True, "Keys": [
                    {"book_id": {"S": target_id}, "user_id": {"S": item["user_id"]}} for item in items]}
        found: dict[str, dict[str, dict[str, Any]]] = {self.tables.ratings: {}, self.tables.shelves: {}}
        if request:
            result.calls += 1
            for table, item in batch_get(self.client, request, self._sleep):
                record = from_item(item)
                found[table][record["user_id"]] = record
        return found

    def _commit(self, step: Step, result: BatchResult) -> None:
        try:
            # The token makes the SDK's own retry of a transaction that did commit (a dropped answer) a no-op.
            self.client.transact_write_items(TransactItems=step.actions, ClientRequestToken=str(uuid.uuid4()))
        except ClientError as exc:
            result.calls += 1
            if lost_race(exc):
                result.retried += len(step.actions)
                raise _LostRace from None
            error = exc.response.get("Error", {})
            raise WriteError(f"DynamoDB refused a move step ({error.get('Code')}: {error.get('Message')})") \
                from None
        result.calls += 1
