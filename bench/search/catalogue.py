"""The bundled catalogue as the local stack loads it, for the search evaluation and comparison.

goodbooks-10k books, genres and ratings go through the ETL's own `import_goodbooks` (every book turned
into a record by `from_goodbooks_row`; rating aggregates from the users the full seed loads), and the
Open Library philosophy JSONL through `import_jsonl`, as further books to rank against.
"""

from __future__ import annotations

import json
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bookrec_etl.importers import import_goodbooks, import_jsonl
from bookrec_etl.report import Rejects
from bookrec_etl.seed import SEED_USERS, seed_files


class _Silent:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def advance(self, *args: Any, **kwargs: Any) -> None:
        pass


@contextmanager
def _workdir():
    with tempfile.TemporaryDirectory(prefix="bookrec-eval-") as tmp:
        yield Path(tmp)


def records(with_philosophy: bool = True) -> list[dict[str, Any]]:
    """Book records exactly as the ETL writes them for loading (goodbooks first, in file order)."""
    files = seed_files()
    books: list[dict[str, Any]] = []
    with _workdir() as work, Rejects(None) as rejects:
        import_goodbooks(files["goodbooks_books"], files["goodbooks_genres"], files["goodbooks_ratings"],
                         work / "goodbooks.jsonl", work / "ratings.jsonl", rejects,
                         max_users=SEED_USERS["full"], progress=_Silent)
        outputs = [work / "goodbooks.jsonl"]
        if with_philosophy:
            import_jsonl(files["philosophy"], work / "philosophy.jsonl", rejects, progress=_Silent)
            outputs.append(work / "philosophy.jsonl")
        for path in outputs:
            with open(path, encoding="utf-8") as lines:
                books += [json.loads(line) for line in lines if line.strip()]
    return books
