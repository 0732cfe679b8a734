"""Build derived state once per fleet: take the lease, build, publish; skip when nothing changed.

A builder is a one-shot process (`python -m bookrec_<service>.builder`), run by EventBridge Scheduler
as an ECS task on AWS and in a loop (`--every SECONDS`) by the local stack. Several may start at once
(a scheduled run while a manual one is still going, a replaced task): the Redis lease lets exactly one
build; the others see it held and stop. The holder's fencing token becomes the artifact's version, so
a holder that lost its lease mid-build cannot publish over its successor. With Redis unavailable
(down, read-only mid-failover, full...) no lease can be had: the run builds nothing, says so
(`redis_unavailable`) and ends normally; the next scheduled run tries again.

A build may hand its payload over as a file (search's snapshot, gigabytes: `Built.payload` a `Path`),
which is published from the file and deleted once the run is over, whatever its outcome.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import Counter
from pydantic import ValidationError

from bookrec_common.artifacts import ArtifactStore, CorruptArtifact, Manifest, Superseded
from bookrec_common.clients import dynamodb_client, redis_client_for, s3_client
from bookrec_common.lease import Lease, LeaseUnavailable
from bookrec_common.logs import configure_logging
from bookrec_common.settings import ArtifactSettings

log = logging.getLogger("bookrec.builder")
BUILDS = Counter("artifact_builds_total", "Builder runs by outcome: published, unchanged, busy (another "
                 "builder holds the lease), superseded, lease_lost, redis_unavailable (no lease could be "
                 "had: nothing built)", ["kind", "outcome"])


@dataclass(frozen=True)
class Built:
    payload: bytes | Path  # a Path: a file of the build's own, the builder's to delete once the run is over
    watermark: str  # complete up to this change-feed position
    items: int
    reads: int  # DynamoDB items read to build it


# Given the newest manifest (None: none yet, or unreadable), a new artifact, or None if nothing changed.
Build = Callable[[Manifest | None], Coroutine[Any, Any, Built | None]]
# A service's Build, given the builder's DynamoDB client (patient timeouts) and its artifact store.
MakeBuild = Callable[[Any, ArtifactStore], Build]


async def build_once(lease: Lease, store: ArtifactStore, build: Build) -> str:
    """One run: the outcome, also counted in `artifact_builds_total`."""
    try:
        outcome = await _run(lease, store, build)
    except LeaseUnavailable as exc:
        log.warning("%s: nothing built: the lease's Redis is unavailable (%s)", store.kind, exc,
                    extra={"outcome": "redis_unavailable"})
        outcome = "redis_unavailable"
    BUILDS.labels(store.kind, outcome).inc()
    return outcome


async def _run(lease: Lease, store: ArtifactStore, build: Build) -> str:
    version = await lease.acquire()
    if version is None:
        holder = None
        with contextlib.suppress(Exception):  # only for the log line
            holder = await lease.holder_now()
        log.info("%s: another builder holds the lease (%s)", store.kind, holder)
        return "busy"
    started = time.perf_counter()
    async with lease.kept() as lost:
        try:
            previous = await store.latest()
        except CorruptArtifact as exc:
            log.warning("%s: newest manifest unreadable (%s): building from the tables", store.kind, exc)
            previous = None
        if previous is not None and previous.version >= version:
            version = await lease.token_above(previous.version)
            if version is None:
                return "lease_lost"
        building = asyncio.create_task(build(previous))
        try:
            losing = asyncio.create_task(lost.wait())
            await asyncio.wait({building, losing}, return_when=asyncio.FIRST_COMPLETED)
            losing.cancel()
            if not building.done():
                log.warning("%s: lease lost mid-build; stopped", store.kind)
                return "lease_lost"
            built = building.result()
            if built is None:
                log.info("%s: nothing changed since version %s", store.kind, previous and previous.version)
                return "unchanged"
            if lost.is_set():
                return "lease_lost"
            try:
                manifest = await store.publish(built.payload, version=version, watermark=built.watermark,
                                               items=built.items, build_reads=built.reads)
            except Superseded as exc:
                log.warning("%s: %s", store.kind, exc)
                return "superseded"
        finally:
            building.cancel()  # still building (the lease lost, this run cancelled): stop it
            _delete_payload_file(building)
    log.info("%s: version %d built in %.1fs: %d items, %d bytes, %d DynamoDB items read", store.kind,
             manifest.version, time.perf_counter() - started, built.items, manifest.size, built.reads)
    return "published"


def _delete_payload_file(building: asyncio.Task[Built | None]) -> None:
    """A payload file is deleted once its run is over, published or not. (A build cancelled before it
    finished deletes its own.)"""
    if building.done() and not building.cancelled() and building.exception() is None:
        built = building.result()
        if built is not None and isinstance(built.payload, Path):
            built.payload.unlink(missing_ok=True)


async def run_builds(lease: Lease, store: ArtifactStore, build: Build, every: float) -> None:
    """Build once, or every `every` seconds until cancelled (a failed run is logged and retried)."""
    while True:
        try:
            await build_once(lease, store, build)
        except Exception:
            if every <= 0:
                raise
            log.exception("%s: build failed", store.kind)
        if every <= 0:
            return
        await asyncio.sleep(every)


async def build_with(settings: ArtifactSettings, kind: str, make_build: MakeBuild, every: float) -> None:
    """Open a builder's clients from `settings` and build once, or every `every` seconds."""
    if not settings.artifact_bucket or not settings.redis_url:
        raise BuilderMisconfigured("ARTIFACT_BUCKET and REDIS_URL must be set (the artifact bucket and the "
                                   "lease)")
    async with AsyncExitStack() as stack:
        dynamodb = await stack.enter_async_context(dynamodb_client(settings, bulk=True))
        s3 = await stack.enter_async_context(s3_client(settings, settings.s3_read_timeout))
        redis = await stack.enter_async_context(redis_client_for(settings, timeout=5.0))
        store = ArtifactStore(s3, settings.artifact_bucket, settings.artifact_prefix or kind)
        lease = Lease(redis, store.kind, settings.build_lease_seconds, namespace=settings.artifact_bucket)
        await run_builds(lease, store, make_build(dynamodb, store), every)


def main(description: str, read_settings: Callable[[], ArtifactSettings],
         build: Callable[[Any, float], Coroutine[Any, Any, None]]) -> None:
    """The builder CLI: `--every SECONDS` loops (0, the default: one run, as a scheduled task). A missing
    or malformed setting is one line and exit 2."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--every", type=float, default=0.0, metavar="SECONDS",
                        help="build again this often, until stopped (default: once)")
    args = parser.parse_args()
    try:
        settings = read_settings()
    except ValidationError as exc:
        names = ", ".join(str(error["loc"][0]).upper() for error in exc.errors() if error["loc"])
        print(f"builder: missing or invalid settings: {names}", file=sys.stderr)
        sys.exit(2)
    configure_logging(f"{settings.service_name}-builder", settings.log_level)
    try:
        asyncio.run(build(settings, args.every))
    except KeyboardInterrupt:
        pass
    except BuilderMisconfigured as exc:
        print(f"builder: {exc}", file=sys.stderr)
        sys.exit(2)


class BuilderMisconfigured(Exception):
    """A setting the builder cannot run without is missing."""
