"""Strings packed in UTF-8 chunks: a book's display text without a Python object each. Pure, no I/O.

A column is immutable once built: an update returns a new column sharing the old chunks, so a request
reading the old index during a swap never sees a half-applied change.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from itertools import accumulate

import numpy as np

MAX_CHUNKS = 32  # beyond this many text chunks, an update joins them (so a lookup bisects few ends)
DEAD_SHARE = 0.25  # once replaced or deleted strings' bytes exceed this share of the live ones, drop them


def _compact(starts: np.ndarray, lengths: np.ndarray, buffer_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Starts and lengths in the narrowest types that hold them: 6 bytes an entry below a 4 GiB buffer and
    64 KiB strings (24 bytes a book over a book's four text columns), 12 beyond."""
    starts = starts.astype(np.uint32 if buffer_size < 2**32 else np.int64, copy=False)
    fits = not len(lengths) or int(lengths.max()) < 2**16
    return starts, lengths.astype(np.uint16 if fits else np.int32, copy=False)


class TextColumn:
    """Strings packed as UTF-8 in a few immutable chunks: 6 bytes of bookkeeping per entry instead of a
    Python object.

    An entry's start is global, over the chunks' concatenation (a string never
    spans two chunks). `updated` adds one chunk holding the new strings and
    shares the old ones, so it costs what changed plus one copy of the starts
    and lengths, never a copy of the text. The cost is amortised: past
    MAX_CHUNKS chunks an update joins them (the text added since the last join
    when that is less than the first chunk, else all of it; starts unchanged),
    and once the bytes of replaced or deleted strings exceed DEAD_SHARE of the
    live ones it rewrites the column into one chunk without them.
    """

    __slots__ = ("_chunks", "_ends", "_lengths", "_live", "_starts")

    def __init__(self, buffer: bytes | tuple[bytes, ...], starts: np.ndarray, lengths: np.ndarray,
                 live: int | None = None) -> None:
        """From one buffer (as `parts()` gives it) or chunks; `live`: the bytes of the entries, when known."""
        self._chunks = (buffer,) if isinstance(buffer, bytes) else buffer
        self._ends = list(accumulate(map(len, self._chunks)))  # cumulative chunk sizes, for bisection
        self._starts = starts
        self._lengths = lengths
        self._live = int(lengths.sum(dtype=np.int64)) if live is None else live

    @classmethod
    def of(cls, values: Iterable[str]) -> TextColumn:
        encoded = [value.encode() for value in values]
        lengths = np.fromiter(map(len, encoded), dtype=np.int32, count=len(encoded))
        starts = np.zeros(len(encoded), dtype=np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        buffer = b"".join(encoded)
        return cls(buffer, *_compact(starts, lengths, len(buffer)))

    def __len__(self) -> int:
        return len(self._starts)

    def __getitem__(self, position: int) -> str:
        start = int(self._starts[position])
        stop = start + int(self._lengths[position])
        ends = self._ends
        if stop <= ends[0]:  # the first chunk: most entries, and every one of a freshly built column
            return self._chunks[0][start:stop].decode()
        if stop == start:
            return ""
        k = bisect_right(ends, start)
        return self._chunks[k][start - ends[k - 1]:stop - ends[k - 1]].decode()

    def updated(self, replaced: Mapping[int, str], appended: Sequence[str]) -> TextColumn:
        """A copy with some entries replaced and some appended: the new strings in one new chunk, the old
        chunks shared (the replaced strings' bytes stay there until a compaction drops them)."""
        positions = list(replaced)
        encoded = [replaced[p].encode() for p in positions] + [value.encode() for value in appended]
        lengths = np.fromiter(map(len, encoded), dtype=np.int32, count=len(encoded))
        total = self._ends[-1]
        starts = np.full(len(encoded), total, dtype=np.int64)
        if len(encoded) > 1:
            starts[1:] += np.cumsum(lengths[:-1])
        text = b"".join(encoded)
        # One copy of each array, in a type that holds the old entries and the new (numpy would widen).
        start_type = self._starts.dtype if total + len(text) < 2**32 else np.dtype(np.int64)
        long = len(lengths) and int(lengths.max()) > np.iinfo(self._lengths.dtype).max
        length_type = np.dtype(np.int32) if long else self._lengths.dtype
        starts, lengths = starts.astype(start_type), lengths.astype(length_type)
        all_starts = np.concatenate([self._starts.astype(start_type, copy=False), starts[len(positions):]])
        all_lengths = np.concatenate([self._lengths.astype(length_type, copy=False), lengths[len(positions):]])
        live = self._live + len(text)
        if positions:
            index = np.array(positions, dtype=np.int64)
            live -= int(self._lengths[index].sum(dtype=np.int64))
            all_starts[index] = starts[:len(positions)]
            all_lengths[index] = lengths[:len(positions)]
        chunks = (*self._chunks, text) if text else self._chunks
        return TextColumn._settled(chunks, all_starts, all_lengths, live)

    @classmethod
    def _settled(cls, chunks: tuple[bytes, ...], starts: np.ndarray, lengths: np.ndarray, live: int) -> TextColumn:
        """The column, compacted when its chunks are too many or hold too many dead bytes."""
        if sum(map(len, chunks)) - live > DEAD_SHARE * live:
            return cls._without_dead(chunks, starts, lengths)
        if len(chunks) > MAX_CHUNKS:
            tail = b"".join(chunks[1:])
            chunks = (chunks[0], tail) if len(tail) < len(chunks[0]) else (chunks[0] + tail,)
        return cls(chunks, starts, lengths, live)

    @classmethod
    def _without_dead(cls, chunks: tuple[bytes, ...], starts: np.ndarray, lengths: np.ndarray) -> TextColumn:
        """One chunk of the live strings in entry order: each run of entries already adjacent in the chunks
        (most of them: a column is built in order) copied as one slice."""
        ends = list(accumulate(map(len, chunks)))
        breaks = np.flatnonzero(starts[1:] != starts[:-1] + lengths[:-1]) + 1
        firsts, lasts = np.concatenate([[0], breaks]), np.concatenate([breaks - 1, [len(starts) - 1]])
        runs_from, runs_to = (starts[firsts], starts[lasts] + lengths[lasts]) if len(starts) else ((), ())
        views = [memoryview(chunk) for chunk in chunks]
        pieces = []
        for start, stop in zip(np.asarray(runs_from).tolist(), np.asarray(runs_to).tolist(), strict=True):
            while start < stop:  # a run may go on into the next chunk
                k = bisect_right(ends, start)
                base, end = ends[k - 1] if k else 0, min(stop, ends[k])
                pieces.append(views[k][start - base:end - base])
                start = end
        buffer = b"".join(pieces)
        new_starts = np.zeros(len(starts), dtype=np.int64)
        np.cumsum(lengths[:-1], dtype=np.int64, out=new_starts[1:])
        return cls(buffer, *_compact(new_starts, lengths, len(buffer)))

    def parts(self) -> tuple[bytes, np.ndarray, np.ndarray]:
        """The buffer (the chunks joined), starts and lengths (`TextColumn(*parts)` is the same column): for
        artifacts."""
        buffer = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        return buffer, self._starts, self._lengths

    def taken(self, kept: np.ndarray) -> TextColumn:
        """A copy with only the entries at `kept` (ascending positions); their bytes stay where they are (the
        chunks are shared) until the dropped ones exceed DEAD_SHARE of the rest."""
        starts, lengths = self._starts[kept], self._lengths[kept]
        return TextColumn._settled(self._chunks, starts, lengths, int(lengths.sum(dtype=np.int64)))

    @property
    def chunks(self) -> tuple[bytes, ...]:
        return self._chunks

    @property
    def nbytes(self) -> int:
        return self._ends[-1] + self._starts.nbytes + self._lengths.nbytes


class PackedText:
    """Appends strings into one growing UTF-8 buffer; `column()` freezes them into a TextColumn."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._lengths = array("i")

    def append(self, value: str) -> None:
        encoded = value.encode()
        self._buffer += encoded
        self._lengths.append(len(encoded))

    def column(self) -> TextColumn:
        lengths = np.frombuffer(self._lengths, dtype=np.int32)
        starts = np.zeros(len(lengths), dtype=np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        return TextColumn(bytes(self._buffer), *_compact(starts, lengths.copy(), len(self._buffer)))


