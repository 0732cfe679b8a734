"""The recommendation make targets of the README run as written, at their smallest size, and print their
figures; and the evaluation's own protocol pieces."""

from __future__ import annotations

import gzip
import json
import re

import numpy as np
import pytest

from bench.recommendation.evaluate import (
    evaluation_catalogue,
    goodbooks_books,
    holdout,
    load,
    matrices,
    neighbour_model,
    seed_files,
    service_similar,
)
from bench.tests.makes import make

MODELS = ["popularity", "replaced: dense user-user cosine", "item-item cosine (top-50)",
          "neighbour linear (K=100, λ=25)"]
TIMED = r"p50\s+\d+\.\d{3} ms\s+p99\s+\d+\.\d{3} ms\s+\(n=\d+\)"


@pytest.mark.slow
def test_make_evaluate_prints_and_writes_every_model_s_quality(tmp_path):
    out = make("evaluate",
               f"EVALUATE_ARGS=--users 300 --regularisation 25 --out {tmp_path / 'evaluation.json'}")
    assert re.search(r"ratings: [\d,]+  users: 300  books: [\d,]+  holdout: 20% per user, seed 42; "
                     r"λ chosen on validation: 25 \(\{25\.0: \d\.\d{4}\}\)", out)
    for model in MODELS:  # P@10 R@10 NDCG@10 MAP@10, coverage, ×popularity, build seconds
        figures = r"\d\.\d{4}\s+" * 4 + r"\d\.\d{3}\s+\d+\.\d\d\s+\d+\.\d\d$"
        assert re.search(rf"^{re.escape(model)}\s+" + figures, out, re.MULTILINE), model
    report = json.loads((tmp_path / "evaluation.json").read_text())
    assert list(report["results"]) == MODELS and report["protocol"]["chosen_regularisation"] == 25
    assert all(row["users"] > 0 and 0 < row["ndcg"] <= 1 for row in report["results"].values())


@pytest.mark.slow
def test_make_bench_reco_prints_build_latency_and_redis_figures_at_both_scales():
    out = make("bench-reco", "RECO_SCALE=1",
               "RECO_ARGS=--users 200 --scale-ratings 20000 --scale-books 2000")
    assert re.search(r"\[goodbooks\] ratings [\d,]+  books [\d,]+  build \d+\.\d s "
                     r"\(CPU \d+\.\d s, load .+\)  model \d+\.\d MiB  peak RSS \d+ MB "
                     r"\(\+-?\d+ MB over the \d+ MB before the build\)", out)
    assert re.search(r"\[goodbooks\] miss \(score \+ rank \+ explain 100\):\s+" + TIMED, out)
    assert re.search(r"\[goodbooks\] miss, CPU time only:\s+" + TIMED, out)
    tenth = re.findall(r"^\s+10\. .+ \d\.\d\d from\s+\d+ ratings$", out, re.MULTILINE)
    assert len(tenth) == 2  # both popularity rankings, the previous and the current
    assert re.search(r"\[goodbooks\] cache hit \(Redis GET \+ decode of 100 items\): " + TIMED, out)
    assert re.search(r"the popularity list is [\d,]+ bytes; before, each id cost Redis [\d,]+ bytes "
                     r"for 600 s", out)
    assert re.search(r"\[goodbooks\] replaced system's miss \(dense user-user per request\): " + TIMED, out)
    synthetic = r"\[synthetic 2K books / 0\.02M ratings\]"
    assert re.search(synthetic + r" generated in \d+\.\d s", out)
    assert re.search(synthetic + r" ratings 20,000  books [\d,]+  build \d+\.\d s", out)
    assert re.search(synthetic + r" miss, CPU time only:\s+" + TIMED, out)


@pytest.mark.slow
def test_make_bench_fleet_prints_the_recommender_s_start_and_reads(bench_fleet_output):
    out = bench_fleet_output
    assert re.search(r"model from [\d,]+ ratings, [\d,]+ books built in \d+\.\d s .*artifact "
                     r"\d+\.\d MiB", out)
    assert re.search(r"replica app start to /ready 200: \d+\.\d\d s; table items it scanned: 0;", out)
    assert re.search(r"parts: manifest GET \d+ ms; payload GET \d+ ms; SHA-256 \d+ ms; "
                     r"decode \(artifact\.load\) \d+ ms", out)
    assert re.search(r"app start to /ready 200: \d+\.\d s, [\d,]+ items scanned = [\d,]+ items/s", out)
    assert re.search(r"N=1: interval 1: builder outcomes \{'published': 1\}; builders' items read [\d,]+ = "
                     r"1\.00 full-table reads", out)
    # Ratings were written before the second interval: it builds again.
    assert re.search(r"N=1: interval 2: builder outcomes \{'published': 1\}", out)
    assert re.search(r"N=1: builders 1\.00 full-table reads per interval at most .* "
                     r"the 1 replica\(s\) read 0 table items", out)


