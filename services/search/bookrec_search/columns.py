"""Compact storage for the search index: packed strings and posting lists. Pure, no I/O.

Both structures are immutable once built; an update returns a new object and
shares nothing mutable with the old one, so a request reading the old index
during a swap never sees a half-applied change.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import accumulate

import numpy as np

TERM_SHIFT = 32  # a (term, document) pair packed as term << 32 | document, so pairs sort term-major
DOC_MASK = (1 << TERM_SHIFT) - 1
MAX_FREQUENCY = np.iinfo(np.uint8).max  # BM25 saturates long before: tf 255 is within 0.5% of the limit
SPLICE_STEPS = 20_000  # up to this many drops and inserts, splice by copying stretches; beyond, by masks
DENSE_PROBE_SHARE = 32  # probe a list through a dense map once candidates exceed 1/32 of the documents

PostingList = tuple[np.ndarray, np.ndarray]  # ascending document numbers, one value each


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


class PostingLists:
    """Per term id: ascending document numbers and one value per document, in flat arrays by offsets.

    The value is a term frequency (uint8, capped) for a field's lists, or a
    precomputed score contribution (float32) for the all-fields lists.
    """

    __slots__ = ("docs", "offsets", "values")

    def __init__(self, offsets: np.ndarray, docs: np.ndarray, values: np.ndarray) -> None:
        self.offsets = offsets
        self.docs = docs
        self.values = values

    @classmethod
    def from_pairs(cls, keys: np.ndarray, values: np.ndarray, term_count: int) -> PostingLists:
        """From sorted, unique packed (term, document) keys and their values."""
        counts = np.bincount(keys >> TERM_SHIFT, minlength=term_count) if len(keys) else np.zeros(term_count)
        offsets = np.zeros(term_count + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        return cls(offsets, (keys & DOC_MASK).astype(np.int32), values)

    @classmethod
    def from_occurrences(cls, terms: np.ndarray, docs: np.ndarray, term_count: int) -> PostingLists:
        """One (term, document) pair per token occurrence; repeats become the term frequency."""
        keys, frequencies = occurrence_counts(terms, docs)
        return cls.from_pairs(keys, frequencies, term_count)

    @property
    def term_count(self) -> int:
        return len(self.offsets) - 1

    def get(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        if term >= self.term_count:
            return self.docs[:0], self.values[:0]
        start, stop = self.offsets[term], self.offsets[term + 1]
        return self.docs[start:stop], self.values[start:stop]

    def terms_of_postings(self, start_term: int = 0, stop_term: int | None = None) -> np.ndarray:
        """The term id of every posting of terms start_term..stop_term-1, in posting order."""
        stop_term = self.term_count if stop_term is None else stop_term
        sizes = np.diff(self.offsets[start_term:stop_term + 1])
        return np.repeat(np.arange(start_term, stop_term, dtype=np.int64), sizes)

    def postings_of(self, removed: np.ndarray) -> np.ndarray:
        """Packed (term, document) keys, ascending, of every posting of the `removed` documents (a mask by
        document): one pass over the documents of every list."""
        places = np.flatnonzero(removed[self.docs]) if removed.any() else np.empty(0, dtype=np.int64)
        return ((np.searchsorted(self.offsets, places, side="right") - 1) << TERM_SHIFT) | self.docs[places]

    def places_of(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For packed (term, document) keys: where each is or would go, and whether it is there."""
        terms, docs = keys >> TERM_SHIFT, keys & DOC_MASK
        known = terms < self.term_count
        clipped = np.minimum(terms, max(self.term_count - 1, 0))
        lo = np.where(known, self.offsets[clipped], len(self.docs))
        hi = np.where(known, self.offsets[np.minimum(clipped + 1, self.term_count)], len(self.docs))
        at = searched_within(self.docs, lo, hi, docs)
        present = (at < hi) & (self.docs[np.minimum(at, max(len(self.docs) - 1, 0))] == docs) \
            if len(self.docs) else np.zeros(len(keys), dtype=bool)
        return at, present

    def replaced(self, dropped: np.ndarray, keys: np.ndarray, values: np.ndarray,
                 term_count: int) -> PostingLists:
        """Drop the postings `dropped` (packed (term, document) keys, ascending; those not here are ignored),
        then merge in new pairs.

        `keys` are sorted, unique packed (term, document) pairs. Cost: a
        binary search per dropped and per new pair, and one copy of the arrays
        with the changes spliced in; a pair both dropped and added keeps its
        place (only its value changes), so a book re-rated or lightly edited
        moves few postings, and one whose words all stay moves none (the
        document array is then shared). The dropped keys of a refresh come from
        one pass over the all-fields lists, which hold every field's pairs.
        """
        at, present = self.places_of(dropped)
        drops, drop_keys = at[present], dropped[present]
        # A pair both dropped and added (a word a rewritten book kept) keeps its place: its value is set there.
        found = np.minimum(np.searchsorted(drop_keys, keys), max(len(drop_keys) - 1, 0))
        kept = (drop_keys[found] == keys) if len(drop_keys) else np.zeros(len(keys), dtype=bool)
        patched = self.values
        if kept.any():
            patched = self.values.copy()
            patched[drops[found[kept]]] = values[kept]
        still = np.ones(len(drops), dtype=bool)
        still[found[kept]] = False
        drops, drop_keys, keys, values = drops[still], drop_keys[still], keys[~kept], values[~kept]
        sizes = np.zeros(term_count, dtype=np.int64)
        sizes[:self.term_count] = np.diff(self.offsets)
        sizes -= np.bincount(drop_keys >> TERM_SHIFT, minlength=term_count)
        new_terms = keys >> TERM_SHIFT
        new_docs = (keys & DOC_MASK).astype(np.int32)
        sizes += np.bincount(new_terms, minlength=term_count)
        offsets = np.zeros(term_count + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        if not len(drops) and not len(keys):  # the same pairs: the documents are shared, only values copied
            return PostingLists(offsets, self.docs, patched)
        at, _ = self.places_of(keys)  # each new pair goes before the posting now at its place
        docs, kept_values = spliced((self.docs, patched), drops, at, (new_docs, values.astype(self.values.dtype)))
        return PostingLists(offsets, docs, kept_values)

    def without(self, removed: np.ndarray, renumbered: np.ndarray) -> PostingLists:
        """Without the postings of the `removed` documents (a mask by document), the others renumbered
        (`renumbered`: old document number -> new; monotone, so every list stays ascending)."""
        dropped = removed[self.docs]
        drops = np.flatnonzero(dropped)
        sizes = np.diff(self.offsets)
        if len(drops):
            sizes = sizes - np.bincount(np.searchsorted(self.offsets, drops, side="right") - 1,
                                        minlength=self.term_count)
        offsets = np.zeros(self.term_count + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        kept = ~dropped
        return PostingLists(offsets, renumbered[self.docs[kept]], self.values[kept])

    @property
    def nbytes(self) -> int:
        return int(self.offsets.nbytes + self.docs.nbytes + self.values.nbytes)


Probe = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # candidates -> (present, where)


def intersection(lists: Sequence[PostingList], size: int,
                 probes: Sequence[Probe | None] = ()) -> tuple[np.ndarray, list[np.ndarray]]:
    """Documents (of `size`) in every list, ascending, and, per list, where each of them sits in that list.

    Starts from the shortest list; each longer one is probed through its `probes` entry when it has one
    (a common term's bitmap), else by binary search, or, when many candidates remain, through a dense
    document -> place map (one pass instead of a search each).
    """
    order = sorted(range(len(lists)), key=lambda j: len(lists[j][0]))
    candidates = lists[order[0]][0]
    if len(lists) == 1:
        return candidates, [slice(None)]  # type: ignore[list-item]  # the whole list, without a copy
    where: dict[int, np.ndarray] = {order[0]: np.arange(len(candidates))}
    for j in order[1:]:
        given = probes[j] if j < len(probes) else None
        present, at = given(candidates) if given is not None else probe(lists[j][0], candidates, size)
        candidates = candidates[present]
        where = {k: v[present] for k, v in where.items()}
        where[j] = at[present]
    return candidates, [where[j] for j in range(len(lists))]


def probe(docs: np.ndarray, candidates: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Which candidates are in the ascending `docs` (of `size` documents), and where (meaningful where
    present)."""
    if not len(docs):
        return np.zeros(len(candidates), dtype=bool), np.zeros(len(candidates), dtype=np.intp)
    if len(candidates) * DENSE_PROBE_SHARE > size:
        place = np.full(size, -1, dtype=np.int32)
        place[docs.astype(np.intp)] = np.arange(len(docs), dtype=np.int32)
        at = place[candidates]
        return at >= 0, at
    at = np.minimum(np.searchsorted(docs, candidates), len(docs) - 1)
    return docs[at] == candidates, at


def spliced(arrays: tuple[np.ndarray, ...], drops: np.ndarray, at: np.ndarray,
            inserted: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """Parallel arrays without the places `drops`, with `inserted[k][i]` put before place `at[i]`.

    Both `drops` and `at` are ascending places in the arrays as they are. A
    few changes are spliced in with one copy of the stretches between them;
    many go through a mask and numpy's insert.
    """
    if len(drops) + len(at) > SPLICE_STEPS:
        keep = np.ones(len(arrays[0]), dtype=bool)
        keep[drops] = False
        shifted = at - np.searchsorted(drops, at)  # the same places once the drops are gone
        return tuple(np.insert(a[keep], shifted, new) for a, new in zip(arrays, inserted, strict=True))
    # Every kept stretch and every inserted run as a view, put together by one concatenate per array.
    places = np.union1d(at, drops)
    first = np.searchsorted(at, places, side="left")
    last = np.searchsorted(at, places, side="right")
    dropped = np.isin(places, drops, assume_unique=True)
    resume = places + dropped  # where the next kept stretch starts
    starts = np.concatenate([[0], resume]).tolist()
    stops = [*places.tolist(), len(arrays[0])]
    runs = list(zip(first.tolist(), last.tolist(), strict=True))
    outs = []
    for a, new in zip(arrays, inserted, strict=True):
        pieces = [a[starts[0]:stops[0]]]
        for (lo, hi), start, stop in zip(runs, starts[1:], stops[1:], strict=True):
            pieces.append(new[lo:hi])
            pieces.append(a[start:stop])
        outs.append(np.concatenate(pieces).astype(a.dtype, copy=False))
    return tuple(outs)


def searched_within(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Per query i, the first place in values[lo[i]:hi[i]] (ascending there) holding at least wanted[i]
    (hi[i] when none does): numpy's searchsorted, run for every query at once over its own range
    (a bisection of vector steps: log2 of the longest range, never a Python step per query)."""
    lo, hi = lo.astype(np.int64, copy=True), hi.astype(np.int64, copy=True)
    while True:
        open_ = lo < hi
        if not open_.any():
            return lo
        mid = (lo + hi) // 2
        below = open_ & (values[np.minimum(mid, len(values) - 1)] < wanted)
        lo = np.where(below, mid + 1, lo)
        hi = np.where(open_ & ~below, mid, hi)


def occurrence_counts(terms: np.ndarray, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique packed (term, document) keys and how often each occurred (capped at MAX_FREQUENCY)."""
    packed = (terms.astype(np.int64) << TERM_SHIFT) | docs.astype(np.int64)
    keys, counts = np.unique(packed, return_counts=True)
    return keys, np.minimum(counts, MAX_FREQUENCY).astype(np.uint8)


def summed_pairs(keys: Sequence[np.ndarray], values: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Union of packed (term, document) pairs; values of the same pair are added (float32 result)."""
    if not keys:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    unique, inverse = np.unique(np.concatenate(keys), return_inverse=True)
    summed = np.bincount(inverse, weights=np.concatenate(values), minlength=len(unique))
    return unique, summed.astype(np.float32)


def largest_pairs(keys: Sequence[np.ndarray], values: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Union of packed (term, document) pairs; of the same pair, the largest value (float32 result)."""
    all_keys, all_values = np.concatenate(keys), np.concatenate(values)
    order = np.lexsort((all_values, all_keys))
    all_keys, all_values = all_keys[order], all_values[order]
    last = np.ones(len(all_keys), dtype=bool)
    last[:-1] = all_keys[1:] != all_keys[:-1]
    return all_keys[last], all_values[last].astype(np.float32)


class SortedTitles:
    """The normalised titles in title order, as a sequence `bisect` can search without materialising it."""

    __slots__ = ("_order", "_titles")

    def __init__(self, order: np.ndarray, titles: TextColumn) -> None:
        self._order = order
        self._titles = titles

    def __len__(self) -> int:
        return len(self._order)

    def __getitem__(self, i: int) -> str:
        return self._titles[int(self._order[i])]


class SortedTitleKeys(SortedTitles):
    def __init__(self, order: np.ndarray, titles: TextColumn, book_ids: np.ndarray) -> None:
        super().__init__(order, titles)
        self._book_ids = book_ids

    def __getitem__(self, i: int) -> tuple[str, str]:  # type: ignore[override]  # by one position only, never a slice
        position = int(self._order[i])
        return self._titles[position], self._book_ids[position].decode()
