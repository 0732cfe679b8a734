"""`updated()`: new index parts with records added, replaced or deleted. Pure, numpy, no I/O.

Rating and other column changes copy the affected columns; text changes also merge the changed
documents' postings into copies of the lists (see Layout in services/search/README.md).

Deleted books are compacted away: every per-book column, posting list, facet pair, ISBN entry,
title order and original title drops them and the books after them move down (one gather over the
postings, about a second at a million books). The alternative, a liveness mask consulted wherever
results are produced, is cheaper per deletion but wrong in ways a fresh build is not: deleted books
would still count in N and the document frequencies (idf, the "taken as typed" cut, which completions
and corrections are offered), in the catalogue's mean rating (the prior), in autocomplete's totals and
block tops, in facet pairs; every one of those places (and every future one) would have to consult it,
and the artifact would carry the dead books forever. Deletions are rare (a few per refresh), so
correctness wins: after compaction the index is what a fresh build of the books left would be, but for
the average field lengths (kept, as for any update, until the catalogue grows or shrinks by a quarter)
and the vocabulary, which keeps words left without a book (they match nothing).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bookrec_search.building import Occurrences, combined_lists, combined_pairs, field_averages, field_impacts
from bookrec_search.columns import SortedTitleKeys
from bookrec_search.documents import Document, id_array, names_of
from bookrec_search.parts import IndexParts
from bookrec_search.scoring import FIELDS
from bookrec_search.splicing import isbns_replaced, pairs_updated, pairs_without
from bookrec_search.texts import TextColumn

REAVERAGE_GROWTH = 1.25  # re-average field lengths once the catalogue grows (or shrinks) by a quarter


@dataclass(frozen=True, slots=True, eq=False)
class Step:
    """One change a refresh made to the parts, for what is derived from them to follow it cheaply: the
    books `removed` (a mask over the previous positions; the others move down in order), or the books
    `changed` (positions whose columns or text differ) and `added` (appended at the end)."""

    parts: IndexParts
    removed: np.ndarray | None = None
    changed: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    added: int = 0


def updated(parts: IndexParts, records: Iterable[Mapping[str, Any]],
            deleted: Iterable[str] = ()) -> IndexParts:
    """`parts` with the given records added or replaced (by book id) and the `deleted` book ids removed
    (unknown ids are ignored; an id both given and deleted is deleted); `parts` itself when nothing differs.

    A deleted book given again in a later update is added like a new one.
    """
    made = steps(parts, records, deleted)
    return made[-1].parts if made else parts


def steps(parts: IndexParts, records: Iterable[Mapping[str, Any]], deleted: Iterable[str] = ()) -> list[Step]:
    """What `updated` does, as its steps (none when nothing differs): the deletions, then the changes."""
    made = []
    gone = {i for i in deleted if isinstance(i, str)}
    latest = {r["book_id"]: r for r in records
              if isinstance(r.get("book_id"), str) and r["book_id"] not in gone}
    if gone:
        at = parts.positions(id_array(sorted(gone)))
        if (at >= 0).any():
            removed = np.zeros(parts.size, dtype=bool)
            removed[at[at >= 0]] = True
            parts = _without(parts, at[at >= 0])
            made.append(Step(parts, removed))
    if not latest:
        return made
    documents = [Document.of(r) for r in latest.values()]
    found = parts.positions(id_array([d.book_id for d in documents]))
    known = [(d, int(p)) for d, p in zip(documents, found, strict=True) if p >= 0]
    added = [d for d, p in zip(documents, found, strict=True) if p < 0]
    rewritten = [(d, p) for d, p in known if d.signature != parts.signatures[p]]
    differing = [p for d, p in known if d.signature != parts.signatures[p] or _columns_differ(parts, d, p)]
    if not differing and not added:
        return made
    changes = _updated_columns(parts, known, added)
    changes.update(_updated_text(parts, rewritten, added) if rewritten or added else _text_parts(parts))
    made.append(Step(IndexParts(**changes), changed=np.array(sorted(differing), dtype=np.int64), added=len(added)))
    return made


def _without(parts: IndexParts, positions: np.ndarray) -> IndexParts:
    """`parts` without the books at `positions` (compacted: see the module docstring)."""
    removed = np.zeros(parts.size, dtype=bool)
    removed[positions] = True
    kept = np.flatnonzero(~removed)
    renumbered = (np.cumsum(~removed) - 1).astype(np.int32)  # old position -> new (for those kept)
    size = len(kept)

    def order(positions_in_order: np.ndarray) -> np.ndarray:
        return renumbered[positions_in_order[~removed[positions_in_order]]]

    lengths = tuple(x[kept] for x in parts.lengths)
    averages, averaged_size = parts.average_lengths, parts.averaged_size
    fields = tuple(f.without(removed, renumbered) for f in parts.fields)
    if size * REAVERAGE_GROWTH < averaged_size:  # shrunk well below the catalogue the averages describe
        averages, averaged_size = field_averages(lengths), size
        combined = combined_lists(fields, lengths, averages)
    else:
        combined = parts.combined.without(removed, renumbered)
    return IndexParts(
        book_ids=parts.book_ids[kept], id_order=order(parts.id_order), titles=parts.titles.taken(kept),
        title_norms=parts.title_norms.taken(kept), authors=parts.authors.taken(kept),
        series=parts.series.taken(kept), series_positions=parts.series_positions[kept],
        signatures=parts.signatures[kept], years=parts.years[kept], languages=parts.languages,
        language=parts.language[kept], cover_ids=parts.cover_ids[kept],
        rating_count=parts.rating_count[kept], rating_sum=parts.rating_sum[kept],
        vocabulary=parts.vocabulary, fields=fields, lengths=lengths, average_lengths=averages,
        averaged_size=averaged_size, combined=combined, title_order=order(parts.title_order),
        lexicon=parts.lexicon,
        original_titles={int(renumbered[p]): t for p, t in parts.original_titles.items() if not removed[p]},
        isbns=parts.isbns.without(removed, renumbered),
        author_values=pairs_without(parts.author_values, removed, renumbered),
        subject_values=pairs_without(parts.subject_values, removed, renumbered))


def _columns_differ(parts: IndexParts, d: Document, p: int) -> bool:
    return (d.year != parts.years[p] or d.cover_id != parts.cover_ids[p]
            or d.rating_count != parts.rating_count[p] or d.rating_sum != parts.rating_sum[p]
            or d.language != parts.languages[parts.language[p]])


def _updated_columns(parts: IndexParts, known: list[tuple[Document, int]],
                     added: list[Document]) -> dict[str, Any]:
    codes = {code: i for i, code in enumerate(parts.languages)}
    for d in [*(d for d, _ in known), *added]:
        codes.setdefault(d.language, len(codes))

    def column(values: np.ndarray, value_of: Callable[[Document], int]) -> np.ndarray:
        out = np.concatenate([values, np.array([value_of(d) for d in added], dtype=values.dtype)])
        if known:
            out[[p for _, p in known]] = [value_of(d) for d, _ in known]
        return out

    return {"years": column(parts.years, lambda d: d.year),
            "cover_ids": column(parts.cover_ids, lambda d: d.cover_id),
            "rating_count": column(parts.rating_count, lambda d: d.rating_count),
            "rating_sum": column(parts.rating_sum, lambda d: d.rating_sum),
            "language": column(parts.language, lambda d: codes[d.language]), "languages": tuple(codes)}


def _text_parts(parts: IndexParts) -> dict[str, Any]:
    return {"book_ids": parts.book_ids, "id_order": parts.id_order, "titles": parts.titles,
            "title_norms": parts.title_norms, "authors": parts.authors, "series": parts.series,
            "series_positions": parts.series_positions, "signatures": parts.signatures,
            "vocabulary": parts.vocabulary, "fields": parts.fields, "lengths": parts.lengths,
            "average_lengths": parts.average_lengths, "averaged_size": parts.averaged_size,
            "combined": parts.combined, "title_order": parts.title_order, "lexicon": parts.lexicon,
            "original_titles": parts.original_titles, "isbns": parts.isbns,
            "author_values": parts.author_values, "subject_values": parts.subject_values}


def _updated_text(parts: IndexParts, rewritten: list[tuple[Document, int]],
                  added: list[Document]) -> dict[str, Any]:
    size = parts.size + len(added)
    batch = [*rewritten, *((d, parts.size + i) for i, d in enumerate(added))]
    vocabulary = parts.vocabulary  # shared unless a new word comes: then copied, never changed
    if any(t not in vocabulary for d, _ in batch for tokens in d.tokens for t in tokens):
        vocabulary = dict(vocabulary)
    known_terms = len(vocabulary)
    occurrences = Occurrences()
    for d, p in batch:
        occurrences.add(p, d, vocabulary)
    removed = np.zeros(parts.size, dtype=bool)
    removed[[p for _, p in rewritten]] = True
    term_count = len(vocabulary)
    lexicon = parts.lexicon.with_terms(dict(itertools.islice(vocabulary.items(), known_terms, None)))
    original_titles = dict(parts.original_titles)  # a copy at C speed, then only the changed books
    for d, p in batch:
        if d.original_title_norm:
            original_titles[p] = d.original_title_norm
        else:
            original_titles.pop(p, None)
    isbns = isbns_replaced(parts.isbns, removed, [i for d, _ in batch for i in d.isbns],
                           [p for d, p in batch for _ in d.isbns])
    rewritten_at = np.array([p for _, p in rewritten], dtype=np.int64)
    dropped = parts.combined.postings_of(removed)  # every field's pairs are among the all-fields ones
    fields, lengths, impact_keys, impacts = [], [], [], []
    for f in range(len(FIELDS)):
        batch_lengths = occurrences.field_lengths(f)
        field_lengths = np.concatenate([parts.lengths[f], batch_lengths[len(rewritten):]])
        field_lengths[rewritten_at] = batch_lengths[:len(rewritten)]
        keys, frequencies = occurrences.field(f)
        fields.append(parts.fields[f].replaced(dropped, keys, frequencies, term_count))
        lengths.append(field_lengths)
        impact_keys.append(keys)
        impacts.append(field_impacts(f, keys, frequencies, field_lengths, parts.average_lengths[f]))
    averages, averaged_size = parts.average_lengths, parts.averaged_size
    if size > parts.averaged_size * REAVERAGE_GROWTH:
        # Grown well past the catalogue the averages describe (say, started on a table still being
        # loaded): average afresh and recompute every impact, from the field lists alone.
        averages, averaged_size = field_averages(lengths), size
        combined = combined_lists(fields, lengths, averages)
    else:
        combined = parts.combined.replaced(dropped, *combined_pairs(impact_keys, impacts), term_count)

    new_ids = id_array([d.book_id for d in added])
    book_ids = np.concatenate([parts.book_ids, new_ids]) if added else parts.book_ids
    id_sorted = np.argsort(new_ids, kind="stable")
    id_at = np.searchsorted(parts.book_ids, new_ids[id_sorted], sorter=parts.id_order)
    id_order = np.insert(parts.id_order, id_at, (parts.size + id_sorted).astype(np.int32))
    title_norms = _text_updated(parts.title_norms, {p: d.title_norm for d, p in rewritten},
                                [d.title_norm for d in added])
    signatures = np.concatenate([parts.signatures, np.array([d.signature for d in added], dtype=np.int64)])
    signatures[rewritten_at] = [d.signature for d, _ in rewritten]
    series_positions = np.concatenate([parts.series_positions,
                                       np.array([d.series_position for d in added], dtype=np.float64)])
    series_positions[rewritten_at] = [d.series_position for d, _ in rewritten]
    # Title order: drop the documents whose title changed, then insert each at its place among the others.
    retitled = [(d, p) for d, p in batch if p >= parts.size or d.title_norm != parts.title_norms[p]]
    title_order = parts.title_order
    if retitled:
        moved = np.zeros(size, dtype=bool)
        moved[[p for _, p in retitled]] = True
        kept = parts.title_order[~moved[parts.title_order]]
        title_keys = SortedTitleKeys(kept, title_norms, book_ids)
        entering = sorted((d.title_norm, d.book_id, p) for d, p in retitled)
        at = [bisect.bisect_left(title_keys, (title, book_id)) for title, book_id, _ in entering]
        title_order = np.insert(kept, at, np.array([p for _, _, p in entering], dtype=np.int32))
    return {"book_ids": book_ids, "id_order": id_order.astype(np.int32),
            "titles": _text_updated(parts.titles, {p: d.title for d, p in rewritten}, [d.title for d in added]),
            "title_norms": title_norms,
            "authors": _text_updated(parts.authors, {p: d.authors for d, p in rewritten},
                                     [d.authors for d in added]),
            "series": _text_updated(parts.series, {p: d.series for d, p in rewritten}, [d.series for d in added]),
            "series_positions": series_positions, "signatures": signatures, "vocabulary": vocabulary,
            "fields": tuple(fields), "lengths": tuple(lengths),
            "average_lengths": averages, "averaged_size": averaged_size, "combined": combined,
            "title_order": title_order, "lexicon": lexicon, "original_titles": original_titles,
            "isbns": isbns,
            "author_values": pairs_updated(parts.author_values, {p: names_of(d.authors) for d, p in rewritten},
                                           [names_of(d.authors) for d in added], parts.size),
            "subject_values": pairs_updated(parts.subject_values, {p: d.subjects for d, p in rewritten},
                                            [d.subjects for d in added], parts.size)}


def _text_updated(column: TextColumn, replaced: dict[int, str], appended: list[str]) -> TextColumn:
    """`column.updated(...)` with only the entries that differ: the column itself when none does."""
    differing = {p: text for p, text in replaced.items() if column[p] != text}
    return column.updated(differing, appended) if differing or appended else column
