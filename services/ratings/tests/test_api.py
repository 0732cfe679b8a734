"""ratings over HTTP against a real moto server, with a real HTTP recommender stand-in."""

from __future__ import annotations

import time

import pytest
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY

from bookrec_catalog.catalog import utc_now, with_derived_attributes
from bookrec_catalog.changes import CHANGE_SHARDS, CHANGES_INDEX, change_shard, tombstone
from bookrec_catalog.dynamo import from_item, to_item
from bookrec_local.dev_issuer import TokenIssuer
from bookrec_ratings.app import create_app
from bookrec_ratings.settings import RatingsSettings

BOOK = "OL45883W"
OTHER = "OL2W"


def seed_books(dynamodb, tables):
    for book_id, title in ((BOOK, "The Republic"), (OTHER, "Meditations")):
        dynamodb.put_item(TableName=tables["books"],
                          Item=to_item(with_derived_attributes({"book_id": book_id, "title": title})))


@pytest.fixture
async def client(tables, dynamodb, recommender, issuer):
    seed_books(dynamodb, tables)
    settings = RatingsSettings(books_table=tables["books"], ratings_table=tables["ratings"],
                               shelves_table=tables["shelves"], access_log=False,
                               recommendation_url=recommender.url, internal_token="s3cret",
                               **issuer.settings())
    async with AsyncTestClient(create_app(settings)) as c:
        yield c


async def rate(client, issuer, user, stars, book=BOOK):
    """POST a rating as `user`, with that user's token."""
    return await client.post(f"/books/{book}/rate", json={"user_id": user, "rating": stars},
                             headers=issuer.headers(user))


def failures() -> float:
    return REGISTRY.get_sample_value("invalidation_failures_total") or 0.0


def book_item(dynamodb, tables, book_id=BOOK):
    return from_item(dynamodb.get_item(TableName=tables["books"], Key={"book_id": {"S": book_id}})["Item"])


async def test_new_rating_is_201_and_updates_the_book_aggregate(issuer, client, dynamodb, tables):
    r = await rate(client, issuer, "alice", 4)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["rating"] == 4 and body["previous_rating"] is None
    assert body["created_at"] == body["updated_at"]
    book = book_item(dynamodb, tables)
    assert (book["rating_count"], book["rating_sum"], book["avg_rating"]) == (1, 4, 4.0)


async def test_rerating_is_200_and_moves_sum_by_difference(issuer, client, dynamodb, tables):
    await rate(client, issuer, "alice", 2)
    await rate(client, issuer, "bob", 5)
    r = await rate(client, issuer, "alice", 4)
    assert r.status_code == 200 and r.json()["previous_rating"] == 2
    book = book_item(dynamodb, tables)
    assert (book["rating_count"], book["rating_sum"]) == (2, 9)
    assert book["ratings_distribution"] == {"1": 0, "2": 0, "3": 0, "4": 1, "5": 1}


async def test_every_accepted_change_invalidates_with_request_id_and_internal_token(issuer, client,
                                                                                   recommender):
    await client.post(f"/books/{BOOK}/rate", json={"user_id": "alice", "rating": 3},
                      headers={**issuer.headers("alice"), "X-Request-ID": "rid-1"})
    await client.delete(f"/books/{BOOK}/ratings/alice",
                        headers={**issuer.headers("alice"), "X-Request-ID": "rid-2"})
    assert recommender.calls == [("alice", "rid-1", "s3cret"), ("alice", "rid-2", "s3cret")]


async def test_dot_user_ids_invalidate_their_own_key(issuer, client, recommender):
    for user in (".", "..", "a..b"):
        r = await rate(client, issuer, user, 3)
        assert r.status_code == 201
    assert [user for user, _, _ in recommender.calls] == [".", "..", "a..b"]


async def test_the_generated_request_id_is_the_one_forwarded(issuer, client, recommender):
    r = await rate(client, issuer, "alice", 3)
    assert r.headers["X-Request-ID"] and recommender.calls == [("alice", r.headers["X-Request-ID"], "s3cret")]


async def test_a_recommender_blip_is_retried_with_the_same_request_id(issuer, client, recommender):
    recommender.fail_first = 2
    before = failures()
    r = await client.post(f"/books/{BOOK}/rate", json={"user_id": "alice", "rating": 3},
                          headers={**issuer.headers("alice"), "X-Request-ID": "rid-blip"})
    assert r.status_code == 201
    assert recommender.calls == [("alice", "rid-blip", "s3cret")] * 3  # two 503s, then confirmed
    assert failures() == before


