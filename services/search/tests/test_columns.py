"""Packed strings and posting-list splicing against plain Python lists."""

from __future__ import annotations

from unittest import mock

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bookrec_search import columns
from bookrec_search import texts as texts_module
from bookrec_search.columns import spliced
from bookrec_search.texts import TextColumn

texts = st.lists(st.text(max_size=12), max_size=30)


@settings(max_examples=200, deadline=None)
@given(texts, st.data())
def test_text_column_updates_like_a_list(values, data):
    column = TextColumn.of(values)
    assert [column[i] for i in range(len(column))] == values
    replaced = data.draw(st.dictionaries(st.integers(0, max(len(values) - 1, 0)), st.text(max_size=8))
                         if values else st.just({}))
    appended = data.draw(st.lists(st.text(max_size=8), max_size=5))
    updated = column.updated(replaced, appended)
    expected = [replaced.get(i, v) for i, v in enumerate(values)] + appended
    assert [updated[i] for i in range(len(updated))] == expected
    assert [column[i] for i in range(len(column))] == values  # the original is untouched


def texts_of(column):
    return [column[i] for i in range(len(column))]


def live_nbytes(column):
    buffer, starts, lengths = column.parts()
    return len(buffer) + starts.nbytes + lengths.nbytes


rounds = st.lists(st.tuples(st.dictionaries(st.integers(0, 10**6), st.text(max_size=6), max_size=4),
                            st.lists(st.text(max_size=6), max_size=3),
                            st.lists(st.booleans(), max_size=40)), max_size=12)


@settings(max_examples=200, deadline=None)
@given(texts, rounds, st.integers(1, 3), st.sampled_from([0.0, 0.3, 10.0]))
def test_text_column_follows_a_list_across_rounds_and_compactions(values, changes, max_chunks, dead_share):
    """Replacements (empty and non-ASCII strings too), appends and deletions, the chunks joined and the
    dead bytes dropped as often as thresholds this small make them, against a plain list."""
    with mock.patch.multiple(texts_module, MAX_CHUNKS=max_chunks, DEAD_SHARE=dead_share):
        column = TextColumn.of(values)
        for replaced, appended, dropped in changes:
            replaced = {p % len(values): text for p, text in replaced.items()} if values else {}
            before, old = list(values), column
            column = column.updated(replaced, appended)
            values = [replaced.get(i, v) for i, v in enumerate(values)] + appended
            assert texts_of(column) == values and texts_of(old) == before  # the old column is untouched
            kept = [i for i in range(len(values)) if i >= len(dropped) or not dropped[i]]
            column, values = column.taken(np.array(kept, dtype=np.int64)), [values[i] for i in kept]
            assert texts_of(column) == values
            assert len(column.chunks) <= max_chunks + 1
            buffer, starts, lengths = column.parts()
            assert texts_of(TextColumn(buffer, starts, lengths)) == values
            assert column.nbytes == live_nbytes(column)
            live = sum(len(v.encode()) for v in values)
            assert len(buffer) - live <= dead_share * live  # dead bytes never past their share


def test_text_column_shares_its_text_until_a_compaction():
    column = TextColumn.of(["anna karenina", "war and peace"])
    with mock.patch.object(texts_module, "DEAD_SHARE", 10.0):
        updated = column.updated({0: "Анна Каренина"}, ["the idiot", ""])
        taken = updated.taken(np.array([1, 2], dtype=np.int64))
    assert updated.chunks == (column.chunks[0], "Анна Каренинаthe idiot".encode())  # nothing old copied
    assert updated.chunks[0] is column.chunks[0] and taken.chunks == updated.chunks
    assert updated.nbytes == len(b"anna kareninawar and peace") + len("Анна Каренинаthe idiot".encode()) + 4 * 6
    assert updated.parts()[0] == b"anna kareninawar and peace" + "Анна Каренинаthe idiot".encode()
    assert texts_of(taken) == ["war and peace", "the idiot"]
    with mock.patch.object(texts_module, "DEAD_SHARE", 0.0):  # the replaced title dropped: entries in order
        compacted = column.updated({0: "Анна Каренина"}, ["the idiot", ""])
        assert taken.updated({}, []).parts()[0] == b"war and peacethe idiot"
    assert compacted.chunks == ("Анна Каренинаwar and peacethe idiot".encode(),)
    assert texts_of(compacted) == ["Анна Каренина", "war and peace", "the idiot", ""]
    with mock.patch.object(texts_module, "MAX_CHUNKS", 2):  # joined, the starts as they are: the text added since
        tail = column.updated({}, ["emma"]).updated({}, ["persuasion"])  # the first chunk, while it is less
        whole = tail.updated({}, ["a much longer title than the rest"])  # else every chunk
    assert tail.chunks == (b"anna kareninawar and peace", b"emmapersuasion")
    assert whole.chunks == (b"anna kareninawar and peaceemmapersuasiona much longer title than the rest",)
    assert texts_of(whole) == ["anna karenina", "war and peace", "emma", "persuasion",
                               "a much longer title than the rest"]


