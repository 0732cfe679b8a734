"""Search index benchmark at 50K and 1M realistic books: build time, memory, query latency.

    python services/search/benchmarks/bench_search.py [--sizes 50000 1000000]

Books are synthesised from real vocabularies: title words from Open Library
and goodbooks-10k titles, author names from the Open Library authors dump
sample, subjects from Open Library subjects and goodbooks genres; rating
counts follow a Zipf-like skew as in real catalogues. Prints figures; asserts
nothing.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import resource
import time
from pathlib import Path

import numpy as np

from bookrec_common.catalog import with_derived_attributes
from bookrec_search.index import Filters, SearchIndex

ROOT = Path(__file__).resolve().parents[3]
SHARED = ROOT.parent / "shared" / "data"
SEED = ROOT / "data-processing" / "seed"


def vocabularies() -> tuple[list[str], list[str], list[str]]:
    titles, subjects, authors = [], [], []
    with gzip.open(SEED / "philosophy_books_openlibrary.jsonl.gz", "rt") as lines:
        for line in lines:
            row = json.loads(line)
            titles.append(row["title"])
            subjects += row.get("subjects", [])[:10]
            authors += row.get("authors", [])
    with gzip.open(SEED / "goodbooks10k_books.csv.gz", "rt", newline="") as handle:
        for row in csv.DictReader(handle):
            titles.append(row["title"])
            authors += [a.strip() for a in row["authors"].split(",")]
    with gzip.open(SEED / "goodbooks10k_book_genres.csv.gz", "rt", newline="") as handle:
        for row in csv.DictReader(handle):
            subjects += row["genres"].split(",")[:8]
    dump = SHARED / "openlibrary" / "ol_dump_authors_sample.txt"
    if dump.exists():
        for line in dump.open():
            name = json.loads(line.split("\t")[4]).get("name")
            if name:
                authors.append(name)
    words = [w for t in titles for w in t.split()]
    return words, sorted(set(authors)), sorted(set(s for s in subjects if s))


def books(n: int, seed: int = 7):
    words, authors, subjects = vocabularies()
    rng = np.random.default_rng(seed)
    # Zipf-like word and popularity skew, as in real catalogues.
    word_p = 1 / np.arange(1, len(words) + 1) ** 0.8
    word_p /= word_p.sum()
    title_lengths = rng.integers(1, 7, n)
    title_words = rng.choice(len(words), size=int(title_lengths.sum()), p=word_p)
    counts = np.floor(rng.pareto(1.2, n) * 3).astype(int)
    cursor = 0
    for i in range(n):
        k = int(title_lengths[i])
        title = " ".join(words[j] for j in title_words[cursor:cursor + k])
        cursor += k
        c = int(counts[i])
        stars = rng.multinomial(c, [0.05, 0.08, 0.22, 0.35, 0.30]) if c else [0] * 5
        yield with_derived_attributes({
            "book_id": f"OL{i + 1}W", "title": title,
            "authors": [{"author_id": None, "name": authors[int(rng.integers(len(authors)))]}],
            "subjects": [subjects[int(j)] for j in rng.integers(len(subjects), size=int(rng.integers(1, 8)))],
            "first_publish_year": int(rng.integers(1500, 2024)) if rng.random() < 0.9 else None,
            "language": "eng" if rng.random() < 0.8 else "fre",
            "ratings_distribution": {str(s + 1): int(v) for s, v in enumerate(stars)},
        }, now="2026-01-01T00:00:00Z")


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(name: str, fn, repeat: int) -> None:
    samples = []
    for i in range(repeat):
        started = time.perf_counter()
        fn(i)
        samples.append((time.perf_counter() - started) * 1000)
    a = np.array(samples)
    print(f"  {name:<34s} p50 {np.percentile(a, 50):7.3f} ms   p99 {np.percentile(a, 99):7.3f} ms")


def run(n: int) -> None:
    before = rss_mb()
    started = time.perf_counter()
    index = SearchIndex(books(n))
    built = time.perf_counter() - started
    print(f"{n:,} books: build {built:.1f} s (incl. generating the books), index arrays {index.nbytes / 2**20:.0f} MiB, "
          f"terms {index.terms:,}, peak RSS {rss_mb():.0f} MB (+{rss_mb() - before:.0f})")
    rng = np.random.default_rng(1)
    common = ["the", "of", "history", "love", "life"]
    vocab = list(index.fields["title"].terms)
    rare = [t for t in vocab if len(index.fields["title"].get(t)[0]) == 1][:200] or vocab[:200]
    multi = ["the history of", "love and war", "philosophy of mind", "a tale of two"]
    prefixes = [t[:k] for t in index.sorted_titles[:: max(1, n // 300)] for k in (1, 3, 6) if t[:k]]
    measure("common word", lambda i: index.search(common[i % len(common)]), 200)
    measure("rare word", lambda i: index.search(rare[i % len(rare)]), 200)
    measure("multi-word", lambda i: index.search(multi[i % len(multi)]), 200)
    measure("deep offset (offset 9,980)", lambda i: index.search(common[i % len(common)], 20, 9_980), 100)
    measure("advanced: year+rating, sort rating",
            lambda i: index.advanced(Filters(min_year=1900, max_year=2000, min_rating=3.5), "rating"), 100)
    measure("advanced: subject+author words",
            lambda i: index.advanced(Filters(subject="fiction", title="love"), "relevance"), 100)
    measure("autocomplete (1, 3, 6 chars)", lambda i: index.autocomplete(prefixes[i % len(prefixes)]), 900)
    del index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 1_000_000])
    for n in parser.parse_args().sizes:
        run(n)


if __name__ == "__main__":
    main()
