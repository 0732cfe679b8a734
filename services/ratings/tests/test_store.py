"""The store's optimistic concurrency against moto server: several replicas racing on one book."""

from __future__ import annotations

import asyncio
import random

import pytest

from bookrec_common.catalog import utc_now, with_derived_attributes
from bookrec_common.clients import dynamodb_client
from bookrec_common.dynamo import from_item, to_item

from bookrec_ratings.settings import RatingsSettings
from bookrec_ratings.store import RatingStore
from scripts import definitions
from scripts.procs import free_port, local_dynamodb, moto_command, port_open, start, wait_until


@pytest.fixture
def serialised_moto(monkeypatch):
    """A moto server answering one request at a time, so its transactions are isolated like DynamoDB's."""
    port = free_port()
    proc = start(moto_command(port, serialised=True))
    wait_until(lambda: port_open(port), 30, "moto server", proc)
    endpoint = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    client = local_dynamodb(endpoint)
    yield client, definitions.create_tables(client, "race")
    proc.terminate()
    proc.wait(10)


async def test_replicas_racing_on_one_book_retry_until_exact(serialised_moto):
    dynamodb, tables = serialised_moto
    dynamodb.put_item(TableName=tables["books"], Item=to_item(with_derived_attributes({"book_id": "OL7W", "title": "T"})))
    settings = RatingsSettings(books_table=tables["books"], ratings_table=tables["ratings"])
    rng = random.Random(3)
    truth: dict[str, int] = {}
    async with dynamodb_client(settings) as client:
        # Separate stores share no lock: only the transaction conditions keep them honest.
        replicas = [RatingStore(client, tables["books"], tables["ratings"], max_attempts=200) for _ in range(4)]
        jobs = []
        for i in range(120):
            user, rating = f"user{i % 90}", rng.randint(1, 5)
            jobs.append((replicas[i % 4], user, rating))
        await asyncio.gather(*(store.change("OL7W", user, rating, utc_now()) for store, user, rating in jobs))
    # Same user re-rated concurrently: the last committed value is in the table; compare to it.
    for item in dynamodb.scan(TableName=tables["ratings"])["Items"]:
        truth[item["user_id"]["S"]] = int(item["rating"]["N"])
    book = from_item(dynamodb.get_item(TableName=tables["books"], Key={"book_id": {"S": "OL7W"}})["Item"])
    assert len(truth) == 90 and book["rating_count"] == 90
    assert book["rating_sum"] == sum(truth.values())
    assert book["ratings_distribution"] == {str(s): sum(1 for v in truth.values() if v == s) for s in range(1, 6)}
    assert sum(r.conflicts for r in replicas) > 0  # the race really happened and was retried
