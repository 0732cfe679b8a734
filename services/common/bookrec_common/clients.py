"""Clients created once per process in a lifespan and closed on shutdown.

Endpoints come from the standard AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_DYNAMODB
variables, which the AWS SDK honours by itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aioboto3
import aiohttp
import redis.asyncio as aioredis
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
async def redis_client(url: str, timeout: float = 0.25) -> AsyncIterator[aioredis.Redis | None]:
    """A Redis client, or None when no URL is configured (each service then runs without what needs it)."""
    if not url:
        yield None
        return
    client = aioredis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                               health_check_interval=5, decode_responses=False)
    try:
        yield client
    finally:
        await client.aclose()


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