def test_holdout_takes_the_fraction_of_each_user():
    users = np.repeat(np.arange(5), 10)
    held = holdout(users, 0.2, np.random.default_rng(1), np.ones(len(users), dtype=bool))
    assert all(held[users == u].sum() == 2 for u in range(5))


def test_a_quick_run_keeps_the_whole_history_of_the_lowest_users(tmp_path):
    ratings = tmp_path / "ratings.csv.gz"
    rows = [(7, 100, 4), (3, 100, 5), (9, 101, 2), (3, 102, 1), (5, 101, 3), (7, 103, 5)]
    with gzip.open(ratings, "wt") as out:
        out.write("user_id,book_id,rating\n" + "".join(f"{u},{b},{r}\n" for u, b, r in rows))
    users, books, stars = load(ratings, first_users=2)  # users 3 and 5, every rating of theirs
    kept = [(u, b, r) for u, b, r in rows if u in (3, 5)]
    assert len(users) == len(kept) and sorted(stars.tolist()) == sorted(float(r) for *_, r in kept)
    assert len(set(users.tolist())) == 2 and len(set(books.tolist())) == len({b for _, b, _ in kept})
    everyone = load(ratings)
    assert len(everyone[0]) == len(rows) and len(set(everyone[0].tolist())) == 4


@pytest.mark.slow
def test_make_bench_trending_prints_the_cost_per_event_and_the_route_s_latency():
    out = make("bench-trending", "TRENDING_ARGS=--events 5000 --requests 100")
    assert re.search(r"write path: 5,000 events in \d+\.\d+s \([\d,]+/s pipelined.*\d+ bytes per event", out), out
    assert re.search(r"replica refresh \(GET \+ decode \+ rank\): p50 \d+\.\d\d ms, p99 \d+\.\d\d ms \(n=50\)", out)
    assert re.search(r"imported activity: [\d,]+ books, [\d,]+ book-days set in .*again: 0 changed in .*"
                     r"\d+ bytes per book-day", out), out
    assert re.search(r"GET /trending in-process .*: p50 \d+\.\d\d ms, p99 \d+\.\d\d ms \(n=100\)", out), out


def test_the_similar_list_measured_is_served_from_the_catalogue_the_service_holds():
    """The evaluation's catalogue reads each goodbooks book as the ETL stores it: the series off the title,
    the authors, the genres as subjects; so the measured list leads with the series' next book, as served."""
    files = seed_files()
    records = goodbooks_books(files["goodbooks_books"], files["goodbooks_genres"])
    ids = np.array([1, 17, 20, 2])  # The Hunger Games #1, #2, #3; Harry Potter #1 (goodbooks ids)
    # Columns 0..3 are those books; every reader read all four, so each pairs with every other.
    users, books = np.repeat(np.arange(6), 4), np.tile(np.arange(4), 6)
    values, binary = matrices(users, books, np.full(24, 5.0, dtype=np.float32), np.ones(24, dtype=bool), (6, 4))
    model = neighbour_model(binary, 3, 1.0).model
    catalogue = evaluation_catalogue(model, values, records, ids)
    first = catalogue.entries["0"]
    assert first.title == "The Hunger Games" and first.authors == ("Suzanne Collins",)
    assert first.series is not None and (first.series.name, first.series.position) == ("The Hunger Games", 1)
    assert "fantasy" in first.subjects and first.rating_count == 6 and first.rating_sum == 30
    similar = service_similar(model, catalogue, 0.35)
    assert similar(0, {0})[0] == 1  # next in The Hunger Games, #2
    assert similar(0, {0, 1})[0] == 2  # #2 read: the pairs follow, #3 among them
    # Without the books file (another ratings file): entries without content, no series.
    assert evaluation_catalogue(model, values).entries["0"].series is None
