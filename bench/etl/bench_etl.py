"""ETL benchmark: extract throughput and peak memory on dump-sized input, load throughput against moto.

    .venv/bin/python data-processing/benchmarks/bench_etl.py [--gigabytes 2] [--gzip] [--load-items 20000]

Extract input is generated in a temp dir from the real Open Library samples
(the authors-dump slice and the development database's works and editions),
repeated with rewritten keys and cross references, plus work redirects and
deletes and a ratings dump, in roughly the real dumps' proportions (editions >
works > authors >> ratings). `bookrec-etl extract` runs as a child process so
its own peak RSS and CPU time are measured. Load writes real-shaped books and
goodbooks ratings to a moto server started here on a free port, with 4, 8 and
16 writers; with 8, the books are then re-imported unchanged (read, not
written) and the tables reconciled. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

from bookrec_etl.importers import import_goodbooks
from bookrec_etl.load import Loader, Tables, dynamodb_client
from bookrec_etl.progress import Progress
from bookrec_etl.reconcile import Reconciler
from bookrec_etl.report import Rejects
from bookrec_etl.seed import default_seed_dir
from bookrec_local import definitions
from bookrec_local.procs import (
    LOCAL_AWS_ENV,
    free_port,
    local_dynamodb,
    moto_command,
    port_open,
    start,
    wait_until,
)

SEED = default_seed_dir()  # the development-database dumps and goodbooks-10k
OPENLIBRARY = SEED
# Byte shares of the generated input, after the real dumps (editions ~ 2x works ~ 4x authors; ratings small).
SHARES = {"authors": 0.13, "works": 0.27, "editions": 0.58, "ratings": 0.02}
REDIRECT_EVERY, DELETE_EVERY = 50, 200  # works: 2% redirects, 0.5% deletes
KEY = re.compile(rb"/(?:works|authors|books)/OL\d+[WAM]")


def quiet(label, total, unit):
    return Progress(label, total, unit, interactive=False)


class Template:
    """A real dump line with its own key and its references cut out, ready to be filled with new keys."""

    def __init__(self, line: bytes) -> None:
        own = line.split(b"\t")[1]
        self.literals: list[bytes] = []
        self.slots: list[bytes] = []  # b"self", b"author" or b"work"
        last = 0
        for match in KEY.finditer(line):
            key = match.group(0)
            self.literals.append(line[last:match.start()])
            kind = b"author" if key.startswith(b"/authors/") else b"work"
            self.slots.append(b"self" if key == own else kind)
            last = match.end()
        self.literals.append(line[last:])

    def render(self, own: bytes, author, work) -> bytes:
        parts = [self.literals[0]]
        for slot, literal in zip(self.slots, self.literals[1:], strict=True):
            parts.append(own if slot == b"self" else author() if slot == b"author" else work())
            parts.append(literal)
        return b"".join(parts)


def templates(*names: str) -> list[Template]:
    raw = [(OPENLIBRARY / name).read_bytes() for name in names]  # a name may be an absolute path
    lines = [line for name, data in zip(names, raw, strict=True)
             for line in (gzip.decompress(data) if name.endswith(".gz") else data).splitlines(keepends=True)]
    return [Template(line) for line in lines if line.strip()]


def generate(directory: Path, total_bytes: int, authors_dump: Path, seed: int = 7) -> dict[str, Path]:
    rng = random.Random(seed)
    paths = {name: directory / f"ol_dump_{name}.txt" for name in SHARES}
    budget = {name: int(total_bytes * share) for name, share in SHARES.items()}
    counts = {"authors": 1, "works": 1}

    def author() -> bytes:
        return b"/authors/OL%dA" % rng.randint(1, counts["authors"])

    def work() -> bytes:
        return b"/works/OL%dW" % rng.randint(1, counts["works"])

    def write(name: str, lines: list[Template], key: bytes, special=None) -> int:
        written = number = 0
        with paths[name].open("wb") as out:
            chunk: list[bytes] = []
            while written < budget[name]:
                number += 1
                own = key % number
                line = special and special(number, own)
                line = line or lines[number % len(lines)].render(own, author, work)
                chunk.append(line)
                written += len(line)
                if len(chunk) == 4096:
                    out.write(b"".join(chunk))
                    chunk.clear()
            out.write(b"".join(chunk))
        return number

    def redirect_or_delete(number: int, own: bytes) -> bytes | None:
        if number > 1 and number % REDIRECT_EVERY == 0:
            target = b"/works/OL%dW" % rng.randint(1, number - 1)
            return (b'/type/redirect\t%s\t2\t2021-01-01T00:00:00.000000\t{"type": {"key": "/type/redirect"}, '
                    b'"location": "%s", "key": "%s"}\n' % (own, target, own))
        if number > 1 and number % DELETE_EVERY == 1:
            return (b'/type/delete\t%s\t3\t2021-01-01T00:00:00.000000\t{"type": {"key": "/type/delete"}, '
                    b'"key": "%s"}\n' % (own, own))
        return None

    author_lines = templates(str(authors_dump.resolve()), "ol_devinstance_authors.txt")
    counts["authors"] = write("authors", author_lines, b"/authors/OL%dA")
    counts["works"] = write("works", templates("ol_devinstance_works.txt"), b"/works/OL%dW",
                            redirect_or_delete)
    write("editions", templates("ol_devinstance_editions.txt"), b"/books/OL%dM")
    with paths["ratings"].open("wb") as out:
        written = 0
        while written < budget["ratings"]:
            edition = rng.choice((b"", b"\\N", b"/books/OL%dM" % rng.randint(1, 10**7)))
            line = b"%s\t%s\t%d\t2024-0%d-1%d\n" % (work(), edition, rng.randint(1, 5), rng.randint(1, 9),
                                                    rng.randint(0, 9))
            out.write(line)
            written += len(line)
    return paths


def count_lines(path: Path) -> int:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 22), b""))


def run_extract(paths: dict[str, Path], out: Path, workdir: Path, label: str, size: int) -> None:
    """`size`: the dumps' uncompressed bytes, which is what MB/s is counted in."""
    on_disk = sum(p.stat().st_size for p in paths.values())
    command = [sys.executable, "-m", "bookrec_etl", "--log-level", "WARNING", "extract", "--out", str(out),
               "--workdir", str(workdir)]
    for name, path in paths.items():
        command += [f"--{name}", str(path)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"extract failed:\n{result.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    records = sum(count_lines(p) for p in paths.values())
    books = count_lines(out)
    print("\n".join(f"    {line}" for line in result.stderr.strip().splitlines()))
    parts = ", ".join(f"{name} {path.stat().st_size / 1e6:,.0f} MB" for name, path in paths.items())
    print(f"[extract {label}] input {size / 1e9:.2f} GB uncompressed, {on_disk / 1e9:.2f} GB on disk "
          f"({parts}); "
          f"{records:,} input records")
    print(f"[extract {label}] wall {seconds:.1f}s, CPU {cpu:.1f}s (one process): "
          f"{size / 1e6 / seconds:.1f} MB/s, {size / 1e6 / cpu:.1f} MB per CPU-second, "
          f"{records / seconds:,.0f} records/s; {books:,} books written")
    print(f"[extract {label}] peak RSS of the extract process: {after.ru_maxrss / 1024:.0f} MB "
          f"(high-water mark of every child so far)")


def run_load(books: Path, ratings: Path, items: int) -> None:
    os.environ.update(LOCAL_AWS_ENV)
    port = free_port()
    proc = start(moto_command(port))
    try:
        wait_until(lambda: port_open(port), 30, "moto server", proc)
        endpoint = f"http://127.0.0.1:{port}"
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        subsets = {}
        for kind, source in (("books", books), ("ratings", ratings)):
            subsets[kind] = source.with_name(f"bench_{kind}.jsonl")
            with source.open("rb") as full, subsets[kind].open("wb") as part:
                part.writelines(line for _, line in zip(range(items), full, strict=False))
        for writers in (4, 8, 16):
            names = definitions.create_tables(local_dynamodb(endpoint), f"bench{writers}")
            tables = Tables(names["books"], names["ratings"])
            with closing(dynamodb_client(writers)) as client:
                for kind, path in subsets.items():
                    report = Loader(client, tables, Rejects(None), writers).load(path, progress=quiet)
                    print(f"[load] {kind:7} {writers:2} writers: {report.written:,} items in "
                          f"{report.seconds:.1f}s = {report.written / report.seconds:,.0f} items/s, "
                          f"{report.calls:,} round trips (BatchGetItem, TransactWriteItems) = "
                          f"{1000 * report.calls / report.written:.1f} per 1,000 items, "
                          f"{report.retried} retried")
                if writers == 8:
                    # The monthly re-import of an unchanged catalogue: every book read, none written.
                    again = Loader(client, tables, Rejects(None), writers).load(subsets["books"],
                                                                                progress=quiet)
                    print(f"[load] books re-imported unchanged, 8 writers: {again.read:,} lines in "
                          f"{again.seconds:.1f}s = {again.read / again.seconds:,.0f} lines/s, "
                          f"{again.written} written, {again.calls:,} round trips")
                    started = time.perf_counter()
                    found = Reconciler(client, names["books"], names["ratings"], progress=quiet).run()
                    seconds = time.perf_counter() - started
                    rate = (found.books + found.ratings) / seconds
                    print(f"[reconcile] {found.books:,} books, {found.ratings:,} ratings in {seconds:.1f}s "
                          f"= {rate:,.0f} items/s; drift: {len(found.drift)}")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:  # a request thread can hold it up: it is ours to stop
            proc.kill()
            proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gigabytes", type=float, default=2.0, help="size of the generated dumps together")
    parser.add_argument("--authors-dump", type=Path, required=True,
                        help="lines of Open Library's authors dump the generated authors are modelled on")
    parser.add_argument("--gzip", action="store_true", help="also extract the same dumps gzip-compressed")
    parser.add_argument("--load-items", type=int, default=20_000,
                        help="books, and ratings, written per load run")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="bookrec-bench-etl-"))
    try:
        started = time.perf_counter()
        paths = generate(directory, int(args.gigabytes * 1e9), args.authors_dump)
        os.sync()  # the generator's writes are not the extractor's to wait for
        print(f"[generate] {sum(p.stat().st_size for p in paths.values()) / 1e9:.2f} GB in "
              f"{time.perf_counter() - started:.1f}s in {directory}")
        books = directory / "books.jsonl"
        size = sum(p.stat().st_size for p in paths.values())
        run_extract(paths, books, directory, "plain", size)
        if args.gzip:
            packed = {}
            for name, path in paths.items():
                packed[name] = path.with_name(path.name + ".gz")
                with path.open("rb") as raw, gzip.open(packed[name], "wb", compresslevel=1) as out:
                    shutil.copyfileobj(raw, out, 1 << 22)
                path.unlink()
            run_extract(packed, directory / "books_gz.jsonl", directory, "gzip", size)
        ratings = directory / "ratings.jsonl"
        import_goodbooks(SEED / "goodbooks10k_books.csv.gz", SEED / "goodbooks10k_book_genres.csv.gz",
                         SEED / "goodbooks_ratings_sample.csv.gz", directory / "goodbooks_books.jsonl",
                         ratings, Rejects(None), progress=quiet)
        run_load(books, ratings, args.load_items)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
