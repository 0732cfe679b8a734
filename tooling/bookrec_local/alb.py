"""The local ALB: one listener on 127.0.0.1:8080 routing by routes.json.

Same rule semantics as the real ALB (see tooling/bookrec_local/routing.py), matched against the
path as sent, without percent-decoding or dot-segment normalisation. Adds
X-Forwarded-For/Proto/Port, keeps upstream connections alive, streams
bodies, answers fixed responses and its own errors as Problem Details
(502 when a target is down, 504 after the idle timeout). Several targets per
service are balanced round-robin, like a target group.

    python -m bookrec_local.alb --port 8080 [--target search=127.0.0.1:8001,127.0.0.1:8011 ...]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import multiprocessing
import os
import socket
from typing import Any

from aiohttp import ClientSession, ClientTimeout, TCPConnector, client_exceptions, web

from bookrec_local import definitions
from bookrec_local.routing import FixedResponse, Router, build_router

log = logging.getLogger("bookrec.alb")

# Hop-by-hop headers are never forwarded (RFC 9110 section 7.6.1).
HOP_BY_HOP = frozenset(h.lower() for h in (
    "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE", "Trailer",
    "Transfer-Encoding", "Upgrade", "Host"))
STREAM_CHUNK = 64 * 1024


def problem(status: int, code: str, title: str, detail: str, path: str) -> web.Response:
    body = {"type": f"urn:bookrec:problem:{code}", "title": title, "status": status, "detail": detail,
            "code": code, "instance": path}
    return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/problem+json",
                        headers={"X-Service": "alb"})


def request_path(raw_path: str) -> str:
    """The path of a request target as sent: the query and fragment cut off, nothing decoded."""
    return raw_path.split("?", 1)[0].split("#", 1)[0]


class LocalALB:
    def __init__(self, router: Router, targets: dict[str, list[str]], port: int, idle_timeout: float) -> None:
        self.router = router
        self.port = str(port)
        self.idle_timeout = idle_timeout
        self._cycles = {service: itertools.cycle(hosts) for service, hosts in targets.items()}
        self._session: ClientSession | None = None

    async def start(self, app: web.Application) -> None:
        self._session = ClientSession(
            connector=TCPConnector(limit=0, keepalive_timeout=75, ttl_dns_cache=None),
            timeout=ClientTimeout(total=None, sock_connect=2, sock_read=self.idle_timeout),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
        )

    async def stop(self, app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    def forwarded_headers(self, request: web.Request) -> dict[str, str]:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        peer = request.remote or ""
        prior = request.headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{prior}, {peer}" if prior else peer
        headers["X-Forwarded-Proto"] = request.scheme
        headers["X-Forwarded-Port"] = self.port
        if request.host:
            headers["Host"] = request.host
        return headers

    async def handle(self, request: web.Request) -> web.StreamResponse:
        # Rules see the path exactly as sent, like the real ALB's: never percent-decoded, '//', '/./'
        # and '/../' kept (aiohttp's request.path is decoded, so it must not be used here).
        decision = self.router.route(request_path(request.raw_path))
        if isinstance(decision, FixedResponse):
            return problem(decision.status_code, "no_route", "Not found", f"{decision.reason}: {request.path}",
                           request.path)
        if decision.fixed_response is not None:
            fixed = decision.fixed_response
            return problem(fixed.status_code, "no_route", "Not found", f"{fixed.reason}: {request.path}",
                           request.path)
        service = decision.service
        host = next(self._cycles[service])
        url = f"http://{host}{request.raw_path}"
        body: Any = request.content if request.body_exists else None
        assert self._session is not None
        try:
            async with self._session.request(request.method, url, headers=self.forwarded_headers(request),
                                             data=body, allow_redirects=False) as upstream:
                headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
                if upstream.content_length is not None and upstream.content_length <= STREAM_CHUNK:
                    return web.Response(status=upstream.status, headers=headers, body=await upstream.read())
                response = web.StreamResponse(status=upstream.status, headers=headers)
                await response.prepare(request)
                async for chunk in upstream.content.iter_chunked(STREAM_CHUNK):
                    await response.write(chunk)
                await response.write_eof()
                return response
        except (asyncio.TimeoutError, client_exceptions.ServerTimeoutError):
            log.warning("target %s (%s) timed out on %s", service, host, request.path)
            return problem(504, "gateway_timeout", "Gateway timeout",
                           f"the {service} target did not answer within {self.idle_timeout:g}s", request.path)
        except (client_exceptions.ClientConnectorError, client_exceptions.ServerDisconnectedError,
                client_exceptions.ClientOSError) as exc:
            log.warning("target %s (%s) unreachable: %s", service, host, exc)
            return problem(502, "bad_gateway", "Bad gateway", f"the {service} target is unavailable",
                           request.path)


def default_targets(port_offset: int = 0) -> dict[str, list[str]]:
    return {name: [f"127.0.0.1:{spec['port'] + port_offset}"] for name, spec in definitions.services().items()}


def build_app(port: int, targets: dict[str, list[str]], idle_timeout: float) -> web.Application:
    alb = LocalALB(build_router(definitions.routes()), targets, port, idle_timeout)
    app = web.Application(client_max_size=1024**2)
    app.on_startup.append(alb.start)
    app.on_cleanup.append(alb.stop)
    app.router.add_route("*", "/{tail:.*}", alb.handle)
    return app


def parse_targets(values: list[str], port_offset: int) -> dict[str, list[str]]:
    targets = default_targets(port_offset)
    for value in values:
        service, _, hosts = value.partition("=")
        if service not in targets or not hosts:
            raise SystemExit(f"--target {value!r}: expected <service>=host:port[,host:port], service one of "
                             f"{', '.join(targets)}")
        targets[service] = hosts.split(",")
    return targets


def serve(port: int, targets: dict[str, list[str]], idle_timeout: float, sock: socket.socket | None) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    logging.basicConfig(level=logging.INFO, format='{"time": "%(asctime)s", "level": "%(levelname)s", '
                                                   '"logger": "%(name)s", "message": "%(message)s"}')
    web.run_app(build_app(port, targets, idle_timeout), sock=sock, print=None, access_log=None,
                shutdown_timeout=5, keepalive_timeout=75)


def main() -> None:
    parser = argparse.ArgumentParser(description="Local ALB routing by infrastructure/definitions/routes.json")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--port-offset", type=int, default=int(os.environ.get("BOOKREC_PORT_OFFSET", "0")),
                        help="added to every service port from services.json")
    parser.add_argument("--target", action="append", default=[], metavar="SERVICE=HOST:PORT[,HOST:PORT]",
                        help="override a service's targets (several = round-robin)")
    parser.add_argument("--idle-timeout", type=float, default=60.0, help="seconds before a silent target gets 504")
    parser.add_argument("--workers", type=int, default=1, help="processes sharing the listening socket")
    args = parser.parse_args()
    targets = parse_targets(args.target, args.port_offset)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(1024)
    sock.set_inheritable(True)
    if args.workers <= 1:
        serve(args.port, targets, args.idle_timeout, sock)
        return
    workers = [multiprocessing.Process(target=serve, args=(args.port, targets, args.idle_timeout, sock))
               for _ in range(args.workers)]
    for worker in workers:
        worker.start()
    try:
        for worker in workers:
            worker.join()
    except KeyboardInterrupt:
        pass
    finally:
        for worker in workers:
            worker.terminate()


if __name__ == "__main__":
    main()
