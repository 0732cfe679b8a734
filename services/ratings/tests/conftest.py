"""Ratings test fixtures: a real HTTP recommender stand-in and a serialised moto server.

The serialised moto server answers one request at a time. The threaded one
(the session fixture) does not isolate concurrent TransactWriteItems from
each other as DynamoDB does, so tests where separate replicas race on one
book use this one: there only the transaction conditions can keep them exact.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from bookrec_local.procs import local_dynamodb, running_moto


@dataclass
class Recommender:
    """A real HTTP server (aiohttp, on a real port) standing in for the recommender's invalidate endpoint.

    It records every call; `fail_first` calls answer 503, `delay` holds each answer, `status` is the answer
    and `cache` what it says it did to the cache (the recommender's values: deleted, not_cached, unavailable,
    disabled).
    """

    url: str = ""
    calls: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    fail_first: int = 0
    delay: float = 0.0
    status: int = 200
    cache: str = "deleted"

    async def invalidate(self, request: web.Request) -> web.Response:
        self.calls.append((request.match_info["user_id"], request.headers.get("X-Request-ID"),
                           request.headers.get("X-Internal-Token")))
        if self.delay:
            await asyncio.sleep(self.delay)
        if len(self.calls) <= self.fail_first:
            return web.json_response({"status": 503}, status=503)
        body = {"user_id": request.match_info["user_id"], "invalidated": self.cache == "deleted",
                "cache": self.cache}
        return web.json_response(body, status=self.status)


@pytest.fixture
def recommender():
    """The stand-in on its own thread and event loop, as a separate process would be.

    (Litestar's AsyncTestClient blocks the test's loop while the app handles a
    request, so a server on that loop could never answer the app's call.)
    """
    stand_in = Recommender()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def serve() -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/recommendations/invalidate/{user_id}", stand_in.invalidate)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner

    runner = asyncio.run_coroutine_threadsafe(serve(), loop).result(10)
    stand_in.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield stand_in
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


@pytest.fixture(scope="session")
def serialised_moto():
    """(endpoint, boto3 client) of a moto server that answers one request at a time."""
    with running_moto(serialised=True) as moto:
        yield moto.endpoint, local_dynamodb(moto.endpoint)
