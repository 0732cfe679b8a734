"""Pure bookdetail logic: batch planning, the stored record -> contract shape."""

from __future__ import annotations

from typing import Any

from bookrec_bookdetail.models import Author, Book, Series, ShelfCounts
from bookrec_catalog.catalog import SHELVES, average, cover_url, empty_distribution


def unique_ids(book_ids: list[str]) -> list[str]:
    """Duplicates collapsed, in the order of first appearance."""
    return list(dict.fromkeys(book_ids))


def to_book(record: dict[str, Any]) -> Book:
    distribution = empty_distribution()
    distribution.update({str(k): int(v) for k, v in (record.get("ratings_distribution") or {}).items()
                         if str(k) in distribution})
    count = int(record.get("rating_count", 0))
    cover_id = record.get("cover_id")
    return Book(
        book_id=record["book_id"],
        title=record.get("title", ""),
        subtitle=record.get("subtitle"),
        authors=[Author(author_id=a.get("author_id"), name=a.get("name", ""))
                 for a in record.get("authors", [])],
        subjects=list(record.get("subjects", [])),
        first_publish_year=record.get("first_publish_year"),
        isbn_13=list(record.get("isbn_13", [])),
        language=record.get("language"),
        description=record.get("description"),
        cover_id=cover_id,
        cover_url=cover_url(cover_id, record.get("cover_url")),
        avg_rating=float(record.get("avg_rating") or average(int(record.get("rating_sum", 0)), count)),
        rating_count=count,
        ratings_distribution=distribution,
        created_at=record.get("created_at"),
        updated_at=record.get("updated_at"),
        original_title=record.get("original_title"),
        series=_series(record.get("series")),
        shelf_counts=ShelfCounts(**{shelf: int(count) for shelf, count in (record.get("shelf_counts") or {}).items()
                                    if shelf in SHELVES}),
    )


def _series(stored: Any) -> Series | None:
    if not isinstance(stored, dict) or not stored.get("name"):
        return None
    position = stored.get("position")
    return Series(name=str(stored["name"]), position=float(position) if position is not None else None)
