"""Clean JSONL -> DynamoDB with BatchWriteItem: 25 items a call, several concurrent writers.

- Routing: a line with a `user_id` is a rating (ratings table), any other line a book (books table).
  Books pass through records.book, i.e. bookrec_common.catalog.with_derived_attributes, so the
  derived attributes the services read are always set in the one shared place.
- Idempotent: every write is a full PutItem of a record whose every value (timestamps included)
  comes from the file, so loading the same file twice leaves the same table, but for the change feed's
  stamp. A key repeated in the file is never in flight twice at once, so the last line wins even with
  concurrent writers.
- Change feed: every book item is stamped (bookrec_common.changes) with the time of the very call that
  writes it (a retried item, with the time of the retry), so search replicas find it among the books
  changed after their position; a deleted book's tombstone is simply replaced, so a re-import brings
  it back. Ratings are no books: they carry no stamp.
- Retries: UnprocessedItems go back with exponential backoff and full jitter; throttling errors are
  retried by botocore. A batch DynamoDB refuses as invalid is retried item by item so the one bad
  line is rejected with its line number and the rest is written.
- Resumable: a checkpoint file records how many lines are safely in the table (the longest prefix
  of completed batches) and a digest of them, written at most every second and on interruption; a
  rerun into the same tables with a file that begins with those lines continues from there (see
  checkpoint.py), and the checkpoint is removed when the load completes.
- A broken compressed file stops the load once everything read before the break is written: the
  checkpoint then covers all those lines, and BrokenLoad says where it broke.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import boto3
import msgspec
from botocore.config import Config
from botocore.exceptions import ClientError

from bookrec_common.catalog import utc_now
from bookrec_common.changes import change_stamp
from bookrec_common.dynamo import to_item
from bookrec_etl.checkpoint import Checkpoint, prefix_digest
from bookrec_etl.progress import Progress
from bookrec_etl.records import Rejected, book, rating
from bookrec_etl.report import EXCERPT, Rejects, Report
from bookrec_etl.sources import BrokenInput, LineSource

log = logging.getLogger("bookrec.etl")
BATCH = 25  # BatchWriteItem's maximum
MAX_ITEM_BYTES = 400 * 1024
MAX_ATTEMPTS = 12
BACKOFF_BASE, BACKOFF_CAP = 0.05, 5.0
CHECKPOINT_EVERY_SECONDS = 1.0
PROGRESS_EVERY = 1000
FEED_ATTRIBUTES = frozenset({"changed_at", "change_shard", "deleted_at", "expires_at"})


class LoadError(RuntimeError):
    """The table could not take the items (not an input problem): the run stops, the checkpoint stays."""


@dataclass(frozen=True)
class Tables:
    books: str | None
    ratings: str | None

    @classmethod
    def from_env(cls, books: str | None = None, ratings: str | None = None) -> Tables:
        return cls(books or os.environ.get("BOOKS_TABLE") or None,
                   ratings or os.environ.get("RATINGS_TABLE") or None)


class BrokenLoad(LoadError):
    """The file broke off (BrokenInput): its first `broken.lines` lines are loaded, the checkpoint says so."""

    def __init__(self, broken: BrokenInput, report: Report, checkpoint: Checkpoint) -> None:
        super().__init__(str(broken))
        self.broken, self.report, self.checkpoint = broken, report, checkpoint


@dataclass
class _Pending:
    line: int
    table: str
    key: tuple
    item: dict[str, Any]
    text: bytes  # the line's start, for the rejects file should DynamoDB refuse the item


@dataclass
class _Counters:
    lock: threading.Lock = field(default_factory=threading.Lock)
    calls: int = 0
    retried: int = 0
    written: int = 0


def dynamodb_client(writers: int = 8) -> Any:
    """boto3's DynamoDB client; the endpoint comes from the standard AWS_ENDPOINT_URL (unset on AWS)."""
    return boto3.client("dynamodb", config=Config(max_pool_connections=writers + 2,
                                                  retries={"mode": "standard", "max_attempts": 10}))


