"""Lines for works a source deleted or merged into another. Pure: no I/O.

A delete line `{"book_id": "OL1W", "deleted": true}` and a redirect line `{"book_id": "OL1W",
"redirect_to": "OL2W"}` are told apart from a book line (which has a title) and a rating line (which has a
`user_id`) by their keys, and hold nothing else: a line that mixes them is rejected, never half-applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bookrec_catalog.catalog import is_book_id
from bookrec_etl.records import Rejected

DELETED, REDIRECT_TO = "deleted", "redirect_to"
LIFECYCLE_KEYS = frozenset({DELETED, REDIRECT_TO})


def is_lifecycle(record: Mapping[str, Any]) -> bool:
    """A delete line or a redirect line (checked or not)."""
    return not LIFECYCLE_KEYS.isdisjoint(record)


def is_redirect(record: Mapping[str, Any]) -> bool:
    return REDIRECT_TO in record


def lifecycle(record: Mapping[str, Any]) -> dict[str, Any]:
    """A delete or redirect line, checked: exactly its keys, a book id each, a redirect to another book."""
    if not is_book_id(record.get("book_id")):
        raise Rejected("missing or malformed book_id")
    if DELETED in record and REDIRECT_TO in record:
        raise Rejected("a line is either deleted or redirect_to, not both")
    kind, key = ("delete", DELETED) if DELETED in record else ("redirect", REDIRECT_TO)
    extra = sorted(set(record) - {"book_id", key})
    if extra:
        raise Rejected(f"a {kind} line holds only book_id and {key} (also given: {', '.join(extra)})")
    if kind == "delete":
        if record[DELETED] is not True:
            raise Rejected("deleted must be true")
        return delete_line(record["book_id"])
    target = record[REDIRECT_TO]
    if not is_book_id(target):
        raise Rejected("redirect_to is not a book id")
    if target == record["book_id"]:
        raise Rejected("a book redirected to itself")
    return redirect_line(record["book_id"], target)


def delete_line(book_id: str) -> dict[str, Any]:
    return {"book_id": book_id, DELETED: True}


def redirect_line(book_id: str, target: str) -> dict[str, Any]:
    return {"book_id": book_id, REDIRECT_TO: target}
