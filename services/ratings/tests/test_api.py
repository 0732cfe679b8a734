"""ratings over HTTP against a real moto server, with a real HTTP recommender stand-in."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from bookrec_common.catalog import with_derived_attributes
from bookrec_common.dynamo import from_item, to_item

from bookrec_ratings.app import create_app
from bookrec_ratings.invalidation import INVALIDATION_FAILURES
from bookrec_ratings.settings import RatingsSettings

BOOK = "OL45883W"
OTHER = "OL2W"


def seed_books(dynamodb, tables):
    for book_id, title in ((BOOK, "The Republic"), (OTHER, "Meditations")):
        dynamodb.put_item(TableName=tables["books"],
                          Item=to_item(with_derived_attributes({"book_id": book_id, "title": title})))


@pytest.fixture
async def client(tables, dynamodb, recommender):
    seed_books(dynamodb, tables)
    settings = RatingsSettings(books_table=tables["books"], ratings_table=tables["ratings"], access_log=False,
                               recommendation_url=recommender.url, internal_token="s3cret")
    async with AsyncTestClient(create_app(settings)) as c:
        yield c


def failures() -> float:
    return INVALIDATION_FAILURES._value.get()


def book_item(dynamodb, tables, book_id=BOOK):
    return from_item(dynamodb.get_item(TableName=tables["books"], Key={"book_id": {"S": book_id}})["Item"])


async def test_new_rating_is_201_and_updates_the_book_aggregate(client, dynamodb, tables):
    r = await client.post(f"/books/{BOOK}/rate", json={"user_id": "alice", "rating": 4})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["rating"] == 4 and body["previous_rating"] is None
    assert body["created_at"] == body["updated_at"]
    book = book_item(dynamodb, tables)
    assert (book["rating_count"], book["rating_sum"], book["avg_rating"]) == (1, 4, 4.0)


async def test_rerating_is_200_and_moves_sum_by_difference(client, dynamodb, tables):
    await client.post(f"/books/{BOOK}/rate", json={"user_id": "alice", "rating": 2})
    await client.post(f"/books/{BOOK}/rate", json={"user_id": "bob", "rating": 5})
    r = await client.post(f"/books/{BOOK}/rate", json={"user_id": "alice", "rating": 4})
    assert r.status_code == 200 and r.json()["previous_rating"] == 2
    book = book_item(dynamodb, tables)
    assert (book["rating_count"], book["rating_sum"]) == (2, 9)
    assert book["ratings_distribution"] == {"1": 0, "2": 0, "3": 0, "4": 1, "5": 1}


async def test_every_accepted_change_invalidates_with_request_id_and_internal_token(client, recommender):
    await client.post(f"/books/{BOOK}/rate", json={"user_id": "alice", "rating": 3},
                      headers={"X-Request-ID": "rid-1"})
    await client.delete(f"/books/{BOOK}/ratings/alice", headers={"X-Request-ID": "rid-2"})
    assert recommender.calls == [("alice", "rid-1", "s3cret"), ("alice", "rid-2", "s3cret")]


async def test_dot_user_ids_invalidate_their_own_key(client, recommender):
    for user in (".", "..", "a..b"):
        r = await client.post(f"/books/{BOOK}/rate", json={"user_id": user, "rating": 3})
        assert r.status_code == 201
    assert [user for user, _, _ in recommender.calls] == [".", "..", "a..b"]


async def test_the_generated_request_id_is_the_one_forwarded(client, recommender):
    r = await client.post(f"/books/{BOOK}/rate", json={"user_id": "alice", "rating": 3})
    assert r.headers["X-Request-ID"] and recommender.calls == [("alice", r.headers["X-Request-ID"], "s3cret")]


async def test_a_recommender_blip_is_retried_with_the_same_request_id(client, recommender):
    recommender.fail_first = 2
    before = failures()
    r = await client.post(f"/books/{BOOK}/rate", json={"user_id": "alice", "rating": 3},
                          headers={"X-Request-ID": "rid-blip"})
    assert r.status_code == 201
    assert recommender.calls == [("alice", "rid-blip", "s3cret")] * 3  # two 503s, then confirmed
    assert failures() == before


async def test_a_hung_recommender_times_out_is_counted_and_the_rating_stands(client, recommender, dynamodb,
                                                                            tables):
    recommender.delay = 0.6  # well beyond the 0.3 s budget of each attempt
    before = failures()
    r = await client.post(f"/books/{BOOK}/rate", json={"user_id": "alice", "rating": 5})
    assert r.status_code == 201 and len(recommender.calls) == 3  # first try and two retries
    assert failures() == before + 1 and book_item(dynamodb, tables)["rating_count"] == 1


async def test_a_refusing_recommender_is_not_retried(client, recommender):
    recommender.status = 401  # wrong internal token: configuration, retrying cannot help
    before = failures()
    r = await client.post(f"/books/{BOOK}/rate", json={"user_id": "alice", "rating": 5})
    assert r.status_code == 201 and len(recommender.calls) == 1 and failures() == before + 1


async def test_refused_changes_invalidate_nothing(client, recommender):
    assert (await client.post("/books/OL999W/rate", json={"user_id": "al", "rating": 3})).status_code == 404
    assert (await client.delete(f"/books/{BOOK}/ratings/alice")).status_code == 404
    assert recommender.calls == []


@pytest.mark.parametrize("payload", [
    {"user_id": "alice", "rating": "5"},
    {"user_id": "alice", "rating": 5.0},
    {"user_id": "alice", "rating": 4.5},
    {"user_id": "alice", "rating": True},
    {"user_id": "alice", "rating": None},
    {"user_id": "alice", "rating": 0},
    {"user_id": "alice", "rating": 6},
    {"user_id": "alice"},
    {"rating": 3},
    {"user_id": "", "rating": 3},
    {"user_id": "a" * 65, "rating": 3},
    {"user_id": "bad user", "rating": 3},
    {"user_id": "al/ice", "rating": 3},
    {"user_id": "alice\n", "rating": 3},
    {"user_id": 7, "rating": 3},
    {"user_id": "alice", "rating": 3, "extra": 1},
    [],
])
async def test_bad_rating_requests_are_400_and_change_nothing(client, dynamodb, tables, recommender, payload):
    before = book_item(dynamodb, tables)
    r = await client.post(f"/books/{BOOK}/rate", json=payload)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json") and r.json()["errors"]
    assert book_item(dynamodb, tables) == before
    assert dynamodb.scan(TableName=tables["ratings"])["Count"] == 0 and recommender.calls == []


async def test_unknown_book_is_404_and_malformed_book_is_400(client, dynamodb, tables):
    assert (await client.post("/books/OL999W/rate", json={"user_id": "a", "rating": 3})).status_code == 404
    assert (await client.post("/books/nope/rate", json={"user_id": "a", "rating": 3})).status_code == 400
    assert (await client.get("/books/OL999W/ratings")).status_code == 404
    assert dynamodb.scan(TableName=tables["ratings"])["Count"] == 0


async def test_delete_removes_the_contribution(client, dynamodb, tables):
    await client.post(f"/books/{BOOK}/rate", json={"user_id": "alice", "rating": 5})
    await client.post(f"/books/{BOOK}/rate", json={"user_id": "bob", "rating": 1})
    assert (await client.delete(f"/books/{BOOK}/ratings/alice")).status_code == 204
    book = book_item(dynamodb, tables)
    assert (book["rating_count"], book["rating_sum"]) == (1, 1)
    again = await client.delete(f"/books/{BOOK}/ratings/alice")
    assert again.status_code == 404 and again.json()["code"] == "rating_not_found"


async def test_unrated_book_has_zeros_not_404(client):
    body = (await client.get(f"/books/{OTHER}/ratings")).json()
    assert body == {"book_id": OTHER, "average_rating": 0.0, "total_ratings": 0,
                    "ratings_distribution": {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0}, "ratings": [],
                    "next_cursor": None}


async def test_book_and_user_listings_are_newest_first_with_cursor_paging(client):
    users = [f"u{i}" for i in range(7)]
    for i, user in enumerate(users):
        await client.post(f"/books/{BOOK}/rate", json={"user_id": user, "rating": i % 5 + 1})
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(f"/books/{BOOK}/ratings", params=params)).json()
        seen += [r["user_id"] for r in page["ratings"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(users)) and page["total_ratings"] == 7
    for book in (BOOK, OTHER):
        await client.post(f"/books/{book}/rate", json={"user_id": "reader", "rating": 3})
    mine = (await client.get("/users/reader/ratings", params={"limit": 1})).json()
    assert mine["count"] == 1 and mine["ratings"][0]["book_id"] == OTHER and mine["next_cursor"]
    rest = (await client.get("/users/reader/ratings", params={"cursor": mine["next_cursor"]})).json()
    assert [r["book_id"] for r in rest["ratings"]] == [BOOK]
    none = (await client.get("/users/nobody/ratings")).json()
    assert none == {"user_id": "nobody", "count": 0, "ratings": [], "next_cursor": None}


async def test_a_last_full_page_has_no_cursor(client):
    for user in ("a", "b", "c", "d"):
        await client.post(f"/books/{BOOK}/rate", json={"user_id": user, "rating": 4})
    first = (await client.get(f"/books/{BOOK}/ratings", params={"limit": 2})).json()
    params = {"limit": 2, "cursor": first["next_cursor"]}
    second = (await client.get(f"/books/{BOOK}/ratings", params=params)).json()
    assert [r["user_id"] for r in first["ratings"] + second["ratings"]] == ["d", "c", "b", "a"]
    assert second["next_cursor"] is None
    whole = (await client.get(f"/books/{BOOK}/ratings", params={"limit": 4})).json()
    assert len(whole["ratings"]) == 4 and whole["next_cursor"] is None


async def test_a_re_rating_moves_the_rating_to_the_top_of_the_recent_list(client):
    for user in ("a", "b"):
        await client.post(f"/books/{BOOK}/rate", json={"user_id": user, "rating": 2})
    await client.post(f"/books/{BOOK}/rate", json={"user_id": "a", "rating": 5})
    listing = (await client.get(f"/books/{BOOK}/ratings")).json()
    assert [(r["user_id"], r["rating"]) for r in listing["ratings"]] == [("a", 5), ("b", 2)]
    assert (listing["total_ratings"], listing["average_rating"]) == (2, 3.5)


@pytest.mark.parametrize("path", [
    f"/books/{BOOK}/ratings?limit=0", f"/books/{BOOK}/ratings?limit=101", f"/books/{BOOK}/ratings?limit=x",
    f"/books/{BOOK}/ratings?cursor=garbage", "/users/bad%20user/ratings", "/users/alice%0A/ratings",
    "/users/alice/ratings?cursor=e30",
])
async def test_bad_listing_parameters_are_400(client, path):
    r = await client.get(path)
    assert r.status_code == 400 and r.json()["status"] == 400


async def test_a_cursor_from_another_book_is_refused(client):
    for user in ("a", "b"):
        await client.post(f"/books/{BOOK}/rate", json={"user_id": user, "rating": 3})
    cursor = (await client.get(f"/books/{BOOK}/ratings", params={"limit": 1})).json()["next_cursor"]
    assert (await client.get(f"/books/{OTHER}/ratings", params={"cursor": cursor})).status_code == 400


async def test_a_down_recommender_never_fails_a_rating(tables, dynamodb):
    seed_books(dynamodb, tables)
    settings = RatingsSettings(books_table=tables["books"], ratings_table=tables["ratings"], access_log=False,
                               recommendation_url="http://127.0.0.1:9", internal_token="x")
    before = INVALIDATION_FAILURES._value.get()
    async with AsyncTestClient(create_app(settings)) as c:
        r = await c.post(f"/books/{BOOK}/rate", json={"user_id": "alice", "rating": 5})
        assert r.status_code == 201
        metrics = (await c.get("/metrics")).text
    assert INVALIDATION_FAILURES._value.get() == before + 1
    assert "invalidation_failures_total" in metrics
    assert book_item(dynamodb, tables)["rating_count"] == 1
