"""Hundreds of raters on one book at once, through the service as deployed.

The service runs under granian with two worker processes (two replicas that
share nothing but DynamoDB), against the serialised moto server, with
invalidations going to a real HTTP recommender stand-in; the raters are
concurrent aiohttp requests over real sockets. Afterwards the book's count,
sum and distribution must equal the ground truth exactly.
"""

from __future__ import annotations

import asyncio
import random
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest

from bookrec_common.catalog import with_derived_attributes
from bookrec_common.dynamo import from_item, to_item

from scripts import definitions
from scripts.procs import LOCAL_AWS_ENV, free_port, http_ok, start, wait_until

BOOK = "OL45883W"


@pytest.fixture
def ratings_service(serialised_moto, recommender, tmp_path):
    """Base URL of the ratings service under granian (2 workers), its tables and its log file."""
    endpoint, dynamodb = serialised_moto
    prefix = f"c{uuid.uuid4().hex[:8]}"
    tables = definitions.create_tables(dynamodb, prefix)
    book = with_derived_attributes({"book_id": BOOK, "title": "The Republic"})
    dynamodb.put_item(TableName=tables["books"], Item=to_item(book))
    port = free_port()
    env = {**LOCAL_AWS_ENV, **definitions.table_env(prefix), "AWS_ENDPOINT_URL": endpoint, "PORT": str(port),
           "RECOMMENDATION_URL": recommender.url, "INTERNAL_TOKEN": "s3cret", "ACCESS_LOG": "false",
           "LOG_LEVEL": "WARNING",
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
                                                                                    recommender):
    url, dynamodb, tables, log = ratings_service
    rng = random.Random(11)
    first = {f"rater{i}": rng.randint(1, 5) for i in range(200)}
    rerated = {u: rng.randint(1, 5) for u in rng.sample(sorted(first), 40)}
    removed = rng.sample(sorted(set(first) - set(rerated)), 10)
    late = {f"late{i}": rng.randint(1, 5) for i in range(20)}

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=120)) as http:
        async def rate(user: str, rating: int) -> int:
            async with http.post(f"{url}/books/{BOOK}/rate", json={"user_id": user, "rating": rating}) as r:
                assert r.status in (200, 201), await r.text()
                return r.status

        async def unrate(user: str) -> int:
            async with http.delete(f"{url}/books/{BOOK}/ratings/{user}") as r:
                return r.status

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
    book = from_item(dynamodb.get_item(TableName=tables["books"], Key={"book_id": {"S": BOOK}},
                                       ConsistentRead=True)["Item"])
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
