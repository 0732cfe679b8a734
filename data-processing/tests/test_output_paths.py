"""No step writes over its own input: an output path (given or default) that is an input file, once symlinks,
relative parts and hard links are seen through, or that is another output of the step, is one line, exit 1,
and nothing written or deleted."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from bookrec_etl.cli import main

BOOK = json.dumps({"book_id": "OL1W", "title": "One"}) + "\n"


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `directory` (links as their targets): its bytes and modification time."""
    return {str(p.relative_to(directory)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture
def workdir(tmp_path, monkeypatch, samples) -> Path:
    """A working directory holding inputs of every step, the current directory of the command."""
    (tmp_path / "books.jsonl").write_text(BOOK)
    for name in ("other.jsonl", "books.jsonl.load-rejects.jsonl", "progress.tmp"):
        (tmp_path / name).write_text(BOOK)
    (tmp_path / "sub").mkdir()
    os.symlink(tmp_path / "books.jsonl", tmp_path / "link.jsonl")
    os.link(tmp_path / "books.jsonl", tmp_path / "hard.jsonl")
    for name in ("works", "authors", "goodbooks_books", "goodbooks_genres", "goodbooks_ratings"):
        shutil.copy(samples[name], tmp_path / samples[name].name)
    (tmp_path / "seed").mkdir()
    for path in {k: v for k, v in samples.items() if k != "authors_dump"}.values():
        shutil.copy(path, tmp_path / "seed" / path.name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


GOODBOOKS = ["import-goodbooks", "--books", "goodbooks10k_books.csv.gz", "--genres",
             "goodbooks10k_book_genres.csv.gz", "--ratings", "goodbooks_ratings_sample.csv.gz"]
CASES = {
    "load --rejects is the source": (["load", "books.jsonl", "--rejects", "books.jsonl"], "input"),
    "load --rejects through ./sub/..": (["load", "books.jsonl", "--rejects", "./sub/../books.jsonl"],
                                        "input"),
    "load --checkpoint a symlink to the source": (["load", "books.jsonl", "--checkpoint", "link.jsonl"],
                                                  "input"),
    "load --checkpoint a hard link to the source": (["load", "books.jsonl", "--checkpoint", "hard.jsonl"],
                                                     "input"),
    "load --rejects another source": (["load", "books.jsonl", "other.jsonl", "--rejects", "other.jsonl"],
                                      "input"),
    "load default rejects of one source is another": (
        ["load", "books.jsonl", "books.jsonl.load-rejects.jsonl"], "input"),
    "load --checkpoint's temporary file is the source": (
        ["load", "progress.tmp", "--checkpoint", "progress"], "input"),
    "load --checkpoint and --rejects one file": (
        ["load", "books.jsonl", "--checkpoint", "c.json", "--rejects", "sub/../c.json"], "same"),
    "import-jsonl --out is the source": (["import-jsonl", "books.jsonl", "--out", "link.jsonl"], "input"),
    "import-jsonl --rejects is the source": (
        ["import-jsonl", "books.jsonl", "--out", "out.jsonl", "--rejects", "hard.jsonl"], "input"),
    "extract --out is --works": (["extract", "--works", "ol_devinstance_works.txt", "--out",
                                  "./ol_devinstance_works.txt"], "input"),
    "extract --rejects is --authors": (["extract", "--works", "ol_devinstance_works.txt", "--authors",
                                        "ol_devinstance_authors.txt", "--out", "out.jsonl", "--rejects",
                                        "ol_devinstance_authors.txt"], "input"),
    "import-goodbooks --ratings-out is --ratings": (
        [*GOODBOOKS, "--books-out", "b.jsonl", "--ratings-out", "goodbooks_ratings_sample.csv.gz"], "input"),
    "import-goodbooks --books-out is --ratings-out": (
        [*GOODBOOKS, "--books-out", "b.jsonl", "--ratings-out", "sub/../b.jsonl"], "same"),
    "seed --rejects is a seed file": (
        ["seed", "--seed-dir", "seed", "--rejects", "seed/goodbooks10k_books.csv.gz"], "input"),
}


@pytest.mark.parametrize("args, clash", CASES.values(), ids=CASES.keys())
def test_an_output_that_is_an_input_is_refused_and_nothing_changes(tables, dynamodb, workdir, args, clash):
    before = snapshot(workdir)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    message = result.output.strip()
    assert message.count("\n") == 0 and message.startswith("Error: ")
    assert ("refusing to write over an input" if clash == "input" else "are the same file") in message
    assert message.endswith("nothing was written")
    assert snapshot(workdir) == before  # nothing written, nothing deleted
    assert dynamodb.scan(TableName=tables["books"])["Items"] == []


def test_distinct_outputs_beside_the_inputs_are_fine(tables, workdir):
    result = CliRunner().invoke(main, ["load", "books.jsonl", "--checkpoint", "sub/books.checkpoint",
                                       "--rejects", "sub/rejects.jsonl"])
    assert result.exit_code == 0, result.output
