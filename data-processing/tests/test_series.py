"""Series on every book: parsed from goodbooks titles (crafted rows and the bundled seed), given by JSONL
rows, and set or removed by a re-import like any catalogue attribute, never touching what readers wrote."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bookrec_catalog.catalog import split_series
from bookrec_catalog.dynamo import from_item
from bookrec_etl.cli import main
from bookrec_etl.importers import import_goodbooks, import_jsonl, read_jsonl
from bookrec_etl.progress import Progress
from bookrec_etl.records import Rejected, from_goodbooks_row, from_jsonl_row
from bookrec_etl.report import Rejects


def quiet(label, total, unit):
    return Progress(label, total, unit, interactive=False)


def goodbooks_row(title: str, original: str = "") -> dict[str, str]:
    return {"book_id": "1", "title": title, "original_title": original, "authors": "Suzanne Collins"}


# ---- goodbooks rows ------------------------------------------------------------------------------------
def test_a_goodbooks_title_loses_its_series_note_to_the_series():
    book = from_goodbooks_row(goodbooks_row("Catching Fire (The Hunger Games, #2)", "Catching Fire"), [], None)
    assert (book["title"], book["title_norm"]) == ("Catching Fire", "catching fire")
    assert book["series"] == {"name": "The Hunger Games", "position": 2}
    assert book["original_title"] == "Catching Fire"  # kept, as before series (see records.original_title)


@pytest.mark.parametrize(("title", "series"), [
    ("Midnight Sun (Twilight, #1.5)", {"name": "Twilight", "position": 1.5}),
    ("Nightfall (Nightfall, #1-2)", {"name": "Nightfall"}),  # a range: no single position
    ("The Light Fantastic (Discworld, #2; Rincewind #2)", {"name": "Discworld", "position": 2}),
])
def test_goodbooks_positions_are_numbers_or_absent(title, series):
    assert from_goodbooks_row(goodbooks_row(title), [], None)["series"] == series


@pytest.mark.parametrize("title", ["Bossypants", "The Complete Stories (Complete Collection)", "Saga #1"])
def test_a_goodbooks_title_without_a_note_has_no_series(title):
    book = from_goodbooks_row(goodbooks_row(title), [], None)
    assert book["title"] == title and "series" not in book


@pytest.mark.parametrize(("title", "original", "kept"), [
    # compared with the title as the source writes it: what the record kept before series, it keeps
    ("Catching Fire (The Hunger Games, #2)", "Catching Fire", "Catching Fire"),
    ("Fallen Too Far (Rosemary Beach, #1; Too Far, #1)", "Fallen Too Far (Too Far, #1)",
     "Fallen Too Far (Too Far, #1)"),
    ("Eragon & Eldest (Inheritance, #1-2)", "Eragon & Eldest (Inheritance, #1-2)", None),
    ("The Color of Magic (Discworld, #1; Rincewind #1)", "The Colour of Magic", "The Colour of Magic"),
])
def test_the_original_title_is_kept_exactly_where_it_was(title, original, kept):
    assert from_goodbooks_row(goodbooks_row(title, original), [], None).get("original_title") == kept


# ---- JSONL rows ----------------------------------------------------------------------------------------
ZEN = {"key": "/works/OL827357W", "title": "Zen and the Art of Motorcycle Maintenance"}


@pytest.mark.parametrize(("given", "stored"), [
    ({"name": "Phaedrus", "position": 1}, {"name": "Phaedrus", "position": 1}),
    ({"name": " Phaedrus ", "position": "2.5"}, {"name": "Phaedrus", "position": 2.5}),
    ({"name": "Phaedrus", "position": 3.0}, {"name": "Phaedrus", "position": 3}),
    ({"name": "Phaedrus", "position": None}, {"name": "Phaedrus"}),
    ({"name": "Phaedrus"}, {"name": "Phaedrus"}),
    ("Phaedrus, #4", {"name": "Phaedrus", "position": 4}),
    ("Phaedrus", {"name": "Phaedrus"}),
])
def test_a_jsonl_row_may_name_its_series(given, stored):
    assert from_jsonl_row({**ZEN, "series": given})["series"] == stored


def test_a_row_that_names_its_series_keeps_its_title_as_given():
    book = from_jsonl_row({**ZEN, "title": "Lila (An Inquiry, #2)", "series": {"name": "Phaedrus"}})
    assert book["title"] == "Lila (An Inquiry, #2)" and book["series"] == {"name": "Phaedrus"}
    assert from_jsonl_row({**ZEN, "title": "Lila (An Inquiry, #2)"})["series"] == {"name": "An Inquiry",
                                                                                     "position": 2}


@pytest.mark.parametrize(("given", "reason"), [
    ({"name": ""}, "malformed series: no name"),
    ({"position": 1}, "malformed series: no name"),
    ({"name": "Phaedrus", "position": True}, "malformed series: position is not a number"),
    ({"name": "Phaedrus", "position": "first"}, "malformed series: position is not a number"),
    ({"name": "Phaedrus", "position": "nan"}, "malformed series: position is not a number"),
    ({"name": "Phaedrus", "position": -1}, "malformed series: position outside 0..100,000"),
    (["Phaedrus", 1], "malformed series: neither an object"),
    (7, "malformed series: neither an object"),
])
def test_a_malformed_series_rejects_the_row_saying_why(given, reason):
    with pytest.raises(Rejected, match=reason):
        from_jsonl_row({**ZEN, "series": given})


def test_import_jsonl_rejects_only_the_lines_with_a_malformed_series(tmp_path):
    rows = [{**ZEN, "series": {"name": "Phaedrus", "position": 1}},
            {**ZEN, "key": "/works/OL2W", "series": {"name": "Phaedrus", "position": "first"}},
            {**ZEN, "key": "/works/OL3W", "title": "Lila (Phaedrus, #2)"}]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with Rejects(tmp_path / "rejects.jsonl") as rejects:
        report = import_jsonl(source, tmp_path / "out.jsonl", rejects, progress=quiet)
    assert (report.read, report.accepted, report.rejected_total) == (3, 2, 1)
    rejected = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r["reason"]) for r in rejected] == [(2, "malformed series: position is not a number")]
    books = list(read_jsonl(tmp_path / "out.jsonl"))
    assert [(b["title"], b["series"]) for b in books] == [
        ("Zen and the Art of Motorcycle Maintenance", {"name": "Phaedrus", "position": 1}),
        ("Lila", {"name": "Phaedrus", "position": 2})]


# ---- the bundled seed ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def seed_books(tmp_path_factory, samples) -> list[dict]:
    """The goodbooks books exactly as the seed imports them (bookrec_etl.seed: import_goodbooks)."""
    work = tmp_path_factory.mktemp("goodbooks")
    with Rejects(work / "rejects.jsonl") as rejects:
        books_report, _ = import_goodbooks(samples["goodbooks_books"], samples["goodbooks_genres"],
                                           samples["goodbooks_ratings"], work / "books.jsonl",
                                           work / "ratings.jsonl", rejects, max_users=10, progress=quiet)
    assert books_report.accepted == 10_000
    return list(read_jsonl(work / "books.jsonl"))


def test_the_seed_carries_a_series_on_every_book_whose_title_names_one(seed_books, samples, open_sample):
    with open_sample(samples["goodbooks_books"]) as handle:
        titles = {f"GB{row['book_id']}": " ".join(row["title"].split()) for row in csv.DictReader(handle)}
    with_series = [b for b in seed_books if "series" in b]
    assert len(with_series) == 4439  # every title with a closing "(Name, #...)" note
    assert sum(1 for b in with_series if "position" in b["series"]) == 4335  # a single number; 104 ranges
    assert sum(1 for b in with_series if isinstance(b["series"].get("position"), float)) == 77  # 0.5, 1.5 ...
    for book in seed_books:
        assert split_series(book["title"])[1] is None or "series" in book  # no note left on a title
        assert titles[book["book_id"]].startswith(book["title"])  # only the closing note was taken off
    by_id = {b["book_id"]: b for b in seed_books}
    assert (by_id["GB1"]["title"], by_id["GB1"]["series"]) == \
        ("The Hunger Games", {"name": "The Hunger Games", "position": 1})
    assert (by_id["GB17"]["title"], by_id["GB17"]["series"]) == \
        ("Catching Fire", {"name": "The Hunger Games", "position": 2})


# ---- a re-import sets or removes it, and keeps what readers wrote ----------------------------------------
def etl(*args) -> Result:
    return CliRunner().invoke(main, [str(arg) for arg in args])


def load(path: Path, lines: list[dict]) -> Result:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = etl("load", path)
    assert result.exit_code == 0, result.output
    return result


def stored(dynamodb, tables, book_id: str = "GB1") -> dict:
    return from_item(dynamodb.get_item(TableName=tables["books"], Key={"book_id": {"S": book_id}},
                                       ConsistentRead=True)["Item"])


def test_a_reimport_sets_moves_and_removes_the_series_and_keeps_the_readers_rating(tables, dynamodb, rate,
                                                                                   tmp_path):
    load(tmp_path / "before.jsonl", [{"book_id": "GB1", "title": "The Hunger Games"}])  # an older import
    rate("GB1", "reader-1", 5)
    rated = stored(dynamodb, tables)
    assert "series" not in rated and rated["rating_count"] == 1

    # A line the importer wrote before series (title with its note) and one it writes now: the same book.
    load(tmp_path / "old.jsonl", [{"book_id": "GB1", "title": "The Hunger Games (The Hunger Games, #1)"}])
    book = stored(dynamodb, tables)
    assert (book["title"], book["series"]) == ("The Hunger Games", {"name": "The Hunger Games", "position": 1})
    assert book["changed_at"] > rated["changed_at"]
    again = load(tmp_path / "new.jsonl", [{"book_id": "GB1", "title": "The Hunger Games",
                                           "series": {"name": "The Hunger Games", "position": 1}}])
    assert "written 0" in again.output and stored(dynamodb, tables) == book

    load(tmp_path / "moved.jsonl", [{"book_id": "GB1", "title": "The Hunger Games (The Hunger Games, #1.5)"}])
    assert stored(dynamodb, tables)["series"] == {"name": "The Hunger Games", "position": 1.5}

    load(tmp_path / "gone.jsonl", [{"book_id": "GB1", "title": "The Hunger Games"}])
    after = stored(dynamodb, tables)
    assert "series" not in after and after["title"] == "The Hunger Games"
    assert (after["ratings_distribution"], after["rating_count"], after["rating_sum"]) == \
        (rated["ratings_distribution"], 1, 5)
    assert after["created_at"] == rated["created_at"]
