"""The only search code that talks to DynamoDB: index loads and the autocomplete fallback."""

from __future__ import annotations

import asyncio
from typing import Any

from bookrec_common.catalog import normalise_text, title_bucket
from bookrec_common.clients import probe_table
from bookrec_common.dynamo import from_item

TITLE_PREFIX_INDEX = "title-prefix"
SUMMARY_FIELDS = "book_id, title, title_norm, authors, first_publish_year, rating_sum, rating_count, cover_id"
INDEX_FIELDS = SUMMARY_FIELDS + ", subtitle, subjects, #lang, updated_at"


class BookSource:
    def __init__(self, client: Any, scan_client: Any, books_table: str, segments: int = 4) -> None:
        self._client = client
        self._scan_client = scan_client
        self._table = books_table
        self._segments = segments

    async def ping(self) -> None:
        await probe_table(self._client, self._table, {"book_id": "OL0W"})

    async def scan(self, updated_after: str | None = None) -> list[dict[str, Any]]:
        """Every book (or those updated after a watermark), by a parallel segmented Scan."""
        async def segment(number: int) -> list[dict[str, Any]]:
            request: dict[str, Any] = {"TableName": self._table, "Segment": number, "TotalSegments": self._segments,
                                       "ProjectionExpression": INDEX_FIELDS,
                                       "ExpressionAttributeNames": {"#lang": "language"}}
            if updated_after:
                request["FilterExpression"] = "updated_at > :after"
                request["ExpressionAttributeValues"] = {":after": {"S": updated_after}}
            out: list[dict[str, Any]] = []
            while True:
                response = await self._scan_client.scan(**request)
                out += [from_item(i) for i in response.get("Items", [])]
                if "LastEvaluatedKey" not in response:
                    return out
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

        parts = await asyncio.gather(*(segment(n) for n in range(self._segments)))
        return [record for part in parts for record in part]

    async def titles_with_prefix(self, prefix: str, page_size: int | None = None) -> list[dict[str, Any]]:
        """All books whose normalised title starts with `prefix`: one Query on the GSI, paged to the end."""
        normalised = normalise_text(prefix)
        request: dict[str, Any] = {
            "TableName": self._table, "IndexName": TITLE_PREFIX_INDEX,
            "KeyConditionExpression": "title_bucket = :bucket AND begins_with(title_norm, :prefix)",
            "ExpressionAttributeValues": {":bucket": {"S": title_bucket(normalised)}, ":prefix": {"S": normalised}},
            "ProjectionExpression": SUMMARY_FIELDS,
        }
        if page_size:
            request["Limit"] = page_size
        out: list[dict[str, Any]] = []
        while True:
            response = await self._client.query(**request)
            out += [from_item(i) for i in response.get("Items", [])]
            if "LastEvaluatedKey" not in response:
                return out
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
