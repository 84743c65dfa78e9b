from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import client_for
from tests.transactions.helpers import WEBHOOK_SECRET


@pytest.fixture
def settings(make_settings: Any) -> Any:
    return make_settings(PAYMENT_WEBHOOK_SECRET=WEBHOOK_SECRET)


@pytest.fixture
async def provider(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The payment provider: no cookie, no browser headers."""
    async with client_for(app, ip="198.51.100.7") as c:
        yield c


@pytest.fixture
async def staff(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, ip="203.0.113.20") as c:
        yield c
