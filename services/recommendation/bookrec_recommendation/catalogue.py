"""What the recommender knows about books, and the picks that need no model (pure: no I/O).

Titles and authors for responses; content similarity (shared subjects, authors and series with what a
user rated) and popularity for the cold start; each series' books in order (the next one of a book).
Popularity ranks books by the lower confidence bound of a Bayesian average of their ratings (prior
weight: the median book's rating count), so a handful of 5-star ratings cannot outrank thousands of 4s.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from bookrec_catalog.catalog import Series, normalise_text

# The popularity prior: a typical spread of 1-5 star ratings, and a one-sided 95% bound.
RATING_SPREAD = 1.0
CONFIDENCE_Z = 1.645


@dataclass(frozen=True)
class Recommendation:
    book_id: str
    score: float
    reason: str


def ranked(picks: list[Recommendation]) -> list[Recommendation]:
    """Picks as shown: a score never above the one before it. Picks that fill a list from a weaker
    strategy (content after collaborative, popularity after content) come after, whatever their own
    scale; their score is capped so the list reads in order."""
    shown: list[Recommendation] = []
    for pick in picks:
        if shown and pick.score > shown[-1].score:
            pick = Recommendation(pick.book_id, shown[-1].score, pick.reason)
        shown.append(pick)
    return shown


@dataclass(frozen=True)
class CatalogueEntry:
    book_id: str
    title: str
    authors: tuple[str, ...]
    subjects: tuple[str, ...]
    rating_sum: int = 0
    rating_count: int = 0
    series: Series | None = None


class Catalogue:
    """What the recommender knows about books: titles and authors for responses, content, popularity."""

    def __init__(self, entries: Iterable[CatalogueEntry]) -> None:
        self.entries = {e.book_id: e for e in entries}
        self.order = list(self.entries)
        counts = np.array([self.entries[b].rating_count for b in self.order], dtype=np.float64)
        sums = np.array([self.entries[b].rating_sum for b in self.order], dtype=np.float64)
        rated = counts > 0
        prior_mean = sums[rated].sum() / counts[rated].sum() if rated.any() else 3.0
        prior_weight = max(1.0, float(np.median(counts[rated]))) if rated.any() else 1.0
        # Bayesian average: few ratings pull a book towards the catalogue mean, with the weight of a
        # typical book's ratings. Ranked by its lower confidence bound, so a handful of 5s cannot beat
        # thousands of 4s: a book is credited with what its ratings show beyond doubt.
        self.bayesian = (sums + prior_weight * prior_mean) / (counts + prior_weight)
        self.prior = self.bayesian - CONFIDENCE_Z * RATING_SPREAD / np.sqrt(counts + prior_weight)
        self.popularity_rank = np.lexsort((-counts, -self.prior))
        self.features: dict[str, list[int]] = defaultdict(list)
        for position, book_id in enumerate(self.order):
            for feature in self._features(self.entries[book_id]):
                self.features[feature].append(position)
        self.position = {b: i for i, b in enumerate(self.order)}
        # Each series' numbered books by position (ties: catalogue order), for the next one of a book.
        self.series: defaultdict[str, list[tuple[float, int]]] = defaultdict(list)
        for position, book_id in enumerate(self.order):
            series = self.entries[book_id].series
            if series is not None and series.position is not None:
                self.series[normalise_text(series.name)].append((float(series.position), position))
        for numbered in self.series.values():
            numbered.sort()
        self._rank_of = np.empty(len(self.order), dtype=np.int64)
        self._rank_of[self.popularity_rank] = np.arange(len(self.order))

    @staticmethod
    def _features(entry: CatalogueEntry) -> set[str]:
        return ({f"a:{normalise_text(a)}" for a in entry.authors if a}
                | {f"s:{normalise_text(s)}" for s in entry.subjects if s}
                | ({f"r:{normalise_text(entry.series.name)}"} if entry.series and entry.series.name else set()))

    def next_in_series(self, book_id: str) -> CatalogueEntry | None:
        """The book after `book_id` in its series (the lowest position above its own), if any."""
        entry = self.entries.get(book_id)
        if entry is None or entry.series is None or entry.series.position is None:
            return None
        for position, index in self.series.get(normalise_text(entry.series.name), ()):
            if position > entry.series.position:
                return self.entries[self.order[index]]
        return None

    def with_subject(self, subject: str) -> frozenset[str]:
        """The books with this subject, compared as the index compares text (case and accents folded)."""
        return frozenset(self.order[p] for p in self.features.get(f"s:{normalise_text(subject)}", ()))

    def __len__(self) -> int:
        return len(self.order)

    def popular(self, count: int, exclude: set[str], within: frozenset[str] | None = None
                ) -> list[Recommendation]:
        """The most popular books not in `exclude` (and, given `within`, among those books only)."""
        picks = []
        ranking: Iterable[int] = self.popularity_rank
        if within is not None:
            ranking = sorted((self.position[b] for b in within if b in self.position),
                             key=self._rank_of.__getitem__)
        for position in ranking:
            book_id = self.order[position]
            if book_id in exclude:
                continue
            entry = self.entries[book_id]
            reason = (f"popular: {entry.rating_sum / entry.rating_count:.2f} average from "
                      f"{entry.rating_count} ratings" if entry.rating_count else "popular in the catalogue")
            picks.append(Recommendation(book_id, round(float(self.prior[position]), 4), reason))
            if len(picks) == count:
                break
        return picks

    def similar(self, rated: Mapping[str, int], count: int, exclude: set[str],
                popularity_weight: float = 0.3, within: frozenset[str] | None = None) -> list[Recommendation]:
        """Books sharing subjects, authors and series with what the user liked, blended with popularity
        (given `within`: among those books only)."""
        scores: defaultdict[int, float] = defaultdict(float)
        because: dict[int, tuple[float, str, str]] = {}
        for book_id, rating in rated.items():
            entry = self.entries.get(book_id)
            if entry is None:
                continue
            liking = (rating - 2.5) / 2.5  # 5 stars: +1, 1 star: -0.6
            for feature in self._features(entry):
                holders = self.features.get(feature, ())
                if len(holders) < 2:
                    continue
                # Rare shared features say more than common ones (inverse document frequency).
                weight = (liking * math.log(1 + len(self.order) / len(holders))
                          * (2.0 if feature[0] == "a" else 1.0))
                for position in holders:
                    scores[position] += weight
                    if weight > because.get(position, (0.0, "", ""))[0]:
                        because[position] = (weight, feature, book_id)
        if not scores:
            return self.popular(count, exclude, within)
        top = max(scores.values())
        blended = [(s / top * (1 - popularity_weight) + popularity_weight * (self.prior[p] - 1) / 4, p)
                   for p, s in scores.items() if s > 0 and self.order[p] not in exclude
                   and (within is None or self.order[p] in within)]
        blended.sort(reverse=True)
        picks = []
        for score, position in blended[:count]:
            _, feature, source = because[position]
            kind = {"a": "by", "s": "about", "r": "in the series"}[feature[0]]
            name = self._display(feature)
            picks.append(Recommendation(self.order[position], round(float(score), 4),
                                        f"{kind} {name}, like {self.title(source)}"))
        if len(picks) < count:
            picks += self.popular(count - len(picks), exclude | {p.book_id for p in picks}, within)
        return ranked(picks)

    @staticmethod
    def _display(feature: str) -> str:
        return feature[2:]

    def title(self, book_id: str) -> str:
        entry = self.entries.get(book_id)
        return f"“{entry.title}”" if entry else book_id


def catalogue_entry(record: Mapping[str, Any]) -> CatalogueEntry:
    return CatalogueEntry(
        book_id=record["book_id"], title=record.get("title", ""),
        authors=tuple(a.get("name", "") for a in record.get("authors", []) if isinstance(a, Mapping)),
        subjects=tuple(record.get("subjects", [])[:20]),
        rating_sum=int(record.get("rating_sum", 0)), rating_count=int(record.get("rating_count", 0)),
        series=series_of(record.get("series")))


def series_of(stored: Any) -> Series | None:
    """A book item's `{"name", "position"}` (position optional) as a Series; None if absent or malformed."""
    if not isinstance(stored, Mapping) or not isinstance(stored.get("name"), str) or not stored["name"]:
        return None
    position = stored.get("position")
    if isinstance(position, bool) or not isinstance(position, int | float):
        position = None
    return Series(stored["name"], position)
