"""Open Library bulk dumps -> books JSONL in the bookrec schema.

Passes, each a single streaming read of one dump into an on-disk workspace:

1. authors dump: author id -> name (redirects followed);
2. works dump: each work's own facts, plus work redirects and deletes;
3. editions dump: ISBN-13s, covers, languages and years per work;
4. ratings dump: per-work star totals;
5. reading-log dump: per-work shelf totals;

(the ratings and reading-log lines' dates: per-work daily events of the last 30 days, for trending)

(a file given as several dumps, such as the all-types dump, is read once for all of them; lines of
types no pass reads are skipped and counted by type)

then redirected works' editions, ratings, shelves and events are moved onto their targets and
every work is written in id order with its authors, editions and ratings
joined. Memory stays flat whatever the dump sizes; bad lines go to the
rejects file and never stop the run.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import msgspec

from bookrec_catalog.catalog import SHELVES
from bookrec_catalog.imported_activity import IMPORTED_ACTIVITY, day_text
from bookrec_etl import openlibrary as ol
from bookrec_etl.dated_events import DatedEvents
from bookrec_etl.extract_processes import Counting, Helper, merge, reads_aside, splits
from bookrec_etl.outputs import atomic_outputs
from bookrec_etl.progress import Progress
from bookrec_etl.records import MAX_ISBNS, Rejected, author, book
from bookrec_etl.report import Rejects, Report
from bookrec_etl.sources import LineSource
from bookrec_etl.workspace import Workspace

BATCH_ROWS = 20_000
RATING_FLUSH_WORKS = 100_000  # distinct works held in memory before totals go to disk
PROGRESS_EVERY = 4096  # lines
_ENCODER = msgspec.json.Encoder()
log = logging.getLogger("bookrec.etl")


@dataclass(frozen=True)
class Filters:
    languages: frozenset[str] = frozenset()  # ISO 639-2/B codes; empty = any (including unknown)
    min_ratings: int = 0
    require_subjects: bool = False
    limit: int | None = None


@dataclass
class Dumps:
    works: Path
    authors: Path | None = None
    editions: Path | None = None
    ratings: Path | None = None
    reading_log: Path | None = None


@dataclass
class ExtractReport:
    inputs: list[Report] = field(default_factory=list)
    books: Report = field(default_factory=lambda: Report("books"))
    bytes_read: int = 0

    @property
    def reports(self) -> list[Report]:
        return [*self.inputs, self.books]


ProgressFactory = Callable[[str, int | None, str], Progress]  # label, total, unit ("bytes" or "items")


def _scan(path: Path, label: str, rejects: Rejects, progress: ProgressFactory,
          handle: Callable[[bytes], None]) -> Report:
    """Feed every line to `handle`; a Rejected from it is counted and written to the rejects file."""
    report = Report(label)
    with LineSource(path) as source, progress(f"extract {label}", source.size, "bytes") as bar:
        number = 0
        for number, line in enumerate(source, start=1):
            try:
                handle(line)
            except Rejected as exc:
                rejects.add(report, path.name, number, str(exc), line)
            if number % PROGRESS_EVERY == 0:
                bar.advance(source.position, number, absolute=True)
        bar.advance(source.size, number, absolute=True)
        report.read = number
    return report


class _Batch:
    """Rows buffered for one executemany."""

    def __init__(self, flush: Callable[[list], None]) -> None:
        self.rows: list = []
        self._flush = flush

    def add(self, row: object) -> None:
        self.rows.append(row)
        if len(self.rows) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self._flush(self.rows)
            self.rows = []


class _Dump:
    """What one dump contributes: records of its type, and redirects and deletes of its key namespace."""

    name: str
    kind: bytes
    namespace: bytes

    def __init__(self, space: Workspace) -> None:
        self.space = space
        self.skipped: Counter = Counter()
        self.notes: Counter = Counter()

    def handle(self, record: ol.DumpRecord) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """After the last line: write what is buffered."""


class _Authors(_Dump):
    name, kind, namespace = "authors", ol.AUTHOR, b"/authors/"

    def __init__(self, space: Workspace) -> None:
        super().__init__(space)
        self.names, self.redirects = _Batch(space.add_authors), _Batch(space.add_author_redirects)

    def handle(self, record: ol.DumpRecord) -> None:
        number = ol.author_number(record.key)
        if number is None:
            raise Rejected("missing or malformed key")
        if record.kind == ol.AUTHOR:
            self.names.add((number, ol.author_name(record.doc)))
        elif record.kind == ol.REDIRECT:
            self.redirects.add((number, ol.redirect_target(record, ol.author_number)))
            self.skipped["redirect"] += 1
        else:
            self.skipped["delete"] += 1

    def finish(self) -> None:
        self.names.flush()
        self.redirects.flush()
        self.space.resolve_author_redirects()


class _Works(_Dump):
    name, kind, namespace = "works", ol.WORK, b"/works/"

    def __init__(self, space: Workspace) -> None:
        super().__init__(space)
        self.works, self.redirects = _Batch(space.add_works), _Batch(space.add_work_redirects)
        self.deletes = _Batch(space.add_work_deletes)
        self.added = 0
        self._encode = ol.WORK_FACTS_ENCODER.encode

    def handle(self, record: ol.DumpRecord) -> None:
        number = ol.work_number(record.key)
        if number is None:
            raise Rejected("missing or malformed key")
        if record.kind == ol.WORK:
            self.works.add((number, self._encode(ol.work_facts(record))))
            self.added += 1
        elif record.kind == ol.REDIRECT:
            self.redirects.add((number, ol.redirect_target(record)))
            self.notes["redirected works"] += 1
        else:  # both become lines for the loader once every work is known (_emit)
            self.deletes.add((number,))
            self.notes["deleted works"] += 1

    def finish(self) -> None:
        self.works.flush()
        self.redirects.flush()
        self.deletes.flush()


class _Editions(_Dump):
    name, kind, namespace = "editions", ol.EDITION, b"/books/"

    def __init__(self, space: Workspace) -> None:
        super().__init__(space)
        self.rows = _Batch(space.add_editions)

    def handle(self, record: ol.DumpRecord) -> None:
        if ol.edition_number(record.key) is None:
            raise Rejected("missing or malformed key")
        if record.kind != ol.EDITION:  # the target edition has a line of its own
            self.skipped["redirect" if record.kind == ol.REDIRECT else "delete"] += 1
            return
        facts = ol.edition_facts(record)
        isbns = " ".join(facts.isbn_13)
        for work in facts.work_numbers:
            self.rows.add((work, isbns, facts.cover_id, facts.language, facts.year))

    def finish(self) -> None:
        self.rows.flush()


def _dump_pass(path: Path, dumps: list[_Dump], rejects: Rejects, progress: ProgressFactory) -> Report:
    """One read of a dump file for every dump it was given as (an all-types dump can be all three).

    Lines of other types (an all-types dump's pages, languages, ...; editions in a file read only as
    works) are skipped and counted by type, not rejected; a malformed line is rejected once.
    """
    by_kind = {dump.kind: dump for dump in dumps}
    by_namespace = {dump.namespace: dump for dump in dumps}
    others: Counter = Counter()

    def handle(line: bytes) -> None:
        kind, key, last_modified, body = ol.split_line(line)
        dump = by_kind.get(kind)
        if dump is None:
            other = kind.decode("ascii", "replace")
            if kind in (ol.REDIRECT, ol.DELETE):  # these are of the namespace their key is in
                space = ol.namespace(key)
                dump = by_namespace.get(space)
                other += " of " + space.decode("ascii", "replace")
            if dump is None:
                others[f"other type {other}"] += 1
                return
        dump.handle(ol.decode_record(kind, key, last_modified, body))

    report = _scan(path, "+".join(dump.name for dump in dumps), rejects, progress, handle)
    for dump in dumps:
        dump.finish()
        others.update(dump.skipped)
        report.notes.update(dump.notes)
    _settle(report, others)
    return report


def _ratings_pass(path: Path, space: Workspace, rejects: Rejects, progress: ProgressFactory,
                  events: DatedEvents | None = None) -> Report:
    """Per-work star totals (1..5) and, given `events`, the lines' dated events."""
    return _dated_pass(path, "ratings", ol.parse_rating_line, lambda parsed: parsed.stars - 1, 5,
                       space.add_ratings, rejects, progress, events)


