"""Search index benchmark at 50K and 1M synthetic books: build time, memory, query and refresh latency.

Queries (`kinds`): common, rare and several words, exact titles, the any-word fallback, deep offsets,
advanced filters, autocomplete; then what readers type besides clean words (words with one or two
edits, a half-typed last word, words in Arabic, Cyrillic, Greek and CJK scripts, two characters of a
CJK title) and facet counts; then the worst a single request can ask within the API's bounds (500
characters, 20 values per facet filter): one 500-character word, 50 words (misspelt, common, the last
one half typed), 500 CJK characters, long digit runs, every facet with 80 facet filters, and 16 words
at the index's caps.

    python -m bench.search.bench_search [--sizes 50000 1000000] [--seed 7] [--authors-dump FILE]
    python -m bench.search.bench_search --sizes 10000000   # 10M books: ~14 GB of RAM, about an hour
    python -m bench.search.bench_search --vocabulary real   # real words only, as the catalogues before
    python -m bench.search.bench_search --sizes --http http://127.0.0.1:8080   # after `make up`
    python -m bench.search.bench_search --engine tantivy [--tantivy-dir /tmp]
    python -m bench.search.bench_search --engine both   # one process per engine
    python -m bench.search.bench_search --sizes 50000 --worst-only   # worst cases alone
    python -m bench.search.bench_search --sizes 50000 --keep-snapshot /tmp/s   # keeps /tmp/s.50000
    python -m bench.search.bench_search --sizes 50000 --build-only --keep-snapshot /tmp/s   # no queries
    python -m bench.search.bench_search --snapshot /tmp/s.50000   # its queries and refreshes again

(from the repository root; `make bench-search` runs the first, with the authors dump.) `--engine
tantivy` builds `tantivy_engine.TantivyEngine` (in memory, or memory-mapped in a fresh directory under
--tantivy-dir, whose size is then printed) from the same books and runs the same full-text, typo,
prefix and script queries and facets; it has no advanced filters, autocomplete or in-place refresh,
which print as n/a.

Books (`synthetic`) stream into the index builder one by one, as Scan pages do in the service; their
distinct terms grow with the catalogue as Heaps' law fitted on the bundled books has them (`heaps`:
the fit's K and beta are printed first, each size's distinct terms beside the fit). After each build: the
index's bytes per book, its snapshot (`artifact.dump`: size, time, the builder's peak RSS then) and a
replica's cold start from it in a process of its own (`replica_start`: time, replica RSS). Prints
figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bench.search.heaps import Heaps, catalogue_fit
from bench.search.kinds import COMMON, full_text, reader_queries, title_positions, worst_cases
from bench.search.measure import load_average, measure, peak_rss_mb, rss_mb
from bench.search.synthetic import STAMP, books
from bench.search.wrk_load import http
from bookrec_catalog.catalog import with_derived_attributes
from bookrec_local import definitions
from bookrec_search import artifact
from bookrec_search.building import IndexBuilder
from bookrec_search.facets import FacetFilter
from bookrec_search.filtering import Filters
from bookrec_search.index import SearchIndex
from bookrec_search.live import pretouch
from bookrec_search.settings import SearchSettings


def build(n: int, seed: int, authors_dump: Path | None = None, curve: Heaps | None = None) -> SearchIndex:
    before = rss_mb()
    # Only the builder's own calls are timed: generating a book takes longer than adding it, and a
    # separate generation pass subtracted afterwards goes negative on a busy machine.
    started, added, cpu = time.perf_counter(), 0.0, 0.0
    builder = IndexBuilder()
    for record in books(n, seed, authors_dump=authors_dump, curve=curve):
        call, call_cpu = time.perf_counter(), time.process_time()
        builder.add(record)
        added += time.perf_counter() - call
        cpu += time.process_time() - call_cpu
    generating = time.perf_counter() - started - added
    call, call_cpu = time.perf_counter(), time.process_time()
    index = SearchIndex(builder.build())
    del builder
    arrays = time.perf_counter() - call
    cpu += time.process_time() - call_cpu
    print(f"{n:,} books: build {added + arrays:.1f} s (records {added:.1f} s, arrays "
          f"{arrays:.1f} s), {cpu:.1f} s CPU; generating the books took another {generating:.1f} s")
    print(f"  index {index.nbytes / 2**20:.0f} MiB, {index.terms:,} terms, "
          f"{len(index.parts.combined.docs):,} all-field postings; RSS {rss_mb():.0f} MB "
          f"(+{rss_mb() - before:.0f} for the index), peak RSS {peak_rss_mb():.0f} MB")
    print(f"  index {index.nbytes / n:.0f} bytes per book; distinct terms {index.terms:,}"
          + (f" (Heaps' law fit at {n:,} books: {curve(n):,.0f})" if curve else " (real words only)"))
    return warmed(index)


def warmed(index: SearchIndex) -> SearchIndex:
    """The index with its commonest terms' heads and bitmaps taken, as a replica takes them before serving."""
    started, cpu = time.perf_counter(), time.process_time()
    index.warmed()
    extra = index.heads.nbytes + index.bitmaps.nbytes
    print(f"  warmed: {len(index.heads):,} heads, {len(index.bitmaps):,} bitmaps ({extra / 2**20:.0f} MiB), the "
          f"compiled loops compiled, in {time.perf_counter() - started:.1f} s ({time.process_time() - cpu:.1f} s CPU)")
    # As a replica does once its first index is in place (on a thread, while it serves): here before the
    # queries, so that they and the refreshes are timed in the heap a replica has by then.
    ratio = SearchSettings.model_fields["index_pretouch_ratio"].default
    started, cpu = time.perf_counter(), time.process_time()
    pretouch(int(index.nbytes * ratio))
    print(f"  pre-touched {index.nbytes * ratio / 2**30:.1f} GiB of heap ({ratio} x the index) in "
          f"{time.perf_counter() - started:.1f} s ({time.process_time() - cpu:.1f} s CPU); RSS {rss_mb():,.0f} MB")
    return index


