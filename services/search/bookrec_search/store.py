"""The only search code that talks to DynamoDB: full loads (builders), the change feed, the autocomplete
fallback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from bookrec_catalog.catalog import title_bucket
from bookrec_catalog.changes import is_deleted
from bookrec_catalog.dynamo import from_item
from bookrec_common.clients import probe_table
from bookrec_common.feed import ChangeFeed, count_read

TITLE_PREFIX_INDEX = "title-prefix"
PROBE_ID = "OL0W"  # never a real work id
SUMMARY_FIELDS = ("book_id, title, title_norm, authors, first_publish_year, rating_sum, rating_count, cover_id, "
                  "#series")
SUMMARY_NAMES = {"#series": "series"}
INDEX_FIELDS = SUMMARY_FIELDS + ", subtitle, original_title, isbn_13, subjects, #lang"
INDEX_NAMES = {**SUMMARY_NAMES, "#lang": "language"}


def change_feed(client: Any, books_table: str) -> ChangeFeed:
    """The books change feed, read with the fields the index holds."""
    return ChangeFeed(client, books_table, INDEX_FIELDS, INDEX_NAMES)


class BookSource:
    """Reads books for the index (`client` answers requests; `scan_client` has the patient timeouts)."""

    def __init__(self, client: Any, scan_client: Any, books_table: str, segments: int = 4,
                 query_page_size: int = 0) -> None:
        self._client = client
        self._scan_client = scan_client
        self._table = books_table
        self._segments = segments
        self._query_page_size = query_page_size

    async def ping(self) -> None:
        await probe_table(self._client, self._table, {"book_id": PROBE_ID})

    async def scan(self, consume: Callable[[list[dict[str, Any]]], Any]) -> int:
        """Every book (tombstones left out), by a parallel segmented Scan: the whole table, so only
        for a build. Each page goes to `consume` as it arrives, so a full load never holds the whole
        table as items. Returns how many items were read."""
        async def segment(number: int) -> int:
            request: dict[str, Any] = {"TableName": self._table, "Segment": number,
                                       "TotalSegments": self._segments,
                                       "ProjectionExpression": INDEX_FIELDS + ", deleted_at",
                                       "ExpressionAttributeNames": INDEX_NAMES}
            read = 0
            while True:
                response = await self._scan_client.scan(**request)
                read += count_read("build", response)
                consume([book for book in map(from_item, response.get("Items", [])) if not is_deleted(book)])
                if "LastEvaluatedKey" not in response:
                    return read
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

        return sum(await asyncio.gather(*(segment(n) for n in range(self._segments))))

    async def titles_with_prefix(self, normalised_prefix: str) -> AsyncIterator[list[dict[str, Any]]]:
        """Pages of the books whose normalised title starts with the prefix: a GSI Query, to its end."""
        request: dict[str, Any] = {
            "TableName": self._table, "IndexName": TITLE_PREFIX_INDEX,
            "KeyConditionExpression": "title_bucket = :bucket AND begins_with(title_norm, :prefix)",
            "ExpressionAttributeValues": {":bucket": {"S": title_bucket(normalised_prefix)},
                                          ":prefix": {"S": normalised_prefix}},
            "ProjectionExpression": SUMMARY_FIELDS, "ExpressionAttributeNames": SUMMARY_NAMES,
        }
        if self._query_page_size:
            request["Limit"] = self._query_page_size
        while True:
            response = await self._client.query(**request)
            count_read("serving", response)
            yield [from_item(item) for item in response.get("Items", [])]
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
