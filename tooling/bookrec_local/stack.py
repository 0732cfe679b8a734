"""The local stack: the emulator, Redis, the four services, their builders and the local ALB (HAProxy).

    python -m bookrec_local.stack run      # foreground; Ctrl-C stops everything it started
    python -m bookrec_local.stack up       # background; pid files in .run/pids, logs in .run/logs
    python -m bookrec_local.stack down     # stop a background stack
    python -m bookrec_local.stack status

Everything listens on loopback. Tables come from infrastructure/definitions/
tables.json (through Terraform's environments/local when terraform is
available), then the seed catalogue is loaded through the ETL.

As on ECS, a service with "replicas": N in services.json runs N processes
(replica i on its port + 10 i, all targets of its ALB backend; the first one is
named after the service and is the one other services call; all of them write to
logs/<service>.log, as all tasks of a service log to its one log group), and a
service with a "builder" gets that builder as a process of its own
(`<service>-builder`, logs/<service>-builder.log), publishing its artifacts to the
stack's artifact bucket, which its replicas load instead of scanning the tables.

`Stack` is the one API for a local stack: the command line above, the test
fixtures, the load-test runner and the experiments all start, inspect,
reconfigure and stop stacks through it. A stack lives in its state directory
(pids/, logs/, env.json), so another process can find and stop it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from bookrec_local import definitions
from bookrec_local.activity_seed import replay_seed_activity
from bookrec_local.haproxy import IDENTITY_PATH, default_targets, haproxy_binary, render_config, servers_up
from bookrec_local.identity import create_identity, issue_token
from bookrec_local.procs import (
    LOCAL_AWS_ENV,
    http_ok,
    local_dynamodb,
    local_s3,
    moto_command,
    port_open,
    redis_command,
    start,
    unsupported_moto,
    wait_until,
)

ROOT = definitions.ROOT
MOTO_PORT, REDIS_PORT, ALB_PORT = 4566, 6379, 8080
# Every service loads what it serves before it is ready: the full catalogue takes the emulator a minute or
# two to hand out on two cores.
STARTUP_READY_SECONDS = 420
STOP_GRACE_SECONDS = 10
# How often each local builder runs (`--every`). On AWS the scheduler starts one every schedule_minutes
# (services.json); locally a run that finds nothing changed costs a few reads, so they run far more often:
# a stack's first artifacts come as soon as the seed is in, and a replica (re)started later loads an
# artifact at most this old and catches up from the change feed. A recommendation model is rebuilt from
# full scans of both tables whenever a rating or shelving came in: at the full seed (81,619 items) that keeps
# the emulator's one process busy for about a minute, and every other DynamoDB call of the stack waits
# behind it (7 s stalls under 20 shelving readers), so locally it runs every 5 minutes. A reader's list
# counts their newest ratings and shelves at once either way; only the model's neighbours wait for it.
BUILDER_EVERY_SECONDS = {"search": 30, "recommendation": 300}


def say(message: str) -> None:
    print(f"[stack] {message}", flush=True)


def builder_name(service: str) -> str:
    return f"{service}-builder"


def builder_command(service: str) -> list[str]:
    module = definitions.services()[service]["builder"]["module"]
    return [sys.executable, "-m", module, "--every", str(BUILDER_EVERY_SECONDS.get(service, 60))]


def granian_command(package: str, port: int) -> list[str]:
    return [str(Path(sys.executable).with_name("granian")), "--interface", "asgi", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--loop", "auto",
            "--http", "1", "--backlog", "2048", f"{package}.app:create_app"]


def ready(url: str) -> bool:
    """A readiness probe answered 200 (a 503 while loading means not yet)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except Exception:  # noqa: BLE001 - not answering, however: not healthy
        return False


def _alive(pid: int) -> bool:
    try:  # a child of this process that exited stays a zombie (and answers signals) until reaped
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass  # not our child: its own parent reaps it
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)  # each process leads its own group: its children go too


