"""Known-item search quality on the bundled catalogue, and the engines side by side.

    python -m bench.search.eval_search [--engines handwritten tantivy] [--per-kind 300] [--seed 2026]
                                       [--save FILE.json] [--before FILE.json]
    (from the repository root, as `make eval-search` does; --before defaults to eval_before.json here)

The catalogue is what the local stack loads (catalogue.py: goodbooks-10k through the ETL's
`from_goodbooks_row`, plus the philosophy JSONL). Queries are generated from goodbooks books with a
fixed seed, one target book each, in these kinds:

  title           a whole title, as readers type it: the series note "(Series, #1)" left out
  title_words     two or three words of a title, in title order (short function words skipped)
  surname_word    an author's surname and a word of the title
  title_typo      a whole title with one edit (insert, delete, substitute, transpose) in one word of
                  five or more letters
  words_typo      two title words, one of them (five letters or more) with one edit
  surname_typo    a surname of five letters or more with one edit, and a title word
  unaccented      a title (or original title) written with diacritics, typed without them
  script          a whole title or original title in Arabic, Cyrillic, Greek or CJK script
  script_part     part of a CJK title (at least two characters)
  isbn13          the ISBN-13, digits only
  isbn13_hyphens  the ISBN-13 with hyphens (978-G-RRR-PPPPP-C)
  isbn10          the ISBN-10 (books whose ISBN-10 ends in X included wherever there are any)

Whole-title queries (title, title_typo, unaccented, script) leave out titles that books of different
authors share ("Breathe", "Open Season"): such a query names no single book. A query succeeds at
first place when the top hit is the target or a book with the same normalised
title and the same authors: the catalogue holds such duplicates (editions counted as separate
books), and no engine can tell them apart. MRR@10 is the mean reciprocal rank of the first such book
among the first ten hits (0 when none is there).

The second part times every engine over the same queries in-process: build time, memory taken by the
built index (resident set growth), query latency p50/p99, and the lines of code each engine is.
"""

from __future__ import annotations

import argparse
import gc
import importlib.resources
import importlib.util
import json
import os
import random
import re
import time
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import regex

from bench.search import catalogue
from bench.search.measure import rss_mb
from bookrec_catalog.catalog import normalise_text

SEED = 2026
KINDS = ("title", "title_words", "surname_word", "title_typo", "words_typo", "surname_typo", "unaccented",
         "script", "script_part", "isbn13", "isbn13_hyphens", "isbn10")
STOPWORDS = frozenset(["a", "an", "and", "at", "by", "de", "du", "el", "for", "from", "in", "into", "is",
                       "it", "la", "le", "of", "on", "or", "the", "to", "with"])
SERIES_NOTE = re.compile(r"\s*\([^()]*#\s*[\d.\-–]+\)\s*$")
NON_LATIN = regex.compile(r"[\p{Script=Arabic}\p{Script=Cyrillic}\p{Script=Greek}\p{Script=Han}"
                          r"\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]")
CJK_RUN = regex.compile(r"[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]{2,}")
LETTERS = "abcdefghijklmnopqrstuvwxyz"
# First-place success an engine must reach (and no kind below the engine before typo tolerance).
TARGETS = {"title": 0.98, "unaccented": 0.98, "script": 0.98, "title_typo": 0.95, "words_typo": 0.85,
           "surname_typo": 0.75, "isbn13": 0.99, "isbn13_hyphens": 0.99, "isbn10": 0.99}


class Engine(Protocol):
    def search(self, query: str, limit: int) -> list[str]:
        """Book ids of the best `limit` hits, best first."""


@dataclass(frozen=True, slots=True)
class Query:
    kind: str
    text: str
    book_id: str
    short_typo: bool = False  # the misspelt word has fewer than 5 letters: no correction allowed for it


