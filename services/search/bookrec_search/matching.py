"""What each query word matches: its alternatives (itself, completions, corrections) and their books.

Over an index's parts; the costs and weights are specified in services/search/README.md (Matching).
Pure, numpy, no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bookrec_search import kernels
from bookrec_search.columns import Probe, probe
from bookrec_search.lexicon import ONE_TYPO, TWO_TYPOS
from bookrec_search.parts import IndexParts
from bookrec_search.scoring import idf

PLACES_RATIO = 8  # a list at most this many times longer than the books it is matched within is probed in their bits
PLACES_SHARE = 256  # once those books are over 1/256 of all: their bits cost a pass over 1/64 of the books
DENSE_MERGE_SHARE = 4  # merge lists in arrays over every document once they hold 1/4 as many postings
REVERSE_SEARCH_RATIO = 8  # a list this many times shorter than the books it is matched within is searched for
MAX_CORRECTIONS = 32  # per query word: the closest, then the most used
TAKEN_AS_TYPED = 1000  # a word in this many books is neither completed nor corrected
PREFIX_MIN, PREFIX_TERMS = 2, 10  # the last word completes to its PREFIX_TERMS most used extensions
# What one query may cost (README, Bounds): the words it is matched by (later
# ones are ignored), and the longest word completed or corrected (longer ones are matched as typed).
MAX_QUERY_WORDS = 16
MAX_EXPANDED_LENGTH = 24
FALLBACK_POSTINGS = 250_000  # an any-word answer adds up this many, its rarest words first; commoner ones left out
EXACT, PREFIX_ONLY, PER_EDIT = 0, 1, 2  # the cost of a word's match; a book's tier is the sum over words
MATCH_WEIGHTS = {EXACT: 1.0, PREFIX_ONLY: 0.8, PER_EDIT: 0.6, 2 * PER_EDIT: 0.4}  # x BM25 of the term matched


@dataclass(frozen=True, slots=True)
class Alternative:
    """A term a query word matches: the word itself, a completion of it, or a correction."""

    term: str
    term_id: int
    cost: int  # EXACT, PREFIX_ONLY or PER_EDIT x edits
    weight: float  # idf of the term x MATCH_WEIGHTS[cost]
    books: int  # how many books have the term


@dataclass(frozen=True, slots=True)
class WordMatch:
    """The books matching one query word, through its best alternative in each book."""

    word: str
    alternatives: list[Alternative]
    docs: np.ndarray  # ascending
    values: np.ndarray  # x weight: the word's text score in each book
    weight: float
    cost: np.ndarray | int  # per book, or the same for all
    choice: np.ndarray | None  # per book, which alternative (None: the only one)


def alternatives(parts: IndexParts, word: str, completes: bool) -> list[Alternative]:
    """The terms `word` matches: itself, its completions when it is the last word, its corrections."""
    frequency = parts.combined.offsets
    found: dict[int, int] = {}  # term id -> cost
    term = parts.vocabulary.get(word)
    if term is not None:
        found[term] = EXACT
        if frequency[term + 1] - frequency[term] >= TAKEN_AS_TYPED:
            # Its own books fill every page before any completion or correction would show.
            return _alternatives_of(parts, found)
    if len(word) > MAX_EXPANDED_LENGTH:  # its deletion variants grow as its length squared
        return _alternatives_of(parts, found)
    if completes and len(word) >= PREFIX_MIN:
        ids = parts.lexicon.with_prefix(word)
        if len(ids):
            counts = frequency[ids + 1] - frequency[ids]
            if len(ids) > PREFIX_TERMS + 1:
                keep = np.argpartition(-counts, PREFIX_TERMS)[:PREFIX_TERMS + 1]
                ids, counts = ids[keep], counts[keep]
            for t in ids[counts > 0]:
                found.setdefault(int(t), PREFIX_ONLY)
    if len(word) >= ONE_TYPO and not word.isdigit():
        near = parts.lexicon.near(word, 2 if len(word) >= TWO_TYPOS else 1)
        counts = {t: int(frequency[t + 1] - frequency[t]) for t, _ in near}
        closest = sorted((e, -counts[t], t) for t, e in near if counts[t] and t not in found)
        for edits, _, t in closest[:MAX_CORRECTIONS]:
            found[t] = PER_EDIT * edits
    return _alternatives_of(parts, found)


def rarest_within(postings: Sequence[int]) -> list[bool]:
    """Which of the words with these `postings` (their alternatives' books) an any-word answer adds up: the
    rarest first, while their postings total at most FALLBACK_POSTINGS (the rarest always); the commonest words
    past that are left out."""
    kept = [False] * len(postings)
    total = 0
    for i in sorted(range(len(postings)), key=postings.__getitem__):
        if total and total + postings[i] > FALLBACK_POSTINGS:
            break
        kept[i], total = True, total + postings[i]
    return kept


def _alternatives_of(parts: IndexParts, found: Mapping[int, int]) -> list[Alternative]:
    frequency = parts.combined.offsets
    alternatives = []
    for t, cost in found.items():
        df = int(frequency[t + 1] - frequency[t])
        if df:
            alternatives.append(Alternative(parts.lexicon.by_id[t], t, cost,
                                             idf(parts.size, df) * MATCH_WEIGHTS[cost], df))
    alternatives.sort(key=lambda a: (a.cost, -a.books, a.term))
    return alternatives


def word_match(parts: IndexParts, word: str, alternatives: list[Alternative], within: np.ndarray | None = None,
               probe_of: Callable[[int], Probe | None] = lambda term: None) -> WordMatch:
    """The books matching `word` (only those `within`, when given) through its best alternative.

    `probe_of(term)`: a quicker way to look books up in a term's whole list (a common term's bitmap), if any.
    """
    if not alternatives:
        return WordMatch(word, [], np.empty(0, dtype=np.int32), np.empty(0, dtype=np.float32), 1.0, 0, None)
    if len(alternatives) == 1:
        a = alternatives[0]
        docs, impacts = parts.combined.get(a.term_id)
        return WordMatch(word, alternatives, docs, impacts, a.weight, a.cost, None)
    lists = [parts.combined.get(a.term_id) for a in alternatives]
    size = parts.size
    if within is not None:
        # Merged in places within `within` (ascending, so places keep book order), mapped back at the end.
        made: list[tuple[np.ndarray, np.ndarray]] = []

        def places() -> tuple[np.ndarray, np.ndarray]:  # `within` as ranked bits, made at most once
            if not made:
                made.append(kernels.ranked_bits(within, parts.size))
            return made[0]

        lists = [_within(docs, impacts, within, parts.size, probe_of(a.term_id), places)
                 for a, (docs, impacts) in zip(alternatives, lists, strict=True)]
        size = len(within)
    match = _merged(word, alternatives, lists, size)
    if within is not None:
        match = dataclasses.replace(match, docs=within[match.docs])
    return match


def _within(docs: np.ndarray, impacts: np.ndarray, within: np.ndarray, size: int, bitmap: Probe | None,
            places: Callable[[], tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The places in `within` of the books of one list, and their impacts, looked up the cheapest way: a
    short list searched for in `within`; else `within` probed through the list's bitmap, or each of the list's
    books probed in the ranked bits of `within` (`places()`, made once: a pass over `within` and 1/64 of the
    books, worth it when `within` is not a few books), or `within` searched for in the list."""
    if len(docs) * REVERSE_SEARCH_RATIO < len(within):
        at = np.minimum(np.searchsorted(within, docs), len(within) - 1)
        held = within[at] == docs
        return at[held].astype(np.int32), impacts[held]
    if bitmap is None and len(within) * PLACES_SHARE > size and len(docs) <= len(within) * PLACES_RATIO:
        held, at = kernels.bitmap_probe(*places(), docs)
        return at, impacts[held]
    found, at = bitmap(within) if bitmap is not None else probe(docs, within, size)
    return found.astype(np.int32), impacts[at]