async def test_a_hung_recommender_times_out_is_counted_and_the_rating_stands(issuer, client, recommender,
                                                                            dynamodb,
                                                                            tables):
    recommender.delay = 0.6  # well beyond the 0.3 s budget of each attempt
    before = failures()
    r = await rate(client, issuer, "alice", 5)
    assert r.status_code == 201 and len(recommender.calls) == 3  # first try and two retries
    assert failures() == before + 1 and book_item(dynamodb, tables)["rating_count"] == 1


async def test_a_refusing_recommender_is_not_retried(issuer, client, recommender):
    recommender.status = 401  # wrong internal token: configuration, retrying cannot help
    before = failures()
    r = await rate(client, issuer, "alice", 5)
    assert r.status_code == 201 and len(recommender.calls) == 1 and failures() == before + 1


async def test_an_invalidation_the_recommender_could_not_apply_is_counted_not_retried(issuer, client,
                                                                                      recommender):
    # unavailable: the recommender's Redis did not answer, the stale entry lives until its TTL.
    outcomes = (("u1", "deleted", True), ("u2", "not_cached", True), ("u3", "disabled", True),
                ("u4", "unavailable", False))
    for user, cache, confirmed in outcomes:
        recommender.cache = cache
        before = failures()
        r = await rate(client, issuer, user, 4)
        assert r.status_code == 201 and [u for u, _, _ in recommender.calls].count(user) == 1, cache
        assert failures() == before + (0 if confirmed else 1), cache


async def test_refused_changes_invalidate_nothing(issuer, client, recommender):
    assert (await rate(client, issuer, "al", 3, "OL999W")).status_code == 404
    r = await client.delete(f"/books/{BOOK}/ratings/alice", headers=issuer.headers("alice"))
    assert r.status_code == 404
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
    {"user_id": "", "rating": 3},
    {"user_id": "a" * 65, "rating": 3},
    {"user_id": "bad user", "rating": 3},
    {"user_id": "al/ice", "rating": 3},
    {"user_id": "alice\n", "rating": 3},
    {"user_id": 7, "rating": 3},
    {"user_id": "alice", "rating": 3, "extra": 1},
    [],
])
async def test_bad_rating_requests_are_400_and_change_nothing(issuer, client, dynamodb, tables, recommender,
                                                              payload):
    before = book_item(dynamodb, tables)
    r = await client.post(f"/books/{BOOK}/rate", json=payload, headers=issuer.headers("alice"))
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json") and r.json()["errors"]
    assert book_item(dynamodb, tables) == before
    assert dynamodb.scan(TableName=tables["ratings"])["Count"] == 0 and recommender.calls == []


async def test_unknown_book_is_404_and_malformed_book_is_400(issuer, client, dynamodb, tables):
    assert (await rate(client, issuer, "a", 3, "OL999W")).status_code == 404
    assert (await rate(client, issuer, "a", 3, "nope")).status_code == 400
    assert (await client.get("/books/OL999W/ratings")).status_code == 404
    assert dynamodb.scan(TableName=tables["ratings"])["Count"] == 0


async def test_delete_removes_the_contribution(issuer, client, dynamodb, tables):
    await rate(client, issuer, "alice", 5)
    await rate(client, issuer, "bob", 1)
    r = await client.delete(f"/books/{BOOK}/ratings/alice", headers=issuer.headers("alice"))
    assert r.status_code == 204
    book = book_item(dynamodb, tables)
    assert (book["rating_count"], book["rating_sum"]) == (1, 1)
    again = await client.delete(f"/books/{BOOK}/ratings/alice", headers=issuer.headers("alice"))
    assert again.status_code == 404 and again.json()["code"] == "rating_not_found"


async def test_unrated_book_has_zeros_not_404(client):
    body = (await client.get(f"/books/{OTHER}/ratings")).json()
    assert body == {"book_id": OTHER, "average_rating": 0.0, "total_ratings": 0,
                    "ratings_distribution": {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0}, "ratings": [],
                    "next_cursor": None, "shelf_counts": {"want_to_read": 0, "currently_reading": 0, "read": 0}}


async def test_book_and_user_listings_are_newest_first_with_cursor_paging(issuer, client):
    users = [f"u{i}" for i in range(7)]
    for i, user in enumerate(users):
        await rate(client, issuer, user, i % 5 + 1)
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
        await rate(client, issuer, "reader", 3, book)
    mine = (await client.get("/users/reader/ratings", params={"limit": 1})).json()
    assert mine["count"] == 1 and mine["ratings"][0]["book_id"] == OTHER and mine["next_cursor"]
    rest = (await client.get("/users/reader/ratings", params={"cursor": mine["next_cursor"]})).json()
    assert [r["book_id"] for r in rest["ratings"]] == [BOOK]
    none = (await client.get("/users/nobody/ratings")).json()
    assert none == {"user_id": "nobody", "count": 0, "ratings": [], "next_cursor": None}


