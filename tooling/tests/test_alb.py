"""The local ALB for real: haproxy running the configuration generated from routes.json, in front of
small aiohttp servers standing in for the services."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from bookrec_local import definitions
from bookrec_local.haproxy import HealthCheck, render_config
from bookrec_local.procs import free_port, port_open, start, stop, wait_until

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None,
                                reason="haproxy is not installed (make deps installs it from Debian's packages)")

NAME = web.AppKey("name", str)
SEEN = web.AppKey("seen", list)
# Fast checks, so that a replica leaves the rotation within a second.
FAST_CHECKS = HealthCheck(interval=0.2, timeout=0.5, healthy_threshold=1, unhealthy_threshold=2)
IDLE_TIMEOUT = 1.0


async def echo(request: web.Request) -> web.StreamResponse:
    if request.path != "/health":
        request.app[SEEN].append(request.raw_path)
    if request.path.endswith("/slow"):
        await asyncio.sleep(IDLE_TIMEOUT * 3)
    if request.path.endswith("/hangup"):
        request.transport.close()  # no answer at all: the ALB's 502
        await asyncio.sleep(1)
    if request.path.endswith("/big"):
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(10):
            await response.write(b"x" * 100_000)
        return response
    return web.json_response({
        "path": request.raw_path, "method": request.method, "body": (await request.read()).decode(),
        "xff": request.headers.getall("X-Forwarded-For", []), "proto": request.headers.get("X-Forwarded-Proto"),
        "port": request.headers.get("X-Forwarded-Port"), "rid": request.headers.get("X-Request-ID"),
    }, headers={"X-Service": request.app[NAME]})


async def upstream(name: str, port: int | None = None) -> TestServer:
    app = web.Application()
    app[NAME] = name
    app[SEEN] = []
    app.router.add_route("*", "/{tail:.*}", echo)
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    return server


@contextlib.contextmanager
def haproxy(tmp_path: Path, targets: dict[str, list[str]], **options):
    """haproxy with the generated configuration on a free port; yields (port, log path)."""
    port = free_port()
    config = tmp_path / f"haproxy-{port}.cfg"
    config.write_text(render_config(definitions.routes(), targets, port=port, idle_timeout=IDLE_TIMEOUT,
                                    health=FAST_CHECKS, **options))
    log = tmp_path / f"haproxy-{port}.log"
    proc = start([shutil.which("haproxy"), "-f", str(config), "-db"], log)
    try:
        wait_until(lambda: port_open(port), 10, "haproxy", proc)
        yield port, log
    finally:
        stop(proc)


NOWHERE = "127.0.0.1:9"  # nothing listens there


@pytest.fixture
async def servers() -> AsyncIterator[dict[str, TestServer]]:
    started = {name: await upstream(name) for name in ("search", "search2", "bookdetail", "ratings")}
    yield started
    for server in started.values():
        await server.close()


@pytest.fixture
async def alb(servers, tmp_path) -> AsyncIterator[ClientSession]:
    address = {name: f"127.0.0.1:{s.port}" for name, s in servers.items()}
    targets = {"search": [address["search"], address["search2"]], "bookdetail": [address["bookdetail"]],
               "ratings": [address["ratings"]], "recommendation": [NOWHERE]}
    with haproxy(tmp_path, targets) as (port, _):
        async with ClientSession(f"http://127.0.0.1:{port}") as session:
            yield session


async def test_forwards_method_path_query_body_and_forwarded_headers(alb):
    async with alb.post("/books/OL1W/rate?x=1", data=b'{"rating": 5}', headers={"X-Request-ID": "r1"}) as r:
        body = await r.json()
        assert r.status == 200 and r.headers["X-Service"] == "ratings"
        alb_port = r.url.port
    assert body["path"] == "/books/OL1W/rate?x=1" and body["method"] == "POST" and body["body"] == '{"rating": 5}'
    assert body["xff"] == ["127.0.0.1"] and body["proto"] == "http" and body["rid"] == "r1"
    assert body["port"] == str(alb_port)


async def test_appends_to_an_existing_forwarded_for_in_one_header(alb):
    async with alb.get("/books/OL1W", headers={"X-Forwarded-For": "10.0.0.1"}) as r:
        assert (await r.json())["xff"] == ["10.0.0.1, 127.0.0.1"]


async def test_round_robin_over_several_replicas(alb):
    seen = []
    for _ in range(4):
        async with alb.get("/search?q=x") as r:
            seen.append(r.headers["X-Service"])
    assert sorted(seen) == ["search", "search", "search2", "search2"]


async def test_streams_large_bodies(alb):
    async with alb.get("/books/OL1W/big") as r:
        assert len(await r.read()) == 1_000_000


@pytest.mark.parametrize("path, detail", [("/nowhere", "no route: /nowhere"),
                                          ("/recommendations/invalidate/alice",
                                           "internal endpoint: /recommendations/invalidate/alice")])
async def test_unrouted_and_internal_paths_are_404_problems(alb, path, detail):
    async with alb.post(path) as r:
        assert r.status == 404 and r.headers["Content-Type"] == "application/problem+json"
        assert r.headers["X-Service"] == "alb"
        assert await r.json() == {"type": "urn:bookrec:problem:no_route", "title": "Not found", "status": 404,
                                  "detail": detail, "code": "no_route", "instance": path}


async def raw_request(port: int, method: str, target: str) -> tuple[int, dict[str, str], bytes]:
    """One request with the request target sent byte for byte (HTTP clients normalise '/./' or '%69')."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {target} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    head, _, body = (await reader.read()).partition(b"\r\n\r\n")
    writer.close()
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


