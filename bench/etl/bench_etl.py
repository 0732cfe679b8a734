"""ETL benchmark, up to the whole Open Library: extract per dump and its extrapolation to the full dumps,
then load against the emulator, the load's own estimate, and a first load of ~30M books on AWS.

    make bench-etl                                  # ~2 GB of dumps, loads of 20,000 items
    make bench-etl ETL_ARGS="--works 5000000 --editions 10000000 --authors 2000000 --load-items 1000000 \\
                             --load-writers 8 --first-load-only"

Dumps are generated (dumps.py) gzip-compressed, with Open Library's record mix, in a temp dir (or
--workdir). `bookrec-etl extract` runs as a child process: its log gives each pass's time (lines/s, MB/s
of uncompressed dump), the peak RSS of its processes is sampled (the extract process and its helper,
together), and the figures are extrapolated to the full dumps (FULL_DUMPS). Load writes the first
--load-items extracted books and goodbooks ratings to a moto server started here, with each of
--load-writers; with 8 (unless --first-load-only) the books are then re-imported unchanged and the tables
reconciled. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import closing
from datetime import datetime
from pathlib import Path

import psutil

from bench.etl.dumps import SEED, generate, mean_line_bytes
from bench.etl.projection import extrapolate, first_load_lines
from bookrec_etl.estimate import estimate_file
from bookrec_etl.extract_processes import reads_aside
from bookrec_etl.importers import import_goodbooks
from bookrec_etl.load import Loader, Tables, dynamodb_client
from bookrec_etl.progress import Progress
from bookrec_etl.reconcile import Reconciler
from bookrec_etl.report import Rejects
from bookrec_local import definitions
from bookrec_local.procs import LOCAL_AWS_ENV, free_port, local_dynamodb, moto_command, port_open, start, wait_until

# Byte shares of the generated input when sized in gigabytes (editions ~ 2x works ~ 4x authors; ratings small).
SHARES = {"authors": 0.13, "works": 0.27, "editions": 0.58, "ratings": 0.02}
DONE = re.compile(r"^(?P<at>\S+ \S+) INFO (?P<label>extract [\w+]+|join editions|write books): .*, "
                  r"(?P<seconds>[\d.]+)s, CPU (?P<cpu>[\d.]+)s \(done\)$")


def quiet(label, total, unit):
    return Progress(label, total, unit, interactive=False)


class PeakMemory(threading.Thread):
    """The highest RSS of a process and its children together (and of the largest alone), sampled."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process, self.together, self.alone, self.stopped = psutil.Process(pid), 0, 0, threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.2):
            try:
                rss = [p.memory_info().rss for p in [self.process, *self.process.children(recursive=True)]]
            except psutil.Error:
                continue
            self.together, self.alone = max(self.together, sum(rss)), max(self.alone, *rss)


def count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 22), b""))


def passes_from(log: str) -> dict[str, tuple[datetime, float, float]]:
    """label -> (when it ended, seconds, CPU seconds) of every pass the extract log says is done."""
    found = {}
    for line in log.splitlines():
        if match := DONE.match(line):
            label = match["label"].removeprefix("extract ")
            found[label] = (datetime.strptime(match["at"], "%Y-%m-%d %H:%M:%S,%f"), max(float(match["seconds"]), 1e-3),
                            max(float(match["cpu"]), 1e-3))
    return found


