"""The recommendation make targets of the README run as written, at their smallest size, and print their
figures; and the evaluation's own protocol pieces."""

from __future__ import annotations

import gzip
import itertools
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
from bench.recommendation.similar_walk import VARIANTS, walk_similar
from bench.tests.makes import make
from bookrec_recommendation.model import Recommender

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
    for variant, *_ in VARIANTS:  # the walk's lists, at the α and β chosen on validation, beside the served one
        assert re.search(rf"^{re.escape(variant)} α=[\d.]+ β=[\d.]+\s+\d\.\d{{4}}\s+\d\.\d{{4}}\s+\d\.\d\d$", out,
                         re.MULTILINE), variant
        assert len(report["similar"]["walk_tuning_hit_rate"][variant]) == 5 * 4


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


def test_the_walk_counts_each_co_reader_one_over_how_many_books_they_rated():
    """RP3β's list (`walk_similar`): α = 0 is the service's list; otherwise every co-reader's walk weight is
    1/deg^α, over the model's pairs or every co-reader, and only those who liked the seed if asked."""
    rng = np.random.default_rng(5)
    read = rng.random((30, 9)) < np.linspace(0.15, 0.9, 30)[:, None]  # light readers to heavy ones
    users, books = np.nonzero(read)
    stars = rng.integers(1, 6, size=len(users)).astype(np.float32)
    values, binary = matrices(users, books, stars, np.ones(len(users), dtype=bool), read.shape)
    model = neighbour_model(binary, 3, 1.0).model
    catalogue = evaluation_catalogue(model, values)
    degree = read.sum(axis=1)
    moved = 0
    for seed in range(9):
        assert walk_similar(model, catalogue, values, 0.0, 0.35, False, False, 10)(seed, {seed}) == \
            service_similar(model, catalogue, 0.35)(seed, {seed})
        for liked in (False, True):
            walkers = [u for u in range(30) if read[u, seed] and (not liked or values[u, seed] >= 4)]
            # The oracle: each co-reader's 1/deg, summed by hand from who read what.
            walk = {j: sum(1 / degree[u] for u in walkers if read[u, j]) / read[:, j].sum() ** 0.2
                    for j in range(9) if j != seed}
            reached = {j for j, score in walk.items() if score > 0}
            picks = walk_similar(model, catalogue, values, 1.0, 0.2, True, liked, 10)(seed, {seed})
            assert set(picks[:len(reached)]) == reached and seed not in picks
            scores = [walk[j] for j in picks[:len(reached)]]
            assert all(a >= b - 1e-9 for a, b in itertools.pairwise(scores))
            paired = {model.book_ids[p] for p in Recommender(model, catalogue).pairs.of(model.index[str(seed)])[0]}
            on_pairs = walk_similar(model, catalogue, values, 1.0, 0.2, False, liked, 10)(seed, {seed})
            shown = [j for j in on_pairs if str(j) in paired and j in reached]
            assert shown == on_pairs[:len(shown)]  # the model's pairs the walk reaches lead, by the walk
            assert all(walk[a] >= walk[b] - 1e-9 for a, b in itertools.pairwise(shown))
        unweighted = walk_similar(model, catalogue, values, 0.0, 0.2, True, False, 10)(seed, {seed})
        moved += unweighted != walk_similar(model, catalogue, values, 1.0, 0.2, True, False, 10)(seed, {seed})
    assert moved  # heavy readers counting less reorders some seed's list
