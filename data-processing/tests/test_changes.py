"""The books change feed as the ETL writes it, against a real moto server: loads stamp the time of writing,
`delete` writes tombstones, and both are found by a Query of the `changes` index."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bookrec_catalog import changes as feed
from bookrec_catalog.catalog import utc_now
from bookrec_catalog.changes import CHANGE_SHARDS, CHANGES_INDEX, change_shard, is_deleted
from bookrec_catalog.dynamo import from_item
from bookrec_etl.cli import main
from bookrec_etl.load import Loader, Tables
from bookrec_etl.progress import Progress
from bookrec_etl.report import Rejects

OLD = "2001-02-03T04:05:06.000000Z"  # a source's last-modified time, long before any write


def quiet(label, total, unit):
    return Progress(label, total, unit, interactive=False)


def changed_since(dynamodb, table: str, moment: str) -> dict[str, dict]:
    """book_id -> item of every book changed after `moment`, as a search replica asks: one Query per shard."""
    found: dict[str, dict] = {}
    pages = dynamodb.get_paginator("query")
    for shard in range(CHANGE_SHARDS):
        for page in pages.paginate(TableName=table, IndexName=CHANGES_INDEX,
                                   KeyConditionExpression="change_shard = :shard AND changed_at > :since",
                                   ExpressionAttributeValues={":shard": {"S": str(shard)},
                                                              ":since": {"S": moment}}):
            for item in page["Items"]:
                record = from_item(item)
                assert record["change_shard"] == str(shard)
                found[record["book_id"]] = record
    return found


def items(dynamodb, table: str) -> dict[Any, dict]:
    """Key -> item of a whole (small) table: books by book_id, ratings by (book_id, user_id)."""
    stored = [from_item(i) for i in dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]]
    return {(r["book_id"], r["user_id"]) if "user_id" in r else r["book_id"]: r for r in stored}


def write_lines(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


@pytest.fixture
def catalogue(tables, dynamodb, tmp_path) -> Path:
    """Three books (OL1W, OL2W, GB3) last modified long ago and one rating of OL1W, loaded."""
    source = write_lines(tmp_path / "catalogue.jsonl", [
        {"book_id": "OL1W", "title": "One", "created_at": OLD, "updated_at": OLD},
        {"book_id": "OL2W", "title": "Two", "created_at": OLD, "updated_at": OLD},
        {"book_id": "GB3", "title": "Three", "created_at": OLD, "updated_at": OLD},
        {"book_id": "OL1W", "user_id": "u-1", "rating": 4, "created_at": OLD, "updated_at": OLD},
    ])
    load(dynamodb, tables, source)
    return source


def load(dynamodb, tables, source: Path, writers: int = 2):
    return Loader(dynamodb, Tables(tables["books"], tables["ratings"]), Rejects(None), writers).load(
        source, progress=quiet)


def test_loaded_books_carry_the_time_of_writing_not_the_sources(tables, dynamodb, tmp_path):
    source = write_lines(tmp_path / "books.jsonl", [
        *({"book_id": f"OL{n}W", "title": f"Book {n}", "updated_at": OLD} for n in range(1, 61)),
        {"book_id": "OL1W", "user_id": "u-1", "rating": 5, "created_at": OLD},
    ])
    before = utc_now()
    report = load(dynamodb, tables, source, writers=4)
    after = utc_now()
    assert report.written == 61
    books = items(dynamodb, tables["books"])
    assert len(books) == 60
    for book_id, book in books.items():
        assert before <= book["changed_at"] <= after and book["updated_at"] == OLD
        assert book["change_shard"] == change_shard(book_id)
    rating, = items(dynamodb, tables["ratings"]).values()
    assert "changed_at" not in rating and "change_shard" not in rating  # ratings are no books
    assert set(changed_since(dynamodb, tables["books"], before)) == set(books)
    assert len({book["change_shard"] for book in books.values()}) > 1  # the feed is spread over shards
    assert changed_since(dynamodb, tables["books"], after) == {}


def test_loading_again_writes_and_restamps_only_the_books_that_changed(tables, dynamodb, catalogue, tmp_path):
    first = items(dynamodb, tables["books"])
    moment = utc_now()
    load(dynamodb, tables, catalogue)
    assert items(dynamodb, tables["books"]) == first  # nothing new: nothing written, nothing in the feed
    assert changed_since(dynamodb, tables["books"], moment) == {}
    edited = write_lines(tmp_path / "edited.jsonl", [
        {"book_id": "OL1W", "title": "One", "created_at": OLD, "updated_at": OLD},
        {"book_id": "OL2W", "title": "Two, revised", "created_at": OLD, "updated_at": OLD},
    ])
    report = load(dynamodb, tables, edited)
    assert report.written == 1 and report.unchanged == 1
    again = items(dynamodb, tables["books"])
    assert set(changed_since(dynamodb, tables["books"], moment)) == {"OL2W"}
    assert again["OL2W"]["changed_at"] > first["OL2W"]["changed_at"]
    assert again["OL2W"]["title"] == "Two, revised"
    assert again["OL1W"] == first["OL1W"]


def test_a_line_never_brings_its_own_feed_attributes(tables, dynamodb, tmp_path):
    exported = {"book_id": "OL5W", "title": "Exported", "changed_at": OLD, "change_shard": "99",
                "deleted_at": OLD, "expires_at": 1}
    before = utc_now()
    load(dynamodb, tables, write_lines(tmp_path / "export.jsonl", [exported]))
    book = items(dynamodb, tables["books"])["OL5W"]
    assert not is_deleted(book) and "expires_at" not in book
    assert book["changed_at"] > before and book["change_shard"] == change_shard("OL5W")


def delete(*args: str, input: str | None = None):
    # The books table from BOOKS_TABLE, which the `tables` fixture exports.
    return CliRunner().invoke(main, ["delete", *args], input=input)


def test_delete_replaces_live_books_by_tombstones_found_in_the_feed(tables, dynamodb, catalogue):
    moment, started = utc_now(), time.time()
    result = delete("OL1W", "GB3", "OL9W")
    assert result.exit_code == 0, result.output
    assert "delete: deleted 2, not found 1, already deleted 0" in result.output
    assert "not found: OL9W" in result.output
    books = items(dynamodb, tables["books"])
    for book_id in ("OL1W", "GB3"):
        tombstone = books[book_id]
        assert set(tombstone) == {"book_id", "deleted_at", "changed_at", "change_shard", "expires_at"}
        assert is_deleted(tombstone) and tombstone["deleted_at"] == tombstone["changed_at"] > moment
        assert tombstone["change_shard"] == change_shard(book_id)
        assert started + feed.TOMBSTONE_LIFETIME_SECONDS - 1 <= tombstone["expires_at"] \
            <= time.time() + feed.TOMBSTONE_LIFETIME_SECONDS
    assert not is_deleted(books["OL2W"]) and "OL9W" not in books  # a deletion never creates an item
    assert set(changed_since(dynamodb, tables["books"], moment)) == {"OL1W", "GB3"}
    assert ("OL1W", "u-1") in items(dynamodb, tables["ratings"])  # ratings of a deleted book stay


def test_deleting_again_counts_already_deleted_and_keeps_the_tombstone(tables, dynamodb, catalogue):
    assert delete("OL1W").exit_code == 0
    tombstone = items(dynamodb, tables["books"])["OL1W"]
    moment = utc_now()
    result = delete("OL1W", "OL2W")
    assert result.exit_code == 0, result.output
    assert "delete: deleted 1, not found 0, already deleted 1" in result.output
    assert "already deleted: OL1W" in result.output
    assert items(dynamodb, tables["books"])["OL1W"] == tombstone  # not restamped
    assert set(changed_since(dynamodb, tables["books"], moment)) == {"OL2W"}


def test_ids_come_from_a_file_or_stdin_with_blank_lines_and_duplicates(tables, dynamodb, catalogue, tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("OL1W\n\n  OL2W  \nOL1W\n")
    result = delete("--from", str(ids), "GB3")
    assert result.exit_code == 0, result.output
    assert "delete: deleted 3, not found 0, already deleted 0" in result.output
    result = delete("--from", "-", input="OL2W\nOL8W\n")
    assert "delete: deleted 0, not found 1, already deleted 1" in result.output


@pytest.mark.parametrize("args, file_lines, named", [
    (["OL1W", "OL1"], None, "'OL1' (argument 2)"),
    (["OL1W", "GB0", "/works/OL2W"], None,
     "2 malformed book id(s): 'GB0' (argument 2), '/works/OL2W' (argument 3)"),
    (["OL2W"], "OL1W\nnot-an-id\nGB3\n", "'not-an-id' (ids.txt line 2)"),
])
def test_a_malformed_id_is_one_line_exit_1_and_nothing_deleted(tables, dynamodb, catalogue, tmp_path, args,
                                                              file_lines, named):
    before = items(dynamodb, tables["books"])
    if file_lines is not None:
        (tmp_path / "ids.txt").write_text(file_lines)
        args = [*args, "--from", str(tmp_path / "ids.txt")]
    result = delete(*args)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [result.output.strip()]
    assert named in result.output and "nothing was deleted" in result.output
    assert items(dynamodb, tables["books"]) == before


def test_delete_without_ids_or_table_is_a_usage_error(tables, monkeypatch):
    assert delete().exit_code == 2
    monkeypatch.delenv("BOOKS_TABLE")
    result = delete("OL1W")
    assert result.exit_code == 2 and "--books-table" in result.output


def test_reimporting_a_deleted_book_writes_it_back(tables, dynamodb, catalogue):
    assert delete("OL2W").exit_code == 0
    moment = utc_now()
    load(dynamodb, tables, catalogue)
    book = items(dynamodb, tables["books"])["OL2W"]
    assert not is_deleted(book) and "expires_at" not in book and book["title"] == "Two"
    assert changed_since(dynamodb, tables["books"], moment)["OL2W"]["title"] == "Two"
