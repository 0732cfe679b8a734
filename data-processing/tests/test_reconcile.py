"""`bookrec-etl reconcile` against a real moto server: drift of rating aggregates and shelf counts found,
reported and repaired, and a repair never clobbers a rating or shelving that lands between its read and its
write (readers rate and shelve through the ratings service's own write path)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bookrec_catalog.catalog import SHELVES, with_derived_attributes
from bookrec_catalog.changes import tombstone
from bookrec_catalog.dynamo import from_item, to_item
from bookrec_etl import reconcile, shelf_counts
from bookrec_etl.cli import main
from bookrec_etl.progress import Progress
from bookrec_etl.reconcile import Findings, Reconciler


def quiet(label, total, unit):
    return Progress(label, total, unit, interactive=False)


def stars(**counts: int) -> dict[str, int]:
    return {star: counts.get(f"s{star}", 0) for star in "12345"}


def etl(*args):
    """The command line; tables from BOOKS_TABLE and RATINGS_TABLE, which the `tables` fixture exports."""
    return CliRunner().invoke(main, [str(arg) for arg in args])


def stored_book(dynamodb, tables, book_id: str) -> dict:
    return from_item(dynamodb.get_item(TableName=tables["books"], Key={"book_id": {"S": book_id}},
                                       ConsistentRead=True)["Item"])


def everything(dynamodb, tables) -> dict[str, list]:
    return {name: sorted(json.dumps(from_item(i), sort_keys=True)
                         for i in dynamodb.scan(TableName=table, ConsistentRead=True)["Items"])
            for name, table in tables.items()}


def rows_of(dynamodb, tables, book_id: str) -> int:
    return dynamodb.query(TableName=tables["ratings"], KeyConditionExpression="book_id = :b", Select="COUNT",
                          ExpressionAttributeValues={":b": {"S": book_id}}, ConsistentRead=True)["Count"]


def set_aggregate(dynamodb, tables, book_id: str, distribution: dict[str, int], **fields) -> None:
    """Overwrite a book's aggregate as a faulty writer would have."""
    record = {**stored_book(dynamodb, tables, book_id), "ratings_distribution": distribution}
    record = {**with_derived_attributes(record), **fields}
    dynamodb.put_item(TableName=tables["books"], Item=to_item(record))


def set_shelf_counts(dynamodb, tables, book_id: str, counts: object) -> None:
    """Overwrite (None: remove) a book's shelf counts as a faulty writer would have."""
    record = {k: v for k, v in stored_book(dynamodb, tables, book_id).items() if k != "shelf_counts"}
    if counts is not None:
        record["shelf_counts"] = counts
    dynamodb.put_item(TableName=tables["books"], Item=to_item(record))





@pytest.fixture
def catalogue(tables, dynamodb, rate, tmp_path) -> Path:
    """Books GB1..GB4 and their ratings loaded by the ETL, plus a reader's rating of GB1 through the API."""
    lines: list[dict[str, Any]] = [{"book_id": f"GB{n}", "title": f"Book {n}"} for n in range(1, 5)]
    lines += [{"book_id": f"GB{1 + n % 4}", "user_id": f"gb-{n}", "rating": 1 + n % 5,
               "created_at": "2017-09-01T00:00:00Z"} for n in range(40)]
    source = tmp_path / "catalogue.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert etl("load", source).exit_code == 0
    rate("GB1", "reader-1", 5)
    return source


def test_a_consistent_catalogue_has_no_drift_and_exits_0(tables, catalogue, caplog):
    with caplog.at_level(logging.INFO, logger="bookrec.etl"):
        result = etl("reconcile")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "reconcile: 4 books checked (0 deleted, skipped; 0 recording no imported part), 41 ratings counted "
        "(of no live book: none), 1 shelf entry counted (of no live book: none), 0 checked one by one",
        "drift: none", "shelf drift: none"]  # the reader's rating put GB1 on their `read` shelf
    assert any(r.getMessage().startswith("reconcile: scan ratings: 41 items") for r in caplog.records)
    assert any(r.getMessage().startswith("reconcile: scan shelves: 1 items") for r in caplog.records)