def snapshot(index: SearchIndex, keep: Path | None = None) -> None:
    """The builder's snapshot of the index, made as the builder makes it (`artifact.dump_to` a file, then
    `ArtifactStore.publish` from the file, in parts) and timed, its size, and the builder's peak RSS during
    the dump and during the publish (the high-water mark reset before each: the build's own peak comes
    earlier); then a replica's cold start from it, in a process of its own (`replica_start`). The publish
    goes to a stand-in for S3 that keeps nothing it is sent, so the peak is the builder's own memory (its
    parts in flight included, not the HTTP client's buffers). The snapshot is kept at `keep` when given."""
    import asyncio

    from botocore.exceptions import ClientError

    from bench.search.replica_start import high_water_mb
    from bookrec_common.artifacts import ArtifactStore

    class DiscardingS3:
        """Answers the requests a first publish makes (no manifest yet) and keeps nothing."""

        async def get_object(self, **request: Any) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "none yet"}}, "GetObject")

        async def create_multipart_upload(self, **request: Any) -> dict[str, Any]:
            return {"UploadId": "discarded"}

        async def upload_part(self, **request: Any) -> dict[str, Any]:
            return {"ETag": f'"{request["PartNumber"]}"'}

        async def complete_multipart_upload(self, **request: Any) -> dict[str, Any]:
            return {}

        async def put_object(self, **request: Any) -> dict[str, Any]:
            return {"ETag": '"manifest"'}

    store = ArtifactStore(DiscardingS3(), "artifacts", artifact.KIND)
    with tempfile.TemporaryDirectory(prefix="search-snapshot-") as directory:
        path = Path(directory) / "index.snapshot"
        before = rss_mb()
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM, the peak RSS, to the RSS now (Linux)
        started, cpu = time.perf_counter(), time.process_time()
        with path.open("wb") as file:
            size = artifact.dump_to(index.parts, file)
        took, took_cpu = time.perf_counter() - started, time.process_time() - cpu
        dump_peak = high_water_mb()
        Path("/proc/self/clear_refs").write_text("5")
        started, cpu = time.perf_counter(), time.process_time()
        asyncio.run(store.publish(path, version=1, watermark="2026-01-01T00:00:00.000000Z", items=index.size,
                                  build_reads=index.size))
        published, published_cpu = time.perf_counter() - started, time.process_time() - cpu
        print(f"  snapshot: {size / 2**20:,.0f} MiB ({size / index.size:.0f} bytes per book), dump "
              f"{took:.1f} s ({took_cpu:.1f} s CPU) to a file, publish from it {published:.1f} s "
              f"({published_cpu:.1f} s CPU); builder peak RSS {max(dump_peak, high_water_mb()):,.0f} MB (dump "
              f"{dump_peak:,.0f}, publish {high_water_mb():,.0f}; {before:,.0f} MB before them)")
        sys.stdout.flush()
        subprocess.run([sys.executable, "-m", "bench.search.replica_start", str(path)], check=True)
        if keep is not None:
            shutil.move(path, keep)


