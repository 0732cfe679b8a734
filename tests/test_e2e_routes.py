"""Every contract route through the local ALB reaches the service that owns it."""

from __future__ import annotations

import time

import httpx
import pytest

pytestmark = pytest.mark.e2e

# A real Open Library work from the bundled philosophy sample.
REAL_BOOK = "OL827357W"  # Zen and the Art of Motorcycle Maintenance

ROUTES = [
    ("POST", "/search", {"query": "zen", "limit": 5, "offset": 0}, "search"),
    ("GET", "/search?q=zen&limit=5", None, "search"),
    ("POST", "/search/advanced", {"title": "zen", "limit": 5}, "search"),
    ("GET", "/search/shard/ze?limit=5", None, "search"),
    ("GET", "/search/autocomplete?q=ze", None, "search"),
    ("GET", f"/books/{REAL_BOOK}", None, "bookdetail"),
    ("POST", "/books/batch", {"book_ids": [REAL_BOOK]}, "bookdetail"),
    ("POST", f"/books/{REAL_BOOK}/rate", {"user_id": "e2e-router", "rating": 4}, "ratings"),
    ("GET", f"/books/{REAL_BOOK}/ratings", None, "ratings"),
    ("GET", "/users/e2e-router/ratings", None, "ratings"),
    ("PUT", f"/books/{REAL_BOOK}/shelf", {"shelf": "want_to_read"}, "ratings"),
    ("GET", "/users/e2e-router/shelves/want_to_read", None, "ratings"),
    ("DELETE", f"/books/{REAL_BOOK}/shelf", None, "ratings"),
    ("GET", f"/books/{REAL_BOOK}/similar?limit=5", None, "recommendation"),
    ("GET", "/trending?window=week", None, "recommendation"),
    ("GET", "/recommendations/e2e-router?limit=5", None, "recommendation"),
    ("POST", "/recommendations/refresh", None, "recommendation"),
]


def wait_ready(base: str, seconds: float = 30) -> bool:
    """Ready within `seconds`: on the emulator a probe can time out while it serves a big scan."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if httpx.get(base + "/ready", timeout=10).status_code == 200:
            return True
        time.sleep(0.5)
    return False


@pytest.mark.parametrize("method, path, body, owner", ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
def test_contract_route_reaches_its_owner(alb, method, path, body, owner):
    r = alb.request(method, path, json=body, headers={"X-Request-ID": "e2e-route-check"})
    assert r.headers["x-service"] == owner, r.text
    assert r.headers["x-request-id"] == "e2e-route-check"
    # A route not built yet answers its own 501 Problem Details; nothing may fail with 500/502.
    assert r.status_code < 500 or r.status_code in (501, 503), r.text
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith("application/problem+json")


def test_real_book_comes_back_through_the_alb(alb):
    r = alb.get(f"/books/{REAL_BOOK}")
    assert r.status_code == 200
    book = r.json()
    assert book["book_id"] == REAL_BOOK
    assert book["title"] == "Zen and the Art of Motorcycle Maintenance"
    assert [a["name"] for a in book["authors"]] == ["Robert M. Pirsig"]


def test_batch_through_the_alb_keeps_order_and_lists_missing(alb):
    r = alb.post("/books/batch", json={"book_ids": ["OL999999999W", REAL_BOOK, REAL_BOOK]})
    assert r.status_code == 200
    body = r.json()
    assert [b["book_id"] for b in body["items"]] == [REAL_BOOK] and body["missing"] == ["OL999999999W"]


@pytest.mark.parametrize("method, path", [
    ("POST", "/recommendations/invalidate/alice"),
    ("GET", "/metrics"),
    ("GET", "/health"),
    ("GET", "/nowhere"),
])
def test_internal_and_unknown_paths_end_at_the_alb(alb, method, path):
    r = alb.request(method, path)
    assert r.status_code == 404 and r.headers["x-service"] == "alb"
    assert r.json()["status"] == 404


def test_every_service_is_ready_and_exposes_metrics_and_schema(stack):
    from urllib.parse import urlparse

    from bookrec_local import definitions

    offset = urlparse(stack).port - 8080
    for name, spec in definitions.services().items():
        base = f"http://127.0.0.1:{spec['port'] + offset}"
        assert httpx.get(base + "/health").json() == {"status": "ok", "service": name}
        assert wait_ready(base), f"{name} not ready"
        metrics = httpx.get(base + "/metrics")
        assert metrics.status_code == 200 and "# TYPE process_resident_memory_bytes gauge" in metrics.text
        assert httpx.get(base + "/schema/openapi.json").json()["info"]["title"] == f"bookrec {name}"


INVALIDATE_VARIANTS = [
    "/recommendations/invalidate/e2e-variant", "/recommendations//invalidate/e2e-variant",
    "/recommendations/./invalidate/e2e-variant", "/recommendations/x/../invalidate/e2e-variant",
    "/recommendations/%69nvalidate/e2e-variant", "/recommendations/invalidate%2Fe2e-variant",
    "/recommendations%2Finvalidate%2Fe2e-variant", "/recommendations/invalidate/e2e-variant/",
]


def raw_post(base: str, target: str, request_id: str) -> tuple[int, str]:
    """POST with the request target byte for byte (HTTP clients normalise '/./' and '%69')."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(base)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(f"POST {target} HTTP/1.1\r\nHost: {url.netloc}\r\nX-Request-ID: {request_id}\r\n"
                     f"Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    head = response.split(b"\r\n\r\n", 1)[0].decode().lower()
    service = next((line.split(": ", 1)[1] for line in head.split("\r\n") if line.startswith("x-service:")), "")
    return int(head.split()[1]), service


def test_no_spelling_of_the_invalidate_path_reaches_the_recommender(local_stack):
    """Judged by the recommender's own access log, not only by the status: none of the variants'
    request ids may appear in it, while a public route's does."""
    log = local_stack.logs_dir / "recommendation.log"
    for i, variant in enumerate(INVALIDATE_VARIANTS):
        assert raw_post(local_stack.alb_url, variant, f"e2e-variant-{i}") == (404, "alb"), variant
    assert raw_post(local_stack.alb_url, "/recommendations/refresh", "e2e-variant-control")[1] == "recommendation"
    deadline = time.monotonic() + 5
    while "e2e-variant-control" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    text = log.read_text()
    assert "e2e-variant-control" in text  # the log does record what reaches the service
    assert [i for i in range(len(INVALIDATE_VARIANTS)) if f"e2e-variant-{i}" in text] == []