def test_without_a_shelves_table_shelves_are_skipped_in_one_line_and_ratings_checked_as_before(
        tables, dynamodb, catalogue, shelve, monkeypatch):
    shelve("GB2", "reader-5", "want_to_read")
    set_shelf_counts(dynamodb, tables, "GB2", None)  # shelf drift, which goes unseen without the table
    set_aggregate(dynamodb, tables, "GB3", stars())
    monkeypatch.delenv("SHELVES_TABLE")
    result = etl("reconcile")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == ("reconcile: 4 books checked (0 deleted, skipped; 0 recording no imported part), "
                        "41 ratings counted (of no live book: none), 1 checked one by one")
    assert lines[1].startswith("drift: 1 book (") and lines[2].startswith("  GB3: ")
    assert lines[3:] == [
        "shelf drift: not checked (no shelves table: pass --shelves-table or set SHELVES_TABLE)"]
    assert etl("reconcile", "--fix").exit_code == 0
    assert "shelf_counts" not in stored_book(dynamodb, tables, "GB2")  # not checked, so not written


def test_drift_is_reported_with_the_worst_first_then_fixed(tables, dynamodb, catalogue, rate):
    set_aggregate(dynamodb, tables, "GB1", stars())  # a load's full put: the reader's rating gone
    gb2 = stored_book(dynamodb, tables, "GB2")
    three_more = {**gb2["ratings_distribution"], "3": gb2["ratings_distribution"]["3"] + 3}
    set_aggregate(dynamodb, tables, "GB2", three_more)
    set_aggregate(dynamodb, tables, "GB3", stored_book(dynamodb, tables, "GB3")["ratings_distribution"],
                  rating_count=99)  # the count no longer follows from the distribution
    rate("GB4", "reader-2", 2)
    deleted = tombstone("GB4", "2026-01-01T00:00:00.000000Z", 0)
    dynamodb.put_item(TableName=tables["books"], Item=to_item(deleted))
    dynamodb.put_item(TableName=tables["ratings"], Item=to_item(
        {"book_id": "GB9", "user_id": "gb-1", "rating": 4, "created_at": "2017-09-01T00:00:00.000000Z",
         "updated_at": "2017-09-01T00:00:00.000000Z"}))
    before = everything(dynamodb, tables)

    result = etl("reconcile")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == ("reconcile: 3 books checked (1 deleted, skipped; 0 recording no imported part), "
                        "43 ratings counted (of no live book: 11 of deleted books, 1 of unknown books), "
                        "2 shelf entries counted (of no live book: 1 of deleted books), 3 checked one by one")
    gb1_rows, gb3_rows = rows_of(dynamodb, tables, "GB1"), rows_of(dynamodb, tables, "GB3")
    assert lines[1] == (f"drift: 3 books (aggregates short of {gb1_rows} ratings, "
                        f"over by {3 + 99 - gb3_rows}); the worst:")
    assert [line.split(":")[0].strip() for line in lines[2:5]] == ["GB3", "GB1", "GB2"]  # count 89 off first
    assert lines[5:] == ["shelf drift: none"]
    assert f"GB1: stored count 0 sum 0 avg 0.0 [1:0 2:0 3:0 4:0 5:0]; expected count {gb1_rows} " in lines[3]
    assert everything(dynamodb, tables) == before  # without --fix nothing is written

    fixed = etl("reconcile", "--fix")
    assert fixed.exit_code == 0, fixed.output
    assert fixed.output.splitlines()[-1] == \
        "fixed: 3 books (0 writes lost a race with a reader's rating or shelving and read the book again)"
    assert etl("reconcile").output.splitlines()[1:] == ["drift: none", "shelf drift: none"]
    assert stored_book(dynamodb, tables, "GB1")["ratings_distribution"]["5"] >= 1
    assert "ratings_distribution" not in stored_book(dynamodb, tables, "GB4")  # tombstones are left alone


