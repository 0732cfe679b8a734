"""The ETL's DynamoDB client, and the retries every batch call of it shares."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
from botocore.config import Config
from tenacity import RetryError, Retrying, retry_if_result, stop_after_attempt, wait_random_exponential

MAX_ATTEMPTS = 12
BACKOFF_BASE, BACKOFF_CAP = 0.05, 5.0


class Unfinished(RuntimeError):
    """DynamoDB kept handing part of a batch back (throttling) through every attempt."""


def dynamodb_client(writers: int = 8) -> Any:
    """boto3's DynamoDB client; the endpoint comes from the standard AWS_ENDPOINT_URL (unset on AWS)."""
    return boto3.client("dynamodb", config=Config(max_pool_connections=writers + 2,
                                                  retries={"mode": "standard", "max_attempts": 10}))


def backoff() -> Any:
    """Exponential backoff, full jitter: attempt n waits up to BACKOFF_BASE * 2**(n-1), at most the cap."""
    return wait_random_exponential(multiplier=BACKOFF_BASE, max=BACKOFF_CAP)


def batch_get(client: Any, request: dict[str, dict[str, Any]],
              sleep: Callable[[float], None] = time.sleep) -> Iterator[tuple[str, dict[str, Any]]]:
    """(table, item) for every key of a BatchGetItem request (at most 100 keys); the UnprocessedKeys
    DynamoDB hands back are asked again with backoff."""
    found: list[tuple[str, dict[str, Any]]] = []
    left = [request]

    def attempt() -> bool:
        response = client.batch_get_item(RequestItems=left[0])
        for table, items in response.get("Responses", {}).items():
            found.extend((table, item) for item in items)
        left[0] = response.get("UnprocessedKeys") or {}
        return bool(left[0])

    retrying = Retrying(retry=retry_if_result(bool), stop=stop_after_attempt(MAX_ATTEMPTS), wait=backoff(),
                        sleep=sleep)
    try:
        retrying(attempt)
    except RetryError:
        raise Unfinished(f"keys still unprocessed after {MAX_ATTEMPTS} BatchGetItem attempts") from None
    return iter(found)
