"""Synthetic catalogues for the search benchmarks: books made from real vocabularies, at any size.

Title words come from Open Library and goodbooks-10k titles (the bundled seed,
`bookrec_etl.seed.seed_files()`), author names from the Open Library samples and the goodbooks authors
(and from an Open Library authors dump when one is given: `make bench-search` gives the ETL's test
sample), subjects from Open Library subjects and goodbooks genres; rating counts follow a heavy-tailed
(Pareto) skew as in real catalogues. The same seed and inputs give the same books.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import regex

from bench.search.coined import Coiner
from bench.search.heaps import Heaps
from bookrec_catalog.catalog import search_terms, with_derived_attributes
from bookrec_etl.seed import seed_files

STAMP = "2026-01-01T00:00:00.000000Z"
NON_LATIN = regex.compile(r"[\p{Script=Arabic}\p{Script=Cyrillic}\p{Script=Greek}\p{Script=Han}"
                          r"\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]")
CJK = regex.compile(r"[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]+")


@lru_cache(maxsize=4)
def vocabularies(authors_dump: Path | None = None) -> tuple[list[str], list[str], list[str]]:
    """Title words (with repeats: drawn by frequency), author names and subjects."""
    files = seed_files()
    titles, subjects, authors = [], [], []
    with gzip.open(files["philosophy"], "rt") as lines:
        for line in lines:
            row = json.loads(line)
            titles.append(row["title"])
            subjects += row.get("subjects", [])[:10]
            authors += row.get("authors", [])
    with gzip.open(files["goodbooks_books"], "rt", newline="") as handle:
        for row in csv.DictReader(handle):
            titles.append(row["title"])
            authors += [a.strip() for a in row["authors"].split(",")]
    with gzip.open(files["goodbooks_genres"], "rt", newline="") as handle:
        for row in csv.DictReader(handle):
            subjects += row["genres"].split(",")[:8]
    if authors_dump is not None:
        with gzip.open(authors_dump, "rt", encoding="utf-8") as dump:
            for line in dump:
                name = json.loads(line.split("\t")[4]).get("name")
                if name:
                    authors.append(name)
    words = [w for t in titles for w in t.split()]
    return words, sorted(set(authors)), sorted(set(s for s in subjects if s))


CHUNK = 65_536  # books drawn at a time: generation streams, whatever the size
COPIED_PER_NEW = 2.0  # a coined title word comes back this many times on average (Simon's model)
NEW_AUTHOR_SHARE = 0.3  # of the new words, the share that are the surnames of new authors


class Vocabulary:
    """Follows a vocabulary-growth curve (`heaps.Heaps`) as books are made: before each book, the terms
    still missing against the curve are coined (`coined.Coiner`), as title words or, one in
    `NEW_AUTHOR_SHARE`, as the surname of a new author (a real given name first); a title word is
    otherwise a real one drawn by its frequency or, as often as keeps each coined word at about
    1 + COPIED_PER_NEW uses, a coined one used before (any past use alike: rich words get richer,
    Simon's model, so coined words' frequencies fall off as real ones do). Counts the distinct terms
    exactly as the index tokenizes them."""

    def __init__(self, curve: Heaps, words: list[str], authors: list[str], subjects: list[str]) -> None:
        self.curve = curve
        self.coiner = Coiner(t for text in (*words, *authors, *subjects) for t in _terms(text))
        self.given = sorted({a.split()[0] for a in authors if len(a.split()) > 1})
        self.seen: set[str] = set()
        self.coined = 0  # distinct coined terms (each coined word is one new term)
        self.used: list[str] = []  # every use of a coined title word, for Simon's copies
        self.new_authors: list[str] = []

    def add(self, terms: Iterable[str]) -> None:
        self.seen.update(terms)

    @property
    def distinct(self) -> int:
        return len(self.seen) + self.coined

    def missing(self, n: int) -> int:
        return max(0, int(self.curve(n)) - self.distinct)

    def coin(self) -> str:
        self.coined += 1
        return self.coiner.next_word()


@lru_cache(maxsize=1 << 17)
def _terms(text: str) -> tuple[str, ...]:
    return tuple(search_terms(text))


def books(n: int, seed: int, first_id: int = 1, authors_dump: Path | None = None,
          curve: Heaps | None = None, growth: list[tuple[int, int]] | None = None) -> Iterator[dict[str, Any]]:
    """`n` book records as the books table holds them, ids OL{first_id}W on. With `curve`, the
    catalogue's distinct terms follow it (`Vocabulary`); without, every word is a real one (the
    vocabulary stops growing near 21,500 terms). `growth`, when given, receives (books, distinct terms)
    at each power of two and at the end."""
    words, authors, subjects = vocabularies(authors_dump)
    rng = np.random.default_rng(seed)
    vocabulary = Vocabulary(curve, words, authors, subjects) if curve else None
    made = 0
    while made < n:
        size = min(CHUNK, n - made)
        # Words drawn by their frequency in real titles; popularity heavy-tailed.
        title_lengths = rng.integers(1, 7, size)
        title_words = rng.integers(len(words), size=int(title_lengths.sum()))
        counts = np.floor(rng.pareto(1.2, size) * 3).astype(int)
        cursor = 0
        for i in range(size):
            k = int(title_lengths[i])
            title = [words[j] for j in title_words[cursor:cursor + k]]
            cursor += k
            names = [authors[int(j)] for j in rng.integers(len(authors), size=1 + int(rng.random() < 0.15))]
            topics = [subjects[int(j)] for j in rng.integers(len(subjects), size=int(rng.integers(1, 8)))]
            if vocabulary is not None:
                _grow(vocabulary, made + i + 1, title, names, topics, rng)
            c = int(counts[i])
            stars = rng.multinomial(c, [0.05, 0.08, 0.22, 0.35, 0.30]) if c else [0] * 5
            yield with_derived_attributes({
                "book_id": f"OL{first_id + made + i}W", "title": " ".join(title),
                "authors": [{"author_id": None, "name": name} for name in names],
                "subjects": topics,
                "first_publish_year": int(rng.integers(1500, 2025)) if rng.random() < 0.9 else None,
                "language": "eng" if rng.random() < 0.8 else str(rng.choice(["fre", "ger", "spa", "ita"])),
                "cover_id": int(rng.integers(1, 14_000_000)) if rng.random() < 0.7 else None,
                "ratings_distribution": {str(s + 1): int(v) for s, v in enumerate(stars)},
            }, now=STAMP)
            if growth is not None and vocabulary is not None:
                count = made + i + 1
                if count & (count - 1) == 0 or count == n:
                    growth.append((count, vocabulary.distinct))
        made += size


def _grow(vocabulary: Vocabulary, count: int, title: list[str], names: list[str], topics: list[str],
          rng: np.random.Generator) -> None:
    """Coins what the curve is missing at book `count` into its title and authors (in place), and
    counts its terms."""
    used = vocabulary.used
    coined = [False] * len(title)
    copy_rate = min(0.5, COPIED_PER_NEW * vocabulary.coined / (count * 3.5))
    for at in range(len(title)):
        if used and rng.random() < copy_rate:
            title[at], coined[at] = used[int(rng.integers(len(used)))], True
            used.append(title[at])
    new_author = bool(vocabulary.new_authors) and rng.random() < NEW_AUTHOR_SHARE  # terms counted already
    if new_author:
        names[0] = vocabulary.new_authors[int(rng.integers(len(vocabulary.new_authors)))]
    for topic in topics:
        vocabulary.add(_terms(topic))
    for at in range(min(vocabulary.missing(count), len(title) + 1)):
        word = vocabulary.coin()
        if at == len(title) or rng.random() < NEW_AUTHOR_SHARE:
            given = vocabulary.given[int(rng.integers(len(vocabulary.given)))]
            vocabulary.add(_terms(given))
            names[0], new_author = f"{given} {word.title()}", True
            vocabulary.new_authors.append(names[0])
        else:
            title[at], coined[at] = word, True
            used.append(word)
    for name in names[1:] if new_author else names:  # after coining: a new author takes the first place
        vocabulary.add(_terms(name))
    for word, made_up in zip(title, coined, strict=True):
        if not made_up:  # coined words are counted when coined
            vocabulary.add(_terms(word))
