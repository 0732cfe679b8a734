"""`load` says what it will cost before it starts: units and dollars on DynamoDB on demand, from a sample."""

from __future__ import annotations

import gzip
import json
import os

import pytest
from click.testing import CliRunner

from bookrec_etl.cli import main
from bookrec_etl.estimate import Estimate, estimate_file, item_bytes
from bookrec_etl.load import Tables, file_stamp, to_write
from bookrec_etl.plans import plan_book


def books(n: int, title=lambda i: f"Book {i}", **extra) -> str:
    return "".join(json.dumps({"book_id": f"OL{i}W", "title": title(i), **extra}) + "\n" for i in range(1, n + 1))


def test_the_line_reads_as_units_and_dollars():
    line = Estimate(1_000_000, 0, 1_000_000, 4_000_000, True, 0).line()
    assert line.startswith("estimate: 1,000,000 books → ≤ 1.0M read units, ≤ 4.0M write units, ≤ $2.63 on demand")


def test_a_small_file_is_counted_whole_and_each_book_costs_a_read_and_four_writes(tmp_path):
    source = tmp_path / "books.jsonl"
    source.write_text(books(1000) + "not json\n")
    found = estimate_file(source)
    assert (found.books, found.ratings, found.read_units, found.write_units, found.counted) == (1000, 0, 1000, 4000,
                                                                                                True)
    assert found.dollars == pytest.approx(1000 * 0.125e-6 + 4000 * 0.625e-6)
    assert found.line().startswith("estimate: 1,000 books → ≤ 1,000 read units, ≤ 4,000 write units, ≤ $0.01")


def test_item_sizes_are_those_of_the_items_the_load_writes(tmp_path):
    """A book of 1.5 KB is two kilobytes of write units on the table and on each of its two indexes."""
    source = tmp_path / "books.jsonl"
    source.write_text(books(10, description="x" * 1500))
    _, _, record = to_write(json.loads(source.read_text().splitlines()[0]), Tables("b", "r"), file_stamp(source))
    action = plan_book("b", record, None, "2026-01-01T00:00:00.000000Z").action
    assert action is not None
    item = action["Put"]["Item"]
    assert 1500 < item_bytes(item) <= 2048
    assert estimate_file(source).write_units == 10 * (2 * 2 + 2 * 2)


def test_rating_lines_of_one_book_share_a_guard_per_batch(tmp_path):
    source = tmp_path / "ratings.jsonl"
    rows = [{"book_id": f"OL{book}W", "user_id": f"u{n}", "rating": 4, "created_at": "2024-01-01T00:00:00Z"}
            for book in (1, 2, 3) for n in range(100)]
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    found = estimate_file(source)
    assert (found.books, found.ratings) == (0, 300)
    assert (found.read_units, found.write_units) == (300 + 3, 4 * 300 + 2 * 3)  # 3 batches, one book each
    assert found.line().startswith("estimate: 300 ratings → ")


@pytest.mark.parametrize("compressed", [False, True])
def test_a_large_file_is_estimated_from_its_first_megabytes(tmp_path, compressed):
    text = books(60_000, title=lambda i: os.urandom(48).hex())  # ~10 MB that gzip cannot shrink much
    source = tmp_path / ("books.jsonl.gz" if compressed else "books.jsonl")
    source.write_bytes(gzip.compress(text.encode(), 1) if compressed else text.encode())
    found = estimate_file(source)
    assert not found.counted and found.books == pytest.approx(60_000, rel=0.05)
    assert found.read_units == pytest.approx(60_000, rel=0.05) and found.write_units == pytest.approx(240_000, rel=0.05)
    assert found.line().startswith(f"estimate: ~{found.books:,} books (from the first ")


def test_load_prints_the_estimate_before_it_writes(tables, tmp_path):
    source = tmp_path / "books.jsonl"
    source.write_text(books(3))
    result = CliRunner().invoke(main, ["load", str(source)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    estimate = next(n for n, line in enumerate(lines) if line.startswith("estimate: "))
    summary = next(n for n, line in enumerate(lines) if line.startswith("load books.jsonl: "))
    assert estimate < summary
    assert lines[estimate].startswith("estimate: 3 books → ≤ 3 read units, ≤ 12 write units, ≤ $0.01 on demand")
    assert "written 3" in lines[summary]


def test_delete_and_redirect_lines_count_their_book_and_its_tombstone(tmp_path):
    source = tmp_path / "books.jsonl"
    lifecycle = [{"book_id": "OL7W", "deleted": True}, {"book_id": "OL8W", "redirect_to": "OL1W"}]
    source.write_text(books(2) + "".join(json.dumps(line) + "\n" for line in lifecycle))
    found = estimate_file(source)
    assert (found.books, found.others, found.read_units, found.write_units) == (2, 2, 2 + 2, 2 * 4 + 2 * 3)
    assert found.line().startswith("estimate: 2 books and 2 delete or redirect lines → ≤ 4 read units, ")
