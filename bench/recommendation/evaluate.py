"""Offline evaluation of recommendation quality on real ratings.

    python -m bench.recommendation.evaluate [--ratings CSV[.gz]] [--users N] [--out results.json]

(`make evaluate`, from the repository root; `EVALUATE_ARGS="--users 300 --regularisation 25"` is a
quick run on the first 300 users, one candidate.)

Protocol: for each user a random 20% of their ratings is held out (fixed
seed); models train on the rest; a held-out rating >= 4 is relevant; books
the user rated in training are never recommended. Reported @10: precision,
recall, NDCG, MAP, and catalogue coverage (share of books recommended to
anyone). The model's regularisation is chosen on a validation split carved
out of the training ratings the same way, never on the test holdout.

Compared: (a) popularity, (b) the approach of the system this replaced
(dense user-user cosine on the rating matrix, unnormalised weighted sum),
(c) plain item-item cosine (top-K), (d) this service's model.

Similar books (`GET /books/{id}/similar`), on the same split: each reader's
seed is their best-rated training book (ties: the lowest goodbooks id, the
most rated; `--similar-ties random` draws one instead); the seed's similar
list, less the seed and the reader's training books, is cut at 10; a hit is a
held-out book the reader rated >= 4 in it. Reported: hit rate@10 (readers with
a hit) and precision@10, for this service's list (the model's pairs ranked by
both/n_j^β, β chosen on the validation split by hit rate; content and
popularity fill), the 10 most-rated books, and raw co-occurrence (the books
most often rated by the seed's readers), and the list a reader gets with
`?user_id=` (the same list re-ranked by the reader's own recommendations,
computed from their training ratings). The list is `Recommender.similar`'s,
the route's own path, over the catalogue the service would hold: each book of
`--books` read as the ETL reads it (the series and its number taken off the
title, authors, `--genres` as subjects), its rating aggregate from the
training ratings only; so the series' next book leads as it does when served.
Beside them, the same list with the pairs ranked by RP3β's walk, each co-reader
counting 1/deg^α (`similar_walk`: over the model's pairs or every co-reader,
every co-reader or only those who liked the seed), α and β chosen together on
the validation split; the test rows are for the chosen pair only.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TextIO

import numpy as np
import scipy.sparse as sp

from bench.recommendation.similar_walk import VARIANTS, walk_similar
from bookrec_etl.records import Rejected, from_goodbooks_row
from bookrec_etl.seed import seed_files
from bookrec_recommendation.catalogue import Catalogue, CatalogueEntry, catalogue_entry
from bookrec_recommendation.engine import SIMILAR_LENGTH
from bookrec_recommendation.model import ItemNeighbourModel, Recommender, interest
from bookrec_recommendation.neighbours import top_k_per_row
from bookrec_recommendation.similar import for_reader

K = 10


def load(path: Path, first_users: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user index, book index, rating) per rating of a CSV `user_id,book_id,rating`, gzipped or not;
    with `first_users`, only the ratings of that many users, the lowest ids."""
    return load_with_ids(path, first_users)[:3]


def load_with_ids(path: Path, first_users: int | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`load`, and the file's book id of each book index."""
    rows = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64, usecols=(0, 1, 2))
    if first_users is not None:
        rows = rows[np.isin(rows[:, 0], np.unique(rows[:, 0])[:first_users])]
    _, users = np.unique(rows[:, 0], return_inverse=True)
    ids, books = np.unique(rows[:, 1], return_inverse=True)
    return users, books, rows[:, 2].astype(np.float32), ids


def _text(path: Path) -> TextIO:
    return gzip.open(path, "rt", encoding="utf-8", newline="") if path.name.endswith(".gz") \
        else path.open(encoding="utf-8", newline="")


