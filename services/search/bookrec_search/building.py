"""Posting lists built from book records: term occurrences, BM25 impacts, and `IndexBuilder`. Pure, no I/O."""

from __future__ import annotations

import itertools
from array import array
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from bookrec_search.columns import DOC_MASK, TERM_SHIFT, PostingLists, largest_pairs, occurrence_counts, summed_pairs
from bookrec_search.documents import Document, id_array, names_of
from bookrec_search.facets import PairsBuilder
from bookrec_search.lexicon import IsbnMap, Lexicon
from bookrec_search.parts import IndexParts
from bookrec_search.scoring import FIELD_WEIGHTS, FIELDS, ORIGINAL_TITLE, TITLE, saturated
from bookrec_search.texts import PackedText, TextColumn

MAX_LENGTH = np.iinfo(np.uint16).max  # field lengths are kept as uint16


def field_impacts(field: int, keys: np.ndarray, frequencies: np.ndarray, lengths: np.ndarray,
                   average_length: float) -> np.ndarray:
    return FIELD_WEIGHTS[field] * saturated(frequencies, lengths[keys & DOC_MASK], average_length)


def combined_lists(fields: Sequence[PostingLists], lengths: Sequence[np.ndarray], averages: Sequence[float],
                    chunk_postings: int = 1 << 21) -> PostingLists:
    """All-fields posting lists of impacts, merged a range of terms at a time to bound the memory it takes."""
    term_count = fields[0].term_count
    per_term = sum(np.diff(f.offsets) for f in fields)
    running = np.concatenate([[0], np.cumsum(per_term)])
    bounds = np.unique(np.concatenate([np.searchsorted(running, np.arange(0, running[-1], chunk_postings),
                                                       side="right") - 1, [term_count]]))
    docs, values = [], []
    sizes = np.zeros(term_count, dtype=np.int64)
    for start, stop in itertools.pairwise(bounds):
        keys, impacts = [], []
        for f, postings in enumerate(fields):
            lo, hi = postings.offsets[start], postings.offsets[stop]
            field_keys = (postings.terms_of_postings(start, stop) << TERM_SHIFT) | postings.docs[lo:hi]
            keys.append(field_keys)
            impacts.append(field_impacts(f, field_keys, postings.values[lo:hi], lengths[f], averages[f]))
        merged, summed = combined_pairs(keys, impacts)
        sizes += np.bincount(merged >> TERM_SHIFT, minlength=term_count)
        docs.append((merged & DOC_MASK).astype(np.int32))
        values.append(summed)
    offsets = np.zeros(term_count + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    return PostingLists(offsets, np.concatenate(docs or [np.empty(0, np.int32)]),
                        np.concatenate(values or [np.empty(0, np.float32)]))


def field_averages(lengths: Sequence[np.ndarray]) -> tuple[float, ...]:
    """The average length of each field over all books (books without an original title count 0)."""
    return tuple(float(x.mean(dtype=np.float32)) if len(x) else 0.0 for x in lengths)


def combined_pairs(keys: Sequence[np.ndarray],
                   impacts: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """All-fields impacts of packed (term, document) pairs from the per-field ones (in FIELDS order): the
    better of title and original title, plus authors and subjects."""
    names = largest_pairs([keys[TITLE], keys[ORIGINAL_TITLE]], [impacts[TITLE], impacts[ORIGINAL_TITLE]])
    others = [f for f in range(len(FIELDS)) if f not in (TITLE, ORIGINAL_TITLE)]
    return summed_pairs([names[0], *(keys[f] for f in others)], [names[1], *(impacts[f] for f in others)])


class Occurrences:
    """Token occurrences of a batch of documents, per field, as term ids and document numbers."""

    def __init__(self) -> None:
        self.terms = [array("i") for _ in FIELDS]
        self.docs = [array("i") for _ in FIELDS]
        self.lengths = [array("i") for _ in FIELDS]

    def add(self, doc: int, document: Document, vocabulary: dict[str, int]) -> None:
        for field, tokens in enumerate(document.tokens):
            ids = [vocabulary.setdefault(token, len(vocabulary)) for token in tokens]
            self.terms[field].extend(ids)
            self.docs[field].extend([doc] * len(ids))
            self.lengths[field].append(len(ids))

    def field(self, field: int) -> tuple[np.ndarray, np.ndarray]:
        """Sorted unique packed (term, document) keys of the field and their term frequencies."""
        return occurrence_counts(np.frombuffer(self.terms[field], dtype=np.int32),
                                 np.frombuffer(self.docs[field], dtype=np.int32))

    def field_lengths(self, field: int) -> np.ndarray:
        """Tokens per document, capped at 65,535 (BM25's length norm is long saturated by then)."""
        return np.minimum(np.frombuffer(self.lengths[field], dtype=np.int32), MAX_LENGTH).astype(np.uint16)

    def release(self, field: int) -> None:
        self.terms[field], self.docs[field] = array("i"), array("i")


class IndexBuilder:
    """Collects book records (page by page as a Scan delivers them) and builds an index's parts."""

    def __init__(self, average_lengths: Sequence[float] | None = None) -> None:
        self._average_lengths = average_lengths
        self._vocabulary: dict[str, int] = {}
        self._occurrences = Occurrences()
        self._ids: list[str] = []
        self._title_norms: list[str] = []  # kept as strings until built: the title order sorts them
        self._titles, self._authors, self._series = PackedText(), PackedText(), PackedText()
        self._series_positions = array("d")
        self._language_codes: dict[str, int] = {}  # in order of first use
        self._languages = array("h")
        self._years, self._covers = array("i"), array("i")
        self._counts, self._sums, self._signatures = array("i"), array("i"), array("q")
        self._original_titles: dict[int, str] = {}
        self._isbns, self._isbn_positions = array("q"), array("i")
        self._author_values, self._subject_values = PairsBuilder(), PairsBuilder()  # the facets

    def add(self, record: Mapping[str, Any]) -> None:
        document = Document.of(record)
        position = len(self._ids)
        self._occurrences.add(position, document, self._vocabulary)
        if document.original_title_norm:
            self._original_titles[position] = document.original_title_norm
        self._isbns.extend(document.isbns)
        self._isbn_positions.extend([position] * len(document.isbns))
        self._ids.append(document.book_id)
        self._titles.append(document.title)
        self._title_norms.append(document.title_norm)
        self._authors.append(document.authors)
        self._series.append(document.series)
        self._series_positions.append(document.series_position)
        self._author_values.add(names_of(document.authors))
        self._subject_values.add(document.subjects)
        self._languages.append(self._language_codes.setdefault(document.language, len(self._language_codes)))
        self._years.append(document.year)
        self._covers.append(document.cover_id)
        self._counts.append(document.rating_count)
        self._sums.append(document.rating_sum)
        self._signatures.append(document.signature)

    def add_all(self, records: Iterable[Mapping[str, Any]]) -> IndexBuilder:
        for record in records:
            self.add(record)
        return self

    def build(self) -> IndexParts:
        """The parts of the books added. Once: the builder lets go of what it held as it builds."""
        size, term_count = len(self._ids), len(self._vocabulary)
        # The per-book strings first, let go before the posting lists are made (the build's peak): 150
        # bytes a book. Title order: by normalised title, then book id (two stable sorts, no tuple per book).
        order = sorted(range(size), key=self._ids.__getitem__)
        order.sort(key=self._title_norms.__getitem__)
        title_order = np.array(order, dtype=np.int32)
        del order
        book_ids, title_norms = id_array(self._ids), TextColumn.of(self._title_norms)
        self._ids, self._title_norms = [], []
        lengths = tuple(self._occurrences.field_lengths(f) for f in range(len(FIELDS)))
        averages = tuple(self._average_lengths or field_averages(lengths))
        fields = []
        for f in range(len(FIELDS)):
            fields.append(PostingLists.from_pairs(*self._occurrences.field(f), term_count))
            self._occurrences.release(f)
        combined = combined_lists(fields, lengths, averages)
        return IndexParts(
            book_ids=book_ids, id_order=np.argsort(book_ids, kind="stable").astype(np.int32),
            titles=self._titles.column(), title_norms=title_norms,
            authors=self._authors.column(), series=self._series.column(),
            series_positions=np.frombuffer(self._series_positions, dtype=np.float64).copy(),
            signatures=np.frombuffer(self._signatures, dtype=np.int64).copy(),
            years=np.frombuffer(self._years, dtype=np.int32).copy(),
            languages=tuple(self._language_codes),
            language=np.frombuffer(self._languages, dtype=np.int16).copy(),
            cover_ids=np.frombuffer(self._covers, dtype=np.int32).copy(),
            rating_count=np.frombuffer(self._counts, dtype=np.int32).copy(),
            rating_sum=np.frombuffer(self._sums, dtype=np.int32).copy(),
            vocabulary=self._vocabulary, fields=tuple(fields), lengths=lengths, average_lengths=averages,
            averaged_size=size,
            combined=combined, title_order=title_order,
            lexicon=Lexicon.of(self._vocabulary), original_titles=self._original_titles,
            isbns=IsbnMap.of(np.frombuffer(self._isbns, dtype=np.int64),
                              np.frombuffer(self._isbn_positions, dtype=np.int32)),
            author_values=self._author_values.build(), subject_values=self._subject_values.build())