def run_extract(dumps, out: Path, workdir: Path, processes: int | None) -> dict:
    command = [sys.executable, "-m", "bookrec_etl", "--log-level", "INFO", "extract", "--out", str(out),
               "--workdir", str(workdir), *(["--processes", str(processes)] if processes else [])]
    for name, dump in dumps.items():
        command += [f"--{name}", str(dump.path)]
    started, cpu = time.perf_counter(), psutil.Process().cpu_times()
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    memory = PeakMemory(proc.pid)
    memory.start()
    _, log = proc.communicate()
    seconds = time.perf_counter() - started
    memory.stopped.set()
    if proc.returncode != 0:
        raise SystemExit(f"extract failed:\n{log}")
    after = psutil.Process().cpu_times()
    cpu_seconds = (after.children_user - cpu.children_user) + (after.children_system - cpu.children_system)
    passes, books = passes_from(log), count_lines(out)
    raw = sum(dump.raw_bytes for dump in dumps.values())
    print("\n".join(f"    {line}" for line in log.strip().splitlines() if " INFO " not in line or "(done)" in line))
    print(f"[extract] input {raw / 1e9:.2f} GB uncompressed, "
          f"{sum(d.path.stat().st_size for d in dumps.values()) / 1e9:.2f} GB gzip; wall {seconds:.1f}s, "
          f"CPU {cpu_seconds:.1f}s (all processes): {raw / 1e6 / seconds:.1f} MB/s, "
          f"{sum(d.lines for d in dumps.values()) / seconds:,.0f} records/s; {books:,} books written")
    print(f"[extract] peak RSS of the extract processes together: {memory.together / 2**20:,.0f} MB "
          f"(the largest alone: {memory.alone / 2**20:,.0f} MB)")
    aside = reads_aside(dumps["editions"].path, processes)  # extract's own choice
    for name, dump in dumps.items():
        if name in passes:
            took, cpu_took = passes[name][1], passes[name][2]
            where = " (helper process, beside the others)" if name == "editions" and aside else ""
            print(f"[extract] {name}: {dump.lines:,} lines, {dump.raw_bytes / 1e9:.2f} GB uncompressed "
                  f"({dump.raw_bytes / max(dump.lines, 1):,.0f} B a line) in {took:.1f}s: "
                  f"{dump.lines / took:,.0f} lines/s, {dump.raw_bytes / 1e6 / took:.1f} MB/s; "
                  f"CPU {cpu_took:.1f}s: {dump.lines / cpu_took:,.0f} lines per CPU-second{where}")
    _, write_seconds, write_cpu = passes["write books"]
    _, middle, middle_cpu = passes["join editions"]
    print(f"[extract] editions copied in (when read aside), redirects resolved, editions indexed: {middle:.1f}s, "
          f"CPU {middle_cpu:.1f}s")
    print(f"[extract] write books: {books:,} in {write_seconds:.1f}s: {books / write_seconds:,.0f} books/s; "
          f"CPU {write_cpu:.1f}s (the main process's half)")
    lines = {n: d.lines for n, d in dumps.items()}
    seconds_of = {label: took for label, (_, took, _) in passes.items()}
    for line in extrapolate(seconds_of, lines, middle, aside):
        print(f"[extrapolate] {line}")
    cpu_of = {label: cpu for label, (_, _, cpu) in passes.items()}
    for line in extrapolate(cpu_of, lines, middle_cpu, aside, basis="CPU seconds (a machine of its own)"):
        print(f"[extrapolate] {line}")
    return seconds_of


def run_load(books: Path, ratings: Path, items: int, writers_list: list[int], first_only: bool) -> None:
    os.environ.update(LOCAL_AWS_ENV)
    port = free_port()
    proc = start(moto_command(port))
    try:
        wait_until(lambda: port_open(port), 30, "moto server", proc)
        endpoint = f"http://127.0.0.1:{port}"
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        subsets = {}
        for kind, source in (("books", books), ("ratings", ratings)):
            if kind == "ratings" and first_only:
                continue
            subsets[kind] = source.with_name(f"bench_{kind}.jsonl")
            with source.open("rb") as full, subsets[kind].open("wb") as part:
                part.writelines(line for _, line in zip(range(items), full, strict=False))
        found = estimate_file(subsets["books"])
        print(f"[estimate] {found.line()}")
        for writers in writers_list:
            names = definitions.create_tables(local_dynamodb(endpoint), f"bench{writers}")
            tables = Tables(names["books"], names["ratings"])
            with closing(dynamodb_client(writers)) as client:
                for kind, path in subsets.items():
                    cpu = time.process_time()
                    report = Loader(client, tables, Rejects(None), writers).load(path, progress=quiet)
                    cpu = time.process_time() - cpu
                    print(f"[load] {kind:7} {writers:2} writers: {report.written:,} items in "
                          f"{report.seconds:.1f}s = {report.written / report.seconds:,.0f} items/s, "
                          f"{report.calls:,} round trips (BatchGetItem, TransactWriteItems) = "
                          f"{1000 * report.calls / report.written:.1f} per 1,000 items, "
                          f"{report.retried} retried; loader CPU {1000 * cpu / report.written:.2f} ms an item")
                    if kind == "books":
                        for line in first_load_lines(found, report.written / report.seconds,
                                                     report.written / cpu, subsets["books"]):
                            print(f"[first load] {line}")
                if writers == 8 and not first_only:
                    # The monthly re-import of an unchanged catalogue: every book read, none written.
                    again = Loader(client, tables, Rejects(None), writers).load(subsets["books"],
                                                                                progress=quiet)
                    print(f"[load] books re-imported unchanged, 8 writers: {again.read:,} lines in "
                          f"{again.seconds:.1f}s = {again.read / again.seconds:,.0f} lines/s, "
                          f"{again.written} written, {again.calls:,} round trips")
                    started = time.perf_counter()
                    checked = Reconciler(client, names["books"], names["ratings"], progress=quiet).run()
                    seconds = time.perf_counter() - started
                    rate = (checked.books + checked.ratings) / seconds
                    print(f"[reconcile] {checked.books:,} books, {checked.ratings:,} ratings in {seconds:.1f}s "
                          f"= {rate:,.0f} items/s; drift: {len(checked.drift)}")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:  # a request thread can hold it up: it is ours to stop
            proc.kill()
            proc.wait(10)


