"""The search artifact: an index's parts as a snapshot and back (`dump_to(parts, file)`, `dump(parts)` for
bytes, `load(data)`), and its `KIND`.

No I/O of its own (`dump_to` writes to the file object it is handed). The builder dumps the parts it built
once for the fleet to a file and publishes it as the artifact of kind KIND (`bookrec_common.artifacts`);
replicas fetch and load the bytes and keep them fresh with the change feed. An index of the loaded parts
answers exactly as one of the dumped.

Layout (little-endian):

    MAGIC (8 bytes) | FORMAT_VERSION u32 | buffer count u32 | pickle length u64 | total length u64 |
    CRC-32 of everything after the header u32 | per buffer: offset u64, length u64 | pickle | buffers

The pickle (protocol 5) holds the parts as plain values only (dicts, lists, tuples, str, bytes, numbers,
numpy arrays); the arrays' memory travels out of band, each buffer at an offset aligned to 64 bytes.

Memory, both ways. `dump_to` writes the header, the table, the pickle and each array straight from its own
memory, in order; the CRC-32 the header holds is computed first over the same pieces (views, not copies),
so a builder writing to a file holds the index and the pickle, never the snapshot as well (at 10M books
~7 GB, not ~12). `load` makes the arrays views into `data` instead of copies, through a read-only
memoryview of it, so `data` may be the `bytearray` `ArtifactStore.fetch` reads a large payload into:
loading takes about as long as unpickling the vocabulary's strings, and the fetched bytes and the index
are one piece of memory, not two. The arrays are read-only, which the index never minds (an update copies
what it changes). Derived columns (ranks, priors, autocomplete block tops) are recomputed by `SearchIndex`.

Trust: pickle runs code named by the stream. The artifact is written only by the builder (its IAM role
alone may write the bucket) and carries a SHA-256 the replica checks before calling `load`; on top of
that, `load` refuses another magic or format version, checks the length and a CRC-32 of the body
(truncated or garbled bytes raise `SnapshotError`, never something random), and unpickles with an
allow-list of the two numpy globals arrays need, so no other callable can be named.

Bump FORMAT_VERSION whenever the parts change (a renamed field, a new structure, a changed dtype): a
replica then refuses an artifact of another build and can fall back to building its own index.
"""

from __future__ import annotations

import io
import pickle
import struct
import zlib
from collections.abc import Sequence
from typing import Any, BinaryIO

import numpy as np

from bookrec_common.artifacts import UnreadableArtifact
from bookrec_search.columns import PostingLists
from bookrec_search.facets import ValuePairs
from bookrec_search.lexicon import IsbnMap, Lexicon, Neighbourhood
from bookrec_search.parts import IndexParts
from bookrec_search.texts import TextColumn

KIND = "search-index"  # the artifact's name in the bucket (its key prefix) and in metrics
MAGIC = b"BRSRCHIX"
FORMAT_VERSION = 2  # 2: the series of each book (`series`, `series_positions`)
_HEADER = struct.Struct("<8sIIQQI")
_BUFFER = struct.Struct("<QQ")
ALIGN = 64
_ALLOWED_GLOBALS = {("numpy._core.numeric", "_frombuffer"), ("numpy", "dtype")}
_PER_BOOK = ("book_ids", "id_order", "signatures", "years", "language", "cover_ids", "rating_count",
             "rating_sum", "title_order", "series_positions")
_PARTS = frozenset((*_PER_BOOK, "languages", "titles", "title_norms", "authors", "series", "vocabulary",
                    "fields", "lengths", "average_lengths", "averaged_size", "combined", "lexicon",
                    "original_titles", "isbns", "author_values", "subject_values"))


class SnapshotError(UnreadableArtifact):
    """The bytes are not a search index snapshot of this format: another format, truncated or garbled."""


