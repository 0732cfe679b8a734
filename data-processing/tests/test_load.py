"""Loading into a real moto server over HTTP: idempotent, resumable after a kill, retried, with rejects."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner

from bookrec_catalog.changes import change_shard
from bookrec_catalog.dynamo import from_item, to_item
from bookrec_etl.checkpoint import prefix_digest
from bookrec_etl.cli import main
from bookrec_etl.dynamodb import BACKOFF_BASE
from bookrec_etl.extract import Dumps, extract
from bookrec_etl.importers import import_goodbooks, import_jsonl
from bookrec_etl.load import Checkpoint, Loader, Tables, file_stamp, to_write
from bookrec_etl.progress import Progress
from bookrec_etl.report import Rejects


def quiet(label, total, unit):
    return Progress(label, total, unit, interactive=False)


@pytest.fixture(scope="module")
def real_books(tmp_path_factory, samples) -> Path:
    """The development-database works (extracted) and the philosophy sample (imported): 1,928 real books."""
    directory = tmp_path_factory.mktemp("real")
    dev, philosophy = directory / "dev.jsonl", directory / "philosophy.jsonl"
    dumps = Dumps(works=samples["works"], authors=samples["authors"], editions=samples["editions"])
    extract(dumps, dev, Rejects(None), progress=quiet)
    import_jsonl(samples["philosophy"], philosophy, Rejects(None), progress=quiet)
    books = directory / "books.jsonl"
    books.write_bytes(dev.read_bytes() + philosophy.read_bytes())
    return books


def head(source: Path, target: Path, lines: int) -> Path:
    with source.open("rb") as full:
        target.write_bytes(b"".join(line for _, line in zip(range(lines), full, strict=False)))
    return target


def table_state(dynamodb, table: str) -> list[str]:
    """Every item, without `changed_at`: the time of writing, the one value not from the file
    (test_changes.py checks it)."""
    items, request = [], {"TableName": table}
    while True:
        page = dynamodb.scan(**request)
        items += [json.dumps({k: v for k, v in from_item(item).items() if k != "changed_at"}, sort_keys=True)
                  for item in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return sorted(items)
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def expected_state(source: Path, tables: Tables) -> dict[str, list[str]]:
    """What the tables must hold after loading `source`: each key's last line, stored as the loader does."""
    final: dict[tuple, tuple[str, dict]] = {}
    stamp = file_stamp(source)
    for line in source.read_text().splitlines():
        table, key, record = to_write(json.loads(line), tables, stamp)
        if table == tables.books:
            record = {"imported_distribution": dict.fromkeys("12345", 0), **record,
                      "change_shard": change_shard(record["book_id"])}
        final[(table, *key)] = (table, record)
    state: dict[str, list[str]] = {}
    for table, record in final.values():
        state.setdefault(table, []).append(json.dumps(from_item(to_item(record)), sort_keys=True))
    return {table: sorted(items) for table, items in state.items()}


def loader(dynamodb, tables: dict[str, str], rejects: Rejects | None = None, writers: int = 4,
           **kwargs) -> Loader:
    return Loader(dynamodb, Tables(tables["books"], tables["ratings"]), rejects or Rejects(None), writers,
                  **kwargs)


def expected_books(source: Path, tables: dict[str, str]) -> list[str]:
    return expected_state(source, Tables(tables["books"], None))[tables["books"]]


def test_loading_twice_leaves_the_same_table(tables, dynamodb, real_books, tmp_path):
    source = head(real_books, tmp_path / "books.jsonl", 600)
    first = loader(dynamodb, tables).load(source, progress=quiet)
    once = table_state(dynamodb, tables["books"])
    second = loader(dynamodb, tables, writers=8).load(source, progress=quiet)
    assert once == table_state(dynamodb, tables["books"]) == expected_books(source, tables)
    assert len(once) == 600 and first.written == 600
    # 100 lines a batch: one BatchGetItem and one TransactWriteItems; the second run finds nothing changed
    assert first.calls == 2 * math.ceil(600 / 100) and first.retried == 0
    assert second.written == 0 and second.unchanged == 600
    assert second.calls == math.ceil(600 / 100)


def test_a_killed_load_resumes_to_the_same_final_table(tables, dynamodb, real_books, tmp_path):
    checkpoint = tmp_path / "books.checkpoint"
    command = [sys.executable, "-m", "bookrec_etl", "load", str(real_books), "--writers", "1",
               "--checkpoint", str(checkpoint), "--rejects", str(tmp_path / "rejects.jsonl")]
    victim = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and victim.poll() is None:
        if checkpoint.exists() and json.loads(checkpoint.read_text())["lines_done"] > 0:
            victim.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    assert victim.wait(30) == -signal.SIGKILL, "the load finished before it could be killed"
    done = json.loads(checkpoint.read_text())["lines_done"]
    total = len(real_books.read_text().splitlines())
    assert 0 < done < total and len(table_state(dynamodb, tables["books"])) < total

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed after lines: {done:,}" in resumed.stderr
    assert f"read {total - done:,}" in resumed.stderr and not checkpoint.exists()
    expected = expected_state(real_books, Tables(tables["books"], None))[tables["books"]]
    assert table_state(dynamodb, tables["books"]) == expected and len(expected) == total


