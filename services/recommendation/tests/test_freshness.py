"""Whether a ratings read shows the latest accepted change: the pure rule."""

from __future__ import annotations

import pytest

from bookrec_recommendation.freshness import AcceptedChange, RatingsRead, shows

T0, T1, T2 = "2026-12-02T09:00:00.000000Z", "2026-12-02T09:00:01.000000Z", "2026-12-02T09:00:02.000000Z"


def read(**books: tuple[int, str]) -> RatingsRead:
    return RatingsRead({b: stars for b, (stars, _) in books.items()}, {b: at for b, (_, at) in books.items()})


@pytest.mark.parametrize(("ratings", "change", "expected"), [
    (read(), None, True),  # nothing recorded: nothing to wait for
    (read(OL1W=(5, T1)), AcceptedChange(T1, "OL1W", False), True),  # the rating itself
    (read(OL1W=(5, T2)), AcceptedChange(T1, "OL1W", False), True),  # re-rated since
    (read(OL1W=(3, T0)), AcceptedChange(T1, "OL1W", False), False),  # the re-rating not shown yet
    (read(OL2W=(5, T2)), AcceptedChange(T1, "OL1W", False), False),  # the new rating not shown yet
    (read(OL2W=(5, T0)), AcceptedChange(T1, "OL1W", True), True),  # removed: gone from the read
    (read(OL1W=(5, T0)), AcceptedChange(T1, "OL1W", True), False),  # removed, still shown
    (read(OL1W=(4, T2)), AcceptedChange(T1, "OL1W", True), True),  # removed, then rated again
], ids=["none", "rated", "rerated-since", "rerating-lags", "rating-lags", "removed", "removal-lags",
        "removed-then-rated"])
def test_a_read_shows_a_change_only_once_it_holds_it(ratings, change, expected):
    assert shows(ratings, change) is expected


def test_a_change_survives_its_encoding_and_sorts_by_time():
    earlier, later = AcceptedChange(T0, "OL9W", True), AcceptedChange(T1, "OL1W", False)
    assert AcceptedChange.decode(later.encode()) == later
    assert AcceptedChange.decode(earlier.encode()) == earlier
    assert earlier.encode() < later.encode()
    assert AcceptedChange.decode("garbage") is None and AcceptedChange.decode(f"{T0} OL1W 2") is None


def shelves(ratings: RatingsRead | None = None, **books: str) -> RatingsRead:
    ratings = ratings or read()
    return RatingsRead(ratings.stars, ratings.updated_at, books)


@pytest.mark.parametrize(("reader", "change", "expected"), [
    (shelves(OL1W=T1), AcceptedChange(T1, "OL1W", False, "shelf"), True),  # the shelving itself
    (shelves(OL1W=T2), AcceptedChange(T1, "OL1W", False, "shelf"), True),  # moved to another shelf since
    (shelves(OL1W=T0), AcceptedChange(T1, "OL1W", False, "shelf"), False),  # the move not shown yet
    (shelves(), AcceptedChange(T1, "OL1W", False, "shelf"), False),  # the shelving not shown yet
    (shelves(read(OL1W=(5, T2))), AcceptedChange(T1, "OL1W", False, "shelf"), False),  # a rating is no shelving
    (shelves(OL2W=T0), AcceptedChange(T1, "OL1W", True, "shelf"), True),  # taken off: gone from the read
    (shelves(OL1W=T0), AcceptedChange(T1, "OL1W", True, "shelf"), False),  # taken off, still shown
    (shelves(OL1W=T2), AcceptedChange(T1, "OL1W", True, "shelf"), True),  # taken off, then shelved again
    (shelves(read(OL1W=(5, T0))), AcceptedChange(T1, "OL1W", True, "shelf"), True),  # rated, not shelved
    (shelves(OL1W=T2), AcceptedChange(T1, "OL1W", False), False),  # a shelving is no rating
], ids=["shelved", "moved-since", "move-lags", "shelving-lags", "rating-is-not-a-shelving", "taken-off",
        "taking-off-lags", "taken-off-then-shelved", "rated-not-shelved", "shelving-is-not-a-rating"])
def test_a_read_shows_a_shelving_only_once_its_shelves_hold_it(reader, change, expected):
    assert shows(reader, change) is expected


def test_a_shelving_survives_its_encoding_and_a_ratings_encoding_is_as_before():
    shelving = AcceptedChange(T1, "OL1W", True, "shelf")
    assert AcceptedChange.decode(shelving.encode()) == shelving and shelving.encode() == f"{T1} OL1W 1 shelf"
    assert AcceptedChange(T0, "OL1W", False).encode() == f"{T0} OL1W 0"  # as recorded before shelvings
    assert AcceptedChange(T0, "OL9W", False, "shelf").encode() < AcceptedChange(T1, "OL1W", False).encode()
    assert AcceptedChange.decode(f"{T0} OL1W 0 rating") is None and AcceptedChange.decode(f"{T0} OL1W 0 x") is None


def test_a_reader_with_only_shelves_is_not_empty():
    assert read().empty and not shelves(OL1W=T0).empty
