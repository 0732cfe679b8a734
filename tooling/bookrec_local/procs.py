"""Starting and waiting for local dependency processes (moto server, redis-server)."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NamedTuple

LOCAL_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}


# Below Linux's ephemeral range (32768-60999): a server stopped and started again on its port (a test taking
# DynamoDB or Redis away and back) would otherwise find it taken by some client's outgoing connection meanwhile.
# Above every stack's fixed ports (at most 8080 + 10,000 of port offset).
LISTEN_PORTS = range(20000, 32000)


def free_port() -> int:
    """A port nothing listens on now, drawn at random from LISTEN_PORTS (any free port if none is found)."""
    for port in random.sample(LISTEN_PORTS, 64):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} before it was ready")
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s")


def http_ok(url: str, timeout: float = 0.5) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status < 500
    except Exception:  # noqa: BLE001 - not answering, however: not up
        return False


def moto_command(port: int, serialised: bool = False) -> list[str]:
    """The moto server; `serialised` answers one request at a time.

    The default is moto's threaded server with atomic transactions patched in
    (tooling/bookrec_local/emulator.py); the serialised one answers strictly one request
    at a time, for tests that want no concurrency at all inside the emulator.
    """
    if serialised:
        return [sys.executable, "-c",
                "import sys; from werkzeug.serving import run_simple; "
                "from moto.server import DomainDispatcherApplication, create_backend_app; "
                "run_simple('127.0.0.1', int(sys.argv[1]), DomainDispatcherApplication(create_backend_app), "
                "threaded=False)", str(port)]
    # moto server with atomic, table-size-independent transactions (see tooling/bookrec_local/emulator.py).
    return [sys.executable, "-m", "bookrec_local.emulator", str(port)]


REQUIRED_MOTO = "5.2.5"  # the version bookrec_local.emulator patches; pinned in constraints.txt


def unsupported_moto() -> str | None:
    """Why the emulator cannot run here, or None when the installed moto is the one it patches."""
    try:
        installed = version("moto")
    except PackageNotFoundError:
        installed = "none"
    if installed == REQUIRED_MOTO:
        return None
    return (f"the emulator needs moto {REQUIRED_MOTO} (it patches moto's internals), found {installed}: "
            f"pip install -c constraints.txt 'moto[server]=={REQUIRED_MOTO}'")


def redis_command(port: int) -> list[str] | None:
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    return [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--protected-mode", "no"]


def start(command: list[str], log_path: Path | None = None, env: dict[str, str] | None = None,
          new_session: bool = False) -> subprocess.Popen:
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
    return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env={**os.environ, **(env or {})}, start_new_session=new_session)


def stop(proc: subprocess.Popen) -> None:
    """Terminate a process started by `start`, killing it if it does not exit within 10 s."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


class RunningMoto(NamedTuple):
    endpoint: str
    pid: int


@contextlib.contextmanager
def running_moto(serialised: bool = False) -> Iterator[RunningMoto]:
    """A moto server of its own on a free port (see `moto_command`), stopped for sure when the block ends."""
    port = free_port()
    proc = start(moto_command(port, serialised=serialised))
    try:
        wait_until(lambda: port_open(port), 30, "moto server", proc)
        yield RunningMoto(f"http://127.0.0.1:{port}", proc.pid)
    finally:
        stop(proc)


def local_dynamodb(endpoint: str):
    """A boto3 DynamoDB client for the emulator at `endpoint` (never real AWS)."""
    import boto3

    return boto3.client("dynamodb", endpoint_url=endpoint, region_name=LOCAL_AWS_ENV["AWS_REGION"],
                        aws_access_key_id=LOCAL_AWS_ENV["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=LOCAL_AWS_ENV["AWS_SECRET_ACCESS_KEY"])


def local_s3(endpoint: str):
    """A boto3 S3 client for the emulator at `endpoint`, path-style as the services address it."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint, region_name=LOCAL_AWS_ENV["AWS_REGION"],
                        aws_access_key_id=LOCAL_AWS_ENV["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=LOCAL_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
                        config=Config(s3={"addressing_style": "path"}))