def goodbooks_books(books_csv: Path, genres_csv: Path) -> dict[int, dict]:
    """Each goodbooks book's record as the ETL stores it (`from_goodbooks_row`: the title less its series
    note, the series, authors, subjects from the genres), by goodbooks book id."""
    with _text(genres_csv) as handle:
        genres = {row["book_id"].strip(): [g.strip() for g in (row.get("genres") or "").split(",") if g.strip()]
                  for row in csv.DictReader(handle)}
    records = {}
    with _text(books_csv) as handle:
        for row in csv.DictReader(handle):
            try:
                records[int(row["book_id"])] = from_goodbooks_row(row, genres.get(row["book_id"].strip(), []),
                                                                  None)
            except (Rejected, ValueError):
                continue
    return records


def holdout(users: np.ndarray, fraction: float, rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    """Boolean mask of held-out ratings: `fraction` of each user's ratings within `mask`."""
    held = np.zeros(len(users), dtype=bool)
    candidates = np.flatnonzero(mask)
    order = candidates[np.argsort(users[candidates], kind="stable")]
    bounds = np.flatnonzero(np.diff(users[order])) + 1
    for group in np.split(order, bounds):
        take = round(fraction * len(group))
        if take:
            held[rng.choice(group, take, replace=False)] = True
    return held


def metrics(score: Callable[[int], np.ndarray], train: sp.csr_matrix,
            relevant: list[set[int]]) -> dict[str, float]:
    discount = 1.0 / np.log2(np.arange(2, K + 2))
    totals = dict(precision=0.0, recall=0.0, ndcg=0.0, map=0.0)
    recommended: set[int] = set()
    evaluated = 0
    for user, truth in enumerate(relevant):
        if not truth:
            continue
        scores = score(user).astype(np.float64)
        scores[train[user].indices] = -np.inf
        top = np.argpartition(-scores, K)[:K]
        top = top[np.argsort(-scores[top], kind="stable")]
        recommended.update(top.tolist())
        hits = np.fromiter((t in truth for t in top), dtype=bool, count=K)
        totals["precision"] += hits.sum() / K
        totals["recall"] += hits.sum() / len(truth)
        totals["ndcg"] += (discount * hits).sum() / discount[:min(len(truth), K)].sum()
        totals["map"] += (np.cumsum(hits) / np.arange(1, K + 1) * hits).sum() / min(len(truth), K)
        evaluated += 1
    result = {name: round(value / max(evaluated, 1), 4) for name, value in totals.items()}
    result["coverage"] = round(len(recommended) / train.shape[1], 4)
    result["users"] = evaluated
    return result


def replaced_user_user(train_ratings: sp.csr_matrix) -> Callable[[int], np.ndarray]:
    """The replaced system: dense user×user cosine, then Σ sim(u,v)·r(v,i), unnormalised."""
    dense = train_ratings.toarray()
    norms = np.linalg.norm(dense, axis=1, keepdims=True)
    unit = dense / np.maximum(norms, 1e-9)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, 0.0)
    return lambda user: similarity[user] @ dense


def item_cosine(binary: sp.csr_matrix, neighbours: int = 50) -> Callable[[int], np.ndarray]:
    gram = (binary.T @ binary).tocsr().astype(np.float32)
    norm = sp.diags(1.0 / np.sqrt(np.maximum(gram.diagonal(), 1e-9)))
    index, values = top_k_per_row((norm @ gram @ norm).tocsr(), neighbours)
    n = binary.shape[1]
    keep = index >= 0
    rows = np.repeat(np.arange(n), index.shape[1]).reshape(index.shape)
    weights = sp.csr_matrix((values[keep], (rows[keep], index[keep])), shape=(n, n))
    return lambda user: np.asarray((binary[user] @ weights).todense()).ravel()


def neighbour_model(binary: sp.csr_matrix, neighbours: int,
                    regularisation: float) -> Callable[[int], np.ndarray]:
    users, books = binary.nonzero()
    model = ItemNeighbourModel.build(users.astype(str), books.astype(str), neighbours, regularisation)
    # Model book ids are the string column numbers: map back to columns.
    column = np.array([int(b) for b in model.book_ids])

    def score(user: int) -> np.ndarray:
        full = np.zeros(binary.shape[1], dtype=np.float64)
        scored = model.score(binary[user].indices.astype(str))
        if scored is not None:
            full[column] = np.where(np.isfinite(scored), scored, 0.0)
        return full

    score.model = model  # type: ignore[attr-defined]  # the fitted model rides on its scorer
    return score