def queries(index: SearchIndex) -> None:
    common = COMMON
    frequency = np.diff(index.parts.combined.offsets)
    in_use = np.flatnonzero(frequency)
    words = list(index.parts.vocabulary)
    rare = [words[t] for t in in_use[np.argsort(frequency[in_use], kind="stable")[:500]]]  # the least used
    rng, positions = title_positions(index.size)
    titles = [index.parts.titles[int(p)] for p in positions]
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


def worst_facets(index: SearchIndex) -> None:
    """Facets asked for with every facet filter at its most (20 values each), over a common word and
    over 50 common words."""
    authors = [c.value for c in index.facets(np.arange(index.size), 20)["authors"]]
    subjects = [c.value for c in index.facets(np.arange(index.size), 20)["subjects"]]
    decades = [1500 + 10 * i for i in range(0, 60, 3)]
    wanted = FacetFilter(tuple(map(str, authors)), tuple(map(str, subjects)), tuple(decades),
                         ("eng", "fre", "ger", "spa", "ita", "rus", "jpn", "chi", "ara", "gre", "lat", "por",
                          "dut", "swe", "pol", "tur", "heb", "kor", "hin", "dan"))
    frequency = np.diff(index.parts.combined.offsets)
    common = [index.parts.lexicon.by_id[t] for t in np.argsort(-frequency)[:50]]

    def faceted(query: str, facet_filter: FacetFilter | None) -> Any:
        return index.facets(index.search(query, with_matches=True, facet_filter=facet_filter).matches)

    measure("worst: facets + 80 facet filters, a common word",
            lambda i: faceted(COMMON[i % len(COMMON)], wanted), 40)
    measure("worst: facets + 80 facet filters, 50 common words",
            lambda i: faceted(" ".join(common[i % 3:]), wanted), 40)
    measure("worst: facets, no filter, 50 common words",
            lambda i: faceted(" ".join(common[i % 3:]), None), 40)


def worst(index: SearchIndex) -> None:
    frequency = np.diff(index.parts.combined.offsets)
    in_use = np.flatnonzero(frequency)
    words = [index.parts.lexicon.by_id[t] for t in in_use[np.argsort(-frequency[in_use], kind="stable")]]
    _, positions = title_positions(index.size)
    worst_cases(index.search, words, [index.parts.titles[int(p)] for p in positions])
    worst_facets(index)


def timed_off_thread(work: Callable[[], Any]) -> tuple[Any, float, float, float]:
    """Run `work` on a thread as the service does; returns its result, its time, its CPU time and the
    longest pause a 1 ms ticker on the calling thread saw meanwhile (what the event loop would feel)."""
    box: list[Any] = []

    def timed() -> None:
        cpu = time.thread_time()
        box.append(work())
        box.append(time.thread_time() - cpu)

    thread = threading.Thread(target=timed)
    started = last = time.perf_counter()
    thread.start()
    longest = 0.0
    while thread.is_alive():
        time.sleep(0.001)
        now = time.perf_counter()
        longest, last = max(longest, now - last), now
    thread.join()
    return box[0], time.perf_counter() - started, box[1], longest


def refreshes(index: SearchIndex, n: int, seed: int, authors_dump: Path | None, curve: Heaps | None) -> None:
    first = list(itertools.islice(books(n, seed, authors_dump=authors_dump, curve=curve), 1_000))
    # Only the ratings change (as a rating's write-through leaves the rest of the item): the records as built,
    # not re-derived, whose normalised title could differ from the one the index took.
    rerated = [dict(r, rating_count=7 + i % 5, rating_sum=5 * (7 + i % 5)) for i, r in enumerate(first)]
    updated, took, cpu, pause = timed_off_thread(lambda: index.updated(rerated))
    print(f"  refresh, 1,000 rating changes: {took * 1000:.0f} ms ({cpu * 1000:.0f} ms CPU), longest pause of "
          f"the serving thread "
          f"{pause * 1000:.1f} ms")
    retitled = [with_derived_attributes(dict(r, title=r["title"] + " revised", title_norm=None), now=STAMP)
                for r in first]
    added = list(books(100, seed + 1, first_id=n + 1, authors_dump=authors_dump, curve=curve))
    grown, took, cpu, pause = timed_off_thread(lambda: updated.updated(retitled[:100] + added))
    print(f"  refresh, 100 new + 100 retitled books: {took * 1000:.0f} ms ({cpu * 1000:.0f} ms CPU), longest pause "
          f"{pause * 1000:.1f} ms (now {grown.size:,} books)")
    mixed = rerated[200:] + retitled[:100] + list(books(100, seed + 2, first_id=n + 101,
                                                         authors_dump=authors_dump, curve=curve))
    _, took, cpu, pause = timed_off_thread(lambda: index.updated(mixed))
    print(f"  refresh, 1,000 changes (800 re-rated, 100 retitled, 100 new): {took * 1000:.0f} ms "
          f"({cpu * 1000:.0f} ms CPU), longest pause {pause * 1000:.1f} ms; peak RSS {peak_rss_mb():.0f} MB")


