"""A redirect's move of readers' items from the merged work (the source) to the work it now is (the
target): one step's transaction, planned from what was read. Pure: no I/O (lifecycle.py reads, sends and
retries).

A step moves up to MOVE_CHUNK rating rows and MOVE_CHUNK shelf entries of the source, each with the
counts it feeds, in one TransactWriteItems, every action conditioned on what was read:
- each source item is deleted conditioned on its value and timestamp as read (`rating`, `updated_at`;
  `shelf`, `shelved_at`), as the ratings service conditions its own writes;
- its copy is put on the target conditioned on the reader having no item there, or, when the reader has
  one there too (rated or shelved both works), on that item as read: **the more recently updated one is
  kept** (`updated_at` for ratings, `shelved_at` for shelf entries; on a tie the target's), the other
  dropped and counted, never both counted;
- both books' counts move with the items (the target's distribution gains the moved stars, minus a
  replaced rating's; its `shelf_counts` gain the moved shelves, minus a replaced entry's; the source's lose
  them), each book's Update conditioned on a live book whose maps are as read.
A reader's rating or shelving of either book landing meanwhile moves those maps (or the item) in its own
transaction, so the step is cancelled whole and planned again from a fresh read: nothing a reader writes
is lost, and every committed step leaves both books' counts exact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bookrec_catalog.catalog import SHELVES
from bookrec_catalog.dynamo import to_attribute
from bookrec_etl import aggregates, shelf_counts
from bookrec_etl.aggregates import Distribution
from bookrec_etl.plans import counts_update

# 2 actions per item, MOVE_CHUNK ratings and MOVE_CHUNK shelf entries, 2 books: 82 of the 100 allowed.
MOVE_CHUNK = 20
RATING_COMPARED = ("rating", "updated_at")
SHELF_COMPARED = ("shelf", "shelved_at")


@dataclass
class Step:
    actions: list[dict[str, Any]]
    ratings_moved: int = 0
    ratings_dropped: int = 0  # the older of a reader's two ratings (source and target)
    entries_moved: int = 0
    entries_dropped: int = 0


@dataclass(frozen=True)
class Tables:
    books: str
    ratings: str
    shelves: str


def _condition(previous: Mapping[str, Any] | None, compared: tuple[str, str]) -> dict[str, Any]:
    """An item write's condition: absent, or its compared value and timestamp as read."""
    if previous is None:
        return {"ConditionExpression": "attribute_not_exists(user_id)"}
    conditions, names, values = [], {}, {}
    for n, attribute in enumerate(compared):
        names[f"#c{n}"] = attribute
        if attribute in previous:
            values[f":c{n}"] = to_attribute(previous[attribute])
            conditions.append(f"#c{n} = :c{n}")
        else:  # an item written without it (none the services write): absent stays absent
            conditions.append(f"attribute_not_exists(#c{n})")
    return {"ConditionExpression": " AND ".join(conditions), "ExpressionAttributeNames": names,
            **({"ExpressionAttributeValues": values} if values else {})}


def _delete(table: str, item: Mapping[str, Any], compared: tuple[str, str]) -> dict[str, Any]:
    key = {"book_id": {"S": item["book_id"]}, "user_id": {"S": item["user_id"]}}
    return {"Delete": {"TableName": table, "Key": key, **_condition(item, compared)}}


def _put(table: str, item: Mapping[str, Any], target_id: str, previous: Mapping[str, Any] | None,
         compared: tuple[str, str]) -> dict[str, Any]:
    moved = {k: to_attribute(v) for k, v in {**item, "book_id": target_id}.items()}
    return {"Put": {"TableName": table, "Item": moved, **_condition(previous, compared)}}


def _newer(item: Mapping[str, Any], other: Mapping[str, Any] | None, moment: str) -> bool:
    """The source's item wins over the target's: none there, or strictly more recently updated."""
    return other is None or str(item.get(moment, "")) > str(other.get(moment, ""))


def plan_step(tables: Tables, source: Mapping[str, Any], target: Mapping[str, Any],
              rows: Sequence[Mapping[str, Any]], target_rows: Mapping[str, Mapping[str, Any]],
              entries: Sequence[Mapping[str, Any]], target_entries: Mapping[str, Mapping[str, Any]],
              now: str) -> Step:
    """The transaction moving `rows` (source rating rows) and `entries` (source shelf entries) to the target,
    given the target's items of the same readers (user_id -> item, as read) and both books as read."""
    step = Step([])
    target_id, source_id = target["book_id"], source["book_id"]
    source_stars, target_stars = aggregates.stored_distribution(source), aggregates.stored_distribution(target)
    source_shelves = shelf_counts.stored_counts(source) or shelf_counts.zero()
    target_shelves = shelf_counts.stored_counts(target) or shelf_counts.zero()
    for row in rows:
        there = target_rows.get(row["user_id"])
        step.actions.append(_delete(tables.ratings, row, RATING_COMPARED))
        _take(source_stars, str(row["rating"]))
        if _newer(row, there, "updated_at"):
            step.actions.append(_put(tables.ratings, row, target_id, there, RATING_COMPARED))
            target_stars[str(row["rating"])] += 1
            if there is not None:
                _take(target_stars, str(there["rating"]))
        step.ratings_moved += there is None
        step.ratings_dropped += there is not None
    for entry in entries:
        there = target_entries.get(entry["user_id"])
        step.actions.append(_delete(tables.shelves, entry, SHELF_COMPARED))
        _take(source_shelves, str(entry["shelf"]))
        if _newer(entry, there, "shelved_at"):
            step.actions.append(_put(tables.shelves, entry, target_id, there, SHELF_COMPARED))
            if str(entry["shelf"]) in target_shelves:
                target_shelves[str(entry["shelf"])] += 1
            if there is not None:
                _take(target_shelves, str(there["shelf"]))
        step.entries_moved += there is None
        step.entries_dropped += there is not None
    rated, shelved = bool(rows), bool(entries)
    for book_id, record, stars, shelves in ((source_id, source, source_stars, source_shelves),
                                            (target_id, target, target_stars, target_shelves)):
        step.actions.append(counts_update(tables.books, book_id, record, now,
                                          distribution=stars if rated else None,
                                          shelves=_known(shelves) if shelved else None))
    return step


def _take(counts: Distribution, key: str) -> None:
    """One star (or shelf) less; a count already at zero stays there (drift: reconcile repairs the book)."""
    if key in counts:
        counts[key] = max(0, counts[key] - 1)


def _known(counts: Mapping[str, int]) -> dict[str, int]:
    return {shelf: counts[shelf] for shelf in SHELVES}
