"""The ids of paths and bodies, checked whole, as 400 Problem Details.

Their rules live in bookrec_catalog.catalog (pure, for domain code); this is the HTTP face of the same
rules. The path types document each pattern in the OpenAPI document without letting Litestar enforce
it: Python's `$` would let "alice\\n" through, so the handler's check is the one that decides, with one
message for every service.
"""

from __future__ import annotations

from typing import Annotated

from litestar.params import PathParameter

from bookrec_catalog.catalog import BOOK_ID, BOOK_ID_RULE, USER_ID, USER_ID_RULE, is_book_id, is_user_id
from bookrec_common.errors import ValidationFailed, field_error, invalid

BookIdPath = Annotated[str, PathParameter(schema_extra={"pattern": BOOK_ID.pattern},
                                         description=BOOK_ID_RULE)]
UserIdPath = Annotated[str, PathParameter(schema_extra={"pattern": USER_ID.pattern},
                                         description=USER_ID_RULE)]


def check_book_id(book_id: str, field: str = "book_id", source: str = "path") -> str:
    if not is_book_id(book_id):
        raise invalid(field, "malformed book id", source, f"{book_id!r} is not a book id ({BOOK_ID_RULE})")
    return book_id


def check_book_ids(book_ids: list[str], field: str = "book_ids", source: str = "body") -> list[str]:
    """Every id of a list, each malformed one named by its position."""
    bad = [field_error(f"{field}[{i}]", f"malformed book id {value!r}", source)
           for i, value in enumerate(book_ids) if not is_book_id(value)]
    if bad:
        raise ValidationFailed(f"{len(bad)} malformed book id(s) ({BOOK_ID_RULE})", errors=bad)
    return book_ids


def check_user_id(user_id: str, field: str = "user_id", source: str = "path") -> str:
    if not is_user_id(user_id):
        raise invalid(field, "malformed user id", source, f"{user_id!r} is not a user id ({USER_ID_RULE})")
    return user_id
