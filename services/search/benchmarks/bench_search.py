"""Search index benchmark at 50K and 1M realistic books: build time, memory, query and refresh latency.

Queries: common, rare and several words, exact titles, the any-word fallback, deep offsets, advanced
filters, autocomplete; then what readers type besides clean words (words with one or two edits, a
half-typed last word, words in Arabic, Cyrillic, Greek and CJK scripts, two characters of a CJK title)
and facet counts when the index has them; then the worst a single request can ask within the API's
bounds (500 characters, 20 values per facet filter): one 500-character word, 50 words (misspelt, common,
the last one half typed), 500 CJK characters, long digit runs, every facet with 80 facet filters.

    python services/search/benchmarks/bench_search.py [--sizes 50000 1000000] [--seed 7]
    python services/search/benchmarks/bench_search.py --sizes --http http://127.0.0.1:8080   # after `make up`
    python services/search/benchmarks/bench_search.py --engine tantivy [--tantivy-dir /tmp]
    python services/search/benchmarks/bench_search.py --engine both   # one process per engine
    python services/search/benchmarks/bench_search.py --sizes 50000 --worst-only   # worst cases alone

`--engine tantivy` builds `tantivy_engine.TantivyEngine` (in memory, or memory-mapped in a fresh
directory under --tantivy-dir, whose size is then printed) from the same books and runs the same
full-text, typo, prefix and script queries and facets; it has no advanced filters, autocomplete or
in-place refresh, which print as n/a.

Books are synthesised from real vocabularies: title words from Open Library
and goodbooks-10k titles, author names from the Open Library samples and the
goodbooks authors, subjects from Open Library subjects and goodbooks genres;
rating counts follow a heavy-tailed (Pareto) skew as in real catalogues.
Books stream into the index builder one by one, as Scan pages do in the
service. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import itertools
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import regex

from bookrec_common.catalog import normalise_text, with_derived_attributes
from bookrec_search.facets import FacetFilter
from bookrec_search.index import Filters, IndexBuilder, SearchIndex

ROOT = Path(__file__).resolve().parents[3]
SEED = ROOT / "data-processing" / "seed"
# More real author names when present (the ETL's test data; gzip, Open Library dump lines).
AUTHORS_DUMP = ROOT / "data-processing" / "tests" / "data" / "ol_dump_authors_sample.txt.gz"
STAMP = "2026-01-01T00:00:00.000000Z"
NON_LATIN = regex.compile(r"[\p{Script=Arabic}\p{Script=Cyrillic}\p{Script=Greek}\p{Script=Han}"
                          r"\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]")
CJK = regex.compile(r"[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]+")


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
    if AUTHORS_DUMP.exists():
        with gzip.open(AUTHORS_DUMP, "rt", encoding="utf-8") as dump:
            for line in dump:
                name = json.loads(line.split("\t")[4]).get("name")
                if name:
                    authors.append(name)
    words = [w for t in titles for w in t.split()]
    return words, sorted(set(authors)), sorted(set(s for s in subjects if s))


def books(n: int, seed: int, first_id: int = 1) -> Iterator[dict[str, Any]]:
    words, authors, subjects = vocabularies()
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


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(name: str, fn: Callable[[int], Any], repeat: int,
            clock: Callable[[], float] = time.thread_time) -> None:
    """Wall-clock and CPU-time percentiles: on a shared machine the CPU time shows the work itself."""
    fn(0)  # warm
    wall, cpu = [], []
    for i in range(repeat):
        started, started_cpu = time.perf_counter(), clock()
        fn(i)
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((clock() - started_cpu) * 1000)
    w, c = np.array(wall), np.array(cpu)
    print(f"  {name:<50s} p50 {np.percentile(w, 50):6.2f}  p99 {np.percentile(w, 99):6.2f}  "
          f"max {w.max():6.2f} ms | CPU p50 {np.percentile(c, 50):6.2f}  p99 {np.percentile(c, 99):6.2f} ms")


def build(n: int, seed: int) -> SearchIndex:
    before = rss_mb()
    # Only the builder's own calls are timed: generating a book takes longer than adding it, and a
    # separate generation pass subtracted afterwards goes negative on a busy machine.
    started, added, cpu = time.perf_counter(), 0.0, 0.0
    builder = IndexBuilder()
    for record in books(n, seed):
        call, call_cpu = time.perf_counter(), time.process_time()
        builder.add(record)
        added += time.perf_counter() - call
        cpu += time.process_time() - call_cpu
    generating = time.perf_counter() - started - added
    call, call_cpu = time.perf_counter(), time.process_time()
    index = builder.build()
    del builder
    arrays = time.perf_counter() - call
    cpu += time.process_time() - call_cpu
    print(f"{n:,} books: build {added + arrays:.1f} s (records {added:.1f} s, arrays "
          f"{arrays:.1f} s), {cpu:.1f} s CPU; generating the books took another {generating:.1f} s")
    print(f"  index {index.nbytes / 2**20:.0f} MiB, {index.terms:,} terms, {len(index.combined.docs):,} "
          f"all-field postings; RSS {rss_mb():.0f} MB (+{rss_mb() - before:.0f} for the index), "
          f"peak RSS {peak_rss_mb():.0f} MB")
    return index


COMMON = ["the", "of", "love", "life", "history", "world", "new", "war"]
MULTI = ["the history of", "love and war", "philosophy of mind", "a tale of two", "the art of war",
         "harry potter", "the lord of the rings", "critique of pure reason"]


def title_positions(n: int) -> tuple[np.random.Generator, np.ndarray]:
    """The books whose titles the queries use (the generator goes on to make the typos)."""
    rng = np.random.default_rng(1)
    return rng, rng.integers(n, size=300)


def full_text(search: Callable[..., Any], rare: list[str], titles: list[str],
              clock: Callable[[], float] = time.thread_time) -> None:
    common = COMMON
    measure("full text: common word", lambda i: search(common[i % len(common)]), 400, clock)
    measure("full text: rare word", lambda i: search(rare[i % len(rare)]), 400, clock)
    measure("full text: multi-word", lambda i: search(MULTI[i % len(MULTI)]), 400, clock)
    measure("full text: exact title of a book", lambda i: search(titles[i % len(titles)]), 400, clock)
    measure("full text: any-word fallback", lambda i: search(common[i % len(common)] + " qqxzv"), 200, clock)
    measure("full text: deep offset (9,980)", lambda i: search(common[i % len(common)], 20, 9_980), 200,
            clock)


def queries(index: SearchIndex) -> None:
    common = COMMON
    frequency = np.diff(index.combined.offsets)
    in_use = np.flatnonzero(frequency)
    words = list(index.vocabulary)
    rare = [words[t] for t in in_use[np.argsort(frequency[in_use], kind="stable")[:500]]]  # the least used
    rng, positions = title_positions(index.size)
    titles = [index.titles[int(p)] for p in positions]
    prefixes = [t.lower()[:k] for t in titles for k in (1, 3, 6) if t[:k].strip()]
    years_and_rating = [Filters(min_year=1900 + i, max_year=2000, min_rating=3.5) for i in range(50)]
    full_text(index.search, rare, titles)
    measure("advanced: year range + min rating, by rating",
            lambda i: index.advanced(years_and_rating[i % 50], "rating"), 200)
    measure("advanced: language only, by year asc, offset 5,000",
            lambda i: index.advanced(Filters(language="fre"), "year", "asc", 20, 5_000), 200)
    measure("advanced: subject + title words, relevance",
            lambda i: index.advanced(Filters(subject="fiction", title=common[i % len(common)])), 200)
    measure("advanced: author word, by title",
            lambda i: index.advanced(Filters(author=rare[i % len(rare)]), "title"), 200)
    measure("autocomplete (1, 3, 6 characters)",
            lambda i: index.autocomplete(prefixes[i % len(prefixes)]), 900)
    reader_queries(index.search, titles, rng)
    facets = getattr(index, "facets", None)
    if facets is None:
        print("  facets: this index has no facets() yet, skipped")
        return
    try:
        facets(common[0])
    except (TypeError, ValueError, AttributeError, IndexError):
        try:  # facets(matches), the matches a search gives with_matches=True: the search is timed too
            def facets_of(query: str) -> Any:
                return index.facets(index.search(query, with_matches=True).matches)
            facets = facets_of
            facets(common[0])
        except (TypeError, ValueError, AttributeError, IndexError) as exc:
            print(f"  facets: neither facets(query) nor facets(search(query).matches) worked ({exc}), "
                  "skipped")
            return
    measure("facets of a common word (search included)",
            lambda i: facets(common[i % len(common)]), 200)


MAX_QUERY = 500  # characters: what the API accepts
WORD_CAP = 16  # words a query is matched by (bookrec_search.matching.MAX_QUERY_WORDS); later ones ignored


def worst_texts(words: list[str], titles: list[str], rng: np.random.Generator) -> dict[str, list[str]]:
    """Per kind, query texts built to cost the most within the API's 500 characters (a few of each, so
    no kind is one lucky query). `words`: the index's terms, most used first."""
    letters = "abcdefghijklmnopqrstuvwxyz"

    def within(parts: list[str]) -> str:
        text = ""
        for part in parts:
            if len(text) + len(part) + 1 > MAX_QUERY:
                break
            text = f"{text} {part}" if text else part
        return text

    def half_typed(words: list[str]) -> str:
        return " ".join(words[:-1] + [words[-1][:max(2, len(words[-1]) // 2)]])

    def random_word(length: int) -> str:
        return "".join(letters[int(j)] for j in rng.integers(26, size=length))

    latin = [w for w in words if w.isascii() and w.isalpha()]
    nine = [w for w in latin if len(w) >= 9] or latin
    title_words = [w for t in titles for w in t.lower().split() if w.isalpha() and w.isascii()]
    cjk = [c for c in "".join(sorted({w for w in words if CJK.fullmatch(w)})) if CJK.fullmatch(c)]
    texts = {
        "one 500-character word (abcdefghij x 50)": ["abcdefghij" * 50],
        "one 500-character word, random letters": [random_word(MAX_QUERY) for _ in range(8)],
        "one 60-character word": [random_word(60) for _ in range(8)],
        "50 words of 9 letters, each misspelt": [
            within([one_edit(nine[int(j)], rng) for j in rng.integers(len(nine), size=60)]) for _ in range(8)],
        "50 of the most common words": [within(list(rng.permutation(latin[:80]))) for _ in range(8)],
        "50 common words, the last one half typed": [
            within(list(rng.permutation(latin[:80]))[:49]) + " " + latin[int(j)][:2]
            for j in rng.integers(20, size=8)],
        "250 one-letter words": [" ".join(letters[int(j)] for j in rng.integers(26, size=250))[:MAX_QUERY]
                                 for _ in range(8)],
        "50 title words, each misspelt": [
            within([one_edit(title_words[int(j)], rng) if len(title_words[int(j)]) > 2 else title_words[int(j)]
                    for j in rng.integers(len(title_words), size=120)]) for _ in range(8)],
        "a 500-digit run": ["".join(str(int(d)) for d in rng.integers(10, size=MAX_QUERY)) for _ in range(8)],
        "35 ISBN-like 13-digit numbers": [
            within(["978" + "".join(str(int(d)) for d in rng.integers(10, size=10)) for _ in range(40)])
            for _ in range(8)],
    }
    if len(cjk) >= 2:
        texts["500 CJK characters (499 character pairs)"] = [
            "".join(cjk[int(j)] for j in rng.integers(len(cjk), size=MAX_QUERY)) for _ in range(8)]
    # Within the index's caps, where every word of a query takes part and is completed or corrected (drawn
    # last: the kinds above keep the texts they had before these were added).
    texts.update({
        f"{WORD_CAP} common words, the last one half typed": [
            " ".join(list(rng.permutation(latin[:80]))[:WORD_CAP - 1]) + " " + latin[int(j)][:2]
            for j in rng.integers(20, size=8)],
        f"{WORD_CAP} words of 9 letters, each misspelt": [
            " ".join(one_edit(nine[int(j)], rng) for j in rng.integers(len(nine), size=WORD_CAP))
            for _ in range(8)],
        f"{WORD_CAP} title words, each misspelt, the last half typed": [
            half_typed([one_edit(w, rng) if len(w) > 4 else w
                        for w in (title_words[int(j)] for j in rng.integers(len(title_words), size=WORD_CAP))])
            for _ in range(8)],
    })
    return texts


def worst_cases(search: Callable[[str], Any], words: list[str], titles: list[str],
                clock: Callable[[], float] = time.thread_time) -> None:
    """The costliest queries one request can send, each timed like the ordinary kinds."""
    rng = np.random.default_rng(11)
    for kind, texts in worst_texts(words, titles, rng).items():
        measure(f"worst: {kind}", lambda i, texts=texts: search(texts[i % len(texts)]), 40, clock)


def worst_facets(index: SearchIndex) -> None:
    """Facets asked for with every facet filter at its most (20 values each), over a common word and
    over 50 common words."""
    authors = [c.value for c in index.facets(np.arange(index.size), 20)["authors"]]
    subjects = [c.value for c in index.facets(np.arange(index.size), 20)["subjects"]]
    decades = [1500 + 10 * i for i in range(0, 60, 3)]
    wanted = FacetFilter(tuple(map(str, authors)), tuple(map(str, subjects)), tuple(decades),
                         ("eng", "fre", "ger", "spa", "ita", "rus", "jpn", "chi", "ara", "gre", "lat", "por",
                          "dut", "swe", "pol", "tur", "heb", "kor", "hin", "dan"))
    frequency = np.diff(index.combined.offsets)
    common = [index.lexicon.by_id[t] for t in np.argsort(-frequency)[:50]]

    def faceted(query: str, facet_filter: FacetFilter | None) -> Any:
        return index.facets(index.search(query, with_matches=True, facet_filter=facet_filter).matches)

    measure("worst: facets + 80 facet filters, a common word",
            lambda i: faceted(COMMON[i % len(COMMON)], wanted), 40)
    measure("worst: facets + 80 facet filters, 50 common words",
            lambda i: faceted(" ".join(common[i % 3:]), wanted), 40)
    measure("worst: facets, no filter, 50 common words",
            lambda i: faceted(" ".join(common[i % 3:]), None), 40)


def worst(index: SearchIndex) -> None:
    frequency = np.diff(index.combined.offsets)
    in_use = np.flatnonzero(frequency)
    words = [index.lexicon.by_id[t] for t in in_use[np.argsort(-frequency[in_use], kind="stable")]]
    _, positions = title_positions(index.size)
    worst_cases(index.search, words, [index.titles[int(p)] for p in positions])
    worst_facets(index)


def one_edit(word: str, rng: np.random.Generator) -> str:
    """`word` with one insertion, deletion, substitution or transposition (of adjacent letters)."""
    at, letter = int(rng.integers(len(word) - 1)), "abcdefghijklmnopqrstuvwxyz"[int(rng.integers(26))]
    kind = int(rng.integers(4))
    if kind == 0:
        return word[:at] + letter + word[at:]
    if kind == 1:
        return word[:at] + word[at + 1:]
    if kind == 2:
        return word[:at] + (letter if letter != word[at] else "q") + word[at + 1:]
    return word[:at] + word[at + 1] + word[at] + word[at + 2:]


def reader_queries(search: Callable[[str], Any], titles: list[str], rng: np.random.Generator,
                   clock: Callable[[], float] = time.thread_time) -> None:
    """What readers type besides clean words: typos, an unfinished last word, other scripts."""
    long_words = [w for t in titles for w in t.lower().split() if len(w) >= 5 and w.isalpha() and w.isascii()]
    very_long = [w for w in long_words if len(w) >= 9] or long_words
    typos = [one_edit(long_words[int(i)], rng) for i in rng.integers(len(long_words), size=300)]
    two_typos = [one_edit(one_edit(very_long[int(i)], rng), rng)
                 for i in rng.integers(len(very_long), size=300)]
    shorter = [t.split() for t in titles if len(t.split()) >= 2]
    with_typo = [f"{w[0]} {one_edit(w[1], rng) if len(w[1]) >= 5 else w[1]}" for w in shorter]
    open_last = [" ".join(w[:-1] + [w[-1][:max(1, len(w[-1]) // 2)]]) for w in shorter]
    words, _, _ = vocabularies()
    other_scripts = sorted({w for w in (normalise_text(w) for w in words) if w and NON_LATIN.search(w)})
    cjk_parts = sorted({w[i:i + 2] for w in other_scripts for i in range(len(w) - 1)
                        if CJK.fullmatch(w[i:i + 2])})
    measure("typo: one word, one edit", lambda i: search(typos[i % len(typos)]), 300, clock)
    measure("typo: one long word, two edits", lambda i: search(two_typos[i % len(two_typos)]), 300, clock)
    measure("typo: two title words, one misspelt", lambda i: search(with_typo[i % len(with_typo)]), 300,
            clock)
    measure("prefix: title with its last word half typed",
            lambda i: search(open_last[i % len(open_last)]), 300, clock)
    measure("non-Latin word (Arabic, Cyrillic, Greek, CJK)",
            lambda i: search(other_scripts[i % len(other_scripts)]), 300, clock)
    if cjk_parts:
        measure("CJK: two characters of a title", lambda i: search(cjk_parts[i % len(cjk_parts)]), 200, clock)


def timed_off_thread(work: Callable[[], Any]) -> tuple[Any, float, float]:
    """Run `work` on a thread as the service does; returns its result, its time and the longest pause
    a 1 ms ticker on the calling thread saw meanwhile (what the event loop would feel)."""
    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(work()))
    started = last = time.perf_counter()
    thread.start()
    longest = 0.0
    while thread.is_alive():
        time.sleep(0.001)
        now = time.perf_counter()
        longest, last = max(longest, now - last), now
    thread.join()
    return box[0], time.perf_counter() - started, longest


def refreshes(index: SearchIndex, n: int, seed: int) -> None:
    rerated = [with_derived_attributes(dict(r, ratings_distribution={"5": 7 + i % 5}), now=STAMP)
               for i, r in enumerate(itertools.islice(books(n, seed), 1_000))]
    updated, took, pause = timed_off_thread(lambda: index.updated(rerated))
    print(f"  refresh, 1,000 rating changes: {took * 1000:.0f} ms, longest pause of the serving thread "
          f"{pause * 1000:.1f} ms")
    retitled = [with_derived_attributes(dict(r, title=r["title"] + " revised", title_norm=None), now=STAMP)
                for r in itertools.islice(books(n, seed), 100)]
    added = list(books(100, seed + 1, first_id=n + 1))
    grown, took, pause = timed_off_thread(lambda: updated.updated(retitled + added))
    print(f"  refresh, 100 new + 100 retitled books: {took * 1000:.0f} ms, longest pause "
          f"{pause * 1000:.1f} ms (now {grown.size:,} books); peak RSS {peak_rss_mb():.0f} MB")


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} (1 / 5 / 15 min) on {os.cpu_count()} cores"


def run(n: int, seed: int, worst_only: bool = False) -> None:
    print(f"hand-written index; {load()}")
    index = build(n, seed)
    if not worst_only:
        queries(index)
    worst(index)
    if not worst_only:
        refreshes(index, n, seed)
    print(f"  {load()}")


def directory_mb(path: str) -> float:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 2**20


def build_tantivy(n: int, seed: int, positions: np.ndarray,
                  directory: str | None) -> tuple[Any, dict[int, str]]:
    """The tantivy engine from the same books, streamed in. Its prior needs the catalogue's mean rating
    first: a pass over the books computes it (not counted). Build wall and CPU time leave out the time
    spent making the books; CPU time is the process's (tantivy indexes on threads of its own)."""
    from tantivy_engine import TantivyEngine

    before = rss_mb()
    started = time.perf_counter()
    count = total = 0
    for record in books(n, seed):
        count, total = count + int(record["rating_count"] or 0), total + int(record["rating_sum"] or 0)
    mean = total / max(1, count)
    prepass = time.perf_counter() - started
    wanted, titles = set(int(p) for p in positions), {}
    making = [0.0, 0.0]

    def stream() -> Iterator[dict[str, Any]]:
        made = books(n, seed)
        for i in itertools.count():
            wall, cpu = time.perf_counter(), time.thread_time()
            record = next(made, None)
            making[0] += time.perf_counter() - wall
            making[1] += time.thread_time() - cpu
            if record is None:
                return
            if i in wanted:
                titles[i] = record["title"]
            yield record

    path = tempfile.mkdtemp(prefix="tantivy-bench-", dir=directory) if directory else None
    wall, cpu = time.perf_counter(), time.process_time()
    engine = TantivyEngine.from_records(stream(), mean=mean, path=path)
    wall, cpu = time.perf_counter() - wall - making[0], time.process_time() - cpu - making[1]
    print(f"{n:,} books: build {wall:.1f} s wall, {cpu:.1f} s CPU (making the books took another "
          f"{making[0]:.1f} s, the mean-rating pass {prepass:.1f} s)")
    where = (f"on disk {directory_mb(path):.0f} MiB in {path} (memory-mapped)" if path
             else "in memory (no directory)")
    print(f"  index {where}, {engine.searcher.num_docs:,} books in {engine.searcher.num_segments} "
          f"segment(s); RSS {rss_mb():.0f} MB (+{rss_mb() - before:.0f} for the index), "
          f"peak RSS {peak_rss_mb():.0f} MB")
    engine.path = path
    return engine, titles


def run_tantivy(n: int, seed: int, directory: str | None) -> None:
    import tantivy

    print(f"{tantivy.__version__.split(',')[0]} engine; {load()}")
    rng, positions = title_positions(n)
    engine, by_position = build_tantivy(n, seed, positions, directory)
    titles = [by_position[int(p)] for p in positions]
    vocabulary = engine.vocabulary
    least_used = vocabulary.search(tantivy.Query.all_query(), 500, count=False, order_by_field="df",
                                   order=tantivy.Order.Asc).hits
    rare = [vocabulary.doc(address).get_first("term") for _, address in least_used]
    clock = time.process_time
    full_text(engine.search, rare, titles, clock)
    for kind in ("advanced: filters and sorts", "autocomplete (1, 3, 6 characters)"):
        print(f"  {kind:<50s} n/a (not in the tantivy engine)")
    reader_queries(engine.search, titles, rng, clock)
    measure("facets of a common word (search included)",
            lambda i: engine.facets(COMMON[i % len(COMMON)]), 200, clock)
    most_used = vocabulary.search(tantivy.Query.all_query(), 5000, count=False, order_by_field="df",
                                  order=tantivy.Order.Desc).hits
    worst_cases(engine.search, [vocabulary.doc(address).get_first("term") for _, address in most_used],
                titles, clock)
    print(f"  {'refresh':<50s} n/a (the tantivy engine is built whole)")
    print(f"  peak RSS {peak_rss_mb():.0f} MB; {load()}")
    if engine.path:
        shutil.rmtree(engine.path, ignore_errors=True)


def discover(base: str) -> list[str]:
    """Titles of the running service's catalogue, through its own autocomplete."""
    found: dict[str, None] = {}
    for letter in "abcdefghijklmnopqrstuvwxyz":
        url = f"{base}/search/autocomplete?q={letter}&limit=50"
        with urllib.request.urlopen(url, timeout=10) as response:
            found.update((item["title"], None) for item in json.load(response)["items"])
    return list(found)


def wrk(url: str, lua: str, duration: int, connections: int) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(lua)
        script.flush()
        command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script.name, url]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def wrk_figures(out: str) -> str:
    def found(pattern: str) -> str:
        match = re.search(pattern, out, re.MULTILINE)
        return match.group(1) if match else "?"

    rate, p50 = found(r"^Requests/sec:\s+([\d.]+)"), found(r"^\s+50%\s+(\S+)")
    p99, errors = found(r"^\s+99%\s+(\S+)"), found(r"Non-2xx or 3xx responses: (\d+)")
    return f"{rate} requests/s, p50 {p50}, p99 {p99}, non-2xx {'0' if errors == '?' else errors}"


def http(base: str, duration: int, connections: int) -> None:
    """POST /search and GET /search/autocomplete under wrk, through whatever `base` is (the local ALB)."""
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk): HTTP figures skipped")
        return
    titles = discover(base)
    words = sorted({w for t in titles for w in t.split() if len(w) > 3})
    rng = np.random.default_rng(3)
    queries = ([titles[int(i)] for i in rng.integers(len(titles), size=100)]
               + [words[int(i)] for i in rng.integers(len(words), size=100)]
               + [f"{words[int(i)]} {words[int(j)]}" for i, j in rng.integers(len(words), size=(100, 2))])
    bodies = [json.dumps({"query": q, "limit": 20}) for q in queries]
    prefixes = [urllib.parse.quote(t.lower()[:k]) for t in titles[:300] for k in (1, 3, 6)]
    search_lua = (f"local bodies = {{{', '.join(json.dumps(b) for b in bodies)}}}\n"
                  "local i = 0\nrequest = function()\n  i = i + 1\n"
                  '  return wrk.format("POST", "/search", {["Content-Type"] = "application/json"}, '
                  "bodies[i % #bodies + 1])\nend\n")
    paths = [json.dumps(f"/search/autocomplete?q={p}&limit=10") for p in prefixes]
    prefix_lua = (f"local paths = {{{', '.join(paths)}}}\n"
                  "local i = 0\nrequest = function()\n  i = i + 1\n"
                  '  return wrk.format("GET", paths[i % #paths + 1])\nend\n')
    print(f"HTTP through {base} ({len(titles)} titles discovered; wrk, 2 threads, {connections} connections, "
          f"{duration} s; load average {os.getloadavg()[0]:.1f})")
    searching = wrk_figures(wrk(base, search_lua, duration, connections))
    print(f"  POST /search, {len(bodies)} queries: {searching}")
    print(f"  GET /search/autocomplete, {len(prefixes)} prefixes: "
          f"{wrk_figures(wrk(base, prefix_lua, duration, connections))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[50_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--http", metavar="URL", help="also load a running stack (its local ALB) with wrk")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--engine", choices=["handwritten", "tantivy", "both"], default="handwritten",
                        help="both: one process per engine, so that each one's peak RSS is its own")
    parser.add_argument("--worst-only", action="store_true",
                        help="hand-written engine: only the worst-case queries (no ordinary kinds, refreshes)")
    parser.add_argument("--tantivy-dir", metavar="DIR",
                        help="build the tantivy index in a fresh directory under DIR instead of in memory")
    args = parser.parse_args()
    if args.engine == "both":
        for engine in ("handwritten", "tantivy"):
            command = [sys.executable, __file__, "--engine", engine, "--seed", str(args.seed),
                       "--sizes", *map(str, args.sizes)]
            if args.tantivy_dir:
                command += ["--tantivy-dir", args.tantivy_dir]
            sys.stdout.flush()
            subprocess.run(command, check=True)
    else:
        for n in args.sizes:
            if args.engine == "tantivy":
                run_tantivy(n, args.seed, args.tantivy_dir)
            else:
                run(n, args.seed, args.worst_only)
    if args.http:
        http(args.http.rstrip("/"), args.duration, args.connections)


if __name__ == "__main__":
    main()
