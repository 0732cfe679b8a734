"""The response checks accept contract answers and reject each kind of wrong one."""

from __future__ import annotations

import json

import pytest

from loadtest import contract
from loadtest.validators import (
    ContractViolation,
    check_advanced,
    check_autocomplete,
    check_batch,
    check_book,
    check_book_ratings,
    check_rate,
    check_recommendations,
    check_search,
    check_shelf,
    check_shelving,
    check_similar,
    check_status,
    check_trending,
    check_user_ratings,
    decode,
    describe_error,
)


def summary(book_id="OL1W", title="Zen and the Art of Motorcycle Maintenance", score=1.0, year=1974,
            avg=4.2, count=10):
    return {"book_id": book_id, "title": title, "authors": ["Robert M. Pirsig"], "first_publish_year": year,
            "avg_rating": avg, "rating_count": count, "cover_id": None, "score": score}


def page(items, *, limit=20, offset=0, total=None, query="zen"):
    return {"query": query, "total": len(items) + offset if total is None else total, "count": len(items),
            "offset": offset, "limit": limit, "items": items}


def as_struct(body, shape):
    return decode(json.dumps(body).encode(), shape)


def book(book_id="OL1W", distribution=None, **overrides):
    distribution = distribution or {"1": 0, "2": 0, "3": 1, "4": 1, "5": 2}
    count = sum(distribution.values())
    avg = round(sum(int(s) * n for s, n in distribution.items()) / count, 4) if count else 0.0
    return {"book_id": book_id, "title": "T", "subtitle": None, "authors": [{"author_id": None, "name": "A"}],
            "subjects": [], "first_publish_year": None, "isbn_13": [], "language": "eng", "description": None,
            "cover_id": None, "cover_url": None, "avg_rating": avg, "rating_count": count,
            "ratings_distribution": distribution, "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z", **overrides}


def test_decode_rejects_a_wrong_shape_and_names_the_field():
    with pytest.raises(ContractViolation, match=r"items\[0\].score"):
        decode(json.dumps(page([{**summary(), "score": "high"}])).encode(), contract.SearchPage)
    with pytest.raises(ContractViolation):
        decode(b"<html>bad gateway</html>", contract.SearchPage)


def test_decode_accepts_extra_fields():
    body = {**page([summary()]), "fallback": "any_word"}
    assert decode(json.dumps(body).encode(), contract.SearchPage).count == 1


def test_status_failure_reports_problem_details():
    problem = json.dumps({"type": "urn:x", "title": "Not found", "status": 404, "detail": "book OL9W not found",
                          "code": "book_not_found"}).encode()
    with pytest.raises(ContractViolation, match="HTTP 404 book_not_found: book OL9W not found"):
        check_status(404, (200,), problem)
    assert describe_error(502, b"oops").startswith("HTTP 502")
    check_status(201, (200, 201), b"")


def test_search_accepts_a_ranked_page():
    check_search(as_struct(page([summary("OL1W", score=2.0), summary("OL2W", score=1.0)]), contract.SearchPage),
                 query="zen", limit=20, offset=0, expect_results=True)


@pytest.mark.parametrize("body, reason", [
    (page([]), "no results"),
    (page([summary("OL1W", score=1.0), summary("OL2W", score=2.0)]), "not ranked"),
    (page([summary("OL1W"), summary("OL1W")]), "twice"),
    ({**page([summary()]), "count": 2}, "count 2 but 1 items"),
    (page([summary()], limit=5), "paging echoed"),
    (page([summary(book_id="12345")]), "malformed book ids"),
    (page([summary()], total=0), "total 0"),
])
def test_search_rejects(body, reason):
    with pytest.raises(ContractViolation, match=reason):
        check_search(as_struct(body, contract.SearchPage), query="zen", limit=20, offset=0, expect_results=True)


def test_empty_search_is_fine_when_nothing_was_expected():
    check_search(as_struct(page([]), contract.SearchPage), query="zzz", limit=20, offset=0, expect_results=False)


