"""Shelves over HTTP against a real moto server, a real HTTP recommender stand-in and a real Redis."""

from __future__ import annotations

import time
import uuid

import pytest
import redis.asyncio as aioredis
from litestar.testing import AsyncTestClient

from bookrec_catalog.catalog import utc_now, with_derived_attributes
from bookrec_catalog.changes import tombstone
from bookrec_catalog.dynamo import from_item, to_item
from bookrec_common.activity import epoch_seconds
from bookrec_ratings.app import create_app
from bookrec_ratings.settings import RatingsSettings

BOOKS = {"OL45883W": ("The Republic", [{"author_id": "OL1A", "name": "Plato"}], 123),
         "OL2W": ("Meditations", [{"name": "Marcus Aurelius"}], None),
         "OL3W": ("Ethics", [], 7)}
BOOK = "OL45883W"
NO_SHELVES = {"want_to_read": 0, "currently_reading": 0, "read": 0}


@pytest.fixture
async def client(tables, dynamodb, recommender, issuer, redis_url):
    for book_id, (title, authors, cover_id) in BOOKS.items():
        record = {"book_id": book_id, "title": title, "authors": authors, "cover_id": cover_id,
                  "description": "long " * 50}
        dynamodb.put_item(TableName=tables["books"], Item=to_item(with_derived_attributes(record)))
    settings = RatingsSettings(books_table=tables["books"], ratings_table=tables["ratings"],
                               shelves_table=tables["shelves"], access_log=False, redis_url=redis_url,
                               recommendation_url=recommender.url, internal_token="s3cret", **issuer.settings())
    async with AsyncTestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
async def redis(redis_url):
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


def reader() -> str:
    return f"reader-{uuid.uuid4().hex[:8]}"  # the session's Redis keeps other tests' trending events


async def shelve(client, issuer, user, shelf, book=BOOK):
    return await client.put(f"/books/{book}/shelf", json={"shelf": shelf}, headers=issuer.headers(user))


async def unshelve(client, issuer, user, book=BOOK):
    return await client.delete(f"/books/{book}/shelf", headers=issuer.headers(user))


def book_item(dynamodb, tables, book_id=BOOK):
    return from_item(dynamodb.get_item(TableName=tables["books"], Key={"book_id": {"S": book_id}},
                                       ConsistentRead=True)["Item"])


def shelf_items(dynamodb, tables) -> list[dict]:
    return [from_item(i) for i in dynamodb.scan(TableName=tables["shelves"], ConsistentRead=True)["Items"]]


async def test_shelving_is_201_moving_and_reshelving_200_and_the_counts_follow(client, issuer, recommender):
    ada = reader()
    new = await shelve(client, issuer, ada, "want_to_read")
    assert new.status_code == 201, new.text
    body = new.json()
    assert body == {"book_id": BOOK, "user_id": ada, "shelf": "want_to_read", "previous_shelf": None,
                    "shelved_at": body["shelved_at"]}
    moved = await shelve(client, issuer, ada, "currently_reading")
    assert moved.status_code == 200 and moved.json()["previous_shelf"] == "want_to_read"
    assert moved.json()["shelved_at"] > body["shelved_at"]
    same = await shelve(client, issuer, ada, "currently_reading")
    assert same.status_code == 200 and same.json() == {**moved.json(), "previous_shelf": "currently_reading"}
    counts = (await client.get(f"/books/{BOOK}/ratings")).json()["shelf_counts"]
    assert counts == {**NO_SHELVES, "currently_reading": 1}
    assert [user for user, _, _ in recommender.calls] == [ada, ada]  # the unchanged shelving changed nothing


async def test_unshelving_is_204_and_a_book_on_no_shelf_answers_404_not_shelved(client, issuer, dynamodb, tables,
                                                                               recommender):
    ada = reader()
    await shelve(client, issuer, ada, "read")
    removed = await unshelve(client, issuer, ada)
    assert removed.status_code == 204 and shelf_items(dynamodb, tables) == []
    assert book_item(dynamodb, tables)["shelf_counts"] == NO_SHELVES
    before = book_item(dynamodb, tables)
    again = await unshelve(client, issuer, ada)
    assert again.status_code == 404 and again.json()["code"] == "not_shelved"
    assert book_item(dynamodb, tables) == before and len(recommender.calls) == 2


