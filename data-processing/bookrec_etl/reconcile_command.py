"""`bookrec-etl reconcile`: the command line of reconcile.py."""

from __future__ import annotations

import sys
from contextlib import closing
from typing import Any

import click
from botocore.exceptions import BotoCoreError, ClientError

from bookrec_etl.delete import MalformedIds, checked_ids
from bookrec_etl.dynamodb import dynamodb_client
from bookrec_etl.load import Tables
from bookrec_etl.reconcile import ReconcileError, Reconciler


@click.command("reconcile")
@click.option("--fix", is_flag=True,
              help="repair the drift (conditional writes: a rating landing meanwhile is read, never lost)")
@click.option("--books-table", envvar="BOOKS_TABLE", show_envvar=True, help="full name of the books table")
@click.option("--ratings-table", envvar="RATINGS_TABLE", show_envvar=True,
              help="full name of the ratings table")
@click.option("--shelves-table", envvar="SHELVES_TABLE", show_envvar=True,
              help="full name of the shelves table: shelf counts are checked too (without it, skipped)")
@click.option("--book", "book_ids", multiple=True, metavar="ID",
              help="check only this book (repeatable); without it, every book")
@click.option("--workers", type=click.IntRange(1, 64), default=8, show_default=True,
              help="books checked (and repaired) at a time")
@click.option("--segments", type=click.IntRange(1, 1000), default=4, show_default=True,
              help="parallel Scan segments of each table")
def reconcile_command(fix: bool, books_table: str | None, ratings_table: str | None, shelves_table: str | None,
                      book_ids: tuple[str, ...], workers: int, segments: int) -> None:
    """Compare every book's rating aggregate with the ratings table, and its shelf
    counts with the shelves table; --fix repairs them.

    A book's per-star distribution must be its imported part (imported_distribution:
    stars a source gave with no ratings behind them) plus one star per row of the
    ratings table, and its count, sum and average must follow from it. Its
    shelf_counts must be its imported part (imported_shelf_counts: the reading-log
    dump's) plus its entries in the shelves table, per shelf (absent: zeros);
    without a shelves table they are not checked, and the report says so. Prints how
    many books drift and the worst of them, and exits 1 when any does (0 when none
    does, or --fix repaired them all). Every table is read once (parallel Scans,
    eventually consistent); each book that looks off is then read again one by one,
    strongly consistent, before it is reported or repaired. Deleted books
    (tombstones) are skipped; ratings of no live book are counted. A repair is
    conditioned on the book's counts it writes as read: a rating or shelving landing
    meanwhile makes it read the book again. Safe to run while the services take ratings, and to
    interrupt and run again.
    """
    try:
        ids = checked_ids([(value, f"--book {n}") for n, value in enumerate(book_ids, start=1)],
                          "nothing was checked")
    except MalformedIds as exc:
        raise click.ClickException(str(exc)) from None
    tables = Tables.from_env(books_table, ratings_table, shelves_table)
    if not tables.books or not tables.ratings:
        raise click.UsageError(
            "reconcile needs --books-table and --ratings-table (or BOOKS_TABLE and RATINGS_TABLE)")
    try:
        with closing(dynamodb_client(workers + segments)) as client:
            _tables_exist(client, {"--books-table": tables.books, "--ratings-table": tables.ratings,
                                   "--shelves-table": tables.shelves})
            reconciler = Reconciler(client, tables.books, tables.ratings, shelves_table=tables.shelves,
                                    workers=workers, segments=segments)
            findings = reconciler.run(ids or None, fix=fix)
    except ReconcileError as exc:
        raise click.ClickException(str(exc)) from None
    except (ClientError, BotoCoreError) as exc:
        raise click.ClickException(f"{exc} (each book is repaired whole or not at all: running the same "
                                   "command again is safe)") from None
    for line in findings.lines(fix):
        click.echo(line)
    if findings.drifted and not fix:
        sys.exit(1)


def _tables_exist(client: Any, tables: dict[str, str | None]) -> None:
    """One line and exit 1, before anything is read or written, when a given table does not exist."""
    for option, name in tables.items():
        if name is None:
            continue
        try:
            client.describe_table(TableName=name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            raise click.ClickException(f"{option} {name}: no such table; nothing was checked") from None
