"""Packed strings and posting-list splicing against plain Python lists."""

from __future__ import annotations

from unittest import mock

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bookrec_search import columns
from bookrec_search.columns import TextColumn, spliced

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
