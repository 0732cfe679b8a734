"""Loaded artifact parts make an index that answers exactly as the dumped one; other bytes are refused. The
builder writes the snapshot to a file, publishes it from there and leaves no file behind (real DynamoDB and
S3 on the emulator, a real Redis for the lease)."""

from __future__ import annotations

import os
import pickle
import random
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bookrec_catalog.catalog import with_derived_attributes
from bookrec_common.artifacts import ArtifactStore
from bookrec_common.builder import build_once
from bookrec_common.clients import dynamodb_client, redis_client, s3_client
from bookrec_common.lease import Lease
from bookrec_search import artifact
from bookrec_search.artifact import KIND, SnapshotError, dump, dump_to, load
from bookrec_search.builder import IndexBuild
from bookrec_search.facets import FacetFilter
from bookrec_search.filtering import Filters
from bookrec_search.index import SearchIndex
from bookrec_search.store import BookSource, change_feed

from .test_api import seed, settings_for

QUERIES = ["zen", "nietzsche", "ethics of", "marcus aurelius", "philosophy", "philosphy of mnd", "kant crit",
           "the", "a", "logic time", "mind", "the art", "lee", "zzz mind", "ethisc", "9780306406157"]
WORDS = ["mind", "logic", "ethics", "being", "time", "art", "the", "Être"]
small_book = st.fixed_dictionaries({
    "title": st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join),
    "original_title": st.one_of(st.none(), st.sampled_from(["Война и мир", "ノルウェイの森"])),
    "authors": st.lists(st.sampled_from(["Ann Lee", "Bo Kim", "Émile Lee"]), max_size=2).map(
        lambda names: [{"author_id": None, "name": n} for n in names]),
    "subjects": st.lists(st.sampled_from(["logic", "ethics", "art history"]), max_size=3),
    "first_publish_year": st.one_of(st.none(), st.integers(1800, 2020)),
    "ratings_distribution": st.dictionaries(st.sampled_from(["1", "3", "4", "5"]), st.integers(0, 4)),
    "language": st.sampled_from(["eng", "fre", None]),
    "isbn_13": st.sampled_from([[], ["9780306406157"]]),
    "series": st.one_of(st.none(), st.fixed_dictionaries(
        {"name": st.sampled_from(["Discworld", "Être et temps"])},
        optional={"position": st.sampled_from([0, 1, 2, 1.5, None])})),
})


def build(raw: list[dict], start: int = 1) -> list[dict]:
    return [with_derived_attributes({**b, "book_id": f"OL{start + i}W"}) for i, b in enumerate(raw)]


@pytest.fixture(scope="module")
def real(sample_books) -> SearchIndex:
    return SearchIndex.from_records(sample_books)


@pytest.fixture(scope="module")
def data(real) -> bytes:
    return dump(real.parts)


def answers(index: SearchIndex) -> list:
    """Pages, totals, matched terms and facets of full text, advanced search and autocomplete."""
    out: list = []
    for query in QUERIES:
        result = index.search(query, 30, with_matches=True)
        out.append(([(index.book(h.position), h.score, h.shown_score) for h in result.hits], result.total,
                    result.matched_all_words, result.terms, result.corrections, result.matches.tolist(),
                    index.facets(result.matches)))
        filtered = index.search(query, 30, facet_filter=FacetFilter(languages=("eng",), decades=(1990, 2000)))
        out.append(([index.book(h.position) for h in filtered.hits], filtered.total))
    for filters in (Filters(title="ethics"), Filters(title="the", author="lee"), Filters(language="fre"),
                    Filters(author="kant", min_rating=3.5), Filters(min_year=1950),
                    Filters(subject="philosophy", language="eng")):
        for sort in ("relevance", "rating", "year", "title"):
            result = index.advanced(filters, sort, "asc", 30)
            out.append(([(index.book(h.position), h.score) for h in result.hits], result.total))
    for prefix in ("t", "the", "phil", "zen and", "z", "m", "a"):
        suggestions = index.autocomplete(prefix, 20)
        out.append(([index.book(p) for p in suggestions.positions], suggestions.total))
    return out


def assert_same_parts(a: object, b: object) -> None:
    """Equal values, array by array (pickles of equal parts may still differ in which strings they share)."""
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f")  # NaN: no series position
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same_parts(x, y)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b)
        for k in a:
            assert_same_parts(a[k], b[k])
    else:
        assert type(a) is type(b) and a == b