def test_autocomplete_prefix_is_normalised_like_titles():
    body = as_struct(page([summary(title="Zen and the Art"), summary("OL2W", title="Zénith")], limit=10),
                     contract.SearchPage)
    check_autocomplete(body, prefix="ZE", limit=10)
    with pytest.raises(ContractViolation, match="do not start with"):
        check_autocomplete(body, prefix="zen a", limit=10)
    with pytest.raises(ContractViolation, match="no suggestions"):
        check_autocomplete(as_struct(page([], limit=10), contract.SearchPage), prefix="ze", limit=10)


def test_advanced_checks_visible_filters_and_sort():
    items = [summary("OL1W", year=1990, avg=4.5), summary("OL2W", year=1985, avg=3.0)]
    body = as_struct(page(items), contract.SearchPage)
    check_advanced(body, criteria={"min_year": 1980, "max_year": 1995, "sort": "year", "order": "desc"},
                   limit=20, offset=0, expect_results=True)
    check_advanced(body, criteria={"min_rating": 3.0, "sort": "rating"}, limit=20, offset=0, expect_results=True)
    with pytest.raises(ContractViolation, match="max_year"):
        check_advanced(body, criteria={"max_year": 1986}, limit=20, offset=0, expect_results=True)
    with pytest.raises(ContractViolation, match="min_rating"):
        check_advanced(body, criteria={"min_rating": 4}, limit=20, offset=0, expect_results=True)
    with pytest.raises(ContractViolation, match="sorted by year asc"):
        check_advanced(body, criteria={"sort": "year", "order": "asc"}, limit=20, offset=0, expect_results=True)
    no_year = as_struct(page([summary(year=None)]), contract.SearchPage)
    with pytest.raises(ContractViolation, match="min_year"):
        check_advanced(no_year, criteria={"min_year": 1900}, limit=20, offset=0, expect_results=True)


def test_book_aggregates_must_agree():
    check_book(as_struct(book(), contract.Book), book_id="OL1W")
    check_book(as_struct(book(distribution={s: 0 for s in "12345"}), contract.Book), book_id="OL1W")
    with pytest.raises(ContractViolation, match="asked for OL2W"):
        check_book(as_struct(book(), contract.Book), book_id="OL2W")
    with pytest.raises(ContractViolation, match="distribution sums to 4, count says 5"):
        check_book(as_struct(book(rating_count=5), contract.Book), book_id="OL1W")
    with pytest.raises(ContractViolation, match="average"):
        check_book(as_struct(book(avg_rating=1.0), contract.Book), book_id="OL1W")
    with pytest.raises(ContractViolation, match="keys"):
        check_book(as_struct(book(distribution={"1": 1, "2": 0, "3": 0, "4": 0}, avg_rating=1.0, rating_count=1),
                             contract.Book), book_id="OL1W")


def test_batch_keeps_order_and_accounts_for_every_id():
    body = {"count": 2, "items": [book("OL2W"), book("OL1W")], "missing": ["OL9W"]}
    check_batch(as_struct(body, contract.Batch), requested=["OL2W", "OL9W", "OL1W", "OL2W"])
    with pytest.raises(ContractViolation, match="request order"):
        check_batch(as_struct(body, contract.Batch), requested=["OL1W", "OL2W", "OL9W"])
    with pytest.raises(ContractViolation, match="catalogue books reported missing"):
        check_batch(as_struct(body, contract.Batch), requested=["OL2W", "OL9W", "OL1W"], known=["OL9W"])
    with pytest.raises(ContractViolation, match="neither returned nor missing"):
        check_batch(as_struct({**body, "missing": []}, contract.Batch), requested=["OL2W", "OL9W", "OL1W"])


def rate_body(previous):
    return {"book_id": "OL1W", "user_id": "u1", "rating": 4, "previous_rating": previous,
            "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-02T00:00:00Z"}


def test_rate_status_and_previous_rating():
    check_rate(as_struct(rate_body(None), contract.Rate), status=201, book_id="OL1W", user_id="u1", rating=4,
               previous=None)
    check_rate(as_struct(rate_body(2), contract.Rate), status=200, book_id="OL1W", user_id="u1", rating=4,
               previous=2)
    check_rate(as_struct(rate_body(3), contract.Rate), status=200, book_id="OL1W", user_id="u1", rating=4)
    with pytest.raises(ContractViolation, match="status 200 with previous_rating None"):
        check_rate(as_struct(rate_body(None), contract.Rate), status=200, book_id="OL1W", user_id="u1", rating=4)
    with pytest.raises(ContractViolation, match="we had rated 5"):
        check_rate(as_struct(rate_body(2), contract.Rate), status=200, book_id="OL1W", user_id="u1", rating=4,
                   previous=5)
    with pytest.raises(ContractViolation, match="echoed"):
        check_rate(as_struct(rate_body(None), contract.Rate), status=201, book_id="OL1W", user_id="u1", rating=5)
    with pytest.raises(ContractViolation, match="rating"):
        decode(json.dumps({**rate_body(None), "rating": "4"}).encode(), contract.Rate)


