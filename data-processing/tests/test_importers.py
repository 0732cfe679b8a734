"""import-jsonl and import-goodbooks on the real files, and on crafted bad lines."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

from bookrec_etl.importers import import_goodbooks, import_jsonl, read_jsonl
from bookrec_etl.progress import Progress
from bookrec_etl.records import isbn13_is_valid
from bookrec_etl.report import Rejects


def quiet(label, total, unit):
    return Progress(label, total, unit, interactive=False)


def rejected_lines(path: Path) -> list[tuple[int, str]]:
    if not path.exists():
        return []
    return [(r["line"], r["reason"]) for r in map(json.loads, path.read_text().splitlines())]


def test_the_whole_philosophy_sample_imports(tmp_path, samples):
    report = import_jsonl(samples["philosophy"], tmp_path / "b.jsonl",
                          Rejects(tmp_path / "rejects.jsonl"), progress=quiet)
    assert (report.read, report.accepted, report.rejected_total) == (1893, 1893, 0)
    books = list(read_jsonl(tmp_path / "b.jsonl"))
    assert len({b["book_id"] for b in books}) == 1893 and all(b["book_id"].startswith("OL") for b in books)
    assert sum(1 for b in books if "first_publish_year" in b) > 100


def test_every_kind_of_bad_jsonl_line_is_rejected_with_its_line_and_reason(tmp_path):
    good = {"book_id": "OL1W", "title": "Good", "first_publish_year": "1901"}
    lines = [json.dumps(good), "{not json", "", json.dumps({"book_id": "OL2W"}),
             json.dumps({"title": "No key"}),
             json.dumps({"book_id": "/authors/OL1A", "title": "Wrong type"}), json.dumps([1, 2]),
             json.dumps({**good, "book_id": "/works/OL3W"}), "   ", json.dumps("a string")]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    with Rejects(tmp_path / "rejects.jsonl") as rejects:
        report = import_jsonl(source, tmp_path / "out.jsonl", rejects, progress=quiet)
    assert (report.read, report.accepted, report.rejected_total) == (10, 2, 8)
    assert rejected_lines(tmp_path / "rejects.jsonl") == [
        (2, "invalid JSON"), (3, "empty line"), (4, "missing title"), (5, "missing or malformed work key"),
        (6, "missing or malformed work key"), (7, "not a JSON object"), (9, "empty line"),
        (10, "not a JSON object")]
    assert [b["book_id"] for b in read_jsonl(tmp_path / "out.jsonl")] == ["OL1W", "OL3W"]


def goodbooks(tmp_path, samples, ratings=None, max_users=None):
    with Rejects(tmp_path / "rejects.jsonl") as rejects:
        reports = import_goodbooks(samples["goodbooks_books"], samples["goodbooks_genres"],
                                   ratings or samples["goodbooks_ratings"],
                                   tmp_path / "books.jsonl", tmp_path / "ratings.jsonl", rejects, max_users,
                                   progress=quiet)
    return reports, list(read_jsonl(tmp_path / "books.jsonl")), list(read_jsonl(tmp_path / "ratings.jsonl"))


def test_goodbooks_books_carry_exactly_the_aggregate_of_their_imported_ratings(tmp_path, samples):
    (books_report, ratings_report), books, ratings = goodbooks(tmp_path, samples)
    assert (books_report.accepted, ratings_report.accepted) == (10_000, 240_215)
    assert ratings_report.rejected_total == 0
    assert len({r["user_id"] for r in ratings}) == 2148
    assert all(isinstance(r["user_id"], str) and r["user_id"].startswith("gb-") for r in ratings)
    counts = Counter((r["book_id"], str(r["rating"])) for r in ratings)
    for book in books:
        assert book["book_id"].startswith("GB")
        expected = {s: counts.get((book["book_id"], s), 0) for s in "12345"}
        assert book["ratings_distribution"] == expected
        assert book["rating_count"] == sum(expected.values())
        assert book["rating_sum"] == sum(int(s) * n for s, n in expected.items())
    assert all(isbn13_is_valid(i) for book in books for i in book.get("isbn_13", []))
    hunger = next(b for b in books if b["book_id"] == "GB1")
    assert hunger["isbn_13"] == ["9780439023481"] and "young-adult" in hunger["subjects"]
    assert hunger["cover_url"].startswith("https://images.gr-assets.com/")


def test_goodbooks_max_users_keeps_the_first_users_and_books_agree(tmp_path, samples, open_sample):
    (_, ratings_report), books, ratings = goodbooks(tmp_path, samples, max_users=25)
    with open_sample(samples["goodbooks_ratings"]) as handle:
        first_users = list(dict.fromkeys(row["user_id"] for row in csv.DictReader(handle)))[:25]
    assert {r["user_id"] for r in ratings} == {f"gb-{u}" for u in first_users}
    assert ratings_report.skipped["user beyond --max-users"] == 240_215 - len(ratings)
    assert sum(b["rating_count"] for b in books) == len(ratings) and len(books) == 10_000


def test_bad_goodbooks_ratings_rows_are_rejected_and_never_counted(tmp_path, samples):
    crafted = tmp_path / "ratings.csv"
    crafted.write_text("user_id,book_id,rating\n1,1,5\n1,1,4\n2,1,7\n3,99999,5\nx,2,3\n4,2\n5,2,3\n6,0,3\n")
    _, books, ratings = goodbooks(tmp_path, samples, ratings=crafted)
    assert rejected_lines(tmp_path / "rejects.jsonl") == [
        (3, "duplicate rating of a book by the same user"), (4, "rating is not an integer 1..5"),
        (5, "book_id not in books.csv"), (6, "malformed user_id"), (7, "wrong column count"),
        (9, "missing or malformed book_id")]
    assert [(r["book_id"], r["user_id"], r["rating"]) for r in ratings] == \
        [("GB1", "gb-1", 5), ("GB2", "gb-5", 3)]
    by_id = {b["book_id"]: b for b in books}
    assert by_id["GB1"]["ratings_distribution"]["5"] == 1 and by_id["GB1"]["rating_count"] == 1
    assert by_id["GB2"]["rating_count"] == 1 and by_id["GB3"]["rating_count"] == 0