def matrices(users, books, ratings, mask, shape) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    values = sp.csr_matrix((ratings[mask], (users[mask], books[mask])), shape=shape)
    binary = values.copy()
    binary.data[:] = 1.0
    return values, binary


def relevant_sets(users, books, ratings, held, n_users) -> list[set[int]]:
    out: list[set[int]] = [set() for _ in range(n_users)]
    for u, b in zip(users[held & (ratings >= 4)], books[held & (ratings >= 4)], strict=True):
        out[u].add(int(b))
    return out


def similar_seeds(values: sp.csr_matrix, relevant: list[set[int]], ties: str,
                  rng: np.random.Generator) -> list[tuple[int, int]]:
    """(reader, seed) for each reader with something relevant: their best-rated training book (ties: the
    lowest book index, or one drawn at random)."""
    seeds = []
    for user, truth in enumerate(relevant):
        row = values[user]
        if not truth or not row.nnz:
            continue
        tied = row.indices[row.data == row.data.max()]
        seeds.append((user, int(tied.min() if ties == "popular" else rng.choice(tied))))
    return seeds


SimilarList = Callable[[int, set[int]], list[int]]  # (seed, books not to show) -> books, best first


def similar_metrics(similar: Callable, seeds: list[tuple[int, int]], train: sp.csr_matrix,
                    relevant: list[set[int]], for_the_reader: bool = False) -> dict[str, float]:
    """hit@K and P@K of a `SimilarList`, or with `for_the_reader` of a list that takes the reader first."""
    hits = precision = 0.0
    for user, seed in seeds:
        skip = set(train[user].indices.tolist()) | {seed}
        shown = (similar(user, seed, skip) if for_the_reader else similar(seed, skip))[:K]
        found = sum(book in relevant[user] for book in shown)
        hits += found > 0
        precision += found / K
    count = max(len(seeds), 1)
    return {"hit_rate": round(hits / count, 4), "precision": round(precision / count, 4), "readers": len(seeds)}


def ranked_list(scores: np.ndarray, skip: set[int], tiebreak: np.ndarray) -> list[int]:
    """Books by score, then `tiebreak`, then index, leaving out `skip`: the first K that remain."""
    depth = min(len(scores), K + len(skip))
    order = np.lexsort((np.arange(len(scores)), -tiebreak, -scores))[:depth]
    return [book for book in order.tolist() if book not in skip][:K]


def evaluation_catalogue(model: ItemNeighbourModel, values: sp.csr_matrix,
                         books: Mapping[int, Mapping] | None = None, ids: np.ndarray | None = None) -> Catalogue:
    """The catalogue the service would hold for the model's books (ids: column numbers): each book's record
    from `books` (by the ratings file's id, `ids[column]`) read as the service reads a book item
    (`catalogue_entry`: title, authors, subjects, series), its rating aggregate from the training ratings
    only. Without `books` (another ratings file), entries with no content."""
    counts = np.asarray((values != 0).sum(axis=0)).ravel()
    sums = np.asarray(values.sum(axis=0)).ravel()
    entries = []
    for b in model.book_ids:
        column = int(b)
        record = books.get(int(ids[column])) if books is not None and ids is not None else None
        aggregate = {"rating_sum": int(sums[column]), "rating_count": int(counts[column])}
        entries.append(catalogue_entry({**record, "book_id": b, **aggregate}) if record is not None
                       else CatalogueEntry(b, b, (), (), **aggregate))
    return Catalogue(entries)


def service_similar(model: ItemNeighbourModel, catalogue: Catalogue, exponent: float) -> SimilarList:
    """This service's similar list for a book (`Recommender.similar`, the route's own path), from a model
    built by `neighbour_model` (ids: column numbers) and the catalogue the service would hold
    (`evaluation_catalogue`)."""
    recommender = Recommender(model, catalogue)

    def similar(seed: int, skip: set[int]) -> list[int]:
        picks = recommender.similar(str(seed), K, frozenset(map(str, skip)), exponent) or []
        return [int(p.book_id) for p in picks]

    return similar


