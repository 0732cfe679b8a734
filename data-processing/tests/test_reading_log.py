"""Open Library's reading-log and ratings dumps on crafted files in the real format (4 tab-separated columns, no
header: work key, edition key (empty or \\N), shelf name or rating, date): per-work shelf counts and star
totals, the dated events of the last 30 days for trending, redirects followed; then loaded beside readers'
own shelvings (moto server over HTTP, the ratings service's own write path), which stay exact."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bookrec_bookdetail.domain import to_book
from bookrec_catalog.catalog import SHELVES
from bookrec_catalog.dynamo import from_item
from bookrec_catalog.imported_activity import ACTIVITY_DAYS
from bookrec_etl import dated_events
from bookrec_etl.cli import main
from bookrec_etl.extract import Dumps, extract
from bookrec_etl.importers import read_jsonl
from bookrec_etl.load import Loader, Tables
from bookrec_etl.progress import Progress
from bookrec_etl.records import Rejected
from bookrec_etl.report import Rejects
from bookrec_etl.workspace import Workspace

from .test_reimport import RatesFirst

TODAY = datetime.now(UTC).date()


def day(days_ago: int) -> str:
    return (TODAY - timedelta(days=days_ago)).isoformat()


def shelves(want: int = 0, reading: int = 0, done: int = 0) -> dict[str, int]:
    return {"want_to_read": want, "currently_reading": reading, "read": done}


def dump_line(kind: str, key: str, doc: dict) -> str:
    return "\t".join((kind, key, "1", "2020-01-01T00:00:00.000000", json.dumps({"key": key, **doc}))) + "\n"


def works_dump(path: Path) -> Path:
    path.write_text(dump_line("/type/work", "/works/OL1W", {"title": "Kept"})
                    + dump_line("/type/redirect", "/works/OL2W", {"location": "/works/OL1W"})
                    + dump_line("/type/work", "/works/OL3W", {"title": "Quiet"})
                    + dump_line("/type/work", "/works/OL5W", {"title": "Busy"}))
    return path


def reading_log(path: Path, lines: list[tuple[str, str, str]]) -> Path:
    """(work key, shelf name, date) lines; editions empty or \\N, as the dumps write them."""
    path.write_text("".join(f"{work}\t{'' if n % 2 else chr(92) + 'N'}\t{shelf}\t{date}\n"
                            for n, (work, shelf, date) in enumerate(lines)))
    return path


# The month's reading log: OL2W redirects to OL1W and hands it its entries; OL5W is the busiest of the month.
LOG = [("/works/OL1W", "Want to Read", day(1)), ("/works/OL1W", "Already Read", day(40)),
       ("/works/OL2W", "Currently Reading", day(2)), ("/works/OL2W", "Want to Read", day(2)),
       *[("/works/OL5W", "Want to Read", day(3))] * 3, ("/works/OL5W", "Already Read", day(0))]
RATINGS = f"/works/OL5W\t\t5\t{day(3)}\n/works/OL2W\t\\N\t4\t{day(29)}\n/works/OL1W\t\t3\t{day(30)}\n"


def quiet(label, total, unit):
    return Progress(label, total, unit, interactive=False)


def run(tmp_path: Path, **dumps: Path) -> tuple[dict[str, dict], list[dict]]:
    out, rejects_path = tmp_path / "books.jsonl", tmp_path / "rejects.jsonl"
    with Rejects(rejects_path) as rejects:
        extract(Dumps(**dumps), out, rejects, workdir=tmp_path, progress=quiet)
    rejected = [json.loads(line) for line in rejects_path.read_text().splitlines()] if rejects_path.exists() else []
    lines = list(read_jsonl(out))
    assert [line for line in lines if "title" not in line] == [{"book_id": "OL2W", "redirect_to": "OL1W"}]
    return {book["book_id"]: book for book in lines if "title" in book}, rejected


def test_the_dumps_give_shelf_counts_star_totals_and_the_months_events_redirects_followed(tmp_path):
    ratings = tmp_path / "ratings.txt"
    ratings.write_text(RATINGS)
    books, rejected = run(tmp_path, works=works_dump(tmp_path / "works.txt"), ratings=ratings,
                          reading_log=reading_log(tmp_path / "log.txt", LOG))
    assert rejected == [] and set(books) == {"OL1W", "OL3W", "OL5W"}
    kept, quiet_book, busy = books["OL1W"], books["OL3W"], books["OL5W"]
    assert kept["imported_shelf_counts"] == shelves(want=2, reading=1, done=1)
    assert busy["imported_shelf_counts"] == shelves(want=3, done=1)
    assert quiet_book["imported_shelf_counts"] == shelves() and quiet_book["imported_activity"] == {}
    assert kept["imported_distribution"] == {"1": 0, "2": 0, "3": 1, "4": 1, "5": 0}
    # The 30 days ending with the newest date (today): day(40) and day(30) fall out, the rest is counted per day.
    assert kept["imported_activity"] == {day(29): 1, day(2): 2, day(1): 1}
    assert busy["imported_activity"] == {day(3): 4, day(0): 1}


def test_without_the_dumps_a_line_says_nothing_of_shelves_or_activity(tmp_path):
    books, _ = run(tmp_path, works=works_dump(tmp_path / "works.txt"))
    assert all("imported_shelf_counts" not in b and "imported_activity" not in b for b in books.values())
    ratings = tmp_path / "ratings.txt"
    ratings.write_text(RATINGS)
    rated, _ = run(tmp_path, works=tmp_path / "works.txt", ratings=ratings)
    assert all("imported_shelf_counts" not in b for b in rated.values())
    assert rated["OL5W"]["imported_activity"] == {day(3): 1}  # the ratings' dates alone


def test_every_kind_of_bad_reading_log_line_is_a_counted_reject_with_its_reason(tmp_path):
    log = tmp_path / "log.txt"
    log.write_text("".join([
        f"/works/OL1W\t\tWant to Read\t{day(1)}\n",           # 1: good
        f"/works/OL1W\t\tLent Out\t{day(1)}\n",               # 2
        f"/books/OL1M\t\tWant to Read\t{day(1)}\n",           # 3
        "/works/OL1W\t\tAlready Read\t2026-13-01\n",          # 4
        "/works/OL1W\t\tAlready Read\t01/02/2026\n",          # 5
        f"/works/OL1W\t\tAlready Read\t{day(-2)}\n",          # 6: after today
        "/works/OL1W\tWant to Read\n",                        # 7
        "\n",                                                  # 8
        f"/works/OL1W\t\twant to read\t{day(1)}\n",           # 9: names are as the dump writes them
    ]))
    result = CliRunner().invoke(main, ["extract", "--works", str(works_dump(tmp_path / "works.txt")),
                                       "--reading-log", str(log), "--out", str(tmp_path / "books.jsonl")])
    assert result.exit_code == 0, result.output
    rejected = [json.loads(line) for line in (tmp_path / "books.jsonl.extract-rejects.jsonl").read_text().splitlines()]
    unknown = "shelf is not Want to Read, Currently Reading or Already Read"
    assert [(r["source"], r["line"], r["reason"]) for r in rejected] == [
        ("log.txt", 2, unknown), ("log.txt", 3, "missing or malformed key"), ("log.txt", 4, "date is not YYYY-MM-DD"),
        ("log.txt", 5, "date is not YYYY-MM-DD"), ("log.txt", 6, "date after today"),
        ("log.txt", 7, "wrong column count"), ("log.txt", 8, "wrong column count"), ("log.txt", 9, unknown)]
    assert "reading log: read 9, accepted 1, rejected 8" in result.output
    books = {b["book_id"]: b for b in read_jsonl(tmp_path / "books.jsonl")}
    assert books["OL1W"]["imported_shelf_counts"] == shelves(want=1)


def test_gzip_dumps_give_the_same_books(tmp_path):
    ratings = tmp_path / "ratings.txt"
    ratings.write_text(RATINGS)
    log = reading_log(tmp_path / "log.txt", LOG)
    plain, _ = run(tmp_path / "plain", works=works_dump(tmp_path / "works.txt"), ratings=ratings, reading_log=log)
    for path in (ratings, log):
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
    packed, _ = run(tmp_path / "gz", works=tmp_path / "works.txt", ratings=tmp_path / "ratings.txt.gz",
                    reading_log=tmp_path / "log.txt.gz")
    assert packed == plain


def test_a_dump_in_date_order_keeps_at_most_two_windows_of_events_on_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(dated_events, "FLUSH_PAIRS", 10)
    space = Workspace(tmp_path / "workspace.sqlite")
    events = dated_events.DatedEvents(space, today=1_000)
    held = []
    for number in range(700, 1_000):  # 300 days, oldest first, 5 works a day
        for work in range(1, 6):
            events.add(work, number)
        held.append(space.activity_pairs())
    assert max(held) <= 5 * (2 * ACTIVITY_DAYS + 2)
    events.finish()
    assert space.activity_pairs() == 5 * ACTIVITY_DAYS
    with pytest.raises(Rejected, match="date after today"):
        events.add(1, 1_001)
    space.close()


# --- loaded beside readers ---

def etl(*args) -> Result:
    return CliRunner().invoke(main, [str(arg) for arg in args])


def stored(dynamodb, tables, book_id: str) -> dict:
    return from_item(dynamodb.get_item(TableName=tables["books"], Key={"book_id": {"S": book_id}},
                                       ConsistentRead=True)["Item"])


def entries(dynamodb, tables, book_id: str) -> dict[str, int]:
    items = dynamodb.query(TableName=tables["shelves"], KeyConditionExpression="book_id = :b",
                           ExpressionAttributeValues={":b": {"S": book_id}}, ConsistentRead=True)["Items"]
    counted = dict.fromkeys(SHELVES, 0)
    for item in items:
        counted[item["shelf"]["S"]] += 1
    return counted


def import_dumps(tmp_path: Path, log: list[tuple[str, str, str]] | None, name: str = "books.jsonl",
                 ratings_dump: str = RATINGS) -> Result:
    """extract (works, ratings, and the reading log when given) then load, as the README shows it."""
    ratings = tmp_path / "ratings.txt"
    ratings.write_text(ratings_dump)
    args = ["extract", "--works", works_dump(tmp_path / "works.txt"), "--ratings", ratings]
    if log is not None:
        args += ["--reading-log", reading_log(tmp_path / "log.txt", log)]
    extracted = etl(*args, "--out", tmp_path / name)
    assert extracted.exit_code == 0, extracted.output
    return etl("load", tmp_path / name)


def clean() -> None:
    report = etl("reconcile")
    assert report.exit_code == 0 and report.output.splitlines()[1:] == ["drift: none", "shelf drift: none"], \
        report.output


def test_readers_shelvings_before_and_after_imports_are_kept_exactly(tables, dynamodb, shelve, rate, tmp_path):
    assert import_dumps(tmp_path, LOG).exit_code == 0
    assert stored(dynamodb, tables, "OL1W")["shelf_counts"] == shelves(want=2, reading=1, done=1)
    quiet_book = stored(dynamodb, tables, "OL3W")  # on no dump's shelf: nothing stored, absent is zero
    assert "shelf_counts" not in quiet_book and "imported_shelf_counts" not in quiet_book
    shelve("OL1W", "reader-1", "want_to_read")  # after the first import
    rate("OL3W", "reader-2", 4)  # a rating of a book on no shelf puts it on `read`
    assert stored(dynamodb, tables, "OL1W")["shelf_counts"] == shelves(want=3, reading=1, done=1)
    clean()

    # The next month: OL1W's entries drop (one reader took it off, the Currently Reading one), OL3W gets some.
    month = [line for line in LOG if line[1] != "Currently Reading"] + [("/works/OL3W", "Already Read", day(1))] * 2
    loaded = import_dumps(tmp_path, month)
    assert loaded.exit_code == 0, loaded.output
    shelve("OL1W", "reader-3", "currently_reading")  # after the second import
    assert entries(dynamodb, tables, "OL1W") == shelves(want=1, reading=1)
    for book_id, imported in (("OL1W", shelves(want=2, done=1)), ("OL3W", shelves(done=2)),
                              ("OL5W", shelves(want=3, done=1))):
        book = stored(dynamodb, tables, book_id)
        assert book["imported_shelf_counts"] == imported
        assert book["shelf_counts"] == {s: imported[s] + entries(dynamodb, tables, book_id)[s] for s in SHELVES}
    assert stored(dynamodb, tables, "OL3W")["shelf_counts"] == shelves(done=3)  # reader-2's entry kept
    clean()
    # The ratings service moves one reader at a time, on top of the imported part: a move and a removal.
    shelve("OL1W", "reader-1", "read")
    shelve("OL1W", "reader-3", None)
    book = stored(dynamodb, tables, "OL1W")
    assert book["shelf_counts"] == shelves(want=2, done=2) and entries(dynamodb, tables, "OL1W") == shelves(done=1)
    shown = to_book(book).shelf_counts  # what GET /books/{id} answers: the dump's readers and ours
    assert (shown.want_to_read, shown.currently_reading, shown.read) == (2, 0, 2)
    clean()

    again = import_dumps(tmp_path, month)  # the same dumps again: nothing to write
    assert again.exit_code == 0 and "written 0" in again.output, again.output

    before = {b: stored(dynamodb, tables, b) for b in ("OL1W", "OL3W", "OL5W")}
    silent = import_dumps(tmp_path, None)  # no reading log: the lines say nothing of shelves
    assert silent.exit_code == 0, silent.output
    for book_id, book in before.items():
        after = stored(dynamodb, tables, book_id)
        assert (after["shelf_counts"], after["imported_shelf_counts"]) == (book["shelf_counts"],
                                                                           book["imported_shelf_counts"])
    clean()


def test_a_shelving_landing_between_the_loads_read_and_write_is_kept(tables, dynamodb, shelve, tmp_path):
    assert import_dumps(tmp_path, LOG).exit_code == 0
    month = tmp_path / "month"
    month.mkdir()
    books = month / "books.jsonl"
    extracted = etl("extract", "--works", works_dump(month / "works.txt"), "--reading-log",
                    reading_log(month / "log.txt", [*LOG, ("/works/OL1W", "Want to Read", day(0))]), "--out", books)
    assert extracted.exit_code == 0, extracted.output

    def moves_the_shelf_counts(actions: list[dict]) -> bool:
        return any("Update" in a and "imported_shelf_counts" in json.dumps(a) for a in actions)

    client = RatesFirst(dynamodb, moves_the_shelf_counts, lambda: shelve("OL1W", "reader-9", "read"))
    report = Loader(client, Tables(tables["books"], tables["ratings"], tables["shelves"]), Rejects(None),
                    2).load(books, progress=quiet)
    assert client.landed.is_set() and report.retried >= 1
    assert stored(dynamodb, tables, "OL1W")["shelf_counts"] == shelves(want=3, reading=1, done=2)
    clean()


def test_imported_activity_is_replaced_by_each_import_and_removed_when_the_dumps_have_none(tables, dynamodb,
                                                                                          tmp_path):
    assert import_dumps(tmp_path, LOG).exit_code == 0
    assert stored(dynamodb, tables, "OL5W")["imported_activity"] == {day(3): 4, day(0): 1}
    assert "imported_activity" not in stored(dynamodb, tables, "OL3W")  # none: nothing stored
    # OL5W's reading log goes: its rating's day is left; the newest date is now yesterday, so the window takes
    # in OL1W's rating of 30 days ago.
    assert import_dumps(tmp_path, [line for line in LOG if line[0] != "/works/OL5W"]).exit_code == 0
    assert stored(dynamodb, tables, "OL5W")["imported_activity"] == {day(3): 1}
    assert stored(dynamodb, tables, "OL1W")["imported_activity"] == {day(30): 1, day(29): 1, day(2): 2, day(1): 1}
    # Neither dump holds anything recent of OL1W any more: its activity is removed.
    assert import_dumps(tmp_path, [line for line in LOG if line[0] == "/works/OL5W"], ratings_dump="").exit_code == 0
    assert "imported_activity" not in stored(dynamodb, tables, "OL1W")
    assert stored(dynamodb, tables, "OL5W")["imported_activity"] == {day(3): 3, day(0): 1}


def test_shelf_drift_shows_the_imported_part_and_a_repair_keeps_it(tables, dynamodb, shelve, tmp_path):
    assert import_dumps(tmp_path, LOG).exit_code == 0
    shelve("OL1W", "reader-1", "read")
    dynamodb.update_item(TableName=tables["books"], Key={"book_id": {"S": "OL1W"}},
                         UpdateExpression="SET shelf_counts = :c",
                         ExpressionAttributeValues={":c": {"M": {s: {"N": "0"} for s in SHELVES}}})
    report = etl("reconcile")
    assert report.exit_code == 1
    assert ("  OL1W: stored [want_to_read:0 currently_reading:0 read:0]; expected [want_to_read:2 "
            "currently_reading:1 read:2] = imported [want_to_read:2 currently_reading:1 read:1] + 1 shelf entry "
            "[want_to_read:0 currently_reading:0 read:1]") in report.output.splitlines()
    assert etl("reconcile", "--fix").exit_code == 0
    assert stored(dynamodb, tables, "OL1W")["shelf_counts"] == shelves(want=2, reading=1, done=2)
    clean()


@pytest.mark.parametrize("with_shelves_table", [True, False])
def test_a_book_deleted_and_imported_again_gets_imported_plus_entries_back(tables, dynamodb, shelve, tmp_path,
                                                                         monkeypatch, with_shelves_table):
    assert import_dumps(tmp_path, LOG).exit_code == 0
    shelve("OL5W", "reader-1", "currently_reading")
    assert etl("delete", "OL5W").exit_code == 0
    books = tmp_path / "books.jsonl"
    if not with_shelves_table:  # a redirect line needs the shelves table: load the book lines alone
        monkeypatch.delenv("SHELVES_TABLE")
        books = tmp_path / "books-only.jsonl"
        books.write_text("".join(line for line in (tmp_path / "books.jsonl").read_text().splitlines(True)
                                 if "redirect_to" not in line))
    assert etl("load", books).exit_code == 0
    imported = shelves(want=3, done=1)
    if not with_shelves_table:  # the load could not count the entries: the imported part alone, then the repair
        assert stored(dynamodb, tables, "OL5W")["shelf_counts"] == imported
        monkeypatch.setenv("SHELVES_TABLE", tables["shelves"])
        assert etl("reconcile", "--fix").exit_code == 0
    assert stored(dynamodb, tables, "OL5W")["shelf_counts"] == {**imported, "currently_reading": 1}
    clean()
