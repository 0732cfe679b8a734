"""A replica's side of the artifacts (`artifacts.ArtifactStore`): wait for the first one, then follow newer
ones, each checked before it is installed, with backoff while the store fails; the readiness probe that
says so."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bookrec_common.artifacts import (
    ARTIFACT_BUILD_READS,
    ARTIFACT_BUILT,
    ARTIFACT_REFUSED,
    ARTIFACT_VERSION,
    ArtifactStore,
    CorruptArtifact,
    Manifest,
    Payload,
    UnreadableArtifact,
)

log = logging.getLogger("bookrec.artifacts")


def record_in_use(manifest: Manifest) -> None:
    """Export the artifact a replica now serves from."""
    ARTIFACT_VERSION.labels(manifest.kind).set(manifest.version)
    ARTIFACT_BUILT.labels(manifest.kind).set(manifest.built_at)
    ARTIFACT_BUILD_READS.labels(manifest.kind).set(manifest.build_reads)


MAX_BACKOFF_SECONDS = 600.0


class ArtifactFollower:
    """A replica's side: wait for the first artifact, then look for newer ones, checked, with backoff.

    `install(manifest, payload)` decodes and swaps in a checked payload. While the store fails, `error`
    says why (`/ready` shows it degraded) and each look waits twice as long as the last (at most
    `MAX_BACKOFF_SECONDS`); what is installed keeps serving. A refused artifact is skipped until a newer
    one is published.
    """

    def __init__(self, store: ArtifactStore, install: Callable[[Manifest, Payload], Awaitable[None]],
                 poll_seconds: float = 60.0) -> None:
        self.store = store
        self._install = install
        self.poll_seconds = poll_seconds
        self.manifest: Manifest | None = None  # installed
        self.error: str | None = None  # the store's last failure, None once it answers
        self._refused: int | None = None  # a version refused: not fetched again
        self._delay = poll_seconds

    @property
    def waiting(self) -> bool:
        """No artifact installed and the store answers: the builder has not published one yet."""
        return self.manifest is None and self.error is None

    async def check(self, force: bool = False) -> bool:
        """Install the newest artifact if newer than ours (any, with `force`); True if one was."""
        try:
            manifest = await self.store.latest()
        except CorruptArtifact as exc:
            log.error("%s manifest refused: %s", self.store.kind, exc)
            return False
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"[:200]
            raise
        self.error = None
        if manifest is None or manifest.version == self._refused:
            return False
        if not force and self.manifest is not None and manifest.version <= self.manifest.version:
            return False
        try:
            await self._install(manifest, await self.store.fetch(manifest))
        except CorruptArtifact as exc:
            if isinstance(exc, UnreadableArtifact):
                ARTIFACT_REFUSED.labels(self.store.kind, "format").inc()
            self._refused = manifest.version
            log.error("%s version %d refused, current kept: %s", self.store.kind, manifest.version, exc)
            return False
        self.manifest = manifest
        record_in_use(manifest)
        return True

    async def first(self, retry_seconds: float = 5.0) -> None:
        """Until an artifact is installed: look every `retry_seconds`, longer while the store fails."""
        delay = retry_seconds
        while self.manifest is None:
            try:
                if not await self.check():
                    log.info("no usable %s artifact yet: waiting for the builder", self.store.kind)
                delay = retry_seconds
            except Exception:  # logged; not reachable yet: /ready says so; try again
                log.exception("%s artifact load failed; retrying in %.0fs", self.store.kind, delay)
                delay = min(delay * 2, MAX_BACKOFF_SECONDS)
            if self.manifest is None:
                await asyncio.sleep(delay)

    async def look(self) -> float:
        """One look for a newer artifact; returns the seconds to wait before the next one."""
        try:
            await self.check()
            self._delay = self.poll_seconds
        except Exception as exc:  # noqa: BLE001 - the store away: keep serving, look again later
            self._delay = min(self._delay * 2, MAX_BACKOFF_SECONDS)
            log.warning("%s artifact store unreachable (%s); next look in %.0fs", self.store.kind, exc,
                        self._delay)
        return self._delay

    async def follow(self) -> None:
        """Look for newer artifacts until cancelled."""
        while True:
            await asyncio.sleep(await self.look())

    def state(self) -> dict[str, Any]:
        manifest = self.manifest
        return {"artifact_version": manifest.version if manifest else None,
                "artifact_age_seconds": round(time.time() - manifest.built_at, 1) if manifest else None}


async def artifacts_reachable(follower: ArtifactFollower) -> None:
    """A readiness probe (optional: degraded, not down): the replica serves what it has meanwhile."""
    if follower.error:
        raise RuntimeError(f"artifact store unreachable, serving the current version: {follower.error}")