def counts_from(args, authors_dump: Path) -> dict[str, int]:
    """Lines per dump: as given, else from --works in the real dumps' proportions, else from --gigabytes."""
    if args.works is not None:
        works = args.works
        return {"authors": args.authors if args.authors is not None else works * 2 // 5,
                "works": works, "editions": args.editions if args.editions is not None else 2 * works,
                "ratings": args.ratings if args.ratings is not None else max(works // 20, 1)}
    mean = mean_line_bytes(authors_dump)
    return {name: max(int(args.gigabytes * 1e9 * share / mean[name]), 1) for name, share in SHARES.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gigabytes", type=float, default=2.0, help="uncompressed size of the dumps together")
    for name in ("works", "editions", "authors", "ratings"):
        parser.add_argument(f"--{name}", type=int, help=f"lines of the {name} dump (instead of --gigabytes)")
    parser.add_argument("--authors-dump", type=Path, required=True,
                        help="lines of Open Library's authors dump the generated authors are modelled on")
    parser.add_argument("--processes", type=int, choices=(1, 2), help="extract's --processes")
    parser.add_argument("--workdir", type=Path, help="where the dumps and the workspace go [a temp dir]")
    parser.add_argument("--load-items", type=int, default=20_000, help="books, and ratings, written per load run")
    parser.add_argument("--load-writers", default="4,8,16", help="writer counts to load with, comma-separated")
    parser.add_argument("--first-load-only", action="store_true",
                        help="load the books only: no ratings, no re-import, no reconcile")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="bookrec-bench-etl-", dir=args.workdir))
    try:
        started = time.perf_counter()
        dumps = generate(directory, counts_from(args, args.authors_dump), args.authors_dump)
        print(f"[generate] {', '.join(f'{name} {d.lines:,} lines' for name, d in dumps.items())}: "
              f"{sum(d.raw_bytes for d in dumps.values()) / 1e9:.2f} GB uncompressed, "
              f"{sum(d.path.stat().st_size for d in dumps.values()) / 1e9:.2f} GB gzip, in "
              f"{time.perf_counter() - started:.1f}s in {directory}")
        books = directory / "books.jsonl"
        run_extract(dumps, books, directory, args.processes)
        for dump in dumps.values():
            dump.path.unlink()
        ratings = directory / "ratings.jsonl"
        import_goodbooks(SEED / "goodbooks10k_books.csv.gz", SEED / "goodbooks10k_book_genres.csv.gz",
                         SEED / "goodbooks_ratings_sample.csv.gz", directory / "goodbooks_books.jsonl",
                         ratings, Rejects(None), progress=quiet)
        run_load(books, ratings, args.load_items, [int(n) for n in args.load_writers.split(",")],
                 args.first_load_only)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
