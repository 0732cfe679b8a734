"""The real sample files the ETL tests read: all inside the repository, so a fresh clone can run them.

- the bundled seed (data-processing/seed): Open Library development-database dumps, the philosophy
  JSONL, goodbooks-10k books, genres and a ratings sample (gzip-compressed where large);
- tests/data: a slice of the official Open Library authors dump (see tests/data/README.md).

And `rate` and `shelve`: a reader's rating or shelving through the ratings service's own write path (its
RatingStore), for the tests where the ETL must never lose what readers wrote.
"""

from __future__ import annotations

import asyncio
import gzip
import threading
from pathlib import Path
from typing import IO

import pytest

from bookrec_catalog.catalog import SHELVES, utc_now
from bookrec_common.clients import dynamodb_client
from bookrec_common.settings import ServiceSettings
from bookrec_etl.seed import seed_files
from bookrec_ratings.store import RatingStore

SEED_DIR = Path(__file__).resolve().parents[1] / "seed"
DATA_DIR = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def samples() -> dict[str, Path]:
    """Name -> path: works, editions, authors (development database), philosophy, goodbooks_books,
    goodbooks_genres, goodbooks_ratings (the seed's names), and authors_dump (1,500 authors-dump lines)."""
    return {**seed_files(SEED_DIR), "authors_dump": DATA_DIR / "ol_dump_authors_sample.txt.gz"}


def _open_text(path: Path) -> IO[str]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


@pytest.fixture(scope="session")
def open_sample():
    """open_sample(path) -> the file as text, decompressed when it is .gz (newline="" as csv wants)."""
    return _open_text


@pytest.fixture
def rate(tables, moto_endpoint):
    """rate(book_id, user_id, stars or None) -> the RatingChange: the ratings service's transactional write
    (rating row and book aggregate together, conditioned on what it read), as a reader's API call makes it.
    Callable from any thread."""

    async def change(book_id: str, user_id: str, stars: int | None):
        async with dynamodb_client(ServiceSettings()) as client:
            store = RatingStore(client, tables["books"], tables["ratings"], shelves_table=tables["shelves"])
            return await store.change(book_id, user_id, stars, utc_now())

    return lambda book_id, user_id, stars: asyncio.run(change(book_id, user_id, stars))


@pytest.fixture
def shelve(tables, moto_endpoint):
    """shelve(book_id, user_id, shelf or None) -> the ReaderChange: the ratings service's shelving (shelf entry
    and the book's shelf_counts together), as a reader's API call makes it."""

    async def change(book_id: str, user_id: str, shelf: str | None):
        async with dynamodb_client(ServiceSettings()) as client:
            store = RatingStore(client, tables["books"], tables["ratings"], shelves_table=tables["shelves"])
            return await store.shelve(book_id, user_id, shelf, utc_now())

    return lambda book_id, user_id, shelf: asyncio.run(change(book_id, user_id, shelf))


class FailingAfter:
    """The real client, raising (as a dropped connection would) once `calls` TransactWriteItems went
    through."""

    def __init__(self, client, calls: int) -> None:
        self.client, self.left = client, calls
        self.lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self.client, name)

    def transact_write_items(self, **kwargs):
        with self.lock:
            self.left -= 1
            if self.left < 0:
                raise ConnectionError("connection dropped")
        return self.client.transact_write_items(**kwargs)


@pytest.fixture
def failing_after() -> type[FailingAfter]:
    """FailingAfter(client, calls): a DynamoDB client whose connection drops after `calls` transactions."""
    return FailingAfter


@pytest.fixture
def shelf_entries(dynamodb, tables):
    """A book's shelf entries counted per shelf, as the shelves table holds them (strongly consistent)."""
    def count(book_id: str) -> dict[str, int]:
        items = dynamodb.query(TableName=tables["shelves"], KeyConditionExpression="book_id = :b",
                               ExpressionAttributeValues={":b": {"S": book_id}}, ConsistentRead=True)["Items"]
        counted = dict.fromkeys(SHELVES, 0)
        for item in items:
            counted[item["shelf"]["S"]] += 1
        return counted
    return count
