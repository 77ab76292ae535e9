"""Helpers for the sandbox's wire tests: a token, an authenticated client, fast seeding."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
import pytest

from app.sandbox.schema.entities import BY_SET
from app.sandbox.webapi import CallContext
from tests.fixtures.sandbox import RunningSandbox

ODATA_HEADERS = {"Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"}


async def fetch_token(running: RunningSandbox, **overrides: str) -> httpx.Response:
    form = {
        "grant_type": "client_credentials",
        "client_id": running.config.client_id,
        "client_secret": running.config.client_secret,
        "scope": running.scope,
        **overrides,
    }
    async with httpx.AsyncClient() as client:
        return await client.post(running.token_url, data=form)


async def api_client(running: RunningSandbox) -> httpx.AsyncClient:
    response = await fetch_token(running)
    token = response.json()["access_token"]
    headers = {**ODATA_HEADERS, "Authorization": f"Bearer {token}"}
    return httpx.AsyncClient(base_url=running.api_url, headers=headers, timeout=30)


@pytest.fixture
async def api(sandbox: RunningSandbox) -> AsyncIterator[httpx.AsyncClient]:
    client = await api_client(sandbox)
    async with client:
        yield client


def seed(running: RunningSandbox, entity_set: str, bodies: Iterable[dict[str, Any]]) -> None:
    """Create rows in-process through the sandbox's own write path (fast bulk arranging)."""
    state = running.state
    records = state.webapi.records(CallContext(running.api_url))
    with state.store.transaction():
        for body in bodies:
            records.create(BY_SET[entity_set], body)


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert isinstance(body["error"]["code"], str)
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


def entity_id(response: httpx.Response) -> str:
    url = response.headers["OData-EntityId"]
    return url.rsplit("(", 1)[1].rstrip(")")
