"""Works Open Library deletes or merges, from crafted dumps in the real format through `extract` and `load`
against a real moto server, with readers rating and shelving through the ratings service's own write path:
a deleted work becomes a tombstone keeping its ratings, a merged one hands its readers' ratings and shelf
entries to its target with their counts, and every aggregate stays exact."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bookrec_catalog.changes import is_deleted
from bookrec_catalog.dynamo import from_item
from bookrec_common.errors import NotFound
from bookrec_etl.cli import main
from bookrec_etl.load import Checkpoint, Loader, Tables
from bookrec_etl.progress import Progress
from bookrec_etl.report import Rejects

STAMP = "2024-05-01T10:00:00.000000"
TOMBSTONE_KEYS = {"book_id", "deleted_at", "changed_at", "change_shard", "expires_at"}


def quiet(label, total, unit):
    return Progress(label, total, unit, interactive=False)


def stamped(value: str = STAMP) -> dict:
    return {"type": "/type/datetime", "value": value}


def work(number: int, title: str, revision: int = 1) -> str:
    """A works-dump line as the dumps have it: type, key, revision, last_modified, JSON."""
    key = f"/works/OL{number}W"
    doc = {"title": title, "key": key, "type": {"key": "/type/work"}, "authors": [
        {"author": {"key": "/authors/OL1A"}, "type": {"key": "/type/author_role"}}],
        "subjects": ["Fiction"], "latest_revision": revision, "revision": revision,
        "created": stamped("2009-12-11T01:57:19.964652"), "last_modified": stamped()}
    return "\t".join(("/type/work", key, str(revision), STAMP, json.dumps(doc))) + "\n"


def redirect(number: int, target: int) -> str:
    key = f"/works/OL{number}W"
    doc = {"created": stamped("2009-12-11T01:57:19.964652"), "last_modified": stamped(), "latest_revision": 2,
           "location": f"/works/OL{target}W", "key": key, "type": {"key": "/type/redirect"}, "revision": 2}
    return "\t".join(("/type/redirect", key, "2", STAMP, json.dumps(doc))) + "\n"


def deleted(number: int) -> str:
    key = f"/works/OL{number}W"
    doc = {"created": stamped("2009-12-11T01:57:19.964652"), "last_modified": stamped(), "latest_revision": 3,
           "key": key, "type": {"key": "/type/delete"}, "revision": 3}
    return "\t".join(("/type/delete", key, "3", STAMP, json.dumps(doc))) + "\n"


def etl(*args) -> Result:
    """The command line; tables from BOOKS_TABLE, RATINGS_TABLE and SHELVES_TABLE (the `tables` fixture)."""
    return CliRunner().invoke(main, [str(arg) for arg in args])


def extract_and_load(tmp_path: Path, name: str, *lines: str) -> tuple[Result, Result]:
    """The monthly run on a works dump: `extract` then `load` (both must succeed)."""
    dump = tmp_path / f"{name}_works.txt"
    dump.write_text("".join(lines))
    out = tmp_path / f"{name}.jsonl"
    extracted = etl("extract", "--works", dump, "--out", out)
    assert extracted.exit_code == 0, extracted.output
    loaded = etl("load", out)
    assert loaded.exit_code == 0, loaded.output
    return extracted, loaded


def book(dynamodb, tables, book_id: str) -> dict | None:
    item = dynamodb.get_item(TableName=tables["books"], Key={"book_id": {"S": book_id}},
                             ConsistentRead=True).get("Item")
    return from_item(item) if item else None


def rows(dynamodb, table: str, book_id: str) -> dict[str, dict]:
    items = dynamodb.query(TableName=table, KeyConditionExpression="book_id = :b", ConsistentRead=True,
                           ExpressionAttributeValues={":b": {"S": book_id}})["Items"]
    return {item["user_id"]["S"]: from_item(item) for item in items}


def stars(**counts: int) -> dict[str, int]:
    return {star: counts.get(f"s{star}", 0) for star in "12345"}


def shelves(want: int = 0, reading: int = 0, read: int = 0) -> dict[str, int]:
    return {"want_to_read": want, "currently_reading": reading, "read": read}


def exact() -> str:
    """`bookrec-etl reconcile` over every book (with the shelves table): no drift of either kind."""
    result = etl("reconcile")
    assert result.exit_code == 0 and "drift: none" in result.output and "shelf drift: none" in result.output, \
        result.output
    return result.output


def test_a_deleted_work_becomes_a_tombstone_keeping_its_ratings(tables, dynamodb, rate, shelve, tmp_path):
    extract_and_load(tmp_path, "may", work(1, "Gone Soon"), work(2, "Stays"))
    rate("OL1W", "reader-1", 5)
    shelve("OL1W", "reader-2", "want_to_read")

    extracted, loaded = extract_and_load(tmp_path, "june", deleted(1), work(2, "Stays"), deleted(9))
    assert "delete lines (works the dump deletes): 2" in extracted.output
    assert "written 1, unchanged 1" in loaded.output and "works deleted (tombstones written): 1" in loaded.output
    assert "skipped 1 (deleted or redirected work not in the table: 1)" in loaded.output
    gone = book(dynamodb, tables, "OL1W")
    assert set(gone) == TOMBSTONE_KEYS  # exactly `bookrec-etl delete`'s tombstone
    assert book(dynamodb, tables, "OL9W") is None  # an unknown id creates nothing
    assert rows(dynamodb, tables["ratings"], "OL1W")["reader-1"]["rating"] == 5  # kept, as `delete` keeps them
    assert set(rows(dynamodb, tables["shelves"], "OL1W")) == {"reader-1", "reader-2"}
    with pytest.raises(NotFound):
        rate("OL1W", "reader-3", 4)  # the ratings service answers 404 for it

    _, again = extract_and_load(tmp_path, "june", deleted(1), work(2, "Stays"), deleted(9))
    assert "written 0, unchanged 2" in again.output  # the tombstone is not restamped
    assert book(dynamodb, tables, "OL1W") == gone
    assert "of no live book: 1 of deleted books" in exact()


def test_a_redirect_moves_ratings_and_shelf_entries_with_their_counts(tables, dynamodb, rate, shelve, tmp_path):
    extract_and_load(tmp_path, "may", work(1, "The Work"), work(2, "The Work (duplicate record)"))
    rate("OL2W", "reader-1", 4)  # a rating puts the book on `read` too
    rate("OL2W", "reader-2", 2)
    shelve("OL2W", "reader-3", "currently_reading")
    rate("OL1W", "reader-4", 5)
    moved_row = rows(dynamodb, tables["ratings"], "OL2W")["reader-1"]

    extracted, loaded = extract_and_load(tmp_path, "june", work(1, "The Work"), redirect(2, 1))
    assert "redirect lines (works merged into another): 1" in extracted.output
    assert "written 1, unchanged 1" in loaded.output
    for note in ("works redirected (tombstones written): 1", "ratings moved to the work they were merged into: 2",
                 "shelf entries moved to the work they were merged into: 3"):
        assert note in loaded.output
    assert set(book(dynamodb, tables, "OL2W")) == TOMBSTONE_KEYS
    assert rows(dynamodb, tables["ratings"], "OL2W") == {} and rows(dynamodb, tables["shelves"], "OL2W") == {}
    ratings = rows(dynamodb, tables["ratings"], "OL1W")
    assert {user: row["rating"] for user, row in ratings.items()} == {"reader-1": 4, "reader-2": 2, "reader-4": 5}
    assert ratings["reader-1"] == {**moved_row, "book_id": "OL1W"}  # the reader's own times kept
    entries = rows(dynamodb, tables["shelves"], "OL1W")
    assert {user: entry["shelf"] for user, entry in entries.items()} == {
        "reader-1": "read", "reader-2": "read", "reader-3": "currently_reading", "reader-4": "read"}
    target = book(dynamodb, tables, "OL1W")
    assert target["ratings_distribution"] == stars(s2=1, s4=1, s5=1)
    assert (target["rating_count"], target["rating_sum"]) == (3, 11)
    assert target["shelf_counts"] == shelves(reading=1, read=3)
    rate("OL1W", "reader-1", 3)  # the moved rating is the reader's, through the API
    assert "of no live book: none" in exact()

    _, again = extract_and_load(tmp_path, "june", work(1, "The Work"), redirect(2, 1))
    assert "written 0, unchanged 2" in again.output


def test_a_reader_who_rated_both_works_keeps_the_more_recent(tables, dynamodb, rate, shelve, tmp_path):
    extract_and_load(tmp_path, "may", work(1, "Target"), work(2, "Source"))
    rate("OL2W", "reader-1", 1)
    rate("OL1W", "reader-1", 5)  # later: the target's rating is kept
    rate("OL1W", "reader-2", 3)
    rate("OL2W", "reader-2", 4)  # later: the source's rating replaces the target's
    shelve("OL1W", "reader-3", "want_to_read")
    shelve("OL2W", "reader-3", "currently_reading")  # later: the source's shelf wins

    _, loaded = extract_and_load(tmp_path, "june", work(1, "Target"), redirect(2, 1))
    assert "ratings dropped (the reader rated both works: the more recent kept): 2" in loaded.output
    assert "shelf entries dropped (the reader shelved both works: the more recent kept): 3" in loaded.output
    ratings = rows(dynamodb, tables["ratings"], "OL1W")
    assert {user: row["rating"] for user, row in ratings.items()} == {"reader-1": 5, "reader-2": 4}
    entries = rows(dynamodb, tables["shelves"], "OL1W")
    assert {user: entry["shelf"] for user, entry in entries.items()} == {
        "reader-1": "read", "reader-2": "read", "reader-3": "currently_reading"}
    target = book(dynamodb, tables, "OL1W")
    assert target["ratings_distribution"] == stars(s4=1, s5=1) and target["rating_count"] == 2  # never 4
    assert target["shelf_counts"] == shelves(reading=1, read=2)
    assert rows(dynamodb, tables["ratings"], "OL2W") == {} and rows(dynamodb, tables["shelves"], "OL2W") == {}
    exact()


def test_chains_cycles_and_redirects_to_deleted_works(tables, dynamodb, rate, tmp_path):
    extract_and_load(tmp_path, "may", *(work(n, f"Work {n}") for n in range(1, 8)))
    for n in range(2, 8):
        rate(f"OL{n}W", f"reader-{n}", 1 + n % 5)

    # OL3W -> OL2W -> OL1W; OL4W -> OL5W, which is deleted; OL6W <-> OL7W, a cycle.
    extracted, loaded = extract_and_load(tmp_path, "june", work(1, "Work 1"), redirect(2, 1), redirect(3, 2),
                                         redirect(4, 5), deleted(5), redirect(6, 7), redirect(7, 6))
    for note in ("redirect lines (works merged into another): 2", "delete lines (works the dump deletes): 1",
                 "delete lines for redirects ending at a deleted work: 1",
                 "redirect cycles or chains over 10 hops (no line: the works stay): 2"):
        assert note in extracted.output
    assert "works redirected (tombstones written): 2" in loaded.output
    assert "works deleted (tombstones written): 2" in loaded.output
    assert {user for user in rows(dynamodb, tables["ratings"], "OL1W")} == {"reader-2", "reader-3"}
    for gone in ("OL2W", "OL3W", "OL4W", "OL5W"):
        assert is_deleted(book(dynamodb, tables, gone))
    assert set(rows(dynamodb, tables["ratings"], "OL4W")) == {"reader-4"}  # a deletion keeps its ratings
    for kept in ("OL6W", "OL7W"):
        assert not is_deleted(book(dynamodb, tables, kept)) and len(rows(dynamodb, tables["ratings"], kept)) == 1
    assert book(dynamodb, tables, "OL1W")["rating_count"] == 2
    exact()


def test_a_redirect_waits_for_a_target_not_in_the_table(tables, dynamodb, rate, tmp_path):
    lines = tmp_path / "lines.jsonl"
    lines.write_text(json.dumps({"book_id": "OL2W", "title": "Source"}) + "\n"
                     + json.dumps({"book_id": "OL2W", "redirect_to": "OL1W"}) + "\n")
    first = etl("load", lines)
    assert "skipped 1 (redirect target not in the table (the work stays until it is): 1)" in first.output
    rate("OL2W", "reader-1", 3)
    assert not is_deleted(book(dynamodb, tables, "OL2W"))

    lines.write_text(json.dumps({"book_id": "OL1W", "title": "Target"}) + "\n"
                     + json.dumps({"book_id": "OL2W", "redirect_to": "OL1W"}) + "\n")
    second = etl("load", lines)
    assert second.exit_code == 0 and "works redirected (tombstones written): 1" in second.output
    assert rows(dynamodb, tables["ratings"], "OL1W")["reader-1"]["rating"] == 3
    exact()


class Counting:
    """The real client, counting the actions of every TransactWriteItems (and running `before` ahead of the
    first one that satisfies `when`: a reader's change landing between the loader's read and its write)."""

    def __init__(self, client, when=lambda actions: False, before=lambda: None, stop_after: int | None = None):
        self.client, self.when, self.before, self.stop_after = client, when, before, stop_after
        self.actions: list[dict] = []
        self.transactions = 0
        self.landed = False

    def __getattr__(self, name):
        return getattr(self.client, name)

    def transact_write_items(self, TransactItems, **kwargs):
        if self.stop_after is not None and self.transactions >= self.stop_after:
            raise ConnectionError("connection dropped")
        if not self.landed and self.when(TransactItems):
            self.landed = True
            self.before()
        self.transactions += 1
        answer = self.client.transact_write_items(TransactItems=TransactItems, **kwargs)
        self.actions += TransactItems
        return answer


def loader(client, tables) -> Loader:
    return Loader(client, Tables(tables["books"], tables["ratings"], tables["shelves"]), Rejects(None), 2)


def moves(actions) -> bool:
    return any("Delete" in action for action in actions)


def test_a_move_stopped_midway_finishes_on_the_rerun_losing_and_duplicating_nothing(tables, dynamodb, shelve,
                                                                                    tmp_path):
    extract_and_load(tmp_path, "may", work(1, "Target"), work(2, "Source"))
    readers = [{"book_id": "OL2W", "user_id": f"gb-{n}", "rating": 1 + n % 5, "created_at": "2020-01-01T00:00:00Z"}
               for n in range(45)]
    ratings = tmp_path / "ratings.jsonl"
    ratings.write_text("".join(json.dumps(line) + "\n" for line in readers))
    assert etl("load", ratings).exit_code == 0
    for n in range(3):
        shelve("OL2W", f"gb-{n}", "want_to_read")
    expected = Counter(str(line["rating"]) for line in readers)

    source = tmp_path / "june.jsonl"
    (tmp_path / "june_works.txt").write_text(work(1, "Target") + redirect(2, 1))
    assert etl("extract", "--works", tmp_path / "june_works.txt", "--out", source).exit_code == 0
    checkpoint = Checkpoint(tmp_path / "june.checkpoint")
    stopped = Counting(dynamodb, stop_after=1)
    with pytest.raises(ConnectionError):
        loader(stopped, tables).load(source, checkpoint, progress=quiet)
    moved, left = rows(dynamodb, tables["ratings"], "OL1W"), rows(dynamodb, tables["ratings"], "OL2W")
    assert len(moved) == 20 and len(left) == 25 and not set(moved) & set(left)
    assert not is_deleted(book(dynamodb, tables, "OL2W"))  # the tombstone comes last
    halfway = etl("reconcile", "--book", "OL1W", "--book", "OL2W")
    assert halfway.exit_code == 0 and "drift: none" in halfway.output and "shelf drift: none" in halfway.output

    report = loader(dynamodb, tables).load(source, checkpoint, progress=quiet)
    assert report.notes["ratings moved to the work they were merged into"] == 25
    assert report.notes["works redirected (tombstones written)"] == 1
    target = book(dynamodb, tables, "OL1W")
    assert set(rows(dynamodb, tables["ratings"], "OL1W")) == {line["user_id"] for line in readers}
    assert target["ratings_distribution"] == stars(**{f"s{star}": n for star, n in expected.items()})
    assert target["shelf_counts"] == shelves(want=3)
    assert rows(dynamodb, tables["ratings"], "OL2W") == {} and is_deleted(book(dynamodb, tables, "OL2W"))
    exact()


def test_a_readers_rating_landing_during_the_move_is_moved_too(tables, dynamodb, rate, tmp_path):
    extract_and_load(tmp_path, "may", work(1, "Target"), work(2, "Source"))
    rate("OL2W", "reader-1", 2)
    (tmp_path / "june_works.txt").write_text(work(1, "Target") + redirect(2, 1))
    source = tmp_path / "june.jsonl"
    assert etl("extract", "--works", tmp_path / "june_works.txt", "--out", source).exit_code == 0

    client = Counting(dynamodb, when=moves, before=lambda: rate("OL2W", "reader-2", 5))
    report = loader(client, tables).load(source, progress=quiet)
    assert client.landed and report.retried > 0  # the first move lost the race and was planned again
    assert {user: row["rating"] for user, row in rows(dynamodb, tables["ratings"], "OL1W").items()} == {
        "reader-1": 2, "reader-2": 5}
    assert book(dynamodb, tables, "OL1W")["ratings_distribution"] == stars(s2=1, s5=1)
    exact()


def test_bad_lifecycle_lines_are_rejected_with_one_reason_and_nothing_changes(tables, dynamodb, rate, tmp_path):
    lines = tmp_path / "lines.jsonl"
    lines.write_text(json.dumps({"book_id": "OL1W", "title": "Kept"}) + "\n")
    assert etl("load", lines).exit_code == 0
    rate("OL1W", "reader-1", 4)
    before = book(dynamodb, tables, "OL1W")
    bad = [{"book_id": "OL1W", "deleted": False}, {"book_id": "OL1W", "deleted": True, "title": "Kept"},
           {"book_id": "OL1W", "redirect_to": "OL1W"}, {"book_id": "OL1W", "redirect_to": "nope"},
           {"book_id": "OL1W", "deleted": True, "redirect_to": "OL2W"}, {"book_id": "OL1", "deleted": True}]
    lines.write_text("".join(json.dumps(line) + "\n" for line in bad))
    result = etl("load", lines, "--rejects", tmp_path / "rejects.jsonl")
    assert result.exit_code == 0 and "written 0" in result.output
    reasons = [json.loads(line)["reason"] for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert reasons == ["deleted must be true", "a delete line holds only book_id and deleted (also given: title)",
                       "a book redirected to itself", "redirect_to is not a book id",
                       "a line is either deleted or redirect_to, not both", "missing or malformed book_id"]
    assert book(dynamodb, tables, "OL1W") == before

    # A redirect needs the tables its readers' items are in: one line, exit 1, nothing written.
    lines.write_text(json.dumps({"book_id": "OL1W", "redirect_to": "OL2W"}) + "\n")
    no_shelves = CliRunner().invoke(main, ["load", str(lines)], env={"SHELVES_TABLE": ""})
    assert no_shelves.exit_code == 1 and "no ratings or shelves table" in no_shelves.output
    assert book(dynamodb, tables, "OL1W") == before


def stamps(dynamodb, tables) -> dict[str, str]:
    items = dynamodb.scan(TableName=tables["books"], ConsistentRead=True)["Items"]
    return {item["book_id"]["S"]: item["changed_at"]["S"] for item in items}


def test_a_reimport_costs_what_changed(tables, dynamodb, tmp_path):
    works = [work(n, f"Work {n}") for n in range(1, 31)]
    extract_and_load(tmp_path, "may", *works)
    first = stamps(dynamodb, tables)
    (tmp_path / "june_works.txt").write_text("".join(works))
    source = tmp_path / "june.jsonl"
    assert etl("extract", "--works", tmp_path / "june_works.txt", "--out", source).exit_code == 0

    same = Counting(dynamodb)
    report = loader(same, tables).load(source, progress=quiet)
    assert "written 0, unchanged 30" in report.summary() and same.actions == []
    assert stamps(dynamodb, tables) == first  # nothing restamped: nothing in the change feed

    works[16] = work(17, "Work 17, revised", revision=2)
    (tmp_path / "june_works.txt").write_text("".join(works))
    assert etl("extract", "--works", tmp_path / "june_works.txt", "--out", source).exit_code == 0
    one = Counting(dynamodb)
    report = loader(one, tables).load(source, progress=quiet)
    assert "written 1, unchanged 29" in report.summary()
    assert len(one.actions) == 1 and one.actions[0]["Update"]["Key"] == {"book_id": {"S": "OL17W"}}
    after = stamps(dynamodb, tables)
    assert {book_id for book_id in after if after[book_id] != first[book_id]} == {"OL17W"}  # one feed entry
    assert book(dynamodb, tables, "OL17W")["title"] == "Work 17, revised"


def test_bad_delete_and_redirect_dump_lines_are_rejected_and_give_no_line(tmp_path):
    dump = tmp_path / "works.txt"
    dump.write_text(work(1, "Kept") + redirect(2, 1).replace('"/works/OL1W"', '"/authors/OL1A"')
                    + deleted(3).replace("/works/OL3W", "/works/OL03W")
                    + "/type/redirect\t/works/OL4W\t2\t" + STAMP + "\t{\"location\": \n")
    out, rejects = tmp_path / "books.jsonl", tmp_path / "rejects.jsonl"
    result = etl("extract", "--works", dump, "--out", out, "--rejects", rejects)
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["book_id"] for line in out.read_text().splitlines()] == ["OL1W"]
    assert [(r["line"], r["reason"]) for r in map(json.loads, rejects.read_text().splitlines())] == [
        (2, "redirect without a valid location"), (3, "missing or malformed key"), (4, "invalid JSON")]
