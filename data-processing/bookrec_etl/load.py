"""Clean JSONL -> DynamoDB: a re-import changes the catalogue and never what readers wrote.

- Routing: a line with a `user_id` is a rating (ratings table), a line with `deleted` or `redirect_to` a
  work to tombstone (lifecycle.py: a redirect's readers' ratings and shelf entries follow it to its
  target), any other line a book (books table). Every line before the first delete or redirect line of a
  run is written before it is applied, so a redirect's target in the same file is there first.
  Books pass through records.book, i.e. bookrec_catalog.catalog.with_derived_attributes, so the
  derived attributes the services read are always set in the one shared place.
- Writes (writes.py, plans.py): up to 100 lines a batch; what is stored is read (one BatchGetItem) and
  only what differs is written, in one TransactWriteItems whose every action is conditioned on what was
  read. A new book is put whole, with the aggregate its line carries; an existing book gets its
  catalogue attributes only, never its aggregate, but for the part a source gives with no ratings
  behind it (`imported_distribution`, aggregates.py), moved by the difference; a book the line does not
  change is not written at all. A rating line is written only over an older stored rating (or none): a
  reader's newer rating stays, and the line is counted as skipped.
- Aggregates stay exact. A rating line's row is written without its book's aggregate (a load would
  otherwise hold a transaction per rating); once the file is loaded, every book whose rows were written
  is reconciled (reconcile.py): counted and repaired with writes conditioned on its aggregate as read,
  so a reader's rating landing meanwhile is never lost. Not the ratings service's path, because a
  goodbooks book line already carries the counts of the ratings imported beside it: counting them again
  would double them, while a reconcile finds them exact and writes nothing. Until then a book's
  aggregate may lag the rows just loaded. An interrupted load reconciles the books of the lines it
  skips when it resumes. With a shelves table (only ever read), those books' shelf counts are reconciled
  too, and so are a revived book's: a book deleted and loaded again comes back without `shelf_counts`
  (a load never writes them) while its readers' shelf entries stay, and gets them back right away.
- Idempotent: loading the same file twice leaves the same tables (the second run writes nothing new). A
  key repeated in the file is never in flight twice at once, so the last line wins even with concurrent
  writers.
- Change feed: every book item written is stamped (bookrec_catalog.changes) with the time of the very
  call that writes it (a retried item, with the time of the retry), so search replicas find it among
  the books changed after their position; a deleted book's tombstone is replaced, so a re-import brings
  it back. Ratings are no books: they carry no stamp.
- Retries: a cancelled transaction is read, planned and sent again with exponential backoff and full
  jitter; throttling errors are retried by botocore. A batch DynamoDB refuses as invalid is retried line
  by line so the one bad line is rejected with its line number and the rest is written.
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
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import msgspec

from bookrec_etl.checkpoint import Checkpoint, prefix_digest
from bookrec_etl.dynamodb import dynamodb_client
from bookrec_etl.lifecycle import LifecycleWriter
from bookrec_etl.lifecycle_records import is_lifecycle, is_redirect, lifecycle
from bookrec_etl.plans import FEED_ATTRIBUTES
from bookrec_etl.progress import Progress
from bookrec_etl.reconcile import ReconcileError, Reconciler
from bookrec_etl.records import Rejected, book, rating
from bookrec_etl.report import EXCERPT, Rejects, Report
from bookrec_etl.sources import BrokenInput, LineSource
from bookrec_etl.writes import Batch, BatchResult, BatchWriter, Line, WriteError

__all__ = ["BrokenLoad", "Checkpoint", "LoadError", "Loader", "Tables", "dynamodb_client", "file_stamp",
           "to_write"]

log = logging.getLogger("bookrec.etl")
MAX_ITEM_BYTES = 400 * 1024
CHECKPOINT_EVERY_SECONDS = 1.0
PROGRESS_EVERY = 1000
LIFECYCLE_BATCH = 100  # delete and redirect lines a writer takes at once: their books are one BatchGetItem
RECONCILED = "books reconciled after their ratings were written"
REPAIRED = "books repaired (rating aggregate or shelf counts)"


class LoadError(RuntimeError):
    """The table could not take the items (not an input problem): the run stops, the checkpoint stays."""


@dataclass(frozen=True)
class Tables:
    books: str | None
    ratings: str | None
    shelves: str | None = None  # only read: a book's shelf counts are reconciled against it

    @classmethod
    def from_env(cls, books: str | None = None, ratings: str | None = None,
                 shelves: str | None = None) -> Tables:
        return cls(books or os.environ.get("BOOKS_TABLE") or None,
                   ratings or os.environ.get("RATINGS_TABLE") or None,
                   shelves or os.environ.get("SHELVES_TABLE") or None)


class BrokenLoad(LoadError):
    """The file broke off (BrokenInput): its first `broken.lines` lines are loaded, the checkpoint says so."""

    def __init__(self, broken: BrokenInput, report: Report, checkpoint: Checkpoint) -> None:
        super().__init__(str(broken))
        self.broken, self.report, self.checkpoint = broken, report, checkpoint


def file_stamp(path: Path) -> str:
    """Timestamp for records that carry none: the file's mtime, so loading the same file twice agrees."""
    moment = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def to_write(record: Any, tables: Tables, stamp: str) -> tuple[str, tuple, dict[str, Any]]:
    """A decoded line -> (table, key, record to store); Rejected when it cannot be stored."""
    if not isinstance(record, dict):
        raise Rejected("not a JSON object")
    if "user_id" in record:
        if tables.ratings is None or tables.books is None:
            raise LoadError("a ratings line but no ratings table, or no books table to keep its book's "
                            "aggregate exact: pass --ratings-table and --books-table, or set RATINGS_TABLE "
                            "and BOOKS_TABLE")
        stored = rating(record.get("book_id"), record.get("user_id"), record.get("rating"),
                        record.get("created_at") or stamp, record.get("updated_at"))
        return tables.ratings, (stored["book_id"], stored["user_id"]), stored
    if tables.books is None:
        raise LoadError("a books line but no books table: pass --books-table or set BOOKS_TABLE")
    if is_lifecycle(record):
        checked = lifecycle(record)
        if is_redirect(checked) and (tables.ratings is None or tables.shelves is None):
            raise LoadError("a redirect line, whose readers' ratings and shelf entries follow it to its target, "
                            "but no ratings or shelves table: pass --ratings-table and --shelves-table, or set "
                            "RATINGS_TABLE and SHELVES_TABLE")
        return tables.books, (checked["book_id"],), checked
    # The feed's attributes are the writer's alone: a line's own (an exported table re-imported) never
    # makes a live book a tombstone nor gives it a TTL.
    stored = book({"created_at": stamp, **{k: v for k, v in record.items() if k not in FEED_ATTRIBUTES}})
    return tables.books, (stored["book_id"],), stored


