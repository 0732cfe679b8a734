"""bookrec-etl: import catalogues into bookrec's DynamoDB tables.

Every step streams its input, writes bad lines to a rejects file (JSON lines:
source, line number, reason, excerpt) instead of stopping, shows progress (a
bar on a terminal, a log line every few seconds otherwise) and ends with a
summary: read, accepted, rejected by reason, written, retried.
"""

from __future__ import annotations

import logging
import sys
import time
from contextlib import ExitStack, closing, nullcontext
from pathlib import Path

import click
from botocore.exceptions import BotoCoreError, ClientError

from bookrec_etl.delete import SHOWN_IDS, MalformedIds, checked_ids, delete_books
from bookrec_etl.estimate import estimate_file
from bookrec_etl.extract import Dumps, Filters, extract
from bookrec_etl.extract_processes import HelperFailed
from bookrec_etl.importers import import_goodbooks, import_jsonl
from bookrec_etl.load import BrokenLoad, Checkpoint, Loader, LoadError, Tables, dynamodb_client
from bookrec_etl.outputs import OutputClash, refuse_clashes
from bookrec_etl.reconcile_command import reconcile_command
from bookrec_etl.records import language_code
from bookrec_etl.report import Rejects, Report
from bookrec_etl.seed import SEED_USERS, seed, seed_files
from bookrec_etl.sources import BrokenInput

READABLE = click.Path(exists=True, dir_okay=False, path_type=Path)
WRITABLE = click.Path(dir_okay=False, path_type=Path)
REJECTS_HELP = "write rejected lines here (JSON lines: source, line, reason, excerpt)"


def _summarise(reports: list[Report]) -> None:
    for report in reports:
        click.echo(report.summary(), err=True)


def _default_rejects(out: Path, step: str) -> Path:
    """<out>.<step>-rejects.jsonl: each step its own, so that no step ever replaces another's rejects."""
    return out.with_name(f"{out.name}.{step}-rejects.jsonl")


def _no_clash(inputs: dict[str, Path | None], outputs: dict[str, Path | None]) -> None:
    """One line and exit 1 when an output is an input or another output (nothing written or deleted)."""
    try:
        refuse_clashes({k: v for k, v in inputs.items() if v is not None},
                       {k: v for k, v in outputs.items() if v is not None})
    except OutputClash as exc:
        raise click.ClickException(str(exc)) from None


def _not_written(exc: BrokenInput, *outputs: Path) -> click.ClickException:
    kept = ", ".join(str(path) for path in outputs)
    return click.ClickException(f"{exc}; nothing was written ({kept} left as it was)")


class _OneLineErrors(click.Group):
    """A file that cannot be read or written (a directory, no permission, a full disk) is one line and
    exit 1, like every other bad input, never a traceback."""

    def invoke(self, ctx: click.Context):  # returns whatever the command returns
        try:
            return super().invoke(ctx)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            raise click.ClickException(f"{where}{exc.strerror or exc}") from None


@click.group(cls=_OneLineErrors, help=__doc__,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
def main(log_level: str) -> None:
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)


@main.command("extract")
@click.option("--works", required=True, type=READABLE, help="works dump (.txt or .txt.gz): one book per work")
@click.option("--authors", type=READABLE,
              help="authors dump: resolves author names (kept on disk, not in memory)")
@click.option("--editions", type=READABLE,
              help="editions dump: ISBN-13s, covers, languages and years per work")
@click.option("--ratings", type=READABLE,
              help="ratings dump (work, edition or empty or \\N, rating, date): per-work star totals")
@click.option("--reading-log", type=READABLE,
              help="reading-log dump (work, edition or empty or \\N, shelf, date): per-work shelf totals")
@click.option("--out", required=True, type=WRITABLE, help="books JSONL to write")
@click.option("--rejects", type=WRITABLE, help=REJECTS_HELP + "  [default: <out>.extract-rejects.jsonl]")
@click.option("--language", "languages", multiple=True, metavar="CODE",
              help="keep only books in this language (ISO 639-2/B such as eng, or en); repeatable")
@click.option("--min-ratings", type=click.IntRange(min=0), default=0, show_default=True,
              help="keep only books with at least this many ratings")