async def test_rating_an_unshelved_book_puts_it_on_read_and_a_shelved_one_stays(client, issuer, dynamodb, tables):
    ada, bob = reader(), reader()
    assert (await client.post(f"/books/{BOOK}/rate", json={"rating": 4}, headers=issuer.headers(ada))).status_code \
        == 201
    await shelve(client, issuer, bob, "want_to_read")
    await client.post(f"/books/{BOOK}/rate", json={"rating": 2}, headers=issuer.headers(bob))
    assert (await client.delete(f"/books/{BOOK}/ratings/{ada}", headers=issuer.headers(ada))).status_code == 204
    shelved = {item["user_id"]: item["shelf"] for item in shelf_items(dynamodb, tables)}
    assert shelved == {ada: "read", bob: "want_to_read"}
    listing = (await client.get(f"/books/{BOOK}/ratings")).json()
    assert listing["shelf_counts"] == {**NO_SHELVES, "want_to_read": 1, "read": 1}
    assert listing["total_ratings"] == 1
    assert [i["book_id"] for i in (await client.get(f"/users/{ada}/shelves/read")).json()["items"]] == [BOOK]


@pytest.mark.parametrize("payload", [
    {"shelf": "finished"}, {"shelf": "Read"}, {"shelf": ""}, {"shelf": None}, {"shelf": 1}, {"shelf": ["read"]},
    {}, {"shelf": "read", "extra": 1}, {"shelf": "read", "user_id": "bad user"}, [], "read",
])
async def test_bad_shelvings_are_400_problem_details_and_change_nothing(client, issuer, dynamodb, tables,
                                                                       recommender, payload):
    before = book_item(dynamodb, tables)
    r = await client.put(f"/books/{BOOK}/shelf", json=payload, headers=issuer.headers("ada"))
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json") and r.json()["errors"]
    assert book_item(dynamodb, tables) == before and shelf_items(dynamodb, tables) == [] and recommender.calls == []


async def test_an_unknown_shelf_names_the_field(client, issuer):
    r = await shelve(client, issuer, "ada", "finished")
    assert r.json()["code"] == "validation_failed" and [e["field"] for e in r.json()["errors"]] == ["shelf"]


async def test_unknown_deleted_and_malformed_books_are_refused_and_change_nothing(client, issuer, dynamodb, tables,
                                                                                 recommender):
    ada = reader()
    assert (await shelve(client, issuer, ada, "read", "OL999W")).json()["code"] == "book_not_found"
    assert (await shelve(client, issuer, ada, "read", "nope")).status_code == 400
    assert (await unshelve(client, issuer, ada, "OL999W")).status_code == 404
    await shelve(client, issuer, ada, "want_to_read", "OL2W")
    recommender.calls.clear()
    dynamodb.put_item(TableName=tables["books"], Item=to_item(tombstone("OL2W", utc_now(), time.time())))
    gone = await shelve(client, issuer, ada, "read", "OL2W")
    assert gone.status_code == 404 and gone.json()["code"] == "book_not_found"
    assert recommender.calls == []
    assert [(i["book_id"], i["shelf"]) for i in shelf_items(dynamodb, tables)] == [("OL2W", "want_to_read")]
    # A deleted book stays on the reader's shelf, without a title, and can be taken off it.
    listed = (await client.get(f"/users/{ada}/shelves/want_to_read")).json()["items"]
    assert [(i["book_id"], i["title"], i["authors"], i["cover_url"]) for i in listed] == [("OL2W", None, [], None)]
    assert (await unshelve(client, issuer, ada, "OL2W")).status_code == 204
    assert shelf_items(dynamodb, tables) == []


