"""Re-imports against a real moto server, with readers rating through the ratings service's own write path:
a load changes the catalogue and never what readers wrote, and leaves every aggregate exact."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bookrec_catalog.catalog import with_derived_attributes
from bookrec_catalog.dynamo import from_item, to_item
from bookrec_etl.cli import main
from bookrec_etl.load import Checkpoint, Loader, Tables
from bookrec_etl.progress import Progress
from bookrec_etl.report import Rejects

BOOK = "OL827357W"
ZEN = {"key": f"/works/{BOOK}", "title": "Zen and the Art of Motorcycle Maintenance",
       "authors": [{"author_name": "Robert M. Pirsig"}], "first_publish_year": 1974}


def quiet(label, total, unit):
    return Progress(label, total, unit, interactive=False)


def stars(**counts: int) -> dict[str, int]:
    return {star: counts.get(f"s{star}", 0) for star in "12345"}


def write_lines(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def etl(*args) -> Result:
    """The command line; tables from BOOKS_TABLE and RATINGS_TABLE, which the `tables` fixture exports."""
    return CliRunner().invoke(main, [str(arg) for arg in args])


def import_and_load(tmp_path: Path, rows: list[dict]) -> Result:
    source = write_lines(tmp_path / "replaced-system.jsonl", rows)
    assert etl("import-jsonl", source, "--out", tmp_path / "books.jsonl").exit_code == 0
    return etl("load", tmp_path / "books.jsonl")


def stored_book(dynamodb, tables, book_id: str = BOOK) -> dict:
    return from_item(dynamodb.get_item(TableName=tables["books"], Key={"book_id": {"S": book_id}},
                                       ConsistentRead=True)["Item"])


def stored_ratings(dynamodb, tables, book_id: str = BOOK) -> dict[str, dict]:
    items = dynamodb.query(TableName=tables["ratings"], KeyConditionExpression="book_id = :b",
                           ExpressionAttributeValues={":b": {"S": book_id}}, ConsistentRead=True)["Items"]
    return {item["user_id"]["S"]: from_item(item) for item in items}


def aggregate(book: dict) -> tuple:
    return book["ratings_distribution"], book["rating_count"], book["rating_sum"], book["avg_rating"]


def reconciled(*extra: str) -> str:
    """`bookrec-etl reconcile` over every book: its output, after checking it found no drift (exit 0)."""
    result = etl("reconcile", *extra)
    assert result.exit_code == 0 and "drift: none" in result.output, result.output
    return result.output


def loader(client, tables, writers: int = 2) -> Loader:
    return Loader(client, Tables(tables["books"], tables["ratings"]), Rejects(None), writers)


class RatesFirst:
    """The real client; the first TransactWriteItems whose actions satisfy `when` is preceded by `land()`,
    a reader's rating landing between the loader's read and its write."""

    def __init__(self, client, when, land) -> None:
        self.client, self.when, self.land = client, when, land
        self.transactions: list[list[dict]] = []
        self.landed = threading.Event()

    def __getattr__(self, name):
        return getattr(self.client, name)

    def transact_write_items(self, TransactItems, **kwargs):
        self.transactions.append(TransactItems)
        if not self.landed.is_set() and self.when(TransactItems):
            self.landed.set()
            self.land()
        return self.client.transact_write_items(TransactItems=TransactItems, **kwargs)


def test_a_reimport_keeps_the_readers_rating_in_the_aggregate(tables, dynamodb, rate, tmp_path):
    # The reported case: rated through the API (total 1, 5:1), then the monthly import-jsonl + load.
    assert import_and_load(tmp_path, [ZEN]).exit_code == 0
    rate(BOOK, "reader-1", 5)
    rated = stored_book(dynamodb, tables)
    assert aggregate(rated) == (stars(s5=1), 1, 5, 5.0)

    result = import_and_load(tmp_path, [{**ZEN, "subtitle": "An Inquiry into Values"}])
    assert result.exit_code == 0, result.output
    after = stored_book(dynamodb, tables)
    assert aggregate(after) == aggregate(rated)  # was (0 ratings) when a load put the whole item
    assert after["subtitle"] == "An Inquiry into Values" and after["changed_at"] > rated["changed_at"]
    assert stored_ratings(dynamodb, tables)["reader-1"]["rating"] == 5
    assert "written 1" in result.output
    reconciled()


def test_a_reimport_that_changes_nothing_writes_nothing(tables, dynamodb, rate, tmp_path):
    assert import_and_load(tmp_path, [ZEN]).exit_code == 0
    rate(BOOK, "reader-1", 4)
    before = stored_book(dynamodb, tables)
    result = import_and_load(tmp_path, [ZEN])
    assert result.exit_code == 0 and "written 0" in result.output
    assert "written 0, unchanged 1" in result.output
    assert stored_book(dynamodb, tables) == before  # not even restamped


def test_a_changed_imported_figure_moves_the_aggregate_by_the_difference(tables, dynamodb, rate, tmp_path):
    # The replaced system's average and count have no ratings behind them: the book's imported part.
    assert import_and_load(tmp_path, [{**ZEN, "avg_rating": 4.0, "rating_count": 10}]).exit_code == 0
    assert stored_book(dynamodb, tables)["imported_distribution"] == stars(s4=10)
    rate(BOOK, "reader-1", 5)
    rate(BOOK, "reader-2", 1)

    assert import_and_load(tmp_path, [{**ZEN, "avg_rating": 4.5, "rating_count": 20}]).exit_code == 0
    book = stored_book(dynamodb, tables)
    assert book["imported_distribution"] == stars(s4=10, s5=10)  # 20 ratings summing to 90
    assert aggregate(book) == (stars(s1=1, s4=10, s5=11), 22, 1 + 40 + 55, round(96 / 22, 4))
    assert set(stored_ratings(dynamodb, tables)) == {"reader-1", "reader-2"}
    reconciled()

    # A source that says nothing about ratings (no average, no count) leaves the imported part as it is.
    assert import_and_load(tmp_path, [ZEN]).exit_code == 0
    assert aggregate(stored_book(dynamodb, tables)) == aggregate(book)


def test_a_rating_landing_between_the_read_and_the_move_is_kept(tables, dynamodb, rate, tmp_path):
    assert import_and_load(tmp_path, [{**ZEN, "avg_rating": 4.0, "rating_count": 10}]).exit_code == 0
    rate(BOOK, "reader-1", 5)
    books = write_lines(tmp_path / "again.jsonl", [])
    source = write_lines(tmp_path / "src.jsonl", [{**ZEN, "avg_rating": 3.0, "rating_count": 4}])
    assert etl("import-jsonl", source, "--out", books).exit_code == 0

    def moves_the_aggregate(actions: list[dict]) -> bool:
        return any("Update" in a and "imported_distribution" in json.dumps(a) for a in actions)

    client = RatesFirst(dynamodb, moves_the_aggregate, lambda: rate(BOOK, "reader-2", 2))
    report = loader(client, tables).load(books, progress=quiet)
    assert client.landed.is_set() and report.retried == 1 and report.written == 1
    book = stored_book(dynamodb, tables)
    assert book["imported_distribution"] == stars(s3=4)
    assert aggregate(book) == (stars(s2=1, s3=4, s5=1), 6, 2 + 12 + 5, round(19 / 6, 4))  # both readers kept
    reconciled()


def test_rating_lines_never_overwrite_a_readers_newer_rating(tables, dynamodb, rate, tmp_path):
    loaded = write_lines(tmp_path / "first.jsonl", [
        {"book_id": "GB7", "title": "Seven", "ratings_distribution": {"4": 1}},
        {"book_id": "GB7", "user_id": "gb-1", "rating": 4, "created_at": "2017-09-01T00:00:00Z"},
    ])
    assert etl("load", loaded).exit_code == 0
    rate("GB7", "reader-1", 5)  # stamped now
    again = write_lines(tmp_path / "ratings.jsonl", [
        {"book_id": "GB7", "user_id": "reader-1", "rating": 1, "created_at": "2020-01-01T00:00:00Z"},  # older
        {"book_id": "GB7", "user_id": "gb-1", "rating": 2, "created_at": "2018-01-01T00:00:00Z"},  # newer
        {"book_id": "GB7", "user_id": "gb-2", "rating": 3, "created_at": "2017-09-01T00:00:00Z"},  # new
        {"book_id": "GB7", "user_id": "gb-1", "rating": 4, "created_at": "2017-09-01T00:00:00Z"},  # old again
    ])
    result = etl("load", again)
    assert result.exit_code == 0, result.output
    assert "skipped 2 (rating not newer than the stored one: 2)" in result.output
    assert "books reconciled after their ratings were written: 1" in result.output
    rows = stored_ratings(dynamodb, tables, "GB7")
    assert {user: row["rating"] for user, row in rows.items()} == {"reader-1": 5, "gb-1": 2, "gb-2": 3}
    assert aggregate(stored_book(dynamodb, tables, "GB7")) == (stars(s2=1, s3=1, s5=1), 3, 10,
                                                                round(10 / 3, 4))
    reconciled()


@pytest.mark.parametrize("rows_of_the_book", [1, 12])  # one row: its own condition; twelve: the book's guard
def test_a_readers_rating_landing_before_the_write_is_kept(tables, dynamodb, rate, tmp_path,
                                                           rows_of_the_book):
    book = write_lines(tmp_path / "book.jsonl", [{"book_id": "GB8", "title": "Eight"}])
    assert etl("load", book).exit_code == 0
    lines = [{"book_id": "GB8", "user_id": f"gb-{n}", "rating": 3, "created_at": "2020-01-01T00:00:00Z"}
             for n in range(rows_of_the_book)]
    source = write_lines(tmp_path / "ratings.jsonl", lines)
    # gb-0 rates through the API after the loader read gb-0's row (absent) and before it writes it.
    client = RatesFirst(dynamodb, lambda actions: True, lambda: rate("GB8", "gb-0", 5))
    report = loader(client, tables).load(source, progress=quiet)
    guarded = any("ConditionCheck" in action for action in client.transactions[0])
    assert guarded == (rows_of_the_book > 1)
    assert report.retried == rows_of_the_book + guarded and report.skipped == Counter(
        {"rating not newer than the stored one": 1})
    rows = stored_ratings(dynamodb, tables, "GB8")
    assert rows["gb-0"]["rating"] == 5 and len(rows) == rows_of_the_book
    distribution = stored_book(dynamodb, tables, "GB8")["ratings_distribution"]
    assert distribution == stars(s3=rows_of_the_book - 1, s5=1)
    reconciled()


def test_a_reimported_tombstone_counts_its_kept_ratings_again(tables, dynamodb, rate, tmp_path):
    assert import_and_load(tmp_path, [{**ZEN, "avg_rating": 4.0, "rating_count": 10}]).exit_code == 0
    rate(BOOK, "reader-1", 5)
    assert etl("delete", BOOK).exit_code == 0
    assert "ratings_distribution" not in stored_book(dynamodb, tables)  # a tombstone holds no aggregate
    reconciled()  # tombstones are skipped; their ratings are counted as of no live book

    result = import_and_load(tmp_path, [{**ZEN, "avg_rating": 4.0, "rating_count": 10}])
    assert result.exit_code == 0 and "books whose rows were counted into their aggregate: 1" in result.output
    book = stored_book(dynamodb, tables)
    assert "deleted_at" not in book and "expires_at" not in book
    assert aggregate(book) == (stars(s4=10, s5=1), 11, 45, round(45 / 11, 4))
    reconciled()


def test_a_legacy_book_adopts_the_lines_imported_part_and_keeps_its_ratings(tables, dynamodb, rate, tmp_path):
    # As the loader before imported_distribution wrote it: the source's 10 four-star ratings in the
    # distribution, nothing saying which part they are; then a reader rated it.
    legacy = with_derived_attributes({"book_id": BOOK, "title": ZEN["title"],
                                      "ratings_distribution": {"4": 10}})
    dynamodb.put_item(TableName=tables["books"], Item=to_item(legacy))
    rate(BOOK, "reader-1", 5)
    reconciled()  # 11 stored, 1 counted: the other 10 may be the source's, so no drift is claimed

    assert import_and_load(tmp_path, [{**ZEN, "avg_rating": 4.0, "rating_count": 12}]).exit_code == 0
    book = stored_book(dynamodb, tables)
    assert book["imported_distribution"] == stars(s4=12)
    assert aggregate(book) == (stars(s4=12, s5=1), 13, 53, round(53 / 13, 4))
    reconciled()


def test_catalogue_attributes_the_source_dropped_go_and_the_aggregate_stays(tables, dynamodb, rate, tmp_path):
    assert import_and_load(tmp_path, [{**ZEN, "subtitle": "An Inquiry", "cover_id": 1}]).exit_code == 0
    rate(BOOK, "reader-1", 3)
    rated = stored_book(dynamodb, tables)
    assert import_and_load(tmp_path, [{**ZEN, "cover_id": 2}]).exit_code == 0
    book = stored_book(dynamodb, tables)
    assert "subtitle" not in book and book["cover_id"] == 2
    assert aggregate(book) == aggregate(rated) and book["created_at"] == rated["created_at"]


def test_an_interrupted_ratings_load_reconciles_its_books_when_it_resumes(failing_after, tables, dynamodb, tmp_path):
    books = [{"book_id": f"GB{n}", "title": f"Book {n}"} for n in range(1, 7)]
    assert etl("load", write_lines(tmp_path / "books.jsonl", books)).exit_code == 0
    ratings = [{"book_id": f"GB{1 + n % 6}", "user_id": f"gb-{n}", "rating": 1 + n % 5,
                "created_at": "2017-09-01T00:00:00Z"} for n in range(600)]
    source = write_lines(tmp_path / "ratings.jsonl", ratings)
    checkpoint_file = tmp_path / "ratings.checkpoint"
    checkpoint = Checkpoint(checkpoint_file)
    with pytest.raises(ConnectionError):
        loader(failing_after(dynamodb, 2), tables, writers=1).load(source, checkpoint, progress=quiet)
    saved = checkpoint.read(Tables(tables["books"], tables["ratings"]))
    assert saved is not None
    done = saved.lines_done
    assert 0 < done < 600 and etl("reconcile").exit_code == 1  # rows in, aggregates not yet

    report = loader(dynamodb, tables).load(source, checkpoint, progress=quiet)
    assert report.notes["resumed after lines"] == done
    assert report.notes["books reconciled after their ratings were written"] == 6
    assert report.notes["books repaired (rating aggregate or shelf counts)"] == 6 and not checkpoint_file.exists()
    for n in range(1, 7):
        expected = Counter(str(r["rating"]) for r in ratings if r["book_id"] == f"GB{n}")
        assert stored_book(dynamodb, tables, f"GB{n}")["ratings_distribution"] == stars(
            **{f"s{star}": count for star, count in expected.items()})
    reconciled()


def test_shelf_counts_survive_every_kind_of_reimport(tables, dynamodb, rate, shelve, tmp_path):
    assert import_and_load(tmp_path, [{**ZEN, "subtitle": "An Inquiry", "avg_rating": 4.0,
                                       "rating_count": 10}]).exit_code == 0
    shelve(BOOK, "reader-1", "want_to_read")
    shelve(BOOK, "reader-2", "currently_reading")
    rate(BOOK, "reader-3", 5)  # on no shelf: rating it puts it on `read`
    shelved = stored_book(dynamodb, tables)["shelf_counts"]
    assert shelved == {"want_to_read": 1, "currently_reading": 1, "read": 1}
    entries = dynamodb.scan(TableName=tables["shelves"], ConsistentRead=True)["Items"]

    loads = ([ZEN],  # drops the subtitle: a catalogue attribute the source no longer has goes, nothing else
             [{**ZEN, "cover_id": 9}],  # catalogue change only
             [{**ZEN, "avg_rating": 4.0, "rating_count": 12}],  # the imported figure moves the aggregate
             [{**ZEN, "avg_rating": 4.0, "rating_count": 12}])  # nothing different: nothing written
    for rows in loads:
        result = import_and_load(tmp_path, rows)
        assert result.exit_code == 0, result.output
        assert stored_book(dynamodb, tables)["shelf_counts"] == shelved, rows
    book = stored_book(dynamodb, tables)
    assert "subtitle" not in book and book["rating_count"] == 13
    assert dynamodb.scan(TableName=tables["shelves"], ConsistentRead=True)["Items"] == entries
    reconciled()


def test_a_lines_own_shelf_counts_are_never_loaded(tables, dynamodb, tmp_path):
    # An exported books table loaded into another: its counts have no shelves behind them there.
    exported = {"book_id": BOOK, "title": ZEN["title"], "shelf_counts": {"read": 7}}
    assert etl("load", write_lines(tmp_path / "books.jsonl", [exported])).exit_code == 0
    assert "shelf_counts" not in stored_book(dynamodb, tables)
