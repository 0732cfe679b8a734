"""What benchmarks on the emulator share: a moto server and a redis-server of their own, bulk writes, the
parts of a replica's start from an artifact."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bookrec_catalog.dynamo import to_item
from bookrec_common.artifacts import ArtifactStore
from bookrec_local.procs import (
    LOCAL_AWS_ENV,
    free_port,
    port_open,
    redis_command,
    running_moto,
    start,
    stop,
    wait_until,
)

BATCH = 25  # BatchWriteItem's maximum


@contextlib.contextmanager
def emulator_and_redis() -> Iterator[tuple[str, str]]:
    """(emulator endpoint, Redis URL), both started here and stopped on exit; AWS_ENDPOINT_URL exported."""
    os.environ.update(LOCAL_AWS_ENV)
    port = free_port()
    command = redis_command(port)
    if command is None:
        sys.exit("redis-server is not installed (make deps installs it from Debian's packages)")
    with running_moto() as moto:
        os.environ["AWS_ENDPOINT_URL"] = moto.endpoint
        redis = start(command)
        try:
            wait_until(lambda: port_open(port), 15, "redis-server", redis)
            yield moto.endpoint, f"redis://127.0.0.1:{port}/0"
        finally:
            stop(redis)


def write_items(dynamodb: Any, table: str, records: list[dict[str, Any]], writers: int = 8) -> float:
    """BatchWriteItem with `writers` threads, unprocessed items retried; returns the seconds it took."""
    started = time.perf_counter()

    def put(batch: list[dict[str, Any]]) -> None:
        request: dict[str, Any] | None = {table: [{"PutRequest": {"Item": to_item(r)}} for r in batch]}
        while request:
            request = dynamodb.batch_write_item(RequestItems=request).get("UnprocessedItems") or None

    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(put, [records[i:i + BATCH] for i in range(0, len(records), BATCH)]))
    return time.perf_counter() - started


@dataclass
class StartParts:
    """A replica's start from the newest artifact, part by part (seconds), and what it decoded."""

    manifest: float
    payload: float
    checksum: float
    decode: float
    size: int
    loaded: Any


async def artifact_start_parts(s3: Any, bucket: str, kind: str, decode: Callable[[bytes], Any]) -> StartParts:
    """Time what a replica does to start from the newest artifact: the manifest's GET, the payload's GET,
    its SHA-256 check (asserted) and its decoding."""
    store = ArtifactStore(s3, bucket, kind)
    started = time.perf_counter()
    manifest = await store.latest()
    assert manifest is not None, f"no {kind} artifact in {bucket}"
    manifest_seconds = time.perf_counter() - started
    started = time.perf_counter()
    response = await s3.get_object(Bucket=bucket, Key=manifest.key)
    async with response["Body"] as body:
        raw = await body.read()
    payload_seconds = time.perf_counter() - started
    started = time.perf_counter()
    assert hashlib.sha256(raw).hexdigest() == manifest.sha256
    checksum_seconds = time.perf_counter() - started
    started = time.perf_counter()
    loaded = decode(raw)
    return StartParts(manifest_seconds, payload_seconds, checksum_seconds, time.perf_counter() - started,
                      len(raw), loaded)
