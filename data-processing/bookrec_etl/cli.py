"""bookrec-etl: import catalogues into bookrec's DynamoDB tables.

Subcommands:
  import-jsonl      JSONL of the replaced system, or Open Library-derived JSONL -> clean books JSONL
  import-goodbooks  goodbooks-10k books.csv + genres + ratings CSV -> books and ratings JSONL
  load              clean JSONL -> a DynamoDB table (BatchWriteItem, concurrent, resumable)
  seed              import and load the bundled real data (used by the local stack)

The DynamoDB endpoint comes from the standard AWS_ENDPOINT_URL (unset on AWS).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import boto3
from botocore.config import Config
from tqdm import tqdm

from bookrec_etl.importers import ImportReport, Rejects, import_goodbooks, import_jsonl
from bookrec_etl.load import Checkpoint, LoadReport, load

SEED = Path(__file__).resolve().parent.parent / "seed"
# goodbooks (users, books) seeded: the emulator scans ~500 items/s, so the sample stays small.
SEED_LIMITS = {"sample": (300, 2000), "full": (None, None)}


def dynamodb():
    return boto3.client("dynamodb", config=Config(max_pool_connections=32, retries={"mode": "standard"}))


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _progress(total: int | None, unit: str, label: str) -> tqdm:
    # A bar with rate and ETA on a terminal; periodic plain lines otherwise.
    return tqdm(total=total, unit=unit, desc=label, disable=None, mininterval=0.5 if sys.stderr.isatty() else 10,
                file=sys.stderr)


def _load(table: str, path: Path, writers: int, checkpoint: Path | None) -> LoadReport:
    total = sum(1 for _ in path.open())
    with _progress(total, "items", f"load {path.name} -> {table}") as bar:
        report = load(dynamodb(), table, path, writers, Checkpoint(checkpoint), bar)
    say(f"load {path.name} -> {table}: read {report.read:,}, written {report.written:,} in {report.seconds:.1f}s "
        f"({report.items_per_second:,.0f} items/s), {report.calls:,} BatchWriteItem calls "
        f"({1000 * report.calls / max(report.written, 1):.0f} per 1,000 items), retried {report.retried_items:,}, "
        f"resumed after {report.skipped_from_checkpoint:,} lines")
    return report


def cmd_import_jsonl(args: argparse.Namespace) -> None:
    rejects = Rejects(args.rejects)
    with _progress(None, "lines", f"import {args.source.name}") as bar:
        report = import_jsonl(args.source, args.out, rejects, args.limit, on_line=lambda: bar.update())
    rejects.close()
    say(report.summary(f"import {args.source.name}"))


def cmd_import_goodbooks(args: argparse.Namespace) -> None:
    rejects = Rejects(args.rejects)
    books, ratings = import_goodbooks(args.books, args.genres, args.ratings, args.books_out, args.ratings_out,
                                      rejects, args.max_users, args.max_books)
    rejects.close()
    say(books.summary("goodbooks books"))
    say(ratings.summary("goodbooks ratings"))


def cmd_load(args: argparse.Namespace) -> None:
    checkpoint = args.checkpoint or args.source.with_suffix(args.source.suffix + ".checkpoint")
    _load(args.table, args.source, args.writers, checkpoint)


def cmd_seed(args: argparse.Namespace) -> None:
    books_table = args.books_table or os.environ.get("BOOKS_TABLE")
    ratings_table = args.ratings_table or os.environ.get("RATINGS_TABLE")
    if not books_table or not ratings_table:
        raise SystemExit("seed needs --books-table/--ratings-table or BOOKS_TABLE/RATINGS_TABLE")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bookrec-seed-") as tmp:
        work = Path(tmp)
        rejects = Rejects(work / "rejects.jsonl")
        reports: list[tuple[str, ImportReport]] = []
        reports.append(("Open Library philosophy", import_jsonl(SEED / "philosophy_books_openlibrary.jsonl.gz",
                                                                work / "ol_books.jsonl", rejects)))
        gb_books, gb_ratings = import_goodbooks(
            SEED / "goodbooks10k_books.csv.gz", SEED / "goodbooks10k_book_genres.csv.gz",
            SEED / "goodbooks_ratings_sample.csv.gz", work / "gb_books.jsonl", work / "gb_ratings.jsonl", rejects,
            *SEED_LIMITS[args.size])
        reports += [("goodbooks books", gb_books), ("goodbooks ratings", gb_ratings)]
        rejects.close()
        for label, report in reports:
            say(report.summary(label))
        for path, table in ((work / "ol_books.jsonl", books_table), (work / "gb_books.jsonl", books_table),
                            (work / "gb_ratings.jsonl", ratings_table)):
            _load(table, path, args.writers, None)
    say(f"seed ({args.size}) done in {time.perf_counter() - started:.1f}s")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="bookrec-etl", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = root.add_subparsers(dest="command", required=True)

    p = sub.add_parser("import-jsonl", help="JSONL (replaced system or Open Library-derived) -> books JSONL",
                       description="Accepts `book_id` as OL…W or /works/OL…W, years as ints or messy strings, "
                                   "authors as names or {author_id, author_name}, covers as cover_id or "
                                   "thumbnail_url. Bad lines go to --rejects with their line number and reason.")
    p.add_argument("source", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--rejects", type=Path)
    p.add_argument("--limit", type=int, help="stop after this many accepted books")
    p.set_defaults(run=cmd_import_jsonl)

    p = sub.add_parser("import-goodbooks", help="goodbooks-10k CSVs -> books and ratings JSONL",
                       description="Book ids become GB<n>, user ids gb-<n>; ISBN-13s are derived and verified; "
                                   "each book's aggregate is that of the imported ratings.")
    p.add_argument("--books", type=Path, required=True)
    p.add_argument("--genres", type=Path, required=True)
    p.add_argument("--ratings", type=Path, required=True)
    p.add_argument("--books-out", type=Path, required=True)
    p.add_argument("--ratings-out", type=Path, required=True)
    p.add_argument("--rejects", type=Path)
    p.add_argument("--max-users", type=int, help="only the ratings of the first N users")
    p.add_argument("--max-books", type=int, help="only goodbooks ids 1..N (the most rated) and their ratings")
    p.set_defaults(run=cmd_import_goodbooks)

    p = sub.add_parser("load", help="JSONL -> DynamoDB table (idempotent, resumable)",
                       description="BatchWriteItem 25 items a call with --writers concurrent writers; unprocessed "
                                   "items retried with exponential backoff; progress kept in --checkpoint so an "
                                   "interrupted load resumes.")
    p.add_argument("source", type=Path)
    p.add_argument("--table", required=True)
    p.add_argument("--writers", type=int, default=8)
    p.add_argument("--checkpoint", type=Path, help="default: <source>.checkpoint")
    p.set_defaults(run=cmd_load)

    p = sub.add_parser("seed", help="import + load the bundled real data (the local stack's seed)")
    p.add_argument("--size", choices=sorted(SEED_LIMITS), default="full",
                   help="sample: the 2,000 most rated goodbooks books and 300 users' ratings of them; "
                        "full: all 10,000 books and 240K ratings")
    p.add_argument("--books-table")
    p.add_argument("--ratings-table")
    p.add_argument("--writers", type=int, default=8)
    p.set_defaults(run=cmd_seed)
    return root


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = parser().parse_args(argv)
    args.run(args)