def test_book_ratings_newest_first_and_consistent():
    body = {"book_id": "OL1W", "average_rating": 4.0, "total_ratings": 2,
            "ratings_distribution": {"1": 0, "2": 0, "3": 1, "4": 0, "5": 1}, "next_cursor": None,
            "ratings": [{"user_id": "a", "rating": 5, "updated_at": "2024-02-01T00:00:00Z"},
                        {"user_id": "b", "rating": 3, "updated_at": "2024-01-01T00:00:00Z"}]}
    check_book_ratings(as_struct(body, contract.BookRatings), book_id="OL1W", limit=50)
    reordered = {**body, "ratings": body["ratings"][::-1]}
    with pytest.raises(ContractViolation, match="newest first"):
        check_book_ratings(as_struct(reordered, contract.BookRatings), book_id="OL1W", limit=50)
    with pytest.raises(ContractViolation, match="more ratings listed"):
        check_book_ratings(as_struct({**body, "total_ratings": 1, "average_rating": 5.0,
                                      "ratings_distribution": {"1": 0, "2": 0, "3": 0, "4": 0, "5": 1}},
                                     contract.BookRatings), book_id="OL1W", limit=50)


def test_user_ratings_show_what_we_just_rated():
    body = {"user_id": "u1", "count": 2, "next_cursor": None,
            "ratings": [{"book_id": "OL2W", "rating": 2, "updated_at": "2024-02-01T00:00:00Z"},
                        {"book_id": "OL1W", "rating": 5, "updated_at": "2024-01-01T00:00:00Z"}]}
    page_ = as_struct(body, contract.UserRatings)
    check_user_ratings(page_, user_id="u1", limit=50, must_contain={"OL2W": 2, "OL1W": 5})
    with pytest.raises(ContractViolation, match="just rated OL2W 4"):
        check_user_ratings(page_, user_id="u1", limit=50, must_contain={"OL2W": 4})
    with pytest.raises(ContractViolation, match="just rated OL3W 1"):
        check_user_ratings(page_, user_id="u1", limit=50, must_contain={"OL3W": 1})
    with pytest.raises(ContractViolation, match="count 3"):
        check_user_ratings(as_struct({**body, "count": 3}, contract.UserRatings), user_id="u1", limit=50)


def reco_body(ids, source="cache"):
    return {"user_id": "u1", "strategy": "item_knn", "source": source, "model_version": "v1",
            "recommendations": [{"book_id": b, "title": "T", "authors": ["A"], "score": 1.0 / (i + 1),
                                 "reason": "because"} for i, b in enumerate(ids)]}


def test_recommendations_exclude_rated_books():
    check_recommendations(as_struct(reco_body(["OL1W", "OL2W"]), contract.Recommendations), user_id="u1",
                          limit=10, already_rated=["OL3W"])
    with pytest.raises(ContractViolation, match="already rated"):
        check_recommendations(as_struct(reco_body(["OL1W", "OL2W"]), contract.Recommendations), user_id="u1",
                              limit=10, already_rated=["OL2W"])
    with pytest.raises(ContractViolation, match="0 recommendations"):
        check_recommendations(as_struct(reco_body([]), contract.Recommendations), user_id="u1", limit=10)
    with pytest.raises(ContractViolation, match="recommended twice"):
        check_recommendations(as_struct(reco_body(["OL1W", "OL1W"]), contract.Recommendations), user_id="u1",
                              limit=10)
    with pytest.raises(ContractViolation, match="source"):
        decode(json.dumps(reco_body(["OL1W"], source="redis")).encode(), contract.Recommendations)


def shelving(shelf="want_to_read", previous=None):
    return as_struct({"book_id": "OL1W", "user_id": "u1", "shelf": shelf, "previous_shelf": previous,
                      "shelved_at": "2026-12-06T10:00:00.000000Z"}, contract.Shelving)


