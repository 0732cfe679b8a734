"""Hundreds of raters on one book at once, through the service as deployed.

The service runs under granian with two worker processes (two replicas that
share nothing but DynamoDB), against the serialised moto server, with
invalidations going to a real HTTP recommender stand-in; the raters (and
shelvers) are concurrent aiohttp requests over real sockets. Afterwards the
book's count, sum and distribution must equal the ground truth exactly, and
its shelf counts the shelves table.
"""

from __future__ import annotations

import asyncio
import random
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest

from bookrec_catalog.catalog import with_derived_attributes
from bookrec_catalog.dynamo import from_item, to_item
from bookrec_local import definitions
from bookrec_local.procs import LOCAL_AWS_ENV, free_port, http_ok, start, wait_until

# Hundreds of concurrent writes through real services on the emulator.
pytestmark = pytest.mark.slow
BOOKS = ("OL45883W", "OL2W", "OL3W")
BOOK = BOOKS[0]


def raters(http: aiohttp.ClientSession, url: str, issuer):
    """rate(user, stars, book) and unrate(user, book) over HTTP, each with the user's own token."""

    async def rate(user: str, rating: int, book: str = BOOK) -> int:
        async with http.post(f"{url}/books/{book}/rate", json={"user_id": user, "rating": rating},
                             headers=issuer.headers(user)) as r:
            assert r.status in (200, 201), await r.text()
            return r.status

    async def unrate(user: str, book: str = BOOK) -> int:
        async with http.delete(f"{url}/books/{book}/ratings/{user}", headers=issuer.headers(user)) as r:
            return r.status

    return rate, unrate


def stored_book(dynamodb, tables, book_id: str) -> dict:
    return from_item(dynamodb.get_item(TableName=tables["books"], Key={"book_id": {"S": book_id}},
                                       ConsistentRead=True)["Item"])


@pytest.fixture
def ratings_service(serialised_moto, recommender, issuer, tmp_path):
    """Base URL of the ratings service under granian (2 workers), its tables and its log file."""
    endpoint, dynamodb = serialised_moto
    prefix = f"c{uuid.uuid4().hex[:8]}"
    tables = definitions.create_tables(dynamodb, prefix)
    for book_id in BOOKS:
        book = with_derived_attributes({"book_id": book_id, "title": f"Book {book_id}"})
        dynamodb.put_item(TableName=tables["books"], Item=to_item(book))
    port = free_port()
    env = {**LOCAL_AWS_ENV, **definitions.table_env(prefix), "AWS_ENDPOINT_URL": endpoint, "PORT": str(port),
           "RECOMMENDATION_URL": recommender.url, "INTERNAL_TOKEN": "s3cret", "ACCESS_LOG": "false",
           "LOG_LEVEL": "WARNING", **{name.upper(): value for name, value in issuer.settings().items()},
           # Generous for the test: two replicas racing on a single emulator thread lose many rounds.
           "WRITE_MAX_ATTEMPTS": "60"}
    log = tmp_path / "ratings.log"
    granian = str(Path(sys.executable).with_name("granian"))
    command = [granian, "--interface", "asgi", "--factory", "--host", "127.0.0.1", "--port", str(port),
               "--workers", "2", "--no-access-log", "bookrec_ratings.app:create_app"]
    proc = start(command, log_path=log, env=env)
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/ready"), 60, "ratings service", proc)
        yield f"http://127.0.0.1:{port}", dynamodb, tables, log
    finally:
        proc.terminate()
        proc.wait(15)
        definitions.delete_tables(dynamodb, prefix)


async def test_hundreds_of_concurrent_raters_on_two_replicas_leave_exact_aggregates(ratings_service,
                                                                                    recommender, issuer):
    url, dynamodb, tables, log = ratings_service
    rng = random.Random(11)
    first = {f"rater{i}": rng.randint(1, 5) for i in range(200)}
    rerated = {u: rng.randint(1, 5) for u in rng.sample(sorted(first), 40)}
    removed = rng.sample(sorted(set(first) - set(rerated)), 10)
    late = {f"late{i}": rng.randint(1, 5) for i in range(20)}

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=120)) as http:
        rate, unrate = raters(http, url, issuer)
        arrivals = rng.sample(sorted(first.items()), len(first))
        new_codes = await asyncio.gather(*(rate(u, r) for u, r in arrivals))
        mixed = [*(rate(u, r) for u, r in rerated.items()), *(unrate(u) for u in removed),
                 *(rate(u, r) for u, r in late.items())]
        rng.shuffle(mixed)
        mixed_codes = await asyncio.gather(*mixed)
        async with http.get(f"{url}/books/{BOOK}/ratings", params={"limit": "100"}) as r:
            listing = await r.json()

    assert set(new_codes) == {201}, log.read_text()[-2000:]
    assert sorted(mixed_codes) == [200] * len(rerated) + [201] * len(late) + [204] * len(removed)
    truth = {**{u: r for u, r in first.items() if u not in removed}, **rerated, **late}
    book = stored_book(dynamodb, tables, BOOK)
    assert book["rating_count"] == len(truth) == 210
    assert book["rating_sum"] == sum(truth.values())
    assert book["ratings_distribution"] == {str(s): list(truth.values()).count(s) for s in range(1, 6)}
    assert book["avg_rating"] == round(sum(truth.values()) / len(truth), 4)
    stored = dynamodb.scan(TableName=tables["ratings"], ConsistentRead=True)["Items"]
    assert {i["user_id"]["S"]: int(i["rating"]["N"]) for i in stored} == truth
    assert (listing["total_ratings"], listing["ratings_distribution"]) == (210, book["ratings_distribution"])
    assert len(listing["ratings"]) == 100 and listing["next_cursor"]
    # Every accepted change invalidated its user (at least once: a reply later than the timeout is retried).
    invalidated = [user for user, _, _ in recommender.calls]
    assert set(invalidated) == {*first, *late} and len(invalidated) >= len(first) + len(mixed)
    assert {token for _, _, token in recommender.calls} == {"s3cret"}