def test_an_interrupted_load_keeps_its_checkpoint_and_the_rerun_completes(failing_after, tables, dynamodb, real_books,
                                                                          tmp_path):
    source = head(real_books, tmp_path / "books.jsonl", 1000)
    checkpoint_file = tmp_path / "books.checkpoint"
    checkpoint = Checkpoint(checkpoint_file)
    with pytest.raises(ConnectionError):
        loader(failing_after(dynamodb, 6), tables, writers=2).load(source, checkpoint, progress=quiet)
    saved = checkpoint.read(Tables(tables["books"], tables["ratings"]))
    assert saved is not None
    done = saved.lines_done
    assert 0 < done <= 6 * 100
    report = loader(dynamodb, tables).load(source, checkpoint, progress=quiet)
    assert report.notes["resumed after lines"] == done and report.read == 1000 - done
    assert table_state(dynamodb, tables["books"]) == expected_books(source, tables)
    assert not checkpoint_file.exists()


def test_a_checkpoint_of_other_tables_or_other_lines_is_not_trusted(tables, dynamodb, real_books, tmp_path):
    source = head(real_books, tmp_path / "books.jsonl", 100)
    checkpoint_file = tmp_path / "books.checkpoint"
    checkpoint = Checkpoint(checkpoint_file)
    same_tables = Tables(tables["books"], tables["ratings"])
    other_lines = real_books.read_bytes().splitlines(keepends=True)[100:125]  # 25 lines of other books
    digest = prefix_digest()
    for line in other_lines:
        digest.update(line)
    checkpoint.write(tmp_path / "other.jsonl", same_tables, 25, digest.hexdigest())
    report = loader(dynamodb, tables).load(source, checkpoint, progress=quiet)
    assert report.read == 100 and "resumed after lines" not in report.notes
    assert table_state(dynamodb, tables["books"]) == expected_books(source, tables)

    checkpoint.write(source, Tables("other-books", None), 90, "0" * 32)
    report = loader(dynamodb, tables).load(source, checkpoint, progress=quiet)
    assert report.read == 100 and not checkpoint_file.exists()


class Throttled:
    """The real client, but the first `times` BatchGetItems answer only half of the keys and hand the rest
    back as UnprocessedKeys, and the first `times` TransactWriteItems are cancelled by a conflicting
    transaction, as DynamoDB does under load (moto never does)."""

    def __init__(self, client, times: int) -> None:
        self.client, self.times = client, times
        self.reads = self.writes = self.handed_back = 0

    def batch_get_item(self, RequestItems):
        self.reads += 1
        if self.reads > self.times:
            return self.client.batch_get_item(RequestItems=RequestItems)
        (table, request), = RequestItems.items()
        half = len(request["Keys"]) // 2
        first_half = {table: {**request, "Keys": request["Keys"][:half]}}
        answered = self.client.batch_get_item(RequestItems=first_half)
        self.handed_back += len(request["Keys"]) - half
        return {**answered, "UnprocessedKeys": {table: {**request, "Keys": request["Keys"][half:]}}}

    def transact_write_items(self, TransactItems, **kwargs):
        self.writes += 1
        if self.writes > self.times:
            return self.client.transact_write_items(TransactItems=TransactItems, **kwargs)
        raise ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                           "CancellationReasons": [{"Code": "TransactionConflict"}] * len(TransactItems)},
                          "TransactWriteItems")


def test_unprocessed_keys_and_cancelled_transactions_are_retried_with_backoff(tables, dynamodb, real_books,
                                                                             tmp_path):
    source = head(real_books, tmp_path / "books.jsonl", 60)
    throttled = Throttled(dynamodb, times=3)
    delays: list[float] = []
    report = loader(throttled, tables, writers=1, sleep=delays.append).load(source, progress=quiet)
    assert report.written == 60 and throttled.handed_back > 0
    assert report.retried == 3 * 60  # each cancelled transaction is read, planned and sent again whole
    assert throttled.writes == 4 and report.calls == 4 + 4  # a read (answered once whole) and a write each
    assert len(delays) == 6  # three handed-back reads, three cancelled writes
    assert all(0 <= d <= BACKOFF_BASE * 2 ** 3 for d in delays)
    assert table_state(dynamodb, tables["books"]) == expected_books(source, tables)