def test_shelving_status_and_previous_shelf():
    check_shelving(shelving(), status=201, book_id="OL1W", user_id="u1", shelf="want_to_read")
    check_shelving(shelving("read", "want_to_read"), status=200, book_id="OL1W", user_id="u1", shelf="read",
                   previous="want_to_read")
    with pytest.raises(ContractViolation, match="status 200 with previous_shelf None"):
        check_shelving(shelving(), status=200, book_id="OL1W", user_id="u1", shelf="want_to_read")
    with pytest.raises(ContractViolation, match="previous_shelf read, we had want_to_read"):
        check_shelving(shelving("currently_reading", "read"), status=200, book_id="OL1W", user_id="u1",
                       shelf="currently_reading", previous="want_to_read")
    with pytest.raises(ContractViolation, match="echoed"):
        check_shelving(shelving(), status=201, book_id="OL2W", user_id="u1", shelf="want_to_read")


def shelf_page(entries):
    items = [{"book_id": b, "title": t, "authors": [], "cover_id": None, "shelved_at": at} for b, t, at in entries]
    return as_struct({"user_id": "u1", "shelf": "read", "count": len(items), "items": items, "next_cursor": None},
                     contract.ReaderShelf)


def test_shelf_newest_first_shows_what_was_just_shelved_with_its_title():
    page_ = shelf_page([("OL2W", "B", "2026-12-06T10:00:02Z"), ("OL1W", "A", "2026-12-06T10:00:01Z")])
    check_shelf(page_, user_id="u1", shelf="read", limit=50, must_contain=["OL1W"])
    with pytest.raises(ContractViolation, match="does not show it"):
        check_shelf(page_, user_id="u1", shelf="read", limit=50, must_contain=["OL3W"])
    with pytest.raises(ContractViolation, match="not newest first"):
        check_shelf(shelf_page([("OL1W", "A", "2026-12-06T10:00:01Z"), ("OL2W", "B", "2026-12-06T10:00:02Z")]),
                    user_id="u1", shelf="read", limit=50)
    with pytest.raises(ContractViolation, match="without its title"):
        check_shelf(shelf_page([("OL1W", None, "2026-12-06T10:00:01Z")]), user_id="u1", shelf="read", limit=50,
                    must_contain=["OL1W"])


def listed(items, **head):
    return [{"book_id": b, "title": f"T{b}", "authors": [], "score": score, "reason": "412 readers rated both",
             **head} for b, score in items]


def test_similar_never_the_book_itself_ranked_with_reasons():
    ok = as_struct({"book_id": "OL1W", "items": listed([("OL2W", 0.9), ("OL3W", 0.5)])}, contract.SimilarBooks)
    check_similar(ok, book_id="OL1W", limit=10)
    for items, reason in (([("OL1W", 0.9)], "similar to itself"), ([], "0 similar books"),
                          ([("OL2W", 0.5), ("OL3W", 0.9)], "not ranked"), ([("OL2W", 0.9), ("OL2W", 0.5)], "twice")):
        with pytest.raises(ContractViolation, match=reason):
            check_similar(as_struct({"book_id": "OL1W", "items": listed(items)}, contract.SimilarBooks),
                          book_id="OL1W", limit=10)


def trending(window, items):
    return as_struct({"window": window, "items": [{"book_id": b, "title": f"T{b}", "authors": [], "events": e,
                                                   "score": s} for b, e, s in items]}, contract.Trending)


def test_trending_window_ranking_and_events():
    check_trending(trending("week", [("OL1W", 5, 5.0), ("OL2W", 3, 3.0)]), window="week", limit=10)
    check_trending(trending("now", []), window="now", limit=10)  # nothing above its usual: an empty list
    with pytest.raises(ContractViolation, match="asked for day"):
        check_trending(trending("week", []), window="day", limit=10)
    with pytest.raises(ContractViolation, match="not ranked"):
        check_trending(trending("week", [("OL1W", 3, 3.0), ("OL2W", 5, 5.0)]), window="week", limit=10)
    with pytest.raises(ContractViolation, match="without events"):
        check_trending(trending("week", [("OL1W", 0, 0.0)]), window="week", limit=10)
