"""Extract on two processes writes exactly what one process writes: books, rejects, counts and errors."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from bookrec_etl.cli import main
from bookrec_etl.extract import Dumps, Filters, extract
from bookrec_etl.progress import Progress
from bookrec_etl.report import Rejects
from bookrec_etl.sources import BrokenInput


def quiet(label, total, unit):
    return Progress(label, total, unit, interactive=False)


def with_bad_lines(source: Path, target: Path, bad: list[str]) -> Path:
    """The real dump with malformed lines between its own, gzip-compressed (as the real dumps are)."""
    lines = source.read_text().splitlines(keepends=True)
    for n, line in enumerate(bad):
        lines.insert(1 + 7 * n, line)
    target.write_bytes(gzip.compress("".join(lines).encode()))
    return target


@pytest.fixture
def dumps(tmp_path, samples) -> Dumps:
    """The development-database dumps and a ratings dump, each with bad lines of its own."""
    first = samples["works"].read_text().split("\t", 2)[1]  # a work of the dump, to redirect to
    works = with_bad_lines(samples["works"], tmp_path / "works.txt.gz",
                           ["/type/work\t/works/OL1W\t1\t2020-01-01\t{not json\n", "too\tfew\n",
                            '/type/delete\t/works/OL999999W\t3\t2021-01-01T00:00:00\t{"key": "/works/OL999999W"}\n',
                            f'/type/redirect\t/works/OL999998W\t2\t2021-01-01T00:00:00\t{{"location": "{first}"}}\n'])
    editions = with_bad_lines(samples["editions"], tmp_path / "editions.txt.gz",
                              ["/type/edition\t/books/OL9M\t1\t2020-01-01\t{\"works\": []}\n",
                               "/type/edition\t/books/OL8M\t1\t2020-01-01\t[]\n", "no tabs at all\n"])
    ratings = tmp_path / "ratings.txt"
    keys = [line.split("\t")[1] for line in samples["works"].read_text().splitlines()]
    rows = [f"{key}\t\t{1 + n % 5}\t2024-01-0{1 + n % 9}\n" for n, key in enumerate(keys * 3)]
    rows[4:4] = ["/works/OL1W\t\tfive\t2024-01-01\n", "short\n"]
    ratings.write_text("".join(rows))
    reading_log = tmp_path / "reading-log.txt"
    shelves = ("Want to Read", "Currently Reading", "Already Read")
    days = [(date.today() - timedelta(days=n)).isoformat() for n in range(3)]
    logged = [f"{key}\t\\N\t{shelves[n % 3]}\t{days[n % 3]}\n" for n, key in enumerate(keys * 2)]
    logged[3:3] = ["/works/OL2W\t\tLent Out\t2024-01-01\n"]
    reading_log.write_text("".join(logged))
    return Dumps(works, samples["authors"], editions, ratings, reading_log)


def run(tmp_path: Path, name: str, dumps: Dumps, processes: int, filters: Filters | None = None):
    out, rejects_path = tmp_path / f"{name}.jsonl", tmp_path / f"{name}.rejects.jsonl"
    with Rejects(rejects_path, atomic=True) as rejects:
        result = extract(dumps, out, rejects, filters or Filters(), workdir=tmp_path / name, progress=quiet,
                         processes=processes)
    return out.read_bytes(), rejects_path.read_bytes(), [report.summary() for report in result.reports]


def test_two_processes_write_the_same_books_rejects_and_counts_as_one(tmp_path, dumps):
    one = run(tmp_path, "one", dumps, processes=1)
    two = run(tmp_path, "two", dumps, processes=2)
    assert two == one
    books, rejects, summaries = two
    lines = [json.loads(line) for line in books.splitlines()]
    assert len(lines) == 35 + 2 and not any(line.get("book_id") == "OL1W" for line in lines)
    # the delete and redirect lines after every book, as one process writes them
    assert [line.get("title") is None for line in lines] == [False] * 35 + [True] * 2
    # one process's order: works' rejects, then editions', then ratings'
    assert [json.loads(line)["source"] for line in rejects.splitlines()] == \
        ["works.txt.gz"] * 2 + ["editions.txt.gz"] * 3 + ["ratings.txt"] * 2 + ["reading-log.txt"]
    assert [summary.split(":")[0] for summary in summaries] == \
        ["authors", "works", "editions", "ratings", "reading log", "books"]
    assert "rejected 3" in summaries[2] and "written 35" in summaries[5]
    assert all(sum(line["imported_shelf_counts"].values()) == 2 for line in lines[:35])


def test_two_processes_apply_the_filters_as_one(tmp_path, dumps):
    filters = Filters(languages=frozenset({"eng"}), min_ratings=2)
    assert run(tmp_path, "two", dumps, 2, filters) == run(tmp_path, "one", dumps, 1, filters)


def test_a_broken_editions_dump_read_by_the_helper_is_the_same_one_line_error(tmp_path, dumps):
    text = gzip.decompress(dumps.editions.read_bytes())
    broken = tmp_path / "broken-editions.txt.gz"
    broken.write_bytes(gzip.compress(text)[:len(gzip.compress(text)) // 2])
    errors = []
    for processes in (1, 2):
        out = tmp_path / f"out{processes}.jsonl"
        with pytest.raises(BrokenInput) as caught, Rejects(tmp_path / f"r{processes}.jsonl", atomic=True) as rejects:
            extract(Dumps(dumps.works, dumps.authors, broken, dumps.ratings), out, rejects, workdir=tmp_path,
                    progress=quiet, processes=processes)
        assert not out.exists()
        errors.append(str(caught.value))
    assert errors[0] == errors[1] and errors[0].startswith(f"{broken} is broken after line ")


def test_the_cli_on_two_processes_and_through_python_dash_m(tmp_path, dumps):
    """The helper is `python -m bookrec_etl.extract_helper`; `python -m bookrec_etl` runs the CLI once."""
    args = ["extract", "--works", str(dumps.works), "--authors", str(dumps.authors), "--editions",
            str(dumps.editions), "--ratings", str(dumps.ratings), "--reading-log", str(dumps.reading_log),
            "--workdir", str(tmp_path)]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "cli.jsonl"), "--processes", "2"])
    assert result.exit_code == 0, result.output
    module = subprocess.run([sys.executable, "-m", "bookrec_etl", *args, "--out", str(tmp_path / "m.jsonl"),
                             "--processes", "1"], capture_output=True, text=True, check=False)
    assert module.returncode == 0, module.stderr
    assert (tmp_path / "cli.jsonl").read_bytes() == (tmp_path / "m.jsonl").read_bytes()
    assert module.stderr.count("books: read 35") == 1


def test_more_than_two_processes_is_a_usage_error(tmp_path, dumps):
    result = CliRunner().invoke(main, ["extract", "--works", str(dumps.works), "--out", str(tmp_path / "o.jsonl"),
                                       "--processes", "3"])
    assert result.exit_code == 2 and "--processes" in result.output and not (tmp_path / "o.jsonl").exists()


def test_a_workdir_whose_name_a_uri_would_misread_is_read_by_the_helper(tmp_path, dumps):
    """The helper opens the workspace by a URI (read-only): '#', '?' and spaces in the path are escaped."""
    assert run(tmp_path, "odd #1? dir", dumps, 2) == run(tmp_path, "one", dumps, 1)
