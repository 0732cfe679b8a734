"""Similar books and the reader-respecting list: the pure logic on crafted catalogues, against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bookrec_catalog.catalog import Series
from bookrec_recommendation.artifact import dump, load
from bookrec_recommendation.catalogue import Catalogue, CatalogueEntry, Recommendation, catalogue_entry
from bookrec_recommendation.model import SHELVED_STARS, ItemNeighbourModel, Recommender, interest
from bookrec_recommendation.similar import SIMILAR_EXPONENT, for_reader

HUNGER = "The Hunger Games"
RNG = np.random.default_rng(3)
# Readers of overlapping tastes: book b{i} is read by readers near i, so neighbours are books near each other.
READS = {f"r{u}": sorted({f"B{(u + d) % 24}" for d in RNG.integers(0, 6, size=5)}) for u in range(60)}


def pairs() -> tuple[list[str], list[str]]:
    users, books = [], []
    for user, read in READS.items():
        users += [user] * len(read)
        books += read
    return users, books


def entries(**extra: CatalogueEntry) -> list[CatalogueEntry]:
    made = {f"B{i}": CatalogueEntry(f"B{i}", f"Book {i}", (f"Author {i % 4}",), (f"subject {i % 3}",),
                                    rating_sum=4, rating_count=1) for i in range(24)}
    made.update(extra)
    return list(made.values())


def recommender(catalogue_entries: list[CatalogueEntry] | None = None, neighbours: int = 5) -> Recommender:
    users, books = pairs()
    return Recommender(ItemNeighbourModel.build(users, books, neighbours, 1.0),
                       Catalogue(catalogue_entries or entries()))


def both(a: str, b: str) -> int:
    return sum(a in read and b in read for read in READS.values())


def test_the_counts_kept_beside_the_weights_are_the_readers_of_both_books():
    model = recommender().model
    assert model.cooccurrence is not None and len(model.cooccurrence) == model.weights.nnz
    weights = model.weights.tocoo()
    counts = dict(zip(zip(weights.row.tolist(), weights.col.tolist(), strict=True), model.cooccurrence.tolist(),
                      strict=True))
    assert counts  # the oracle: who read both, counted from the readers themselves
    for (i, j), count in counts.items():
        assert count == both(model.book_ids[i], model.book_ids[j]) > 0


@pytest.mark.parametrize("seed", [f"B{i}" for i in range(0, 24, 5)])
def test_readers_also_liked_ranks_the_models_pairs_by_both_over_popularity(seed):
    reco = recommender()
    model = reco.model
    picks = reco.similar(seed, 50)
    assert picks is not None and seed not in {p.book_id for p in picks}
    readers = {b: sum(b in read for read in READS.values()) for b in model.book_ids}
    # The oracle: every book the model paired with the seed, either way, scored by the module's formula.
    weights = model.weights.toarray() != 0
    s = model.index[seed]
    paired = [b for b in model.book_ids if weights[s, model.index[b]] or weights[model.index[b], s]]
    expected = sorted(paired, key=lambda b: (-both(seed, b) / readers[b] ** SIMILAR_EXPONENT, -both(seed, b),
                                             model.index[b]))
    collaborative = [p for p in picks if p.reason.endswith("rated both")]
    assert [p.book_id for p in collaborative] == expected
    for pick in collaborative:
        count = both(seed, pick.book_id)
        assert pick.reason == f"{count} reader{'s' if count != 1 else ''} rated both"
    assert [p.score for p in picks] == sorted((p.score for p in picks), reverse=True)
    assert len(picks) == len({p.book_id for p in picks})


def test_the_next_book_of_the_series_comes_first_and_names_its_number():
    series = {"B1": 1, "B7": 2, "B13": 3, "B20": 2.5}
    catalogue = entries(**{b: CatalogueEntry(b, f"Book {b}", ("Suzanne Collins",), ("dystopia",),
                                             series=Series(HUNGER, position))
                           for b, position in series.items()})
    reco = recommender(catalogue)
    first = reco.similar("B1", 10)
    assert first is not None and (first[0].book_id, first[0].reason) == ("B7", "next in The Hunger Games, #2")
    after_two = reco.similar("B7", 10)
    assert after_two is not None and (after_two[0].book_id, after_two[0].reason) == (
        "B20", "next in The Hunger Games, #2.5")
    last = reco.similar("B13", 10)
    assert last is not None and not last[0].reason.startswith("next in")
    assert reco.similar("B1", 10, exclude=frozenset({"B7"}))[0].reason != "next in The Hunger Games, #2"


def test_series_are_matched_as_text_is_whatever_the_case():
    catalogue = Catalogue([CatalogueEntry("A1", "One", (), (), series=Series("Discworld", 1)),
                           CatalogueEntry("A2", "Two", (), (), series=Series("DISCWORLD", 2)),
                           CatalogueEntry("A3", "Box", (), (), series=Series("Discworld", None))])
    following = catalogue.next_in_series("A1")
    assert following is not None and following.book_id == "A2"
    assert catalogue.next_in_series("A2") is None and catalogue.next_in_series("A3") is None


def test_a_book_the_model_does_not_know_gets_content_similarity():
    catalogue = entries(NEW=CatalogueEntry("NEW", "New book", ("Author 2",), ("subject 0",)))
    picks = recommender(catalogue).similar("NEW", 5)
    assert picks is not None and len(picks) == 5 and "NEW" not in {p.book_id for p in picks}
    assert picks[0].book_id in {"B2", "B6", "B10", "B14", "B18", "B22"}  # Author 2's books first
    assert picks[0].reason.startswith("by author 2, like “New book”")


def test_never_the_book_itself_nor_a_book_removed_from_the_catalogue_and_unknown_books_are_none():
    catalogue = [e for e in entries() if e.book_id not in ("B2", "B3")]  # removed since the model was built
    reco = recommender(catalogue)
    for seed in ("B0", "B1", "B4"):
        picks = reco.similar(seed, 30)
        assert picks is not None
        shown = {p.book_id for p in picks}
        assert seed not in shown and not shown & {"B2", "B3"} and len(shown) == len(picks)
    assert reco.similar("B2", 10) is None and reco.similar("NOPE", 10) is None


def test_a_short_list_is_filled_with_content_then_popularity():
    reco = recommender(neighbours=1)  # one neighbour per book: few pairs
    picks = reco.similar("B5", 20)
    assert picks is not None and len(picks) == 20
    assert any(p.reason.endswith("rated both") for p in picks)
    assert any(not p.reason.endswith("rated both") for p in picks)


def test_the_artifact_keeps_the_counts_and_the_series():
    catalogue = entries(B1=CatalogueEntry("B1", "Book 1", (), (), series=Series(HUNGER, 1)),
                        B7=CatalogueEntry("B7", "Book 7", (), (), series=Series(HUNGER, 2)))
    reco = recommender(catalogue)
    loaded = load(dump(reco))
    assert loaded.model.cooccurrence is not None
    assert np.array_equal(loaded.model.cooccurrence, reco.model.cooccurrence)
    assert loaded.catalogue.entries["B7"].series == Series(HUNGER, 2)
    assert loaded.similar("B1", 10) == reco.similar("B1", 10)


def test_a_book_items_series_is_read_and_a_malformed_one_ignored():
    book = {"book_id": "GB2", "title": "Catching Fire", "series": {"name": HUNGER, "position": 2}}
    assert catalogue_entry(book).series == Series(HUNGER, 2)
    assert catalogue_entry({**book, "series": {"name": HUNGER}}).series == Series(HUNGER, None)
    for malformed in ({"name": ""}, {"position": 2}, "The Hunger Games", None):
        assert catalogue_entry({**book, "series": malformed}).series is None


# --- the reader's list: shelves count, exclusions and a subject are respected


def test_a_shelved_book_counts_as_a_four_star_rating_and_a_rating_wins():
    assert interest({"B1": 2}, ["B1", "B2"]) == {"B1": 2, "B2": SHELVED_STARS} and SHELVED_STARS == 4


def test_a_reader_with_only_shelves_gets_a_list_of_their_own():
    reco = recommender()
    shelved = READS["r7"][:3]
    strategy, picks = reco.recommend(interest({}, shelved), 10)
    popular = reco.recommend({}, 10)[1]
    assert strategy == "collaborative" and not set(shelved) & {p.book_id for p in picks}
    assert [p.book_id for p in picks] != [p.book_id for p in popular]


@pytest.mark.parametrize("rated", [{}, {"B3": 5}, {"B3": 5, "B4": 4, "B5": 5}],
                         ids=["popularity", "content", "collaborative"])
def test_exclusions_and_a_subject_are_respected_by_every_strategy(rated):
    reco = recommender()
    excluded = frozenset({"B6", "B9"})
    within = reco.catalogue.with_subject("SUBJECT 0")  # case-insensitive
    assert within == {f"B{i}" for i in range(0, 24, 3)}
    _, picks = reco.recommend(rated, 5, excluded, within)
    shown = [p.book_id for p in picks]
    assert len(shown) == 5 and set(shown) <= within - excluded - set(rated)
    assert [p.score for p in picks] == sorted((p.score for p in picks), reverse=True)


def test_without_exclusions_or_subject_the_list_is_as_before():
    reco = recommender()
    rated = {"B3": 5, "B4": 4, "B5": 5}
    assert reco.recommend(rated, 10) == reco.recommend(rated, 10, frozenset(), None)
    assert list(itertools.islice((p.book_id for p in reco.recommend(rated, 10)[1]), 3)) == [
        p.book_id for p in reco.recommend(rated, 3)[1]]


def test_for_a_reader_the_books_of_their_own_list_come_first_in_its_order_then_the_rest_as_they_were():
    picks = [Recommendation(b, s, f"reason {b}") for b, s in (("A", 0.9), ("B", 0.8), ("C", 0.7), ("D", 0.6))]
    assert [p.book_id for p in for_reader(picks, ["X", "C", "A", "C"])] == ["C", "A", "B", "D"]
    assert for_reader(picks, []) == picks and for_reader([], ["A"]) == []
    assert [p.book_id for p in for_reader(picks, ["C", "A"], series_next="A")] == ["A", "C", "B", "D"]
    assert [p.book_id for p in for_reader(picks, ["C"], series_next="B")] == ["C", "A", "B", "D"]  # B not leading
    assert {p.book_id: (p.score, p.reason) for p in for_reader(picks, ["D"])} == \
        {p.book_id: (p.score, p.reason) for p in picks}  # scores and reasons stay the list's
