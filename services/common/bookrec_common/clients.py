"""Clients created once per process in a lifespan and closed on shutdown.

Endpoints come from the standard AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_DYNAMODB
variables, which the AWS SDK honours by itself.

What a Redis failure is (`redis_unavailable`) is decided here once, for every consumer: the rate
limits open, the recommendation cache is bypassed, a builder's lease is refused, `/ready` says degraded.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import aioboto3
import aiohttp
import redis.asyncio as aioredis
import redis.exceptions
from aiobotocore.config import AioConfig

from bookrec_common.settings import ServiceSettings


@asynccontextmanager
async def dynamodb_client(settings: ServiceSettings, bulk: bool = False) -> AsyncIterator[Any]:
    """The request-path client (short timeouts), or with `bulk` the one for background scans."""
    config = AioConfig(
        connect_timeout=settings.dynamodb_connect_timeout,
        read_timeout=settings.dynamodb_scan_read_timeout if bulk else settings.dynamodb_read_timeout,
        retries={"max_attempts": settings.dynamodb_max_attempts, "mode": "standard"},
        max_pool_connections=64,
        tcp_keepalive=True,
    )
    session = aioboto3.Session()
    async with session.client("dynamodb", region_name=settings.aws_region, config=config) as client:
        yield client


@asynccontextmanager
async def s3_client(settings: ServiceSettings, read_timeout: float = 60.0) -> AsyncIterator[Any]:
    """S3 for artifacts: path-style addressing works on AWS and on any endpoint override alike."""
    config = AioConfig(connect_timeout=settings.dynamodb_connect_timeout, read_timeout=read_timeout,
                       retries={"max_attempts": 3, "mode": "standard"}, s3={"addressing_style": "path"})
    async with aioboto3.Session().client("s3", region_name=settings.aws_region, config=config) as client:
        yield client


def redis_client_for(settings: ServiceSettings,
                     timeout: float = 0.25) -> AbstractAsyncContextManager[aioredis.Redis | None]:
    """The service's Redis client from its settings: REDIS_URL, REDIS_AUTH_TOKEN, REDIS_TLS_CA_FILE."""
    return redis_client(settings.redis_url, timeout, auth_token=settings.redis_auth_token.get_secret_value(),
                        ca_file=settings.redis_tls_ca_file)


@asynccontextmanager
async def redis_client(url: str, timeout: float = 0.25, *, auth_token: str = "",
                       ca_file: str = "") -> AsyncIterator[aioredis.Redis | None]:
    """A Redis client, or None when no URL is configured (each service then runs without what needs it).

    `rediss://` URLs use TLS with the server's certificate and host name verified (against `ca_file`
    when given, else the system's trust store); `auth_token` is sent with AUTH on every connection.
    """
    if not url:
        yield None
        return
    options: dict[str, Any] = {}
    if auth_token:
        options["password"] = auth_token
    if url.startswith("rediss://"):
        options.update(ssl_cert_reqs="required", ssl_check_hostname=True)
        if ca_file:
            options["ssl_ca_certs"] = ca_file
    client = aioredis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                               health_check_interval=5, decode_responses=False, **options)
    try:
        yield client
    finally:
        await client.aclose()


# Replies by which a server that is up says it cannot serve for now. redis-py raises most as classes of
# their own: READONLY (a replica: what clients see during an ElastiCache failover), OOM (full under
# noeviction), MASTERDOWN, CLUSTERDOWN, TRYAGAIN; NOPERM, an ACL refusing us, is like a wrong AUTH token.
# (In a MULTI, redis-py raises the queued command's own error, not EXECABORT.) Others stay plain
# ResponseErrors: BUSY (a script or module holds the server), MISCONF (a failed snapshot stops writes),
# NOREPLICAS (min-replicas-to-write not met).
_UNAVAILABLE_REPLY_CLASSES = (redis.exceptions.ReadOnlyError, redis.exceptions.OutOfMemoryError,
                              redis.exceptions.ClusterDownError, redis.exceptions.TryAgainError,
                              redis.exceptions.NoPermissionError)
# (In a pipeline redis-py prefixes the reply with the command that met it.)
_UNAVAILABLE_REPLY_CODES = re.compile(r"(?:^|of pipeline caused error: \(['\"])(?:BUSY|MISCONF|NOREPLICAS) ")
# No answer, or none to use: refused, reset, timed out, TLS, AUTH refused, LOADING (all ConnectionError or
# TimeoutError in redis-py), a garbled reply, and the OS's own socket errors.
_UNAVAILABLE_TRANSPORT = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                          redis.exceptions.InvalidResponse, OSError)


def redis_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says Redis cannot serve now (down, failing over, full, loading, busy, slow, refusing
    our credentials): callers degrade as documented. Anything else Redis raises is a mistake of the
    calling code (DataError, WRONGTYPE, a script error, a syntax error) and stays an error."""
    if isinstance(exc, redis.exceptions.ResponseError):
        return isinstance(exc, _UNAVAILABLE_REPLY_CLASSES) or bool(_UNAVAILABLE_REPLY_CODES.search(str(exc)))
    return isinstance(exc, _UNAVAILABLE_TRANSPORT)


async def probe_redis_writes(client: aioredis.Redis, key: str) -> None:
    """Readiness probe of a Redis the service writes to: a short-lived SET, since a read-only replica
    (mid-failover) and a full server under noeviction both still answer PING and reads."""
    await client.set(key, b"1", px=10_000)


@asynccontextmanager
async def http_session(total_timeout: float = 2.0) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=total_timeout),
        connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=30),
    ) as session:
        yield session


async def probe_table(client: Any, table: str, key: dict[str, str]) -> None:
    """Readiness probe of one table: a GetItem of a key that never exists.

    O(1) everywhere (DescribeTable on the emulator walks every item), and it
    proves the endpoint answers, the table exists and we may read it.
    """
    await client.get_item(TableName=table, Key={name: {"S": value} for name, value in key.items()},
                          ProjectionExpression=next(iter(key)))
