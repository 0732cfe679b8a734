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
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import regex

from bookrec_catalog.catalog import with_derived_attributes
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


def books(n: int, seed: int, first_id: int = 1, authors_dump: Path | None = None) -> Iterator[dict[str, Any]]:
    """`n` book records as the books table holds them, ids OL{first_id}W on."""
    words, authors, subjects = vocabularies(authors_dump)
    rng = np.random.default_rng(seed)
    # Words drawn by their frequency in real titles; popularity heavy-tailed.
    title_lengths = rng.integers(1, 7, n)
    title_words = rng.integers(len(words), size=int(title_lengths.sum()))
    counts = np.floor(rng.pareto(1.2, n) * 3).astype(int)
    cursor = 0
    for i in range(n):
        k = int(title_lengths[i])
        title = " ".join(words[j] for j in title_words[cursor:cursor + k])
        cursor += k
        c = int(counts[i])
        stars = rng.multinomial(c, [0.05, 0.08, 0.22, 0.35, 0.30]) if c else [0] * 5
        yield with_derived_attributes({
            "book_id": f"OL{first_id + i}W", "title": title,
            "authors": [{"author_id": None, "name": authors[int(j)]}
                        for j in rng.integers(len(authors), size=1 + int(rng.random() < 0.15))],
            "subjects": [subjects[int(j)] for j in rng.integers(len(subjects), size=int(rng.integers(1, 8)))],
            "first_publish_year": int(rng.integers(1500, 2025)) if rng.random() < 0.9 else None,
            "language": "eng" if rng.random() < 0.8 else str(rng.choice(["fre", "ger", "spa", "ita"])),
            "cover_id": int(rng.integers(1, 14_000_000)) if rng.random() < 0.7 else None,
            "ratings_distribution": {str(s + 1): int(v) for s, v in enumerate(stars)},
        }, now=STAMP)
