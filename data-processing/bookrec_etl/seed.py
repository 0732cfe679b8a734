"""The local stack's catalogue: the bundled real data, through the same steps as any other input.

- Open Library development-database dumps (works, editions, authors) -> extract;
- the Open Library-derived philosophy JSONL -> import-jsonl;
- goodbooks-10k books, genres and ratings -> import-goodbooks (a subset of users, see SEED_USERS);
- everything -> load.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import msgspec

from bookrec_etl.extract import Dumps, extract
from bookrec_etl.importers import import_goodbooks, import_jsonl
from bookrec_etl.load import Loader, Tables
from bookrec_etl.progress import Progress
from bookrec_etl.report import Rejects, Report

# goodbooks users whose ratings are loaded. The emulator writes ~5,000 ratings/s, so all 240K ratings
# would take most of a minute; "full" keeps the first 600 users in file order (~65K ratings),
# "sample" (the end-to-end tests' stack) the first 100 (~11K ratings). Every book is loaded either way.
SEED_USERS = {"full": 600, "sample": 100}


SEED_FILES = {
    "works": "ol_devinstance_works.txt",
    "editions": "ol_devinstance_editions.txt",
    "authors": "ol_devinstance_authors.txt",
    "philosophy": "philosophy_books_openlibrary.jsonl.gz",
    "goodbooks_books": "goodbooks10k_books.csv.gz",
    "goodbooks_genres": "goodbooks10k_book_genres.csv.gz",
    "goodbooks_ratings": "goodbooks_ratings_sample.csv.gz",
}


def default_seed_dir() -> Path:
    """BOOKREC_SEED_DIR, else data-processing/seed beside this package (a checkout, an editable install),
    else under the working directory (a repository root, as with the tools image's non-editable install)."""
    if os.environ.get("BOOKREC_SEED_DIR"):
        return Path(os.environ["BOOKREC_SEED_DIR"])
    beside = Path(__file__).resolve().parent.parent / "seed"
    return beside if beside.is_dir() else Path.cwd() / "data-processing" / "seed"


def seed_files(directory: Path | None = None) -> dict[str, Path]:
    directory = directory or default_seed_dir()
    return {name: directory / filename for name, filename in SEED_FILES.items()}


def by_book(ratings: Path) -> None:
    """The ratings file in book order (a stable sort: each book's lines keep their order). The loader then
    writes a book's rows together, under one condition on the book instead of one per row (writes.py),
    which the emulator evaluates ~2.5 times faster. The seed's files are small enough to sort in memory."""
    lines = ratings.read_bytes().splitlines(keepends=True)
    lines.sort(key=lambda line: msgspec.json.decode(line)["book_id"])
    ratings.write_bytes(b"".join(lines))


def seed(client: Any, tables: Tables, size: str = "full", writers: int = 8, rejects_path: Path | None = None,
         seed_dir: Path | None = None, progress=Progress) -> list[Report]:
    """Import and load every bundled file; returns the report of each step."""
    files = seed_files(seed_dir)
    missing = [str(path) for path in files.values() if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"seed files missing (give --seed-dir): {', '.join(missing)}")
    reports: list[Report] = []
    with tempfile.TemporaryDirectory(prefix="bookrec-seed-") as tmp, Rejects(rejects_path) as rejects:
        work = Path(tmp)
        dumps = Dumps(works=files["works"], authors=files["authors"], editions=files["editions"])
        extracted = extract(dumps, work / "openlibrary_dev.jsonl", rejects, workdir=work, progress=progress)
        reports += extracted.reports
        reports.append(import_jsonl(files["philosophy"], work / "philosophy.jsonl", rejects,
                                    progress=progress))
        reports += import_goodbooks(files["goodbooks_books"], files["goodbooks_genres"],
                                    files["goodbooks_ratings"], work / "goodbooks_books.jsonl",
                                    work / "goodbooks_ratings.jsonl", rejects, max_users=SEED_USERS[size],
                                    progress=progress)
        by_book(work / "goodbooks_ratings.jsonl")
        loader = Loader(client, tables, rejects, writers)
        for name in ("openlibrary_dev.jsonl", "philosophy.jsonl", "goodbooks_books.jsonl",
                     "goodbooks_ratings.jsonl"):
            reports.append(loader.load(work / name, progress=progress))
    return reports
