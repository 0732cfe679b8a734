"""BatchGetItem's unprocessed keys against a real moto server: asked again, then a 503 when they persist."""

from __future__ import annotations

from typing import Any

import pytest

from bookrec_bookdetail.settings import BookdetailSettings
from bookrec_bookdetail.store import BookStore
from bookrec_catalog.catalog import with_derived_attributes
from bookrec_catalog.dynamo import to_item
from bookrec_common.clients import dynamodb_client
from bookrec_common.errors import DependencyUnavailable

BOOK_IDS = [f"OL{i}W" for i in range(1, 11)]


class Throttled:
    """The real client, except that its BatchGetItem answers leave keys unprocessed, as DynamoDB does under
    throttling: of the first `throttled` calls, each reads only its first key and returns the rest."""

    def __init__(self, client: Any, throttled: int) -> None:
        self._client = client
        self.throttled = throttled
        self.requested: list[list[str]] = []

    async def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # boto3's keyword
        [(table, request)] = RequestItems.items()
        keys = request["Keys"]
        self.requested.append([k["book_id"]["S"] for k in keys])
        if len(self.requested) > self.throttled:
            return await self._client.batch_get_item(RequestItems=RequestItems)
        response = await self._client.batch_get_item(RequestItems={table: {"Keys": keys[:1]}})
        if keys[1:]:
            response["UnprocessedKeys"] = {table: {"Keys": keys[1:]}}
        return response


@pytest.fixture
async def client(tables, dynamodb):
    for book_id in BOOK_IDS:
        dynamodb.put_item(TableName=tables["books"],
                          Item=to_item(with_derived_attributes({"book_id": book_id, "title": book_id})))
    async with dynamodb_client(BookdetailSettings(books_table=tables["books"])) as real:
        yield real


async def test_unprocessed_keys_are_asked_again_until_every_book_is_read(client, tables):
    throttled = Throttled(client, throttled=3)
    found = await BookStore(throttled, tables["books"], batch_max_attempts=6).get_many(BOOK_IDS)
    assert sorted(found) == sorted(BOOK_IDS)
    # Each call asked only for what the previous one left unprocessed.
    assert throttled.requested == [BOOK_IDS, BOOK_IDS[1:], BOOK_IDS[2:], BOOK_IDS[3:]]


async def test_keys_still_unprocessed_after_the_last_attempt_are_a_503(client, tables):
    throttled = Throttled(client, throttled=100)
    with pytest.raises(DependencyUnavailable) as refused:
        await BookStore(throttled, tables["books"], batch_max_attempts=3).get_many(BOOK_IDS)
    assert refused.value.status == 503 and refused.value.code == "batch_incomplete"
    assert refused.value.headers == {"Retry-After": "1"}
    assert len(throttled.requested) == 3  # no attempt past the bound