def file_stamp(path: Path) -> str:
    """Timestamp for records that carry none: the file's mtime, so loading the same file twice agrees."""
    moment = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def to_write(record: Any, tables: Tables, stamp: str) -> tuple[str, tuple, dict[str, Any]]:
    """A decoded line -> (table, key, record to store); Rejected when it cannot be stored."""
    if not isinstance(record, dict):
        raise Rejected("not a JSON object")
    if "user_id" in record:
        if tables.ratings is None:
            raise LoadError("a ratings line but no ratings table: pass --ratings-table or set RATINGS_TABLE")
        stored = rating(record.get("book_id"), record.get("user_id"), record.get("rating"),
                        record.get("created_at") or stamp, record.get("updated_at"))
        return tables.ratings, (stored["book_id"], stored["user_id"]), stored
    if tables.books is None:
        raise LoadError("a books line but no books table: pass --books-table or set BOOKS_TABLE")
    # The feed's attributes are the writer's alone: a line's own (an exported table re-imported) never
    # makes a live book a tombstone nor gives it a TTL.
    stored = book({"created_at": stamp, **{k: v for k, v in record.items() if k not in FEED_ATTRIBUTES}})
    return tables.books, (stored["book_id"],), stored


class Loader:
    def __init__(self, client: Any, tables: Tables, rejects: Rejects, writers: int = 8,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.client, self.tables, self.rejects, self.writers = client, tables, rejects, max(1, writers)
        self._sleep = sleep

    # -- one batch, on a writer thread ------------------------------------------------------------

    def _stamp(self, table: str, item: dict[str, Any], now: str) -> dict[str, Any]:
        """The item with the change feed's stamp of `now` when it is a book (in place: it is ours)."""
        if table == self.tables.books:
            item.update(to_item(change_stamp(item["book_id"]["S"], now)))
        return item

    def _stamped(self, request: dict[str, list]) -> dict[str, list]:
        now = utc_now()
        for table, writes in request.items():
            for write in writes:
                self._stamp(table, write["PutRequest"]["Item"], now)
        return request

    def _write_batch(self, batch: list[_Pending], counters: _Counters) -> list[tuple[_Pending, str]]:
        """Write a batch; returns the items DynamoDB refused as invalid, with its message."""
        request: dict[str, list] = {}
        for pending in batch:
            request.setdefault(pending.table, []).append({"PutRequest": {"Item": pending.item}})
        for attempt in range(MAX_ATTEMPTS):
            try:
                response = self.client.batch_write_item(RequestItems=self._stamped(request))
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ValidationException":
                    return self._write_one_by_one(batch, counters)
                raise
            with counters.lock:
                counters.calls += 1
            unprocessed = response.get("UnprocessedItems") or {}
            if not unprocessed:
                with counters.lock:
                    counters.written += len(batch)
                return []
            left = sum(len(v) for v in unprocessed.values())
            with counters.lock:
                counters.retried += left
            request = unprocessed
            self._sleep(random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** attempt)))
        raise LoadError(f"items still unprocessed after {MAX_ATTEMPTS} BatchWriteItem attempts")

    def _write_one_by_one(self, batch: list[_Pending], counters: _Counters) -> list[tuple[_Pending, str]]:
        refused = []
        for pending in batch:
            try:
                self.client.put_item(TableName=pending.table,
                                     Item=self._stamp(pending.table, pending.item, utc_now()))
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ValidationException":
                    raise
                refused.append((pending, exc.response["Error"].get("Message", "refused by DynamoDB")))
                continue
            finally:
                with counters.lock:
                    counters.calls += 1
            with counters.lock:
                counters.written += 1
        return refused

    # -- the file, on the calling thread ----------------------------------------------------------

    def _skip_done(self, source: Path, checkpoint: Checkpoint,
                   ) -> tuple[LineSource, Iterator[bytes], int, Any]:
        """The open file positioned after the lines the checkpoint says are loaded, when the file still begins
        with exactly those lines; else at its start. Also the digest of the lines skipped."""
        saved = checkpoint.read(self.tables)
        lines, digest = LineSource(source), prefix_digest()
        stream: Iterator[bytes] = iter(lines)
        if saved is None or saved.lines_done <= 0:
            return lines, stream, 0, digest
        count = 0
        try:
            for count, line in enumerate(islice(stream, saved.lines_done), start=1):  # noqa: B007
                digest.update(line)
        except BaseException:
            lines.close()
            raise
        if count == saved.lines_done and digest.hexdigest() == saved.digest:
            return lines, stream, count, digest
        log.warning("checkpoint %s: %s does not begin with the %s lines it counted: loading from the start",
                    checkpoint.path, source, f"{saved.lines_done:,}")
        lines.close()
        lines = LineSource(source)
        return lines, iter(lines), 0, prefix_digest()

    def load(self, source: Path, checkpoint: Checkpoint | None = None, progress=Progress) -> Report:
        checkpoint = checkpoint or Checkpoint(None)
        report = Report(f"load {source.name}", written=0)
        try:
            lines, stream, start, digest = self._skip_done(source, checkpoint)
        except BrokenInput as exc:  # broke even before where the last run stopped: nothing new to load
            raise BrokenLoad(exc, report, checkpoint) from None
        if start:
            report.notes["resumed after lines"] = start
        stamp = file_stamp(source)
        counters = _Counters()
        started = time.perf_counter()
        in_flight: dict[Future, tuple[int, list[_Pending]]] = {}
        keys_in_flight: dict[tuple, Future] = {}
        completed_ends: set[int] = set()
        submitted_ends: list[int] = []  # batch end lines in file order
        digests: dict[int, str] = {}  # batch end line -> digest of lines 1..end
        state: dict[str, Any] = {"done": start, "digest": digest.hexdigest(), "saved_at": 0.0}
        batch: list[_Pending] = []
        batch_keys: set[tuple] = set()
        broken: BrokenInput | None = None

        def settle(futures) -> None:
            for future in futures:
                end, items = in_flight.pop(future)
                for pending in items:
                    if keys_in_flight.get(pending.key) is future:
                        del keys_in_flight[pending.key]
                for pending, message in future.result():
                    report.accepted -= 1
                    self.rejects.add(report, source.name, pending.line, f"refused by DynamoDB: {message}",
                                     pending.text)
                completed_ends.add(end)
            while submitted_ends and submitted_ends[0] in completed_ends:
                completed_ends.discard(submitted_ends[0])
                state["done"] = submitted_ends.pop(0)
                state["digest"] = digests.pop(state["done"])
            now = time.monotonic()
            if now - state["saved_at"] >= CHECKPOINT_EVERY_SECONDS:
                checkpoint.write(source, self.tables, state["done"], state["digest"])
                state["saved_at"] = now

        def submit(pool: ThreadPoolExecutor, end: int) -> None:
            nonlocal batch, batch_keys
            while len(in_flight) >= 2 * self.writers:
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                settle(done)
            future = pool.submit(self._write_batch, batch, counters)
            in_flight[future] = (end, batch)
            for pending in batch:
                keys_in_flight[pending.key] = future
            submitted_ends.append(end)
            digests[end] = digest.hexdigest()  # the digest has taken in exactly lines 1..end
            batch, batch_keys = [], set()

        pool = ThreadPoolExecutor(max_workers=self.writers, thread_name_prefix="dynamodb-writer")
        number = start
        try:
            with lines, progress(f"load {source.name}", lines.size, "bytes") as bar:
                try:
                    for number, line in enumerate(stream, start=start + 1):
                        report.read += 1
                        if report.read % PROGRESS_EVERY == 0:
                            bar.advance(lines.position, counters.written, absolute=True)
                            settle([f for f in in_flight if f.done()])
                        try:
                            table, key, record = to_write(msgspec.json.decode(line), self.tables, stamp)
                            if len(line) > MAX_ITEM_BYTES:
                                raise Rejected("item larger than DynamoDB's 400 KB limit")
                            item = to_item(record)
                        except msgspec.DecodeError:
                            reason = "invalid JSON" if line.strip() else "empty line"
                            self.rejects.add(report, source.name, number, reason, line)
                            digest.update(line)
                            continue
                        except Rejected as exc:
                            self.rejects.add(report, source.name, number, str(exc), line)
                            digest.update(line)
                            continue
                        report.accepted += 1
                        key = (table, *key)
                        if key in batch_keys:  # one BatchWriteItem may not name a key twice
                            submit(pool, number - 1)
                        if key in keys_in_flight:  # an earlier line for this key must land first
                            earlier = keys_in_flight[key]
                            wait([earlier])
                            settle([earlier])
                        digest.update(line)
                        batch.append(_Pending(number, table, key, item, line[:EXCERPT * 4]))
                        batch_keys.add(key)
                        if len(batch) == BATCH:
                            submit(pool, number)
                except BrokenInput as exc:  # write what was read before the break, then stop
                    broken = exc
                if batch:
                    submit(pool, number)
                settle(list(in_flight))  # blocks until every batch is written
                bar.advance(lines.position, counters.written, absolute=True)
            state["done"], state["digest"] = number, digest.hexdigest()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            for future in [f for f in in_flight if f.done() and not f.cancelled() and f.exception() is None]:
                settle([future])
            report.written, report.retried, report.calls = counters.written, counters.retried, counters.calls
            report.seconds = time.perf_counter() - started
            if state["done"] == 0 and broken is not None:
                checkpoint.clear()  # nothing loaded: there is nothing to resume after
            elif in_flight or submitted_ends or broken is not None:
                checkpoint.write(source, self.tables, state["done"], state["digest"])
        if broken is not None:
            raise BrokenLoad(broken, report, checkpoint)
        checkpoint.clear()
        return report
