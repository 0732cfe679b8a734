"""Clean JSONL -> DynamoDB with BatchWriteItem: 25 items a call, several concurrent writers.

- Routing: a line with a `user_id` is a rating (ratings table), any other line a book (books table).
  Books pass through records.book, i.e. bookrec_common.catalog.with_derived_attributes, so the
  derived attributes the services read are always set in the one shared place.
- Idempotent: every write is a full PutItem of a record whose every value (timestamps included)
  comes from the file, so loading the same file twice leaves the same table. A key repeated in the
  file is never in flight twice at once, so the last line wins even with concurrent writers.
- Retries: UnprocessedItems go back with exponential backoff and full jitter; throttling errors are
  retried by botocore. A batch DynamoDB refuses as invalid is retried item by item so the one bad
  line is rejected with its line number and the rest is written.
- Resumable: a checkpoint file records how many lines are safely in the table (the longest prefix
  of completed batches), written at most every second and on interruption; a rerun with the same
  file and tables continues from there, and the checkpoint is removed when the load completes.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable
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

from bookrec_common.dynamo import to_item
from bookrec_etl.progress import Progress
from bookrec_etl.records import Rejected, book, rating
from bookrec_etl.report import Rejects, Report
from bookrec_etl.sources import LineSource

log = logging.getLogger("bookrec.etl")
BATCH = 25  # BatchWriteItem's maximum
MAX_ITEM_BYTES = 400 * 1024
MAX_ATTEMPTS = 12
BACKOFF_BASE, BACKOFF_CAP = 0.05, 5.0
CHECKPOINT_EVERY_SECONDS = 1.0
PROGRESS_EVERY = 1000


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


@dataclass
class Checkpoint:
    """Lines [0, lines_done) of `source` are in the tables; tied to the file (size, mtime) and the tables."""

    path: Path | None

    def identity(self, source: Path, tables: Tables) -> dict[str, Any]:
        stat = source.stat()
        return {"source": str(source.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                "books_table": tables.books, "ratings_table": tables.ratings}

    def read(self, source: Path, tables: Tables) -> int:
        if self.path is None or not self.path.exists():
            return 0
        try:
            saved = json.loads(self.path.read_text())
        except ValueError:
            log.warning("checkpoint %s is unreadable: loading from the start", self.path)
            return 0
        if {k: saved.get(k) for k in self.identity(source, tables)} != self.identity(source, tables):
            log.warning("checkpoint %s is for another file or table: loading from the start", self.path)
            return 0
        return int(saved.get("lines_done", 0))

    def write(self, source: Path, tables: Tables, lines_done: int) -> None:
        if self.path is None:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({**self.identity(source, tables), "lines_done": lines_done}))
        tmp.replace(self.path)  # atomic: a kill never leaves half a checkpoint

    def clear(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


@dataclass
class _Pending:
    line: int
    table: str
    key: tuple
    item: dict[str, Any]


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
    stored = book({"created_at": stamp, **record})
    return tables.books, (stored["book_id"],), stored


class Loader:
    def __init__(self, client: Any, tables: Tables, rejects: Rejects, writers: int = 8,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.client, self.tables, self.rejects, self.writers = client, tables, rejects, max(1, writers)
        self._sleep = sleep

    # -- one batch, on a writer thread ------------------------------------------------------------

    def _write_batch(self, batch: list[_Pending], counters: _Counters) -> list[tuple[_Pending, str]]:
        """Write a batch; returns the items DynamoDB refused as invalid, with its message."""
        request: dict[str, list] = {}
        for pending in batch:
            request.setdefault(pending.table, []).append({"PutRequest": {"Item": pending.item}})
        for attempt in range(MAX_ATTEMPTS):
            try:
                response = self.client.batch_write_item(RequestItems=request)
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
                self.client.put_item(TableName=pending.table, Item=pending.item)
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

    def load(self, source: Path, checkpoint: Checkpoint | None = None, progress=Progress) -> Report:
        checkpoint = checkpoint or Checkpoint(None)
        report = Report(f"load {source.name}", written=0)
        start = checkpoint.read(source, self.tables)
        if start:
            report.notes["resumed after lines"] = start
        stamp = file_stamp(source)
        counters = _Counters()
        started = time.perf_counter()
        in_flight: dict[Future, tuple[int, list[_Pending]]] = {}
        keys_in_flight: dict[tuple, Future] = {}
        completed_ends: set[int] = set()
        submitted_ends: list[int] = []  # batch end lines in file order
        state = {"done": start, "saved_at": 0.0}
        batch: list[_Pending] = []
        batch_keys: set[tuple] = set()

        def settle(futures) -> None:
            for future in futures:
                end, items = in_flight.pop(future)
                for pending in items:
                    if keys_in_flight.get(pending.key) is future:
                        del keys_in_flight[pending.key]
                for pending, message in future.result():
                    report.accepted -= 1
                    self.rejects.add(report, source.name, pending.line, f"refused by DynamoDB: {message}")
                completed_ends.add(end)
            while submitted_ends and submitted_ends[0] in completed_ends:
                completed_ends.discard(submitted_ends[0])
                state["done"] = submitted_ends.pop(0)
            now = time.monotonic()
            if now - state["saved_at"] >= CHECKPOINT_EVERY_SECONDS:
                checkpoint.write(source, self.tables, state["done"])
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
            batch, batch_keys = [], set()

        pool = ThreadPoolExecutor(max_workers=self.writers, thread_name_prefix="dynamodb-writer")
        number = start
        try:
            with LineSource(source) as lines, progress(f"load {source.name}", lines.size, "bytes") as bar:
                for number, line in enumerate(islice(lines, start, None), start=start + 1):
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
                        continue
                    except Rejected as exc:
                        self.rejects.add(report, source.name, number, str(exc), line)
                        continue
                    report.accepted += 1
                    key = (table, *key)
                    if key in batch_keys:  # one BatchWriteItem may not name a key twice
                        submit(pool, number - 1)
                    if key in keys_in_flight:  # an earlier line for this key must land first
                        earlier = keys_in_flight[key]
                        wait([earlier])
                        settle([earlier])
                    batch.append(_Pending(number, table, key, item))
                    batch_keys.add(key)
                    if len(batch) == BATCH:
                        submit(pool, number)
                if batch:
                    submit(pool, number)
                settle(list(in_flight))  # blocks until every batch is written
                bar.advance(lines.size, counters.written, absolute=True)
            state["done"] = number
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            for future in [f for f in in_flight if f.done() and not f.cancelled() and f.exception() is None]:
                settle([future])
            report.written, report.retried, report.calls = counters.written, counters.retried, counters.calls
            report.seconds = time.perf_counter() - started
            if in_flight or submitted_ends:
                checkpoint.write(source, self.tables, state["done"])
        checkpoint.clear()
        return report
