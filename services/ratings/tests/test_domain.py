"""Rating arithmetic and validation rules, against brute-force oracles; no I/O."""

import string
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bookrec_catalog.catalog import SHELVES
from bookrec_ratings.domain import (
    ChangeKind,
    RatingAggregate,
    ShelfCounts,
    ShelvingKind,
    allowed_on_deleted_book,
    decode_cursor,
    encode_cursor,
    is_rating,
    is_shelf,
    kind_of,
    shelf_after_rating,
    shelving_kind,
    user_shelf,
)

stars = st.integers(min_value=1, max_value=5)
USER_ID_CHARACTERS = set(string.ascii_letters + string.digits + "_.@-")
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10, 10), st.integers(),
                         st.floats(allow_nan=False), st.text(max_size=5))


@given(st.none() | stars, st.none() | stars)
def test_a_deleted_book_takes_only_the_removal_of_an_existing_rating(previous, new):
    assert allowed_on_deleted_book(previous, new) == (kind_of(previous, new) is ChangeKind.DELETION
                                                      and previous is not None)


def test_new_rating_adds_one():
    agg = RatingAggregate().apply(None, 4)
    assert (agg.count, agg.total, agg.distribution["4"], agg.average) == (1, 4, 1, 4.0)


def test_rerating_moves_sum_by_difference_and_keeps_count():
    agg = RatingAggregate().apply(None, 2).apply(None, 5)
    moved = agg.apply(2, 4)
    assert moved.count == agg.count and moved.total == agg.total + 2
    assert moved.distribution == {"1": 0, "2": 0, "3": 0, "4": 1, "5": 1}


def test_deletion_takes_away_its_star():
    agg = RatingAggregate().apply(None, 3).apply(None, 5).apply(5, None)
    assert (agg.count, agg.total, agg.average) == (1, 3, 3.0)


def test_removing_a_star_the_aggregate_does_not_hold_stays_at_zero():
    agg = RatingAggregate().apply(None, 4)
    assert not agg.holds(3) and agg.holds(4)
    after = agg.apply(3, 5)
    assert after.distribution == {"1": 0, "2": 0, "3": 0, "4": 1, "5": 1}


def test_aggregate_from_a_record_tolerates_missing_stars_and_no_distribution():
    assert RatingAggregate.from_record({"book_id": "OL1W"}).count == 0
    agg = RatingAggregate.from_record({"ratings_distribution": {"5": 2}})
    assert (agg.count, agg.total, agg.average) == (2, 10, 5.0)


def test_kind_of_a_change():
    assert [kind_of(None, 3), kind_of(2, 3), kind_of(2, None)] == [ChangeKind.NEW, ChangeKind.RERATING,
                                                                    ChangeKind.DELETION]


@given(st.lists(st.tuples(st.integers(0, 9), st.one_of(st.none(), stars)), max_size=60))
def test_any_sequence_of_changes_matches_recomputing_from_scratch(changes):
    """Oracle: the aggregate of the final ratings, recomputed from nothing."""
    current: dict[int, int] = {}
    agg = RatingAggregate()
    for user, rating in changes:
        previous = current.get(user)
        if previous is None and rating is None:
            continue
        assert previous is None or agg.holds(previous)
        agg = agg.apply(previous, rating)
        if rating is None:
            current.pop(user)
        else:
            current[user] = rating
    assert agg.count == len(current) and agg.total == sum(current.values())
    assert all(agg.distribution[str(s)] == sum(1 for r in current.values() if r == s) for s in range(1, 6))
    assert agg.average == (round(sum(current.values()) / len(current), 4) if current else 0.0)


@given(json_scalars)
def test_a_rating_is_exactly_an_integer_from_one_to_five(value):
    expected = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5
    assert is_rating(value) is expected


