"""Re-imports beside readers, on the whole local stack and through its ALB: the ETL's monthly job keeps what
readers rated, and the stack's aggregates reconcile with its ratings table, also after concurrent raters."""

from __future__ import annotations

import gzip
import json
import os
import random
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from bookrec_local.identity import bearer
from bookrec_local.procs import LOCAL_AWS_ENV

pytestmark = pytest.mark.e2e

BOOK = "OL827357W"  # Zen and the Art of Motorcycle Maintenance, seeded from the philosophy sample
SEED = Path(__file__).resolve().parents[1] / "data-processing" / "seed"


def etl(stack, *args) -> subprocess.CompletedProcess:
    """The ETL's command line against the stack's tables, as an operator runs it."""
    env = {**os.environ, **LOCAL_AWS_ENV, "AWS_ENDPOINT_URL": stack.aws_endpoint,
           **{name: stack.env[name] for name in ("BOOKS_TABLE", "RATINGS_TABLE", "SHELVES_TABLE")}}
    return subprocess.run([sys.executable, "-m", "bookrec_etl", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=300)


def reconcile(stack) -> list[str]:
    """`bookrec-etl reconcile` over every book of the stack (rating aggregates and shelf counts): its report,
    after checking it found no drift of either."""
    result = etl(stack, "reconcile")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[-2:] == ["drift: none", "shelf drift: none"], lines
    return lines


def monthly_source(tmp_path: Path, **changes) -> Path:
    """The book's row of the philosophy JSONL the stack was seeded from, with `changes`: the next dump."""
    with gzip.open(SEED / "philosophy_books_openlibrary.jsonl.gz", "rt", encoding="utf-8") as rows:
        row = next(json.loads(line) for line in rows if f'"/works/{BOOK}"' in line)
    source = tmp_path / "monthly.jsonl"
    source.write_text(json.dumps({**row, **changes}) + "\n")
    return source


def reimport(stack, tmp_path: Path, **changes) -> subprocess.CompletedProcess:
    books = tmp_path / "books.jsonl"
    imported = etl(stack, "import-jsonl", monthly_source(tmp_path, **changes), "--out", books)
    assert imported.returncode == 0, imported.stderr
    loaded = etl(stack, "load", books)
    assert loaded.returncode == 0, loaded.stderr
    return loaded


def test_the_seeded_stack_reconciles_with_no_drift(local_stack):
    head = reconcile(local_stack)[0]
    books, ratings = (int(head.split(" books checked")[0].rsplit(" ", 1)[-1].replace(",", "")),
                      int(head.split(" ratings counted")[0].rsplit(" ", 1)[-1].replace(",", "")))
    assert books > 10_000 and ratings > 10_000, head


def test_a_reimport_keeps_the_readers_rating_in_the_totals(local_stack, alb, stack_user, tmp_path):
    reader = stack_user("e2e-reimport-reader")
    rated = alb.post(f"/books/{BOOK}/rate", json={"rating": 5}, headers=bearer(reader))
    assert rated.status_code == 201, rated.text
    before = alb.get(f"/books/{BOOK}/ratings", params={"limit": 100}).json()
    assert reader["sub"] in {r["user_id"] for r in before["ratings"]}

    # The monthly job: the same book, a new subtitle and, from the replaced system, 10 ratings averaging 4.2
    # that have no individual ratings behind them.
    monthly = {"subtitle": "An Inquiry into Values", "avg_rating": 4.2, "rating_count": 10}
    loaded = reimport(local_stack, tmp_path, **monthly)
    assert "written 1" in loaded.stderr
    after = alb.get(f"/books/{BOOK}/ratings", params={"limit": 100}).json()
    assert after["total_ratings"] == before["total_ratings"] + 10  # the reader's rating still counted
    assert after["ratings_distribution"]["5"] >= 1
    assert reader["sub"] in {r["user_id"] for r in after["ratings"]}
    detail = alb.get(f"/books/{BOOK}").json()
    assert detail["subtitle"] == "An Inquiry into Values" and detail["rating_count"] == after["total_ratings"]
    reconcile(local_stack)
    one = etl(local_stack, "reconcile", "--book", BOOK)
    assert one.returncode == 0 and one.stdout.startswith("reconcile: 1 book checked"), one.stdout + one.stderr

    # Next month, nothing new: nothing written, the totals as they were.
    again = reimport(local_stack, tmp_path, **monthly)
    assert "written 0, unchanged 1" in again.stderr
    assert alb.get(f"/books/{BOOK}/ratings").json()["total_ratings"] == after["total_ratings"]


def test_concurrent_raters_beside_a_reimport_leave_no_drift(local_stack, alb, stack_user, tmp_path):
    books = [BOOK, "GB21", "GB22", "GB23"]
    readers = [stack_user(f"e2e-concurrent-{n}") for n in range(4)]
    failures: list[str] = []
    done = []

    def rater(reader: dict[str, str], seed: int) -> None:
        chance = random.Random(seed)
        with httpx.Client(base_url=local_stack.alb_url, timeout=60) as client:
            for _ in range(12):
                book = chance.choice(books)
                if chance.random() < 0.2:
                    response = client.delete(f"/books/{book}/ratings/{reader['sub']}", headers=bearer(reader))
                    expected = {204, 404}  # 404: the other thread of this reader got there first, or none yet
                else:
                    response = client.post(f"/books/{book}/rate", json={"rating": chance.randint(1, 5)},
                                           headers=bearer(reader))
                    expected = {200, 201}
                if response.status_code not in expected:
                    failures.append(f"{response.request.method} {response.request.url.path}: "
                                    f"{response.status_code} {response.text}")
        done.append(seed)

    threads = [threading.Thread(target=rater, args=(reader, 2 * n + copy))
               for n, reader in enumerate(readers) for copy in range(2)]  # two threads per reader
    for thread in threads:
        thread.start()
    # Meanwhile the ETL re-imports the book twice, its imported figure moving each time.
    for count in (30, 12):
        reimport(local_stack, tmp_path, avg_rating=3.5, rating_count=count)
    for thread in threads:
        thread.join(timeout=300)
    assert len(done) == len(threads) and not failures, failures
    reconcile(local_stack)
    imported = alb.get(f"/books/{BOOK}/ratings", params={"limit": 100}).json()
    assert imported["total_ratings"] == 12 + len(imported["ratings"])  # the imported part, then one per row