def _rated_book(line: bytes) -> str | None:
    """The book of a rating line (None for a book line or a bad one): a resumed load reconciles it."""
    try:
        record = msgspec.json.decode(line)
    except msgspec.DecodeError:
        return None
    if isinstance(record, dict) and "user_id" in record and isinstance(record.get("book_id"), str):
        return record["book_id"]
    return None


class Loader:
    def __init__(self, client: Any, tables: Tables, rejects: Rejects, writers: int = 8,
                 sleep=time.sleep) -> None:
        self.client, self.tables, self.rejects, self.writers = client, tables, rejects, max(1, writers)
        self.reconciler = None if not (tables.books and tables.ratings) else \
            Reconciler(client, tables.books, tables.ratings, shelves_table=tables.shelves, workers=self.writers,
                       sleep=sleep)
        self.writer = BatchWriter(client, tables.books, tables.ratings, self.reconciler, sleep)
        self.lifecycle = None if tables.books is None else \
            LifecycleWriter(client, tables.books, tables.ratings, tables.shelves, self.reconciler, sleep)

    def _write_lifecycle(self, lines: list[Line]) -> BatchResult:
        assert self.lifecycle is not None
        try:
            return self.lifecycle.write(lines)
        except WriteError as exc:
            raise LoadError(str(exc)) from None

    def _write_batch(self, batch: list[Line]) -> BatchResult:
        try:
            return self.writer.write(batch)
        except WriteError as exc:
            raise LoadError(str(exc)) from None

    def _reconcile(self, books: set[str], report: Report, progress) -> None:
        """Count the rows of the books whose ratings were written into their aggregates."""
        if not books or self.reconciler is None:
            return
        try:
            findings = self.reconciler.run(sorted(books), fix=True, progress=progress)
        except ReconcileError as exc:
            raise LoadError(str(exc)) from None
        report.notes[RECONCILED] += len(books)
        report.notes[REPAIRED] += findings.fixed

    # -- the file, on the calling thread ----------------------------------------------------------

    def _skip_done(self, source: Path, checkpoint: Checkpoint,
                   ) -> tuple[LineSource, Iterator[bytes], int, Any, set[str]]:
        """The open file positioned after the lines the checkpoint says are loaded, when the file still begins
        with exactly those lines; else at its start. Also the digest of the lines skipped and the books
        their rating lines name (their aggregates may not have been reconciled yet)."""
        saved = checkpoint.read(self.tables)
        lines, digest = LineSource(source), prefix_digest()
        stream: Iterator[bytes] = iter(lines)
        if saved is None or saved.lines_done <= 0:
            return lines, stream, 0, digest, set()
        count, rated = 0, set()
        try:
            for count, line in enumerate(islice(stream, saved.lines_done), start=1):  # noqa: B007 - count is read after the loop, when it stopped early
                digest.update(line)
                if b"user_id" in line and (book_id := _rated_book(line)):
                    rated.add(book_id)
        except BaseException:
            lines.close()
            raise
        if count == saved.lines_done and digest.hexdigest() == saved.digest:
            return lines, stream, count, digest, rated
        log.warning("checkpoint %s: %s does not begin with the %s lines it counted: loading from the start",
                    checkpoint.path, source, f"{saved.lines_done:,}")
        lines.close()
        lines = LineSource(source)
        return lines, iter(lines), 0, prefix_digest(), set()

    def load(self, source: Path, checkpoint: Checkpoint | None = None, progress=Progress) -> Report:
        checkpoint = checkpoint or Checkpoint(None)
        report = Report(f"load {source.name}", writes=True)
        try:
            lines, stream, start, digest, rated = self._skip_done(source, checkpoint)
        except BrokenInput as exc:  # broke even before where the last run stopped: nothing new to load
            raise BrokenLoad(exc, report, checkpoint) from None
        if start:
            report.notes["resumed after lines"] = start
        stamp = file_stamp(source)
        started = time.perf_counter()
        in_flight: dict[Future, tuple[int, list[Line]]] = {}
        keys_in_flight: dict[tuple, Future] = {}
        completed_ends: set[int] = set()
        submitted_ends: list[int] = []  # batch end lines in file order
        digests: dict[int, str] = {}  # batch end line -> digest of lines 1..end
        state: dict[str, Any] = {"done": start, "digest": digest.hexdigest(), "saved_at": 0.0}
        batch = Batch(self.tables.ratings)
        gathering = {"lifecycle": False}  # the batch holds delete and redirect lines (LifecycleWriter's)
        broken: BrokenInput | None = None

        def settle(futures) -> None:
            for future in futures:
                end, items = in_flight.pop(future)
                for pending in items:
                    if keys_in_flight.get(pending.key) is future:
                        del keys_in_flight[pending.key]
                self._count(future.result(), report, source, rated)
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
            nonlocal batch
            while len(in_flight) >= 2 * self.writers:
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                settle(done)
            write = self._write_lifecycle if gathering["lifecycle"] else self._write_batch
            future = pool.submit(write, batch.lines)
            in_flight[future] = (end, batch.lines)
            for pending in batch.lines:
                keys_in_flight[pending.key] = future
            submitted_ends.append(end)
            digests[end] = digest.hexdigest()  # the digest has taken in exactly lines 1..end
            batch = Batch(self.tables.ratings)

        pool = ThreadPoolExecutor(max_workers=self.writers, thread_name_prefix="dynamodb-writer")
        number = start
        try:
            with lines, progress(f"load {source.name}", lines.size, "bytes") as bar:
                try:
                    for number, line in enumerate(stream, start=start + 1):
                        report.read += 1
                        if report.read % PROGRESS_EVERY == 0:
                            bar.advance(lines.position, report.written, absolute=True)
                            settle([f for f in in_flight if f.done()])
                        try:
                            table, key, record = to_write(msgspec.json.decode(line), self.tables, stamp)
                            if len(line) > MAX_ITEM_BYTES:
                                raise Rejected("item larger than DynamoDB's 400 KB limit")
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
                        pending = Line(number, table, (table, *key), record, line[:EXCERPT * 4], len(line))
                        kind = is_lifecycle(record)
                        if batch and (kind != gathering["lifecycle"] or not batch.fits(pending) or (
                                kind and len(batch.lines) >= LIFECYCLE_BATCH)):
                            submit(pool, number - 1)  # one transaction: a key once, 100 actions, 4 MB
                        if kind and not gathering["lifecycle"]:
                            # Every line before a delete or redirect is written first: a redirect's target
                            # is a book line of the same file (extract writes them after every book).
                            settle(list(in_flight))
                        gathering["lifecycle"] = kind
                        if pending.key in keys_in_flight:  # an earlier line for this key must land first
                            earlier = keys_in_flight[pending.key]
                            wait([earlier])
                            settle([earlier])
                        digest.update(line)
                        batch.add(pending)
                except BrokenInput as exc:  # write what was read before the break, then stop
                    broken = exc
                if batch:
                    submit(pool, number)
                settle(list(in_flight))  # blocks until every batch is written
                bar.advance(lines.position, report.written, absolute=True)
            state["done"], state["digest"] = number, digest.hexdigest()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            for future in [f for f in in_flight if f.done() and not f.cancelled() and f.exception() is None]:
                settle([future])
            report.seconds = time.perf_counter() - started
            if state["done"] == 0 and broken is not None:
                checkpoint.clear()  # nothing loaded: there is nothing to resume after
            elif state["done"] > 0:  # kept until the books its ratings touched are reconciled
                checkpoint.write(source, self.tables, state["done"], state["digest"])
        self._reconcile(rated, report, progress)
        report.seconds = time.perf_counter() - started
        if broken is not None:
            raise BrokenLoad(broken, report, checkpoint)
        checkpoint.clear()
        return report

    def _count(self, result: BatchResult, report: Report, source: Path, rated: set[str]) -> None:
        """A written batch into the file's report."""
        for pending, message in result.refused:
            report.accepted -= 1
            self.rejects.add(report, source.name, pending.number, f"refused by DynamoDB: {message}",
                             pending.text)
        for _, reason in result.skipped:
            report.accepted -= 1
            report.skipped[reason] += 1
        report.written += result.written
        report.calls += result.calls
        report.retried += result.retried
        report.unchanged += result.unchanged
        report.notes.update({what: n for what, n in result.notes.items() if n})
        if result.reconciled:
            report.notes["books whose rows were counted into their aggregate"] += result.reconciled
            report.notes[REPAIRED] += result.repaired
        rated |= result.rated_books