@click.option("--require-subjects", is_flag=True, help="keep only books that have subjects")
@click.option("--limit", type=click.IntRange(min=1), help="stop after writing this many books")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              help="where the on-disk maps go (about a tenth of the dumps' size)  "
                   "[default: the system temp dir]")
@click.option("--processes", type=click.IntRange(1, 2),
              help="2: a second process reads the editions dump beside the others and writes half the "
                   "books (the same output, on two cores)  [default: 2 on a machine with two cores or more]")
def extract_command(works: Path, authors: Path | None, editions: Path | None, ratings: Path | None,
                    reading_log: Path | None, out: Path, rejects: Path | None, languages: tuple[str, ...],
                    min_ratings: int, require_subjects: bool, limit: int | None, workdir: Path | None,
                    processes: int | None) -> None:
    """Open Library bulk dumps -> books JSONL in the bookrec schema.

    Dumps are the tab-separated `type key revision last_modified json` files from
    openlibrary.org/developers/dumps. Each dump is read once, streaming; authors,
    editions and ratings are joined to their works through on-disk maps, so memory
    stays flat at full dump size. Redirected works hand their editions and ratings
    (and reading-log entries) to the work they point at; deleted and redirected
    works become lines of their own after the books ({"book_id", "deleted": true},
    {"book_id", "redirect_to"}), which `load` turns into tombstones. Descriptions may be
    strings or {type, value}; messy first_publish_date
    values ("c. 1850?", "November 25, 1989") become years.

    One file may be given as several dumps (the all-types dump as --works, --authors
    and --editions): it is read once. Lines of types no dump given reads are skipped
    and counted by type. Bad lines (wrong column count, invalid JSON, missing title
    or key, no /type/ column) go to the rejects file with their line number and
    reason. The output and rejects replace earlier ones only when the run succeeds.

    The ratings and reading-log dumps' lines are anonymous readers' stars and shelves
    (Want to Read, Currently Reading, Already Read): books carry their totals as
    imported_distribution and imported_shelf_counts, and their events of the last 30
    days before the dumps' newest date as imported_activity (for trending).
    """
    codes = {language_code(code) for code in languages}
    if None in codes:
        raise click.BadParameter(f"unknown language code in {languages}", param_hint="--language")
    rejects = rejects or _default_rejects(out, "extract")
    _no_clash({"--works": works, "--authors": authors, "--editions": editions, "--ratings": ratings,
               "--reading-log": reading_log},
              {"--out": out, "--rejects": rejects})
    filters = Filters(frozenset(c for c in codes if c), min_ratings, require_subjects, limit)
    started = time.perf_counter()
    try:
        with Rejects(rejects, atomic=True) as rejected:
            result = extract(Dumps(works, authors, editions, ratings, reading_log), out, rejected, filters, workdir,
                             processes=processes)
    except BrokenInput as exc:
        raise _not_written(exc, out) from None
    except HelperFailed as exc:
        raise click.ClickException(f"{exc}; nothing was written ({out} left as it was)") from None
    seconds = time.perf_counter() - started
    _summarise(result.reports)
    click.echo(f"extract: {result.bytes_read / 1e6:,.1f} MB in {seconds:.1f}s "
               f"({result.bytes_read / 1e6 / seconds:,.1f} MB/s) -> {out}", err=True)


@main.command("import-jsonl")
@click.argument("source", type=READABLE)
@click.option("--out", required=True, type=WRITABLE, help="books JSONL to write")
@click.option("--rejects", type=WRITABLE, help=REJECTS_HELP + "  [default: <out>.import-rejects.jsonl]")
@click.option("--limit", type=click.IntRange(min=1), help="stop after this many accepted books")
def import_jsonl_command(source: Path, out: Path, rejects: Path | None, limit: int | None) -> None:
    """JSONL of the replaced system, or Open Library-derived JSONL -> books JSONL.

    Understands `book_id` as OL45883W or /works/OL45883W, years as ints or messy
    strings ("November 25, 1989", ""), authors as {author_id, author_name} or plain
    names, covers as cover_id or a covers.openlibrary.org thumbnail_url, and
    avg_rating + rating_count (kept as a per-star distribution with that exact
    count and sum). An author id given as a name ("OL3399168A") is kept as the
    author_id with an empty name. SOURCE may be gzip-compressed. The output and
    rejects replace earlier ones only when the run succeeds.
    """
    rejects = rejects or _default_rejects(out, "import")
    _no_clash({"SOURCE": source}, {"--out": out, "--rejects": rejects})
    try:
        with Rejects(rejects, atomic=True) as rejected:
            report = import_jsonl(source, out, rejected, limit)
    except BrokenInput as exc:
        raise _not_written(exc, out) from None
    _summarise([report])