def test_text_column_widens_for_a_long_string_and_narrows_again():
    column = TextColumn.of(["short", "ü"])
    assert (column.parts()[1].dtype, column.parts()[2].dtype) == (np.uint32, np.uint16)
    long = "é" * 35_000  # 70,000 bytes: over uint16 lengths
    widened = column.updated({1: long}, ["after"])
    assert widened.parts()[2].dtype == np.int32 and texts_of(widened) == ["short", long, "after"]
    assert texts_of(TextColumn(*widened.parts())) == ["short", long, "after"]
    later = widened.updated({0: "x"}, [])
    assert later.parts()[2].dtype == np.int32 and texts_of(later) == ["x", long, "after"]
    with mock.patch.object(texts_module, "DEAD_SHARE", 0.0):
        narrowed = later.updated({1: "short again"}, [])  # the long string replaced: its 70,000 bytes dropped
    assert narrowed.parts()[2].dtype == np.uint16 and len(narrowed.chunks) == 1
    assert narrowed.parts()[0] == b"xshort againafter"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 1000), max_size=40).map(sorted), st.data(), st.booleans())
def test_splicing_drops_and_inserts_like_a_list(values, data, through_masks):
    places = st.integers(0, len(values))
    drops = sorted(data.draw(st.sets(st.integers(0, max(len(values) - 1, 0)), max_size=len(values))))
    at = sorted(data.draw(st.lists(places, max_size=10)))
    inserted = [-(i + 1) for i in range(len(at))]
    expected = []
    for place in range(len(values) + 1):
        expected += [inserted[i] for i, a in enumerate(at) if a == place]
        if place < len(values) and place not in drops:
            expected.append(values[place])
    array = np.array(values, dtype=np.int64)
    with mock.patch.object(columns, "SPLICE_STEPS", 0 if through_masks else 10**6):
        new = np.array(inserted, dtype=np.int64)
        got, twin = spliced((array, array * 2), np.array(drops, dtype=np.int64), np.array(at, dtype=np.int64),
                            (new, new * 2))
    assert got.tolist() == expected and twin.tolist() == [2 * v for v in expected]


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([columns.SPLICE_STEPS, 3]))
def test_replaced_lists_are_the_lists_of_the_pairs_left(seed, splice_steps):
    """Drops, new pairs and pairs both dropped and given again (their value changes in place), through both
    ways of splicing: the result is the lists made from the pairs left and given."""
    rng = np.random.default_rng(seed)
    terms, documents = int(rng.integers(1, 6)), int(rng.integers(1, 30))
    universe = np.array([t << columns.TERM_SHIFT | d for t in range(terms) for d in range(documents)])
    held = np.sort(rng.choice(universe, int(rng.integers(0, len(universe) + 1)), replace=False))
    values = rng.random(len(held)).astype(np.float32)
    lists = columns.PostingLists.from_pairs(held, values, terms)
    dropped = np.sort(rng.choice(universe, int(rng.integers(0, len(universe) + 1)), replace=False))
    given_terms = terms + int(rng.integers(0, 2))  # sometimes a new term
    wider = np.array([t << columns.TERM_SHIFT | d for t in range(given_terms) for d in range(documents)])
    free = np.setdiff1d(wider, np.setdiff1d(held, dropped))  # a new pair is never one that stays (a refresh's)
    new_keys = np.sort(rng.choice(free, int(rng.integers(0, len(free) + 1)), replace=False))
    new_values = rng.random(len(new_keys)).astype(np.float32)
    with mock.patch.object(columns, "SPLICE_STEPS", splice_steps):
        got = lists.replaced(dropped, new_keys, new_values, given_terms)
    expected = dict(zip(held.tolist(), values.tolist(), strict=True))
    for key in dropped.tolist():
        expected.pop(key, None)
    expected.update(zip(new_keys.tolist(), new_values.tolist(), strict=True))
    keys = np.array(sorted(expected), dtype=np.int64)
    want = columns.PostingLists.from_pairs(keys, np.array([expected[k] for k in keys.tolist()], dtype=np.float32),
                                           given_terms)
    assert np.array_equal(got.offsets, want.offsets)
    assert np.array_equal(got.docs, want.docs) and np.array_equal(got.values, want.values)
