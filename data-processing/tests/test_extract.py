"""Open Library dumps -> books JSONL, on the real development-database set and the authors-dump slice."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from bookrec_etl.extract import Dumps, Filters, extract
from bookrec_etl.importers import read_jsonl
from bookrec_etl.progress import Progress
from bookrec_etl.records import MAX_ISBNS, as_isbn13
from bookrec_etl.report import Rejects


def quiet(label, total, unit):
    return Progress(label, total, unit, interactive=False)


@pytest.fixture
def dev(samples) -> dict[str, Path]:
    """The development-database dumps: works, editions, authors."""
    return {kind: samples[kind] for kind in ("works", "editions", "authors")}


def dump_lines(path: Path) -> list[tuple[str, str, dict]]:
    """(type, key, json) of every line of a real dump file (plain or .gz)."""
    rows = []
    text = gzip.decompress(path.read_bytes()).decode() if path.name.endswith(".gz") else path.read_text()
    for line in text.splitlines():
        kind, key, _rev, _modified, body = line.split("\t")
        rows.append((kind, key, json.loads(body)))
    return rows


def run(tmp_path: Path, filters: Filters | None = None, **dumps: Path):
    out = tmp_path / "books.jsonl"
    rejects_path = tmp_path / "rejects.jsonl"
    with Rejects(rejects_path) as rejects:
        result = extract(Dumps(**dumps), out, rejects, filters or Filters(), workdir=tmp_path, progress=quiet)
    books = {book["book_id"]: book for book in read_jsonl(out)}
    rejected = []
    if rejects_path.exists():
        rejected = [json.loads(line) for line in rejects_path.read_text().splitlines()]
    return books, result, rejected


def dump_line(kind: str, key: str, doc: dict, modified: str = "2020-01-01T00:00:00.000000") -> str:
    return "\t".join((kind, key, "1", modified, json.dumps({"key": key, **doc}))) + "\n"


def test_dev_instance_editions_and_works_resolve_to_their_works_and_authors(tmp_path, dev):
    books, result, rejected = run(tmp_path, **dev)
    assert rejected == [] and len(books) == 35
    assert [r.read for r in result.inputs] == [34, 35, 68]

    names = {key.rsplit("/", 1)[-1]: doc["name"] for _, key, doc in dump_lines(dev["authors"])}
    for _, key, work in dump_lines(dev["works"]):
        book = books[key.rsplit("/", 1)[-1]]
        assert book["title"] == " ".join(work["title"].split())
        expected = [a["author"]["key"].rsplit("/", 1)[-1] for a in work["authors"]]
        assert [a["author_id"] for a in book["authors"]] == expected
        assert [a["name"] for a in book["authors"]] == [names[a] for a in expected]

    editions_of: dict[str, list[dict]] = {}
    for _, _, edition in dump_lines(dev["editions"]):
        work_id = edition["works"][0]["key"].rsplit("/", 1)[-1]
        editions_of.setdefault(work_id, []).append(edition)
    assert set(editions_of) <= set(books)  # every edition's work is in the set
    for work_id, editions in editions_of.items():
        book = books[work_id]
        isbns = {as_isbn13(v) for e in editions for v in e.get("isbn_13", []) + e.get("isbn_10", [])} - {None}
        assert set(book.get("isbn_13", [])) == isbns or len(book["isbn_13"]) == MAX_ISBNS
        languages = {lang["key"].rsplit("/", 1)[-1] for e in editions for lang in e.get("languages", [])}
        languages -= {"und"}
        if languages and "language" in book:
            assert book["language"] in languages

    tea = books["OL5702375W"]
    assert [a["name"] for a in tea["authors"]] == ["Greg Mortenson", "David Oliver Relin"]
    assert "9780142414125" in tea["isbn_13"]
    assert "9780670034826" in tea["isbn_13"]  # from the isbn_10 "0-670-03482-7"
    assert tea["created_at"].endswith("Z") and tea["title_bucket"] == "t"
    assert books["OL15673999W"]["isbn_13"] == ["9781935928324"]  # hyphenated, and repeated as an "isbn_10"


def test_author_names_resolve_from_the_authors_dump_slice(tmp_path, samples):
    slice_authors = dump_lines(samples["authors_dump"])
    picked = slice_authors[::150]  # spread over the whole slice
    works = tmp_path / "works.txt"
    with works.open("w") as out:
        for number, (_, author_key, _) in enumerate(picked, start=1):
            out.write(dump_line("/type/work", f"/works/OL{number}W",
                                {"title": f"Work {number}", "authors": [{"author": {"key": author_key}}]}))
        # A work citing a redirected author gets the target's id and name.
        out.write(dump_line("/type/work", "/works/OL9999W", {
            "title": "Cites a redirect", "authors": [{"author": {"key": "/authors/OL99999999A"}}]}))
    authors = tmp_path / "authors.txt.gz"
    shutil.copy(samples["authors_dump"], authors)
    with gzip.open(authors, "at") as out:  # a second gzip member, as concatenated dumps have
        out.write(dump_line("/type/redirect", "/authors/OL99999999A", {"location": picked[0][1]}))

    books, result, rejected = run(tmp_path, works=works, authors=authors)
    assert rejected == [] and result.inputs[0].read == len(slice_authors) + 1
    for number, (_, author_key, doc) in enumerate(picked, start=1):
        author_id = author_key.rsplit("/", 1)[-1]
        assert books[f"OL{number}W"]["authors"] == [{"author_id": author_id, "name": doc["name"]}]
    _, target_key, target = picked[0]
    target_id = target_key.rsplit("/", 1)[-1]
    assert books["OL9999W"]["authors"] == [{"author_id": target_id, "name": target["name"]}]


def test_redirected_works_hand_their_editions_and_ratings_to_the_target_and_become_lines(tmp_path):
    works = tmp_path / "works.txt"
    works.write_text(
        dump_line("/type/work", "/works/OL1W", {"title": "Kept", "subjects": ["A", " a ", "B"],
                                                "description": {"type": "/type/text", "value": "About it."},
                                                "first_publish_date": "c. 1850?"})
        + dump_line("/type/redirect", "/works/OL2W", {"location": "/works/OL1W"})
        + dump_line("/type/redirect", "/works/OL4W", {"location": "/works/OL2W"})  # a chain
        + dump_line("/type/delete", "/works/OL3W", {})
        + dump_line("/type/work", "/works/OL5W", {"title": "Other", "description": "Plain string."}))
    editions = tmp_path / "editions.txt"
    editions.write_text(
        dump_line("/type/edition", "/books/OL1M", {"works": [{"key": "/works/OL2W"}], "covers": [-1, 42],
                                                   "isbn_13": ["9780140449136"],
                                                   "languages": [{"key": "/languages/fre"}]})
        + dump_line("/type/edition", "/books/OL2M", {"works": [{"key": "/works/OL3W"}],
                                                     "isbn_13": ["9780199535569"]}))
    ratings = tmp_path / "ratings.txt"
    ratings.write_text("/works/OL1W\t\t5\t2020-01-01\n/works/OL2W\t\\N\t3\t2021-02-03\n"
                       "/works/OL4W\t/books/OL1M\t4\t2022-03-04\n/works/OL3W\t\t1\t2020-01-01\n")

    lines, result, rejected = run(tmp_path, works=works, editions=editions, ratings=ratings)
    books = {book_id: line for book_id, line in lines.items() if "title" in line}
    assert rejected == [] and set(books) == {"OL1W", "OL5W"}
    # After every book, in id order: a line per deleted work and per redirected one (the chain followed).
    assert list(lines.items())[2:] == [("OL2W", {"book_id": "OL2W", "redirect_to": "OL1W"}),
                                       ("OL3W", {"book_id": "OL3W", "deleted": True}),
                                       ("OL4W", {"book_id": "OL4W", "redirect_to": "OL1W"})]
    kept = books["OL1W"]
    assert kept["isbn_13"] == ["9780140449136"] and kept["cover_id"] == 42 and kept["language"] == "fre"
    assert kept["ratings_distribution"] == {"1": 0, "2": 0, "3": 1, "4": 1, "5": 1}
    assert (kept["rating_count"], kept["rating_sum"], kept["avg_rating"]) == (3, 12, 4.0)
    assert kept["subjects"] == ["A", "B"] and kept["description"] == "About it."
    assert kept["first_publish_year"] == 1850
    assert books["OL5W"]["description"] == "Plain string." and books["OL5W"]["rating_count"] == 0
    works_report = result.inputs[0]
    assert works_report.skipped == {} and works_report.accepted == 5
    assert works_report.notes == {"redirected works": 2, "deleted works": 1, "redirects to works in the dump": 2}
    assert result.books.notes == {"redirect lines (works merged into another)": 2,
                                  "delete lines (works the dump deletes)": 1}


def test_every_kind_of_bad_dump_line_is_rejected_with_its_line_and_reason(tmp_path):
    good = dump_line("/type/work", "/works/OL1W", {"title": "Good"})
    works = tmp_path / "works.txt"
    works.write_text("".join([
        good,                                                        # 1
        "/type/work\t/works/OL2W\t1\t{\"title\": \"four columns\"}\n",  # 2
        "/type/work\t/works/OL3W\t1\t2020-01-01\t{not json\n",       # 3
        "/type/work\t/works/OL4W\t1\t2020-01-01\t[1, 2]\n",          # 4
        dump_line("/type/work", "/works/OL5W", {"subjects": ["no title"]}),  # 5
        dump_line("/type/work", "", {"title": "No key"}),            # 6
        dump_line("/type/work", "/works/OL6X", {"title": "Bad key"}),  # 7
        dump_line("/type/edition", "/books/OL1M", {"title": "Another type"}),  # 8: skipped, counted
        dump_line("/type/frobnicate", "/works/OL7W", {"title": "?"}),  # 9: skipped, counted
        dump_line("/type/redirect", "/works/OL8W", {}),              # 10
        "\n",                                                        # 11
        dump_line("/type/work", "/works/OL9W", {"title": "Also good"}),  # 12
        dump_line("work", "/works/OL10W", {"title": "No type"}),    # 13
    ]))
    ratings = tmp_path / "ratings.txt"
    ratings.write_text("/works/OL1W\t\t5\t2020-01-01\n/works/OL1W\t\t6\t2020-01-01\n/works/OL1W\t5\n"
                       "/books/OL1M\t\t5\t2020-01-01\n")
    books, result, rejected = run(tmp_path, works=works, ratings=ratings)
    assert set(books) == {"OL1W", "OL9W"} and books["OL1W"]["rating_count"] == 1
    assert [(r["source"], r["line"], r["reason"]) for r in rejected] == [
        ("works.txt", 2, "wrong column count"), ("works.txt", 3, "invalid JSON"),
        ("works.txt", 4, "JSON is not an object"), ("works.txt", 5, "missing title"),
        ("works.txt", 6, "missing or malformed key"), ("works.txt", 7, "missing or malformed key"),
        ("works.txt", 10, "redirect without a valid location"), ("works.txt", 11, "wrong column count"),
        ("works.txt", 13, "unknown type"),
        ("ratings.txt", 2, "rating is not an integer 1..5"), ("ratings.txt", 3, "wrong column count"),
        ("ratings.txt", 4, "missing or malformed key")]
    assert rejected[1]["excerpt"].endswith("{not json")
    works_report = result.inputs[0]
    assert (works_report.read, works_report.accepted, works_report.rejected_total) == (13, 2, 9)
    assert works_report.skipped == {"other type /type/edition": 1, "other type /type/frobnicate": 1}


def test_filters_and_limit(tmp_path, dev):
    everything, _, _ = run(tmp_path / "all", **dev)
    telugu, _, _ = run(tmp_path / "tel", Filters(languages=frozenset({"tel"})), **dev)
    assert set(telugu) == {b for b, book in everything.items() if book.get("language") == "tel"}
    assert len(telugu) == 3
    with_subjects, result, _ = run(tmp_path / "subj", Filters(require_subjects=True), **dev)
    assert set(with_subjects) == {b for b, book in everything.items() if book.get("subjects")}
    assert result.books.skipped["no subjects"] == len(everything) - len(with_subjects) > 0
    first, _, _ = run(tmp_path / "limit", Filters(limit=5), **dev)
    assert list(first) == list(everything)[:5]
    rated, _, _ = run(tmp_path / "rated", Filters(min_ratings=1), **dev)
    assert rated == {}


def test_gzip_dumps_give_the_same_books(tmp_path, dev):
    packed = {}
    for kind, path in dev.items():
        packed[kind] = tmp_path / f"{path.name}.gz"
        packed[kind].write_bytes(gzip.compress(path.read_bytes()))
    plain, _, _ = run(tmp_path / "plain", **dev)
    compressed, _, _ = run(tmp_path / "gz", **packed)
    assert compressed == plain and len(plain) == 35


@pytest.mark.parametrize("kind", ["authors", "editions"])
def test_extract_never_needs_more_than_the_works_dump(tmp_path, dev, kind):
    books, _, rejected = run(tmp_path, works=dev["works"], **{kind: dev[kind]})
    assert len(books) == 35 and rejected == []
    if kind == "editions":
        assert all(book.get("authors") == [] for book in books.values())  # no names without the authors dump