@dataclass
class Stack:
    """One local stack, identified by its state directory and port offset."""

    state_dir: Path = ROOT / ".run"
    port_offset: int = 0
    prefix: str = "bookrec-local"
    seed: str = "full"  # full | sample | none
    alb_workers: int = 1  # HAProxy threads (nbthread)
    rate_limit: str | None = None  # RATE_LIMIT for the services that limit ("0": off); None: their default
    redis_url: str | None = None  # a Redis to use when reachable; None: this stack's own port
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir).resolve()

    # -- where things are
    @property
    def pids_dir(self) -> Path:
        return self.state_dir / "pids"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    def port(self, base: int) -> int:
        return base + self.port_offset

    def service_port(self, service: str) -> int:
        return self.port(definitions.services()[service]["port"])

    def service_url(self, service: str) -> str:
        """The service's first replica (the one other services call)."""
        return f"http://127.0.0.1:{self.service_port(service)}"

    def service_ports(self, service: str) -> list[int]:
        """Every replica's port, the first one's first."""
        return [self.port(p) for p in definitions.replica_ports(service)]

    def service_urls(self, service: str) -> list[str]:
        """Every replica's URL, in the order of `replica_names`."""
        return [f"http://127.0.0.1:{port}" for port in self.service_ports(service)]

    @staticmethod
    def replica_names(service: str) -> list[str]:
        """Each replica's process name (its key in `pids()`): the service's own name, then <service>-2, ..."""
        return definitions.replica_names(service)

    @property
    def alb_url(self) -> str:
        return f"http://127.0.0.1:{self.port(ALB_PORT)}"

    @property
    def aws_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port(MOTO_PORT)}"

    @property
    def env(self) -> dict[str, str]:
        """What a running stack wrote at start: ALB_URL, AWS_ENDPOINT_URL, REDIS_URL, tables, identity."""
        path = self.state_dir / "env.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def pids(self) -> dict[str, int]:
        out = {}
        for pid_file in sorted(self.pids_dir.glob("*.pid")) if self.pids_dir.exists() else []:
            try:
                out[pid_file.stem] = int(pid_file.read_text())
            except (OSError, ValueError):
                continue
        return out

    def running(self) -> bool:
        """Started from this state directory, and its ALB answers (its own 404 for /health included)."""
        return bool(self.env) and bool(self.pids()) and port_open(self.port(ALB_PORT))

    def sign_in(self, username: str, admin: bool = False) -> dict[str, str]:
        """{"access_token", "sub", "username"} of a user of this stack's Cognito (created on first use)."""
        env = self.env
        return issue_token(env["AWS_ENDPOINT_URL"], env["COGNITO_USER_POOL_ID"], env["JWT_AUDIENCE"], username,
                           admin)

    # -- processes
    def launch(self, name: str, command: list[str], env: dict[str, str] | None = None,
               log: str | None = None) -> subprocess.Popen:
        """Start a process of the stack under `name`, its output appended to logs/<log or name>.log."""
        self.pids_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        proc = start(command, self.logs_dir / f"{log or name}.log", env=env, new_session=True)
        (self.pids_dir / f"{name}.pid").write_text(str(proc.pid))
        return proc

    def stop(self, *names: str) -> int:
        """Stop the named processes (all of them when none is named): TERM, then KILL after a grace period.
        A service's name stands for every replica of it (not its builder: `<service>-builder`)."""
        services = definitions.services()
        wanted = {replica for name in names
                  for replica in (self.replica_names(name) if name in services else [name])}
        return self._stop_processes(wanted if names else None)

    def _stop_processes(self, names: set[str] | None) -> int:
        """Stop exactly these processes (None: all of them); how many there were."""
        pids = {name: pid for name, pid in self.pids().items() if names is None or name in names}
        for pid in pids.values():
            _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while time.monotonic() < deadline and any(_alive(p) for p in pids.values()):
            time.sleep(0.1)
        for name, pid in pids.items():
            if _alive(pid):
                _signal_group(pid, signal.SIGKILL)
            (self.pids_dir / f"{name}.pid").unlink(missing_ok=True)
        return len(pids)

    def _base_env(self) -> dict[str, str]:
        return {
            **LOCAL_AWS_ENV,
            "AWS_ENDPOINT_URL": self.aws_endpoint,
            **definitions.table_env(self.prefix),
            "LOG_LEVEL": self.log_level,
            # The emulator answers slowly while it serves a big scan (it walks the whole table for a scan
            # or a GSI query): probes and calls wait it out here; on AWS the defaults are far shorter.
            "READY_TIMEOUT": "5",
            "DYNAMODB_READ_TIMEOUT": "10",
        }

    def service_env(self, service: str, redis_url: str, identity: dict[str, str],
                    artifact_bucket: str = "") -> dict[str, str]:
        """The environment of the service's first replica (the others differ only in PORT). With an
        `artifact_bucket`, a service with a builder loads its artifacts from it instead of scanning."""
        services = definitions.services()
        spec = services[service]
        env = {
            **self._base_env(),
            "PORT": str(self.service_port(service)),
            **spec.get("environment", {}),
        }
        if spec.get("artifacts") and artifact_bucket:
            env.update(ARTIFACT_BUCKET=artifact_bucket, ARTIFACT_PREFIX=spec["artifacts"])
        if spec.get("redis"):
            env["REDIS_URL"] = redis_url
            if self.rate_limit is not None:
                env["RATE_LIMIT"] = self.rate_limit
        if spec.get("auth"):
            env.update({k: v for k, v in identity.items() if k != "COGNITO_USER_POOL_ID"})
        for peer in spec.get("calls", []):
            env[f"{peer.upper()}_URL"] = self.service_url(peer)
        return env

    def builder_env(self, service: str, redis_url: str, artifact_bucket: str) -> dict[str, str]:
        """The environment of a service's builder: the tables, the lease's Redis and the artifact bucket."""
        return {**self._base_env(), "REDIS_URL": redis_url, "ARTIFACT_BUCKET": artifact_bucket,
                "ARTIFACT_PREFIX": definitions.services()[service]["artifacts"],
                **definitions.services()[service]["builder"].get("environment", {})}

    def start_service(self, service: str, *, name: str | None = None, port: int | None = None,
                      env: dict[str, str] | None = None, ready_seconds: float = STARTUP_READY_SECONDS) -> int:
        """(Re)start a service of a running stack, with `env` over the stack's own environment: every replica
        of it when neither `name` nor `port` is given; else one process: one of its replicas (a name of
        `replica_names`, at its port unless `port` says otherwise) or an extra one under another name and
        port. Waits until each is ready; returns the (first) port."""
        names, ports = self.replica_names(service), self.service_ports(service)
        if name is None and port is None:
            processes = list(zip(names, ports, strict=True))
        else:
            name = name or service
            processes = [(name, port or (ports[names.index(name)] if name in names else ports[0]))]
        spec = definitions.services()[service]
        stack_env = self.env
        identity = {k: v for k, v in stack_env.items() if k.startswith("JWT_")}
        environment = self.service_env(service, stack_env.get("REDIS_URL", ""), identity,
                                       stack_env.get("ARTIFACT_BUCKET", ""))
        self._stop_processes({n for n, _ in processes})
        procs = {n: self.launch(n, granian_command(spec["package"], p),
                                {**environment, "PORT": str(p), **(env or {})}, service if n in names else n)
                 for n, p in processes}
        for n, p in processes:
            self._await_service(service, p, procs[n], ready_seconds, n)
        return processes[0][1]

    @staticmethod
    def _await_service(service: str, port: int, proc: subprocess.Popen, ready_seconds: float,
                       name: str | None = None, builders: dict[str, subprocess.Popen] | None = None) -> None:
        """Until the service on `port` is alive (its health path), then ready (/ready answers 200). A service
        with artifacts is ready once it loaded its builder's first one: a builder that exits meanwhile
        (one of `builders`) ends the wait at once."""
        name = name or service

        def builders_alive() -> bool:
            for builder, builder_proc in (builders or {}).items():
                if builder_proc.poll() is not None:
                    raise RuntimeError(f"{builder} exited with code {builder_proc.returncode} before "
                                       f"{name} was ready")
            return True

        health = definitions.services()[service]["health_path"]
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}{health}"), 60, f"{name} health", proc)
        wait_until(lambda: builders_alive() and ready(f"http://127.0.0.1:{port}/ready"), ready_seconds,
                   f"{name} readiness", proc)

    @property
    def alb_config(self) -> Path:
        return self.state_dir / "haproxy.cfg"

    @property
    def page_config(self) -> Path:
        """The page's /web/config.json: where it signs in (this stack's Cognito app client, through the ALB)."""
        return self.state_dir / "web" / "config.json"

    def _write_page_config(self, identity: dict[str, str]) -> dict[str, Path]:
        """The page's config.json for a stack with a user pool (none: the page says sign-in is unavailable)."""
        if not identity.get("JWT_AUDIENCE"):
            return {}
        self.page_config.parent.mkdir(parents=True, exist_ok=True)
        self.page_config.write_text(json.dumps({"auth": {
            "endpoint": IDENTITY_PATH, "client_id": identity["JWT_AUDIENCE"], "flow": "USER_PASSWORD_AUTH"}}))
        return {"/web/config.json": self.page_config}

    def start_alb(self, workers: int | None = None, targets: dict[str, list[int]] | None = None,
                  identity: dict[str, str] | None = None) -> None:
        """(Re)start the local ALB (HAProxy, `workers` threads); `targets` replaces a service's replicas
        (service -> ports). The configuration is generated from routes.json into the state directory. It
        serves the page (web/) too; with the stack's `identity` (default: what env.json says) the page's
        config.json names its Cognito app client and POST /auth/ reaches the emulator's Cognito."""
        binary = haproxy_binary()
        replicas = default_targets(self.port_offset)
        for service, ports in (targets or {}).items():
            replicas[service] = [f"127.0.0.1:{p}" for p in ports]
        self.state_dir.mkdir(parents=True, exist_ok=True)
        extra = self._write_page_config(identity if identity is not None else self.env)
        self.alb_config.write_text(render_config(definitions.routes(), replicas, port=self.port(ALB_PORT),
                                                 threads=workers or self.alb_workers,
                                                 stats_socket=str(self.alb_stats_socket), static_extra=extra,
                                                 identity_endpoint=(f"127.0.0.1:{self.port(MOTO_PORT)}"
                                                                    if extra else None)))
        check = subprocess.run([binary, "-c", "-q", "-f", str(self.alb_config)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"HAProxy refused {self.alb_config}: {check.stdout}{check.stderr}")
        self._stop_processes({"alb"})
        wait_until(lambda: not port_open(self.port(ALB_PORT)), 10, "the previous ALB to close")
        proc = self.launch("alb", [binary, "-f", str(self.alb_config), "-db"])
        wait_until(lambda: port_open(self.port(ALB_PORT)), 30, "local ALB (haproxy)", proc)

    @property
    def alb_stats_socket(self) -> Path:
        return self.state_dir / "haproxy.sock"

    def await_alb_targets(self, seconds: float = 30) -> None:
        """Wait until the ALB's health checks have every target (each replica of each service) in rotation:
        a replica can be ready a moment before HAProxy's next check says so, and a request then would be
        its 503."""
        services = definitions.services()

        def all_up() -> bool:
            try:  # the services' replicas (the sign-in route's emulator is not health-checked)
                return all(up for server, up in servers_up(str(self.alb_stats_socket)).items()
                           if server.split("/")[0] in services)
            except OSError:
                return False
        wait_until(all_up, seconds, "the local ALB's health checks to see every target up")

    # -- dependencies and data
    def _ensure_redis(self) -> str:
        """The Redis URL when one is reachable or could be started here, else '' (cache and limits off)."""
        url = self.redis_url or f"redis://127.0.0.1:{self.port(REDIS_PORT)}/0"
        parsed = urlparse(url)
        port = parsed.port or REDIS_PORT
        if port_open(port, parsed.hostname or "127.0.0.1"):
            say(f"using the Redis at {url}")
            return url
        command = redis_command(port)
        if command is None or parsed.hostname not in ("127.0.0.1", "localhost"):
            say(f"WARNING: no Redis at {url} and no redis-server to start (apt-get install redis-server): "
                "recommendations run with the cache disabled")
            return ""
        proc = self.launch("redis", command)
        wait_until(lambda: port_open(port), 15, "redis-server", proc)
        return url

    def _create_storage(self) -> str:
        """The tables and the artifact bucket; returns the bucket's name."""
        from bookrec_local import terraform

        outputs: dict = {}
        if terraform.terraform_available():
            say("creating tables with Terraform (infrastructure/environments/local)")
            state = self.state_dir / "terraform"
            (state / "terraform.tfstate").unlink(missing_ok=True)  # the emulator starts empty every time
            outputs = terraform.apply_local(self.aws_endpoint, self.prefix, state_dir=state)
        else:
            say(f"creating tables from infrastructure/definitions/tables.json ({terraform.why_unavailable()})")
            definitions.create_tables(local_dynamodb(self.aws_endpoint), self.prefix)
        if outputs.get("artifact_bucket"):  # the platform module's bucket, where Terraform made it
            return outputs["artifact_bucket"]
        return self.create_artifact_bucket(self.aws_endpoint)

    def create_artifact_bucket(self, endpoint: str) -> str:
        """The artifact bucket, versioned, as modules/artifacts makes it (where Terraform did not)."""
        name = definitions.artifact_bucket_name(self.prefix)
        definitions.create_artifact_bucket(local_s3(endpoint), name)
        say(f"artifact bucket {name}")
        return name

    def load_seed(self, endpoint: str | None = None) -> None:
        if self.seed == "none":
            return
        if importlib.util.find_spec("bookrec_etl.__main__") is None:
            say("WARNING: the ETL (data-processing) is not installed: tables left empty")
            return
        env = {**os.environ, **LOCAL_AWS_ENV, "AWS_ENDPOINT_URL": endpoint or self.aws_endpoint,
               **definitions.table_env(self.prefix)}
        say(f"seeding the {self.seed} catalogue through the ETL")
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "bookrec_etl", "seed", "--size", self.seed], env=env, check=True,
                       cwd=ROOT)
        say(f"seeded in {time.monotonic() - started:.1f}s")

    def provision(self, endpoint: str) -> None:
        """Tables, the artifact bucket, the user pool and seed data on an emulator someone else runs (docker
        compose's emulator, whose deterministic ids let docker-compose.yml name the pool and client)."""
        wait_until(lambda: http_ok(endpoint), 60, f"DynamoDB endpoint {endpoint}")
        definitions.create_tables(local_dynamodb(endpoint), self.prefix)
        self.create_artifact_bucket(endpoint)
        identity = create_identity(endpoint, self.prefix)
        say(f"user pool {identity['COGNITO_USER_POOL_ID']}, app client {identity['JWT_AUDIENCE']}")
        self.load_seed(endpoint)

    # -- the whole stack
    def up(self) -> None:
        """Start everything in the background and wait until every service is ready."""
        if self.pids():
            raise SystemExit(f"a stack is already running from {self.state_dir} (python -m bookrec_local.stack down)")
        if problem := unsupported_moto():
            raise SystemExit(problem)
        haproxy_binary()  # before anything starts: without it there is no ALB
        started = time.monotonic()
        try:
            for taken in (self.port(ALB_PORT), self.port(MOTO_PORT)):
                if port_open(taken):
                    raise SystemExit(f"port {taken} is taken: is another stack running?")
            moto = self.launch("moto", moto_command(self.port(MOTO_PORT)), env={"MOTO_PORT": str(self.port(MOTO_PORT))})
            redis_url = self._ensure_redis()
            wait_until(lambda: port_open(self.port(MOTO_PORT)), 30, "emulator", moto)
            bucket = self._create_storage()
            identity = create_identity(self.aws_endpoint, self.prefix)
            self.load_seed()
            if redis_url and self.seed != "none":  # trending on make run: the seed's ratings at made-up times
                replayed = replay_seed_activity(self.aws_endpoint, self.prefix, redis_url)
                say(f"trending: {replayed:,} seed ratings replayed as activity over the last 30 days")
            if not redis_url:  # the builders' lease lives in Redis: without it each replica builds its own
                say("WARNING: no Redis, so no builders: search and recommendation build from the tables")
                bucket = ""
            # The builders first: the replicas of their services are not ready before their first artifact.
            builders = {builder_name(name): self.launch(builder_name(name), builder_command(name),
                                                        self.builder_env(name, redis_url, bucket))
                        for name in (definitions.builders() if bucket else {})}
            services = definitions.services()
            replicas = [(service, name, port) for service in services
                        for name, port in zip(self.replica_names(service), self.service_ports(service),
                                              strict=True)]
            environments = {service: self.service_env(service, redis_url, identity, bucket)
                            for service in services}
            procs = {name: self.launch(name, granian_command(services[service]["package"], port),
                                       {**environments[service], "PORT": str(port)}, service)
                     for service, name, port in replicas}
            self.start_alb(identity=identity)
            for service, name, port in replicas:  # all load at once: waiting on each in turn costs no time
                self._await_service(service, port, procs[name], STARTUP_READY_SECONDS, name, builders)
            self.await_alb_targets()
        except BaseException:
            say(f"start failed; logs in {self.logs_dir}")
            self.stop()
            raise
        (self.state_dir / "env.json").write_text(json.dumps(
            {"ALB_URL": self.alb_url, "AWS_ENDPOINT_URL": self.aws_endpoint, "REDIS_URL": redis_url,
             "ARTIFACT_BUCKET": bucket, **definitions.table_env(self.prefix), **identity}, indent=2))
        say(f"ready in {time.monotonic() - started:.1f}s")
        say(f"page           {self.alb_url}/   (sign in as a user of `make token USER=...`)")
        say(f"ALB            {self.alb_url}   (e.g. curl {self.alb_url}/books/OL827357W)")
        for name in services:
            say(f"{name:<14} {'  '.join(self.service_urls(name))}   (/health /ready /metrics /schema)")
        for name in builders:
            say(f"{name:<14} {' '.join(builder_command(name.removesuffix('-builder'))[1:])}")
        say(f"DynamoDB       {self.aws_endpoint}   (emulator)")
        say(f"artifacts      s3://{bucket}" if bucket else "artifacts      none (no Redis for the builders)")
        say(f"Redis          {redis_url or 'disabled'}")
        say(f"tokens         make token USER=alice   (Cognito user pool {identity['COGNITO_USER_POOL_ID']})")
        say(f"logs           {self.logs_dir}/   (<service>.log: every replica of it)")

    def down(self, quiet: bool = False) -> None:
        stopped = self.stop()
        (self.state_dir / "env.json").unlink(missing_ok=True)
        if not quiet:
            say(f"stopped {stopped} processes" if stopped else f"nothing running from {self.state_dir}")

    def status(self) -> int:
        pids = self.pids()
        if not pids:
            say("not running")
            return 1
        for name, pid in pids.items():
            say(f"{name:<14} pid {pid:<8} {'running' if _alive(pid) else 'DEAD'}")
        return 0

    def run(self) -> None:
        """Start in the foreground; Ctrl-C or SIGTERM stops everything this started, while it starts too."""
        stopping = False

        def request_stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, request_stop)
        try:
            self.up()
            say("running; press Ctrl-C to stop")
            while not stopping:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            say("stopping")
            self.down(quiet=True)


