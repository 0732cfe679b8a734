from hypothesis import given
from hypothesis import strategies as st
import pytest

from bookrec_ratings.domain import RatingAggregate, decode_cursor, encode_cursor

stars = st.integers(min_value=1, max_value=5)


def test_new_rating_adds_one():
    agg = RatingAggregate().apply(None, 4)
    assert (agg.count, agg.total, agg.distribution["4"], agg.average) == (1, 4, 1, 4.0)


def test_rerating_moves_sum_by_difference_and_keeps_count():
    agg = RatingAggregate().apply(None, 2).apply(None, 5)
    moved = agg.apply(2, 4)
    assert moved.count == agg.count and moved.total == agg.total + 2
    assert moved.distribution == {"1": 0, "2": 0, "3": 0, "4": 1, "5": 1}


def test_removing_a_rating_that_is_not_there_is_refused():
    with pytest.raises(ValueError):
        RatingAggregate().apply(3, None)


@given(st.lists(st.tuples(st.integers(0, 9), st.one_of(st.none(), stars)), max_size=60))
def test_any_sequence_of_changes_matches_recomputing_from_scratch(changes):
    """Oracle: the aggregate of the final ratings, recomputed from nothing."""
    current: dict[int, int] = {}
    agg = RatingAggregate()
    for user, rating in changes:
        previous = current.get(user)
        if previous is None and rating is None:
            continue
        agg = agg.apply(previous, rating)
        if rating is None:
            current.pop(user)
        else:
            current[user] = rating
    assert agg.count == len(current) and agg.total == sum(current.values())
    assert all(agg.distribution[str(s)] == sum(1 for r in current.values() if r == s) for s in range(1, 6))


def test_cursor_round_trips_and_rejects_forgeries():
    key = {"book_id": "OL1W", "user_id": "u", "updated_at": "2026-01-01T00:00:00Z"}
    assert decode_cursor(encode_cursor(key), frozenset(key)) == key
    for bad in ("", "!!!", "e30", encode_cursor({"book_id": "OL1W"}), encode_cursor({**key, "x": "y"})):
        with pytest.raises(ValueError):
            decode_cursor(bad, frozenset(key))