@pytest.mark.parametrize("one_by_one", [True, False])
def test_a_repair_never_clobbers_a_rating_landing_between_its_read_and_write(tables, dynamodb, catalogue,
                                                                            rate, one_by_one):
    set_aggregate(dynamodb, tables, "GB2", stars())
    landed: list[object] = []

    def rate_meanwhile(book_id: str) -> None:
        if not landed:  # the first write's read is now stale
            landed.append(rate(book_id, "reader-3", 4))

    reconciler = Reconciler(dynamodb, tables["books"], tables["ratings"], workers=2,
                            before_write=rate_meanwhile, progress=quiet)
    findings = reconciler.run(["GB2"] if one_by_one else None, fix=True)
    assert len(landed) == 1 and findings.lost_races == 1 and findings.fixed == 1
    assert [d.book_id for d in findings.drift] == ["GB2"]
    rows = dynamodb.query(TableName=tables["ratings"], KeyConditionExpression="book_id = :b",
                          ExpressionAttributeValues={":b": {"S": "GB2"}}, ConsistentRead=True)["Items"]
    assert "reader-3" in {r["user_id"]["S"] for r in rows}
    book = stored_book(dynamodb, tables, "GB2")
    assert book["rating_count"] == len(rows) and book["ratings_distribution"]["4"] == sum(
        r["rating"]["N"] == "4" for r in rows)
    assert etl("reconcile").exit_code == 0


def test_many_given_books_are_compared_in_bulk_and_only_suspects_read_one_by_one(tables, dynamodb, catalogue,
                                                                                 monkeypatch):
    monkeypatch.setattr(reconcile, "QUERY_MAX_BOOKS", 2)
    set_aggregate(dynamodb, tables, "GB3", stars(s1=1))
    findings = Reconciler(dynamodb, tables["books"], tables["ratings"], progress=quiet).run(
        ["GB1", "GB2", "GB3", "GB4", "GB77"])
    assert findings.books == 4 and findings.suspects == 1 and [d.book_id for d in findings.drift] == ["GB3"]
    assert findings.ratings == 41 and not findings.orphans  # rows of books not asked about are not counted


def test_book_options_choose_books_and_bad_ones_change_nothing(tables, dynamodb, catalogue, monkeypatch):
    set_aggregate(dynamodb, tables, "GB3", stars())
    assert etl("reconcile", "--book", "GB1", "--book", "GB2").exit_code == 0
    result = etl("reconcile", "--book", "GB3", "--book", "GB4")
    assert result.exit_code == 1 and "drift: 1 book (" in result.output
    before = everything(dynamodb, tables)
    bad = etl("reconcile", "--fix", "--book", "GB3", "--book", "OL1")
    assert bad.exit_code == 1 and bad.output.strip().splitlines() == [
        "Error: 1 malformed book id(s): 'OL1' (--book 2); nothing was checked"]
    assert everything(dynamodb, tables) == before
    monkeypatch.delenv("RATINGS_TABLE")
    missing = etl("reconcile")
    assert missing.exit_code == 2 and "--ratings-table" in missing.output


def test_a_legacy_book_drifts_only_below_its_rows_and_a_fix_records_its_imported_part(tables, dynamodb, rate):
    # Written before imported_distribution: which stars are the source's is not recorded.
    for book_id, distribution in (("OL1W", {"4": 10}), ("OL2W", {})):
        record = with_derived_attributes({"book_id": book_id, "title": book_id,
                                          "ratings_distribution": distribution})
        dynamodb.put_item(TableName=tables["books"], Item=to_item(record))
    rate("OL1W", "reader-1", 4)  # 11 four-star: one row, ten taken as the source's
    rate("OL2W", "reader-1", 5)
    set_aggregate(dynamodb, tables, "OL2W", stars())  # fewer stars than rows: certainly off
    findings = Reconciler(dynamodb, tables["books"], tables["ratings"], progress=quiet).run(fix=True)
    assert findings.legacy == 2 and [d.book_id for d in findings.drift] == ["OL2W"]
    book = stored_book(dynamodb, tables, "OL2W")
    assert book["ratings_distribution"] == stars(s5=1) and book["imported_distribution"] == stars()
    assert "imported_distribution" not in stored_book(dynamodb, tables, "OL1W")
    assert Reconciler(dynamodb, tables["books"], tables["ratings"], progress=quiet).run().drift == []


