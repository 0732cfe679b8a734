"""The invalidation client names the accepted change it is for, over real HTTP."""

from __future__ import annotations

import json

import pytest
from aiohttp import web

from bookrec_common.clients import http_session
from bookrec_ratings.invalidation import RecommendationInvalidator


@pytest.fixture
async def recorder():
    """A real HTTP server recording the bodies posted to the invalidate endpoint."""
    bodies: list[bytes] = []

    async def invalidate(request: web.Request) -> web.Response:
        bodies.append(await request.read())
        return web.json_response({"user_id": request.match_info["user_id"], "invalidated": False,
                                  "cache": "not_cached"})

    app = web.Application()
    app.router.add_post("/recommendations/invalidate/{user_id}", invalidate)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", bodies
    await runner.cleanup()


async def test_ratings_shelvings_and_removals_are_named_with_their_time_and_kind(recorder):
    url, bodies = recorder
    async with http_session() as http:
        invalidator = RecommendationInvalidator(http, url, "token", timeout=2, retries=0)
        assert await invalidator.invalidate("ada", "req-1", book_id="GB5",
                                            changed_at="2026-12-02T09:00:00.000000Z")
        assert await invalidator.invalidate("ada", "req-2", book_id="GB5",
                                            changed_at="2026-12-02T09:01:00.000000Z", removed=True)
        assert await invalidator.invalidate("ada", "req-3")  # no change known: no body, as before
        assert await invalidator.invalidate("ada", "req-4", book_id="GB6", kind="shelf",
                                            changed_at="2026-12-02T09:02:00.000000Z")
        assert await invalidator.invalidate("ada", "req-5", book_id="GB6", kind="shelf",
                                            changed_at="2026-12-02T09:03:00.000000Z", removed=True)
    assert [json.loads(body) if body else None for body in bodies] == [
        {"book_id": "GB5", "changed_at": "2026-12-02T09:00:00.000000Z", "removed": False},
        {"book_id": "GB5", "changed_at": "2026-12-02T09:01:00.000000Z", "removed": True},
        None,
        # A shelving says so; a rating's body is as it was (no kind), as recommenders before shelves read it.
        {"book_id": "GB6", "changed_at": "2026-12-02T09:02:00.000000Z", "removed": False, "kind": "shelf"},
        {"book_id": "GB6", "changed_at": "2026-12-02T09:03:00.000000Z", "removed": True, "kind": "shelf"},
    ]
