"""Book aggregates against the ratings table, and shelf counts against the shelves table: find the drift,
and repair it without losing a reader's rating or shelving.

The rules: a book's `ratings_distribution` is its `imported_distribution` plus one star per row of the
ratings table, and its sum, count and average follow from it (aggregates.py); its `shelf_counts` is its
`imported_shelf_counts` plus its entries in the shelves table counted per shelf, absent being zeros
(shelf_counts.py). Shelves are checked when a shelves table is given, with the same reads, one more table
each: a Scan of it projected to `book_id, shelf` in bulk, a strongly consistent Query of the book's
entries one by one.

- Finding: a few books (`--book`, or the loader's touched books up to QUERY_MAX_BOOKS) are checked one by
  one, exactly. More are first compared in bulk: the books (a parallel Scan, or BatchGetItem of the given
  ids) and one parallel Scan of the ratings table, counted per book in memory (an index and five
  counters per book, ~200 bytes, so ~200 MB at 1M books). Scans see no snapshot: a book rated while they
  pass may look drifted, so every suspect is then checked one by one, exactly, before anything is
  reported or written. A full run reads eventually consistent (half the read units), so a drift that a
  concurrent rating happens to mask waits for the next run. Given books (the loader's) are read strongly
  consistent, and their change stamps read again after the rows: every rating a reader writes restamps
  its book, so a book that is not restamped in between was compared in one state, and one that is
  restamped is checked one by one too. So the loader's reconcile misses no book it touched.
- Checking one book exactly: a strongly consistent GetItem of the book, then strongly consistent Queries
  of its rows (counted per star) and its shelf entries (counted per shelf).
- Repairing: one UpdateItem setting what drifts (the aggregate, the shelf counts or both), conditioned,
  like the ratings service's own writes, on a live book whose maps it writes are key by key as read
  (distribution and imported part per star, shelf counts per shelf). A rating or shelving that lands
  between the read and the write (it moves the book's counts in the same transaction as its row) fails
  the condition: the book is read and counted again and the write retried, so the repair never clobbers
  it. The write stamps the change feed, like every write of a book.
- Tombstones (deleted books) are skipped: they hold no aggregate, and their rows, kept in the ratings
  table, are counted again if the book is re-imported. Rows of no book at all are counted and reported.
  So are shelf entries: a re-imported book's entries are counted into its shelf counts again.
"""

from __future__ import annotations

import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from botocore.exceptions import ClientError
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from bookrec_catalog.catalog import SHELVES, STARS, utc_now
from bookrec_catalog.dynamo import from_item
from bookrec_etl import aggregates, shelf_counts
from bookrec_etl.aggregates import DISTRIBUTION, IMPORTED, Distribution, Drift
from bookrec_etl.dynamodb import batch_get
from bookrec_etl.plans import repair_update
from bookrec_etl.progress import Progress
from bookrec_etl.shelf_counts import IMPORTED_SHELF_COUNTS, SHELF_COUNTS, Counts, ShelfDrift

QUERY_MAX_BOOKS = 1_000  # past this many given books, one Scan of the ratings table costs less than Queries
SEGMENTS = 4
MAX_ATTEMPTS = 20
BACKOFF_BASE, BACKOFF_CAP = 0.01, 1.0
BATCH_GET = 100  # BatchGetItem's maximum
SHOWN = 10  # worst books printed
_AGGREGATE_NAMES = ("book_id", DISTRIBUTION, IMPORTED, "rating_sum", "rating_count", "avg_rating",
                    SHELF_COUNTS, IMPORTED_SHELF_COUNTS, "deleted_at", "changed_at")
_STAMP_NAMES = ("book_id", "changed_at")
NO_SHELVES = "shelf drift: not checked (no shelves table: pass --shelves-table or set SHELVES_TABLE)"


class LostRace(Exception):
    """The book changed between the read and the conditional write: read it again."""


class ReconcileError(RuntimeError):
    """A book could not be repaired after MAX_ATTEMPTS reads (it is being changed too busily)."""