def test_findings_count_what_they_checked_one_by_one(tables, dynamodb, catalogue):
    findings = Findings()
    reconciler = Reconciler(dynamodb, tables["books"], tables["ratings"], shelves_table=tables["shelves"],
                            progress=quiet)
    reconciler.check("GB1", findings, count=True)
    reconciler.check("GB404", findings, count=True)  # no such book: nothing counted
    assert (findings.books, findings.ratings, findings.shelf_entries, findings.tombstones) == (1, 11, 1, 0)
    assert findings.drift == [] and findings.shelf_drift == []


class RatesWhenRowsAreCounted:
    """The real client; `land()` runs once, when the ratings table is about to be scanned: after the books
    were read, before their rows are counted."""

    def __init__(self, client, ratings_table: str, land) -> None:
        self.client, self.ratings, self.land, self.landed = client, ratings_table, land, False

    def __getattr__(self, name):
        return getattr(self.client, name)

    def describe_table(self, TableName):
        if TableName == self.ratings and not self.landed:
            self.landed = True
            self.land()
        return self.client.describe_table(TableName=TableName)


def test_a_rating_that_would_hide_a_drift_while_rows_are_counted_does_not(tables, dynamodb, catalogue, rate,
                                                                          monkeypatch):
    monkeypatch.setattr(reconcile, "QUERY_MAX_BOOKS", 2)  # three given: compared in bulk, as a load does
    rate("GB2", "reader-9", 4)
    row = {"book_id": "GB2", "user_id": "gb-900", "rating": 4, "created_at": "2017-09-01T00:00:00.000000Z",
           "updated_at": "2017-09-01T00:00:00.000000Z"}
    dynamodb.put_item(TableName=tables["ratings"], Item=to_item(row))  # a row the aggregate lacks: drift
    # Between the books' read and the rows' count, reader-9 removes their 4-star rating: the rows counted
    # then match the aggregate as read, one 4-star fewer on each side of the drift.
    client = RatesWhenRowsAreCounted(dynamodb, tables["ratings"], lambda: rate("GB2", "reader-9", None))
    findings = Reconciler(client, tables["books"], tables["ratings"], progress=quiet).run(
        ["GB1", "GB2", "GB3"], fix=True)
    assert client.landed and [d.book_id for d in findings.drift] == ["GB2"] and findings.fixed == 1
    assert stored_book(dynamodb, tables, "GB2")["rating_count"] == rows_of(dynamodb, tables, "GB2")
    assert etl("reconcile").exit_code == 0


# -- shelf counts ----------------------------------------------------------------------------------------


@pytest.fixture
def shelved(catalogue, shelve) -> dict[str, dict[str, int]]:
    """Readers' shelvings of GB1..GB3 through the ratings service (GB1 also holds reader-1's `read`, from
    their rating); book -> its entries per shelf."""
    for n, shelf in enumerate(["want_to_read", "want_to_read", "currently_reading", "read"]):
        shelve("GB2", f"reader-{10 + n}", shelf)
    shelve("GB1", "reader-20", "want_to_read")
    shelve("GB3", "reader-30", "currently_reading")
    return {"GB1": {"want_to_read": 1, "currently_reading": 0, "read": 1},
            "GB2": {"want_to_read": 2, "currently_reading": 1, "read": 1},
            "GB3": {"want_to_read": 0, "currently_reading": 1, "read": 0}}


@pytest.mark.parametrize("books", [[], ["--book", "GB1", "--book", "GB2", "--book", "GB3", "--book", "GB4"]],
                         ids=["bulk", "one-by-one"])
