"""JSON logs carrying the request id of the request being served.

Every line is one JSON object: time, level, logger, message, service, request_id, then the
record's extra fields. The access log (one line per request) writes the same object without the
logging machinery (record, filter, formatter), which would cost more than the request's own
handling of a cached result, and in batches: the lines of a burst of requests reach stdout in one
write at most ACCESS_FLUSH_SECONDS later (a write per line costs a system call per request, stdout
being unbuffered in the containers). Any other record, and the handler's flush (logging's shutdown
at exit included), writes the waiting lines first, so lines stay in order and none is lost on a
clean exit.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from contextvars import ContextVar
from json.encoder import encode_basestring_ascii as _json_str  # what json.dumps uses for a str

from pythonjsonlogger.json import JsonFormatter

current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)
ACCESS_LOGGER = "bookrec.access"
ACCESS_FLUSH_SECONDS = 0.05
ACCESS_BATCH_LINES = 256
access_log = logging.getLogger(ACCESS_LOGGER)


class _ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.request_id = current_request_id.get()
        return True


class _JsonHandler(logging.StreamHandler):
    """The one handler `configure_logging` installs; the access log's fast path writes to its stream."""

    def __init__(self, service: str) -> None:
        super().__init__(sys.stdout)
        self.service = service
        self.setFormatter(JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(service)s %(request_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        ))
        self.addFilter(_ContextFilter(service))
        self._head = f'", "level": "INFO", "logger": "{ACCESS_LOGGER}", "message": '
        self._service = f', "service": {_json_str(service)}, "request_id": '
        self._second = -1
        self._stamp = ""
        self._waiting: list[str] = []
        self._flush_scheduled = False

    def emit(self, record: logging.LogRecord) -> None:
        if self._waiting:
            self.write_waiting()
        super().emit(record)

    def flush(self) -> None:
        if self._waiting:
            self.write_waiting()
        super().flush()

    def _guard(self) -> threading.RLock:
        # logging.Handler makes its lock in __init__ (createLock); typed Optional only for the base class.
        assert self.lock is not None
        return self.lock

    def write_access(self, line: str) -> None:
        """Queue an access line; written within ACCESS_FLUSH_SECONDS (at once outside an event loop)."""
        with self._guard():
            self._waiting.append(line)
            full = len(self._waiting) >= ACCESS_BATCH_LINES
        if full:
            self.write_waiting()
        elif not self._flush_scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.write_waiting()
                return
            self._flush_scheduled = True
            loop.call_later(ACCESS_FLUSH_SECONDS, self.write_waiting)

    def write_waiting(self) -> None:
        with self._guard():
            self._flush_scheduled = False
            lines, self._waiting = self._waiting, []
            if lines and self.stream is not None:
                self.stream.write("".join(lines))
                super().flush()

    def access_line(self, method: str, path: str, status: int, duration_ms: float, request_id: str | None) -> str:
        """The line the formatter would write for the access record of this request."""
        now = time.time()
        second = int(now)
        if second != self._second:  # the formatter's asctime: local time, then milliseconds
            self._second, self._stamp = second, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        millis = int((now - second) * 1000)
        rid = "null" if request_id is None else _json_str(request_id)
        return (f'{{"time": "{self._stamp},{millis:03d}{self._head}{_json_str(f"{method} {path} {status}")}'
                f'{self._service}{rid}, "method": {_json_str(method)}, "path": {_json_str(path)}, '
                f'"status": {status}, "duration_ms": {duration_ms!r}}}\n')


def log_access(method: str, path: str, status: int, duration_ms: float, request_id: str | None) -> None:
    """One access log line. Straight to the stream while logging is as `configure_logging` left it (one JSON
    handler on the root, access records propagating to it, INFO enabled); through logging otherwise."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    handlers = logging.root.handlers
    handler = handlers[0] if len(handlers) == 1 else None
    if isinstance(handler, _JsonHandler) and not access_log.handlers and access_log.propagate \
            and handler.level <= logging.INFO:
        handler.write_access(handler.access_line(method, path, status, duration_ms, request_id))
        return
    access_log.info("%s %s %s", method, path, status,
                    extra={"method": method, "path": path, "status": status, "duration_ms": duration_ms})


def configure_logging(service: str, level: str = "INFO") -> None:
    root = logging.getLogger()
    root.handlers[:] = [_JsonHandler(service)]
    root.setLevel(level.upper())
    for noisy in ("botocore", "aiobotocore", "aioboto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
