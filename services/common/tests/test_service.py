"""What every service app shares: headers, Problem Details, request metrics and the access log."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from litestar import Litestar, Response, get
from litestar.params import FromPath
from litestar.testing import AsyncTestClient

from bookrec_common.errors import NotFound
from bookrec_common.logs import ACCESS_FLUSH_SECONDS, access_log, configure_logging, log_access
from bookrec_common.service import create_service_app
from bookrec_common.settings import ServiceSettings


@get("/items/{item_id:int}")
async def item(item_id: FromPath[int]) -> dict[str, int]:
    if item_id == 0:
        raise NotFound("no item 0")
    if item_id == 500:
        raise RuntimeError("boom")
    return {"item_id": item_id}


@get("/framed")
async def framed() -> Response[dict[str, str]]:
    return Response({"ok": "yes"}, headers={"X-Frame-Options": "SAMEORIGIN"})


@pytest.fixture
async def client():
    app = create_service_app(ServiceSettings(service_name="svc-test"), [item, framed])
    logs = io.StringIO()
    logging.getLogger().handlers[0].setStream(logs)  # where the service's stdout would be
    async with AsyncTestClient(app) as c:
        c.logs = logs
        yield c
    logging.getLogger().handlers[:] = []


def access_lines(logs: io.StringIO) -> list[dict]:
    logging.getLogger().handlers[0].flush()
    lines = [json.loads(line) for line in logs.getvalue().splitlines() if '"bookrec.access"' in line]
    logs.seek(0)
    logs.truncate()
    return lines


async def test_responses_carry_request_id_service_and_security_headers(client):
    r = await client.get("/items/7", headers={"X-Request-ID": "req-42"})
    assert r.status_code == 200 and r.json() == {"item_id": 7}
    assert r.headers["x-request-id"] == "req-42" and r.headers["x-service"] == "svc-test"
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer" and r.headers["cross-origin-resource-policy"] == "same-site"
    assert r.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    generated = (await client.get("/items/8")).headers["x-request-id"]
    assert len(generated) == 32 and generated != "req-42"


async def test_a_header_of_ours_set_by_a_handler_is_replaced_not_doubled(client):
    r = await client.get("/framed")
    assert r.headers.get_list("x-frame-options") == ["DENY"]


async def test_schema_pages_have_no_api_csp(client):
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200 and "content-security-policy" not in r.headers
    assert r.headers["x-service"] == "svc-test" and r.headers["x-request-id"]


async def test_errors_are_problems_with_the_same_headers(client):
    missing = await client.get("/items/0")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")
    assert missing.json()["code"] == "not_found" and missing.headers["x-service"] == "svc-test"
    unknown = await client.get("/nowhere", headers={"X-Request-ID": "req-404"})
    assert unknown.status_code == 404 and unknown.headers["x-request-id"] == "req-404"
    failed = await client.get("/items/500")
    assert failed.status_code == 500 and "boom" not in failed.text


def _sample(metrics: str, name: str, **labels: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_request_metrics_count_routes_by_template_status_and_app(client):
    before = (await client.get("/metrics")).text
    labels = {"app_name": "svc-test", "method": "GET", "path": "/items/{item_id}"}
    for n in (1, 2, 0, 500):
        await client.get(f"/items/{n}")
    await client.get("/health")
    metrics = (await client.get("/metrics")).text

    def grew(name: str, **more: str) -> float:
        return _sample(metrics, name, **labels, **more) - _sample(before, name, **labels, **more)

    assert grew("bookrec_requests_total", status_code="200") == 2
    assert grew("bookrec_requests_total", status_code="404") == 1
    assert grew("bookrec_request_duration_seconds_count", status_code="200") == 2
    assert grew("bookrec_requests_error_total", status_code="500") == 1
    assert grew("bookrec_requests_error_total", status_code="404") == 0
    assert 'bookrec_requests_in_progress{app_name="svc-test",method="GET",path="/items/{item_id}",' \
           'status_code="200"} 0.0' in metrics
    assert 'path="/health"' not in metrics and 'path="/metrics"' not in metrics


@pytest.mark.parametrize("alone", [True, False], ids=["straight to the stream", "through logging"])
async def test_one_access_line_per_request_with_its_fields(client, monkeypatch, alone):
    root = logging.getLogger()
    if alone:
        monkeypatch.setattr(root, "handlers", root.handlers[:1])  # ours alone, as in a service (not pytest's)
    access_lines(client.logs)
    await client.get("/items/3", headers={"X-Request-ID": "req-log"})
    [line] = access_lines(client.logs)
    assert list(line) == ["time", "level", "logger", "message", "service", "request_id", "method", "path", "status",
                          "duration_ms"]
    assert line["message"] == "GET /items/3 200" and line["level"] == "INFO" and line["service"] == "svc-test"
    assert line["request_id"] == "req-log" and line["status"] == 200 and line["duration_ms"] >= 0


async def test_access_lines_are_written_in_batches_in_order_with_other_records(client, monkeypatch):
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", root.handlers[:1])  # ours alone, as in a service (not pytest's)
    monkeypatch.setattr(logging.getLogger("httpx"), "level", logging.WARNING)
    access_lines(client.logs)
    await client.get("/items/4")
    await client.get("/items/5")
    assert client.logs.getvalue() == ""  # waiting for the batch
    logging.getLogger("bookrec.test").warning("after two requests")
    lines = client.logs.getvalue().splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["GET /items/4 200", "GET /items/5 200",
                                                               "after two requests"]
    client.logs.seek(0)
    client.logs.truncate()
    await client.get("/items/6")
    await asyncio.sleep(ACCESS_FLUSH_SECONDS * 3)
    assert json.loads(client.logs.getvalue())["message"] == "GET /items/6 200"  # written by the timer


def test_the_access_line_is_what_the_json_formatter_writes(monkeypatch):
    configure_logging("svc-test")
    handler = logging.getLogger().handlers[0]
    monkeypatch.setattr(time, "time", lambda: 1_790_000_000.0423)
    fast = handler.access_line("GET", "/search/ü\"x", 200, 1.25, "rid-1")
    record = access_log.makeRecord(access_log.name, logging.INFO, __file__, 1, "%s %s %s",
                                   ("GET", "/search/ü\"x", 200), None,
                                   extra={"method": "GET", "path": "/search/ü\"x", "status": 200, "duration_ms": 1.25})
    handler.filter(record)
    record.request_id = "rid-1"
    assert fast == handler.format(record) + "\n"
    logging.getLogger().handlers[:] = []


def test_the_access_log_goes_through_logging_when_logging_is_reconfigured():
    configure_logging("svc-test")
    records: list[logging.LogRecord] = []
    collector = logging.Handler()
    collector.emit = records.append  # another handler on the root, as a test or a log shipper may add
    logging.getLogger().addHandler(collector)
    log_access("POST", "/search", 201, 3.5, "rid-2")
    [record] = [r for r in records if r.name == "bookrec.access"]
    assert record.getMessage() == "POST /search 201" and record.path == "/search" and record.duration_ms == 3.5
    logging.getLogger().handlers[:] = []


def test_the_access_log_stays_quiet_above_info():
    configure_logging("svc-test", "WARNING")
    logs = io.StringIO()
    logging.getLogger().handlers[0].setStream(logs)
    log_access("GET", "/x", 200, 1.0, None)
    assert logs.getvalue() == ""
    logging.getLogger().handlers[:] = []


async def test_rate_limiters_are_closed_before_the_services_clients():
    events: list[str] = []

    class Limiter:
        async def aclose(self) -> None:
            events.append("limiter closed")

    @asynccontextmanager
    async def clients(app: Litestar) -> AsyncIterator[None]:
        app.state.rate_limiters = {"search": Limiter()}
        yield
        events.append("clients closed")

    app = create_service_app(ServiceSettings(service_name="svc-test"), [item], lifespan=[clients])
    async with AsyncTestClient(app):
        pass
    logging.getLogger().handlers[:] = []
    assert events == ["limiter closed", "clients closed"]