async def test_a_last_full_page_has_no_cursor(issuer, client):
    for user in ("a", "b", "c", "d"):
        await rate(client, issuer, user, 4)
    first = (await client.get(f"/books/{BOOK}/ratings", params={"limit": 2})).json()
    params = {"limit": 2, "cursor": first["next_cursor"]}
    second = (await client.get(f"/books/{BOOK}/ratings", params=params)).json()
    assert [r["user_id"] for r in first["ratings"] + second["ratings"]] == ["d", "c", "b", "a"]
    assert second["next_cursor"] is None
    whole = (await client.get(f"/books/{BOOK}/ratings", params={"limit": 4})).json()
    assert len(whole["ratings"]) == 4 and whole["next_cursor"] is None


async def test_a_re_rating_moves_the_rating_to_the_top_of_the_recent_list(issuer, client):
    for user in ("a", "b"):
        await rate(client, issuer, user, 2)
    await rate(client, issuer, "a", 5)
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


async def test_a_cursor_from_another_book_is_refused(issuer, client):
    for user in ("a", "b"):
        await rate(client, issuer, user, 3)
    cursor = (await client.get(f"/books/{BOOK}/ratings", params={"limit": 1})).json()["next_cursor"]
    assert (await client.get(f"/books/{OTHER}/ratings", params={"cursor": cursor})).status_code == 400


async def test_a_down_recommender_never_fails_a_rating(issuer, tables, dynamodb):
    seed_books(dynamodb, tables)
    settings = RatingsSettings(books_table=tables["books"], ratings_table=tables["ratings"],
                               shelves_table=tables["shelves"], access_log=False,
                               recommendation_url="http://127.0.0.1:9", internal_token="x",
                               **issuer.settings())
    before = failures()
    async with AsyncTestClient(create_app(settings)) as c:
        r = await rate(c, issuer, "alice", 5)
        assert r.status_code == 201
        metrics = (await c.get("/metrics")).text
    assert failures() == before + 1
    assert "invalidation_failures_total" in metrics
    assert 'rating_write_attempts_bucket{le="1.0"}' in metrics and "rating_write_attempts_count" in metrics
    assert book_item(dynamodb, tables)["rating_count"] == 1


# Authentication: writes need the user's bearer token; the token's `sub` is the user.

@pytest.mark.parametrize("authorization, code", [
    (None, "missing_token"), ("Basic YWxpY2U6eA==", "missing_token"), ("Bearer ", "missing_token"),
    ("Bearer not.a.jwt", "invalid_token"),
])
async def test_writes_without_a_valid_token_are_401_and_change_nothing(client, dynamodb, tables, recommender,
                                                                       authorization, code):
    headers = {"Authorization": authorization} if authorization else {}
    answers = (await client.post(f"/books/{BOOK}/rate", json={"user_id": "alice", "rating": 4},
                                 headers=headers),
               await client.delete(f"/books/{BOOK}/ratings/alice", headers=headers))
    for r in answers:
        assert r.status_code == 401 and r.json()["code"] == code and "WWW-Authenticate" in r.headers
    assert dynamodb.scan(TableName=tables["ratings"])["Count"] == 0 and recommender.calls == []


