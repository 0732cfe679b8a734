"""The bookrec-etl command line: help, each subcommand end to end, progress lines, the local stack's seed."""

from __future__ import annotations

import csv
import json
import logging
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from bookrec_catalog.dynamo import from_item
from bookrec_etl.cli import main
from bookrec_etl.progress import Progress
from bookrec_etl.seed import SEED_USERS, default_seed_dir, seed_files
from bookrec_local import definitions
from bookrec_local.procs import local_dynamodb, running_moto


@pytest.mark.parametrize("command, words", [
    ([], ["extract", "import-jsonl", "import-goodbooks", "load", "seed", "delete", "rejects"]),
    (["extract"], ["--works", "--authors", "--editions", "--ratings", "--language", "--min-ratings",
                   "--require-subjects", "--limit", "redirect"]),
    (["import-jsonl"], ["--out", "--rejects", "--limit", "thumbnail_url"]),
    (["import-goodbooks"], ["--books", "--genres", "--ratings", "--max-users", "GB<n>", "gb-<n>"]),
    (["load"], ["--books-table", "BOOKS_TABLE", "RATINGS_TABLE", "--writers", "--checkpoint",
                "AWS_ENDPOINT_URL"]),
    (["seed"], ["--size", "--books-table", "--ratings-table"]),
    (["delete"], ["--from", "--books-table", "BOOKS_TABLE", "tombstone", "ratings", "AWS_ENDPOINT_URL"]),
])
def test_every_subcommand_explains_itself(command, words):
    result = CliRunner().invoke(main, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    for word in words:
        assert word in result.output, word


def test_module_and_console_script_are_the_same_program():
    console_script = str(Path(sys.executable).with_name("bookrec-etl"))
    for program in ([sys.executable, "-m", "bookrec_etl"], [console_script]):
        result = subprocess.run([*program, "--help"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and "Usage: bookrec-etl" in result.stdout


def test_extract_through_the_cli_writes_books_rejects_and_a_summary(tmp_path, samples):
    works = tmp_path / "works.txt"
    works.write_text(samples["works"].read_text() + "/type/work\tbroken line\n")
    out = tmp_path / "books.jsonl"
    command = ["extract", "--works", str(works), "--authors", str(samples["authors"]),
               "--editions", str(samples["editions"]), "--language", "en", "--out", str(out)]
    CliRunner().invoke(main, command)
    result = CliRunner().invoke(main, command)  # a second run starts its rejects afresh
    assert result.exit_code == 0, result.output
    assert "works: read 36, accepted 35, rejected 1 (wrong column count: 1)" in result.output
    assert "MB/s" in result.output
    books = [json.loads(line) for line in out.read_text().splitlines()]
    assert books and all(book["language"] == "eng" for book in books)
    rejected, = map(json.loads, (tmp_path / "books.jsonl.extract-rejects.jsonl").read_text().splitlines())
    assert rejected["line"] == 36 and rejected["reason"] == "wrong column count"


def test_an_unknown_language_filter_is_a_usage_error(tmp_path, samples):
    result = CliRunner().invoke(main, ["extract", "--works", str(samples["works"]),
                                       "--language", "1", "--out", str(tmp_path / "b.jsonl")])
    assert result.exit_code == 2 and "--language" in result.output


def test_import_commands_through_the_cli(tmp_path, samples):
    result = CliRunner().invoke(main, ["import-jsonl", str(samples["philosophy"]),
                                       "--out", str(tmp_path / "p.jsonl"), "--limit", "10"])
    assert result.exit_code == 0 and "read 10, accepted 10, rejected 0" in result.output
    result = CliRunner().invoke(main, ["import-goodbooks",
                                       "--books", str(samples["goodbooks_books"]),
                                       "--genres", str(samples["goodbooks_genres"]),
                                       "--ratings", str(samples["goodbooks_ratings"]), "--max-users", "3",
                                       "--books-out", str(tmp_path / "b.jsonl"),
                                       "--ratings-out", str(tmp_path / "r.jsonl")])
    assert result.exit_code == 0, result.output
    assert "users: 3" in result.output and len((tmp_path / "b.jsonl").read_text().splitlines()) == 10_000


def test_without_a_terminal_progress_is_a_periodic_log_line(caplog, monkeypatch):
    monkeypatch.setattr("bookrec_etl.progress.LOG_EVERY_SECONDS", 0.0)
    with caplog.at_level(logging.INFO, logger="bookrec.etl"), \
            Progress("extract works", 2_000_000, "bytes", interactive=False) as bar:
        bar.advance(500_000, 1_000)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("extract works: 500.0 KB of 2.0 MB (25%)") and "1,000 records" in lines[0]
    assert "ETA" in lines[0] and lines[-1].endswith("(done)")


def test_the_seed_files_are_found_in_a_checkout_or_where_told(tmp_path, monkeypatch):
    assert all(path.is_file() for path in seed_files().values())
    assert default_seed_dir() == Path(__file__).resolve().parents[1] / "seed"
    monkeypatch.setenv("BOOKREC_SEED_DIR", str(tmp_path))
    assert seed_files()["works"] == tmp_path / "ol_devinstance_works.txt"
    result = CliRunner().invoke(main, ["seed", "--books-table", "b", "--ratings-table", "r"])
    assert result.exit_code == 1 and "seed files missing" in result.output


@pytest.fixture
def seed_emulator():
    """A moto server of its own: the seed's 24K items make an emulator slow to stop, so they stay out of the
    session's shared one, and this one is stopped for sure."""
    with running_moto() as moto:
        client = local_dynamodb(moto.endpoint)
        yield moto.endpoint, client, definitions.create_tables(client, "seedtest")
        client.close()


@pytest.mark.slow  # the whole sample seed through the ETL into the emulator: about a minute
def test_the_sample_seed_loads_every_bundled_book_with_exact_aggregates(seed_emulator, samples, open_sample):
    endpoint, dynamodb, tables = seed_emulator
    # The very command the local stack runs, with the table names and endpoint from the environment.
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "BOOKS_TABLE": tables["books"],
           "RATINGS_TABLE": tables["ratings"], "SHELVES_TABLE": tables["shelves"]}
    result = subprocess.run([sys.executable, "-m", "bookrec_etl", "seed", "--size", "sample"], env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert "seed (sample)" in result.stderr and "rejected 0" in result.stderr
    with open_sample(samples["goodbooks_ratings"]) as handle:
        rows = list(csv.DictReader(handle))
    users = list(dict.fromkeys(row["user_id"] for row in rows))[:SEED_USERS["sample"]]
    seeded = [row for row in rows if row["user_id"] in set(users)]
    count = {name: dynamodb.describe_table(TableName=name)["Table"]["ItemCount"] for name in tables.values()}
    assert count == {tables["books"]: 35 + 1893 + 10_000, tables["ratings"]: len(seeded), tables["shelves"]: 0}

    # A Scan of 12K items crawls in the emulator: check 60 rated books by key, and the ratings of five.
    per_book = Counter((f"GB{row['book_id']}", row["rating"]) for row in seeded)
    sample = random.Random(5).sample(sorted({book for book, _ in per_book}), 60)
    keys = [{"book_id": {"S": book_id}} for book_id in sample]
    got = dynamodb.batch_get_item(RequestItems={tables["books"]: {"Keys": keys}})
    books = [from_item(item) for item in got["Responses"][tables["books"]]]
    assert len(books) == 60
    for book in books:
        expected = {s: per_book.get((book["book_id"], s), 0) for s in "12345"}
        assert book["ratings_distribution"] == expected and book["rating_count"] == sum(expected.values())
    for book in books[:5]:  # a Query walks the whole table in the emulator: a few suffice
        stored = dynamodb.query(TableName=tables["ratings"], KeyConditionExpression="book_id = :b",
                                ExpressionAttributeValues={":b": {"S": book["book_id"]}})["Items"]
        from_table = Counter(str(from_item(r)["rating"]) for r in stored)
        expected = {s: per_book.get((book["book_id"], s), 0) for s in "12345"}
        assert book["ratings_distribution"] == expected == {s: from_table.get(s, 0) for s in "12345"}
        assert book["rating_count"] == len(stored)
        assert all(from_item(r)["user_id"].startswith("gb-") for r in stored)
