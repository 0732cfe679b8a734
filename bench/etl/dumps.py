"""Open Library dumps of any size, generated from the real samples with their record mix and sizes.

Lines are real dump lines with their keys and cross references rewritten: authors from the authors-dump
slice (its records as they are), works and editions from the development database's. The development
database's works are richer than the dump's (43% have a description, against 4.4% in the dump), so each
generated work is one of a few variants of each real work, made by keeping each optional field at the
rate the real works dump has it (WORK_FIELD_RATES): their mean line is then near the dump's. Works get
2% redirects and 0.5% deletes; editions and ratings point at random works, works at random authors.
Each dump is written gzip-compressed as it is generated (a `gzip` process beside the generator), so the
disk holds only the compressed dumps, as Open Library publishes them.
"""

from __future__ import annotations

import gzip
import json
import random
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bookrec_etl.seed import default_seed_dir

SEED = default_seed_dir()  # the development-database dumps
KEY = re.compile(rb"/(?:works|authors|books)/OL\d+[WAM]")
REDIRECT_EVERY, DELETE_EVERY = 50, 200  # works: 2% redirects, 0.5% deletes
# Share of the real works dump's records holding each field (10M works surveyed by the open-library
# crate, docs.rs/crate/open-library, src/models/README.md). Fields not named here are kept always when
# core (below), else dropped (the survey finds them in a handful of records).
WORK_FIELD_RATES = {"authors": 0.9523, "subjects": 0.588, "covers": 0.32, "subject_places": 0.247,
                    "first_publish_date": 0.1857, "lc_classifications": 0.099, "subject_people": 0.077,
                    "subject_times": 0.0607, "dewey_number": 0.048, "description": 0.044, "subtitle": 0.024,
                    "links": 0.0019, "first_sentence": 0.003, "excerpts": 0.002}
WORK_CORE = {"key", "type", "title", "created", "last_modified", "revision", "latest_revision"}
WORK_VARIANTS = 24  # per real work


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


def _lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    return [line for line in (gzip.decompress(data) if path.name.endswith(".gz") else data)
            .splitlines(keepends=True) if line.strip()]


def work_variants(lines: list[bytes], rng: random.Random, variants: int = WORK_VARIANTS) -> list[bytes]:
    """Each real work line `variants` times, each keeping its optional fields at the dump's rates."""
    docs = [(line.split(b"\t", 4), json.loads(line.split(b"\t", 4)[4])) for line in lines]
    held = {field: sum(field in doc for _, doc in docs) / len(docs) for field in WORK_FIELD_RATES}
    keep = {field: min(1.0, rate / held[field]) if held[field] else 0.0 for field, rate in WORK_FIELD_RATES.items()}
    out = []
    for columns, doc in docs:
        for _ in range(variants):
            kept = {k: v for k, v in doc.items() if k in WORK_CORE or rng.random() < keep.get(k, 0.0)}
            out.append(b"\t".join([*columns[:4], json.dumps(kept).encode()]) + b"\n")
    return out


@dataclass
class Dump:
    path: Path
    lines: int = 0
    raw_bytes: int = 0  # uncompressed


class _Gzipped:
    """A gzip file written by a `gzip` process, so that compressing runs beside generating."""

    def __init__(self, path: Path, level: int) -> None:
        self.path = path
        self._out = path.open("wb")
        self._proc = subprocess.Popen(["gzip", f"-{level}", "-c"], stdin=subprocess.PIPE, stdout=self._out)
        assert self._proc.stdin is not None
        self.stdin = self._proc.stdin

    def close(self) -> None:
        self.stdin.close()
        if self._proc.wait() != 0:
            raise RuntimeError(f"gzip failed writing {self.path}")
        self._out.close()


def generate(directory: Path, counts: dict[str, int], authors_dump: Path, level: int = 1,
             seed: int = 7) -> dict[str, Dump]:
    """ol_dump_{authors,works,editions,ratings}.txt.gz with `counts` lines each."""
    rng = random.Random(seed)
    real_authors = _lines(authors_dump.resolve()) + _lines(SEED / "ol_devinstance_authors.txt")
    author_lines = [Template(line) for line in real_authors]
    work_lines = [Template(line) for line in work_variants(_lines(SEED / "ol_devinstance_works.txt"), rng)]
    edition_lines = [Template(line) for line in _lines(SEED / "ol_devinstance_editions.txt")]
    authors, works = max(counts["authors"], 1), max(counts["works"], 1)

    def author() -> bytes:
        return b"/authors/OL%dA" % rng.randint(1, authors)

    def work() -> bytes:
        return b"/works/OL%dW" % rng.randint(1, works)

    def redirect_or_delete(number: int, own: bytes) -> bytes | None:
        if number > 1 and number % REDIRECT_EVERY == 0:
            target = b"/works/OL%dW" % rng.randint(1, number - 1)
            return (b'/type/redirect\t%s\t2\t2021-01-01T00:00:00.000000\t{"type": {"key": "/type/redirect"}, '
                    b'"location": "%s", "key": "%s"}\n' % (own, target, own))
        if number > 1 and number % DELETE_EVERY == 1:
            return (b'/type/delete\t%s\t3\t2021-01-01T00:00:00.000000\t{"type": {"key": "/type/delete"}, '
                    b'"key": "%s"}\n' % (own, own))
        return None

    def rating(_number: int) -> bytes:
        edition = rng.choice((b"", b"\\N", b"/books/OL%dM" % rng.randint(1, 10**7)))
        return b"%s\t%s\t%d\t2024-0%d-1%d\n" % (work(), edition, rng.randint(1, 5), rng.randint(1, 9),
                                                rng.randint(0, 9))

    plans = {"authors": (author_lines, b"/authors/OL%dA", None),
             "works": (work_lines, b"/works/OL%dW", redirect_or_delete),
             "editions": (edition_lines, b"/books/OL%dM", None)}
    dumps = {}
    for name in ("authors", "works", "editions", "ratings"):
        dump = dumps[name] = Dump(directory / f"ol_dump_{name}.txt.gz")
        out = _Gzipped(dump.path, level)
        chunk: list[bytes] = []
        for number in range(1, counts[name] + 1):
            if name == "ratings":
                line = rating(number)
            else:
                templates, key, special = plans[name]
                own = key % number
                line = (special and special(number, own)) or \
                    templates[rng.randrange(len(templates))].render(own, author, work)
            chunk.append(line)
            dump.raw_bytes += len(line)
            if len(chunk) == 4096:
                out.stdin.write(b"".join(chunk))
                chunk.clear()
        out.stdin.write(b"".join(chunk))
        out.close()
        dump.lines = counts[name]
    return dumps


def mean_line_bytes(authors_dump: Path) -> dict[str, float]:
    """The mean generated line of each dump, to turn a size in bytes into line counts."""
    sizes = {name: len(b"".join(gen)) / max(len(gen), 1) for name, gen in (
        ("authors", _lines(authors_dump.resolve())),
        ("works", work_variants(_lines(SEED / "ol_devinstance_works.txt"), random.Random(7))),
        ("editions", _lines(SEED / "ol_devinstance_editions.txt")))}
    return {**sizes, "ratings": 36.0}