def reader_similar(model: ItemNeighbourModel, catalogue: Catalogue, exponent: float, values: sp.csr_matrix,
                   reader_length: int = 100) -> Callable[[int, int, set[int]], list[int]]:
    """The similar list a reader gets (`?user_id=`, `RecommendationEngine.similar_for`): the book's list as
    served (SIMILAR_LENGTH, no exclusions) re-ranked by the reader's own list (`reader_length` long, as the
    service caches it, from their training ratings), then the protocol's exclusions."""
    recommender = Recommender(model, catalogue)

    def similar(user: int, seed: int, skip: set[int]) -> list[int]:
        picks = recommender.similar(str(seed), SIMILAR_LENGTH, frozenset(), exponent) or []
        row = values[user]
        stars = {str(b): int(r) for b, r in zip(row.indices.tolist(), row.data.tolist(), strict=True)}
        own = recommender.recommend(interest(stars, ()), reader_length)[1]
        following = recommender.catalogue.next_in_series(str(seed))
        ranked = for_reader(picks, (p.book_id for p in own), following.book_id if following else None)
        return [int(p.book_id) for p in ranked if int(p.book_id) not in skip]

    return similar


def cooccurrence_similar(binary: sp.csr_matrix) -> SimilarList:
    readers = binary.T.tocsr()
    popularity = np.asarray(binary.sum(axis=0)).ravel()
    return lambda seed, skip: ranked_list(np.asarray((readers[seed] @ binary).todense()).ravel(), skip, popularity)


def popularity_similar(binary: sp.csr_matrix) -> SimilarList:
    popularity = np.asarray(binary.sum(axis=0)).ravel()
    return lambda seed, skip: ranked_list(popularity, skip, popularity)


