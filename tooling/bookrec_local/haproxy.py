"""The local ALB is HAProxy; this module writes its configuration from routes.json.

    python -m bookrec_local.haproxy [--port 8080] [--target search=127.0.0.1:8001,127.0.0.1:8011 ...] [-o FILE]

`render_config` is pure (routes and targets in, configuration text out) and
mirrors the real ALB:

- listener rules in ascending priority, first match wins, matched with
  anchored `path_reg` regexes (tooling/bookrec_local/routing.py translates the
  ALB patterns) against HAProxy's `path`: the path as sent, never decoded or
  normalised;
- fixed responses and the default action answered by HAProxy itself as
  Problem Details JSON, like every error of its own (502, 503, 504);
- X-Forwarded-For appended, X-Forwarded-Proto and X-Forwarded-Port set;
- one backend per service, round robin over its replicas, each checked on the
  service's health path (services.json) like a target group;
- 60 s idle timeouts on both sides, as the ALB's default idle timeout;
- a static rule ("static": "web") answered by HAProxy itself from the folder's
  files (`http-request return ... file`, read once at start; restart the ALB
  to serve edited files), each with its content type and the page's security
  headers; a path under the prefix with no file is the 404 Problem Details;
- with an `identity_endpoint` (the local stack's emulator), POST /auth/ with
  the one Cognito call the page makes (InitiateAuth) forwarded to the emulator's
  Cognito, so the page signs in on its own origin; on AWS the page calls
  Cognito itself and this rule does not exist.

The stack (tooling/bookrec_local/stack.py) writes the file into its state
directory and runs `haproxy -f FILE -db`; docker-compose.yml generates it with
this command into a volume the official haproxy image reads.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shutil
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bookrec_local import definitions
from bookrec_local.routing import FixedResponse, Router, build_router, pattern_to_regex, static_prefix

IDLE_TIMEOUT_SECONDS = 60.0  # the ALB's default idle timeout; the services keep connections longer
CONNECT_TIMEOUT_SECONDS = 10.0  # the ALB gives a target 10 s to accept a connection


@dataclass(frozen=True)
class HealthCheck:
    """How often each replica's health path is asked, and how many answers change its state.

    The target groups (infrastructure/modules/alb) check every 15 s; locally a
    restarted or killed replica should leave and rejoin the rotation within seconds: a replica that is
    down or changing state is asked every `recheck` seconds."""

    interval: float = 2.0
    timeout: float = 2.0
    healthy_threshold: int = 2
    unhealthy_threshold: int = 3
    recheck: float = 0.5


# The ALB's own errors about its targets, answered as Problem Details: status -> (code, title, detail).
# (A request HAProxy cannot parse gets its built-in 400 page: http-error does not reach those.)
ERRORS: dict[int, tuple[str, str, str]] = {
    502: ("bad_gateway", "Bad gateway", "the %[be_name] target closed the connection or answered invalidly"),
    503: ("service_unavailable", "Service unavailable", "no healthy %[be_name] target could take the request"),
    504: ("gateway_timeout", "Gateway timeout", "the %[be_name] target did not answer within the idle timeout"),
}


# What a static folder serves, by file extension; any other file in it (README, screenshots) is not served.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
    ".woff2": "font/woff2",
}
# The page's headers: scripts and styles from its own origin only (no inline script), the API on the same
# origin, covers from any HTTPS host (Open Library's covers redirect to archive.org mirrors).
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
STATIC_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Service": "web",
}
# HAProxy answers a file from one buffer: tune.bufsize is raised for static folders, and a file that would
# not fit (with its headers) is refused when the configuration is generated, not at the first request.
STATIC_BUFSIZE = 65536
MAX_STATIC_FILE = STATIC_BUFSIZE - 8192
# The one Cognito call the page makes, forwarded to the emulator under the page's own origin.
IDENTITY_PATH = "/auth/"
IDENTITY_TARGETS = ("AWSCognitoIdentityProviderService.InitiateAuth",)


def static_files(pattern: str, root: Path, extra: Mapping[str, Path] | None = None) -> dict[str, Path]:
    """URL path -> file, for one pattern of a static rule over the folder `root`: '/' is root/index.html,
    '/web/*' every servable file under root at /web/<relative path>; `extra` adds generated files (the
    page's config.json) at URL paths under the pattern."""
    path, is_prefix = static_prefix(pattern)
    if not is_prefix:
        files = {path: root / "index.html"}
    else:
        files = {path + file.relative_to(root).as_posix(): file for file in sorted(root.rglob("*"))
                 if file.is_file() and file.suffix in CONTENT_TYPES
                 and not any(part.startswith(".") for part in file.relative_to(root).parts)}
        files.update({url: file for url, file in (extra or {}).items() if url.startswith(path)})
    for url, file in files.items():
        if not file.is_file():
            raise ValueError(f"static {url}: no file {file}")
        if file.suffix not in CONTENT_TYPES:
            raise ValueError(f"static {url}: {file.name} is none of the served types {', '.join(CONTENT_TYPES)}")
        if file.stat().st_size > MAX_STATIC_FILE:
            raise ValueError(f"static {url}: {file} is {file.stat().st_size:,} bytes, over the "
                             f"{MAX_STATIC_FILE:,} the local ALB answers from one buffer: split it")
    return files


def _quoted(value: str) -> str:
    if any(ch in value for ch in '"\\\n#$') or not value.isprintable():
        raise ValueError(f"cannot quote {value!r} in the HAProxy configuration")
    return f'"{value}"'


def _static_return(file: Path) -> str:
    headers = " ".join(f"hdr {name} {_quoted(value)}" for name, value in STATIC_HEADERS.items())
    return f"status 200 content-type {_quoted(CONTENT_TYPES[file.suffix])} {headers} file {_quoted(str(file))}"


def _seconds(value: float) -> str:
    return f"{value:g}s" if float(value).is_integer() else f"{round(value * 1000)}ms"


def _json_text(text: str) -> str:
    """A JSON string literal safe inside a single-quoted log-format argument (no quote, '%' doubled)."""
    return json.dumps(text).replace("'", "\\u0027").replace("%", "%%")


def problem_body(status: int, code: str, title: str, detail_format: str) -> str:
    """Problem Details JSON as a log-format string: `detail_format` may hold %[...] samples (already
    log-format); the instance is the request's path, escaped for JSON by HAProxy."""
    return ("{" + f'"type":{_json_text("urn:bookrec:problem:" + code)},"title":{_json_text(title)},'
            f'"status":{status},"detail":"{detail_format}","code":{_json_text(code)},'
            '"instance":"%[path,json(utf8s)]"' + "}")


def _response(status: int, body: str) -> str:
    return f"status {status} content-type application/problem+json hdr X-Service alb lf-string '{body}'"


def _fixed(fixed: FixedResponse) -> str:
    detail = _json_text(fixed.reason)[1:-1] + ": %[path,json(utf8s)]"
    return _response(fixed.status_code, problem_body(fixed.status_code, "no_route", "Not found", detail))


def _server_address(address: str) -> tuple[str, bool]:
    """`host:port` and whether the host is a name to resolve (compose) rather than an IP address."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"target {address!r}: expected host:port")
    try:
        ipaddress.ip_address(host)
        return address, False
    except ValueError:
        return address, True


def render_config(routes: dict[str, Any], targets: dict[str, list[str]], *, bind: str = "127.0.0.1",
                  port: int = 8080, threads: int = 1, idle_timeout: float = IDLE_TIMEOUT_SECONDS,
                  connect_timeout: float = CONNECT_TIMEOUT_SECONDS, health: HealthCheck = HealthCheck(),
                  stats_socket: str | None = None,
                  health_paths: dict[str, str] | None = None,
                  static_roots: Mapping[str, Path] | None = None,
                  static_extra: Mapping[str, Path] | None = None,
                  identity_endpoint: str | None = None) -> str:
    """The HAProxy configuration of an ALB listening on bind:port with `routes` (routes.json's shape) and
    `targets` (service -> ["host:port", ...], several = round robin). A static rule serves the folder
    `static_roots[name]` (default: the repository's folder of that name) plus `static_extra` (URL path ->
    generated file); `identity_endpoint` ("host:port" of the emulator) adds the page's sign-in route."""
    router: Router = build_router(routes)
    if health_paths is None:
        health_paths = {name: spec["health_path"] for name, spec in definitions.services().items()}
    forwarded = {rule.service for rule in router.rules if rule.service}
    missing = sorted(forwarded - set(targets))
    if missing:
        raise ValueError(f"no targets for {', '.join(missing)}")
    resolves = any(_server_address(a)[1] for service in forwarded for a in targets[service])
    statics = {rule.static for rule in router.rules if rule.static}
    roots = {name: Path((static_roots or {}).get(name, definitions.ROOT / name)).resolve() for name in statics}
    for name, root in roots.items():
        if not (root / "index.html").is_file():
            raise ValueError(f"static {name}: no index.html in {root}")
    served = {rule.priority: {url: file for pattern in rule.path_patterns
                              for url, file in static_files(pattern, roots[rule.static], static_extra).items()}
              for rule in router.rules if rule.static}

    out = [
        "# Generated by bookrec_local.haproxy from infrastructure/definitions/routes.json: do not edit.",
        "global",
        f"    nbthread {threads}",
        "    maxconn 4096",
        # Failed requests (and alerts) on stdout; server state changes are already on stderr with -db.
        "    log stdout format raw local0 err",
        *([f"    stats socket {stats_socket} mode 600 level user"] if stats_socket else []),
        *([f"    tune.bufsize {STATIC_BUFSIZE}"] if served else []),
        "",
    ]
    if resolves:
        # Compose service names: resolved at start and again when they move; a replica that is not up yet
        # starts down instead of stopping HAProxy from starting.
        out += ["resolvers system", "    parse-resolv-conf", "    hold valid 10s", ""]
    out += [
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        "    option dontlog-normal",  # failed requests only: the services log every request
        "    option log-separate-errors",
        "    option http-keep-alive",
        f"    timeout connect {_seconds(connect_timeout)}",
        f"    timeout client {_seconds(idle_timeout)}",
        f"    timeout server {_seconds(idle_timeout)}",
        f"    timeout http-keep-alive {_seconds(idle_timeout)}",
        f"    timeout http-request {_seconds(idle_timeout)}",
        "    timeout queue 5s",
        # A refused connection is tried again on another replica, as a target that is going down would be
        # by the ALB once its health check notices.
        "    retries 2",
        "    option redispatch 1",
    ]
    for status, (code, title, detail) in ERRORS.items():
        out.append(f"    http-error {_response(status, problem_body(status, code, title, detail))}")
    out += [
        "",
        "frontend alb",
        f"    bind {bind}:{port}",
        "    # One X-Forwarded-For line, the client's address appended, as the ALB sends it (the services read",
        "    # the last entry of the first line); Proto and Port say what the client connected to.",
        "    http-request set-header X-Forwarded-For \"%[req.fhdr(X-Forwarded-For)], %[src]\""
        " if { req.fhdr(X-Forwarded-For) -m found }",
        "    http-request set-header X-Forwarded-For %[src] unless { req.fhdr(X-Forwarded-For) -m found }",
        "    http-request set-header X-Forwarded-Proto http",
        "    http-request set-header X-Forwarded-Port %[dst_port]",
    ]
    for rule in router.rules:
        regexes = " ".join(f"'^{pattern_to_regex(p)}$'" for p in rule.path_patterns)
        out.append(f"    acl rule_{rule.priority} path_reg {regexes}  # {', '.join(rule.path_patterns)}")
    for priority, files in served.items():
        for i, (url, file) in enumerate(files.items(), start=1):
            out.append(f"    acl file_{priority}_{i} path_reg '^{pattern_to_regex(url)}$'  # {file.name}")
    if identity_endpoint:
        out += [f"    acl identity_path path_reg '^{pattern_to_regex(IDENTITY_PATH)}$'",
                "    acl identity_post method POST",
                f"    acl identity_call req.hdr(X-Amz-Target) -m str {' '.join(IDENTITY_TARGETS)}"]
    # Fixed responses and static files are http-request rules, which run before any use_backend: one only
    # answers when no forwarding rule of a lower priority number matched first.
    earlier_forwards: list[str] = []
    for rule in router.rules:
        earlier = [f"!{name}" for name in earlier_forwards]
        if rule.fixed_response is not None:
            condition = " ".join([f"rule_{rule.priority}", *earlier])
            out.append(f"    http-request return {_fixed(rule.fixed_response)} if {condition}")
        elif rule.static is not None:
            for i, file in enumerate(served[rule.priority].values(), start=1):
                condition = " ".join([f"rule_{rule.priority}", f"file_{rule.priority}_{i}", *earlier])
                out.append(f"    http-request return {_static_return(file)} if {condition}")
            no_file = FixedResponse(404, "no such file")
            condition = " ".join([f"rule_{rule.priority}", *earlier])
            out.append(f"    http-request return {_fixed(no_file)} if {condition}")
        else:
            earlier_forwards.append(f"rule_{rule.priority}")
    if identity_endpoint:
        out.append("    use_backend identity if identity_path identity_post identity_call")
    for rule in router.rules:
        if rule.service:
            out.append(f"    use_backend {rule.service} if rule_{rule.priority}")
    out += ["    default_backend no_route", ""]

    out += ["backend no_route", f"    http-request return {_fixed(router.default)}", ""]
    for service in sorted(forwarded):
        out += [
            f"backend {service}",
            "    balance roundrobin",
            f"    option httpchk GET {health_paths[service]}",
            "    http-check expect status 200",
            f"    default-server check inter {_seconds(health.interval)} fall {health.unhealthy_threshold}"
            f" rise {health.healthy_threshold} fastinter {_seconds(min(health.recheck, health.interval))}"
            f" downinter {_seconds(min(health.recheck, health.interval))}"
            + (" resolvers system init-addr last,libc,none" if resolves else ""),
            f"    timeout check {_seconds(health.timeout)}",
        ]
        for i, address in enumerate(targets[service], start=1):
            out.append(f"    server {service}-{i} {_server_address(address)[0]}")
        out.append("")
    if identity_endpoint:
        # The emulator tells its services apart by X-Amz-Target when a request is unsigned: the page's
        # call reaches its Cognito, and nothing else of the emulator is reachable through the ALB.
        out += ["backend identity",
                "    http-request set-path /",
                "    http-request del-header Authorization",
                "    http-request del-header Cookie",
                f"    server identity-1 {_server_address(identity_endpoint)[0]}",
                ""]
    return "\n".join(out)


def haproxy_binary() -> str:
    """The haproxy program, or a RuntimeError saying how to install it."""
    binary = shutil.which("haproxy")
    if binary is None:
        raise RuntimeError("the local ALB is HAProxy and haproxy is not installed: make deps installs it "
                           "(tooling/ensure-system-deps.sh), or apt-get install haproxy")
    return binary


def default_targets(port_offset: int = 0) -> dict[str, list[str]]:
    """Every replica of every service on loopback, at its port (replica_ports) plus `port_offset`."""
    return {name: [f"127.0.0.1:{port + port_offset}" for port in definitions.replica_ports(name)]
            for name in definitions.services()}


def parse_targets(values: list[str], port_offset: int = 0) -> dict[str, list[str]]:
    targets = default_targets(port_offset)
    for value in values:
        service, _, hosts = value.partition("=")
        if service not in targets or not hosts:
            raise SystemExit(f"--target {value!r}: expected <service>=host:port[,host:port], service one of "
                             f"{', '.join(targets)}")
        targets[service] = hosts.split(",")
    return targets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--port-offset", type=int, default=int(os.environ.get("BOOKREC_PORT_OFFSET", "0")),
                        help="added to every service port from services.json")
    parser.add_argument("--target", action="append", default=[], metavar="SERVICE=HOST:PORT[,HOST:PORT]",
                        help="a service's replicas (several = round robin); default: 127.0.0.1 at each "
                             "replica's port")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("-o", "--output", type=Path, help="write the configuration here (default: stdout)")
    parser.add_argument("--web-dir", type=Path, help="copy the page (web/) here and serve it from there (compose: "
                                                     "a volume the haproxy container reads)")
    parser.add_argument("--web-served-from", help="with --web-dir: where HAProxy finds that folder (default: the "
                                                  "same path)")
    args = parser.parse_args(argv)
    roots: dict[str, Path] = {}
    if args.web_dir:
        shutil.copytree(definitions.ROOT / "web", args.web_dir, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("screenshots", "*.md"))
        roots["web"] = args.web_dir.resolve()
    text = render_config(definitions.routes(), parse_targets(args.target, args.port_offset), bind=args.bind,
                         port=args.port, threads=args.threads, static_roots=roots)
    if args.web_dir and args.web_served_from:  # the files were checked where they are, named where HAProxy reads
        text = text.replace(f'file "{roots["web"]}/', f'file "{args.web_served_from.rstrip("/")}/')
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())


def servers_up(stats_socket: str) -> dict[str, bool]:
    """Each backend server ("service/name") and whether HAProxy has it UP, from its stats socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(2)
        connection.connect(stats_socket)
        connection.sendall(b"show stat\n")
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    lines = answer.decode().splitlines()
    header = lines[0].lstrip("# ").split(",")
    name, server, status = header.index("pxname"), header.index("svname"), header.index("status")
    return {f"{row[name]}/{row[server]}": row[status].startswith("UP")
            for row in (line.split(",") for line in lines[1:] if line)
            if row[server] not in ("FRONTEND", "BACKEND")}
