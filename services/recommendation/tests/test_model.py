"""The recommender's pure logic on small, readable data."""

import functools

import numpy as np
import pytest

from bookrec_recommendation import neighbours as neighbours_module
from bookrec_recommendation.catalogue import Catalogue, CatalogueEntry, Recommendation, ranked
from bookrec_recommendation.model import ItemNeighbourModel, Recommender

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


def check_against_the_definition(users, books, neighbours, regularisation, model):
    """The model's definition computed densely: cosine top-K (ties in any order), a ridge solve per book."""
    book_ids = sorted(set(books))
    user_ids = sorted(set(users))
    assert model.book_ids == book_ids
    rated = np.zeros((len(user_ids), len(book_ids)))
    for u, b in zip(users, books, strict=True):
        rated[user_ids.index(u), book_ids.index(b)] = 1.0
    gram = rated.T @ rated
    norm = np.sqrt(np.diag(gram))
    cosine = gram / np.outer(norm, norm)
    np.fill_diagonal(cosine, 0.0)
    weights = model.weights.toarray()
    for j in range(len(book_ids)):
        hood = np.flatnonzero(weights[:, j])
        chosen = np.zeros(len(book_ids), dtype=bool)
        chosen[hood] = True
        assert len(hood) == min(neighbours, int((cosine[j] > 0).sum()))
        if not len(hood):
            continue
        assert cosine[j, hood].min() >= cosine[j, ~chosen].max() - 1e-6  # the K nearest
        system = gram[np.ix_(hood, hood)] + regularisation * np.eye(len(hood))
        np.testing.assert_allclose(weights[hood, j], np.linalg.solve(system, gram[hood, j]), atol=1e-4)


def random_ratings(seed, n_users=60, n_books=40, per_user=8):
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_books + 1)
    users, books = [], []
    for u in range(n_users):
        shelf = rng.choice(n_books, size=rng.integers(1, per_user), replace=False, p=popularity / popularity.sum())
        for b in shelf:
            users.append(f"u{u}")
            books.append(f"OL{b}W")
    return users, books


def test_blocked_build_matches_the_definition_with_small_blocks_and_chunks(monkeypatch):
    users, books = random_ratings(3)
    # Blocks of 16 rows of G (the smallest), so neighbours and systems come from several blocks.
    monkeypatch.setattr(neighbours_module, "_cooccurrence_and_neighbours",
                        functools.partial(neighbours_module._cooccurrence_and_neighbours,  # noqa: SLF001 - the project's own, shrunk
                                          cells=1))
    # A working set of a few systems forces many target chunks, each gathering from several row blocks.
    for working_bytes in (1, None):
        model = ItemNeighbourModel.build(users, books, neighbours=5, regularisation=2.0,
                                         working_bytes=working_bytes)
        check_against_the_definition(users, books, 5, 2.0, model)


def test_top_matches_ranking_the_full_scores_and_explains_with_the_strongest_rated_book():
    users, books = random_ratings(5)
    model = ItemNeighbourModel.build(users, books, neighbours=6, regularisation=1.0)
    rated = ["OL0W", "OL1W", "OL7W", "OL12W"]
    scores = model.score(rated)
    top = model.top(rated, 5)
    positive = np.flatnonzero(scores > 0)
    expected = positive[np.lexsort((positive, -scores[positive]))][:5]
    assert top.positions.tolist() == expected.tolist()
    np.testing.assert_allclose(top.scores, scores[expected])
    known = [model.index[b] for b in rated]
    contributions = model.weights.toarray()[known]
    for position, source in zip(top.positions, top.because, strict=True):
        assert contributions[known.index(source), position] == contributions[:, position].max()


def test_book_ids_are_str_end_to_end_and_other_types_are_refused():
    users, books = ratings()
    model = ItemNeighbourModel.build(users, books, 3, 1.0)
    assert all(type(b) is str for b in model.book_ids)
    assert model.top(["P1", "P2", "P3"], 3) is not None
    with pytest.raises(TypeError, match="book ids must be str, got int"):
        ItemNeighbourModel.build(["u1", "u2"], [1, 2], 3, 1.0)
    with pytest.raises(TypeError, match="user ids must be str"):
        ItemNeighbourModel.build([1, 2], ["P1", "P2"], 3, 1.0)
    with pytest.raises(TypeError, match="book ids must be str, got int"):
        model.score([1, 2, 3])
    with pytest.raises(TypeError, match="book ids must be str"):
        Recommender(model, catalogue()).recommend({1: 5, 2: 4, 3: 5}, 3)
    with pytest.raises(ValueError, match="user ids but"):
        ItemNeighbourModel.build(["u1"], ["P1", "P2"], 3, 1.0)
    assert model.top(["P1", "P2", "P3"], 0).positions.size == 0


def test_a_few_perfect_ratings_rank_below_thousands_of_good_ones():
    # Most books have a rating or two (the median weight is small), as in a catalogue from many sources.
    entries = [CatalogueEntry(f"OL{i}W", f"Book {i}", (), (), rating_sum=4 * (1 + i % 2),
                              rating_count=1 + i % 2) for i in range(200)]
    entries += [CatalogueEntry("FEW", "Homegoing", (), (), rating_sum=30, rating_count=6),
                CatalogueEntry("MANY", "Harry Potter", (), (), rating_sum=13200, rating_count=3000)]
    picks = Recommender(ItemNeighbourModel.build([], [], 3, 1.0), Catalogue(entries)).recommend({}, 5)[1]
    assert [p.book_id for p in picks][:2] == ["MANY", "FEW"]
    assert picks[0].reason == "popular: 4.40 average from 3000 ratings"


def test_a_list_filled_from_a_weaker_strategy_still_reads_in_score_order():
    picks = ranked([Recommendation("GB1", 0.31, "a"), Recommendation("GB2", 0.02, "b"),
                    Recommendation("GB3", 0.9, "content"), Recommendation("GB4", 4.1, "popular")])
    assert [p.book_id for p in picks] == ["GB1", "GB2", "GB3", "GB4"]
    assert [p.score for p in picks] == [0.31, 0.02, 0.02, 0.02]
    assert [p.reason for p in picks] == ["a", "b", "content", "popular"]
