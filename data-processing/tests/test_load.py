"""Loading into a real moto server: idempotent, and resumable after a crash."""

from __future__ import annotations

import json

import pytest

from bookrec_etl import load as load_module
from bookrec_etl.load import Checkpoint, load
from bookrec_etl.records import book


def write_books(path, n):
    with path.open("w") as out:
        for i in range(1, n + 1):
            out.write(json.dumps(book({"book_id": f"OL{i}W", "title": f"Book {i}"})) + "\n")


def table_state(dynamodb, table):
    items, request = [], {"TableName": table}
    while True:
        page = dynamodb.scan(**request)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            break
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return sorted(json.dumps(i, sort_keys=True) for i in items)


def test_loading_twice_leaves_the_same_table(tables, dynamodb, tmp_path):
    source = tmp_path / "books.jsonl"
    write_books(source, 120)
    first = load(dynamodb, tables["books"], source, writers=4)
    once = table_state(dynamodb, tables["books"])
    second = load(dynamodb, tables["books"], source, writers=4)
    assert len(once) == 120 and table_state(dynamodb, tables["books"]) == once
    assert first.calls == second.calls == 5  # ceil(120 / 25) round trips


def test_a_killed_load_resumes_from_its_checkpoint(tables, dynamodb, tmp_path, monkeypatch):
    source = tmp_path / "books.jsonl"
    write_books(source, 300)
    checkpoint = Checkpoint(tmp_path / "books.checkpoint")
    real_write = load_module._write_batch
    calls = {"n": 0}

    def crash_after_five(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 5:
            raise KeyboardInterrupt("killed")
        return real_write(*args, **kwargs)

    monkeypatch.setattr(load_module, "_write_batch", crash_after_five)
    with pytest.raises(KeyboardInterrupt):
        load(dynamodb, tables["books"], source, writers=1, checkpoint=checkpoint)
    done = checkpoint.read()
    assert 0 < done < 300
    monkeypatch.setattr(load_module, "_write_batch", real_write)
    report = load(dynamodb, tables["books"], source, writers=4, checkpoint=checkpoint)
    assert report.skipped_from_checkpoint == done and report.written == 300 - done
    assert len(table_state(dynamodb, tables["books"])) == 300
    assert not checkpoint.path.exists()
