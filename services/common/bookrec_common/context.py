"""Request id and service name on every request, response and log line."""

from __future__ import annotations

import time
import uuid
from typing import Any, cast

from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from bookrec_common.logs import current_request_id, log_access

REQUEST_ID_HEADER = "x-request-id"
SERVICE_HEADER = "x-service"
_MAX_ID_LENGTH = 128


def request_id_of(scope: Scope) -> str:
    """The request's id: taken from X-Request-ID when sane, else generated; stable for the request."""
    state: dict[str, Any] = scope.setdefault("state", {})
    request_id = state.get("request_id")
    if request_id is None:
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                candidate = value.decode("latin-1").strip()
                if 0 < len(candidate) <= _MAX_ID_LENGTH and candidate.isprintable():
                    request_id = candidate
                break
        request_id = request_id or uuid.uuid4().hex
        state["request_id"] = request_id
    return request_id


# A JSON API needs no active content; the OpenAPI pages under /schema load their own scripts.
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-resource-policy": "same-site",
}
API_CSP = "default-src 'none'; frame-ancestors 'none'"


def response_headers_hook(service: str):
    """A `before_send` hook: runs for every response, unknown routes included.

    Sets (replacing any of the same name) the request id, the service and the security headers."""
    fixed = [(name.encode(), value.encode()) for name, value in
             ((SERVICE_HEADER, service), *SECURITY_HEADERS.items())]
    csp = (b"content-security-policy", API_CSP.encode())
    api_names = frozenset([REQUEST_ID_HEADER.encode(), *(name for name, _ in fixed), csp[0]])
    schema_names = api_names - {csp[0]}

    async def before_send(message: Message, scope: Scope) -> None:
        if message["type"] == "http.response.start":
            api = not scope.get("path", "").startswith("/schema")
            ours = api_names if api else schema_names
            headers = [h for h in message.get("headers", ()) if h[0].lower() not in ours]
            headers.append((REQUEST_ID_HEADER.encode(), request_id_of(scope).encode("latin-1")))
            headers.extend(fixed)
            if api:
                headers.append(csp)
            message["headers"] = headers

    return before_send


class RequestContextMiddleware:
    """Binds the request id to the log context and writes one access log line per request."""

    def __init__(self, app: ASGIApp, log_requests: bool = True) -> None:
        self.app = app
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = current_request_id.set(request_id_of(scope))
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if self.log_requests:
                http = cast("HTTPScope", scope)  # the type is checked above
                log_access(http["method"], http["path"], status,
                           round((time.perf_counter() - started) * 1000, 2), current_request_id.get())
            current_request_id.reset(token)