class Reading(NamedTuple):
    """One book read exactly: its attributes (None: no item), its rows per star, its shelf entries per shelf
    (None: shelves not checked)."""

    record: dict[str, Any] | None
    counted: Distribution
    shelved: Counts | None


@dataclass
class Findings:
    books: int = 0  # live books compared
    tombstones: int = 0
    ratings: int = 0  # rows counted
    orphans: Counter = field(default_factory=Counter)  # rows of "deleted" / "unknown" books
    shelves: bool = False  # shelf counts checked (a shelves table was given)
    shelf_entries: int = 0
    shelf_orphans: Counter = field(default_factory=Counter)  # entries of "deleted" / "unknown" books
    suspects: int = 0  # books checked one by one after the bulk comparison
    drift: list[Drift] = field(default_factory=list)
    shelf_drift: list[ShelfDrift] = field(default_factory=list)
    fixed: int = 0  # books repaired (their aggregate, their shelf counts, or both in one write)
    lost_races: int = 0
    legacy: int = 0  # live books recording no imported part
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def drifted(self) -> bool:
        return bool(self.drift or self.shelf_drift)

    @property
    def shortfall(self) -> int:
        """Ratings missing from the aggregates, in all."""
        return -sum(min(d.count_off, 0) for d in self.drift)

    @property
    def excess(self) -> int:
        return sum(max(d.count_off, 0) for d in self.drift)

    def lines(self, fixing: bool) -> list[str]:
        entries = f", {_count(self.shelf_entries, 'shelf entry', 'shelf entries')} counted (of no live " \
                  f"book: {_orphans(self.shelf_orphans)})" if self.shelves else ""
        head = (f"reconcile: {_count(self.books, 'book')} checked ({self.tombstones:,} deleted, skipped; "
                f"{self.legacy:,} recording no imported part), {_count(self.ratings, 'rating')} counted "
                f"(of no live book: {_orphans(self.orphans)}){entries}, {self.suspects:,} checked one by one")
        lines = [head]
        if self.drift:
            lines.append(f"drift: {_count(len(self.drift), 'book')} (aggregates short of "
                         f"{_count(self.shortfall, 'rating')}, over by {self.excess:,}); the worst:")
            lines += _worst(self.drift)
        else:
            lines.append("drift: none")
        if not self.shelves:
            lines.append(NO_SHELVES)
        elif self.shelf_drift:
            short = -sum(min(d.count_off, 0) for d in self.shelf_drift)
            over = sum(max(d.count_off, 0) for d in self.shelf_drift)
            lines.append(f"shelf drift: {_count(len(self.shelf_drift), 'book')} (shelf counts short of "
                         f"{_count(short, 'reader')}, over by {over:,}); the worst:")
            lines += _worst(self.shelf_drift)
        else:
            lines.append("shelf drift: none")
        if fixing and self.drifted:
            lost = _count(self.lost_races, "write")
            lines.append(f"fixed: {_count(self.fixed, 'book')} ({lost} lost a race with a reader's rating or "
                         "shelving and read the book again)")
        return lines