# ---- the engines ---------------------------------------------------------------------------------------
class HandWritten:
    """bookrec_search.index.SearchIndex, as the service runs it."""

    def __init__(self, records: Sequence[dict[str, Any]]) -> None:
        from bookrec_search.index import SearchIndex
        self.index = SearchIndex.from_records(records)

    def search(self, query: str, limit: int) -> list[str]:
        return [self.index.book(hit.position)["book_id"] for hit in self.index.search(query, limit).hits]


def _tantivy(records: Sequence[dict[str, Any]]) -> Engine:
    from bench.search.tantivy_engine import TantivyEngine  # tantivy loads only when compared
    return TantivyEngine.from_records(records)


ENGINES: dict[str, Callable[[Sequence[dict[str, Any]]], Engine]] = {
    "handwritten": HandWritten, "tantivy": _tantivy}
# The modules each engine is, beyond the shared normaliser (bookrec_catalog.catalog).


def _module_path(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None, module
    return Path(spec.origin)


def engine_sources(name: str) -> list[Path]:
    """The modules an engine is, beyond the shared normaliser; facets count for both (tantivy has them).

    The hand-written engine is every module of `bookrec_search` but the service around it (app, routes,
    models, settings, store, the replica's and the builder's sides: live, catchup, builder) and
    highlights (which the tantivy engine does not do)."""
    if name == "tantivy":
        return [_module_path("bench.search.tantivy_engine")]
    package = _module_path("bookrec_search").parent  # the one imported
    service = {"__init__", "app", "routes", "models", "settings", "store", "live", "catchup", "builder",
               "highlight"}
    return sorted(p for p in package.glob("*.py") if p.stem not in service)


# ---- queries -------------------------------------------------------------------------------------------
def bare_title(title: str) -> str:
    return SERIES_NOTE.sub("", title).strip() or title


def title_words(title: str) -> list[str]:
    return [w for w in regex.findall(r"[\p{L}\p{N}'’]+", bare_title(title))
            if normalise_text(w) not in STOPWORDS and len(w) >= 3]


def surname(record: dict[str, Any]) -> str | None:
    names = [a.get("name", "") for a in record.get("authors") or []]
    parts = [p for p in (names[0].replace(".", " ").split() if names else [])
             if p.lower() not in ("jr", "sr")]
    return parts[-1] if len(parts) >= 2 and parts[-1].isalpha() else None


def one_edit(word: str, rng: random.Random) -> str:
    """`word` with one insertion, deletion, substitution or transposition of adjacent letters."""
    while True:
        kind, at = rng.choice(("insert", "delete", "substitute", "transpose")), rng.randrange(len(word))
        if kind == "insert":
            typo = word[:at] + rng.choice(LETTERS) + word[at:]
        elif kind == "delete":
            typo = word[:at] + word[at + 1:]
        elif kind == "substitute":
            typo = word[:at] + rng.choice(LETTERS.replace(word[at].lower(), "")) + word[at + 1:]
        else:
            at = min(at, len(word) - 2)
            typo = word[:at] + word[at + 1] + word[at] + word[at + 2:]
        if normalise_text(typo) != normalise_text(word):
            return typo


def typo_candidates(words: list[str]) -> list[int]:
    return [i for i, w in enumerate(words) if len(w) >= 5 and w.isascii() and w.isalpha()]


def strip_accents(text: str) -> str:
    return unicodedata.normalize("NFC", "".join(c for c in unicodedata.normalize("NFD", text)
                                                if not unicodedata.combining(c)))


def isbn10_of(isbn13: str) -> str | None:
    if not isbn13.startswith("978"):
        return None
    body = isbn13[3:12]
    check = (11 - sum((10 - i) * int(d) for i, d in enumerate(body)) % 11) % 11
    return body + ("X" if check == 10 else str(check))


def generate(records: Sequence[dict[str, Any]], per_kind: int, seed: int) -> list[Query]:
    rng = random.Random(seed)
    books = [r for r in records if r["book_id"].startswith("GB")]
    made: dict[str, list[Query]] = defaultdict(list)
    key_of, _ = same_book_keys(records)
    # A whole title that several different books bear names none of them: such targets are left out.
    bearers: dict[str, set[tuple]] = defaultdict(set)
    for r in records:
        for text in filter(None, (bare_title(r.get("title", "")), r.get("original_title"))):
            bearers[normalise_text(text)].add(key_of[r["book_id"]])

    def add(kind: str, text: str, record: dict[str, Any], whole: str | None = None, typo: str = "") -> None:
        if whole is not None and len(bearers[normalise_text(whole)]) > 1:
            return
        if normalise_text(text) and len(made[kind]) < per_kind:
            made[kind].append(Query(kind, text, record["book_id"], bool(typo) and len(typo) < 5))

    for record in rng.sample(books, len(books)):
        title = bare_title(record["title"])
        words = title_words(record["title"])
        name = surname(record)
        add("title", title, record, title)
        if len(words) >= 3:
            picked = sorted(rng.sample(range(len(words)), rng.choice((2, 3))))
            add("title_words", " ".join(words[i] for i in picked), record)
        if name and words:
            add("surname_word", f"{name} {rng.choice(words)}", record)
        all_words = title.split()
        long_words = typo_candidates(all_words)
        if long_words:
            at = rng.choice(long_words)
            typo = one_edit(all_words[at], rng)
            typoed = " ".join(typo if i == at else w for i, w in enumerate(all_words))
            add("title_typo", typoed, record, title, typo)
        if len(words) >= 2 and typo_candidates(words):
            at = rng.choice(typo_candidates(words))
            other = rng.choice([i for i in range(len(words)) if i != at])
            typo = one_edit(words[at], rng)
            add("words_typo", " ".join(typo if i == at else words[i] for i in sorted((at, other))), record,
                typo=typo)
        if name and len(name) >= 5 and name.isascii() and words:
            typo = one_edit(name, rng)
            add("surname_typo", f"{typo} {rng.choice(words)}", record, typo=typo)
        for text in filter(None, (title, record.get("original_title"))):
            if strip_accents(text) != text and not NON_LATIN.search(text):
                add("unaccented", strip_accents(text), record, text)
            if NON_LATIN.search(text):
                add("script", text, record, text)
                runs = [run.group() for run in CJK_RUN.finditer(text)]
                if runs:
                    run = max(runs, key=len)
                    size = max(2, len(run) // 2)
                    start = rng.randrange(len(run) - size + 1)
                    add("script_part", run[start:start + size], record)
        for isbn in record.get("isbn_13") or []:
            add("isbn13", isbn, record)
            add("isbn13_hyphens", f"{isbn[:3]}-{isbn[3]}-{isbn[4:7]}-{isbn[7:12]}-{isbn[12]}", record)
    # ISBN-10s ending in X first (rare, and the case that needs care), then the others in seeded order.
    tens = [(isbn10_of(i), r) for r in rng.sample(books, len(books)) for i in r.get("isbn_13") or []]
    tens = [t for t in tens if t[0]]
    for ten, record in sorted(tens, key=lambda t: not t[0].endswith("X")):
        add("isbn10", ten, record)
    return [q for kind in KINDS for q in made[kind]]


# ---- measuring -----------------------------------------------------------------------------------------
def same_book_keys(records: Sequence[dict[str, Any]]) -> tuple[dict[str, tuple], dict[tuple, set[str]]]:
    key_of, books_of = {}, defaultdict(set)
    for r in records:
        key = (normalise_text(r.get("title", "")),
               tuple(sorted(normalise_text(a.get("name", "")) for a in r.get("authors") or [])))
        key_of[r["book_id"]] = key
        books_of[key].add(r["book_id"])
    return key_of, books_of


def code_lines(paths: Sequence[Path]) -> tuple[int, int]:
    """(all lines, lines of code: neither blank, nor comment, nor docstring) of the given modules."""
    total = code = 0
    for path in paths:
        in_doc = False
        for line in path.read_text().splitlines():
            total += 1
            stripped = line.strip()
            quotes = stripped.count('"""')
            if in_doc:
                in_doc = quotes % 2 == 0
                continue
            if stripped.startswith('"""'):
                in_doc = quotes == 1
                continue
            if stripped and not stripped.startswith("#"):
                code += 1
    return total, code


def evaluate(name: str, records: Sequence[dict[str, Any]], queries: Sequence[Query]) -> dict[str, Any]:
    key_of, books_of = same_book_keys(records)
    gc.collect()
    before = rss_mb()
    started, started_cpu = time.perf_counter(), time.process_time()
    engine = ENGINES[name](records)
    build, build_cpu = time.perf_counter() - started, time.process_time() - started_cpu
    gc.collect()
    memory = rss_mb() - before
    engine.search("warm up", 10)
    first, reciprocal, latency, cpu = defaultdict(list), defaultdict(list), [], []
    failures: dict[str, list[str]] = defaultdict(list)
    for q in queries:
        started, started_cpu = time.perf_counter(), time.thread_time()
        hits = engine.search(q.text, 10)
        latency.append((time.perf_counter() - started) * 1000)
        cpu.append((time.thread_time() - started_cpu) * 1000)
        relevant = books_of[key_of[q.book_id]]
        rank = next((i + 1 for i, book_id in enumerate(hits) if book_id in relevant), None)
        first[q.kind].append(rank == 1)
        reciprocal[q.kind].append(1 / rank if rank else 0.0)
        if rank != 1 and len(failures[q.kind]) < 5:
            failures[q.kind].append(f"{q.text!r} -> {q.book_id}, got {hits[:1]}")
    total, code = code_lines(engine_sources(name))
    return {"kinds": {k: {"queries": len(first[k]), "first": float(np.mean(first[k])),
                          "mrr10": float(np.mean(reciprocal[k]))} for k in first},
            "build_s": build, "build_cpu_s": build_cpu, "memory_mb": memory,
            "p50_ms": float(np.percentile(latency, 50)), "p99_ms": float(np.percentile(latency, 99)),
            "cpu_p50_ms": float(np.percentile(cpu, 50)), "cpu_p99_ms": float(np.percentile(cpu, 99)),
            "lines": total, "code_lines": code, "failures": failures}


def print_quality(results: dict[str, dict[str, Any]], queries: Sequence[Query]) -> None:
    counts = {k: sum(q.kind == k for q in queries) for k in KINDS}
    names = list(results)
    print(f"\n{'':<24s}" + "".join(f"{n:>24s}" for n in names))
    print(f"{'kind':<16s}{'queries':>8s}" + f"{'first':>14s}{'MRR@10':>10s}" * len(names))
    for kind in KINDS:
        if not counts[kind]:
            continue
        row = f"{kind:<16s}{counts[kind]:>8d}"
        for n in names:
            figures = results[n]["kinds"].get(kind)
            row += (f"{figures['first']:>14.3f}{figures['mrr10']:>10.3f}" if figures
                    else f"{'-':>14s}{'-':>10s}")
        print(row)


def print_costs(results: dict[str, dict[str, Any]], size: int) -> None:
    print(f"\n{'engine':<22s}{'build s':>8s}{'CPU s':>7s}{'memory MB':>11s}{'p50 ms':>8s}{'p99 ms':>8s}"
          f"{'CPU p50':>9s}{'CPU p99':>9s}{'lines (code)':>15s}   ({size:,} books; latency over the eval "
          f"queries, CPU time shows the work on a busy machine)")
    for name, r in results.items():
        if "build_s" in r:
            print(f"{name:<22s}{r['build_s']:>8.2f}{r.get('build_cpu_s', float('nan')):>7.2f}"
                  f"{r['memory_mb']:>11.1f}"
                  f"{r['p50_ms']:>8.2f}{r['p99_ms']:>8.2f}"
                  f"{r.get('cpu_p50_ms', float('nan')):>9.2f}{r.get('cpu_p99_ms', float('nan')):>9.2f}"
                  f"{r['lines']:>8d} ({r['code_lines']})")


def print_verdict(results: dict[str, dict[str, Any]]) -> None:
    before = next((r for n, r in results.items() if n.endswith("(before)")), None)
    print()
    for name, r in results.items():
        if name.endswith("(before)"):
            continue
        missed = [f"{k} {r['kinds'][k]['first']:.3f} < {t}" for k, t in TARGETS.items()
                  if k in r["kinds"] and r["kinds"][k]["first"] < t]
        if before:
            missed += [f"{k} {f['first']:.3f} below before {before['kinds'][k]['first']:.3f}"
                       for k, f in r["kinds"].items() if k in before["kinds"]
                       and f["first"] < before["kinds"][k]["first"]]
        print(f"{name}: " + ("meets every target" if not missed else "misses " + "; ".join(missed))
              + f"; {r['code_lines']} lines of code")


def markdown(results: dict[str, dict[str, Any]], queries: Sequence[Query]) -> str:
    """The quality and cost tables as Markdown, for the README."""
    names = list(results)
    lines = ["| kind | queries | " + " | ".join(names) + " |", "|---|---:|" + "---:|" * len(names)]
    for kind in KINDS:
        count = sum(q.kind == kind for q in queries)
        if count:
            cells = [f"{results[n]['kinds'][kind]['first']:.3f} ({results[n]['kinds'][kind]['mrr10']:.3f})"
                     if kind in results[n]["kinds"] else "-" for n in names]
            lines.append(f"| {kind} | {count} | " + " | ".join(cells) + " |")
    lines += ["",
              "| engine | build s (CPU) | memory MB | p50 ms | p99 ms | CPU p50 ms | CPU p99 ms "
              "| lines (code) |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for n, r in results.items():
        lines.append(f"| {n} | {r['build_s']:.2f} ({r.get('build_cpu_s', float('nan')):.2f}) | "
                     f"{r['memory_mb']:.1f} | "
                     f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                     f"{r.get('cpu_p50_ms', float('nan')):.2f} | {r.get('cpu_p99_ms', float('nan')):.2f} | "
                     f"{r['lines']} ({r['code_lines']}) |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    parser.add_argument("--per-kind", type=int, default=300)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--save", type=Path, help="write the figures as JSON")
    parser.add_argument("--before", type=Path, default=None,
                        help="figures of an earlier run to print beside (default: eval_before.json)")
    parser.add_argument("--failures", action="store_true", help="print a few failed queries per kind")
    parser.add_argument("--markdown", action="store_true", help="also print the tables as Markdown")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    records = catalogue.records()
    queries = generate(records, args.per_kind, args.seed)
    key_of, books_of = same_book_keys(records)
    duplicated = sum(len(books_of[key_of[q.book_id]]) > 1 for q in queries)
    print(f"{len(records):,} books; {len(queries):,} queries (seed {args.seed}); {duplicated} queries target "
          f"a book that has a duplicate (same normalised title and authors), any of which counts")
    short = {k: sum(q.short_typo for q in queries if q.kind == k) for k in KINDS}
    print("misspelt words left with 4 letters (a deletion from 5), which the typo rules never correct: "
          + ", ".join(f"{k} {n}" for k, n in short.items() if n))
    results: dict[str, dict[str, Any]] = {}
    before = args.before or importlib.resources.files(__package__) / "eval_before.json"
    if before.is_file():
        for name, figures in json.loads(before.read_text()).items():
            results[f"{name} (before)"] = figures
    for name in args.engines:
        results[name] = evaluate(name, records, queries)
        if args.failures:
            for kind, failed in results[name]["failures"].items():
                print(f"  {name} {kind}: " + "; ".join(failed))
    print_quality(results, queries)
    print_costs(results, len(records))
    print_verdict(results)
    if args.markdown:
        print("\n" + markdown(results, queries))
    if args.save:
        args.save.write_text(json.dumps({n: r for n, r in results.items() if "(before)" not in n}, indent=1,
                                        ensure_ascii=False))


if __name__ == "__main__":
    main()