def test_shelf_drift_is_reported_with_the_worst_first_then_fixed(shelf_entries, tables, dynamodb, shelved, books):
    set_shelf_counts(dynamodb, tables, "GB2", None)  # revived by an older loader: the map gone
    set_shelf_counts(dynamodb, tables, "GB3", {"currently_reading": 3})  # two readers too many
    set_shelf_counts(dynamodb, tables, "GB4", {"read": 1, "lent_out": 2})  # malformed; GB4 has no entries
    before, gb2 = everything(dynamodb, tables), stored_book(dynamodb, tables, "GB2")

    result = etl("reconcile", *books)
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert "7 shelf entries counted (of no live book: none)" in lines[0]
    assert lines[1:] == [
        "drift: none",
        "shelf drift: 3 books (shelf counts short of 4 readers, over by 2); the worst:",
        "  GB2: stored [want_to_read:0 currently_reading:0 read:0] (none stored); expected "
        "[want_to_read:2 currently_reading:1 read:1] = 4 shelf entries",
        "  GB3: stored [want_to_read:0 currently_reading:3 read:0]; expected "
        "[want_to_read:0 currently_reading:1 read:0] = 1 shelf entry",
        "  GB4: stored malformed {'read': 1, 'lent_out': 2}; expected "
        "[want_to_read:0 currently_reading:0 read:0] = 0 shelf entries"]
    assert everything(dynamodb, tables) == before  # without --fix nothing is written

    fixed = etl("reconcile", "--fix", *books)
    assert fixed.exit_code == 0, fixed.output
    assert fixed.output.splitlines()[-1] == \
        "fixed: 3 books (0 writes lost a race with a reader's rating or shelving and read the book again)"
    for book_id, counts in shelved.items():
        assert stored_book(dynamodb, tables, book_id)["shelf_counts"] == counts == shelf_entries(book_id)
    repaired, was = stored_book(dynamodb, tables, "GB2"), gb2
    assert repaired["changed_at"] > was["changed_at"]  # the repair is a write of the book: in the feed
    untouched = ("shelf_counts", "changed_at")
    assert {k: v for k, v in repaired.items() if k not in untouched} == \
        {k: v for k, v in was.items() if k not in untouched}  # catalogue and aggregate as they were
    assert stored_book(dynamodb, tables, "GB4")["shelf_counts"] == dict.fromkeys(SHELVES, 0)
    again = etl("reconcile", *books)
    assert again.exit_code == 0 and again.output.splitlines()[1:] == ["drift: none", "shelf drift: none"]


@pytest.mark.parametrize("landing", ["shelving", "rating"])
@pytest.mark.parametrize("one_by_one", [True, False])
def test_a_shelving_landing_during_a_shelf_repair_is_never_lost(shelf_entries, tables, dynamodb, shelved, shelve, rate,
                                                                 one_by_one, landing):
    set_shelf_counts(dynamodb, tables, "GB2", None)
    landed: list[object] = []

    def land_meanwhile(book_id: str) -> None:
        if not landed:  # the first write's read is now stale: a reader puts the book on their `read` shelf
            landed.append(shelve(book_id, "reader-40", "read") if landing == "shelving" else
                          rate(book_id, "reader-40", 3))  # a rating of an unshelved book shelves it on `read`

    reconciler = Reconciler(dynamodb, tables["books"], tables["ratings"], shelves_table=tables["shelves"],
                            workers=2, before_write=land_meanwhile, progress=quiet)
    findings = reconciler.run(["GB2"] if one_by_one else None, fix=True)
    assert len(landed) == 1 and findings.lost_races == 1 and findings.fixed == 1
    assert [d.book_id for d in findings.shelf_drift] == ["GB2"] and findings.drift == []
    book = stored_book(dynamodb, tables, "GB2")
    assert book["shelf_counts"] == shelf_entries("GB2") == {**shelved["GB2"], "read": 2}
    assert book["rating_count"] == rows_of(dynamodb, tables, "GB2")
    assert etl("reconcile").exit_code == 0