def _reading_log_pass(path: Path, space: Workspace, rejects: Rejects, progress: ProgressFactory,
                      events: DatedEvents) -> Report:
    """Per-work shelf totals (want_to_read, currently_reading, read) and the lines' dated events."""
    position = {shelf: n for n, shelf in enumerate(SHELVES)}
    return _dated_pass(path, "reading log", ol.parse_reading_log_line, lambda parsed: position[parsed.shelf], 3,
                       space.add_shelves, rejects, progress, events)


def _dated_pass(path: Path, label: str, parse: Callable[[bytes], Any], column: Callable[[Any], int], width: int,
                store: Callable[[dict[int, list[int]]], None], rejects: Rejects, progress: ProgressFactory,
                events: DatedEvents | None) -> Report:
    """A dated dump's per-work counts (`width` columns, `column` of a parsed line), handed to `store` every
    RATING_FLUSH_WORKS works so memory stays bounded, and each line's dated event."""
    totals: dict[int, list[int]] = {}

    def handle(line: bytes) -> None:
        parsed = parse(line)
        if events is not None:
            events.add(parsed.work, parsed.day)
        counts = totals.get(parsed.work)
        if counts is None:
            if len(totals) >= RATING_FLUSH_WORKS:
                store(totals)
                totals.clear()
            counts = totals[parsed.work] = [0] * width
        counts[column(parsed)] += 1

    report = _scan(path, label, rejects, progress, handle)
    store(totals)
    report.accepted = report.read - report.rejected_total
    return report


