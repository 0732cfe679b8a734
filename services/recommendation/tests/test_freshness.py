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