@pytest.mark.parametrize("shelves_table", [True, False], ids=["load-repairs", "reconcile-fix-repairs"])
def test_a_book_deleted_then_loaded_again_gets_its_shelf_counts_back(shelf_entries, tables, dynamodb, catalogue,
                                                                     shelved, shelve, monkeypatch, shelves_table):
    deleted = etl("delete", "GB2")
    assert deleted.exit_code == 0, deleted.output
    assert "shelf_counts" not in stored_book(dynamodb, tables, "GB2")  # a tombstone holds no counts
    shelve("GB2", "reader-10", None)  # meanwhile a reader takes the gone book off their shelf
    expected = {"want_to_read": 1, "currently_reading": 1, "read": 1}
    assert shelf_entries("GB2") == expected
    if not shelves_table:
        monkeypatch.delenv("SHELVES_TABLE")

    loaded = etl("load", catalogue)  # GB2 revived: its line put whole, which never carries shelf counts
    assert loaded.exit_code == 0, loaded.output
    book = stored_book(dynamodb, tables, "GB2")
    assert book["rating_count"] == rows_of(dynamodb, tables, "GB2")  # its ratings counted again either way
    if shelves_table:  # the load reconciled the revived book with the shelves table too
        assert book["shelf_counts"] == expected
    else:  # without the shelves table the load cannot count them: reconcile --fix is the repair
        assert "shelf_counts" not in book
        monkeypatch.setenv("SHELVES_TABLE", tables["shelves"])
        found = etl("reconcile", "--book", "GB2")
        assert found.exit_code == 1 and found.output.splitlines()[2:] == [
            "shelf drift: 1 book (shelf counts short of 3 readers, over by 0); the worst:",
            "  GB2: stored [want_to_read:0 currently_reading:0 read:0] (none stored); expected "
            "[want_to_read:1 currently_reading:1 read:1] = 3 shelf entries"]
        assert etl("reconcile", "--fix", "--book", "GB2").exit_code == 0
        assert stored_book(dynamodb, tables, "GB2")["shelf_counts"] == expected
    assert etl("reconcile").exit_code == 0


def test_a_load_of_ratings_also_repairs_the_shelf_counts_of_their_books(tables, dynamodb, shelved, tmp_path):
    set_shelf_counts(dynamodb, tables, "GB3", {"read": 5})
    set_shelf_counts(dynamodb, tables, "GB2", None)  # no rating of it loaded: not reconciled by the load
    source = tmp_path / "more.jsonl"
    source.write_text(json.dumps({"book_id": "GB3", "user_id": "gb-500", "rating": 2,
                                  "created_at": "2018-01-01T00:00:00Z"}) + "\n")
    loaded = etl("load", source)
    assert loaded.exit_code == 0, loaded.output
    assert "books repaired (rating aggregate or shelf counts): 1" in loaded.output
    assert stored_book(dynamodb, tables, "GB3")["shelf_counts"] == shelved["GB3"]
    assert "shelf_counts" not in stored_book(dynamodb, tables, "GB2")
    assert etl("reconcile").exit_code == 1  # GB2's drift waits for reconcile


def test_a_shelves_table_that_does_not_exist_is_one_line_and_nothing_is_written(tables, dynamodb, shelved):
    set_shelf_counts(dynamodb, tables, "GB2", None)
    before = everything(dynamodb, tables)
    for args in (["--shelves-table", "no-such-shelves"], ["--book", "GB2", "--shelves-table", "nope"]):
        result = etl("reconcile", "--fix", *args)
        assert result.exit_code == 1
        assert result.output.strip().splitlines() == [
            f"Error: --shelves-table {args[-1]}: no such table; nothing was checked"]
    assert everything(dynamodb, tables) == before


def test_shelf_counts_rules():
    record = {"shelf_counts": {"read": 2}}
    assert shelf_counts.shelf_drift_of("GB1", record, {"want_to_read": 0, "currently_reading": 0, "read": 2}) \
        is None  # a shelf left out of the map is zero
    assert shelf_counts.shelf_drift_of("GB1", {}, dict.fromkeys(SHELVES, 0)) is None  # no map, no entries
    for malformed in ({"read": -1}, {"read": 1.5}, {"read": True}, {"lent": 0}, "3"):
        drift = shelf_counts.shelf_drift_of("GB1", {"shelf_counts": malformed}, dict.fromkeys(SHELVES, 0))
        assert drift is not None and drift.stored is None and drift.size == 1
    drift = shelf_counts.shelf_drift_of("GB1", record, {"want_to_read": 1, "currently_reading": 0, "read": 0})
    assert drift is not None and (drift.count_off, drift.size) == (1, 3)
