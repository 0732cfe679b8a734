"""The index on the real Open Library sample, and against brute-force oracles of its documented contract."""

from __future__ import annotations

import contextlib
import itertools
import math
from collections import Counter
from collections.abc import Iterator
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bookrec_catalog.catalog import normalise_text, with_derived_attributes
from bookrec_search import building, refresh
from bookrec_search import columns as columns_module
from bookrec_search import index as index_module
from bookrec_search import matching as matching_module
from bookrec_search import ranking as ranking_module
from bookrec_search import serving as serving_module
from bookrec_search.documents import suggestion_key
from bookrec_search.facets import FacetFilter, ValuePairs
from bookrec_search.filtering import Filters
from bookrec_search.index import SearchIndex
from bookrec_search.lexicon import IsbnMap
from bookrec_search.scoring import EXACT_TITLE_BONUS, FIELD_WEIGHTS, K1, PRIOR_RATINGS, PRIOR_STRENGTH, B
from bookrec_search.serving import Serving
from bookrec_search.splicing import isbns_replaced, pairs_updated, pairs_without


@pytest.fixture(scope="module")
def real(sample_books):
    return SearchIndex.from_records(sample_books)


def ids(index: SearchIndex, result) -> list[str]:
    return [index.book(h.position)["book_id"] for h in result.hits]


def titles(index: SearchIndex, result) -> list[str]:
    return [index.book(h.position)["title"] for h in result.hits]


# ---- relevance on the real sample ------------------------------------------------------------------
@pytest.mark.parametrize("title", ["Zen and the Art of Motorcycle Maintenance", "Meditations", "Tao te Ching",
                                   "Ethics", "Nietzsche", "Marcus Aurelius", "Das Kapital"])
def test_an_exact_title_ranks_first(real, sample_books, title):
    wanted = {b["book_id"] for b in sample_books if b["title_norm"] == normalise_text(title)}
    assert wanted
    result = real.search(title, limit=len(wanted))
    assert set(ids(real, result)) == wanted


def test_an_authors_name_finds_their_books(real, sample_books):
    for name in ("Friedrich Nietzsche", "Robert M. Pirsig", "Seneca the Younger"):
        theirs = {b["book_id"] for b in sample_books if name in [a["name"] for a in b["authors"]]}
        result = real.search(name, limit=100)
        assert theirs and theirs <= set(ids(real, result)), name
    assert titles(real, real.search("pirsig")) == ["Zen and the Art of Motorcycle Maintenance"]


def test_subject_words_work_and_are_accent_and_case_insensitive(real, sample_books):
    stoic = {b["book_id"] for b in sample_books
             if any("stoic" in normalise_text(s).split() for s in b["subjects"])}
    assert stoic and set(ids(real, real.search("Stoic", limit=100))) >= stoic
    assert real.search("EXISTENTIALISM").total == real.search("existentialism").total > 10
    assert ids(real, real.search("Méditations")) == ids(real, real.search("meditations"))


def test_all_words_else_any_word_says_so(real):
    strict = real.search("portable nietzsche")
    assert strict.matched_all_words and titles(real, strict) == ["The portable Nietzsche"]
    loose = real.search("plato qwertyuiop")
    # "plato " (a space after it): the word alone, not completed as the last word of a query is
    assert not loose.matched_all_words and loose.total == real.search("plato ").total
    assert real.search("qwertyuiop zxcvb").total == 0


def test_popularity_breaks_ties_on_real_duplicates(real, sample_books):
    # "Lun yu" and "Lun yü" (Confucius) normalise to the same title; the more rated comes first.
    result = real.search("lun yu", limit=2)
    counts = [real.book(h.position)["rating_count"] for h in result.hits]
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[1]


def test_popularity_breaks_exact_ties():
    books = [with_derived_attributes({"book_id": f"OL{i}W", "title": "Ethics",
                                      "ratings_distribution": {"5": count}})
             for i, count in ((1, 0), (2, 50), (3, 5))]
    index = SearchIndex.from_records(books)
    assert ids(index, index.search("ethics")) == ["OL2W", "OL3W", "OL1W"]


def test_paging_is_stable_and_complete(real):
    everything = ids(real, real.search("philosophy", limit=100))
    paged = [b for offset in range(0, 100, 20)
             for b in ids(real, real.search("philosophy", limit=20, offset=offset))]
    assert paged == everything and len(set(everything)) == 100


def test_book_summary_fields(real, sample_books):
    zen = next(b for b in sample_books if b["title"] == "Zen and the Art of Motorcycle Maintenance")
    book = real.book(real.position_of(zen["book_id"]))
    assert book == {"book_id": zen["book_id"], "title": zen["title"], "authors": ["Robert M. Pirsig"],
                    "first_publish_year": zen["first_publish_year"], "avg_rating": zen["avg_rating"],
                    "rating_count": zen["rating_count"], "cover_id": zen["cover_id"], "series": None}
    assert real.position_of("OL1W") is None