cursor_keys = st.fixed_dictionaries({
    "book_id": st.one_of(st.integers(1, 10**9).map(lambda n: f"OL{n}W"),
                         st.integers(1, 10**7).map(lambda n: f"GB{n}")),
    "user_id": st.text(alphabet=sorted(USER_ID_CHARACTERS), min_size=1, max_size=64),
    "updated_at": st.datetimes(min_value=datetime(1970, 1, 1)).map(
        lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%fZ")),
})


@given(cursor_keys)
def test_cursor_round_trips_and_is_url_safe(key):
    cursor = encode_cursor(key)
    assert set(cursor) <= set(string.ascii_letters + string.digits + "-_")
    assert decode_cursor(cursor) == key


def test_no_key_means_no_cursor():
    assert encode_cursor(None) is None and encode_cursor({}) is None


@pytest.mark.parametrize("changed", [
    {"book_id": "nope"}, {"user_id": ""}, {"user_id": "a b"}, {"user_id": "a" * 65}, {"user_id": "a\n"},
    {"updated_at": "yesterday"},
    {"updated_at": 7}, {"book_id": None}, {"extra": "x"},
])
def test_a_cursor_with_values_this_api_never_produces_is_refused(changed):
    key = {"book_id": "OL1W", "user_id": "u", "updated_at": "2026-01-01T00:00:00.000000Z", **changed}
    with pytest.raises(ValueError):
        decode_cursor(encode_cursor(key))


@pytest.mark.parametrize("cursor", ["", "!!!", "e30", "W10", "bm90IGpzb24",
                                    encode_cursor({"book_id": "OL1W"})])
def test_a_cursor_that_is_not_a_token_is_refused(cursor):
    with pytest.raises(ValueError):
        decode_cursor(cursor)


# Shelves

shelves = st.sampled_from(SHELVES)


@given(st.none() | shelves, st.none() | stars)
def test_a_rating_puts_a_book_on_no_shelf_on_read_and_leaves_any_other_shelf(shelf, rating):
    after = shelf_after_rating(shelf, rating)
    if rating is not None and shelf is None:
        assert after == "read"
    else:
        assert after == shelf  # already shelved, or a removed rating: the shelf stays


def test_kind_of_a_shelving():
    assert [shelving_kind(None, "read"), shelving_kind("read", "want_to_read"), shelving_kind("read", "read"),
            shelving_kind("read", None)] == [ShelvingKind.SHELVED, ShelvingKind.MOVED, ShelvingKind.UNCHANGED,
                                             ShelvingKind.UNSHELVED]


@given(st.none() | shelves, st.none() | shelves)
def test_a_deleted_book_takes_only_the_removal_of_an_existing_shelf_entry(previous, new):
    assert allowed_on_deleted_book(previous, new) == (previous is not None and new is None)


@given(st.lists(st.tuples(st.integers(0, 9), st.none() | shelves), max_size=60))
def test_any_sequence_of_shelvings_matches_counting_the_shelves_from_scratch(moves):
    """Oracle: each shelf's readers, counted from the final entries."""
    on: dict[int, str] = {}
    counts = ShelfCounts()
    for reader, shelf in moves:
        previous = on.get(reader)
        assert previous is None or counts.holds(previous)
        counts = counts.apply(previous, shelf)
        if shelf is None:
            on.pop(reader, None)
        else:
            on[reader] = shelf
    assert counts.counts == {s: list(on.values()).count(s) for s in SHELVES}


def test_shelf_counts_from_a_record_tolerate_missing_shelves_and_never_go_negative():
    assert ShelfCounts.from_record({"book_id": "OL1W"}).counts == {s: 0 for s in SHELVES}
    partial = ShelfCounts.from_record({"shelf_counts": {"read": 2, "elsewhere": 9}})
    assert partial.counts == {"want_to_read": 0, "currently_reading": 0, "read": 2}
    assert not partial.holds("want_to_read") and partial.apply("want_to_read", None) == partial


@pytest.mark.parametrize("value", ["read", "want_to_read", "currently_reading"])
def test_the_three_shelves_are_shelves(value):
    assert is_shelf(value)


@pytest.mark.parametrize("value", ["Read", "already_read", "", None, 1, "read "])
def test_anything_else_is_not_a_shelf(value):
    assert not is_shelf(value)


def test_a_shelf_cursor_round_trips_and_names_its_shelf():
    key = {"book_id": "OL1W", "user_id": "ada", "user_shelf": user_shelf("ada", "read"),
           "shelved_at": "2026-01-01T00:00:00.000000Z"}
    assert decode_cursor(encode_cursor(key)) == key


@pytest.mark.parametrize("user_shelf_value", ["bob#read", "ada#unknown", "ada", "ada#read#read"])
def test_a_shelf_cursor_naming_another_readers_or_no_shelf_is_refused(user_shelf_value):
    key = {"book_id": "OL1W", "user_id": "ada", "user_shelf": user_shelf_value,
           "shelved_at": "2026-01-01T00:00:00.000000Z"}
    with pytest.raises(ValueError):
        decode_cursor(encode_cursor(key))


def test_a_cursor_mixing_a_rating_and_a_shelf_key_is_refused():
    key = {"book_id": "OL1W", "user_id": "ada", "updated_at": "2026-01-01T00:00:00.000000Z",
           "shelved_at": "2026-01-01T00:00:00.000000Z"}
    with pytest.raises(ValueError):
        decode_cursor(encode_cursor(key))