async def test_expired_foreign_and_wrong_audience_tokens_are_401(client, issuer):
    stranger = TokenIssuer()  # same claims, another key: not in the configured JWKS
    try:
        for token in (issuer.token("alice", expires_in=-120), issuer.token("alice", client_id="other-app"),
                      issuer.token("alice", iss="https://elsewhere"), stranger.token("alice")):
            r = await client.post(f"/books/{BOOK}/rate", json={"rating": 4},
                                  headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 401, r.text
    finally:
        stranger.close()


async def test_the_user_is_the_token_subject_and_another_user_id_is_403(client, issuer, dynamodb, tables):
    r = await client.post(f"/books/{BOOK}/rate", json={"rating": 4}, headers=issuer.headers("alice"))
    assert r.status_code == 201 and r.json()["user_id"] == "alice"
    r = await client.post(f"/books/{BOOK}/rate", json={"user_id": "bob", "rating": 1},
                          headers=issuer.headers("alice"))
    assert r.status_code == 403 and r.json()["code"] == "user_mismatch"
    r = await client.delete(f"/books/{BOOK}/ratings/alice", headers=issuer.headers("mallory"))
    assert r.status_code == 403
    ratings = dynamodb.scan(TableName=tables["ratings"])["Items"]
    assert [(i["user_id"]["S"], i["rating"]["N"]) for i in ratings] == [("alice", "4")]


async def test_an_admin_may_remove_another_users_rating(client, issuer, dynamodb, tables):
    await rate(client, issuer, "spammer", 1)
    r = await client.delete(f"/books/{BOOK}/ratings/spammer", headers=issuer.headers("moderator", admin=True))
    assert r.status_code == 204 and book_item(dynamodb, tables)["rating_count"] == 0


async def test_writes_past_the_per_user_limit_are_429_shared_by_replicas(tables, dynamodb, issuer, redis_url,
                                                                        recommender):
    seed_books(dynamodb, tables)
    settings = RatingsSettings(books_table=tables["books"], ratings_table=tables["ratings"],
                               shelves_table=tables["shelves"], access_log=False,
                               recommendation_url=recommender.url, internal_token="s3cret",
                               redis_url=redis_url, rate_limit=3, **issuer.settings())
    async with AsyncTestClient(create_app(settings)) as one, AsyncTestClient(create_app(settings)) as two:
        replicas = [one, two] * 3
        answers = [await rate(replica, issuer, "eager", n % 5 + 1) for n, replica in enumerate(replicas)]
        assert [r.status_code for r in answers] == [201, 200, 200, 429, 429, 429]
        refused = answers[3]
        assert refused.json()["code"] == "too_many_requests"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert (await rate(one, issuer, "patient", 4)).status_code == 201  # another user's own budget
    assert book_item(dynamodb, tables)["rating_sum"] == 3 + 4  # the third accepted change, plus patient's


def changed_since(dynamodb, tables, moment: str) -> set[str]:
    """The ids a search replica finds in the books change feed after `moment`: one Query per shard."""
    found = set()
    for shard in range(CHANGE_SHARDS):
        page = dynamodb.query(TableName=tables["books"], IndexName=CHANGES_INDEX,
                              KeyConditionExpression="change_shard = :shard AND changed_at > :since",
                              ExpressionAttributeValues={":shard": {"S": str(shard)},
                                                         ":since": {"S": moment}})
        found |= {item["book_id"]["S"] for item in page["Items"]}
    return found


async def test_a_rating_puts_its_book_in_the_change_feed(issuer, client, dynamodb, tables):
    moment = utc_now()
    assert changed_since(dynamodb, tables, moment) == set()
    r = await rate(client, issuer, "alice", 4)
    assert r.status_code == 201, r.text
    book = book_item(dynamodb, tables)
    assert book["changed_at"] == book["updated_at"] == r.json()["updated_at"] > moment
    assert book["change_shard"] == change_shard(BOOK)
    assert changed_since(dynamodb, tables, moment) == {BOOK}  # OTHER, unrated, is not in it


async def test_a_deleted_book_is_404_and_its_raters_may_only_remove_their_ratings(issuer, client, dynamodb,
                                                                                   tables, recommender):
    await rate(client, issuer, "bob", 2)
    await rate(client, issuer, "carol", 4)
    recommender.calls.clear()
    dynamodb.put_item(TableName=tables["books"], Item=to_item(tombstone(BOOK, utc_now(), time.time())))
    before = book_item(dynamodb, tables)
    rated = await rate(client, issuer, "alice", 5)
    assert rated.status_code == 404 and rated.json()["code"] == "book_not_found"
    rerated = await rate(client, issuer, "bob", 5)
    assert rerated.status_code == 404 and rerated.json()["code"] == "book_not_found"
    listed = await client.get(f"/books/{BOOK}/ratings")
    assert listed.status_code == 404 and listed.json()["code"] == "book_not_found"
    unrated = await client.delete(f"/books/{BOOK}/ratings/alice", headers=issuer.headers("alice"))
    assert unrated.status_code == 404 and unrated.json()["code"] == "book_not_found"
    others = await client.delete(f"/books/{BOOK}/ratings/carol", headers=issuer.headers("bob"))
    assert others.status_code == 403
    assert recommender.calls == []
    assert [r["book_id"] for r in (await client.get("/users/bob/ratings")).json()["ratings"]] == [BOOK]

    removed = await client.delete(f"/books/{BOOK}/ratings/bob", headers=issuer.headers("bob"))
    assert removed.status_code == 204, removed.text
    assert (await client.get("/users/bob/ratings")).json()["ratings"] == []
    assert [c[0] for c in recommender.calls] == ["bob"]
    assert book_item(dynamodb, tables) == before  # the tombstone as it was: no aggregate written
    left = dynamodb.scan(TableName=tables["ratings"], ConsistentRead=True)["Items"]
    assert {i["user_id"]["S"] for i in left} == {"carol"}
    again = await client.delete(f"/books/{BOOK}/ratings/bob", headers=issuer.headers("bob"))
    assert again.status_code == 404 and again.json()["code"] == "book_not_found"
