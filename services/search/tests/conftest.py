"""The real Open Library sample as book items, for relevance tests."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import pytest

from bookrec_catalog.catalog import with_derived_attributes

# The bundled philosophy works (data-processing/seed/philosophy_books_openlibrary.jsonl.gz).
SEED = Path(__file__).resolve().parents[3] / "data-processing" / "seed"
SAMPLE = SEED / "philosophy_books_openlibrary.jsonl.gz"


def book_item(row: dict[str, Any]) -> dict[str, Any]:
    """A sample row in the books-table shape.

    The sample carries a rating count but no average: its ratings become that
    many 4-star ratings, so popularity follows the real counts.
    """
    year = re.search(r"\d{3,4}", row.get("first_publish_year") or "")
    cover = re.search(r"/b/id/(\d+)", row.get("thumbnail_url") or "")
    return with_derived_attributes({
        "book_id": row["book_id"].rsplit("/", 1)[-1],
        "title": row["title"],
        "authors": [{"author_id": None, "name": name} for name in row.get("authors") or []],
        "subjects": row.get("subjects") or [],
        "first_publish_year": int(year.group()) if year else None,
        "language": row.get("language") or None,
        "cover_id": int(cover.group(1)) if cover else None,
        "ratings_distribution": {"4": int(row.get("ratings_count") or 0)},
    }, now="2026-01-01T00:00:00.000000Z")


@pytest.fixture(scope="session")
def sample_books() -> list[dict[str, Any]]:
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as lines:
        return [book_item(json.loads(line)) for line in lines]
