"""The recommender's pure logic on small, readable data."""

import numpy as np

from bookrec_recommendation.evaluate import holdout
from bookrec_recommendation.model import Catalogue, CatalogueEntry, ItemNeighbourModel, Recommender

# Two taste clusters: philosophy readers and fantasy readers.
PHILOSOPHY = ["P1", "P2", "P3", "P4"]
FANTASY = ["F1", "F2", "F3", "F4"]


def ratings():
    users, books = [], []
    for u in range(30):
        shelf = PHILOSOPHY if u % 2 else FANTASY
        for b in shelf[: 3 + u % 2]:
            users.append(f"u{u}")
            books.append(b)
    return users, books


def catalogue():
    entries = [CatalogueEntry(b, f"Book {b}", ("Plato",) if b.startswith("P") else ("Tolkien",),
                              ("philosophy",) if b.startswith("P") else ("fantasy",), rating_sum=4 * n, rating_count=n)
               for n, b in enumerate(PHILOSOPHY + FANTASY, start=1)]
    entries.append(CatalogueEntry("X1", "Unrated", (), ("cooking",)))
    return Catalogue(entries)


def test_model_memory_is_books_times_k_not_books_squared():
    users, books = ratings()
    model = ItemNeighbourModel.build(users, books, neighbours=2, regularisation=1.0)
    assert model.weights.nnz <= len(model.book_ids) * 2


def test_collaborative_recommends_the_same_cluster_and_excludes_rated_books():
    users, books = ratings()
    recommender = Recommender(ItemNeighbourModel.build(users, books, 3, 1.0), catalogue())
    strategy, picks = recommender.recommend({"P1": 5, "P2": 4, "P3": 5}, 3)
    assert strategy == "collaborative"
    assert picks[0].book_id == "P4" and "P1" not in {p.book_id for p in picks}
    assert picks[0].reason.startswith("readers of “Book P")


def test_few_ratings_get_content_similarity_with_a_reason():
    users, books = ratings()
    recommender = Recommender(ItemNeighbourModel.build(users, books, 3, 1.0), catalogue())
    strategy, picks = recommender.recommend({"F1": 5}, 3)
    assert strategy == "content+popularity"
    assert {p.book_id for p in picks} == {"F2", "F3", "F4"}
    assert "tolkien" in picks[0].reason


def test_no_ratings_get_popularity_by_bayesian_average():
    recommender = Recommender(ItemNeighbourModel.build([], [], 3, 1.0), catalogue())
    strategy, picks = recommender.recommend({}, 4)
    assert strategy == "popularity"
    # Same average everywhere: more ratings pull less towards the prior, so the most rated come first.
    assert [p.book_id for p in picks][:2] == ["F4", "F3"]
    assert picks[0].reason.startswith("popular: 4.00 average")


def test_holdout_takes_the_fraction_of_each_user():
    users = np.repeat(np.arange(5), 10)
    held = holdout(users, 0.2, np.random.default_rng(1), np.ones(len(users), dtype=bool))
    assert all(held[users == u].sum() == 2 for u in range(5))