def dump_to(parts: IndexParts, file: BinaryIO) -> int:
    """Write the parts to `file` (binary, from its current position) as `load` takes them back (see the
    module docstring for the layout); returns the bytes written. Nothing is joined: the pieces are the
    pickle and views of the arrays' own memory, read once for the CRC-32 (the header, written first, holds
    it) and once to be written, so writing costs the pickle's size in memory, not the snapshot's."""
    buffers: list[pickle.PickleBuffer] = []
    stream = pickle.dumps(plain(parts), protocol=5, buffer_callback=buffers.append)
    raws = [b.raw() for b in buffers]
    table_end = _HEADER.size + _BUFFER.size * len(raws)
    pieces: list[Any] = [b"", stream]
    offset = table_end + len(stream)
    table = []
    for raw in raws:
        padding = -offset % ALIGN
        pieces.append(bytes(padding))
        offset += padding
        table.append(_BUFFER.pack(offset, raw.nbytes))
        pieces.append(raw)
        offset += raw.nbytes
    pieces[0] = b"".join(table)
    crc = 0
    for piece in pieces:
        crc = zlib.crc32(piece, crc)
    file.write(_HEADER.pack(MAGIC, FORMAT_VERSION, len(raws), len(stream), offset, crc))
    for piece in pieces:
        file.write(piece)
    return offset


def dump(parts: IndexParts) -> bytes:
    """The parts as bytes `load` takes back: `dump_to` into memory (small snapshots, tests)."""
    out = io.BytesIO()
    dump_to(parts, out)
    return out.getvalue()


def load(data: bytes | bytearray | memoryview) -> IndexParts:
    """The parts `dump` gave `data` for; `SnapshotError` when `data` is anything else.

    Their arrays are read-only views into `data`, never copies, and keep it alive: a `bytearray` (what
    `ArtifactStore.fetch` reads a large payload into) is not copied either, and must not be changed after.
    """
    view = memoryview(data).cast("B").toreadonly()  # the arrays' base: read-only whatever `data` is
    if len(view) < _HEADER.size:
        raise SnapshotError(f"not a search index snapshot: {len(view)} bytes, shorter than the header")
    magic, version, count, stream_length, total, crc = _HEADER.unpack_from(view)
    if magic != MAGIC:
        raise SnapshotError(f"not a search index snapshot (magic {magic!r}, expected {MAGIC!r})")
    if version != FORMAT_VERSION:
        raise SnapshotError(f"search index snapshot format {version}, this service reads {FORMAT_VERSION}")
    if total != len(view):
        raise SnapshotError(f"search index snapshot of {total} bytes truncated or padded to {len(view)}")
    if zlib.crc32(view[_HEADER.size:]) != crc:
        raise SnapshotError("search index snapshot garbled: its CRC-32 does not match")
    table_end = _HEADER.size + _BUFFER.size * count
    stream_end = table_end + stream_length
    if stream_end > total:
        raise SnapshotError("search index snapshot garbled: its pickle runs past the end")
    buffers = []
    for i in range(count):
        offset, length = _BUFFER.unpack_from(view, _HEADER.size + i * _BUFFER.size)
        if offset < stream_end or offset + length > total:
            raise SnapshotError("search index snapshot garbled: a buffer lies outside the data")
        buffers.append(view[offset:offset + length])
    try:
        plain = _Unpickler(io.BytesIO(view[table_end:stream_end]), buffers=buffers).load()
        return _parts_from(plain)
    except SnapshotError:
        raise
    except Exception as error:  # whatever a malformed stream makes pickle or the constructors raise
        raise SnapshotError(f"search index snapshot unreadable: {type(error).__name__}: {error}") from error


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise SnapshotError(f"search index snapshot names {module}.{name}, which it may not")
        return super().find_class(module, name)


