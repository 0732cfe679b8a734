"""ratings over HTTP against a real moto server, with a real HTTP recommender stand-in."""

from __future__ import annotations

import asyncio
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from litestar.testing import AsyncTestClient

from bookrec_common.catalog import with_derived_attributes
from bookrec_common.dynamo import from_item, to_item

from bookrec_ratings.app import create_app
from bookrec_ratings.invalidation import INVALIDATION_FAILURES
from bookrec_ratings.settings import RatingsSettings

BOOK = "OL45883W"
OTHER = "OL2W"


class Recommender(BaseHTTPRequestHandler):
    """A real HTTP server (own thread) recording the invalidations it receives."""

    calls: list[tuple[str, str | None, str | None]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        prefix = "/recommendations/invalidate/"
        if self.path.startswith(prefix):
            self.calls.append((self.path[len(prefix):], self.headers.get("X-Request-ID"),
                               self.headers.get("X-Internal-Token")))
            self.send_response(200)
        else:
            self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def seed_books(dynamodb, tables):
    for book_id, title in ((BOOK, "The Republic"), (OTHER, "Meditations")):
        dynamodb.put_item(TableName=tables["books"],
                          Item=to_item(with_derived_attributes({"book_id": book_id, "title": title})))


@pytest.fixture
def recommender():
    Recommender.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recommender)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Recommender, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
async def client(tables, dynamodb, recommender):
    seed_books(dynamodb, tables)
    settings = RatingsSettings(books_table=tables["books"], ratings_table=tables["ratings"], access_log=False,
                               recommendation_url=recommender[1], internal_token="s3cret")
    async with AsyncTestClient(create_app(settings)) as c:
        yield c


def book_item(dynamodb, tables, book_id=BOOK):
    return from_item(dynamodb.get_item(TableName=tables["books"], Key={"book_id": {"S": book_id}})["Item"])


async def test_new_rating_is_201_and_updates_the_book_aggregate(client, dynamodb, tables):
    r = await client.post(f"/books/{BOOK}/rate", json={"user_id": "alice", "rating": 4})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["rating"] == 4 and body["previous_rating"] is None and body["created_at"] == body["updated_at"]
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
    assert recommender[0].calls == [("alice", "rid-1", "s3cret"), ("alice", "rid-2", "s3cret")]


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
    {"user_id": 7, "rating": 3},
    {"user_id": "alice", "rating": 3, "extra": 1},
    [],
])
async def test_bad_rating_requests_are_400_and_change_nothing(client, dynamodb, tables, recommender, payload):
    r = await client.post(f"/books/{BOOK}/rate", json=payload)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json") and r.json()["errors"]
    book = book_item(dynamodb, tables)
    assert book["rating_count"] == 0 and "rating_version" not in book
    assert dynamodb.scan(TableName=tables["ratings"])["Count"] == 0 and recommender[0].calls == []


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


@pytest.mark.parametrize("path", [
    f"/books/{BOOK}/ratings?limit=0", f"/books/{BOOK}/ratings?limit=101", f"/books/{BOOK}/ratings?limit=x",
    f"/books/{BOOK}/ratings?cursor=garbage", "/users/bad%20user/ratings", "/users/alice/ratings?cursor=e30",
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


async def test_200_concurrent_raters_leave_exact_aggregates(client, dynamodb, tables):
    """New ratings and re-ratings at once, through HTTP; the final table is the ground truth."""
    rng = random.Random(7)
    users = [f"rater{i}" for i in range(200)]
    first = {u: rng.randint(1, 5) for u in users}
    again = {u: rng.randint(1, 5) for u in rng.sample(users, 80)}
    requests = [(u, r) for u, r in first.items()]
    rng.shuffle(requests)

    async def rate(user, rating):
        r = await client.post(f"/books/{BOOK}/rate", json={"user_id": user, "rating": rating})
        assert r.status_code in (200, 201), r.text

    await asyncio.gather(*(rate(u, r) for u, r in requests))
    await asyncio.gather(*(rate(u, r) for u, r in again.items()),
                         *(rate(f"late{i}", 1 + i % 5) for i in range(40)))
    truth = {**first, **again, **{f"late{i}": 1 + i % 5 for i in range(40)}}
    book = book_item(dynamodb, tables)
    assert book["rating_count"] == len(truth) == 240
    assert book["rating_sum"] == sum(truth.values())
    assert book["ratings_distribution"] == {str(s): sum(1 for v in truth.values() if v == s) for s in range(1, 6)}
    stored = dynamodb.scan(TableName=tables["ratings"])["Items"]
    assert {i["user_id"]["S"]: int(i["rating"]["N"]) for i in stored} == truth
