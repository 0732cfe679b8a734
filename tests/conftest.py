"""What the end-to-end tests share beside the root conftest's stack."""

from __future__ import annotations

import httpx
import pytest


@pytest.fixture(scope="module")
def alb(stack: str):
    """An HTTP client of the stack's local ALB."""
    with httpx.Client(base_url=stack, timeout=60) as client:
        yield client