def _arrays(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Contiguous (so they go out of band) read-only views: loaded arrays are read-only, and a pickle says
    so; the same parts then give the same bytes whether dumped from a built or a loaded index."""
    views = []
    for a in arrays:
        # The canonical dtype object: an unpickled dtype is a copy, and a pickle of arrays whose dtypes are
        # one object (memoised) differs from one of equal dtypes that are not.
        view = np.ascontiguousarray(a).view(np.dtype(a.dtype.str))
        view.flags.writeable = False
        views.append(view)
    return tuple(views)


def plain(parts: IndexParts) -> dict[str, Any]:
    """The parts as the plain values the pickle holds (arrays contiguous and read-only)."""

    def posting_lists(p: PostingLists) -> tuple[np.ndarray, ...]:
        return _arrays(p.offsets, p.docs, p.values)

    def text(column: TextColumn) -> tuple[Any, ...]:
        buffer, starts, lengths = column.parts()
        return (buffer, *_arrays(starts, lengths))

    def value_pairs(v: ValuePairs) -> tuple[Any, ...]:
        return (*_arrays(v.books, v.codes), list(v.labels), dict(v.keys))

    lexicon = parts.lexicon
    return {
        **{name: _arrays(getattr(parts, name))[0] for name in _PER_BOOK},
        "languages": list(parts.languages), "titles": text(parts.titles),
        "title_norms": text(parts.title_norms),
        "authors": text(parts.authors), "series": text(parts.series), "vocabulary": parts.vocabulary,
        "fields": [posting_lists(f) for f in parts.fields], "lengths": list(_arrays(*parts.lengths)),
        "average_lengths": [float(a) for a in parts.average_lengths],
        "averaged_size": int(parts.averaged_size),
        "combined": posting_lists(parts.combined),
        "lexicon": (lexicon.by_id, lexicon.sorted_terms,
                    *_arrays(lexicon.sorted_ids, *lexicon.neighbourhood.joined())),
        "original_titles": parts.original_titles, "isbns": _arrays(parts.isbns.isbns, parts.isbns.positions),
        "author_values": value_pairs(parts.author_values),
        "subject_values": value_pairs(parts.subject_values),
    }


def _parts_from(parts: Any) -> IndexParts:
    if not isinstance(parts, dict) or set(parts) != _PARTS:
        raise SnapshotError("search index snapshot holds other parts than this format's")
    size = len(parts["book_ids"])
    if any(len(parts[name]) != size for name in _PER_BOOK) or any(len(x) != size for x in parts["lengths"]):
        raise SnapshotError("search index snapshot garbled: its per-book columns differ in length")
    if any(len(order) and not 0 <= order.min() <= order.max() < size
           for order in (parts["id_order"], parts["title_order"])):
        raise SnapshotError("search index snapshot garbled: an order names books it does not have")
    by_id, sorted_terms, sorted_ids, hashes, ids = parts["lexicon"]
    return IndexParts(
        **{name: parts[name] for name in _PER_BOOK}, languages=tuple(parts["languages"]),
        titles=TextColumn(*parts["titles"]), title_norms=TextColumn(*parts["title_norms"]),
        authors=TextColumn(*parts["authors"]), series=TextColumn(*parts["series"]),
        vocabulary=parts["vocabulary"],
        fields=tuple(_posting_lists(f, len(by_id)) for f in parts["fields"]),
        lengths=tuple(parts["lengths"]),
        average_lengths=tuple(parts["average_lengths"]), averaged_size=parts["averaged_size"],
        combined=_posting_lists(parts["combined"], len(by_id)),
        lexicon=Lexicon(by_id, sorted_terms, sorted_ids, Neighbourhood(hashes, ids)),
        original_titles=parts["original_titles"], isbns=IsbnMap(*parts["isbns"]),
        author_values=ValuePairs.from_pairs(*parts["author_values"]),
        subject_values=ValuePairs.from_pairs(*parts["subject_values"]))


def _posting_lists(arrays: Sequence[np.ndarray], term_count: int) -> PostingLists:
    offsets, docs, values = arrays
    if len(offsets) != term_count + 1 or offsets[-1] != len(docs) or len(docs) != len(values):
        raise SnapshotError("search index snapshot garbled: posting lists do not add up")
    return PostingLists(offsets, docs, values)

