"""From the benchmark's figures to the whole Open Library: extract time of the full dumps, and the first
load of ~30M books on AWS (DynamoDB on demand), the way `load` does it and by import from S3.

The sources of every constant are in data-processing/README.md, "The whole Open Library".
"""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path

from bookrec_catalog.catalog import utc_now
from bookrec_etl.estimate import READ_UNIT_DOLLARS, WRITE_UNIT_DOLLARS, Estimate
from bookrec_etl.load import Tables, file_stamp, to_write
from bookrec_etl.plans import plan_book

# Lines of the full dumps of 2023-10-31: the counts bookdata-tools took of an earlier dump
# (openlibrary/{works,editions,authors}.json: 25,005,133 works, 34,734,959 editions, 9,515,425 authors, for
# 2.40, 7.77 and 0.43 GB of gzip in its openlibrary/dvc.lock) scaled by the 2023-10-31 dumps' gzip sizes
# (3.13, 9.88 and 0.58 GB, its data/dvc.lock).
FULL_DATE = "2023-10-31"
FULL_DUMPS = {"authors": 12_880_000, "works": 32_690_000, "editions": 44_170_000}
GROWTH = 1.5  # to late 2026, at the editions dump's growth of 2020-02 (6.08 GB) to 2023-10 (9.88 GB): 14%/year
CATALOGUE_BOOKS = 30_000_000
# DynamoDB on demand (developer guide, "Initial throughput and scaling properties"): a new table takes up to
# 4,000 write and 12,000 read request units a second, and twice its previous peak within 30 minutes; a table
# takes 40,000 of each by the default quota (raised on request, or pre-warmed with warm throughput).
NEW_TABLE_WRITE_UNITS, NEW_TABLE_READ_UNITS, TABLE_QUOTA = 4_000, 12_000, 40_000
IMPORT_DOLLARS_PER_GB = 0.15  # import from S3, per GB of uncompressed source (DynamoDB pricing, on demand)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:,.0f} min"


def extrapolate(seconds: dict[str, float], lines: dict[str, int], middle: float, aside: bool,
                basis: str = "wall time") -> list[str]:
    """Each pass scaled by its dump's lines (the write pass by the works'), then put together as they run.

    On a machine busy with other work the wall times stretch; the CPU seconds of each pass (its process's)
    say what it takes on cores of its own. With two processes the write pass's main half is measured:
    the helper writes the other half beside it."""
    scale = {name: FULL_DUMPS[name] / max(lines[name], 1) for name in FULL_DUMPS}
    full = {name: seconds.get(name, 0.0) * scale[name] for name in FULL_DUMPS}
    ratings = seconds.get("ratings", 0.0)
    main = full["authors"] + full["works"] + ratings
    reading = max(main, full["editions"]) if aside else main + full["editions"]
    after = middle * scale["editions"]
    writing = seconds.get("write books", 0.0) * scale["works"]
    total = reading + after + writing
    how = "beside" if aside else "after"
    out = [f"from {basis}: the full dumps of {FULL_DATE} (~{FULL_DUMPS['works'] / 1e6:.1f}M works, "
           f"~{FULL_DUMPS['editions'] / 1e6:.1f}M editions, ~{FULL_DUMPS['authors'] / 1e6:.1f}M authors), "
           f"each pass scaled by its lines: authors {_minutes(full['authors'])}, works {_minutes(full['works'])}, "
           f"editions {_minutes(full['editions'])} ({how} them), copy and index {_minutes(after)}, "
           f"write {_minutes(writing)}: {_minutes(total)} in all",
           f"from {basis}: grown to late 2026 (x{GROWTH}): {_minutes(total * GROWTH)}; the largest part: "
           + max((("reading the editions dump" if aside else "reading the dumps", reading),
                  ("writing the books", writing)), key=lambda part: part[1])[0]]
    return out


def _dynamodb_json_bytes(books: Path, sample: int = 2000) -> float:
    """Mean bytes of a book as an import from S3 reads it: one {"Item": ...} DynamoDB JSON line."""
    stamp, now, sizes = file_stamp(books), utc_now(), []
    with books.open("rb") as lines:
        for line in islice(lines, sample):
            table, _, record = to_write(json.loads(line), Tables("books", None), stamp)
            action = plan_book(table, record, None, now).action
            assert action is not None
            sizes.append(len(json.dumps({"Item": action["Put"]["Item"]})) + 1)
    return sum(sizes) / max(len(sizes), 1)


def _ramped_seconds(books: int, write_units: float, read_units: float, client_rate: float) -> float:
    """Seconds to write `books` on a new on-demand table that doubles its peak every 30 minutes."""
    done, seconds, peak = 0.0, 0.0, 1.0
    while done < books:
        rate = min(NEW_TABLE_WRITE_UNITS * peak / write_units, NEW_TABLE_READ_UNITS * peak / read_units,
                   TABLE_QUOTA / write_units, client_rate)
        step = min(1800.0, (books - done) / rate)
        done, seconds, peak = done + rate * step, seconds + step, peak * 2
    return seconds


def first_load_lines(found: Estimate, emulator_rate: float, per_cpu_second: float, books: Path) -> list[str]:
    """A first load of CATALOGUE_BOOKS books on AWS, from the estimate of the books loaded here."""
    if not found.books:
        return []
    reads, writes = found.read_units / found.books, found.write_units / found.books
    n = CATALOGUE_BOOKS
    dollars = n * (reads * READ_UNIT_DOLLARS + writes * WRITE_UNIT_DOLLARS)
    client = 2 * per_cpu_second  # the loader's own CPU on 2 cores: DynamoDB's work is not on it on AWS
    ramped = _ramped_seconds(n, writes, reads, client)
    warm = n / min(TABLE_QUOTA / writes, client)
    gigabytes = n * _dynamodb_json_bytes(books) / 1e9
    return [f"{n / 1e6:.0f}M books by load (TransactWriteItems, {reads:.2f} read and {writes:.2f} write units a "
            f"book): {n * reads / 1e6:,.0f}M read units, {n * writes / 1e6:,.0f}M write units = ${dollars:,.0f}; "
            f"on a new on-demand table (4,000 write units/s, doubling every 30 min): {ramped / 3600:.1f} h; "
            f"pre-warmed to the 40,000 units/s quota: {warm / 3600:.1f} h (the loader's CPU on 2 cores "
            f"allows {client:,.0f} books/s; the emulator took {emulator_rate:,.0f}/s)",
            f"{n / 1e6:.0f}M books by import from S3 into a new table: {gigabytes:,.1f} GB of DynamoDB JSON "
            f"= ${gigabytes * IMPORT_DOLLARS_PER_GB:,.2f}, no write units"]