@pytest.mark.parametrize("authorization", [None, "Basic YWxpY2U6eA==", "Bearer not.a.jwt"])
async def test_shelving_without_a_valid_token_is_401_and_changes_nothing(client, dynamodb, tables, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    answers = (await client.put(f"/books/{BOOK}/shelf", json={"shelf": "read"}, headers=headers),
               await client.delete(f"/books/{BOOK}/shelf", headers=headers))
    assert [r.status_code for r in answers] == [401, 401]
    assert shelf_items(dynamodb, tables) == [] and "shelf_counts" not in book_item(dynamodb, tables)


async def test_shelving_for_another_reader_is_403(client, issuer, dynamodb, tables):
    r = await client.put(f"/books/{BOOK}/shelf", json={"shelf": "read", "user_id": "bob"},
                         headers=issuer.headers("mallory"))
    assert r.status_code == 403 and r.json()["code"] == "user_mismatch"
    mine = await client.put(f"/books/{BOOK}/shelf", json={"shelf": "read", "user_id": "mallory"},
                            headers=issuer.headers("mallory"))
    assert mine.status_code == 201 and [i["user_id"] for i in shelf_items(dynamodb, tables)] == ["mallory"]


async def test_a_shelf_lists_newest_first_with_book_summaries_and_cursor_paging(client, issuer):
    ada = reader()
    for book in ("OL3W", "OL2W", BOOK):
        await shelve(client, issuer, ada, "want_to_read", book)
    await shelve(client, issuer, ada, "read", "OL3W")  # moved: off this shelf
    first = (await client.get(f"/users/{ada}/shelves/want_to_read", params={"limit": 1})).json()
    assert first["count"] == 1 and first["user_id"] == ada and first["shelf"] == "want_to_read"
    [top] = first["items"]
    assert top == {"book_id": BOOK, "title": "The Republic", "authors": ["Plato"], "cover_id": 123,
                   "cover_url": "https://covers.openlibrary.org/b/id/123-L.jpg", "shelved_at": top["shelved_at"]}
    rest = (await client.get(f"/users/{ada}/shelves/want_to_read",
                             params={"limit": 1, "cursor": first["next_cursor"]})).json()
    assert [(i["book_id"], i["authors"], i["cover_id"], i["cover_url"]) for i in rest["items"]] == [
        ("OL2W", ["Marcus Aurelius"], None, None)]
    assert rest["next_cursor"] is None  # the last full page hands out no cursor
    read = (await client.get(f"/users/{ada}/shelves/read")).json()
    assert [i["title"] for i in read["items"]] == ["Ethics"] and read["next_cursor"] is None
    empty = (await client.get(f"/users/{ada}/shelves/currently_reading")).json()
    assert empty == {"user_id": ada, "shelf": "currently_reading", "count": 0, "items": [], "next_cursor": None}


async def test_a_cursor_of_another_listing_is_400(client, issuer):
    ada = reader()
    for book in BOOKS:
        await shelve(client, issuer, ada, "want_to_read", book)
        await client.post(f"/books/{book}/rate", json={"rating": 3}, headers=issuer.headers(ada))
    shelf_cursor = (await client.get(f"/users/{ada}/shelves/want_to_read", params={"limit": 1})).json()["next_cursor"]
    ratings_cursor = (await client.get(f"/users/{ada}/ratings", params={"limit": 1})).json()["next_cursor"]
    assert shelf_cursor and ratings_cursor
    refused = [await client.get(f"/users/{ada}/shelves/read", params={"cursor": shelf_cursor}),
               await client.get(f"/users/{reader()}/shelves/want_to_read", params={"cursor": shelf_cursor}),
               await client.get(f"/users/{ada}/shelves/want_to_read", params={"cursor": ratings_cursor}),
               await client.get(f"/users/{ada}/ratings", params={"cursor": shelf_cursor}),
               await client.get(f"/books/{BOOK}/ratings", params={"cursor": shelf_cursor})]
    assert [r.status_code for r in refused] == [400] * 5
    assert all(r.json()["errors"][0]["field"] == "cursor" for r in refused)


@pytest.mark.parametrize("path", [
    "/users/ada/shelves/finished", "/users/ada/shelves/Read", "/users/bad%20user/shelves/read",
    "/users/ada/shelves/read?limit=0", "/users/ada/shelves/read?limit=101", "/users/ada/shelves/read?cursor=x",
])
async def test_bad_shelf_listing_parameters_are_400(client, path):
    r = await client.get(path)
    assert r.status_code == 400 and r.json()["status"] == 400


async def test_accepted_ratings_and_shelvings_are_trending_events_and_removals_are_not(client, issuer, redis):
    ada, bob = reader(), reader()
    rated = (await client.post(f"/books/{BOOK}/rate", json={"rating": 5}, headers=issuer.headers(ada))).json()
    shelved = (await shelve(client, issuer, bob, "want_to_read", "OL2W")).json()
    readers = f"trending:readers:{BOOK}"
    assert await redis.zscore(readers, ada) == pytest.approx(epoch_seconds(rated["updated_at"]))
    assert await redis.zscore("trending:readers:OL2W", bob) == pytest.approx(epoch_seconds(shelved["shelved_at"]))
    await unshelve(client, issuer, bob, "OL2W")
    await client.delete(f"/books/{BOOK}/ratings/{ada}", headers=issuer.headers(ada))
    assert await redis.zscore(readers, ada) == pytest.approx(epoch_seconds(rated["updated_at"]))  # not moved
    assert await redis.zscore("trending:readers:OL2W", bob) == pytest.approx(epoch_seconds(shelved["shelved_at"]))


async def test_a_shelf_shows_the_source_s_cover_image_else_open_library_s_cover_of_its_id(client, issuer, dynamodb,
                                                                                         tables):
    image = "https://images.gr-assets.com/books/1447303603m/2767052.jpg"  # a goodbooks book's own image
    record = {"book_id": "GB1", "title": "The Hunger Games", "authors": [{"name": "Suzanne Collins"}],
              "cover_url": image}
    dynamodb.put_item(TableName=tables["books"], Item=to_item(with_derived_attributes(record)))
    ada = reader()
    for book in ("GB1", "OL3W"):
        await shelve(client, issuer, ada, "read", book)
    listed = (await client.get(f"/users/{ada}/shelves/read")).json()["items"]
    assert [(i["book_id"], i["cover_id"], i["cover_url"]) for i in listed] == [
        ("OL3W", 7, "https://covers.openlibrary.org/b/id/7-L.jpg"), ("GB1", None, image)]
