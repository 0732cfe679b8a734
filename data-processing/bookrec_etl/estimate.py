"""What a load costs on DynamoDB on demand, said before it starts: from a sample of the file's first lines.

A load reads every line's key once (strongly consistent BatchGetItem: 1 read unit per 4 KB of item) and
writes what differs in TransactWriteItems (2 write units per KB of item, transactional), each write also
landing in the table's two indexes (projection ALL: 1 write unit per KB each). Several rating lines of one
book in a batch share one guard: a read of the book's stamp (1 read unit) and a ConditionCheck (2 write
units). The estimate is the bound of a first load (every line new); a re-import writes only what changed,
so it costs the read units and far fewer write units. A delete or redirect line (lifecycle_records.py)
counts its book's read and its tombstone (3 write units); the readers' ratings and shelf entries a
redirect moves, and the reconcile after rating lines, are not in it (see the README).

The sizes are those of the very items the load would write (plans.plan_book / plan_rating over nothing
stored), measured as DynamoDB counts item size, over the first SAMPLE_LINES lines; the number of lines is
counted when the sample reaches the end of the file, else extrapolated from the bytes on disk the sample
read (at least SAMPLE_BYTES, so a compressed file's read-ahead blurs it by a few per cent at most).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from bookrec_catalog.catalog import utc_now
from bookrec_etl.lifecycle_records import is_lifecycle
from bookrec_etl.load import Tables, file_stamp, to_write
from bookrec_etl.plans import plan_book, plan_rating
from bookrec_etl.records import Rejected
from bookrec_etl.sources import BrokenInput, LineSource

READ_UNIT_DOLLARS = 0.125 / 1e6  # on demand, us-east-1: per read request unit
WRITE_UNIT_DOLLARS = 0.625 / 1e6  # ... per write request unit
SAMPLE_LINES = 2000
SAMPLE_BYTES = 4 << 20
BATCH_LINES = 100  # lines per transaction (writes.Batch)
INDEXES = 2  # per table, both projecting ALL (infrastructure/definitions/tables.json)
_TABLES = Tables("books", "ratings", "shelves")  # names only route lines here: nothing is sent


def attribute_bytes(value: dict[str, Any]) -> int:
    """The size DynamoDB counts for one attribute value (its name not included)."""
    (kind, inner), = value.items()
    if kind == "S":
        return len(inner.encode("utf-8"))
    if kind == "N":
        digits = len(inner.lstrip("-").replace(".", "").lstrip("0")) or 1
        return 1 + math.ceil(digits / 2)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(name.encode("utf-8")) + attribute_bytes(v) + 1 for name, v in inner.items())
    if kind == "L":
        return 3 + sum(attribute_bytes(v) + 1 for v in inner)
    return len(str(inner))


def item_bytes(item: dict[str, dict[str, Any]]) -> int:
    return sum(len(name.encode("utf-8")) + attribute_bytes(value) for name, value in item.items())


@dataclass
class Sample:
    """What the first lines of a file say: counts of each kind, their items' units, and how far they reach."""

    lines: int = 0  # every line of the sample (bad ones too)
    disk_bytes: int = 0  # of the file on disk, read to get them
    whole: bool = False  # the sample is the whole file
    books: int = 0
    ratings: int = 0
    others: int = 0  # delete and redirect lines
    read_units: int = 0
    write_units: int = 0
    examined: int = 0  # lines decoded for their kind and units (the first SAMPLE_LINES)