@main.command("import-goodbooks")
@click.option("--books", required=True, type=READABLE, help="goodbooks-10k books.csv")
@click.option("--genres", required=True, type=READABLE,
              help="book_id,goodreads_book_id,genres CSV (as subjects)")
@click.option("--ratings", required=True, type=READABLE, help="user_id,book_id,rating CSV")
@click.option("--books-out", required=True, type=WRITABLE, help="books JSONL to write")
@click.option("--ratings-out", required=True, type=WRITABLE, help="ratings JSONL to write")
@click.option("--rejects", type=WRITABLE,
              help=REJECTS_HELP + "  [default: <books-out>.import-rejects.jsonl]")
@click.option("--max-users", type=click.IntRange(min=1),
              help="keep only the ratings of the first N users in the file")
def import_goodbooks_command(books: Path, genres: Path, ratings: Path, books_out: Path, ratings_out: Path,
                             rejects: Path | None, max_users: int | None) -> None:
    """goodbooks-10k CSVs -> books JSONL and ratings JSONL.

    Book ids become GB<n> (they can never collide with Open Library ids), user ids
    the strings gb-<n>. ISBN-13s are derived from the ISBN-10 column (whose leading
    zeros were dropped) or the float-formatted isbn13 column, with the check digit
    recomputed and verified. Each book's rating aggregate is exactly that of the
    ratings imported with it, so the ratings service's arithmetic stays exact.
    Inputs may be gzip-compressed. Both outputs and the rejects replace earlier
    ones only when the run succeeds.
    """
    rejects = rejects or _default_rejects(books_out, "import")
    _no_clash({"--books": books, "--genres": genres, "--ratings": ratings},
              {"--books-out": books_out, "--ratings-out": ratings_out, "--rejects": rejects})
    try:
        with Rejects(rejects, atomic=True) as rejected:
            reports = import_goodbooks(books, genres, ratings, books_out, ratings_out, rejected, max_users)
    except BrokenInput as exc:
        raise _not_written(exc, books_out, ratings_out) from None
    _summarise(list(reports))


TABLE_OPTIONS = [
    click.option("--books-table", envvar="BOOKS_TABLE", show_envvar=True,
                 help="full name of the books table"),
    click.option("--ratings-table", envvar="RATINGS_TABLE", show_envvar=True,
                 help="full name of the ratings table"),
    click.option("--shelves-table", envvar="SHELVES_TABLE", show_envvar=True,
                 help="full name of the shelves table (the shelf counts of books whose ratings were "
                      "written, or that were deleted and come back, are reconciled with it; a redirect "
                      "line moves its work's entries to the target)"),
    click.option("--writers", type=click.IntRange(1, 64), default=8, show_default=True,
                 help="concurrent BatchWriteItem writers"),
]


def table_options(command):
    for option in reversed(TABLE_OPTIONS):
        command = option(command)
    return command


@main.command("load")
@click.argument("sources", nargs=-1, required=True, type=READABLE)
@table_options
@click.option("--checkpoint", type=WRITABLE,
              help="checkpoint file (one SOURCE only)  [default: <source>.checkpoint]")
