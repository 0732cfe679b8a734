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


async def test_target_down_is_502_problem(alb):
    async with alb.get("/recommendations/alice") as r:
        assert r.status == 502 and (await r.json())["code"] == "bad_gateway"


async def test_silent_target_is_504_problem_after_idle_timeout(alb):
    async with alb.get("/books/OL1W/slow") as r:
        assert r.status == 504 and (await r.json())["code"] == "gateway_timeout"
