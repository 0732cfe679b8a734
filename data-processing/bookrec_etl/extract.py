"""Open Library bulk dumps -> books JSONL in the bookrec schema.

Passes, each a single streaming read of one dump into an on-disk workspace:

1. authors dump: author id -> name (redirects followed);
2. works dump: each work's own facts, plus work redirects and deletes;
3. editions dump: ISBN-13s, covers, languages and years per work;
4. ratings dump: per-work star totals;

then redirected works' editions and ratings are moved onto their targets and
every work is written in id order with its authors, editions and ratings
joined. Memory stays flat whatever the dump sizes; bad lines go to the
rejects file and never stop the run.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import msgspec

from bookrec_etl import openlibrary as ol
from bookrec_etl.progress import Progress
from bookrec_etl.records import MAX_ISBNS, Rejected, author, book
from bookrec_etl.report import Rejects, Report
from bookrec_etl.sources import LineSource
from bookrec_etl.workspace import Workspace

BATCH_ROWS = 20_000
RATING_FLUSH_WORKS = 100_000  # distinct works held in memory before totals go to disk
PROGRESS_EVERY = 4096  # lines
_ENCODER = msgspec.json.Encoder()


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


def _authors_pass(path: Path, space: Workspace, rejects: Rejects, progress: ProgressFactory) -> Report:
    names, redirects = _Batch(space.add_authors), _Batch(space.add_author_redirects)
    accepted = frozenset((ol.AUTHOR, ol.REDIRECT, ol.DELETE))
    skipped: dict[str, int] = {"redirect": 0, "delete": 0}

    def handle(line: bytes) -> None:
        record = ol.parse_line(line, accepted)
        number = ol.author_number(record.key)
        if number is None:
            raise Rejected("missing or malformed key")
        if record.kind == ol.AUTHOR:
            names.add((number, ol.author_name(record.doc)))
        elif record.kind == ol.REDIRECT:
            redirects.add((number, ol.redirect_target(record, ol.author_number)))
            skipped["redirect"] += 1
        else:
            skipped["delete"] += 1

    report = _scan(path, "authors", rejects, progress, handle)
    names.flush()
    redirects.flush()
    space.resolve_author_redirects()
    _settle(report, skipped)
    return report


def _works_pass(path: Path, space: Workspace, rejects: Rejects, progress: ProgressFactory) -> Report:
    works, redirects = _Batch(space.add_works), _Batch(space.add_work_redirects)
    accepted = frozenset((ol.WORK, ol.REDIRECT, ol.DELETE))
    skipped: dict[str, int] = {"redirect": 0, "delete": 0}
    encode = ol.WORK_FACTS_ENCODER.encode

    def handle(line: bytes) -> None:
        record = ol.parse_line(line, accepted)
        number = ol.work_number(record.key)
        if number is None:
            raise Rejected("missing or malformed key")
        if record.kind == ol.WORK:
            works.add((number, encode(ol.work_facts(record))))
        elif record.kind == ol.REDIRECT:
            redirects.add((number, ol.redirect_target(record)))
            skipped["redirect"] += 1
        else:
            skipped["delete"] += 1

    report = _scan(path, "works", rejects, progress, handle)
    works.flush()
    redirects.flush()
    _settle(report, skipped)
    duplicates = report.accepted - space.work_count()
    if duplicates:
        report.notes["duplicate keys (last line kept)"] = duplicates
    return report


def _editions_pass(path: Path, space: Workspace, rejects: Rejects, progress: ProgressFactory) -> Report:
    rows = _Batch(space.add_editions)
    accepted = frozenset((ol.EDITION, ol.REDIRECT, ol.DELETE))
    skipped: dict[str, int] = {"redirect": 0, "delete": 0}

    def handle(line: bytes) -> None:
        record = ol.parse_line(line, accepted)
        if ol.edition_number(record.key) is None:
            raise Rejected("missing or malformed key")
        if record.kind != ol.EDITION:  # the target edition has a line of its own
            skipped["redirect" if record.kind == ol.REDIRECT else "delete"] += 1
            return
        facts = ol.edition_facts(record)
        isbns = " ".join(facts.isbn_13)
        for work in facts.work_numbers:
            rows.add((work, isbns, facts.cover_id, facts.language, facts.year))

    report = _scan(path, "editions", rejects, progress, handle)
    rows.flush()
    _settle(report, skipped)
    return report


def _ratings_pass(path: Path, space: Workspace, rejects: Rejects, progress: ProgressFactory) -> Report:
    totals: dict[int, list[int]] = {}

    def handle(line: bytes) -> None:
        parsed = ol.parse_rating_line(line)
        stars = totals.get(parsed.work)
        if stars is None:
            if len(totals) >= RATING_FLUSH_WORKS:
                space.add_ratings(totals)
                totals.clear()
            stars = totals[parsed.work] = [0, 0, 0, 0, 0]
        stars[parsed.stars - 1] += 1

    report = _scan(path, "ratings", rejects, progress, handle)
    space.add_ratings(totals)
    report.accepted = report.read - report.rejected_total
    return report


def _settle(report: Report, skipped: dict[str, int]) -> None:
    report.skipped.update({k: v for k, v in skipped.items() if v})
    report.accepted = report.read - report.rejected_total - sum(skipped.values())


def _book(number: int, facts: ol.WorkFacts, stars: tuple | None, editions: list, space: Workspace | None,
          report: Report) -> dict:
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
        "ratings_distribution": dict(zip("12345", stars, strict=True)) if stars else None,
        "created_at": facts.created_at,
        "updated_at": facts.updated_at,
    })


def _emit(space: Workspace, out: IO[bytes], filters: Filters, use_authors: bool, total: int,
          progress: ProgressFactory) -> Report:
    report = Report("books", written=0)
    decode = ol.WORK_FACTS_DECODER.decode
    with progress("write books", total, "items") as bar:
        for number, blob, stars, editions in space.joined_works():
            report.read += 1
            if report.read % PROGRESS_EVERY == 0:
                bar.advance(report.read, report.written, absolute=True)
            record = _book(number, decode(blob), stars, editions, space if use_authors else None, report)
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
        bar.advance(report.read, report.written, absolute=True)
    return report


def extract(dumps: Dumps, out: Path, rejects: Rejects, filters: Filters = Filters(),
            workdir: Path | None = None, progress: ProgressFactory = Progress) -> ExtractReport:
    """Run every pass and write the books JSONL; returns per-input and output counts."""
    result = ExtractReport()
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bookrec-extract-", dir=workdir) as tmp:
        space = Workspace(Path(tmp) / "workspace.sqlite")
        try:
            if dumps.authors:
                result.inputs.append(_authors_pass(dumps.authors, space, rejects, progress))
            result.inputs.append(_works_pass(dumps.works, space, rejects, progress))
            if dumps.editions:
                result.inputs.append(_editions_pass(dumps.editions, space, rejects, progress))
            if dumps.ratings:
                result.inputs.append(_ratings_pass(dumps.ratings, space, rejects, progress))
            live = space.resolve_work_redirects()
            if live:
                works_report = next(r for r in result.inputs if r.label == "works")
                works_report.notes["redirects to works in the dump"] = live
            out.parent.mkdir(parents=True, exist_ok=True)
            with out.open("wb") as handle:
                result.books = _emit(space, handle, filters, dumps.authors is not None, space.work_count(),
                                     progress)
        finally:
            space.close()
    inputs = (dumps.works, dumps.authors, dumps.editions, dumps.ratings)
    result.bytes_read = sum(path.stat().st_size for path in inputs if path is not None)
    return result
