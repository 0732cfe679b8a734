"""Request metrics in Prometheus: the series Litestar's Prometheus middleware exports, at less cost.

Same names, labels and semantics as `litestar.plugins.prometheus.PrometheusMiddleware` with
`group_path=True` (what dashboards and alarms read):

  <prefix>_requests_total{method, path, status_code, app_name}            counter
  <prefix>_request_duration_seconds{method, path, status_code, app_name}  histogram, until the last body
  <prefix>_requests_in_progress{method, path, status_code, app_name}      gauge (status_code is always 200)
  <prefix>_requests_error_total{method, path, status_code, app_name}      counter, 5xx only

The label children of a (method, route, status) are looked up once and kept, so a request costs
a dict lookup and the increments, not a `labels()` call per series.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any, cast

from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send
from prometheus_client import REGISTRY, Counter, Gauge, Histogram

LABELS = ("method", "path", "status_code", "app_name")


_COLLECTORS: dict[str, Any] = {}  # by name: prometheus_client has no public lookup of a registered collector


def _metric(kind: type, name: str, documentation: str, **kwargs: Any) -> Any:
    """The collector `name`, registered once per process (several apps may be built in one process)."""
    existing = _COLLECTORS.get(name)
    if existing is None:
        existing = _COLLECTORS[name] = kind(name=name, documentation=documentation, labelnames=LABELS,
                                            registry=REGISTRY, **kwargs)
    return existing


class RequestMetrics:
    """The request series of one app, with their label children cached."""

    def __init__(self, prefix: str, app_name: str) -> None:
        self.app_name = app_name
        self.requests = _metric(Counter, f"{prefix}_requests_total", "Total requests")
        self.duration = _metric(Histogram, f"{prefix}_request_duration_seconds", "Request duration, in seconds")
        self.in_progress = _metric(Gauge, f"{prefix}_requests_in_progress", "Total requests currently in progress",
                                   multiprocess_mode="livesum")
        self.errors = _metric(Counter, f"{prefix}_requests_error_total", "Total errors in requests")
        self._done: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}
        self._running: dict[tuple[str, str], Any] = {}

    def running(self, method: str, path: str) -> Any:
        key = (method, path)
        gauge = self._running.get(key)
        if gauge is None:
            gauge = self._running[key] = self.in_progress.labels(method, path, 200, self.app_name)
        return gauge

    def done(self, method: str, path: str, status: int) -> tuple[Any, Any, Any]:
        """(requests counter, duration histogram, error counter or None) of a finished request."""
        key = (method, path, status)
        children = self._done.get(key)
        if children is None:
            values = (method, path, status, self.app_name)
            children = self._done[key] = (self.requests.labels(*values), self.duration.labels(*values),
                                          self.errors.labels(*values) if status >= 500 else None)
        return children


class RequestMetricsMiddleware:
    """Counts and times every HTTP request of a route, except the paths matching `exclude` (regexes)."""

    def __init__(self, app: ASGIApp, metrics: RequestMetrics, exclude: Sequence[str] = ()) -> None:
        self.app = app
        self.metrics = metrics
        self.exclude = re.compile("|".join(exclude)) if exclude else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.exclude is not None and self.exclude.findall(scope["path"])):
            await self.app(scope, receive, send)
            return
        http = cast("HTTPScope", scope)  # the type is checked above
        method, path = http["method"], http.get("path_template") or http["path"]
        started = time.perf_counter()
        span: list[float] = [200, 0.0]  # status, duration until the last body message

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                span[0] = message["status"]
            elif message["type"] == "http.response.body":
                span[1] = time.perf_counter() - started
            await send(message)

        running = self.metrics.running(method, path)
        running.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            running.dec()
            requests, duration, errors = self.metrics.done(method, path, int(span[0]))
            if errors is not None:
                errors.inc()
            requests.inc()
            duration.observe(span[1])
