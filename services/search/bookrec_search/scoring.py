"""The score's constants and formulas, over plain numbers and arrays: pure, imports nothing of the package.

The specification they implement is in services/search/README.md (Scoring).
"""

from __future__ import annotations

import math

import numpy as np

FIELDS = ("title", "authors", "subjects", "original_title")
FIELD_WEIGHTS = (3.0, 2.0, 1.0, 3.0)
TITLE, ORIGINAL_TITLE = 0, 3  # a book's two names: a term counts through the one it scores better in
K1, B = 1.2, 0.75
PRIOR_STRENGTH = 0.15
PRIOR_RATINGS = 10.0  # phantom ratings at the catalogue's mean pulling each average towards it
EXACT_TITLE_BONUS = 10.0
ISBN_BONUS = 10.0


def saturated(frequencies: np.ndarray, lengths: np.ndarray, average_length: float) -> np.ndarray:
    """BM25's term-frequency saturation, unweighted: tf·(k1 + 1) / (tf + k1·(1 − b + b·len / avg))."""
    tf = frequencies.astype(np.float32)
    lengths = lengths.astype(np.float32, copy=False)  # kept as uint16 (older snapshots: float32)
    return tf * (K1 + 1) / (tf + K1 * (1 - B + B * lengths / max(average_length, 1e-9)))


def idf(size: int, document_frequency: int) -> float:
    return math.log(1 + (size - document_frequency + 0.5) / (document_frequency + 0.5))


def rating_totals(rating_count: np.ndarray, rating_sum: np.ndarray) -> tuple[int, int]:
    """The catalogue's ratings and their stars, in all (unrated books add nothing)."""
    return int(rating_count.sum(dtype=np.int64)), int(rating_sum.sum(dtype=np.int64))


def mean_rating(totals: tuple[int, int]) -> float:
    """The catalogue's mean rating from its `rating_totals` (3.0 before any rating): what each book's
    average is pulled towards."""
    ratings, stars = totals
    return stars / ratings if ratings else 3.0


def average_ratings(rating_count: np.ndarray, rating_sum: np.ndarray) -> np.ndarray:
    """Per book given, its average rating, 0 unrated (filters and sorts read a float32 copy of it, rounded
    down: `Derived.avg_rating`)."""
    return np.where(rating_count > 0, rating_sum / np.maximum(rating_count, 1), 0.0)


def float32_at_or_below(values: np.ndarray | float) -> np.ndarray:
    """Each value as the largest float32 at or below it. Averages kept so never exceed the exact ones: a
    filter "at least b" on them then passes every book at or above the float32 below b, and the books at
    that float32 itself pass exactly when b is a float32 (3.5, 4.0), else are the only ones to check."""
    nearest = np.asarray(values, dtype=np.float32)
    return np.where(nearest > values, np.nextafter(nearest, np.float32(-np.inf)), nearest)


def rating_columns(rating_count: np.ndarray, rating_sum: np.ndarray,
                   mean: float) -> tuple[np.ndarray, np.ndarray]:
    """Per book: the popularity prior, and the factor text scores take, at the catalogue's `mean` rating."""
    bayes = (rating_sum + PRIOR_RATINGS * mean) / (rating_count + PRIOR_RATINGS)
    popularity = np.log1p(rating_count) * bayes / 5.0
    return popularity, (1 + PRIOR_STRENGTH * popularity).astype(np.float32)
