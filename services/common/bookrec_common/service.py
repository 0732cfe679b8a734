"""The one way a bookrec service is assembled.

`create_service_app` wires what every service shares: JSON logs, request id
and service headers, Problem Details errors, `/health`, `/ready`, `/metrics`,
OpenAPI at `/schema`. A service passes its own routes, lifespan (where its
clients are created and closed), dependencies and readiness checks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from litestar import Litestar, MediaType, Request, Response, get
from litestar.di import Provide
from litestar.middleware.base import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.prometheus import PrometheusController

from bookrec_common.context import RequestContextMiddleware, response_headers_hook
from bookrec_common.errors import EXCEPTION_HANDLERS, PROBLEM_JSON
from bookrec_common.logs import configure_logging
from bookrec_common.metrics import RequestMetrics, RequestMetricsMiddleware
from bookrec_common.settings import ServiceSettings

# Bounded request bodies: the largest legitimate body (a 100-id batch) is a few KB.
MAX_BODY_BYTES = 64 * 1024
UNMEASURED_PATHS = ("/metrics", "/health", "/ready", "/schema")


@dataclass(frozen=True)
class ReadinessCheck:
    """A dependency probe. A failing required check makes `/ready` 503; an optional one, degraded.
    A probe may return a dict of facts (versions, ages) shown beside its result."""

    name: str
    probe: Callable[[Litestar], Awaitable[Any]]
    required: bool = True


@asynccontextmanager
async def _rate_limits_synced(app: Litestar) -> AsyncIterator[None]:
    """Entered after the service's own lifespan, so left before it closes Redis: the hits a limiter
    counted since its last sync reach Redis before the process goes."""
    yield
    for limiter in app.state.get("rate_limiters", {}).values():
        await limiter.aclose()


@get("/health", include_in_schema=False)
async def health(request: Request) -> dict[str, str]:
    """Liveness: no I/O, so a dependency blip never gets a healthy task killed."""
    return {"status": "ok", "service": request.app.state.service_name}


@get("/ready", include_in_schema=False)
async def ready(request: Request) -> Response[dict[str, Any]]:
    app = request.app
    checks: Sequence[ReadinessCheck] = app.state.readiness_checks
    timeout: float = app.state.ready_timeout

    details: dict[str, Any] = {}

    async def run(check: ReadinessCheck) -> tuple[ReadinessCheck, str | None]:
        try:
            detail = await asyncio.wait_for(check.probe(app), timeout)
            if isinstance(detail, dict):
                details[check.name] = detail
            return check, None
        except Exception as exc:  # noqa: BLE001 - any failure means "down"
            return check, f"{type(exc).__name__}: {exc}"[:200] or type(exc).__name__

    results = await asyncio.gather(*(run(c) for c in checks))
    report = {c.name: {"ok": err is None, "required": c.required, **({"error": err} if err else {}),
                       **details.get(c.name, {})}
              for c, err in results}
    down_required = [c.name for c, err in results if err and c.required]
    down_optional = [c.name for c, err in results if err and not c.required]
    service = app.state.service_name
    if down_required:
        return Response(
            {"type": "urn:bookrec:problem:not_ready", "title": "Not ready", "status": 503,
             "detail": f"{service} is not ready: {', '.join(down_required)} down", "code": "not_ready",
             "service": service, "checks": report},
            status_code=503, media_type=PROBLEM_JSON, headers={"Retry-After": "1"},
        )
    status = "degraded" if down_optional else "ready"
    return Response({"status": status, "service": service, "checks": report}, media_type=MediaType.JSON)


def create_service_app(
    settings: ServiceSettings,
    route_handlers: Sequence[Any],
    *,
    lifespan: Sequence[Callable[[Litestar], Any]] = (),
    dependencies: dict[str, Provide] | None = None,
    readiness: Sequence[ReadinessCheck] = (),
    description: str = "",
    on_startup: Sequence[Callable[[Litestar], Any]] = (),
) -> Litestar:
    name = settings.service_name
    configure_logging(name, settings.log_level)
    metrics = RequestMetrics(prefix="bookrec", app_name=name)
    app = Litestar(
        route_handlers=[health, ready, PrometheusController, *route_handlers],
        lifespan=[*lifespan, _rate_limits_synced],
        on_startup=list(on_startup),
        dependencies=dependencies or {},
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]  # handlers typed per exception class, the mapping by its base
        middleware=[DefineMiddleware(RequestMetricsMiddleware, metrics=metrics, exclude=UNMEASURED_PATHS),
                    DefineMiddleware(RequestContextMiddleware, log_requests=settings.access_log)],
        before_send=[response_headers_hook(name)],
        openapi_config=OpenAPIConfig(title=f"bookrec {name}", version="1.0.0", description=description,
                                     path="/schema",
                                     components=Components(security_schemes={"bearer": SecurityScheme(
                                         type="http", scheme="bearer", bearer_format="JWT",
                                         description="An access token of the Cognito user pool")})),
        request_max_body_size=MAX_BODY_BYTES,
        logging_config=None,  # our JSON logging, configured above, stays in charge
        debug=False,
    )
    app.state.service_name = name
    app.state.readiness_checks = tuple(readiness)
    app.state.ready_timeout = settings.ready_timeout
    return app
