"""`bookrec-etl reconcile` against a real moto server: drift found, reported and repaired, and a repair never
clobbers a rating that lands between its read and its write (readers rate through the ratings service's
own write path)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bookrec_catalog.catalog import with_derived_attributes
from bookrec_catalog.changes import tombstone
from bookrec_catalog.dynamo import from_item, to_item
from bookrec_etl import reconcile
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
        "(of no live book: none), 0 checked one by one", "drift: none"]
    assert any(r.getMessage().startswith("reconcile: scan ratings: 41 items") for r in caplog.records)


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
                        "3 checked one by one")
    gb1_rows, gb3_rows = rows_of(dynamodb, tables, "GB1"), rows_of(dynamodb, tables, "GB3")
    assert lines[1] == (f"drift: 3 books (aggregates short of {gb1_rows} ratings, "
                        f"over by {3 + 99 - gb3_rows}); the worst:")
    assert [line.split(":")[0].strip() for line in lines[2:]] == ["GB3", "GB1", "GB2"]  # count 89 off first
    assert f"GB1: stored count 0 sum 0 avg 0.0 [1:0 2:0 3:0 4:0 5:0]; expected count {gb1_rows} " in lines[3]
    assert everything(dynamodb, tables) == before  # without --fix nothing is written

    fixed = etl("reconcile", "--fix")
    assert fixed.exit_code == 0, fixed.output
    assert fixed.output.splitlines()[-1] == \
        "fixed: 3 books (0 writes lost a race with a rating and read the book again)"
    assert etl("reconcile").output.splitlines()[-1] == "drift: none"
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
    reconciler = Reconciler(dynamodb, tables["books"], tables["ratings"], progress=quiet)
    assert reconciler.check("GB1", findings, count=True) is None
    assert reconciler.check("GB404", findings, count=True) is None  # no such book: nothing counted
    assert (findings.books, findings.ratings, findings.tombstones) == (1, 11, 0)


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