class Reconciler:
    """Compares (and with fix=True repairs) book aggregates against the ratings table, and shelf counts
    against the shelves table when one is given."""

    def __init__(self, client: Any, books_table: str, ratings_table: str, *, shelves_table: str | None = None,
                 workers: int = 8, segments: int = SEGMENTS, sleep: Callable[[float], None] = time.sleep,
                 before_write: Callable[[str], None] | None = None, progress=Progress) -> None:
        self.client, self.books, self.ratings, self.shelves = client, books_table, ratings_table, shelves_table
        self.workers, self.segments = max(1, workers), max(1, segments)
        self._sleep, self._before_write, self._progress = sleep, before_write, progress

    # -- one book, exactly ----------------------------------------------------------------------------

    def read(self, book_id: str) -> Reading:
        """The book's aggregate attributes and shelf counts, its rows counted per star and its shelf entries
        per shelf, all read strongly consistently, the book first: a rating or shelving landing after the
        book's read shows in its rows and fails the write's condition on the counts it moved."""
        response = self.client.get_item(TableName=self.books, Key={"book_id": {"S": book_id}},
                                        ConsistentRead=True, **_projection(_AGGREGATE_NAMES))
        record = from_item(response["Item"]) if response.get("Item") else None
        counted = aggregates.zero()
        shelved = shelf_counts.zero() if self.shelves else None
        if record is None or "deleted_at" in record:
            return Reading(record, counted, shelved)
        for item in self._rows(self.ratings, book_id, "rating"):
            star = item.get("rating", {}).get("N")
            if star in counted:
                counted[star] += 1
        if self.shelves and shelved is not None:
            for item in self._rows(self.shelves, book_id, "shelf"):
                shelf = item.get("shelf", {}).get("S")
                if shelf in shelved:
                    shelved[shelf] += 1
        return Reading(record, counted, shelved)

    def _rows(self, table: str, book_id: str, name: str) -> Iterable[dict[str, Any]]:
        """The book's items of `table` (a strongly consistent Query), projected to `name`."""
        pages = self.client.get_paginator("query").paginate(
            TableName=table, ConsistentRead=True, KeyConditionExpression="book_id = :b",
            ExpressionAttributeValues={":b": {"S": book_id}}, ProjectionExpression="#n",
            ExpressionAttributeNames={"#n": name})
        for page in pages:
            yield from page["Items"]

    def check(self, book_id: str, findings: Findings, *, fix: bool = False,
              adopt: Distribution | None = None, count: bool = False) -> None:
        """Check one book, its drift found on the first read going into `findings`; with `fix`, repair it
        (re-read and retried when a rating or shelving lands meanwhile). `adopt`: the imported part the book
        holds from now on (a re-import's, for a book that recorded none); `count`: count the book (live,
        deleted, legacy) and its rows into `findings`. Deleted and unknown books: nothing found."""
        retrying = Retrying(retry=retry_if_exception_type(LostRace), stop=stop_after_attempt(MAX_ATTEMPTS),
                            wait=wait_random_exponential(multiplier=BACKOFF_BASE, max=BACKOFF_CAP),
                            sleep=self._sleep, reraise=True)
        first: list[bool] = []
        try:
            for attempt in retrying:
                with attempt:
                    self._check_once(book_id, findings, fix, adopt, first, count)
        except LostRace:
            raise ReconcileError(f"book {book_id} is being rated or shelved too busily: it was read "
                                 f"{MAX_ATTEMPTS} times and changed each time; run reconcile again") from None

    def _check_once(self, book_id: str, findings: Findings, fix: bool, adopt: Distribution | None,
                    first: list[bool], count: bool) -> None:
        record, counted, shelved = self.read(book_id)
        live = record is not None and "deleted_at" not in record
        drift = shelf_drift = None
        if record is not None and live:
            drift = aggregates.drift_of(book_id, record, counted, adopt, adopt is not None)
            if shelved is not None:
                shelf_drift = shelf_counts.shelf_drift_of(book_id, record, shelved)
        if not first:
            first.append(True)
            with findings.lock:
                findings.shelves = shelved is not None
                findings.drift += [drift] if drift else []
                findings.shelf_drift += [shelf_drift] if shelf_drift else []
                if count and record is not None:
                    findings.books += live
                    findings.tombstones += not live
                    findings.legacy += live and IMPORTED not in record
                    findings.ratings += sum(counted.values())
                    findings.shelf_entries += sum((shelved or {}).values())
        if record is None or (drift is None and shelf_drift is None) or not fix:
            return
        if self._before_write is not None:
            self._before_write(book_id)
        aggregate = None
        if drift is not None:
            imported = drift.imported if drift.imported is not None else \
                aggregates.minus(drift.target, counted)  # legacy: what it holds beyond its rows
            aggregate = (drift.target, imported)
        shelves = None if shelf_drift is None else \
            (shelf_drift.target, shelf_drift.imported if shelf_drift.imported_malformed else None)
        action = repair_update(self.books, book_id, record, utc_now(), aggregate=aggregate,
                               shelves=shelves)["Update"]
        try:
            self.client.update_item(**action)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            with findings.lock:
                findings.lost_races += 1
            raise LostRace(book_id) from None
        with findings.lock:
            findings.fixed += 1

    # -- many books -----------------------------------------------------------------------------------

    def run(self, book_ids: Iterable[str] | None = None, fix: bool = False, progress=None) -> Findings:
        """Every book (book_ids None) or the given ones: compare, check suspects exactly, repair with fix."""
        if progress is not None:
            self._progress = progress
        findings = Findings(shelves=self.shelves is not None)
        ids = None if book_ids is None else list(dict.fromkeys(book_ids))
        one_by_one = ids is not None and len(ids) <= QUERY_MAX_BOOKS
        suspects = ids if ids is not None and one_by_one else self._suspects(findings, ids)
        findings.suspects = len(suspects)
        if suspects:
            label = "reconcile: fix" if fix else "reconcile: check"
            with self._progress(label, len(suspects), "items") as bar, \
                    ThreadPoolExecutor(self.workers, thread_name_prefix="reconcile") as pool:
                checks = pool.map(lambda b: self.check(b, findings, fix=fix, count=one_by_one), suspects)
                for done, _ in enumerate(checks, start=1):
                    bar.advance(done, done, absolute=True)
        findings.drift.sort(key=lambda d: d.book_id)
        findings.shelf_drift.sort(key=lambda d: d.book_id)
        return findings

    def _suspects(self, findings: Findings, ids: list[str] | None) -> list[str]:
        """Books, rows and shelf entries compared in memory: the books that may drift (then checked one by
        one)."""
        index: dict[str, int] = {}
        # Five counters a book: the rows each star still expects (stored - imported; stored for a legacy
        # book); every row counted takes one off its star. Three more with shelves: the entries each shelf
        # still expects (stored - imported), every entry counted taking one off its shelf.
        expecting = array("i")
        shelf_expecting = array("i")
        legacy, inconsistent = bytearray(), bytearray()
        deleted: set[str] = set()
        stamps: dict[str, str | None] = {}  # given books: their change stamps as first read
        lock = threading.Lock()

        def add(items: list[dict[str, Any]]) -> None:
            with lock:
                for record in map(from_item, items):
                    book_id = record["book_id"]
                    stamps[book_id] = record.get("changed_at")
                    if "deleted_at" in record:
                        deleted.add(book_id)
                        continue
                    stored = aggregates.stored_distribution(record)
                    imported = aggregates.recorded_imported(record)
                    index[book_id] = len(index)
                    expecting.extend(stored[s] - (imported[s] if imported else 0) for s in STARS)
                    legacy.append(imported is None)
                    shelved = shelf_counts.stored_counts(record)
                    shelf_imported = shelf_counts.recorded_imported(record)
                    shelf_expecting.extend((shelved or shelf_counts.zero())[s] - (shelf_imported or {}).get(s, 0)
                                           for s in SHELVES)
                    inconsistent.append(not aggregates.self_consistent(record) or (
                        self.shelves is not None and (shelved is None or shelf_imported is None)))

        if ids is None:
            self._scan(self.books, _AGGREGATE_NAMES, add, "books")
        else:
            add(self._get(ids, _AGGREGATE_NAMES))
        findings.books, findings.tombstones, findings.legacy = len(index), len(deleted), sum(legacy)

        def counter(name: str, numbers: dict[str, int], width: int, expected: array, orphans_of: Counter,
                    counted: str) -> Callable[[list[dict[str, Any]]], None]:
            def count(items: list[dict[str, Any]]) -> None:
                orphans: Counter = Counter()
                rows = 0
                with lock:
                    for item in items:
                        book_id = item.get("book_id", {}).get("S")
                        value = next(iter(item.get(name, {}).values()), None)
                        position = index.get(book_id)
                        if position is not None and value in numbers:
                            expected[position * width + numbers[value]] -= 1
                        elif ids is not None:
                            continue  # another book's row: not asked about
                        else:
                            orphans["deleted" if book_id in deleted else "unknown"] += 1
                        rows += 1
                with findings.lock:
                    setattr(findings, counted, getattr(findings, counted) + rows)
                    orphans_of.update(orphans)
            return count

        self._scan(self.ratings, ("book_id", "rating"),
                   counter("rating", _STAR_NUMBERS, 5, expecting, findings.orphans, "ratings"),
                   "ratings", consistent=ids is not None)
        if self.shelves is not None:
            self._scan(self.shelves, ("book_id", "shelf"),
                       counter("shelf", _SHELF_NUMBERS, 3, shelf_expecting, findings.shelf_orphans,
                               "shelf_entries"),
                       "shelves", consistent=ids is not None)
        suspects = []
        for book_id, position in index.items():
            left = expecting[position * 5:position * 5 + 5]
            drifts = any(n < 0 for n in left) if legacy[position] else any(left)
            shelves_off = self.shelves is not None and any(shelf_expecting[position * 3:position * 3 + 3])
            if drifts or shelves_off or inconsistent[position]:
                suspects.append(book_id)
        if ids is not None:
            # Every rating and shelving a reader writes restamps its book: a book whose stamp moved while its
            # rows were counted may have been compared across the change, so it is checked one by one too.
            now = {item["book_id"]["S"]: item.get("changed_at", {}).get("S")
                   for item in self._get(ids, _STAMP_NAMES)}
            moved = {book_id for book_id in set(stamps) | set(now) if stamps.get(book_id) != now.get(book_id)}
            suspects += sorted(moved - set(suspects))
        return suspects

    def _get(self, book_ids: list[str], names: tuple[str, ...]) -> list[dict[str, Any]]:
        """The books' attributes `names`, strongly consistent, 100 a BatchGetItem."""
        items = []
        for start in range(0, len(book_ids), BATCH_GET):
            keys = [{"book_id": {"S": book_id}} for book_id in book_ids[start:start + BATCH_GET]]
            request = {self.books: {"Keys": keys, "ConsistentRead": True, **_projection(names)}}
            items += [item for _, item in batch_get(self.client, request, self._sleep)]
        return items

    def _scan(self, table: str, names: tuple[str, ...], on_page: Callable[[list[dict[str, Any]]], None],
              what: str, consistent: bool = False) -> None:
        """A parallel Scan (self.segments) of `names`; each page goes to `on_page`."""
        estimate = self.client.describe_table(TableName=table)["Table"].get("ItemCount") or None
        done, progress_lock = [0], threading.Lock()
        with self._progress(f"reconcile: scan {what}", estimate, "items") as bar:

            def segment(number: int) -> None:
                pages = self.client.get_paginator("scan").paginate(
                    TableName=table, Segment=number, TotalSegments=self.segments, ConsistentRead=consistent,
                    **_projection(names))
                for page in pages:
                    on_page(page["Items"])
                    with progress_lock:
                        done[0] += len(page["Items"])
                        bar.advance(done[0], done[0], absolute=True)

            with ThreadPoolExecutor(self.segments, thread_name_prefix=f"scan-{what}") as pool:
                list(pool.map(segment, range(self.segments)))


_STAR_NUMBERS = {star: n for n, star in enumerate(STARS)}
_SHELF_NUMBERS = {shelf: n for n, shelf in enumerate(SHELVES)}


def _count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def _orphans(orphans: Counter) -> str:
    return ", ".join(f"{n:,} of {kind} books" for kind, n in sorted(orphans.items())) or "none"


def _worst(drifts: Sequence[Drift | ShelfDrift]) -> list[str]:
    worst = sorted(drifts, key=lambda d: (-d.size, d.book_id))[:SHOWN]
    lines = [f"  {d.describe()}" for d in worst]
    if len(drifts) > SHOWN:
        lines.append(f"  ... and {len(drifts) - SHOWN:,} more")
    return lines


def _projection(names: tuple[str, ...]) -> dict[str, Any]:
    return {"ProjectionExpression": ", ".join(f"#n{i}" for i in range(len(names))),
            "ExpressionAttributeNames": {f"#n{i}": name for i, name in enumerate(names)}}