def _settle(report: Report, skipped: Counter) -> None:
    report.skipped.update({k: v for k, v in skipped.items() if v})
    report.accepted = report.read - report.rejected_total - sum(skipped.values())


def _book(number: int, facts: ol.WorkFacts, stars: tuple | None, editions: list, space: Workspace | None,
          report: Report, rated: bool = False, shelved: tuple | None = None, days: list | None = None,
          logged: bool = False, dated: bool = False) -> dict:
    """One work joined. `rated`: a ratings dump was read, so a work it has no stars for has none (zero),
    and its stars are the book's imported part (no individual ratings behind them); without the dump the
    line says nothing about ratings, and a re-import leaves the stored aggregate as it is. `logged`: a
    reading-log dump was read, likewise for its shelf totals (`imported_shelf_counts`); `dated`: either
    dump was read, so `days` are all of the work's recent events (`imported_activity`, empty: none)."""
    authors = []
    for author_number in facts.author_numbers:
        found = space.author(author_number) if space is not None else None
        if found is None:
            report.notes["author references not in the authors dump"] += 1
            continue
        canonical, name = found
        authors.append(author(f"OL{canonical}A", name))
    isbns: dict[str, None] = {}
    cover, languages, years = facts.cover_id, [], []
    for _work, edition_isbns, edition_cover, language, year in editions:
        if len(isbns) < MAX_ISBNS:
            isbns.update(dict.fromkeys(edition_isbns.split()))
        cover = cover or edition_cover
        if language:
            languages.append(language)
        if year:
            years.append(year)
    return book({
        "book_id": f"OL{number}W",
        "title": facts.title,
        "subtitle": facts.subtitle,
        "authors": authors,
        "subjects": facts.subjects,
        "first_publish_year": facts.first_publish_year or (min(years) if years else None),
        "isbn_13": list(isbns)[:MAX_ISBNS],
        "language": facts.language or ol.most_common_language(languages),
        "description": facts.description,
        "cover_id": cover,
        "imported_distribution": dict(zip("12345", stars or (0,) * 5, strict=True)) if rated else None,
        "imported_shelf_counts": dict(zip(SHELVES, shelved or (0,) * 3, strict=True)) if logged else None,
        IMPORTED_ACTIVITY: {day_text(day): n for day, n in days or ()} if dated else None,
        "created_at": facts.created_at,
        "updated_at": facts.updated_at,
    })


