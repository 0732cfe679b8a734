"""Bad input never hurts: broken compressed files, rejects of another step, oversized keys, author ids
given as names, all-types dumps. Each case as a user meets it (message, exit code) and what is on disk
and in the tables afterwards."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from bookrec_catalog.catalog import TITLE_KEY_BYTES, normalise_text
from bookrec_catalog.dynamo import from_item
from bookrec_etl.cli import main

STAMP = "2020-01-01T00:00:00.000000Z"


def invoke(*args: str | Path):
    return CliRunner().invoke(main, [str(a) for a in args])


def book_line(number: int, title: str | None = None, **fields) -> str:
    return json.dumps({"book_id": f"OL{number}W", "title": title or f"Book {number}", "created_at": STAMP,
                       **fields}) + "\n"


def truncated_gzip(path: Path, text: str, keep: float = 0.5) -> Path:
    """`text` gzip-compressed and cut short, as an interrupted download leaves it."""
    packed = gzip.compress(text.encode(), mtime=0)
    path.write_bytes(packed[:int(len(packed) * keep)])
    return path


def lines_that_survive(path: Path) -> int:
    """How many complete lines a reader gets out of a truncated gzip file before it breaks."""
    count = 0
    with gzip.open(path, "rb") as stream:
        try:
            for _ in stream:
                count += 1
        except EOFError:
            pass
    return count


def listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))  # hidden temporary files included


def table_items(dynamodb, table: str) -> dict[str, dict]:
    items, request = {}, {"TableName": table}
    while True:
        page = dynamodb.scan(**request)
        for item in map(from_item, page["Items"]):
            items[item["book_id"] + "/" + item.get("user_id", "")] = item
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def assert_one_clear_line(result, *words: str) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "Aborted!" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.output
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


# 1, 2: broken compressed input -----------------------------------------------------------------------


RANDOM_BYTES = bytes(range(7, 256)) * 40  # no gzip magic number


@pytest.mark.parametrize("broken", ["truncated", "not gzip"])
def test_import_jsonl_of_a_broken_gzip_keeps_the_previous_output_and_rejects(tmp_path, broken):
    source = tmp_path / "books.jsonl.gz"
    text = "".join(book_line(n) for n in range(1, 3001)) + "{not json\n"
    if broken == "truncated":
        truncated_gzip(source, text)
    else:
        source.write_bytes(RANDOM_BYTES)
    out, rejects = tmp_path / "out.jsonl", tmp_path / "out.jsonl.import-rejects.jsonl"
    out.write_text("the previous output\n")
    rejects.write_text("the previous rejects\n")

    result = invoke("import-jsonl", source, "--out", out)

    if broken == "truncated":
        where = f"after line {lines_that_survive(source):,} ("
        line = assert_one_clear_line(result, str(source), where, "truncated", "nothing was written")
        assert 0 < lines_that_survive(source) < 3000
    else:
        line = assert_one_clear_line(result, str(source), "at its start", "not valid gzip data")
    assert f"({out} left as it was)" in line
    assert out.read_text() == "the previous output\n" and rejects.read_text() == "the previous rejects\n"
    assert listing(tmp_path) == ["books.jsonl.gz", "out.jsonl", "out.jsonl.import-rejects.jsonl"]


def test_extract_of_a_truncated_dump_writes_nothing(tmp_path, samples):
    works = truncated_gzip(tmp_path / "works.txt.gz", samples["works"].read_text(), keep=0.6)
    out = tmp_path / "books.jsonl"
    out.write_text("the previous output\n")
    result = invoke("extract", "--works", works, "--authors", samples["authors"], "--out", out)
    assert_one_clear_line(result, f"{works} is broken after line {lines_that_survive(works):,} (",
                          "nothing was written")
    assert out.read_text() == "the previous output\n"
    assert listing(tmp_path) == ["books.jsonl", "works.txt.gz"]


def truncated_ratings(tmp_path: Path) -> Path:
    rows = "user_id,book_id,rating\n" + "".join(f"{user},{user % 50 + 1},4\n" for user in range(1, 5000))
    return truncated_gzip(tmp_path / "ratings.csv.gz", rows)


def latin1_ratings(tmp_path: Path) -> Path:
    ratings = tmp_path / "ratings.csv"
    ratings.write_bytes(b"user_id,book_id,rating\n1,1,4\n2,2,5\n3,\xff\xfe,4\n")  # not UTF-8
    return ratings


@pytest.mark.parametrize("broken_ratings, why", [(truncated_ratings, "truncated"),
                                                 (latin1_ratings, "not UTF-8 text")])
def test_import_goodbooks_of_a_broken_ratings_file_replaces_neither_output(tmp_path, samples, broken_ratings,
                                                                          why):
    ratings = broken_ratings(tmp_path)
    books_out, ratings_out = tmp_path / "books.jsonl", tmp_path / "ratings.jsonl"
    books_out.write_text("previous books\n")
    ratings_out.write_text("previous ratings\n")
    result = invoke("import-goodbooks", "--books", samples["goodbooks_books"],
                    "--genres", samples["goodbooks_genres"], "--ratings", ratings,
                    "--books-out", books_out, "--ratings-out", ratings_out)
    assert_one_clear_line(result, f"{ratings} is broken ", why, "nothing was written")
    assert books_out.read_text() == "previous books\n" and ratings_out.read_text() == "previous ratings\n"
    assert listing(tmp_path) == sorted(["books.jsonl", ratings.name, "ratings.jsonl"])


def test_a_load_of_a_truncated_file_writes_what_was_read_and_resumes_with_the_complete_file(
        tables, dynamodb, tmp_path):
    text = "".join(book_line(n) for n in range(1, 2001))
    source = truncated_gzip(tmp_path / "books.jsonl.gz", text)
    survived = lines_that_survive(source)
    checkpoint = tmp_path / "books.jsonl.gz.checkpoint"

    result = invoke("load", source)

    assert_one_clear_line(result, f"{source} is broken after line {survived:,} (", "truncated",
                          f"its first {survived:,} lines are loaded (checkpoint {checkpoint})",
                          "with a complete copy of the file, run the same command again to load the rest")
    assert f"read {survived:,}, accepted {survived:,}, rejected 0, written {survived:,}" in result.output
    stored = table_items(dynamodb, tables["books"])
    assert sorted(stored) == sorted(f"OL{n}W/" for n in range(1, survived + 1))
    assert json.loads(checkpoint.read_text())["lines_done"] == survived

    source.write_bytes(gzip.compress(text.encode()))  # the complete download, under the same name
    resumed = invoke("load", source)
    assert resumed.exit_code == 0, resumed.output
    assert f"resumed after lines: {survived:,}" in resumed.output
    assert f"read {2000 - survived:,}, accepted {2000 - survived:,}" in resumed.output
    stored = table_items(dynamodb, tables["books"])
    assert len(stored) == 2000 and stored["OL2000W/"]["title"] == "Book 2000"
    assert not checkpoint.exists() and listing(tmp_path) == ["books.jsonl.gz"]


def test_a_load_of_random_bytes_named_gz_loads_nothing_and_leaves_no_checkpoint(tables, dynamodb, tmp_path):
    source = tmp_path / "books.jsonl.gz"
    source.write_bytes(RANDOM_BYTES)
    result = invoke("load", source)
    assert_one_clear_line(result, f"{source} is broken at its start: not valid gzip data",
                          "nothing of it was loaded")
    assert table_items(dynamodb, tables["books"]) == {} and listing(tmp_path) == ["books.jsonl.gz"]


# 3: each step's rejects are its own -----------------------------------------------------------------


def test_each_step_keeps_its_own_rejects_file(tables, dynamodb, tmp_path, samples):
    source = tmp_path / "source.jsonl"
    source.write_text(book_line(1) + "{not json\n" + book_line(2))
    books = tmp_path / "books.jsonl"
    assert invoke("import-jsonl", source, "--out", books).exit_code == 0
    import_rejects = tmp_path / "books.jsonl.import-rejects.jsonl"
    assert [json.loads(line)["line"] for line in import_rejects.read_text().splitlines()] == [2]

    works = tmp_path / "works.txt"
    works.write_text(samples["works"].read_text() + "/type/work\tbroken line\n")
    assert invoke("extract", "--works", works, "--out", books).exit_code == 0
    extract_rejects = tmp_path / "books.jsonl.extract-rejects.jsonl"
    assert [json.loads(line)["line"] for line in extract_rejects.read_text().splitlines()] == [36]

    with books.open("a") as out:  # a line the table refuses: a number beyond DynamoDB's range
        out.write(book_line(99, cover_id=1e300))
    result = invoke("load", books)
    assert result.exit_code == 0, result.output
    load_rejects = tmp_path / "books.jsonl.load-rejects.jsonl"
    refused, = map(json.loads, load_rejects.read_text().splitlines())
    assert refused["line"] == 36 and refused["reason"].startswith("refused by DynamoDB")
    assert refused["excerpt"].startswith('{"book_id": "OL99W"')  # the line, not an empty excerpt
    # The earlier steps' rejects are untouched.
    assert [json.loads(line)["line"] for line in import_rejects.read_text().splitlines()] == [2]
    assert [json.loads(line)["line"] for line in extract_rejects.read_text().splitlines()] == [36]
    assert len(table_items(dynamodb, tables["books"])) == 35


# 4: keys within DynamoDB's limits -------------------------------------------------------------------


def test_a_very_long_title_is_loaded_whole_with_its_index_key_cut(tables, dynamodb, tmp_path):
    title = "Über die Quellen " + " ".join(f"Kapitel {n} — Geschichte" for n in range(150))
    assert len(normalise_text(title).encode()) > 2048
    source = tmp_path / "source.jsonl"
    source.write_text(json.dumps({"book_id": "OL7W", "title": title, "authors": ["Someone"]}) + "\n")
    books = tmp_path / "books.jsonl"
    assert invoke("import-jsonl", source, "--out", books).exit_code == 0
    result = invoke("load", books)
    assert result.exit_code == 0 and "accepted 1, rejected 0" in result.output, result.output

    stored = table_items(dynamodb, tables["books"])["OL7W/"]
    assert stored["title"] == title
    assert len(stored["title_norm"].encode()) <= TITLE_KEY_BYTES
    assert normalise_text(title).startswith(stored["title_norm"])
    found = dynamodb.query(TableName=tables["books"], IndexName="title-prefix",
                           KeyConditionExpression="title_bucket = :b AND begins_with(title_norm, :p)",
                           ExpressionAttributeValues={":b": {"S": "u"}, ":p": {"S": "uber die quellen"}})
    assert [from_item(item)["book_id"] for item in found["Items"]] == ["OL7W"]
    assert not (tmp_path / "books.jsonl.load-rejects.jsonl").exists()


def test_a_rating_whose_index_key_is_no_timestamp_is_rejected_with_its_line(tables, dynamodb, tmp_path):
    rating = {"book_id": "OL1W", "user_id": "u1", "rating": 4, "created_at": STAMP}
    source = tmp_path / "ratings.jsonl"
    source.write_text(json.dumps({**rating, "updated_at": "x" * 1100}) + "\n"
                      + json.dumps({**rating, "user_id": "u2", "updated_at": "2021-02-03T04:05:06Z"}) + "\n")
    result = invoke("load", source)
    assert result.exit_code == 0, result.output
    assert "rejected 1 (updated_at is not an ISO-8601 timestamp: 1)" in result.output
    rejected, = map(json.loads, (tmp_path / "ratings.jsonl.load-rejects.jsonl").read_text().splitlines())
    assert rejected["line"] == 1 and rejected["excerpt"].startswith('{"book_id": "OL1W"')
    stored, = table_items(dynamodb, tables["ratings"]).values()
    assert (stored["user_id"], stored["updated_at"]) == ("u2", "2021-02-03T04:05:06.000000Z")


# 5: an author id is never a name --------------------------------------------------------------------


def test_author_ids_given_as_names_stay_ids(tables, dynamodb, tmp_path, samples):
    source = tmp_path / "source.jsonl"
    source.write_text(json.dumps({"book_id": "OL1W", "title": "T", "authors": [
        "OL3399168A", {"author_id": "OL1A", "name": "OL3399168A"}, {"name": "/authors/OL5A"},
        {"key": "/authors/OL7A", "name": "Real Name"}, "Plain Name", {"name": ""}]}) + "\n")
    books = tmp_path / "books.jsonl"
    assert invoke("import-jsonl", source, "--out", books).exit_code == 0
    expected = [{"author_id": "OL3399168A", "name": ""}, {"author_id": "OL1A", "name": ""},
                {"author_id": "OL5A", "name": ""}, {"author_id": "OL7A", "name": "Real Name"},
                {"name": "Plain Name"}]
    assert json.loads(books.read_text())["authors"] == expected
    assert invoke("load", books).exit_code == 0
    assert table_items(dynamodb, tables["books"])["OL1W/"]["authors"] == expected

    # The one such author in the real philosophy sample.
    real = tmp_path / "philosophy.jsonl"
    assert invoke("import-jsonl", samples["philosophy"], "--out", real).exit_code == 0
    by_id = {book["book_id"]: book for book in map(json.loads, real.read_text().splitlines())}
    assert by_id["OL112644W"]["authors"] == [{"author_id": "OL233017A", "name": ""}]


# 6: an all-types dump ------------------------------------------------------------------------------


def dump_line(kind: str, key: str, doc: dict) -> str:
    return "\t".join((kind, key, "1", "2020-01-01T00:00:00.000000", json.dumps({"key": key, **doc}))) + "\n"


OTHER_TYPES = [dump_line("/type/language", "/languages/eng", {"name": "English"}),
               dump_line("/type/page", "/about", {"title": "About"}),
               dump_line("/type/i18n", "/i18n/strings.fr", {"string": "x"}),
               dump_line("/type/language", "/languages/fre", {"name": "French"}),
               dump_line("/type/redirect", "/subjects/old", {"location": "/subjects/new"})]


@pytest.fixture
def all_types_dump(tmp_path, samples) -> Path:
    """The development-database dumps in one file, with other types, redirects and one malformed line."""
    lines = []
    for kind in ("editions", "authors", "works"):
        lines += samples[kind].read_text().splitlines(keepends=True)
    first_author = samples["authors"].read_text().split("\t")[1]
    lines[10:10] = OTHER_TYPES
    lines[50:50] = [dump_line("/type/redirect", "/authors/OL99999999A", {"location": first_author}),
                    dump_line("/type/delete", "/books/OL99999999M", {}),
                    "/type/work\t/works/OL99999998W\t1\t{\"title\": \"four columns\"}\n"]
    path = tmp_path / "ol_dump_all.txt.gz"
    path.write_bytes(gzip.compress("".join(lines).encode()))
    return path


def test_an_all_types_dump_is_read_once_for_every_dump_it_is_given_as(tmp_path, samples, all_types_dump):
    separate = tmp_path / "separate.jsonl"
    assert invoke("extract", "--works", samples["works"], "--authors", samples["authors"],
                  "--editions", samples["editions"], "--out", separate).exit_code == 0
    out = tmp_path / "books.jsonl"
    result = invoke("extract", "--works", all_types_dump, "--authors", all_types_dump,
                    "--editions", all_types_dump, "--out", out)
    assert result.exit_code == 0, result.output
    assert out.read_text() == separate.read_text()  # the same books as from three separate dumps
    rejected, = map(json.loads, (tmp_path / "books.jsonl.extract-rejects.jsonl").read_text().splitlines())
    assert (rejected["line"], rejected["reason"]) == (53, "wrong column count")
    assert ("authors+works+editions: read 145, accepted 137, rejected 1 (wrong column count: 1), skipped 7 "
            "(other type /type/language: 2, other type /type/page: 1, other type /type/i18n: 1, "
            "other type /type/redirect of /subjects/: 1, redirect: 1, delete: 1)") in result.output


def test_an_all_types_dump_as_works_only_counts_the_other_types_instead_of_rejecting_them(
        tmp_path, all_types_dump):
    out = tmp_path / "books.jsonl"
    result = invoke("extract", "--works", all_types_dump, "--out", out)
    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) == 35
    rejected, = map(json.loads, (tmp_path / "books.jsonl.extract-rejects.jsonl").read_text().splitlines())
    assert (rejected["line"], rejected["reason"]) == (53, "wrong column count")
    assert ("works: read 145, accepted 35, rejected 1 (wrong column count: 1), skipped 109 "
            "(other type /type/edition: 68, other type /type/author: 34, other type /type/language: 2, "
            "other type /type/page: 1, other type /type/i18n: 1, other type /type/redirect of /subjects/: 1, "
            "other type /type/redirect of /authors/: 1, other type /type/delete of /books/: 1)"
            ) in result.output


def test_an_output_that_cannot_be_written_is_one_line(tmp_path):
    source = tmp_path / "books.jsonl"
    source.write_text(book_line(1))
    blocker = tmp_path / "reports"
    blocker.write_text("a file where the output's folder should be\n")
    result = invoke("import-jsonl", source, "--out", blocker / "out.jsonl")
    assert_one_clear_line(result, str(blocker))
    assert listing(tmp_path) == ["books.jsonl", "reports"]
