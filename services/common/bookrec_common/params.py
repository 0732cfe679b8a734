"""Checks of path parameters shared by the services, raising 400 Problem Details."""

from __future__ import annotations

import re

from bookrec_common.catalog import is_book_id
from bookrec_common.errors import ValidationFailed

USER_ID = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


def check_book_id(book_id: str, field: str = "book_id", source: str = "path") -> str:
    if not is_book_id(book_id):
        raise ValidationFailed(
            f"{book_id!r} is not a book id (an Open Library work id such as OL45883W, or GB<n>)",
            errors=[{"field": field, "message": "malformed book id", "source": source}],
        )
    return book_id


def check_user_id(user_id: str, field: str = "user_id", source: str = "path") -> str:
    if not USER_ID.fullmatch(user_id):
        raise ValidationFailed(
            f"{user_id!r} is not a user id (1..64 characters of A-Z a-z 0-9 _ . @ -)",
            errors=[{"field": field, "message": "malformed user id", "source": source}],
        )
    return user_id