async def test_five_hundred_concurrent_writes_from_distinct_and_repeating_users_on_a_few_books(
        ratings_service, issuer):
    """Users repeat (re-rating a book, several at once), and books are shared: the aggregates must equal
    what the ratings table holds, and each stored rating must be one its user sent for that book."""
    url, dynamodb, tables, log = ratings_service
    rng = random.Random(500)
    users = [f"reader{i}" for i in range(180)]
    writes = [(rng.choice(users), rng.randint(1, 5), rng.choice(BOOKS)) for _ in range(500)]
    sent: dict[tuple[str, str], set[int]] = {}
    for user, stars, book in writes:
        sent.setdefault((user, book), set()).add(stars)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=300)) as http:
        rate, _ = raters(http, url, issuer)
        codes = await asyncio.gather(*(rate(user, stars, book) for user, stars, book in writes))
    assert len(codes) == 500 and set(codes) <= {200, 201}, log.read_text()[-2000:]
    assert codes.count(201) == len(sent)  # exactly one creation per (user, book), however they raced
    stored = dynamodb.scan(TableName=tables["ratings"], ConsistentRead=True)["Items"]
    final = {(i["user_id"]["S"], i["book_id"]["S"]): int(i["rating"]["N"]) for i in stored}
    assert set(final) == set(sent) and all(final[key] in sent[key] for key in final)
    for book_id in BOOKS:
        stars = [rating for (_, book), rating in final.items() if book == book_id]
        book = stored_book(dynamodb, tables, book_id)
        assert (book["rating_count"], book["rating_sum"]) == (len(stars), sum(stars)), book_id
        assert book["ratings_distribution"] == {str(s): stars.count(s) for s in range(1, 6)}


async def test_concurrent_shelvers_movers_unshelvers_and_raters_leave_shelf_counts_equal_to_the_shelves(
        ratings_service, issuer):
    """Readers shelve, move between shelves, unshelve and rate (which shelves an unshelved book on `read`)
    at once, on a few books over two replicas: each book's shelf_counts must equal its shelves table rows."""
    url, dynamodb, tables, log = ratings_service
    rng = random.Random(23)
    users = [f"shelver{i}" for i in range(60)]
    shelves = ("want_to_read", "currently_reading", "read")
    first = [(user, rng.choice(BOOKS), rng.choice(shelves)) for user in users]

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=300)) as http:
        rate, _ = raters(http, url, issuer)

        async def shelve(user: str, book: str, shelf: str | None) -> int:
            headers = issuer.headers(user)
            if shelf is None:
                async with http.delete(f"{url}/books/{book}/shelf", headers=headers) as r:
                    return r.status
            async with http.put(f"{url}/books/{book}/shelf", json={"shelf": shelf}, headers=headers) as r:
                return r.status

        assert set(await asyncio.gather(*(shelve(u, b, s) for u, b, s in first))) <= {200, 201}
        mixed = []
        for _ in range(240):
            user, book, kind = rng.choice(users), rng.choice(BOOKS), rng.random()
            if kind < 0.25:
                mixed.append(rate(user, rng.randint(1, 5), book))
            else:
                mixed.append(shelve(user, book, None if kind < 0.45 else rng.choice(shelves)))
        codes = await asyncio.gather(*mixed)
    assert set(codes) <= {200, 201, 204, 404}, log.read_text()[-2000:]  # 404: unshelving what is on no shelf
    rows = dynamodb.scan(TableName=tables["shelves"], ConsistentRead=True)["Items"]
    on = [(row["book_id"]["S"], row["shelf"]["S"]) for row in rows]
    assert len(on) == len({(row["book_id"]["S"], row["user_id"]["S"]) for row in rows})
    for book_id in BOOKS:
        counts = stored_book(dynamodb, tables, book_id).get("shelf_counts", {})
        truth = {shelf: on.count((book_id, shelf)) for shelf in shelves}
        assert {shelf: counts.get(shelf, 0) for shelf in shelves} == truth, book_id
    assert codes.count(204) > 0 and dynamodb.scan(TableName=tables["ratings"], Select="COUNT")["Count"] > 0
