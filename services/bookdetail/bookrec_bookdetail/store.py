"""The only bookdetail code that talks to DynamoDB.

A deleted book's tombstone (bookrec_catalog.changes) is kept for the change feed only: here it is no
book at all, exactly like an id never stored.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from bookrec_catalog.changes import is_deleted
from bookrec_catalog.dynamo import from_item
from bookrec_common.clients import probe_table
from bookrec_common.errors import DependencyUnavailable
from bookrec_common.feed import count_items

BATCH_GET_LIMIT = 100
PROBE_ID = "OL0W"  # never a real work id


class _Unprocessed(Exception):
    """DynamoDB left keys of a batch unprocessed (throttling): ask again for those."""


class BookStore:
    def __init__(self, client: Any, table: str, batch_max_attempts: int = 6) -> None:
        self._client = client
        self._table = table
        self._batch_max_attempts = batch_max_attempts

    async def ping(self) -> None:
        await probe_table(self._client, self._table, {"book_id": PROBE_ID})

    async def get(self, book_id: str) -> dict[str, Any] | None:
        response = await self._client.get_item(TableName=self._table, Key={"book_id": {"S": book_id}})
        item = response.get("Item")
        count_items("serving", 1 if item else 0)
        record = from_item(item) if item else None
        return None if record is None or is_deleted(record) else record

    async def get_many(self, book_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Fetch up to any number of books in ceil(n/100) BatchGetItem calls (plus retries)."""
        chunks = [book_ids[i:i + BATCH_GET_LIMIT] for i in range(0, len(book_ids), BATCH_GET_LIMIT)]
        found: dict[str, dict[str, Any]] = {}
        for result in await asyncio.gather(*(self._get_chunk(chunk) for chunk in chunks)):
            found.update(result)
        return found

    async def _get_chunk(self, book_ids: list[str]) -> dict[str, dict[str, Any]]:
        request: dict[str, Any] = {self._table: {"Keys": [{"book_id": {"S": b}} for b in book_ids]}}
        found: dict[str, dict[str, Any]] = {}
        # Exponential backoff with full jitter, as DynamoDB recommends for unprocessed keys: up to 0.05 s,
        # 0.1 s, 0.2 s... between attempts (botocore retries throttled calls, not a partial answer).
        retrying = AsyncRetrying(stop=stop_after_attempt(self._batch_max_attempts),
                                 wait=wait_random_exponential(multiplier=0.05),
                                 retry=retry_if_exception_type(_Unprocessed))
        try:
            async for attempt in retrying:
                with attempt:
                    response = await self._client.batch_get_item(RequestItems=request)
                    items = response.get("Responses", {}).get(self._table, [])
                    count_items("serving", len(items))
                    for item in items:
                        record = from_item(item)
                        if not is_deleted(record):
                            found[record["book_id"]] = record
                    request = response.get("UnprocessedKeys") or {}
                    if request:
                        raise _Unprocessed
        except RetryError:
            raise DependencyUnavailable("the books table kept returning unprocessed keys; retry shortly",
                                        code="batch_incomplete", headers={"Retry-After": "1"}) from None
        return found