def _emit(space: Workspace, out: IO[bytes], filters: Filters, use_authors: bool, total: int,
          progress: ProgressFactory, rated: bool = False, logged: bool = False, first: int | None = None,
          stop: int | None = None, helper: Helper | None = None, part: Path | None = None) -> Report:
    """Write the works with ids in [first, stop); `helper` writes the rest into `part`, appended at the end."""
    report = Report("books", writes=True)
    decode = ol.WORK_FACTS_DECODER.decode

    def both() -> tuple[int, int]:
        read, written = helper.progress if helper is not None else (0, 0)
        return report.read + read, report.written + written

    with progress("write books", total, "items") as bar:
        for number, blob, stars, editions, shelved, days in space.joined_works(first, stop):
            report.read += 1
            if report.read % PROGRESS_EVERY == 0:
                bar.advance(*both(), absolute=True)
            record = _book(number, decode(blob), stars, editions, space if use_authors else None, report,
                           rated, shelved, days, logged, dated=rated or logged)
            if filters.languages and record.get("language") not in filters.languages:
                report.skipped["not in --language"] += 1
                continue
            if record["rating_count"] < filters.min_ratings:
                report.skipped["fewer ratings than --min-ratings"] += 1
                continue
            if filters.require_subjects and not record.get("subjects"):
                report.skipped["no subjects"] += 1
                continue
            out.write(_ENCODER.encode(record))
            out.write(b"\n")
            report.accepted += 1
            report.written += 1
            if filters.limit is not None and report.written >= filters.limit:
                report.notes["stopped at --limit"] = filters.limit
                break
        else:  # after every book, so that a load writes a redirect's target before it moves readers there
            if stop is None:  # the process writing the last works writes them (a helper, into its part)
                for number, target, what in space.work_lifecycle():
                    lifecycle = ol.lifecycle_line(number, target, what)
                    report.notes[ol.LIFECYCLE_NOTES[what]] += 1
                    if lifecycle is not None:
                        out.write(_ENCODER.encode(lifecycle))
                        out.write(b"\n")
        if helper is not None and part is not None:
            merge(report, helper.result(waiting=lambda: bar.advance(*both(), absolute=True)))
            with part.open("rb") as rest:
                shutil.copyfileobj(rest, out, 1 << 20)
        bar.advance(report.read, report.written, absolute=True)
    return report


def _same_file_groups(dumps: Dumps, space: Workspace) -> list[tuple[Path, list[_Dump]]]:
    """Each distinct file once, with the dumps it was given as, in the order authors, works, editions."""
    groups: dict[tuple[int, int], tuple[Path, list[_Dump]]] = {}
    for path, kind in ((dumps.authors, _Authors), (dumps.works, _Works), (dumps.editions, _Editions)):
        if path is not None:
            stat = path.stat()
            groups.setdefault((stat.st_dev, stat.st_ino), (path, []))[1].append(kind(space))
    return list(groups.values())