@dataclass(frozen=True)
class Estimate:
    books: int
    ratings: int
    read_units: int
    write_units: int
    counted: bool  # the lines were counted (the whole file was read), not extrapolated
    sampled_bytes: int
    others: int = 0  # delete and redirect lines (their book read, its tombstone written)

    @property
    def dollars(self) -> float:
        return self.read_units * READ_UNIT_DOLLARS + self.write_units * WRITE_UNIT_DOLLARS

    def line(self) -> str:
        about = "" if self.counted else "~"
        what = f"{about}{self.books:,} books"
        if self.ratings:
            what = f"{what} and {about}{self.ratings:,} ratings" if self.books else f"{about}{self.ratings:,} ratings"
        if self.others:
            what = f"{what} and {about}{self.others:,} delete or redirect lines"
        where = "" if self.counted else f" (from the first {self.sampled_bytes / 1e6:,.1f} MB)"
        cents = math.ceil(round(self.dollars * 100, 6))  # a bound: rounded up
        return (f"estimate: {what}{where} → ≤ {_units(self.read_units)} read units, "
                f"≤ {_units(self.write_units)} write units, ≤ ${cents / 100:,.2f} on demand "
                "(a first load: a re-import writes only what changed)")


def _units(n: int) -> str:
    return f"{n / 1e6:,.1f}M" if n >= 100_000 else f"{n:,}"


def line_units(record: dict[str, Any], is_rating: bool, table: str) -> tuple[int, int]:
    """(read units, write units) of one line loaded into an empty table."""
    plan = plan_rating(table, record, None) if is_rating else plan_book(table, record, None, utc_now())
    assert plan.action is not None  # over nothing stored, every line is written
    kib = math.ceil(item_bytes(plan.action["Put"]["Item"]) / 1024)
    return math.ceil(kib / 4), (2 + INDEXES) * kib


def _record(decoded: Any, stamp: str) -> tuple[str, str, dict[str, Any]]:
    """A decoded line as the load routes and checks it -> (kind, table, record): Rejected when bad."""
    table, _key, record = to_write(decoded, _TABLES, stamp)
    kind = "rating" if table == _TABLES.ratings else "lifecycle" if is_lifecycle(record) else "book"
    return kind, table, record


def sample(lines: Iterable[bytes], position: Callable[[], int], stamp: str) -> Sample:
    """Read the first lines of a file (`position()`: how far into the file on disk the reader is)."""
    found = Sample()
    batch: Counter = Counter()  # rating lines per book in the current batch of rating lines
    guards = 0
    for line in lines:
        found.lines += 1
        if found.examined < SAMPLE_LINES:
            found.examined += 1
            try:
                kind, table, record = _record(msgspec.json.decode(line), stamp)
            except (msgspec.DecodeError, Rejected):
                continue  # the load rejects it: no units
            if kind == "lifecycle":  # its book read, its tombstone written (and its index entry)
                found.others += 1
                found.read_units += 1
                found.write_units += 2 + 1
                continue
            is_rating = kind == "rating"
            read, write = line_units(record, is_rating, table)
            found.read_units += read
            found.write_units += write
            if is_rating:
                found.ratings += 1
                batch[record["book_id"]] += 1
                if sum(batch.values()) == BATCH_LINES:
                    guards += sum(1 for rows in batch.values() if rows > 1)
                    batch.clear()
            else:
                found.books += 1
        elif position() >= SAMPLE_BYTES:
            break
    else:
        found.whole = True
    guards += sum(1 for rows in batch.values() if rows > 1)
    found.read_units += guards
    found.write_units += 2 * guards
    found.disk_bytes = position()
    return found


def estimate(found: Sample, file_bytes: int) -> Estimate:
    """The whole file's estimate from its sample: exact when the sample is the whole file."""
    counted = found.whole and found.examined == found.lines
    lines = found.lines if found.whole else round(found.lines * file_bytes / max(found.disk_bytes, 1))
    scale = lines / found.examined if found.examined else 0.0
    return Estimate(round(found.books * scale), round(found.ratings * scale), math.ceil(found.read_units * scale),
                    math.ceil(found.write_units * scale), counted, found.disk_bytes, round(found.others * scale))


def estimate_file(path: Path) -> Estimate:
    """The estimate of loading `path` (plain or .gz) into empty tables; a file that breaks off within the
    sample is estimated from what was read (the load then says where it broke)."""
    with LineSource(path) as source:
        try:
            found = sample(source, lambda: source.position, file_stamp(path))
        except BrokenInput:
            found = Sample(lines=0)
    return estimate(found, source.size)