INVALIDATE_VARIANTS = ["/recommendations/invalidate/x", "/recommendations//invalidate/x",
                       "/recommendations/./invalidate/x", "/recommendations/x/../invalidate/x",
                       "/recommendations/%69nvalidate/x", "/recommendations/invalidate%2Fx",
                       "/recommendations%2Finvalidate%2Fx", "/recommendations/invalidate/x/",
                       "/recommendations/invalidate/", "/recommendations/invalidate?x=1"]


async def test_no_spelling_of_the_internal_endpoint_reaches_the_service(tmp_path):
    """The recommender behind the ALB records every request it gets: none of the variants may arrive,
    while its public routes still do."""
    reco = await upstream("recommendation")
    targets = {name: [NOWHERE] for name in definitions.services()}
    targets["recommendation"] = [f"127.0.0.1:{reco.port}"]
    try:
        with haproxy(tmp_path, targets) as (port, _):
            for variant in INVALIDATE_VARIANTS:
                status, headers, _ = await raw_request(port, "POST", variant)
                assert (status, headers.get("x-service")) == (404, "alb"), variant
            assert reco.app[SEEN] == []
            for public in ("/recommendations/alice?limit=5", "/recommendations/refresh"):
                status, headers, _ = await raw_request(port, "POST", public)
                assert (status, headers["x-service"]) == (200, "recommendation")
            assert reco.app[SEEN] == ["/recommendations/alice?limit=5", "/recommendations/refresh"]
    finally:
        await reco.close()


async def test_percent_escapes_reach_the_target_undecoded(alb):
    async with alb.get("/books/OL1W%2Fx/ratings") as r:
        assert r.headers["X-Service"] == "ratings" and (await r.json())["path"] == "/books/OL1W%2Fx/ratings"


async def test_no_target_is_a_503_problem(alb):
    async with alb.get("/recommendations/alice") as r:
        assert r.status == 503 and r.headers["Content-Type"] == "application/problem+json"
        body = await r.json()
    assert body["code"] == "service_unavailable" and body["status"] == 503
    assert body["instance"] == "/recommendations/alice" and "recommendation" in body["detail"]


async def test_a_target_that_hangs_up_is_a_502_problem(alb):
    async with alb.get("/books/OL1W/hangup") as r:
        assert r.status == 502 and (await r.json())["code"] == "bad_gateway"


async def test_silent_target_is_504_problem_after_idle_timeout(alb):
    started = time.monotonic()
    async with alb.get("/books/OL1W/slow") as r:
        assert r.status == 504 and r.headers["X-Service"] == "alb"
        assert (await r.json())["code"] == "gateway_timeout"
    assert time.monotonic() - started < IDLE_TIMEOUT * 2.5


async def test_a_replica_down_leaves_the_rotation_and_returns(tmp_path):
    """Two replicas; one stops: the health check takes it out and no request fails meanwhile (a refused
    connection is retried on the other); restarted on its port, it rejoins."""
    first, second = await upstream("search"), await upstream("search2")
    targets = {name: [NOWHERE] for name in definitions.services()}
    targets["search"] = [f"127.0.0.1:{first.port}", f"127.0.0.1:{second.port}"]
    second_port = second.port
    try:
        with haproxy(tmp_path, targets) as (port, log):
            async with ClientSession(f"http://127.0.0.1:{port}") as alb:
                async def answers(n: int) -> list[tuple[int, str]]:
                    out = []
                    for _ in range(n):
                        async with alb.get("/search?q=x") as r:
                            out.append((r.status, r.headers.get("X-Service", "")))
                    return out

                assert {s for _, s in await answers(4)} == {"search", "search2"}
                await second.close()
                assert await answers(6) == [(200, "search")] * 6  # before and after the check notices
                await wait_for(lambda: "search/search-2 is DOWN" in log.read_text(), 5)
                assert await answers(4) == [(200, "search")] * 4

                second = await upstream("search2", second_port)
                await wait_for(lambda: "search/search-2 is UP" in log.read_text(), 5)
                assert {s for _, s in await answers(4)} == {"search", "search2"}
    finally:
        await first.close()
        await second.close()


