"""A replica's derived state (search's index, recommendation's model), as an app's lifespan drives it.

The state is built once per fleet by the service's builder and shipped as an artifact. A replica loads
the newest artifact, then swaps in newer ones as they are published; without an artifact bucket the
process builds its own state from the tables (a single process, tests), retrying until it has one. Once
loaded, the service keeps it fresh its own way besides (`Live.keep_fresh`: search follows the change
feed, recommendation rebuilds now and then without a bucket), until the app stops.

The work runs in the background (`kept_loaded`): the process answers `/health` at once, and `/ready`
(`live_checks`) once the state is loaded; while the artifact store fails, the state in hand keeps
serving and `/ready` says degraded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, Protocol

from litestar import Litestar
from tenacity import AsyncRetrying, before_sleep_log, wait_fixed

from bookrec_common.artifacts import ArtifactStore
from bookrec_common.clients import s3_client
from bookrec_common.follower import ArtifactFollower, artifacts_reachable
from bookrec_common.service import ReadinessCheck
from bookrec_common.settings import ArtifactSettings

log = logging.getLogger("bookrec.replica")
WAITING = "waiting for the first artifact from the builder"


class Live(Protocol):
    """The replica's side of a service's state: what the lifespan and `/ready` need of it."""

    @property
    def follower(self) -> ArtifactFollower | None:
        """The builder's artifacts; None without an artifact bucket (the state is built here)."""

    @property
    def ready(self) -> bool:
        """A state is loaded and serving."""

    async def load(self) -> None:
        """Build the state from the tables (no artifact bucket); raise if that cannot be done yet."""

    async def keep_fresh(self) -> None:
        """Once loaded, until cancelled: what keeps the state fresh besides newer artifacts (it may return
        at once if nothing does); failures are logged and tried again, never raised."""

    def state(self) -> dict[str, Any]:
        """Facts `/ready` shows once loaded (the state's version, its freshness)."""


async def artifact_store(stack: AsyncExitStack, settings: ArtifactSettings,
                         kind: str) -> ArtifactStore | None:
    """The store of this service's artifacts (its S3 client entered on `stack`); None without a bucket."""
    if not settings.artifact_bucket:
        return None
    s3 = await stack.enter_async_context(s3_client(settings, settings.s3_read_timeout))
    return ArtifactStore(s3, settings.artifact_bucket, settings.artifact_prefix or kind)


async def keep_loaded(live: Live, retry_seconds: float = 5.0) -> None:
    """Load the first state, then keep it fresh, until cancelled."""
    follower = live.follower
    if follower is not None:  # the builder's state: never a scan here
        await follower.first(retry_seconds)
    else:
        # The tables may not answer yet (the process started first): /ready says so meanwhile.
        async for attempt in AsyncRetrying(wait=wait_fixed(retry_seconds),
                                           before_sleep=before_sleep_log(log, logging.ERROR, exc_info=True)):
            with attempt:
                await live.load()
    async with asyncio.TaskGroup() as group:
        group.create_task(live.keep_fresh())
        if follower is not None:
            group.create_task(follower.follow())


@asynccontextmanager
async def kept_loaded(live: Live, retry_seconds: float = 5.0) -> AsyncIterator[None]:
    """`keep_loaded` in the background for as long as the context lasts (a lifespan's), then cancelled."""
    task = asyncio.create_task(keep_loaded(live, retry_seconds))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def live_checks(name: str, live_of: Callable[[Litestar], Live], *, artifacts: bool,
                loading: str = "still loading") -> list[ReadinessCheck]:
    """`/ready`'s checks of the state: `name`, required (loaded, with its facts), and with an artifact
    bucket `artifacts`, optional (the store reachable: while it is not, the state in hand serves)."""

    async def loaded(app: Litestar) -> dict[str, Any]:
        live = live_of(app)
        follower = live.follower
        if not live.ready:
            raise RuntimeError(WAITING if follower is not None and follower.waiting else loading)
        return {**live.state(), **(follower.state() if follower is not None else {})}

    async def reachable(app: Litestar) -> None:
        follower = live_of(app).follower
        if follower is not None:
            await artifacts_reachable(follower)

    checks = [ReadinessCheck(name, loaded)]
    if artifacts:
        checks.append(ReadinessCheck("artifacts", reachable, required=False))
    return checks