# ---- brute-force oracles of the documented contract -------------------------------------------------
WORDS = ["mind", "logic", "ethics", "being", "time", "art", "the"]
AUTHORS = ["Ann Lee", "Bo Kim", "Cy Day", "Émile Lee"]
SUBJECTS = ["logic", "ethics", "art history", "time"]
book_strategy = st.fixed_dictionaries({
    "title": st.lists(st.sampled_from([*WORDS, "Mind!", "Être"]), min_size=1, max_size=4).map(" ".join),
    "subtitle": st.one_of(st.none(), st.sampled_from(["a logic", "of time"])),
    "authors": st.lists(st.sampled_from(AUTHORS), max_size=2).map(
        lambda names: [{"author_id": None, "name": n} for n in names]),
    "subjects": st.lists(st.sampled_from(SUBJECTS), max_size=3),
    "first_publish_year": st.one_of(st.none(), st.integers(1800, 2020)),
    "ratings_distribution": st.dictionaries(st.sampled_from(["1", "3", "4", "5"]), st.integers(0, 4)),
    "language": st.sampled_from(["eng", "fre", None]),
    "cover_id": st.one_of(st.none(), st.integers(1, 10**7)),
})
catalogue = st.lists(book_strategy, min_size=1, max_size=40)


def build(raw: list[dict[str, Any]], start: int = 1) -> list[dict[str, Any]]:
    return [with_derived_attributes({**b, "book_id": f"OL{start + i}W"}) for i, b in enumerate(raw)]


def field_tokens(book: dict[str, Any]) -> list[list[str]]:
    return [normalise_text(book["title"]).split() + normalise_text(book.get("subtitle") or "").split(),
            [t for a in book["authors"] for t in normalise_text(a["name"]).split()],
            [t for s in book["subjects"] for t in normalise_text(s).split()]]


class Oracle:
    """The scoring and ordering of the index module's docstring, computed the slow, obvious way."""

    def __init__(self, books: list[dict[str, Any]]) -> None:
        self.books = books
        self.tokens = {b["book_id"]: field_tokens(b) for b in books}
        self.average = [sum(len(self.tokens[b["book_id"]][f]) for b in books) / len(books) for f in range(3)]
        rated = [b for b in books if b["rating_count"]]
        mean = sum(b["rating_sum"] for b in rated) / sum(b["rating_count"] for b in rated) if rated else 3.0
        self.prior = {b["book_id"]: math.log1p(b["rating_count"]) * (b["rating_sum"] + PRIOR_RATINGS * mean)
                      / (b["rating_count"] + PRIOR_RATINGS) / 5 for b in books}

    def impact(self, word: str, book_id: str, fields=(0, 1, 2)) -> float:
        total = 0.0
        for f in fields:
            tf = Counter(self.tokens[book_id][f])[word]
            length = len(self.tokens[book_id][f])
            if tf:
                total += FIELD_WEIGHTS[f] * tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / self.average[f]))
        return total

    def idf(self, word: str, fields=(0, 1, 2)) -> float:
        df = sum(1 for b in self.books if any(word in self.tokens[b["book_id"]][f] for f in fields))
        return math.log(1 + (len(self.books) - df + 0.5) / (df + 0.5))

    def text(self, words: list[str], book_id: str, fields=(0, 1, 2)) -> float:
        return sum(self.idf(w, fields) * self.impact(w, book_id, fields) for w in words)

    def has_all(self, words: list[str], book_id: str, fields=(0, 1, 2)) -> bool:
        return all(any(w in self.tokens[book_id][f] for f in fields) for w in words)

    def alternatives(self, word: str, last: bool) -> dict[str, int]:
        """Term -> cost, by the module docstring's table (the vocabulary is small: no cap is reached)."""
        vocabulary = {t for tokens in self.tokens.values() for field in tokens for t in field}
        found = {word: 0} if word in vocabulary else {}
        if last and len(word) >= 2:
            found.update((t, 1) for t in vocabulary if t.startswith(word) and t != word)
        if len(word) >= 5 and not word.isdigit():
            limit = 2 if len(word) >= 9 else 1
            for t in vocabulary:
                edits = osa(word, t)
                if t not in found and len(t) >= 4 and 0 < edits <= limit:
                    found[t] = 2 * edits
        return found

    def fuzzy_search(self, query: str) -> tuple[dict[str, float], dict[str, int], bool]:
        """Scores and tiers of the books a query matches, and whether they have all its words."""
        normalised = normalise_text(query)
        words = list(dict.fromkeys(normalised.split()))
        completes = bool(normalise_text(query[-1:]))
        weights = {0: 1.0, 1: 0.8, 2: 0.6, 4: 0.4}
        per_word = []  # per word: book -> (cost, score)
        for i, word in enumerate(words):
            best: dict[str, tuple[int, float]] = {}
            for term, cost in self.alternatives(word, completes and i == len(words) - 1).items():
                idf = self.idf(term)
                for b in self.books:
                    if self.has_all([term], b["book_id"]):
                        value = (cost, -weights[cost] * idf * self.impact(term, b["book_id"]))
                        best[b["book_id"]] = min(best.get(b["book_id"], value), value)
            per_word.append(best)
        hits = [b["book_id"] for b in self.books if per_word and all(b["book_id"] in m for m in per_word)]
        matched_all = bool(hits)
        if not hits:
            hits = [b["book_id"] for b in self.books if any(b["book_id"] in m for m in per_word)]
        titles = {b["book_id"]: b["title_norm"] for b in self.books}
        scores = {h: -sum(m[h][1] for m in per_word if h in m) * (1 + PRIOR_STRENGTH * self.prior[h])
                  + EXACT_TITLE_BONUS * (titles[h] == normalised) for h in hits}
        return scores, {h: sum(m[h][0] for m in per_word if h in m) for h in hits}, matched_all

    def tie_break(self, book_id: str) -> tuple:
        book = next(b for b in self.books if b["book_id"] == book_id)
        return (-self.prior[book_id], book["title_norm"], book_id)