def test_a_loaded_index_answers_exactly_as_the_dumped_one(real, data):
    loaded = SearchIndex(load(data))
    assert loaded.size == real.size and loaded.terms == real.terms
    assert loaded.nbytes == pytest.approx(real.nbytes, rel=0.01)  # Python containers sized by their history
    assert answers(loaded) == answers(real)
    assert dump(loaded.parts) == data  # every part, byte for byte


def test_a_loaded_index_updates_exactly_as_the_dumped_one(real, data, sample_books):
    loaded = SearchIndex(load(data))
    rerated = [with_derived_attributes({**b, "ratings_distribution": {"5": 900 + i}}) for i, b in
               enumerate(sample_books[:30])]
    retitled = [with_derived_attributes({**b, "title": b["title"] + " zen revisited", "title_norm": None})
                for b in sample_books[30:40]]
    added = [with_derived_attributes({**b, "book_id": f"OLX{i}W", "title": "Nietzsche for zen readers"})
             for i, b in enumerate(sample_books[40:45])]
    deleted = [b["book_id"] for b in sample_books[45:60:3]]
    for batch, gone in ((rerated, []), (retitled + added, deleted), ([], [*deleted, "OL0W"]),
                        (sample_books[45:60], [])):
        real, loaded = real.updated(batch, deleted=gone), loaded.updated(batch, deleted=gone)
        assert answers(loaded) == answers(real)
        assert_same_parts(artifact.plain(loaded.parts), artifact.plain(real.parts))


def test_a_snapshot_dumped_to_a_file_is_the_dumped_bytes_and_answers_alike(real, data, tmp_path):
    path = tmp_path / "index.snapshot"
    with path.open("wb") as file:
        written = dump_to(real.parts, file)
    assert written == len(data) == path.stat().st_size
    assert path.read_bytes() == data  # byte for byte
    assert answers(SearchIndex(load(path.read_bytes()))) == answers(real)


def test_a_bytearray_loads_without_a_copy_into_read_only_arrays(real, data):
    fetched = bytearray(data)  # what a ranged fetch hands on
    parts = load(fetched)
    assert np.shares_memory(parts.book_ids, np.frombuffer(fetched, np.uint8))
    assert np.shares_memory(parts.combined.docs, np.frombuffer(fetched, np.uint8))
    arrays = [parts.book_ids, parts.signatures, parts.combined.docs, parts.combined.values, *parts.lengths]
    assert all(not a.flags.writeable for a in arrays)
    with pytest.raises(ValueError, match="read-only"):
        parts.combined.docs[0] = 1
    with pytest.raises(BufferError):  # the arrays hold the buffer: it cannot be resized under them
        fetched.extend(b"more")
    index = SearchIndex(parts)
    assert answers(index) == answers(real) and dump(index.parts) == data
    assert answers(SearchIndex(load(memoryview(fetched)))) == answers(real)


def test_a_garbled_or_truncated_bytearray_is_refused(data):
    garbled = bytearray(data)
    garbled[len(data) // 2] ^= 0x10
    with pytest.raises(SnapshotError, match="CRC-32"):
        load(garbled)
    with pytest.raises(SnapshotError, match="truncated"):
        load(bytearray(data[:-1]))


class FailingStore(ArtifactStore):
    """The real store, whose publish sees the snapshot file and then fails (the connection lost)."""

    published: list[Path]

    async def publish(self, payload, **manifest):
        assert isinstance(payload, Path) and payload.is_file() and payload.stat().st_size > 0
        self.published.append(payload)
        raise ConnectionResetError("connection lost mid-upload")


async def test_the_builder_publishes_from_a_file_and_leaves_none_behind(tables, dynamodb, redis_url,
                                                                       artifact_bucket, tmp_path):
    books = seed(dynamodb, tables)
    settings = settings_for(tables)
    async with dynamodb_client(settings) as client, s3_client(settings) as s3, \
            redis_client(redis_url, timeout=2.0) as redis:
        source = BookSource(client, client, tables["books"], 2)
        lease = Lease(redis, KIND, ttl_seconds=5, namespace=artifact_bucket)

        failing = FailingStore(s3, artifact_bucket, KIND)
        failing.published = []
        with pytest.raises(ConnectionResetError):
            await build_once(lease, failing, IndexBuild(source, change_feed(client, tables["books"]), failing, 0,
                                                        snapshot_dir=str(tmp_path)))
        assert len(failing.published) == 1 and failing.published[0].parent == tmp_path
        assert list(tmp_path.iterdir()) == [] and await failing.latest() is None  # no file left, nothing published

        store = ArtifactStore(s3, artifact_bucket, KIND)
        build = IndexBuild(source, change_feed(client, tables["books"]), store, 0, snapshot_dir=str(tmp_path))
        assert await build_once(lease, store, build) == "published"
        assert list(tmp_path.iterdir()) == []
        manifest = await store.latest()
        assert manifest.items == len(books)
        loaded = SearchIndex(load(await store.fetch(manifest)))
        found = books_found(loaded)
        assert found == books_found(SearchIndex.from_records(books)) and found["ethics of"]  # the Scan's order aside


def books_found(index: SearchIndex) -> dict[str, list[tuple[str, float]]]:
    return {query: sorted((index.book(h.position)["book_id"], round(h.score, 4)) for h in index.search(query).hits)
            for query in QUERIES}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(small_book, max_size=30), st.lists(small_book, max_size=4),
       st.lists(st.integers(1, 30), max_size=3))