def extract(dumps: Dumps, out: Path, rejects: Rejects, filters: Filters = Filters(),
            workdir: Path | None = None, progress: ProgressFactory = Progress,
            processes: int | None = None) -> ExtractReport:
    """Run every pass and write the books JSONL; returns per-input and output counts.

    `processes`: 1, or 2 to read the editions dump and write half the books in a helper process
    (extract_processes.py); None: 2 on a machine with two cores or more, for inputs large enough.
    `out` is replaced only when everything succeeded (see outputs.py).
    """
    result = ExtractReport()
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bookrec-extract-", dir=workdir) as tmp:
        space = Workspace(Path(tmp) / "workspace.sqlite")
        helpers: list[Helper] = []
        aside_rejects = Path(tmp) / "aside-rejects.jsonl" if rejects.path is not None else None
        try:
            works_report = None
            groups = _same_file_groups(dumps, space)
            last = groups[-1] if groups else None
            aside = last if last and [type(d) for d in last[1]] == [_Editions] and reads_aside(last[0], processes) \
                else None
            if aside is not None:
                helpers.append(Helper(Path(tmp), "editions", read_editions, aside[0], Path(tmp) / "editions.sqlite",
                                      aside_rejects))
            for path, group in groups:
                if group is not (aside and aside[1]):
                    result.inputs.append(_dump_pass(path, group, rejects, progress))
                works = next((dump for dump in group if isinstance(dump, _Works)), None)
                if works is not None:
                    works_report = result.inputs[-1]
                    duplicates = works.added - space.work_count()
                    if duplicates:
                        works_report.notes["duplicate keys (last line kept)"] = duplicates
            # The ratings and reading-log passes' rejects follow the editions pass's: kept aside while that runs
            # in a helper.
            later = Path(tmp) / "later-rejects.jsonl" if aside and aside_rejects else None
            events = DatedEvents(space)
            ratings_report = reading_report = None
            with Rejects(later) if aside else nullcontext(rejects) as kept:
                if dumps.ratings:
                    ratings_report = _ratings_pass(dumps.ratings, space, kept, progress, events)
                if dumps.reading_log:
                    reading_report = _reading_log_pass(dumps.reading_log, space, kept, progress, events)
            events.finish()
            if aside is not None:
                result.inputs.append(helpers[0].result())
                for kept_aside in (aside_rejects, later):
                    if kept_aside is not None:
                        rejects.append_from(kept_aside)
            result.inputs += [report for report in (ratings_report, reading_report) if report is not None]
            started, cpu = time.monotonic(), time.process_time()
            if aside is not None:
                space.add_editions_from(Path(tmp) / "editions.sqlite")
                (Path(tmp) / "editions.sqlite").unlink()
            live = space.resolve_work_redirects()
            log.info("join editions: redirects resolved, editions indexed, %.2fs, CPU %.2fs (done)",
                     time.monotonic() - started, time.process_time() - cpu)
            if live and works_report is not None:
                works_report.notes["redirects to works in the dump"] = live
            with atomic_outputs(out) as (handle,):
                total = space.work_count()
                split = space.work_at(0.5) if filters.limit is None and splits(total, processes) else None
                part, writer = Path(tmp) / "books-part.jsonl", None
                if split is not None:
                    space.share()
                    writer = Helper(Path(tmp), "books", write_books, space.path, part, filters,
                                    dumps.authors is not None, total, dumps.ratings is not None,
                                    dumps.reading_log is not None, split)
                    helpers.append(writer)
                result.books = _emit(space, handle, filters, dumps.authors is not None, total,
                                     progress, rated=dumps.ratings is not None,
                                     logged=dumps.reading_log is not None, stop=split, helper=writer, part=part)
        finally:
            for helper in helpers:
                helper.stop()
            space.close()
    paths = [path for path, _ in groups] + [path for path in (dumps.ratings, dumps.reading_log) if path]
    result.bytes_read = sum(path.stat().st_size for path in paths)
    return result


# The jobs of extract's helper processes (extract_processes.Helper runs them in a process of their own).

def read_editions(counter: Any, path: Path, database: Path, rejects_path: Path | None) -> Report:
    """The editions pass, in a helper: into a workspace of its own at `database` (kept for the main one)."""
    space = Workspace(database)
    try:
        with Rejects(rejects_path) as rejects:
            return _dump_pass(path, [_Editions(space)], rejects,
                              lambda label, total, unit: Progress(label, total, unit, interactive=False))
    finally:
        space.close(keep=True)


def write_books(counter: Any, database: Path, part: Path, filters: Filters, use_authors: bool, total: int,
                rated: bool, logged: bool, first: int) -> Report:
    """The write pass of the works from id `first` on, in a helper, into the file `part`."""
    space = Workspace(database, fresh=False)
    try:
        with part.open("wb") as out:
            return _emit(space, out, filters, use_authors, total, lambda *_: Counting(counter), rated, logged,
                         first=first)
    finally:
        space.close(keep=True)