def osa(a: str, b: str) -> int:
    """Optimal string alignment distance, the textbook dynamic programme."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def assert_ranked(ranking: list[tuple[str, float]], scores: dict[str, float], oracle: Oracle,
                  tiers: dict[str, int] | None = None) -> None:
    """The whole ranking holds the oracle's books in the oracle's order (tier first), with its scores.

    The index keeps impacts in float32: scores agree to about 1e-6, and two
    books whose oracle scores differ by less than that may come in either order.
    Books with equal oracle scores must follow the tie-break.
    """
    assert sorted(b for b, _ in ranking) == sorted(scores)
    for book_id, score in ranking:
        assert score == pytest.approx(scores[book_id], rel=1e-5, abs=1e-6)
    for (a, _), (b, _) in itertools.pairwise(ranking):
        if tiers and tiers[a] != tiers[b]:
            assert tiers[a] < tiers[b]
        elif scores[a] == scores[b]:
            assert oracle.tie_break(a) < oracle.tie_break(b)
        else:
            assert scores[a] > scores[b] or scores[a] == pytest.approx(scores[b], rel=1e-5, abs=1e-6)


@settings(max_examples=200, deadline=None)
@given(catalogue, st.lists(st.sampled_from([*WORDS, "zzz", "Émile", "LEE", "history"]), min_size=1,
                           max_size=3), st.integers(0, 5), st.integers(1, 8))
def test_search_ranks_exactly_as_the_oracle(raw, words, offset, limit):
    books = build(raw)
    index, oracle = SearchIndex.from_records(books), Oracle(books)
    query = " ".join(words)
    everything = index.search(query, 100)
    scores, tiers, matched_all = oracle.fuzzy_search(query)
    assert everything.total == len(scores) and everything.matched_all_words == matched_all
    ranked = [(index.book(h.position)["book_id"], h.score) for h in everything.hits]
    assert_ranked(ranked, scores, oracle, tiers)
    assert index.search(query, limit, offset).hits == everything.hits[offset:offset + limit]


@settings(max_examples=150, deadline=None)
@given(catalogue, st.lists(st.sampled_from([*WORDS, "logi", "ethisc", "histroy", "tim", "an", "beign", "mnid",
                                            "etihcs", "emil", "arts", "historys"]), min_size=1, max_size=3),
       st.booleans())
def test_typos_and_completions_rank_exactly_as_the_oracle(raw, words, trailing_space):
    books = build(raw)
    index, oracle = SearchIndex.from_records(books), Oracle(books)
    query = " ".join(words) + (" " if trailing_space else "")
    everything = index.search(query, 100)
    scores, tiers, matched_all = oracle.fuzzy_search(query)
    assert everything.total == len(scores) and everything.matched_all_words == matched_all
    ranked = [(index.book(h.position)["book_id"], h.score) for h in everything.hits]
    assert_ranked(ranked, scores, oracle, tiers)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalogue, st.lists(st.sampled_from([*WORDS, "logi", "ethisc", "histroy", "tim", "beign", "mnid",
                                            "etihcs", "emil", "arts", "historys", "zzz"]),
                           min_size=2, max_size=3), st.booleans(), st.booleans())
def test_narrowing_words_by_the_others_changes_no_answer(raw, words, trailing_space, dense):
    index = SearchIndex.from_records(build(raw))
    query = " ".join(words) + (" " if trailing_space else "")
    whole = index_module.word_match

    def answer():
        result = index.search(query, 100)
        return [(h.position, h.score) for h in result.hits], result.total, result.terms, result.corrections

    with small_thresholds() if dense else contextlib.nullcontext():
        narrowed = answer()
        with mock.patch.object(index_module, "word_match", lambda i, w, o, *narrowing: whole(i, w, o)):
            assert answer() == narrowed


@settings(max_examples=50, deadline=None)
@given(catalogue)
def test_exact_title_search_ranks_that_title_first(raw):
    books = build(raw)
    index = SearchIndex.from_records(books)
    for book in books:
        first = ids(index, index.search(book["title"], limit=1))[0]
        assert normalise_text(index.book(index.position_of(first))["title"]) == book["title_norm"]


def oracle_filter(oracle: Oracle, f: Filters) -> dict[str, float]:
    """Books passing every filter, with their relevance key."""
    out = {}
    for b in oracle.books:
        text, book_id = 0.0, b["book_id"]
        for phrase, field in ((f.title, 0), (f.author, 1), (f.subject, 2)):
            words = list(dict.fromkeys(normalise_text(phrase or "").split()))
            if words:
                if not oracle.has_all(words, book_id, (field,)):
                    break
                text += oracle.text(words, book_id, (field,))
        else:
            year = b.get("first_publish_year")
            if (f.min_year is not None or f.max_year is not None) and year is None:
                continue
            if ((f.min_year is not None and year < f.min_year)
                    or (f.max_year is not None and year > f.max_year)):
                continue
            if f.min_rating is not None and (not b["rating_count"]
                                             or b["rating_sum"] / b["rating_count"] < f.min_rating):
                continue
            if f.language and (b.get("language") or "").lower() != f.language.lower():
                continue
            textual = any(normalise_text(p or "") for p in (f.title, f.author, f.subject))
            prior = oracle.prior[book_id]
            out[book_id] = text * (1 + PRIOR_STRENGTH * prior) if textual else prior
    return out


filters_strategy = st.builds(
    Filters, title=st.one_of(st.none(), st.sampled_from([*WORDS, "mind logic", "!!"])),
    author=st.one_of(st.none(), st.sampled_from(["lee", "kim", "emile lee"])),
    subject=st.one_of(st.none(), st.sampled_from(["logic", "history", "art history"])),
    min_year=st.one_of(st.none(), st.integers(1800, 2020)),
    max_year=st.one_of(st.none(), st.integers(1800, 2020)), min_rating=st.one_of(st.none(), st.floats(0, 5)),
    language=st.one_of(st.none(), st.sampled_from(["eng", "FRE"])))


def sort_key(book: dict[str, Any], sort: str, order: str) -> tuple:
    """Year or rating order as (missing last, value in order) for one book."""
    sign = 1 if order == "desc" else -1
    if sort == "year":
        year = book.get("first_publish_year")
        return (1, 0) if year is None else (0, -sign * year)
    return (1, 0) if not book["rating_count"] else (0, -sign * book["rating_sum"] / book["rating_count"])


@settings(max_examples=300, deadline=None)
@given(catalogue, filters_strategy, st.sampled_from(["relevance", "rating", "year", "title"]),
       st.sampled_from(["asc", "desc"]), st.integers(0, 5), st.integers(1, 10))
def test_advanced_selects_and_orders_exactly_as_the_oracle(raw, filters, sort, order, offset, limit):
    books = build(raw)
    index, oracle = SearchIndex.from_records(books), Oracle(books)
    everything = index.advanced(filters, sort, order, 100)
    passing = oracle_filter(oracle, filters)
    assert everything.total == len(passing)
    assert index.advanced(filters, sort, order, limit, offset).hits == everything.hits[offset:offset + limit]
    by_id = {b["book_id"]: b for b in books}
    got = [index.book(h.position)["book_id"] for h in everything.hits]
    if sort == "relevance":
        sign = 1 if order == "desc" else -1
        assert_ranked([(i, h.score) for i, h in zip(got, everything.hits, strict=True)],
                      {i: sign * v for i, v in passing.items()}, oracle)
        return
    if sort == "title":
        expected = sorted(passing, key=lambda i: (by_id[i]["title_norm"], i), reverse=order == "desc")
    else:
        expected = sorted(passing, key=lambda i: (*sort_key(by_id[i], sort, order), *oracle.tie_break(i)))
    assert got == expected


@settings(max_examples=200, deadline=None)
@given(catalogue, st.text(alphabet="mlebtaiEÉ !", min_size=1, max_size=5), st.integers(1, 12))
def test_autocomplete_matches_the_oracle(raw, prefix, limit):
    books = build(raw)
    index = SearchIndex.from_records(books)
    wanted = normalise_text(prefix)
    suggestions = index.autocomplete(prefix, limit)
    if not wanted:
        assert suggestions.total == 0 and suggestions.positions == []
        return
    matching = sorted((b for b in books if b["title_norm"].startswith(wanted)), key=suggestion_key)
    assert suggestions.total == len(matching)
    assert [index.book(p)["book_id"] for p in suggestions.positions] == \
        [b["book_id"] for b in matching[:limit]]


# ---- the large-catalogue paths, engaged on small catalogues by shrinking their thresholds ------------
@contextlib.contextmanager
def small_thresholds() -> Iterator[None]:
    with mock.patch.multiple(index_module, SUGGESTION_BLOCK=4, BLOCK_TOP=3), \
            mock.patch.multiple(ranking_module, SAMPLED_CUT_MIN=5, SAMPLED_CUT_RATIO=1, SAMPLE_SIZE=4), \
            mock.patch.multiple(serving_module, SUGGESTION_BLOCK=4, BLOCK_TOP=3), \
            mock.patch.object(columns_module, "DENSE_PROBE_SHARE", 10**6), \
            mock.patch.multiple(matching_module, PLACES_RATIO=0, DENSE_MERGE_SHARE=10**6):
        yield


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalogue, st.sampled_from(["t", "th", "the", "m", "a", "e", "l"]), st.integers(1, 3))
def test_block_tops_give_the_same_suggestions(raw, prefix, limit):
    books = build(raw)
    expected = SearchIndex.from_records(books).autocomplete(prefix, limit)
    with small_thresholds():
        assert SearchIndex.from_records(books).autocomplete(prefix, limit) == expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalogue, st.lists(st.sampled_from(WORDS), min_size=1, max_size=3), filters_strategy,
       st.sampled_from(["relevance", "rating", "year", "title"]), st.integers(0, 4), st.integers(1, 4))
def test_sampled_cut_and_dense_probes_give_the_same_pages(raw, words, filters, sort, offset, limit):
    books = build(raw)
    index = SearchIndex.from_records(books)
    query = index.search(" ".join(words), limit, offset)
    advanced = index.advanced(filters, sort, "desc", limit, offset)
    with small_thresholds():
        assert index.search(" ".join(words), limit, offset) == query
        assert index.advanced(filters, sort, "desc", limit, offset) == advanced


# ---- facets: counts over every match, filters that restrict the matches -----------------------------
FACET_FILTERS = [FacetFilter(authors=("ann lee",)), FacetFilter(subjects=("Logic", "Time")),
                 FacetFilter(decades=(1900, 1955), languages=("ENG",)),
                 FacetFilter(authors=("Émile Lee", "Bo Kim"), subjects=("art history",), languages=("fre",))]


def brute_facets(books: list[dict[str, Any]]) -> dict[str, Counter]:
    by = {"authors": Counter(), "subjects": Counter(), "decade": Counter(), "language": Counter()}
    for b in books:
        by["authors"].update({normalise_text(a["name"]) for a in b["authors"]})
        by["subjects"].update({normalise_text(s) for s in b["subjects"]})
        if b.get("first_publish_year") is not None:
            by["decade"][b["first_publish_year"] // 10 * 10] += 1
        if b.get("language"):
            by["language"][b["language"]] += 1
    return by


def passes(book: dict[str, Any], wanted: FacetFilter) -> bool:
    def any_of(values, chosen):
        return not chosen or bool({normalise_text(v) for v in values} & {normalise_text(c) for c in chosen})

    year = book.get("first_publish_year")
    decades = {d // 10 * 10 for d in wanted.decades}
    languages = {c.lower() for c in wanted.languages}
    return (any_of([a["name"] for a in book["authors"]], wanted.authors)
            and any_of(book["subjects"], wanted.subjects)
            and (not decades or (year is not None and year // 10 * 10 in decades))
            and (not languages or (book.get("language") or "") in languages))


def assert_facets_are(facets, by: dict[str, Counter], limit: int) -> None:
    for name, counter in by.items():
        assert [c.count for c in facets[name]] == sorted(counter.values(), reverse=True)[:limit], name
        for c in facets[name]:
            assert counter[normalise_text(c.value) if isinstance(c.value, str) else c.value] == c.count


@settings(max_examples=100, deadline=None)
@given(catalogue, st.lists(st.sampled_from([*WORDS, "lee", "histroy", "tim", "zzz"]), min_size=1, max_size=2),
       st.integers(1, 4))
def test_facets_of_a_search_count_every_match_not_only_the_page(raw, words, limit):
    books = build(raw)
    index, by_id = SearchIndex.from_records(books), {b["book_id"]: b for b in books}
    result = index.search(" ".join(words), limit=2, with_matches=True)
    assert len(result.matches) == result.total
    matched = [by_id[index.book(int(p))["book_id"]] for p in result.matches]
    assert_facets_are(index.facets(result.matches, limit), brute_facets(matched), limit)


@settings(max_examples=100, deadline=None)
@given(catalogue, st.lists(st.sampled_from([*WORDS, "lee", "logi"]), min_size=1, max_size=2),
       st.sampled_from(FACET_FILTERS))
def test_facet_filters_restrict_hits_and_totals(raw, words, wanted):
    books = build(raw)
    index, by_id = SearchIndex.from_records(books), {b["book_id"]: b for b in books}
    query = " ".join(words)
    unfiltered = index.search(query, 100, with_matches=True)
    filtered = index.search(query, 100, with_matches=True, facet_filter=wanted)
    allowed_ids = {b["book_id"] for b in books if passes(b, wanted)}
    got = [index.book(h.position)["book_id"] for h in filtered.hits]
    assert set(got) <= allowed_ids and filtered.total == len(filtered.matches) == len(got)
    if filtered.matched_all_words and unfiltered.matched_all_words:
        expected = [index.book(h.position)["book_id"] for h in unfiltered.hits
                    if index.book(h.position)["book_id"] in allowed_ids]
        assert got == expected
    assert (not set(got) and not filtered.matched_all_words) or filtered.total > 0
    alone = index.advanced(Filters(), "title", "asc", 100, with_matches=True, facet_filter=wanted)
    assert {index.book(h.position)["book_id"] for h in alone.hits} == allowed_ids == \
        {index.book(int(p))["book_id"] for p in alone.matches}
    both = index.advanced(Filters(author="lee"), limit=100, facet_filter=wanted)
    plain = index.advanced(Filters(author="lee"), limit=100)
    assert [h for h in plain.hits if index.book(h.position)["book_id"] in allowed_ids] == both.hits
    assert both.total == len(both.hits)
    assert_facets_are(index.facets(alone.matches, 10), brute_facets([by_id[i] for i in allowed_ids]), 10)


def test_facets_on_the_real_sample_and_in_nbytes(real, sample_books):
    result = real.search("philosophy", limit=5, with_matches=True)
    facets = real.facets(result.matches, limit=3)
    assert set(facets) == {"authors", "subjects", "decade", "language"}
    assert 0 < facets["subjects"][2].count <= facets["subjects"][0].count <= result.total
    wanted = FacetFilter(authors=(facets["authors"][0].value,))
    assert real.search("philosophy", facet_filter=wanted).total == facets["authors"][0].count
    assert real.nbytes > real.parts.author_values.nbytes + real.parts.subject_values.nbytes > 0


# ---- refresh: an updated index answers exactly like one built from scratch ---------------------------
def same_answers(a: SearchIndex, b: SearchIndex) -> None:
    def page(index, result):
        books = [(index.book(h.position), h.score) for h in result.hits]
        return books, result.total, result.matched_all_words

    assert a.size == b.size and a.terms == b.terms
    for query in ["mind", "the art", "lee", "logic time", "zzz mind", "ethics being the"]:
        assert page(a, a.search(query, 50)) == page(b, b.search(query, 50))
    for filters in [Filters(title="the"), Filters(author="lee", min_rating=2.5),
                    Filters(min_year=1900, language="fre"), Filters(subject="history")]:
        for sort in ("relevance", "rating", "year", "title"):
            assert page(a, a.advanced(filters, sort, "asc", 50)) == \
                page(b, b.advanced(filters, sort, "asc", 50))
    for prefix in ["t", "m", "the a", "e", "a"]:
        assert [a.book(p) for p in a.autocomplete(prefix, 50).positions] == \
            [b.book(p) for p in b.autocomplete(prefix, 50).positions]
    def facets(index, query):  # every value (no cut among ties), ties in any order, in any first spelling
        counts = index.facets(index.search(query, with_matches=True).matches, limit=1000)
        return {name: sorted((-c.count, normalise_text(str(c.value))) for c in values)
                for name, values in counts.items()}

    for query in ["mind", "the art", "lee"]:
        assert facets(a, query) == facets(b, query)
    for wanted in FACET_FILTERS:
        assert page(a, a.search("the art", 50, facet_filter=wanted)) == \
            page(b, b.search("the art", 50, facet_filter=wanted))
        assert page(a, a.advanced(Filters(), "title", "asc", 50, facet_filter=wanted)) == \
            page(b, b.advanced(Filters(), "title", "asc", 50, facet_filter=wanted))


change_strategy = st.tuples(st.integers(0, 39),
                            st.sampled_from(["rating", "text", "year", "language", "same"]), book_strategy)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalogue, st.lists(change_strategy, max_size=8), st.lists(book_strategy, max_size=5))
def test_updated_index_answers_like_a_fresh_build(raw, changes, new_raw):
    check_updated(raw, changes, new_raw)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalogue, st.lists(change_strategy, min_size=1, max_size=8), st.lists(book_strategy, max_size=5))
def test_updated_index_spliced_through_masks_answers_the_same(raw, changes, new_raw):
    with mock.patch.object(columns_module, "SPLICE_STEPS", 0):
        check_updated(raw, changes, new_raw)


def check_updated(raw, changes, new_raw) -> None:
    books = build(raw)
    index = SearchIndex.from_records(books)
    current = {b["book_id"]: b for b in books}
    changed = []
    for i, kind, other in changes:
        base = books[i % len(books)]
        edited = dict(base)
        if kind == "rating":
            edited["ratings_distribution"] = other["ratings_distribution"]
        elif kind == "text":
            edited.update({k: other[k] for k in ("title", "subtitle", "authors", "subjects")},
                          title_norm=None)
        elif kind == "year":
            edited["first_publish_year"] = other["first_publish_year"]
        elif kind == "language":
            edited["language"] = other["language"]
        edited = with_derived_attributes(edited)
        changed.append(edited)
        current[edited["book_id"]] = edited
    added = build(new_raw, start=1000)
    for b in added:
        current[b["book_id"]] = b
    updated = index.updated(changed + added)
    if not changed and not added:
        assert updated is index
    same_answers(updated, SearchIndex.from_records(current.values(), updated.parts.average_lengths))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalogue, st.lists(st.integers(0, 45), min_size=1, max_size=6), st.lists(change_strategy, max_size=4),
       st.lists(book_strategy, max_size=3), st.booleans())
def test_deleted_books_leave_an_index_that_answers_like_a_fresh_build_of_the_rest(raw, doomed, changes,
                                                                                  new_raw, through_masks):
    books = build(raw)
    index = SearchIndex.from_records(books)
    deleted = [f"OL{1 + i}W" for i in doomed]  # ids past the catalogue are unknown: ignored
    edited = [with_derived_attributes({**books[i % len(books)], "title": other["title"], "title_norm": None})
              for i, _, other in changes]
    added = build(new_raw, start=1000)
    current = {b["book_id"]: b for b in [*books, *edited, *added] if b["book_id"] not in deleted}
    with mock.patch.object(columns_module, "SPLICE_STEPS", 0) if through_masks else contextlib.nullcontext():
        updated = index.updated(edited + added, deleted=deleted)
    if not edited and not added and not any(b["book_id"] in deleted for b in books):
        assert updated is index
    same_answers(updated, SearchIndex.from_records(current.values(), updated.parts.average_lengths))
    again = [b for b in books if b["book_id"] in deleted]  # given again, a deleted book is back
    restored = {**current, **{b["book_id"]: b for b in again}}
    back = updated.updated(again)
    same_answers(back, SearchIndex.from_records(restored.values(), back.parts.average_lengths))


def test_a_catalogue_grown_from_nothing_is_scored_like_one_built_whole(sample_books):
    grown = SearchIndex.from_records([])
    for start in range(0, len(sample_books), 400):
        grown = grown.updated(sample_books[start:start + 400])
    whole = SearchIndex.from_records(sample_books)
    # The averages lag the catalogue by less than a quarter: rankings agree at the top, nearly below it.
    assert grown.parts.average_lengths == pytest.approx(whole.parts.average_lengths, rel=0.25)
    for query in ("zen", "nietzsche", "ethics of", "marcus aurelius", "philosophy"):
        a, b = ids(grown, grown.search(query, 10)), ids(whole, whole.search(query, 10))
        assert a[0] == b[0] and len(set(a) & set(b)) >= 0.8 * len(b)


def test_all_field_lists_merged_in_small_term_ranges_are_the_same(real):
    parts = real.parts
    small = building.combined_lists(parts.fields, parts.lengths, parts.average_lengths, chunk_postings=500)
    for attribute in ("offsets", "docs", "values"):
        assert np.array_equal(getattr(small, attribute), getattr(real.parts.combined, attribute))


def test_unchanged_records_leave_the_index_as_it_is(sample_books, real):
    assert real.updated(sample_books[:50]) is real
    assert real.updated([]) is real


def test_rating_change_moves_a_book_without_touching_the_text(sample_books, real):
    least = ids(real, real.search("ethics", limit=300))[-1]
    record = next(b for b in sample_books if b["book_id"] == least)
    updated = real.updated([with_derived_attributes({**record, "ratings_distribution": {"5": 5000}})])
    assert updated.parts.vocabulary is real.parts.vocabulary and updated.parts.combined is real.parts.combined
    assert ids(updated, updated.search("ethics", limit=300)).index(least) < 300 - 1
    assert updated.book(updated.position_of(least))["rating_count"] == 5000


def test_odd_records_do_not_break_the_index():
    odd = [{"book_id": "OL1W", "title": None, "authors": "nobody", "subjects": [None, 5, "Logic"],
            "first_publish_year": "1999", "rating_count": float("nan"), "cover_id": True},
           {"book_id": "OL2W", "title": "Ελληνικά", "first_publish_year": 10**12, "rating_count": -3},
           {"book_id": "OL3W", "title": "Logic", "authors": [{"name": None}, "x"]}]
    index = SearchIndex.from_records(odd)
    assert index.search("logic").total == 2
    assert index.book(0) == {"book_id": "OL1W", "title": "", "authors": [], "first_publish_year": None,
                             "avg_rating": 0.0, "rating_count": 0, "cover_id": None, "series": None}
    assert index.book(1)["first_publish_year"] is None and index.book(1)["rating_count"] == 0
    assert index.autocomplete("l").positions == [2]


# ---- rounds of refreshes: what a refresh carries over and splices equals a full build -----------------
TITLE_WORDS = [*WORDS, "Mind!", "Être", "zen", "motor", "cycle", "logos"]
ORIGINALS = ["Le Temps", "Die Zeit", "El Arte", "the art"]
PREFIXES = ["t", "th", "the", "m", "mi", "a", "ar", "e", "l", "lo", "z", "c", "é", "être", "die", "le t"]
QUERIES = ["mind", "the art", "lee", "logic time", "zen", "motr", "cycle mind", "die zeit", "le temps",
           "etre", "logos the", "art history", "9780000000002", "kim day"]


def isbn13(rng: np.random.Generator) -> str:
    digits = [9, 7, 8, *rng.integers(0, 10, 9).tolist()]
    check = -sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10
    return "".join(map(str, [*digits, check]))


def random_book(rng: np.random.Generator, book_id: str) -> dict[str, Any]:
    def some(values: list[str], most: int) -> list[str]:
        return [values[i] for i in rng.choice(len(values), rng.integers(0, most + 1), replace=False)]

    record: dict[str, Any] = {
        "book_id": book_id,
        "title": " ".join(rng.choice(TITLE_WORDS, rng.integers(1, 4))),
        "authors": [{"author_id": None, "name": n} for n in some(AUTHORS, 2)],
        "subjects": some(SUBJECTS, 3),
        "first_publish_year": None if rng.random() < 0.2 else int(rng.integers(1800, 2021)),
        "ratings_distribution": {s: int(rng.integers(0, 4)) for s in ("1", "3", "5") if rng.random() < 0.6},
        "language": rng.choice(["eng", "fre", "ger", None]),
        "cover_id": None if rng.random() < 0.3 else int(rng.integers(1, 10**6)),
    }
    if rng.random() < 0.2:
        record["original_title"] = str(rng.choice(ORIGINALS))
    if rng.random() < 0.2:
        record["isbn_13"] = [isbn13(rng) for _ in range(rng.integers(1, 3))]
    if rng.random() < 0.15:
        record["series"] = {"name": "Logos Cycle", "position": float(rng.integers(1, 4))}
    return with_derived_attributes(record)


def changed_book(rng: np.random.Generator, book: dict[str, Any]) -> dict[str, Any]:
    kind = rng.choice(["rating", "title", "text", "year", "original", "same"])
    other = random_book(rng, book["book_id"])
    edited = dict(book)
    if kind == "rating":  # often many ratings: the book jumps ahead in autocomplete
        edited["ratings_distribution"] = {"5": int(rng.integers(0, 40)), "2": int(rng.integers(0, 3))}
    elif kind == "title":
        edited.update(title=other["title"], title_norm=None)
    elif kind == "text":
        edited = {**other, "ratings_distribution": book.get("ratings_distribution")}
    elif kind == "year":
        edited["first_publish_year"] = other["first_publish_year"]
    elif kind == "original":
        edited["original_title"] = other.get("original_title")
    return with_derived_attributes(edited)


def assert_serving_equal(refreshed: SearchIndex) -> None:
    """What the refresh carried over and patched is exactly what a full derivation from its parts gives."""
    fresh = Serving.of(refreshed.parts)
    carried = refreshed.serving
    for name in ("popularity", "prior_factor", "title_rank", "decades"):
        assert np.array_equal(getattr(carried.derived, name), getattr(fresh.derived, name)), name
    assert carried.derived.language_codes == fresh.derived.language_codes
    for name in ("suggestion_order", "suggestion_rank", "block_tops"):
        assert np.array_equal(getattr(carried, name), getattr(fresh, name)), name
    assert {t: sorted(p) for t, p in carried.by_original_title.items()} == \
        {t: sorted(p) for t, p in fresh.by_original_title.items()}


def more_answers(a: SearchIndex, b: SearchIndex) -> None:
    for query in QUERIES:
        for limit, offset in ((50, 0), (5, 3)):
            ra, rb = a.search(query, limit, offset), b.search(query, limit, offset)
            assert [(a.book(h.position), h.score, h.shown_score) for h in ra.hits] == \
                [(b.book(h.position), h.score, h.shown_score) for h in rb.hits], query
            assert (ra.total, ra.matched_all_words, ra.terms, ra.corrections) == \
                (rb.total, rb.matched_all_words, rb.terms, rb.corrections), query
    for prefix in PREFIXES:
        for limit in (1, 3, 50):
            sa, sb = a.autocomplete(prefix, limit), b.autocomplete(prefix, limit)
            assert sa.total == sb.total and [a.book(p) for p in sa.positions] == \
                [b.book(p) for p in sb.positions], prefix


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("paths", ["ordinary", "large-catalogue", "spliced through masks"])
def test_rounds_of_mixed_changes_answer_like_a_fresh_build(seed, paths):
    rng = np.random.default_rng(seed)
    current = {f"OL{i}W": random_book(rng, f"OL{i}W") for i in range(1, 121)}
    thresholds = small_thresholds() if paths == "large-catalogue" else contextlib.nullcontext()
    masks = mock.patch.object(columns_module, "SPLICE_STEPS", 0) if paths == "spliced through masks" \
        else contextlib.nullcontext()
    next_id = 1000
    with thresholds, masks:
        index = SearchIndex.from_records(current.values())
        for _ in range(5):
            ids = sorted(current)
            edited = [changed_book(rng, current[i]) for i in rng.choice(ids, rng.integers(0, 25), replace=False)]
            added = [random_book(rng, f"OL{next_id + j}W") for j in range(rng.integers(0, 8))]
            next_id += 10
            gone = [str(i) for i in rng.choice(ids, rng.integers(0, 4), replace=False)] if rng.random() < 0.6 \
                else []
            for record in [*edited, *added]:
                current[record["book_id"]] = record
            for book_id in gone:
                current.pop(book_id, None)
            index = index.updated([*edited, *added], deleted=gone)
            assert_serving_equal(index)
            fresh = SearchIndex.from_records(current.values(), index.parts.average_lengths)
            same_answers(index, fresh)
            more_answers(index, fresh)


def test_refresh_steps_say_what_changed():
    rng = np.random.default_rng(1)
    books = [random_book(rng, f"OL{i}W") for i in range(1, 11)]
    parts = SearchIndex.from_records(books).parts
    rerated = with_derived_attributes({**books[3], "ratings_distribution": {"5": 99}})
    new = random_book(rng, "OL99W")
    deletion, change = refresh.steps(parts, [rerated, books[5], new], deleted=["OL2W"])
    assert deletion.removed is not None and np.flatnonzero(deletion.removed).tolist() == [1]
    assert change.removed is None and change.changed.tolist() == [2] and change.added == 1  # OL4W moved down
    assert refresh.steps(parts, books[:4]) == []


@pytest.mark.parametrize("seed", range(20))
def test_spliced_tables_equal_the_tables_rebuilt(seed):
    rng = np.random.default_rng(seed)
    values = ["a", "B", "c d", "É", "e", "f", ""]
    books = [list(rng.choice(values, rng.integers(0, 4), replace=False)) for _ in range(rng.integers(0, 30))]
    pairs = ValuePairs.of(books)
    replaced = {int(p): list(rng.choice([*values, "new", "Newer"], rng.integers(0, 3), replace=False))
                for p in rng.choice(len(books), min(len(books), rng.integers(0, 6)), replace=False)}
    appended = [list(rng.choice([*values, "new"], rng.integers(0, 3), replace=False))
                for _ in range(rng.integers(0, 4))]
    expected = pairs.updated(replaced, appended, len(books))
    got = pairs_updated(pairs, replaced, appended, len(books))
    for name in ("books", "codes", "starts", "by_value", "value_starts"):
        assert np.array_equal(getattr(got, name), getattr(expected, name)), name
    assert got.labels == expected.labels and got.keys == expected.keys
    assert pairs.labels == ValuePairs.of(books).labels  # the old table's labels untouched
    removed = rng.random(len(books)) < 0.3
    renumbered = (np.cumsum(~removed) - 1).astype(np.int32)
    expected, got = pairs.without(removed, renumbered), pairs_without(pairs, removed, renumbered)
    for name in ("books", "codes", "starts", "by_value", "value_starts"):
        assert np.array_equal(getattr(got, name), getattr(expected, name)), name

    size = 40
    isbns = IsbnMap.of(rng.integers(0, 8, 30).astype(np.int64), rng.integers(0, size, 30).astype(np.int32))
    removed = rng.random(size) < 0.2
    added, at = rng.integers(0, 10, 6).tolist(), rng.integers(0, size + 3, 6).tolist()
    wanted, spliced = isbns.replaced(removed, added, at), isbns_replaced(isbns, removed, added, at)
    assert np.array_equal(wanted.isbns, spliced.isbns) and np.array_equal(wanted.positions, spliced.positions)


def test_a_rating_bound_is_exact_where_float32_cannot_tell():
    """Averages are kept as float32 for filters; a bound within float32's rounding of an average is still
    settled exactly (2.0000001 and 2.0 are one float32)."""
    given = [{"2": 1}, {"5": 3, "3": 2}, {"2": 3}, {}]  # averages 2, 21 / 5, 2 and none
    books = [{"book_id": f"OL{i}W", "title": f"Book {i}", "ratings_distribution": stars}
             for i, stars in enumerate(given, start=1)]
    index = SearchIndex.from_records([with_derived_attributes(b) for b in books])

    def passing(bound: float) -> set[str]:
        every_book = set(ids(index, index.advanced(Filters(min_rating=bound), "rating", limit=10)))
        with_a_word = set(ids(index, index.advanced(Filters(title="book", min_rating=bound), "rating", limit=10)))
        assert every_book == with_a_word  # the compiled pass over every book, and numpy over a word's books
        return every_book

    assert passing(1e-300) == {"OL1W", "OL2W", "OL3W"}  # its float32 is 0, an unrated book's average
    assert passing(2.0) == {"OL1W", "OL2W", "OL3W"}
    assert passing(2.0000001) == {"OL2W"}  # the float32 of the bound is 2.0: the exact average decides
    assert passing(4.2) == {"OL2W"}  # 21 / 5 is the bound itself
    assert passing(4.2000001) == set()
