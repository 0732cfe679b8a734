"""Deleting books from the catalogue: each book is replaced by its tombstone.

- A tombstone (bookrec_catalog.changes.tombstone) keeps only the id, the change feed's stamp, `deleted_at`
  and `expires_at` (the table's TTL), so search replicas learn of the deletion through the feed like any
  other change, and DynamoDB removes it once every reader has had time to see it.
- Every id is checked before anything is written: one malformed id and nothing is deleted.
- Each deletion is one conditional PutItem: only a live book (it exists, not already a tombstone) is
  replaced, so a deletion never creates an item and never restamps an old tombstone. A refused write
  says why through ReturnValuesOnConditionCheckFailure (the tombstone it met, or nothing), with no
  second read.
- Ratings of a deleted book stay in the ratings table; the ratings service answers 404 for the book.
  Loading the book again (`load`) puts it back whole, and counts those ratings into its aggregate again.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from bookrec_catalog.catalog import is_book_id, utc_now
from bookrec_catalog.changes import tombstone
from bookrec_catalog.dynamo import to_item

_LIVE_BOOK = "attribute_exists(book_id) AND attribute_not_exists(deleted_at)"
SHOWN_IDS = 5  # a message names at most this many ids, then says how many more


class MalformedIds(ValueError):
    """Some given ids are no book ids: nothing was deleted."""

    def __init__(self, bad: list[tuple[str, str]], consequence: str = "nothing was deleted") -> None:
        shown = ", ".join(f"{value!r} ({where})" for value, where in bad[:SHOWN_IDS])
        more = f" and {len(bad) - SHOWN_IDS} more" if len(bad) > SHOWN_IDS else ""
        super().__init__(f"{len(bad)} malformed book id(s): {shown}{more}; {consequence}")
        self.bad = bad


@dataclass
class Deletions:
    deleted: list[str] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    already_deleted: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"delete: deleted {len(self.deleted):,}, not found {len(self.not_found):,}, "
                f"already deleted {len(self.already_deleted):,}")


def checked_ids(given: Iterable[tuple[str, str]], consequence: str = "nothing was deleted") -> list[str]:
    """(id, where it came from) pairs -> the ids, duplicates collapsed in order; MalformedIds names every
    bad one (and says `consequence`). Surrounding whitespace is ignored."""
    ids, bad = [], []
    for value, where in given:
        value = value.strip()
        if is_book_id(value):
            ids.append(value)
        else:
            bad.append((value, where))
    if bad:
        raise MalformedIds(bad, consequence)
    return list(dict.fromkeys(ids))


def delete_one(client: Any, table: str, book_id: str, *, as_read: dict[str, Any] | None = None) -> str:
    """Replace one live book by its tombstone: "deleted", "not found" or "already deleted"; with `as_read`
    (the book's item as read, for a redirect's last step), only while its change stamp is as read, else
    "changed" (a reader's rating or shelving landed since: read it again)."""
    item = to_item(tombstone(book_id, utc_now(), time.time()))
    condition: dict[str, Any] = {"ConditionExpression": _LIVE_BOOK}
    if as_read is not None:
        stamp = as_read.get("changed_at")
        condition["ExpressionAttributeNames"] = {"#c": "changed_at"}
        if stamp is None:
            condition["ConditionExpression"] += " AND attribute_not_exists(#c)"
        else:
            condition["ConditionExpression"] += " AND #c = :c"
            condition["ExpressionAttributeValues"] = {":c": {"S": stamp}}
    try:
        client.put_item(TableName=table, Item=item, ReturnValuesOnConditionCheckFailure="ALL_OLD", **condition)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        found: Any = exc.response.get("Item")  # the item as it was: what failed the condition
        if found and "deleted_at" not in found:
            return "changed"
        return "already deleted" if found else "not found"
    return "deleted"


def delete_books(client: Any, table: str, book_ids: list[str], writers: int = 8) -> Deletions:
    """Tombstone every book of `book_ids` that is live, `writers` PutItems at a time."""
    outcomes = Deletions()
    lists = {"deleted": outcomes.deleted, "not found": outcomes.not_found,
             "already deleted": outcomes.already_deleted}
    with ThreadPoolExecutor(max_workers=max(1, writers), thread_name_prefix="dynamodb-deleter") as pool:
        for book_id, outcome in zip(book_ids, pool.map(lambda b: delete_one(client, table, b), book_ids),
                                    strict=True):
            lists[outcome].append(book_id)
    return outcomes
