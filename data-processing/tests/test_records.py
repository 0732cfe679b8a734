"""Source rows -> records, on the real samples and on crafted bad input."""

from __future__ import annotations

import csv
import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from bookrec_etl.importers import Rejects, import_goodbooks, import_jsonl, read_jsonl
from bookrec_etl.records import (goodbooks_isbn13, isbn13_is_valid, language_code, parse_year, from_jsonl_row,
                                 clean_subjects)

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SEED = Path(__file__).resolve().parents[1] / "seed"


@pytest.mark.parametrize("raw, year", [("1955", 1955), ("November 25, 1989", 1989), ("", None), (None, None),
                                       ("c. 1850?", 1850), (1999, 1999), ("between 1200 and 1210", 1210),
                                       ("unknown", None), (True, None)])
def test_messy_years_parse(raw, year):
    assert parse_year(raw) == year


def test_the_whole_philosophy_sample_imports_with_messy_years(tmp_path):
    report = import_jsonl(SEED / "philosophy_books_openlibrary.jsonl.gz", tmp_path / "b.jsonl", Rejects(None))
    assert report.read == report.accepted == 1893
    books = {b["book_id"]: b for b in read_jsonl(tmp_path / "b.jsonl")}
    zen = books["OL827357W"]
    assert zen["title"] == "Zen and the Art of Motorcycle Maintenance" and zen["first_publish_year"] == 2000
    assert zen["authors"] == [{"author_id": None, "name": "Robert M. Pirsig"}] and zen["cover_id"] == 10673266
    assert zen["title_norm"] == "zen and the art of motorcycle maintenance" and zen["title_bucket"] == "z"
    assert all(isinstance(b["first_publish_year"], int) or b["first_publish_year"] is None for b in books.values())


def test_subjects_are_trimmed_and_deduplicated():
    assert clean_subjects([" Ethics ", "ethics", "", "Logic", None, "Logic  and  Truth"]) == \
        ["Ethics", "Logic", "Logic and Truth"]


def test_languages_become_iso_639_2():
    assert [language_code(c) for c in ("eng", "en-US", "en", "fre", "", None, "e")] == \
        ["eng", "eng", "eng", "fre", None, None, None]


def test_goodbooks_isbn13s_have_valid_check_digits(tmp_path):
    # The Hunger Games: isbn 439023483 (leading zero dropped), isbn13 9.78043902348e+12 (check digit lost).
    assert goodbooks_isbn13("439023483", "9.78043902348e+12") == "9780439023481"
    with open(SHARED / "goodbooks" / "goodbooks10k_books.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    derived = [goodbooks_isbn13(r["isbn"], r["isbn13"]) for r in rows]
    present = [d for d in derived if d]
    assert len(present) > 9000 and all(isbn13_is_valid(d) for d in present)


def test_goodbooks_aggregates_equal_the_imported_ratings(tmp_path):
    import_goodbooks(SEED / "goodbooks10k_books.csv.gz", SEED / "goodbooks10k_book_genres.csv.gz",
                     SEED / "goodbooks_ratings_sample.csv.gz", tmp_path / "b.jsonl", tmp_path / "r.jsonl",
                     Rejects(None), max_users=50)
    ratings = list(read_jsonl(tmp_path / "r.jsonl"))
    assert len({r["user_id"] for r in ratings}) == 50 and all(r["user_id"].startswith("gb-") for r in ratings)
    counts = Counter((r["book_id"], str(r["rating"])) for r in ratings)
    for book in read_jsonl(tmp_path / "b.jsonl"):
        assert book["book_id"].startswith("GB")
        assert book["ratings_distribution"] == {s: counts.get((book["book_id"], s), 0) for s in "12345"}
        assert book["rating_count"] == sum(book["ratings_distribution"].values())


def test_every_kind_of_bad_line_is_rejected_with_its_line_and_reason(tmp_path):
    good = {"book_id": "OL1W", "title": "Good", "first_publish_year": "1901"}
    lines = [json.dumps(good), "{not json", "", json.dumps({"book_id": "OL2W"}), json.dumps({"title": "No key"}),
             json.dumps({"book_id": "/authors/OL1A", "title": "Wrong type"}), json.dumps([1, 2]),
             json.dumps({**good, "book_id": "/works/OL3W"})]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    report = import_jsonl(source, tmp_path / "out.jsonl", rejects := Rejects(tmp_path / "rejects.jsonl"))
    rejects.close()
    assert (report.read, report.accepted) == (8, 2)
    rejected = [json.loads(l) for l in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r["reason"]) for r in rejected] == [
        (2, "invalid JSON"), (3, "empty line"), (4, "missing title"), (5, "missing or malformed work key"),
        (6, "missing or malformed work key"), (7, "not a JSON object")]
    assert [b["book_id"] for b in read_jsonl(tmp_path / "out.jsonl")] == ["OL1W", "OL3W"]


def test_replaced_system_format_is_understood():
    row = {"book_id": "OL45883W", "title": "The Republic ", "title_prefix": "th", "title_lower": "the republic",
           "authors": [{"author_id": "OL12A", "author_name": "Plato"}], "isbn_13": "9780140455113",
           "first_publish_year": None, "subjects": ["Philosophy"], "language": "en", "description": "x",
           "cover_id": 42, "avg_rating": 4.1, "rating_count": 10}
    book = from_jsonl_row(row)
    assert book["title"] == "The Republic" and book["authors"] == [{"author_id": "OL12A", "name": "Plato"}]
    assert book["isbn_13"] == ["9780140455113"] and book["language"] == "eng" and book["cover_id"] == 42