def test_small_catalogues_round_trip_and_update_alike(raw, new_raw, doomed):
    index = SearchIndex.from_records(build(raw))
    data = dump(index.parts)
    loaded = SearchIndex(load(data))
    assert answers(loaded) == answers(index) and dump(loaded.parts) == data
    added, deleted = build(new_raw, start=500), [f"OL{i}W" for i in doomed]
    index, loaded = index.updated(added, deleted=deleted), loaded.updated(added, deleted=deleted)
    assert answers(loaded) == answers(index)
    assert_same_parts(artifact.plain(loaded.parts), artifact.plain(index.parts))


def test_an_empty_index_round_trips():
    empty = SearchIndex(load(dump(SearchIndex.from_records([]).parts)))
    assert empty.size == 0 and empty.search("zen").total == 0 and empty.autocomplete("z").total == 0


def test_another_format_is_refused_with_a_clear_error(data):
    with pytest.raises(SnapshotError, match="not a search index snapshot"):
        load(b"PK\x03\x04" + data[4:])
    with pytest.raises(SnapshotError, match="not a search index snapshot"):
        load(pickle.dumps({"some": "index"}, protocol=5))
    other_version = data[:8] + struct.pack("<I", artifact.FORMAT_VERSION + 1) + data[12:]
    with pytest.raises(SnapshotError, match=f"format {artifact.FORMAT_VERSION + 1}"):
        load(other_version)


@pytest.mark.parametrize("keep", [0, 7, 20, 40, 1000, 0.5, -1])
def test_truncated_bytes_are_refused(data, keep):
    cut = data[:int(len(data) * keep) if isinstance(keep, float) else keep]
    with pytest.raises(SnapshotError):
        load(cut)


def test_random_and_garbled_bytes_are_refused(data):
    rng = random.Random(2026)
    for size in (0, 1, 35, 36, 100, 10_000):
        with pytest.raises(SnapshotError):
            load(bytes(rng.getrandbits(8) for _ in range(size)))
    with pytest.raises(SnapshotError):
        load(data[:36] + os.urandom(len(data) - 36))  # a right header over random bytes
    for at in [*range(36, 200, 13), *(rng.randrange(36, len(data)) for _ in range(20))]:
        garbled = bytearray(data)
        garbled[at] ^= 1 << rng.randrange(8)
        with pytest.raises(SnapshotError):
            load(bytes(garbled))


class _Callable:
    def __reduce__(self):
        return (os.getcwd, ())


def sealed(stream: bytes) -> bytes:
    """A well-formed snapshot around any pickle stream (no out-of-band buffers)."""
    return struct.pack("<8sIIQQI", artifact.MAGIC, artifact.FORMAT_VERSION, 0, len(stream), 36 + len(stream),
                       zlib.crc32(stream)) + stream


def test_a_well_formed_snapshot_naming_other_code_or_parts_is_refused():
    with pytest.raises(SnapshotError, match="getcwd, which it may not"):
        load(sealed(pickle.dumps({"book_ids": _Callable()}, protocol=5)))
    with pytest.raises(SnapshotError, match="other parts"):
        load(sealed(pickle.dumps({"book_ids": np.arange(3)}, protocol=5)))
    with pytest.raises(SnapshotError):
        load(sealed(b"\x80\x05garbage"))
