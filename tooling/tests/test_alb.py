"""The local ALB over real HTTP, with real aiohttp upstream servers."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from bookrec_local.alb import build_app

NAME = web.AppKey("name", str)


async def echo(request: web.Request) -> web.StreamResponse:
    if request.path.endswith("/slow"):
        await asyncio.sleep(2)
    if request.path.endswith("/big"):
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(10):
            await response.write(b"x" * 100_000)
        return response
    return web.json_response({
        "path": request.path_qs, "method": request.method, "body": (await request.read()).decode(),
        "xff": request.headers.get("X-Forwarded-For"), "proto": request.headers.get("X-Forwarded-Proto"),
        "port": request.headers.get("X-Forwarded-Port"), "rid": request.headers.get("X-Request-ID"),
    }, headers={"X-Service": request.app[NAME]})


async def upstream(name: str) -> TestServer:
    app = web.Application()
    app[NAME] = name
    app.router.add_route("*", "/{tail:.*}", echo)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@pytest.fixture
async def alb():
    servers = {name: await upstream(name) for name in ("search", "bookdetail", "ratings")}
    servers["search2"] = await upstream("search2")
    targets = {name: [f"127.0.0.1:{s.port}"] for name, s in servers.items() if name != "search2"}
    targets["search"].append(f"127.0.0.1:{servers['search2'].port}")
    targets["recommendation"] = ["127.0.0.1:9"]  # nothing listens there
    server = TestServer(build_app(8080, targets, idle_timeout=0.5), host="127.0.0.1")
    await server.start_server()
    async with ClientSession(f"http://127.0.0.1:{server.port}") as session:
        yield session
    await server.close()
    for s in servers.values():
        await s.close()


async def test_forwards_method_path_query_body_and_forwarded_headers(alb):
    async with alb.post("/books/OL1W/rate?x=1", data=b'{"rating": 5}', headers={"X-Request-ID": "r1"}) as r:
        body = await r.json()
        assert r.status == 200 and r.headers["X-Service"] == "ratings"
    assert body["path"] == "/books/OL1W/rate?x=1" and body["method"] == "POST" and body["body"] == '{"rating": 5}'
    assert body["xff"] == "127.0.0.1" and body["proto"] == "http" and body["port"] == "8080" and body["rid"] == "r1"


async def test_appends_to_an_existing_forwarded_for(alb):
    async with alb.get("/books/OL1W", headers={"X-Forwarded-For": "10.0.0.1"}) as r:
        assert (await r.json())["xff"] == "10.0.0.1, 127.0.0.1"


async def test_round_robin_over_several_targets(alb):
    seen = set()
    for _ in range(4):
        async with alb.get("/search?q=x") as r:
            seen.add(r.headers["X-Service"])
    assert seen == {"search", "search2"}


async def test_streams_large_bodies(alb):
    async with alb.get("/books/OL1W/big") as r:
        assert len(await r.read()) == 1_000_000


@pytest.mark.parametrize("path", ["/nowhere", "/recommendations/invalidate/alice"])
async def test_unrouted_and_internal_paths_are_404_problems(alb, path):
    async with alb.post(path) as r:
        assert r.status == 404 and r.headers["Content-Type"].startswith("application/problem+json")
        assert r.headers["X-Service"] == "alb" and (await r.json())["status"] == 404


async def raw_request(port: int, method: str, target: str) -> tuple[int, dict[str, str]]:
    """One request with the request target sent byte for byte (HTTP clients normalise '/./' or '%69')."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {target} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    head = (await reader.read()).split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
    writer.close()
    headers = dict(line.split(": ", 1) for line in head[1:])
    return int(head[0].split()[1]), headers


INVALIDATE_VARIANTS = ["/recommendations/invalidate/x", "/recommendations//invalidate/x",
                       "/recommendations/./invalidate/x", "/recommendations/x/../invalidate/x",
                       "/recommendations/%69nvalidate/x", "/recommendations/invalidate%2Fx",
                       "/recommendations%2Finvalidate%2Fx", "/recommendations/invalidate/x/",
                       "/recommendations/invalidate/", "/recommendations/invalidate?x=1"]


async def test_no_spelling_of_the_internal_endpoint_reaches_the_service():
    """The recommender behind the ALB records every request it gets: none of the variants may arrive,
    while its public routes still do."""
    seen: list[str] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(request.raw_path)
        return web.json_response({}, headers={"X-Service": "recommendation"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    reco = TestServer(app, host="127.0.0.1")
    await reco.start_server()
    server = TestServer(build_app(8080, {"recommendation": [f"127.0.0.1:{reco.port}"]}, idle_timeout=2),
                        host="127.0.0.1")
    await server.start_server()
    try:
        for variant in INVALIDATE_VARIANTS:
            status, headers = await raw_request(server.port, "POST", variant)
            assert (status, headers.get("X-Service")) == (404, "alb"), variant
        assert seen == []
        for public in ("/recommendations/alice?limit=5", "/recommendations/refresh"):
            status, headers = await raw_request(server.port, "POST", public)
            assert (status, headers["X-Service"]) == (200, "recommendation")
        assert seen == ["/recommendations/alice?limit=5", "/recommendations/refresh"]
    finally:
        await server.close()
        await reco.close()


async def test_target_down_is_502_problem(alb):
    async with alb.get("/recommendations/alice") as r:
        assert r.status == 502 and (await r.json())["code"] == "bad_gateway"


async def test_silent_target_is_504_problem_after_idle_timeout(alb):
    async with alb.get("/books/OL1W/slow") as r:
        assert r.status == 504 and (await r.json())["code"] == "gateway_timeout"