def _merged(word: str, alternatives: list[Alternative], lists: list[tuple[np.ndarray, np.ndarray]],
            size: int) -> WordMatch:
    """Each document's best alternative, from the alternatives' lists over documents 0..size-1."""
    docs, values, costs, choice = merged(lists, [a.weight for a in alternatives],
                                         [a.cost for a in alternatives], kernels.BEST, size)
    return WordMatch(word, alternatives, docs, values, 1.0, costs, choice)


def merged(lists: Sequence[tuple[np.ndarray, np.ndarray]], weights: Sequence[float],
           costs: Sequence[np.ndarray | int], keep: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                             np.ndarray]:
    """The union of `lists` (each ascending, over documents 0..size-1), their values times `weights`, with
    their `costs` (per list, or per posting): `kernels.merged_runs`, which keeps of each document its BEST
    posting or the lists' postings SUMMED."""
    if not lists:
        return (np.empty(0, dtype=np.int32), np.empty(0, dtype=np.float32), np.empty(0, dtype=np.int32),
                np.empty(0, dtype=np.int16))
    starts = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum([len(docs) for docs, _ in lists], out=starts[1:])
    docs = np.concatenate([d for d, _ in lists])
    values = np.concatenate([np.float32(w) * v for w, (_, v) in zip(weights, lists, strict=True)])
    cost = np.concatenate([np.broadcast_to(np.asarray(c, dtype=np.int32), (len(d),))
                           for c, (d, _) in zip(costs, lists, strict=True)])
    return kernels.merged_runs(docs, starts, values.astype(np.float32, copy=False), cost, keep, size,
                               int(starts[-1]) * DENSE_MERGE_SHARE > size)


def matched_terms(matches: Sequence[WordMatch], where: Sequence[Any],
                   matched_all: bool) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Per query word, the terms it matched in the matching books; and the words only corrected."""
    terms: dict[str, list[str]] = {}
    corrections: dict[str, list[str]] = {}
    if not where:
        return terms, corrections
    for m, at in zip(matches, where, strict=True):
        if m.choice is None:
            chosen = [m.alternatives[0]]
        else:
            picked = m.choice if not matched_all or isinstance(at, slice) else m.choice[at]
            used = np.bincount(picked, minlength=len(m.alternatives))
            chosen = [m.alternatives[j] for j in np.flatnonzero(used)]
        chosen.sort(key=lambda a: (a.cost, -a.books, a.term))
        terms[m.word] = [a.term for a in chosen]
        if chosen[0].cost >= PER_EDIT:
            corrections[m.word] = terms[m.word]
    return terms, corrections
