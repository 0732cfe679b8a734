"""bookdetail over HTTP against a real moto server."""

from __future__ import annotations

import time

import boto3
import pytest
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY

from bookrec_bookdetail.app import create_app
from bookrec_bookdetail.settings import BookdetailSettings
from bookrec_catalog.catalog import utc_now, with_derived_attributes
from bookrec_catalog.changes import tombstone
from bookrec_catalog.dynamo import to_item
from bookrec_local import definitions
from bookrec_local.procs import free_port, moto_command, port_open, start, wait_until

BOOKS = [
    {"book_id": "OL45883W", "title": "The Republic", "authors": [{"author_id": "OL12A", "name": "Plato"}],
     "subjects": ["Philosophy"], "first_publish_year": -375, "cover_id": 7, "isbn_13": ["9780140455113"],
     "ratings_distribution": {"4": 1, "5": 3}, "original_title": "Πολιτεία"},
    {"book_id": "OL2W", "title": "Meditations",
     "authors": [{"author_id": "OL3A", "name": "Marcus Aurelius"}]},
]


@pytest.fixture
async def client(tables, dynamodb):
    for book in BOOKS:
        dynamodb.put_item(TableName=tables["books"], Item=to_item(with_derived_attributes(book)))
    app = create_app(BookdetailSettings(books_table=tables["books"], access_log=False))
    async with AsyncTestClient(app) as c:
        yield c


async def test_get_book_returns_the_stored_record(client):
    r = await client.get("/books/OL45883W", headers={"X-Request-ID": "req-123"})
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "req-123" and r.headers["x-service"] == "bookdetail"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in r.headers["content-security-policy"]
    body = r.json()
    assert body["title"] == "The Republic" and body["authors"] == [{"author_id": "OL12A", "name": "Plato"}]
    assert body["rating_count"] == 4 and body["avg_rating"] == 4.75
    assert body["ratings_distribution"] == {"1": 0, "2": 0, "3": 0, "4": 1, "5": 3}
    assert body["first_publish_year"] == -375 and body["isbn_13"] == ["9780140455113"]
    assert body["original_title"] == "Πολιτεία"


async def test_unknown_book_is_404_problem(client):
    r = await client.get("/books/OL999W")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "book_not_found" and r.headers["x-request-id"]


@pytest.mark.parametrize("path", ["/books/not-an-id", "/books/OL1W%0A", "/books/OL0W"])
async def test_malformed_id_is_400_problem(client, path):
    r = await client.get(path)
    assert r.status_code == 400
    assert r.json()["errors"] == [{"field": "book_id", "message": "malformed book id", "source": "path"}]


async def test_batch_keeps_order_collapses_duplicates_and_lists_missing(client):
    r = await client.post("/books/batch", json={"book_ids": ["OL2W", "OL404W", "OL45883W", "OL2W"]})
    assert r.status_code == 200
    body = r.json()
    assert [b["book_id"] for b in body["items"]] == ["OL2W", "OL45883W"]
    assert body["count"] == 2 and body["missing"] == ["OL404W"]


async def test_a_deleted_book_is_404_alone_and_missing_in_a_batch_like_an_unknown_one(client, dynamodb,
                                                                                        tables):
    dynamodb.put_item(TableName=tables["books"], Item=to_item(tombstone("OL2W", utc_now(), time.time())))
    alone, unknown = await client.get("/books/OL2W"), await client.get("/books/OL404W")
    assert alone.status_code == unknown.status_code == 404
    assert alone.json()["code"] == unknown.json()["code"] == "book_not_found"
    r = await client.post("/books/batch", json={"book_ids": ["OL2W", "OL404W", "OL45883W"]})
    assert r.status_code == 200
    body = r.json()
    assert [b["book_id"] for b in body["items"]] == ["OL45883W"]
    assert body["count"] == 1 and body["missing"] == ["OL2W", "OL404W"]


@pytest.mark.parametrize("payload, field", [
    ({"book_ids": []}, "book_ids"),
    ({"book_ids": [f"OL{i}W" for i in range(1, 102)]}, "book_ids"),
    ({"book_ids": "OL1W"}, "book_ids"),
    ({}, "book_ids"),
    ({"book_ids": ["OL1W", 5]}, "book_ids"),
    ({"book_ids": ["OL1W", "bad"]}, "book_ids[1]"),
    ({"book_ids": ["OL1W"], "extra": 1}, "extra"),
])
async def test_bad_batch_is_400_naming_the_field(client, payload, field):
    r = await client.post("/books/batch", json=payload)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["code"] == "validation_failed"
    assert any(field in e["field"] for e in body["errors"]), body


async def test_batch_over_limit_names_the_limit(client):
    r = await client.post("/books/batch", json={"book_ids": [f"OL{i}W" for i in range(1, 102)]})
    assert "100" in r.json()["detail"]


async def test_unknown_route_and_wrong_method_are_problems(client):
    r = await client.get("/nowhere")
    assert r.status_code == 404 and r.json()["code"] == "not_found" and r.headers["x-service"] == "bookdetail"
    r = await client.delete("/books/OL2W")
    assert r.status_code == 405 and r.json()["code"] == "method_not_allowed"


async def test_invalid_json_is_400(client):
    r = await client.post("/books/batch", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")


async def test_health_ready_metrics_schema(client):
    assert (await client.get("/health")).json()["status"] == "ok"
    ready = await client.get("/ready")
    assert ready.status_code == 200 and ready.json()["checks"]["dynamodb"]["ok"] is True
    def served() -> float:
        return REGISTRY.get_sample_value("dynamodb_items_read_total", {"purpose": "serving"}) or 0.0

    before = served()
    await client.get("/books/OL2W")
    await client.post("/books/batch", json={"book_ids": ["OL45883W", "OL2W", "OL404W"]})
    assert served() == before + 3  # one GetItem and two books of the batch: the items DynamoDB read
    metrics = (await client.get("/metrics")).text
    assert 'bookrec_requests_total{' in metrics and 'path="/books/{book_id}"' in metrics
    assert 'dynamodb_items_read_total{purpose="serving"}' in metrics
    schema = (await client.get("/schema/openapi.json")).json()
    assert "/books/batch" in schema["paths"]


async def test_dynamodb_down_gives_fast_503_and_recovers_without_restart(monkeypatch):
    """A private moto server is stopped under the running service, then started again."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)

    def start_moto_with_book():
        proc = start(moto_command(port))
        wait_until(lambda: port_open(port), 30, "moto server", proc)
        client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
        names = definitions.create_tables(client, "down")
        client.put_item(TableName=names["books"], Item=to_item(with_derived_attributes(BOOKS[1])))
        return proc, names

    proc, names = start_moto_with_book()
    app = create_app(BookdetailSettings(books_table=names["books"], access_log=False))
    try:
        async with AsyncTestClient(app) as c:
            assert (await c.get("/books/OL2W")).status_code == 200
            proc.terminate()
            proc.wait(10)
            started = time.monotonic()
            r = await c.get("/books/OL2W")
            assert r.status_code == 503 and r.json()["code"] == "dependency_unavailable"
            assert r.headers["retry-after"] == "1"
            assert time.monotonic() - started < 5  # bounded, not a hang
            ready = await c.get("/ready")
            assert ready.status_code == 503 and "dynamodb" in ready.json()["detail"]
            assert (await c.post("/books/batch", json={"book_ids": ["OL2W"]})).status_code == 503
            proc, _ = start_moto_with_book()
            assert (await c.get("/ready")).status_code == 200
            assert (await c.get("/books/OL2W")).json()["title"] == "Meditations"
    finally:
        proc.terminate()
        proc.wait(10)