async def wait_for(predicate, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def test_the_stack_runs_haproxy_as_one_of_its_processes(tmp_path):
    """Stack.start_alb: the configuration written into the state directory, haproxy in the foreground
    under the stack's pid files, workers as threads, replaced targets, stopped like any other process."""
    import json
    import urllib.error
    import urllib.request

    from bookrec_local.stack import ALB_PORT, Stack

    stack = Stack(tmp_path / "state", port_offset=free_port() - ALB_PORT)
    replica = free_port()
    stack.start_alb(workers=2, targets={"search": [replica]})
    try:
        config = (tmp_path / "state" / "haproxy.cfg").read_text()
        assert "nbthread 2" in config and f"server search-1 127.0.0.1:{replica}" in config
        assert f"bind 127.0.0.1:{stack.port(ALB_PORT)}" in config
        assert set(stack.pids()) == {"alb"}
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(stack.alb_url + "/nowhere", timeout=5)
        assert answer.value.code == 404 and json.loads(answer.value.read())["code"] == "no_route"
    finally:
        assert stack.stop("alb") == 1
    assert not port_open(stack.port(ALB_PORT))


async def test_the_stack_waits_until_the_alb_has_every_target_in_rotation(tmp_path):
    """A service can be ready a moment before HAProxy's next check says so: Stack.up waits for that."""
    from bookrec_local.haproxy import servers_up
    from bookrec_local.stack import ALB_PORT, Stack

    stack = Stack(tmp_path / "state", port_offset=free_port() - ALB_PORT)
    replica = free_port()
    stack.start_alb(targets={service: [replica] for service in ("search", "bookdetail", "ratings",
                                                                "recommendation")})
    try:
        await wait_for(lambda: not servers_up(str(stack.alb_stats_socket))["search/search-1"], 10)
        with pytest.raises(TimeoutError, match="every target up"):
            await asyncio.to_thread(stack.await_alb_targets, 2)
        server = await upstream("any", replica)  # the target starts answering its health path
        try:
            await asyncio.to_thread(stack.await_alb_targets, 20)
            assert all(servers_up(str(stack.alb_stats_socket)).values())
        finally:
            await server.close()
    finally:
        stack.stop("alb")


WEB = definitions.ROOT / "web"


async def test_the_page_is_served_at_root_and_under_web_with_its_headers(alb):
    async with alb.get("/") as r:
        assert r.status == 200 and r.headers["Content-Type"] == "text/html; charset=utf-8"
        assert await r.read() == (WEB / "index.html").read_bytes()
        assert "script-src 'self';" in r.headers["Content-Security-Policy"]
        assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["X-Service"] == "web"
    served = [f for f in WEB.rglob("*") if f.suffix in (".js", ".css", ".svg")]
    assert served
    for file in served:
        async with alb.get(f"/web/{file.relative_to(WEB).as_posix()}?v=1") as r:
            assert r.status == 200, file
            assert await r.read() == file.read_bytes()


@pytest.mark.parametrize("path, detail", [("/web/nope.js", "no such file: /web/nope.js"),
                                          ("/web/README.md", "no such file: /web/README.md"),
                                          ("/nope", "no route: /nope"), ("/index.html", "no route: /index.html")])
async def test_what_the_page_does_not_have_is_a_404_problem(alb, path, detail):
    async with alb.get(path) as r:
        assert r.status == 404 and r.headers["Content-Type"] == "application/problem+json"
        assert (await r.json())["detail"] == detail


async def test_the_api_routes_are_unchanged_beside_the_page(alb):
    for path, service in [("/search?q=x", "search"), ("/books/OL1W", "bookdetail"), ("/books/OL1W/rate", "ratings")]:
        async with alb.get(path) as r:
            assert r.status == 200 and r.headers["X-Service"] == service


async def test_sign_in_reaches_the_identity_endpoint_and_nothing_else_of_it(servers, tmp_path):
    """POST /auth/ with the page's one Cognito call goes to the emulator at '/', unsigned; any other call
    (a DynamoDB scan, say), method or path is the ALB's 404 and never arrives."""
    identity = await upstream("identity")
    targets = {name: [f"127.0.0.1:{servers[name].port}"] for name in ("search", "bookdetail", "ratings")}
    try:
        with haproxy(tmp_path, {**targets, "recommendation": [NOWHERE]},
                     identity_endpoint=f"127.0.0.1:{identity.port}") as (port, _):
            async with ClientSession(f"http://127.0.0.1:{port}") as alb:
                call = {"X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth",
                        "Authorization": "AWS4-HMAC-SHA256 Credential=x/y/us-east-1/dynamodb/aws4_request"}
                async with alb.post("/auth/", data=b"{}", headers=call) as r:
                    assert r.status == 200 and r.headers["X-Service"] == "identity"
                    assert (await r.json())["path"] == "/"
                for method, path, target in [("POST", "/auth/", "DynamoDB_20120810.Scan"), ("GET", "/auth/", None),
                                             ("POST", "/auth/x", call["X-Amz-Target"]),
                                             ("POST", "/auth", call["X-Amz-Target"])]:
                    async with alb.request(method, path, headers={"X-Amz-Target": target} if target else {}) as r:
                        assert r.status == 404 and r.headers["X-Service"] == "alb", (method, path, target)
        assert identity.app[SEEN] == ["/"]
    finally:
        await identity.close()
