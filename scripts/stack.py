"""The local stack: moto server, Redis, the four services and the local ALB.

    python -m scripts.stack run      # foreground; Ctrl-C stops everything it started
    python -m scripts.stack up       # background; pid files in .run/pids, logs in .run/logs
    python -m scripts.stack down     # stop a background stack
    python -m scripts.stack status

Everything listens on loopback. Tables come from infrastructure/definitions/
tables.json (through Terraform's environments/local when terraform is
available), then the seed catalogue is loaded through the ETL.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from scripts import definitions
from scripts.identity import create_identity
from scripts.procs import LOCAL_AWS_ENV, http_ok, local_dynamodb, moto_command, port_open, redis_command, start, wait_until

ROOT = definitions.ROOT
MOTO_PORT, REDIS_PORT, ALB_PORT = 4566, 6379, 8080
# Every service loads what it serves before it is ready: the full catalogue takes the emulator a minute or
# two to hand out on two cores.
STARTUP_READY_SECONDS = 420


@dataclass(frozen=True)
class StackConfig:
    state_dir: Path
    port_offset: int
    prefix: str
    seed: str
    alb_workers: int

    @property
    def pids(self) -> Path:
        return self.state_dir / "pids"

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    def port(self, base: int) -> int:
        return base + self.port_offset

    @property
    def alb_url(self) -> str:
        return f"http://127.0.0.1:{self.port(ALB_PORT)}"

    @property
    def aws_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port(MOTO_PORT)}"


def say(message: str) -> None:
    print(f"[stack] {message}", flush=True)


def launch(cfg: StackConfig, name: str, command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    proc = start(command, cfg.logs / f"{name}.log", env=env, new_session=True)
    (cfg.pids / f"{name}.pid").write_text(str(proc.pid))
    return proc


def ensure_redis(cfg: StackConfig) -> str:
    """REDIS_URL when reachable, else a redis-server we start, else '' (cache disabled)."""
    url = os.environ.get("REDIS_URL") or f"redis://127.0.0.1:{cfg.port(REDIS_PORT)}/0"
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
    proc = launch(cfg, "redis", command)
    wait_until(lambda: port_open(port), 15, "redis-server", proc)
    return url


def service_env(cfg: StackConfig, name: str, spec: dict, redis_url: str, identity: dict[str, str]) -> dict[str, str]:
    services = definitions.services()
    env = {
        **LOCAL_AWS_ENV,
        "AWS_ENDPOINT_URL": cfg.aws_endpoint,
        **definitions.table_env(cfg.prefix),
        "PORT": str(cfg.port(spec["port"])),
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        # The emulator answers slowly while it serves a big scan (it walks the whole table for a scan
        # or a GSI query): probes and calls wait it out here; on AWS the defaults are far shorter.
        "READY_TIMEOUT": "5",
        "DYNAMODB_READ_TIMEOUT": "10",
        **spec.get("environment", {}),
    }
    if spec.get("redis"):
        env["REDIS_URL"] = redis_url
        if "RATE_LIMIT" in os.environ:  # e.g. RATE_LIMIT=0 for a load test from one address
            env["RATE_LIMIT"] = os.environ["RATE_LIMIT"]
    if spec.get("auth"):
        env.update({k: v for k, v in identity.items() if k != "COGNITO_USER_POOL_ID"})
    for peer in spec.get("calls", []):
        env[f"{peer.upper()}_URL"] = f"http://127.0.0.1:{cfg.port(services[peer]['port'])}"
    return env


def granian_command(package: str, port: int) -> list[str]:
    return [str(Path(sys.executable).with_name("granian")), "--interface", "asgi", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--loop", "auto",
            "--http", "1", "--backlog", "2048", f"{package}.app:create_app"]


def create_tables(cfg: StackConfig) -> None:
    try:
        from infrastructure import tf
    except ImportError:
        tf = None
    if tf is not None and tf.terraform_available():
        say("creating tables with Terraform (infrastructure/environments/local)")
        state = cfg.state_dir / "terraform"
        (state / "terraform.tfstate").unlink(missing_ok=True)  # the emulator starts empty every time
        tf.apply_local(cfg.aws_endpoint, cfg.prefix, state_dir=state)
    else:
        say("creating tables from infrastructure/definitions/tables.json")
        definitions.create_tables(local_dynamodb(cfg.aws_endpoint), cfg.prefix)


def seed(cfg: StackConfig, endpoint: str | None = None) -> None:
    if cfg.seed == "none":
        return
    if importlib.util.find_spec("bookrec_etl.__main__") is None:
        say("WARNING: the ETL (data-processing) is not installed: tables left empty")
        return
    env = {**os.environ, **LOCAL_AWS_ENV, "AWS_ENDPOINT_URL": endpoint or cfg.aws_endpoint,
           **definitions.table_env(cfg.prefix)}
    say(f"seeding the {cfg.seed} catalogue through the ETL")
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "bookrec_etl", "seed", "--size", cfg.seed], env=env, check=True,
                   cwd=ROOT)
    say(f"seeded in {time.monotonic() - started:.1f}s")


def provision(endpoint: str, cfg: StackConfig) -> None:
    """Tables, the user pool and seed data on an emulator someone else runs (docker compose's moto service,
    whose deterministic ids let docker-compose.yml name the pool and client)."""
    wait_until(lambda: http_ok(endpoint), 60, f"DynamoDB endpoint {endpoint}")
    definitions.create_tables(local_dynamodb(endpoint), cfg.prefix)
    identity = create_identity(endpoint, cfg.prefix)
    say(f"user pool {identity['COGNITO_USER_POOL_ID']}, app client {identity['JWT_AUDIENCE']}")
    seed(StackConfig(cfg.state_dir, cfg.port_offset, cfg.prefix, cfg.seed, cfg.alb_workers), endpoint)


def up(cfg: StackConfig) -> None:
    if any(cfg.pids.glob("*.pid")):
        raise SystemExit(f"a stack is already running from {cfg.state_dir} (python -m scripts.stack down)")
    cfg.pids.mkdir(parents=True, exist_ok=True)
    cfg.logs.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        for taken in (cfg.port(ALB_PORT), cfg.port(MOTO_PORT)):
            if port_open(taken):
                raise SystemExit(f"port {taken} is taken: is another stack running?")
        moto = launch(cfg, "moto", moto_command(cfg.port(MOTO_PORT)), env={"MOTO_PORT": str(cfg.port(MOTO_PORT))})
        redis_url = ensure_redis(cfg)
        wait_until(lambda: port_open(cfg.port(MOTO_PORT)), 30, "moto server", moto)
        create_tables(cfg)
        identity = create_identity(cfg.aws_endpoint, cfg.prefix)
        seed(cfg)
        services = definitions.services()
        procs = {}
        for name, spec in services.items():
            env = service_env(cfg, name, spec, redis_url, identity)
            procs[name] = launch(cfg, name, granian_command(spec["package"], cfg.port(spec["port"])), env)
        alb = launch(cfg, "alb", [sys.executable, "-m", "scripts.alb", "--port", str(cfg.port(ALB_PORT)),
                                  "--port-offset", str(cfg.port_offset), "--workers", str(cfg.alb_workers)],
                     env={"PYTHONPATH": str(ROOT)})
        for name, spec in services.items():
            url = f"http://127.0.0.1:{cfg.port(spec['port'])}"
            wait_until(lambda u=url: http_ok(u + spec["health_path"]), 60, f"{name} health", procs[name])
        wait_until(lambda: port_open(cfg.port(ALB_PORT)), 30, "local ALB", alb)
        for name, spec in services.items():
            url = f"http://127.0.0.1:{cfg.port(spec['port'])}/ready"
            wait_until(lambda u=url: http_ok(u), STARTUP_READY_SECONDS, f"{name} readiness", procs[name])
    except BaseException:
        say(f"start failed; logs in {cfg.logs}")
        down(cfg, quiet=True)
        raise
    env_file = cfg.state_dir / "env.json"
    env_file.write_text(json.dumps({"ALB_URL": cfg.alb_url, "AWS_ENDPOINT_URL": cfg.aws_endpoint,
                                    "REDIS_URL": redis_url, **definitions.table_env(cfg.prefix), **identity},
                                   indent=2))
    say(f"ready in {time.monotonic() - started:.1f}s")
    say(f"ALB            {cfg.alb_url}   (e.g. curl {cfg.alb_url}/books/OL827357W)")
    for name, spec in definitions.services().items():
        say(f"{name:<14} http://127.0.0.1:{cfg.port(spec['port'])}   (/health /ready /metrics /schema)")
    say(f"DynamoDB       {cfg.aws_endpoint}   (moto server)")
    say(f"Redis          {redis_url or 'disabled'}")
    say(f"tokens         make token USER=alice   (Cognito user pool {identity['COGNITO_USER_POOL_ID']})")
    say(f"logs           {cfg.logs}/")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def down(cfg: StackConfig, quiet: bool = False) -> None:
    pid_files = sorted(cfg.pids.glob("*.pid")) if cfg.pids.exists() else []
    if not pid_files and not quiet:
        say(f"nothing running from {cfg.state_dir}")
    pids = {}
    for pid_file in pid_files:
        pid = int(pid_file.read_text())
        pids[pid_file] = pid
        try:
            os.killpg(pid, signal.SIGTERM)  # each process leads its own group: children go too
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in pids.values()):
        time.sleep(0.1)
    for pid_file, pid in pids.items():
        if _alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        pid_file.unlink(missing_ok=True)
    if pids and not quiet:
        say(f"stopped {len(pids)} processes")


def status(cfg: StackConfig) -> int:
    pid_files = sorted(cfg.pids.glob("*.pid")) if cfg.pids.exists() else []
    if not pid_files:
        say("not running")
        return 1
    for pid_file in pid_files:
        pid = int(pid_file.read_text())
        say(f"{pid_file.stem:<14} pid {pid:<8} {'running' if _alive(pid) else 'DEAD'}")
    return 0


def run(cfg: StackConfig) -> None:
    up(cfg)
    say("running; press Ctrl-C to stop")
    stop = False

    def request_stop(signum, frame):  # noqa: ANN001, ARG001
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    try:
        while not stop:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        say("stopping")
        down(cfg)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.stack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["run", "up", "down", "status", "provision"],
                        help="provision: only create the tables and seed them at --endpoint (used by compose)")
    parser.add_argument("--endpoint", help="with provision: the DynamoDB endpoint (e.g. http://moto:5000)")
    parser.add_argument("--state-dir", type=Path, default=Path(os.environ.get("BOOKREC_STATE_DIR", ROOT / ".run")),
                        help="pid files, logs and Terraform state (default .run/)")
    parser.add_argument("--port-offset", type=int, default=int(os.environ.get("BOOKREC_PORT_OFFSET", "0")),
                        help="added to every port, to run a second stack beside the first")
    parser.add_argument("--prefix", default=os.environ.get("BOOKREC_TABLE_PREFIX", "bookrec-local"),
                        help="table name prefix")
    parser.add_argument("--seed", choices=["full", "sample", "none"], default=os.environ.get("BOOKREC_SEED", "full"),
                        help="full: every bundled dataset; sample: a small real subset (fast); none")
    parser.add_argument("--alb-workers", type=int, default=int(os.environ.get("BOOKREC_ALB_WORKERS", "1")))
    args = parser.parse_args(argv)
    cfg = StackConfig(args.state_dir.resolve(), args.port_offset, args.prefix, args.seed, args.alb_workers)
    if args.command == "provision":
        provision(args.endpoint or os.environ["AWS_ENDPOINT_URL"], cfg)
    elif args.command == "up":
        up(cfg)
    elif args.command == "down":
        down(cfg)
    elif args.command == "status":
        return status(cfg)
    else:
        run(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