def evaluate_similar(args: argparse.Namespace, data: tuple[np.ndarray, np.ndarray, np.ndarray],
                     shape: tuple[int, int], test: np.ndarray, validation: np.ndarray, regularisation: float,
                     model: ItemNeighbourModel, ids: np.ndarray | None = None) -> dict:
    """Similar books: β chosen on validation (a model fitted without the test and validation ratings),
    then this list and the two baselines on the test holdout (`model`: trained without the test ratings)."""
    users, books, ratings = data
    records = goodbooks_books(args.books, args.genres) if args.books else None
    fit = ~test & ~validation
    fit_values, fit_binary = matrices(users, books, ratings, fit, shape)
    valid_seeds = similar_seeds(fit_values, relevant_sets(users, books, ratings, validation, shape[0]),
                                args.similar_ties, np.random.default_rng(args.seed))
    fit_model = neighbour_model(fit_binary, args.neighbours, regularisation).model  # type: ignore[attr-defined]  # set on the scorer by neighbour_model
    valid_relevant = relevant_sets(users, books, ratings, validation, shape[0])
    fit_catalogue = evaluation_catalogue(fit_model, fit_values, records, ids)
    tuning = {beta: similar_metrics(service_similar(fit_model, fit_catalogue, beta), valid_seeds, fit_binary,
                                    valid_relevant)["hit_rate"] for beta in args.similar_exponent}
    beta = max(tuning, key=tuning.__getitem__)
    walk_tuning: dict[str, dict[tuple[float, float], float]] = {}
    cache: dict = {}
    for variant, every, liked in VARIANTS:  # RP3β: α and β chosen together, on validation like β
        walk_tuning[variant] = {
            (a, b): similar_metrics(walk_similar(fit_model, fit_catalogue, fit_values, a, b, every, liked, K, cache),
                                    valid_seeds, fit_binary, valid_relevant)["hit_rate"]
            for a in args.similar_reader_exponent for b in args.similar_exponent}
    walk_chosen = {variant: max(grid, key=grid.__getitem__) for variant, grid in walk_tuning.items()}

    values, binary = matrices(users, books, ratings, ~test, shape)
    relevant = relevant_sets(users, books, ratings, test, shape[0])
    seeds = similar_seeds(values, relevant, args.similar_ties, np.random.default_rng(args.seed))
    catalogue = evaluation_catalogue(model, values, records, ids)
    lists = {"popularity (10 most rated)": popularity_similar(binary),
             "co-occurrence (raw counts)": cooccurrence_similar(binary),
             f"this service (both/n^{beta:g})": service_similar(model, catalogue, beta)}
    cache = {}
    for variant, every, liked in VARIANTS:
        a, b = walk_chosen[variant]
        lists[f"{variant} α={a:g} β={b:g}"] = walk_similar(model, catalogue, values, a, b, every, liked, K, cache)
    results = {name: similar_metrics(make, seeds, binary, relevant) for name, make in lists.items()}
    results[f"this service for the reader (?user_id=, both/n^{beta:g})"] = similar_metrics(
        reader_similar(model, catalogue, beta, values), seeds, binary, relevant, for_the_reader=True)
    base = results["popularity (10 most rated)"]["hit_rate"]
    print(f"\nsimilar books: {len(seeds):,} readers, seed: best-rated training book (ties: {args.similar_ties}); "
          f"β chosen on validation by hit rate: {beta:g} ({tuning}); catalogue: "
          f"{'the books file (series from titles, authors, genres)' if records else 'no content'}")
    print(f"co-readers weighted 1/deg^α (RP3β), validation hit rate by α (rows) and β "
          f"({' '.join(f'{b:g}' for b in args.similar_exponent)}); * chosen:")
    for variant, grid in walk_tuning.items():
        print(f"  {variant}")
        for a in args.similar_reader_exponent:
            print(f"    α={a:<5g}" + "".join(f" {grid[a, b]:.4f}{'*' if walk_chosen[variant] == (a, b) else ' '}"
                                            for b in args.similar_exponent))
    header = f"{'similar list':62s} {'hit@10':>7s} {'P@10':>7s} {'×pop':>5s}"
    print(header)
    print("-" * len(header))
    for name, row in results.items():
        row["hit_rate_vs_popularity"] = round(row["hit_rate"] / base, 2) if base else None
        print(f"{name:62s} {row['hit_rate']:7.4f} {row['precision']:7.4f} {row['hit_rate_vs_popularity']:5.2f}")
    return {"seed_ties": args.similar_ties, "catalogue": str(args.books) if records else None,
            "tuning_hit_rate": tuning, "chosen_exponent": beta,
            "walk_tuning_hit_rate": {v: {f"α={a:g} β={b:g}": rate for (a, b), rate in grid.items()}
                                     for v, grid in walk_tuning.items()},
            "walk_chosen": {v: {"reader_exponent": a, "exponent": b} for v, (a, b) in walk_chosen.items()},
            "results": results}


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return value


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ratings", type=Path, default=seed_files()["goodbooks_ratings"],
                        help="CSV user_id,book_id,rating (a .gz is read as gzip); default: the bundled "
                             "goodbooks-10k sample")
    parser.add_argument("--users", type=positive, default=None,
                        help="only the ratings of this many users (the lowest ids): a quicker run")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--holdout", type=float, default=0.2)
    parser.add_argument("--neighbours", type=int, default=100)
    parser.add_argument("--regularisation", type=float, nargs="+", default=[10.0, 25.0, 50.0, 100.0, 200.0],
                        help="candidates, chosen on the validation split")
    parser.add_argument("--similar-exponent", type=float, nargs="+", default=[0.0, 0.2, 0.35, 0.5],
                        help="candidates for the similar list's β (score = both / n_j^β), chosen on validation")
    parser.add_argument("--similar-reader-exponent", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0],
                        help="candidates for the weighted-pairs lists' α (each co-reader counts 1/deg^α), "
                             "chosen on validation with β")
    parser.add_argument("--similar-ties", choices=["popular", "random"], default="popular",
                        help="which of a reader's best-rated training books is their seed")
    parser.add_argument("--books", type=lambda text: Path(text) if text else None,
                        default=seed_files()["goodbooks_books"],
                        help="goodbooks books.csv(.gz) of the ratings' book ids, read as the ETL reads it "
                             "(series from the titles, authors) for the similar list's catalogue; '' for none "
                             "(a ratings file whose ids are not goodbooks')")
    parser.add_argument("--genres", type=Path, default=seed_files()["goodbooks_genres"],
                        help="goodbooks book_genres.csv(.gz): the books' subjects")
    parser.add_argument("--out", type=Path, default=Path("evaluation.json"))
    args = parser.parse_args(argv)
    if not args.ratings.is_file():
        parser.error(f"--ratings {args.ratings}: no such file")

    users, books, ratings, ids = load_with_ids(args.ratings, args.users)
    shape = (int(users.max()) + 1, int(books.max()) + 1)
    rng = np.random.default_rng(args.seed)
    test = holdout(users, args.holdout, rng, np.ones(len(users), dtype=bool))
    validation = holdout(users, args.holdout, rng, ~test)
    fit = ~test & ~validation

    # Choose the regularisation on validation (train on fit, score validation).
    _, fit_binary = matrices(users, books, ratings, fit, shape)
    valid_relevant = relevant_sets(users, books, ratings, validation, shape[0])
    tuning = {}
    for lam in args.regularisation:
        tuning[lam] = float(metrics(neighbour_model(fit_binary, args.neighbours, lam), fit_binary,
                                    valid_relevant)["ndcg"])
    chosen = max(tuning, key=tuning.get)

    train_values, train_binary = matrices(users, books, ratings, ~test, shape)
    relevant = relevant_sets(users, books, ratings, test, shape[0])
    popularity = np.asarray(train_binary.sum(axis=0)).ravel()
    candidates = {
        "popularity": lambda: (lambda user: popularity.copy()),
        "replaced: dense user-user cosine": lambda: replaced_user_user(train_values),
        "item-item cosine (top-50)": lambda: item_cosine(train_binary),
        f"neighbour linear (K={args.neighbours}, λ={chosen:g})":
            lambda: neighbour_model(train_binary, args.neighbours, chosen),
    }
    results = {}
    for name, make in candidates.items():
        started = time.perf_counter()
        scorer = make()
        built = time.perf_counter() - started
        results[name] = {**metrics(scorer, train_binary, relevant), "build_s": round(built, 2)}
        if hasattr(scorer, "model"):
            results[name]["model_bytes"] = scorer.model.nbytes
            model = scorer.model
    base = results["popularity"]["ndcg"]
    for row in results.values():
        row["ndcg_vs_popularity"] = round(row["ndcg"] / base, 2) if base else None

    print(f"ratings: {len(ratings):,}  users: {shape[0]:,}  books: {shape[1]:,}  holdout: {args.holdout:.0%} "
          f"per user, seed {args.seed}; λ chosen on validation: {chosen:g} ({tuning})")
    header = (f"{'model':44s} {'P@10':>7s} {'R@10':>7s} {'NDCG@10':>8s} {'MAP@10':>7s} {'cover':>6s} "
              f"{'×pop':>5s} {'build s':>8s}")
    print(header)
    print("-" * len(header))
    for name, row in results.items():
        print(f"{name:44s} {row['precision']:7.4f} {row['recall']:7.4f} {row['ndcg']:8.4f} {row['map']:7.4f} "
              f"{row['coverage']:6.3f} {row['ndcg_vs_popularity']:5.2f} {row['build_s']:8.2f}")
    report = {"protocol": {"ratings": str(args.ratings), "seed": args.seed, "holdout": args.holdout,
                           "relevant": "held-out rating >= 4", "k": K, "tuning_ndcg": tuning,
                           "chosen_regularisation": chosen},
              "results": results}
    report["similar"] = evaluate_similar(args, (users, books, ratings), shape, test, validation, chosen, model, ids)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