def refreshes_in_a_row(index: SearchIndex, n: int, seed: int, authors_dump: Path | None,
                       curve: Heaps | None) -> None:
    """As a replica refreshes: each index replaced by the next, STEADY_REFRESHES times. The first refreshes
    of a process pay for fresh memory (kernel time); then the allocator reuses what replaced indexes freed."""
    first = list(itertools.islice(books(n, seed, authors_dump=authors_dump, curve=curve), 1_000))
    times = []
    for step in range(STEADY_REFRESHES):
        mixed = [dict(r, rating_count=8 + step, rating_sum=4 * (8 + step)) for r in first[200:]] + \
            [with_derived_attributes(dict(r, title=f"{r['title']} edition {step}", title_norm=None), now=STAMP)
             for r in first[:100]] + \
            list(books(100, seed + 3 + step, first_id=n + 201 + 100 * step, authors_dump=authors_dump, curve=curve))
        index, took, cpu, _ = timed_off_thread(lambda batch=mixed, current=index: current.updated(batch))
        times.append((took, cpu))
    print("  refresh, 1,000 changes, one after another as a replica refreshes: "
          + ", ".join(f"{took * 1000:.0f}" for took, _ in times) + f" ms ({times[-1][1] * 1000:.0f} ms CPU the "
          f"last); RSS {rss_mb():,.0f} MB")


STEADY_REFRESHES = 5


def with_the_services_allocator() -> None:
    """Run as a search replica runs: with its allocator settings (services.json's MALLOC_* variables, which
    glibc reads only as a process starts: this process is started again with them), so that refreshes cost
    here what they cost the service."""
    wanted = {k: v for k, v in definitions.services()["search"]["environment"].items() if k.startswith("MALLOC_")}
    if any(os.environ.get(k) != v for k, v in wanted.items()):
        sys.stdout.flush()
        os.execve(sys.executable, [sys.executable, "-m", "bench.search.bench_search", *sys.argv[1:]],
                  {**os.environ, **wanted})
    print("allocator as a search replica's (services.json): " + " ".join(f"{k}={v}" for k, v in wanted.items()))


def run(n: int, seed: int, worst_only: bool = False, authors_dump: Path | None = None,
        curve: Heaps | None = None, keep: Path | None = None, build_only: bool = False) -> None:
    print(f"hand-written index; {load_average()}")
    index = build(n, seed, authors_dump, curve)
    if not worst_only:
        snapshot(index, keep)
        if build_only:
            print(f"  {load_average()}")
            return
        queries(index)
    worst(index)
    if not worst_only:
        refreshes(index, n, seed, authors_dump, curve)
        refreshes_in_a_row(index, n, seed, authors_dump, curve)
    print(f"  {load_average()}")


def run_from_snapshot(path: Path, seed: int, worst_only: bool, authors_dump: Path | None,
                      curve: Heaps | None) -> None:
    """The query kinds and refreshes over an index loaded from a snapshot `run` left (`--keep-snapshot`):
    a catalogue built once, its queries measured again after a change to the query path. The refreshes
    re-rate, retitle and add books of the same synthetic catalogue (the same seed)."""
    print(f"hand-written index from {path}; {load_average()}")
    started = time.perf_counter()
    index = SearchIndex(artifact.load(path.read_bytes()))
    print(f"{index.size:,} books loaded in {time.perf_counter() - started:.1f} s; RSS {rss_mb():,.0f} MB; index "
          f"{index.nbytes / index.size:.0f} bytes per book")
    warmed(index)
    if not worst_only:
        queries(index)
    worst(index)
    if not worst_only:
        refreshes(index, index.size, seed, authors_dump, curve)
        refreshes_in_a_row(index, index.size, seed, authors_dump, curve)
    print(f"  {load_average()}")


def directory_mb(path: str) -> float:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 2**20