def from_environment(**overrides: Any) -> Stack:
    """A Stack configured as `make up` configures it: BOOKREC_* variables, REDIS_URL, RATE_LIMIT, LOG_LEVEL."""
    env = os.environ
    settings: dict[str, Any] = {
        "state_dir": Path(env.get("BOOKREC_STATE_DIR", ROOT / ".run")),
        "port_offset": int(env.get("BOOKREC_PORT_OFFSET", "0")),
        "prefix": env.get("BOOKREC_TABLE_PREFIX", "bookrec-local"),
        "seed": env.get("BOOKREC_SEED", "full"),
        "alb_workers": int(env.get("BOOKREC_ALB_WORKERS", "1")),
        "rate_limit": env.get("RATE_LIMIT"),
        "redis_url": env.get("REDIS_URL") or None,
        "log_level": env.get("LOG_LEVEL", "INFO"),
    }
    return Stack(**{**settings, **{k: v for k, v in overrides.items() if v is not None}})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bookrec_local.stack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["run", "up", "down", "status", "provision"],
                        help="provision: only create the tables and seed them at --endpoint (used by compose)")
    parser.add_argument("--endpoint", help="with provision: the DynamoDB endpoint (e.g. http://emulator:5000)")
    parser.add_argument("--state-dir", type=Path, help="pid files, logs and Terraform state (default .run/)")
    parser.add_argument("--port-offset", type=int, help="added to every port, to run a second stack beside the first")
    parser.add_argument("--prefix", help="table name prefix (default bookrec-local)")
    parser.add_argument("--seed", choices=["full", "sample", "none"],
                        help="full (default): every bundled dataset; sample: a small real subset (fast); none")
    parser.add_argument("--alb-workers", type=int)
    args = parser.parse_args(argv)
    stack = from_environment(state_dir=args.state_dir, port_offset=args.port_offset, prefix=args.prefix,
                             seed=args.seed, alb_workers=args.alb_workers)
    try:
        if args.command == "provision":
            stack.provision(args.endpoint or os.environ["AWS_ENDPOINT_URL"])
        elif args.command == "up":
            stack.up()
        elif args.command == "down":
            stack.down()
        elif args.command == "status":
            return stack.status()
        else:
            stack.run()
    except (RuntimeError, TimeoutError, subprocess.CalledProcessError) as error:
        say(f"error: {error}")
        return 1
    except KeyboardInterrupt:  # during `up`: what had started is stopped already
        say("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
