"""ETL benchmark: extract throughput and peak memory on dump-sized input, load throughput against moto.

    .venv/bin/python data-processing/benchmarks/bench_etl.py [--gigabytes 2] [--load-items 40000]

Extract input is generated in a temp dir from the real Open Library samples
(the authors-dump slice and the development database's works and editions),
repeated with rewritten keys and cross references, plus redirects, deletes and
a ratings dump, in roughly the real dumps' proportions (editions > works >
authors >> ratings). `bookrec-etl extract` runs as a child process so its peak
RSS is measured alone. Load writes books and ratings to a moto server started
here on a free port. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # scripts.definitions / scripts.procs: table definitions and the moto server

SHARED = ROOT.parent / "shared" / "data" / "openlibrary"
SEED = ROOT / "data-processing" / "seed"
# Byte shares of the generated input, after the real dumps (editions ~ 3x works ~ 4x authors; ratings small).
SHARES = {"editions": 0.58, "works": 0.27, "authors": 0.13, "ratings": 0.02}
REDIRECT_EVERY, DELETE_EVERY = 50, 200  # works: 2% redirects, 0.5% deletes

_KEY = re.compile(rb"/(works|authors|books)/OL\d+[WAM]")


def _templates(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().splitlines(keepends=True) if line.strip()]


def _placeholder(line: bytes, own: bytes) -> list[bytes | tuple[str, int]]:
    """Split a line into literal bytes and key slots: ("self", 0) for its own key, ("author"/"work", i) for refs."""
    parts: list[bytes | tuple[str, int]] = []
    last = 0
    refs: dict[bytes, int] = {}
    for match in _KEY.finditer(line):
        parts.append(line[last:match.start()])
        key = match.group(0)
        if key == own:
            parts.append(("self", 0))
        elif key.startswith(b"/authors/"):
            parts.append(("author", refs.setdefault(key, len(refs))))
        elif key.startswith(b"/works/"):
            parts.append(("work", refs.setdefault(key, len(refs))))
        else:
            parts.append(key)
        last = match.end()
    parts.append(line[last:])
    return parts


class Generator:
    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.authors = [_placeholder(t, t.split(b"\t")[1]) for t in
                        _templates(SHARED / "ol_dump_authors_sample.txt") + _templates(SHARED / "ol_devinstance_authors.txt")]
        self.works = [_placeholder(t, t.split(b"\t")[1]) for t in _templates(SHARED / "ol_devinstance_works.txt")]
        self.editions = [_placeholder(t, t.split(b"\t")[1]) for t in _templates(SHARED / "ol_devinstance_editions.txt")]

    @staticmethod
    def _render(parts, own: bytes, ref) -> bytes:
        return b"".join(p if isinstance(p, bytes) else own if p[0] == "self" else ref(p[0], p[1]) for p in parts)

    def write(self, directory: Path, total_bytes: int) -> dict[str, Path]:
        paths = {name: directory / f"ol_dump_{name}.txt" for name in SHARES}
        budget = {name: int(total_bytes * share) for name, share in SHARES.items()}
        rng = self.rng
        # authors first: their count bounds the author ids works may reference
        n_authors = self._write_records(paths["authors"], budget["authors"], self.authors, b"/authors/OL%dA",
                                        lambda kind, i: b"/authors/OL1A")
        n_works_holder = {"n": 0}

        def work_ref(kind: str, _i: int) -> bytes:
            if kind == "author":
                return b"/authors/OL%dA" % rng.randint(1, n_authors)
            return b"/works/OL%dW" % rng.randint(1, max(n_works_holder["n"], 1))

        n_works_holder["n"] = self._write_records(paths["works"], budget["works"], self.works, b"/works/OL%dW",
                                                  work_ref, redirects=True)
        self._write_records(paths["editions"], budget["editions"], self.editions, b"/books/OL%dM", work_ref)
        with paths["ratings"].open("wb") as out:
            written, n = 0, n_works_holder["n"]
            while written < budget["ratings"]:
                edition = rng.choice((b"", b"\\N", b"/books/OL%dM" % rng.randint(1, 10**7)))
                line = b"/works/OL%dW\t%s\t%d\t2024-0%d-1%d\n" % (rng.randint(1, n), edition, rng.randint(1, 5),
                                                                   rng.randint(1, 9), rng.randint(0, 9))
                out.write(line)
                written += len(line)
        return paths

    def _write_records(self, path: Path, budget: int, templates, key_format: bytes, ref, redirects: bool = False,
                       ) -> int:
        written, number = 0, 0
        chunk: list[bytes] = []
        with path.open("wb") as out:
            while written < budget:
                number += 1
                own = key_format % number
                if redirects and number % REDIRECT_EVERY == 0 and number > 1:
                    line = (b"/type/redirect\t%s\t2\t2021-01-01T00:00:00.000000\t{\"type\": {\"key\": \"/type/redirect\"}, "
                            b"\"location\": \"%s\", \"key\": \"%s\"}\n" % (own, key_format % self.rng.randint(1, number - 1), own))
                elif redirects and number % DELETE_EVERY == 1 and number > 1:
                    line = b"/type/delete\t%s\t3\t2021-01-01T00:00:00.000000\t{\"type\": {\"key\": \"/type/delete\"}, \"key\": \"%s\"}\n" % (own, own)
                else:
                    line = self._render(templates[number % len(templates)], own, ref)
                chunk.append(line)
                written += len(line)
                if len(chunk) >= 4096:
                    out.write(b"".join(chunk))
                    chunk.clear()
            out.write(b"".join(chunk))
        return number


def count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 22), b""))


def run_extract(paths: dict[str, Path], out: Path, workdir: Path) -> None:
    size = sum(p.stat().st_size for p in paths.values())
    command = [sys.executable, "-m", "bookrec_etl", "--log-level", "WARNING", "extract",
               "--works", str(paths["works"]), "--authors", str(paths["authors"]),
               "--editions", str(paths["editions"]), "--ratings", str(paths["ratings"]),
               "--out", str(out), "--workdir", str(workdir)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"extract failed:\n{result.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    records = sum(count_lines(p) for p in paths.values())
    print(result.stderr.strip())
    print(f"[extract] input {size / 1e9:.2f} GB ({', '.join(f'{k} {p.stat().st_size / 1e6:,.0f} MB' for k, p in paths.items())})")
    print(f"[extract] wall {seconds:.1f}s, CPU {cpu:.1f}s: {size / 1e6 / seconds:.1f} MB/s wall, "
          f"{size / 1e6 / cpu:.1f} MB/s per CPU-second (one process, one core), "
          f"{records / seconds:,.0f} input records/s")
    print(f"[extract] peak RSS of the extract process {after.ru_maxrss / 1024:.0f} MB; books written "
          f"{sum(1 for _ in out.open('rb')):,}")


def run_load(books: Path, ratings: Path, items: int, workdir: Path) -> None:
    from scripts import definitions
    from scripts.procs import LOCAL_AWS_ENV, free_port, local_dynamodb, moto_command, port_open, start, wait_until

    import os

    os.environ.update(LOCAL_AWS_ENV)
    from bookrec_etl.load import Loader, Tables, dynamodb_client
    from bookrec_etl.progress import Progress
    from bookrec_etl.report import Rejects

    port = free_port()
    proc = start(moto_command(port))
    try:
        wait_until(lambda: port_open(port), 30, "moto server", proc)
        endpoint = f"http://127.0.0.1:{port}"
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        subsets = {"books": books.with_name("bench_books.jsonl"), "ratings": ratings.with_name("bench_ratings.jsonl")}
        for kind, source in (("books", books), ("ratings", ratings)):
            with source.open("rb") as full, subsets[kind].open("wb") as part:
                for _, line in zip(range(items), full):
                    part.write(line)
        for writers in (4, 8, 16):
            for kind, path in subsets.items():
                names = definitions.create_tables(local_dynamodb(endpoint), f"bench{writers}{kind}")
                loader = Loader(dynamodb_client(writers), Tables(names["books"], names["ratings"]), Rejects(None), writers)
                report = loader.load(path, progress=lambda *a: Progress(*a, interactive=False))
                print(f"[load] {kind:7} writers {writers:2}: {report.written:,} items in {report.seconds:.1f}s = "
                      f"{report.written / report.seconds:,.0f} items/s, {report.calls:,} BatchWriteItem round trips "
                      f"({1000 * report.calls / report.written:.1f} per 1,000 items), retried {report.retried}")
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gigabytes", type=float, default=2.0, help="generated dump size in total")
    parser.add_argument("--load-items", type=int, default=30_000, help="books and ratings written per load run")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="bookrec-bench-etl-"))
    try:
        started = time.perf_counter()
        paths = Generator().write(directory, int(args.gigabytes * 1e9))
        print(f"[generate] {sum(p.stat().st_size for p in paths.values()) / 1e9:.2f} GB in "
              f"{time.perf_counter() - started:.1f}s at {directory}")
        books = directory / "books.jsonl"
        run_extract(paths, books, directory)
        for path in paths.values():
            path.unlink()
        ratings = directory / "ratings.jsonl"
        import_ratings(ratings, directory)
        run_load(books, ratings, args.load_items, directory)
    finally:
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)


def import_ratings(out: Path, directory: Path) -> None:
    from bookrec_etl.importers import import_goodbooks
    from bookrec_etl.progress import Progress
    from bookrec_etl.report import Rejects

    import_goodbooks(SEED / "goodbooks10k_books.csv.gz", SEED / "goodbooks10k_book_genres.csv.gz",
                     SEED / "goodbooks_ratings_sample.csv.gz", directory / "gb_books.jsonl", out, Rejects(None),
                     progress=lambda *a: Progress(*a, interactive=False))


if __name__ == "__main__":
    main()