@click.option("--rejects", type=WRITABLE, help=REJECTS_HELP + "  [default: <source>.load-rejects.jsonl]")
def load_command(sources: tuple[Path, ...], books_table: str | None, ratings_table: str | None,
                 shelves_table: str | None, writers: int, checkpoint: Path | None, rejects: Path | None) -> None:
    """Books/ratings JSONL -> DynamoDB (idempotent, resumable).

    A line with a user_id is a rating (ratings table), a line with `deleted` or
    `redirect_to` a work to tombstone (a redirect's readers' ratings and shelf
    entries follow it to its target), any other line a book (books table); books
    get their derived attributes (normalised title, prefix bucket, aggregates) from
    bookrec_catalog, as the services do.

    What is stored is read first (BatchGetItem, 100 lines a batch) and only what
    differs is written, in one TransactWriteItems conditioned on what was read: a new
    book whole; an existing book its catalogue only, never its rating aggregate or
    shelf counts (a changed imported figure, the ratings dump's, the replaced
    system's or the reading log's, moves them by the difference); a rating only
    over an older stored one (newer ones are kept and the line counted as skipped).
    Books whose ratings were written, and deleted books loaded again, are then
    reconciled with the ratings table (and their shelf counts with the shelves
    table, when one is given). Loading the same file twice writes nothing the
    second time. An interrupted load (Ctrl-C, a crash, kill -9, a file cut short)
    resumes from its checkpoint when run again into the same tables with a file that
    begins with the lines already loaded (the same file, or a complete copy of a
    truncated one). The endpoint is the standard AWS_ENDPOINT_URL when set (the
    local moto server), else AWS.
    """
    if checkpoint and len(sources) > 1:
        raise click.BadParameter("--checkpoint takes one SOURCE; each source defaults to <source>.checkpoint",
                                 param_hint="--checkpoint")
    tables = Tables.from_env(books_table, ratings_table, shelves_table)
    checkpoints = {source: checkpoint or source.with_name(source.name + ".checkpoint") for source in sources}
    outputs: dict[str, Path | None] = {"--rejects": rejects}
    for n, (source, progress_file) in enumerate(checkpoints.items(), start=1):
        where = f" (of SOURCE {n})" if len(sources) > 1 else ""
        outputs[f"--checkpoint{where}"] = progress_file
        outputs[f"the checkpoint's temporary file{where}"] = Checkpoint(progress_file).temporary
        if not rejects:
            outputs[f"the rejects file{where}"] = _default_rejects(source, "load")
    _no_clash({f"SOURCE {n}" if len(sources) > 1 else "SOURCE": source
               for n, source in enumerate(sources, start=1)}, outputs)
    reports: list[Report] = []
    try:
        with ExitStack() as stack:
            client = stack.enter_context(closing(dynamodb_client(writers)))
            # A resumed load adds to the rejects of the run it continues; a fresh one starts afresh.
            resuming = any(path.exists() for path in checkpoints.values())
            shared = stack.enter_context(Rejects(rejects, append=resuming)) if rejects else None
            for source, progress_file in checkpoints.items():
                with nullcontext(shared) if shared else \
                        Rejects(_default_rejects(source, "load"), append=progress_file.exists()) as rejected:
                    click.echo(estimate_file(source).line(), err=True)  # before the first write
                    loader = Loader(client, tables, rejected, writers)
                    reports.append(loader.load(source, Checkpoint(progress_file)))
    except BrokenLoad as exc:
        _summarise([*reports, exc.report])
        raise click.ClickException(_how_to_resume(exc)) from None
    except (LoadError, ClientError, BotoCoreError) as exc:  # the tables, not the input: resume later
        _summarise(reports)
        raise click.ClickException(
            f"{exc} (the checkpoint is kept: run the same command again to resume)") from None
    _summarise(reports)


def _how_to_resume(exc: BrokenLoad) -> str:
    lines = exc.broken.lines or 0
    if not lines:
        return f"{exc.broken}; nothing of it was loaded"
    return (f"{exc.broken}; its first {lines:,} lines are loaded (checkpoint {exc.checkpoint.path}): "
            "with a complete copy of the file, run the same command again to load the rest")


@main.command("seed")
@table_options
@click.option("--size", type=click.Choice(sorted(SEED_USERS)), default="full", show_default=True,
              help="goodbooks users whose ratings are loaded: "
                   + ", ".join(f"{size} {users}" for size, users in SEED_USERS.items()))
@click.option("--rejects", type=WRITABLE, help=REJECTS_HELP)
@click.option("--seed-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              envvar="BOOKREC_SEED_DIR", show_envvar=True,
              help="where the bundled files are  [default: data-processing/seed]")
