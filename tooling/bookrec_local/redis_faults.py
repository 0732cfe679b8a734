"""A redis-server of one's own, put on demand in a state in which clients meet Redis failing.

`FailingRedis(state, workdir)` starts a healthy server; `fail()` puts it in `state` and returns once a
client sees it so; `heal()` makes it healthy again (same port, so clients reconnect by themselves);
`stop()` ends it. The states, as the services meet them on AWS:

| state | how | what a client gets |
| --- | --- | --- |
| read_only | REPLICAOF a master that is not there | writes: ReadOnlyError (ElastiCache Multi-AZ failover) |
| out_of_memory | filled past `maxmemory 1mb` under `noeviction` | writes: OutOfMemoryError |
| loading | restarted on a dataset loaded slowly (`key-load-delay`) | every command: BusyLoadingError |
| busy_script | a Lua script that never ends (`busy-reply-threshold` 50 ms) | every command: BUSY |
| timeout | `DEBUG SLEEP` | no answer within the client's timeout |
| wrong_password | `requirepass` changed, connections dropped (a rotated AUTH token) | AuthenticationError |
| connection_reset | killed (SIGKILL) under its clients' open connections | reset, then refused |
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import threading
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bookrec_local.procs import free_port, port_open, redis_command, start, wait_until

STATES = ("read_only", "out_of_memory", "loading", "busy_script", "timeout", "wrong_password",
          "connection_reset")
# The slow load lasts LOADING_KEYS x LOADING_DELAY_US (~100 s): far longer than a test needs it; a reply
# comes between two reads of the file (a few keys: ~50 ms), well within the services' timeouts.
LOADING_KEYS = 10_000
LOADING_DELAY_US = 10_000


class FailingRedis:
    def __init__(self, state: str, workdir: Path, port: int | None = None, password: str = "") -> None:
        if state not in STATES:
            raise ValueError(f"unknown Redis failure state {state!r} (one of {', '.join(STATES)})")
        self.state = state
        self.port = port or free_port()
        self.password = password  # what the clients use (AUTH token); empty: none
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._proc: subprocess.Popen | None = None
        self._blocker: threading.Thread | None = None
        self.failing = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *extra: str) -> FailingRedis:
        command = redis_command(self.port)
        if command is None:
            raise RuntimeError("redis-server is not installed")
        command += ["--dir", str(self.workdir), "--enable-debug-command", "local", *extra]
        if self.password:
            command += ["--requirepass", self.password]
        self._proc = start(command, self.workdir / "redis.log")
        wait_until(lambda: port_open(self.port), 15, "redis-server", self._proc)
        return self

    def admin(self, timeout: float | None = 10.0, password: str | None = None) -> redis.Redis:
        """A client of the server's owner (not one of the services')."""
        password = self.password if password is None else password
        return redis.Redis(port=self.port, password=password or None, socket_timeout=timeout,
                           socket_connect_timeout=10, retry=Retry(NoBackoff(), 0))

    def fail(self, timeout: float = 30.0) -> None:
        """Put the server in its state; returns once a client meets it (at most `timeout` seconds)."""
        getattr(self, f"_fail_{self.state}")()
        self.failing = True
        wait_until(self._failing_seen, timeout, f"Redis {self.state}")

    def heal(self) -> None:
        """Back to healthy, on the same port (the data may be gone: the state may need a restart)."""
        if self.state == "read_only":
            self.admin().replicaof("NO", "ONE")
        elif self.state == "out_of_memory":
            self.admin().config_set("maxmemory", "0")
        elif self.state == "busy_script":
            self.admin().script_kill()
            self._join_blocker()
        elif self.state == "wrong_password":
            self.admin(password=self._rotated).config_set("requirepass", self.password)
        else:  # loading, timeout, connection_reset: a fresh process
            self._kill()
            (self.workdir / "dump.rdb").unlink(missing_ok=True)
            self.start()
        self.failing = False
        wait_until(lambda: not self._failing_seen(), 30, f"Redis healed from {self.state}")

    def stop(self) -> None:
        self._kill()

    # -- the states
    def _fail_read_only(self) -> None:
        self.admin().replicaof("127.0.0.1", str(free_port()))  # nobody listens there: stays a replica

    def _fail_out_of_memory(self) -> None:
        admin = self.admin()
        admin.set("bookrec-fill", b"x" * 2_000_000)
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", "1mb")

    def _fail_loading(self) -> None:
        admin = self.admin()
        with admin.pipeline(transaction=False) as pipe:
            for i in range(LOADING_KEYS):
                # 1 KB a key, incompressible: the server answers between two keys (every 1024 bytes read)
                pipe.set(f"bookrec-fill:{i}", os.urandom(1024))
            pipe.execute()
        admin.save()
        self._kill()
        self.start("--key-load-delay", str(LOADING_DELAY_US),
                   "--loading-process-events-interval-bytes", "1024")

    def _fail_busy_script(self) -> None:
        self.admin().config_set("busy-reply-threshold", "50")
        self._block(lambda client: client.eval("while true do end", 0))

    def _fail_timeout(self) -> None:
        self._block(lambda client: client.execute_command("DEBUG", "SLEEP", "3600"))

    def _fail_wrong_password(self) -> None:
        self._rotated = f"rotated-{secrets.token_hex(8)}"
        admin = self.admin()
        admin.config_set("requirepass", self._rotated)
        admin.client_kill_filter(_type="normal", skipme=True)  # connections authenticated before re-AUTH

    def _fail_connection_reset(self) -> None:
        self._kill()

    # -- helpers
    def _failing_seen(self) -> bool:
        """Whether a client (with the clients' password) now fails as the state makes it."""
        try:
            client = self.admin(timeout=0.2)
            try:
                if self.state in ("read_only", "out_of_memory"):
                    client.set("bookrec-probe", b"1", px=1000)
                else:
                    client.ping()
            finally:
                client.close()
        except (redis.RedisError, OSError):
            return True
        return False

    def _block(self, call) -> None:
        """Run a call that holds the server on a thread of its own (it returns when the state ends)."""
        client = self.admin(timeout=None)

        def hold() -> None:
            try:
                call(client)
            except (redis.RedisError, OSError):
                pass  # the script killed, or the server: the state is over
            finally:
                client.close()

        self._blocker = threading.Thread(target=hold, name=f"redis-{self.state}", daemon=True)
        self._blocker.start()

    def _join_blocker(self) -> None:
        if self._blocker is not None:
            self._blocker.join(30)
            self._blocker = None

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            os.kill(self._proc.pid, signal.SIGKILL)  # SIGTERM waits out a DEBUG SLEEP or a script
            self._proc.wait(10)
        self._proc = None
        self._join_blocker()