def test_bad_lines_are_rejected_with_their_line_numbers_and_the_rest_is_written(tables, dynamodb, tmp_path):
    book = {"book_id": "OL1W", "title": "Fine", "created_at": "2020-01-01T00:00:00.000000Z"}
    rating = {"book_id": "GB1", "user_id": "gb-1", "rating": 4, "created_at": "2020-01-01T00:00:00.000000Z"}
    lines = [json.dumps(book), "{oops", "", json.dumps([1]), json.dumps({"book_id": "OL2W"}),
             json.dumps({"book_id": "XX9", "title": "Bad id"}), json.dumps({**rating, "rating": 9}),
             json.dumps({**rating, "user_id": "has space"}),
             json.dumps({**book, "description": "x" * 500_000}),
             json.dumps(rating)]
    source = tmp_path / "mixed.jsonl"
    source.write_text("\n".join(lines) + "\n")
    with Rejects(tmp_path / "rejects.jsonl") as rejects:
        report = loader(dynamodb, tables, rejects).load(source, progress=quiet)
    rejects_file = (tmp_path / "rejects.jsonl").read_text().splitlines()
    rejected = [(r["line"], r["reason"]) for r in map(json.loads, rejects_file)]
    assert rejected == [(2, "invalid JSON"), (3, "empty line"), (4, "not a JSON object"),
                        (5, "missing title"),
                        (6, "missing or malformed book_id"), (7, "rating is not an integer 1..5"),
                        (8, "missing or malformed user_id"), (9, "item larger than DynamoDB's 400 KB limit")]
    assert (report.read, report.accepted, report.written) == (10, 2, 2)
    stored_book, = map(json.loads, table_state(dynamodb, tables["books"]))
    assert stored_book["title_norm"] == "fine" and stored_book["rating_count"] == 0  # derived at load
    assert [json.loads(r)["rating"] for r in table_state(dynamodb, tables["ratings"])] == [4]


def test_the_last_line_of_a_repeated_key_wins_even_with_concurrent_writers(tables, dynamodb, tmp_path):
    lines = []
    for version in range(6):
        lines += [json.dumps({"book_id": f"OL{n}W", "title": f"Book {n} v{version}"}) for n in range(1, 41)]
    source = tmp_path / "repeated.jsonl"
    source.write_text("\n".join(lines) + "\n")
    report = loader(dynamodb, tables, writers=8).load(source, progress=quiet)
    assert report.written == 240
    titles = {json.loads(i)["title"] for i in table_state(dynamodb, tables["books"])}
    assert titles == {f"Book {n} v5" for n in range(1, 41)}


def test_goodbooks_books_and_ratings_agree_inside_dynamodb(tables, dynamodb, tmp_path, samples):
    books_all, ratings = tmp_path / "books_all.jsonl", tmp_path / "ratings.jsonl"
    import_goodbooks(samples["goodbooks_books"], samples["goodbooks_genres"], samples["goodbooks_ratings"],
                     books_all, ratings, Rejects(None), max_users=15, progress=quiet)
    rated = {json.loads(line)["book_id"] for line in ratings.read_text().splitlines()}
    books = tmp_path / "books.jsonl"
    books.write_text("".join(line + "\n" for line in books_all.read_text().splitlines()
                             if json.loads(line)["book_id"] in rated))
    # Tables from BOOKS_TABLE and RATINGS_TABLE, which the `tables` fixture exports.
    result = CliRunner().invoke(main, ["load", str(books), str(ratings)])
    assert result.exit_code == 0, result.output
    assert f"load books.jsonl: read {len(rated):,}" in result.output and "round trips" in result.output
    stored_ratings = [json.loads(r) for r in table_state(dynamodb, tables["ratings"])]
    per_book = Counter((r["book_id"], str(r["rating"])) for r in stored_ratings)
    stored_books = [json.loads(b) for b in table_state(dynamodb, tables["books"])]
    assert len(stored_books) == len(rated) and stored_ratings
    for book in stored_books:
        distribution = {s: per_book.get((book["book_id"], s), 0) for s in "12345"}
        assert book["ratings_distribution"] == distribution
        assert book["rating_sum"] == sum(int(s) * n for s, n in distribution.items())
        assert book["rating_count"] == sum(distribution.values()) > 0
    assert all(isinstance(r["user_id"], str) for r in stored_ratings)


def test_load_without_a_table_for_its_lines_stops_with_a_clear_message(dynamodb, tmp_path, monkeypatch):
    monkeypatch.delenv("BOOKS_TABLE", raising=False)
    monkeypatch.delenv("RATINGS_TABLE", raising=False)
    source = tmp_path / "books.jsonl"
    source.write_text(json.dumps({"book_id": "OL1W", "title": "T"}) + "\n")
    result = CliRunner().invoke(main, ["load", str(source)])
    assert result.exit_code == 1 and "no books table" in result.output and "--books-table" in result.output


def test_cli_env_defaults_name_the_tables(tables, monkeypatch):
    assert os.environ["BOOKS_TABLE"] == tables["books"]
    assert Tables.from_env() == Tables(tables["books"], tables["ratings"], tables["shelves"])
    assert Tables.from_env("x-books") == Tables("x-books", tables["ratings"], tables["shelves"])
    assert Tables.from_env(shelves="x-shelves").shelves == "x-shelves"
    monkeypatch.delenv("SHELVES_TABLE")
    assert Tables.from_env().shelves is None