def seed_command(books_table: str | None, ratings_table: str | None, shelves_table: str | None, writers: int,
                 size: str, rejects: Path | None, seed_dir: Path | None) -> None:
    """Import and load the bundled real data (data-processing/seed) into the tables.

    The local stack's seed: Open Library development-database works, editions and
    authors (extract), the Open Library philosophy sample (import-jsonl), and all
    goodbooks-10k books with the ratings of the first --size users (import-goodbooks),
    then load. Every book's aggregate equals its loaded ratings.
    """
    tables = Tables.from_env(books_table, ratings_table, shelves_table)
    if not tables.books or not tables.ratings:
        raise click.UsageError(
            "seed needs --books-table and --ratings-table (or BOOKS_TABLE and RATINGS_TABLE)")
    _no_clash({f"seed file {path.name}": path for path in seed_files(seed_dir).values()},
              {"--rejects": rejects})
    started = time.perf_counter()
    try:
        with closing(dynamodb_client(writers)) as client:
            reports = seed(client, tables, size, writers, rejects, seed_dir)
    except (LoadError, FileNotFoundError, BrokenInput) as exc:
        raise click.ClickException(str(exc)) from None
    _summarise(reports)
    click.echo(f"seed ({size}): {sum(r.written for r in reports if r.label.startswith('load')):,} items "
               f"in {time.perf_counter() - started:.1f}s", err=True)


def _given_ids(book_ids: tuple[str, ...], from_file: Path | None) -> list[tuple[str, str]]:
    """(id, where) for each argument, then each non-blank line of --from ('-': standard input)."""
    given = [(value, f"argument {n}") for n, value in enumerate(book_ids, start=1)]
    if from_file is not None:
        name = "stdin" if str(from_file) == "-" else from_file.name
        try:
            with click.open_file(str(from_file), encoding="utf-8") as lines:
                given += [(line, f"{name} line {n}") for n, line in enumerate(lines, start=1) if line.strip()]
        except UnicodeDecodeError:
            raise click.ClickException(f"{name} is not UTF-8 text; nothing was deleted") from None
    return given


def _some(ids: list[str]) -> str:
    more = f" and {len(ids) - SHOWN_IDS:,} more" if len(ids) > SHOWN_IDS else ""
    return ", ".join(ids[:SHOWN_IDS]) + more


@main.command("delete")
@click.argument("book_ids", nargs=-1, metavar="[BOOK_ID]...")
@click.option("--from", "from_file", type=click.Path(exists=True, dir_okay=False, allow_dash=True,
                                                     path_type=Path),
              help="also delete the ids in this file, one a line ('-': standard input)")
@click.option("--books-table", envvar="BOOKS_TABLE", show_envvar=True, help="full name of the books table")
@click.option("--writers", type=click.IntRange(1, 64), default=8, show_default=True,
              help="concurrent PutItem writers")
def delete_command(book_ids: tuple[str, ...], from_file: Path | None, books_table: str | None,
                   writers: int) -> None:
    """Delete books: each is replaced by its tombstone, which the change feed carries to search.

    Ids (OL…W or GB<n>) come as arguments and/or from --from. Every id is checked first: a
    malformed one stops the command with exit code 1 and nothing deleted. Then each book that
    exists is replaced, by a conditional write, with a tombstone (its id, changed_at,
    change_shard, deleted_at and expires_at, the table's TTL); ids not in the table and books
    already deleted are left alone and counted. The book's ratings stay in the ratings table
    (the services answer 404 for the book). Loading the book again brings it back. The
    endpoint is the standard AWS_ENDPOINT_URL when set (the local moto server), else AWS.
    """
    try:
        ids = checked_ids(_given_ids(book_ids, from_file))
    except MalformedIds as exc:
        raise click.ClickException(str(exc)) from None
    if not ids:
        raise click.UsageError("no book ids: give them as arguments or with --from FILE")
    tables = Tables.from_env(books_table)
    if not tables.books:
        raise click.UsageError("delete needs --books-table (or BOOKS_TABLE)")
    try:
        with closing(dynamodb_client(writers)) as client:
            outcomes = delete_books(client, tables.books, ids, writers)
    except (ClientError, BotoCoreError) as exc:
        raise click.ClickException(
            f"{exc} (some books may be deleted: running the same command again is safe)") from None
    click.echo(outcomes.summary(), err=True)
    if outcomes.not_found:
        click.echo(f"  not found: {_some(outcomes.not_found)}", err=True)
    if outcomes.already_deleted:
        click.echo(f"  already deleted: {_some(outcomes.already_deleted)}", err=True)


main.add_command(reconcile_command)
