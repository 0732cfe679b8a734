"""How a catalogue's vocabulary grows with its size (Heaps' law, V(n) = K·n^β), fitted on the bundled books.

The terms are the index's own (`bookrec_search.documents.Document.of(record).tokens`: every field, every
script as `search_terms` splits it), over the bundled catalogue as the local stack loads it
(`catalogue.records()`: goodbooks-10k through the ETL and the Open Library philosophy JSONL) and the
Open Library dev-instance works, taken in a few random orders; V(n) is the number of distinct terms in
the first n books. The fit is least squares of log V on log n over sizes from 200 books up.

    python -m bench.search.heaps [--authors-dump FILE]

prints the fit and, for the Open Library authors dump sample, the same fit over author names alone
(what `synthetic` grows its authors by).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from bookrec_catalog.catalog import search_terms
from bookrec_etl.seed import seed_files
from bookrec_search.documents import Document

ORDERS = 5  # random orders averaged: the files' own order (popular books first) would bend the curve
SMALLEST = 1_000  # below this, the first books' function words bend V(n) (beta 0.66 from 200 books, 0.60 from 3,000)


@dataclass(frozen=True, slots=True)
class Heaps:
    """V(n) = k·n^beta distinct terms in n books."""

    k: float
    beta: float

    def __call__(self, n: float) -> float:
        return float(self.k * n ** self.beta)


def growth(documents: Sequence[Iterable[str]], sizes: Sequence[int]) -> list[int]:
    """Distinct terms in the first n documents, for each n of `sizes` (ascending)."""
    seen: set[str] = set()
    out, done = [], 0
    for n in sizes:
        for terms in documents[done:n]:
            seen.update(terms)
        done = n
        out.append(len(seen))
    return out


def fitted(sizes: Sequence[float], distinct: Sequence[float]) -> Heaps:
    beta, log_k = np.polyfit(np.log(np.asarray(sizes, float)), np.log(np.asarray(distinct, float)), 1)
    return Heaps(float(np.exp(log_k)), float(beta))


def sizes_up_to(n: int, smallest: int = SMALLEST) -> list[int]:
    """Sizes spread evenly on a log scale, n included."""
    return sorted({int(s) for s in np.geomspace(smallest, n, 16)})


def ol_dev_works() -> list[list[str]]:
    """Terms of the Open Library dev-instance works (title and subtitle, subjects)."""
    documents = []
    with open(seed_files()["works"], encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line.split("\t")[4])
            text = " ".join([row.get("title", ""), row.get("subtitle", ""), *row.get("subjects", [])])
            documents.append(search_terms(text))
    return documents


@lru_cache(maxsize=1)
def real_documents() -> tuple[tuple[str, ...], ...]:
    """Each bundled book's terms, as the index tokenizes them (every field)."""
    from bench.search.catalogue import records  # runs the ETL's importers: only when asked

    books = [tuple(t for field in Document.of(r).tokens for t in field) for r in records()]
    return tuple(books + [tuple(d) for d in ol_dev_works()])


def averaged_growth(documents: Sequence[Sequence[str]], sizes: Sequence[int], seed: int = 2026) -> np.ndarray:
    rng = np.random.default_rng(seed)
    runs = [growth([documents[int(i)] for i in rng.permutation(len(documents))], sizes) for _ in range(ORDERS)]
    return np.mean(runs, axis=0)


@lru_cache(maxsize=1)
def catalogue_fit() -> tuple[Heaps, tuple[int, ...], tuple[float, ...]]:
    """The fit on the bundled books, and the sizes and distinct terms it was fitted on."""
    documents = real_documents()
    sizes = sizes_up_to(len(documents))
    distinct = averaged_growth(documents, sizes)
    return fitted(sizes, distinct), tuple(sizes), tuple(float(d) for d in distinct)


def author_names(authors_dump: Path | None) -> list[str]:
    import gzip

    names = []
    if authors_dump is not None:
        with gzip.open(authors_dump, "rt", encoding="utf-8") as dump:
            names = [n for n in (json.loads(line.split("\t")[4]).get("name") for line in dump) if n]
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--authors-dump", type=Path, metavar="FILE")
    args = parser.parse_args()
    fit, sizes, distinct = catalogue_fit()
    print(f"bundled books: {sizes[-1]:,}, {int(distinct[-1]):,} distinct terms; Heaps' law fitted over "
          f"{len(sizes)} sizes {sizes[0]:,}..{sizes[-1]:,}: K = {fit.k:.2f}, beta = {fit.beta:.3f}")
    for n, d in zip(sizes, distinct, strict=True):
        print(f"  {n:>7,} books: {d:>9,.0f} distinct terms, fit {fit(n):>9,.0f}")
    for n in (50_000, 1_000_000, 10_000_000):
        print(f"  extrapolated to {n:>10,} books: {fit(n):>10,.0f} distinct terms")
    names = author_names(args.authors_dump)
    if names:
        docs = [search_terms(n) for n in names]
        name_sizes = sizes_up_to(len(docs), 50)
        name_fit = fitted(name_sizes, averaged_growth(docs, name_sizes))
        print(f"author names (Open Library dump sample, {len(names):,}): K = {name_fit.k:.2f}, "
              f"beta = {name_fit.beta:.3f}")


if __name__ == "__main__":
    main()