def build_tantivy(n: int, seed: int, positions: np.ndarray, directory: str | None,
                  authors_dump: Path | None, curve: Heaps | None = None) -> tuple[Any, dict[int, str]]:
    """The tantivy engine from the same books, streamed in. Its prior needs the catalogue's mean rating
    first: a pass over the books computes it (not counted). Build wall and CPU time leave out the time
    spent making the books; CPU time is the process's (tantivy indexes on threads of its own)."""
    from bench.search.tantivy_engine import TantivyEngine  # tantivy loads only for its runs

    before = rss_mb()
    started = time.perf_counter()
    count = total = 0
    for record in books(n, seed, authors_dump=authors_dump, curve=curve):
        count, total = count + int(record["rating_count"] or 0), total + int(record["rating_sum"] or 0)
    mean = total / max(1, count)
    prepass = time.perf_counter() - started
    wanted, titles = set(int(p) for p in positions), {}
    making = [0.0, 0.0]

    def stream() -> Iterator[dict[str, Any]]:
        made = books(n, seed, authors_dump=authors_dump, curve=curve)
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


def run_tantivy(n: int, seed: int, directory: str | None, authors_dump: Path | None,
                curve: Heaps | None = None) -> None:
    import tantivy

    print(f"{tantivy.__version__.split(',')[0]} engine; {load_average()}")
    rng, positions = title_positions(n)
    engine, by_position = build_tantivy(n, seed, positions, directory, authors_dump, curve)
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
    print(f"  peak RSS {peak_rss_mb():.0f} MB; {load_average()}")
    if engine.path:
        shutil.rmtree(engine.path, ignore_errors=True)


def main() -> None:
    with_the_services_allocator()
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
                        help="hand-written engine: only the worst-case queries (no ordinary kinds, "
                             "refreshes)")
    parser.add_argument("--tantivy-dir", metavar="DIR",
                        help="build the tantivy index in a fresh directory under DIR instead of in memory")
    parser.add_argument("--authors-dump", type=Path, metavar="FILE",
                        help="more real author names: an Open Library authors dump (gzip), as `make "
                             "bench-search` gives data-processing/tests/data/ol_dump_authors_sample.txt.gz")
    parser.add_argument("--vocabulary", choices=["heaps", "real"], default="heaps",
                        help="heaps (default): distinct terms grow with the catalogue as Heaps' law fitted on "
                             "the bundled books has them (new words coined); real: real words only, the "
                             "vocabulary stops near 21,500 terms (the catalogues before)")
    parser.add_argument("--snapshot", type=Path, metavar="FILE",
                        help="hand-written engine: instead of building, load the index from this snapshot "
                             "(artifact.dump's bytes, as the builder publishes them) and time its queries and "
                             "refreshes; --seed and --vocabulary must be those it was built with")
    parser.add_argument("--build-only", action="store_true",
                        help="hand-written engine: the build, its snapshot and a replica's cold start only; "
                             "time the queries and refreshes later from --keep-snapshot's file (--snapshot)")
    parser.add_argument("--keep-snapshot", type=Path, metavar="FILE",
                        help="keep each size's snapshot, as FILE.<books> (for --snapshot)")
    args = parser.parse_args()
    if args.snapshot and not args.snapshot.is_file():
        parser.error(f"--snapshot {args.snapshot}: no such file")
    curve = None
    if args.vocabulary == "heaps":
        curve, sizes, distinct = catalogue_fit()
        print(f"vocabulary: Heaps' law V(n) = K * n^beta fitted on the bundled books ({sizes[-1]:,} books, "
              f"{distinct[-1]:,.0f} distinct terms; sizes {sizes[0]:,}..{sizes[-1]:,}): K = {curve.k:.2f}, "
              f"beta = {curve.beta:.3f}")
    if args.engine == "both":
        for engine in ("handwritten", "tantivy"):
            command = [sys.executable, "-m", "bench.search.bench_search", "--engine", engine, "--seed",
                       str(args.seed), "--sizes", *map(str, args.sizes)]
            if args.tantivy_dir:
                command += ["--tantivy-dir", args.tantivy_dir]
            if args.authors_dump:
                command += ["--authors-dump", str(args.authors_dump)]
            command += ["--vocabulary", args.vocabulary]
            sys.stdout.flush()
            subprocess.run(command, check=True)
    elif args.snapshot:
        run_from_snapshot(args.snapshot, args.seed, args.worst_only, args.authors_dump, curve)
    else:
        for n in args.sizes:
            if args.engine == "tantivy":
                run_tantivy(n, args.seed, args.tantivy_dir, args.authors_dump, curve)
            else:
                keep = args.keep_snapshot and args.keep_snapshot.with_name(f"{args.keep_snapshot.name}.{n}")
                run(n, args.seed, args.worst_only, args.authors_dump, curve, keep or None, args.build_only)
    if args.http:
        http(args.http.rstrip("/"), args.duration, args.connections)



if __name__ == "__main__":
    main()
