"""Shared arrangements for the setup tests: an admin, the sandbox as the CRM."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from app.dataverse import DataverseClient, client_from_connection
from app.db import SessionMaker
from app.main import create_app
from app.models.security import Role
from app.settings import Settings
from tests.factories import bearer_headers, create_access_key, create_user
from tests.fixtures.live_api import live_admin, live_api, live_reader  # noqa: F401
from tests.fixtures.sandbox import RunningSandbox
from tests.hostile.live import serve_app
from tests.jobs.conftest import arq_pool, tick_ctx, worker_settings  # noqa: F401 - fixtures

API = "/api/v1"


async def _headers(
    session: AsyncSession, client: httpx.AsyncClient, settings: Settings, name: str, role: Role
) -> dict[str, str]:
    # An access key instead of a password: no argon2 hashing, so the fixtures stay fast.
    user = await create_user(session, user_name=name, roles=(role,), password=None)
    key = await create_access_key(session, settings, user=user)
    await session.commit()
    return await bearer_headers(client, user_name=name, password=key)


@pytest.fixture
def allow_private_crm_addresses() -> bool:
    """The live app's setting; a test module overrides this fixture to refuse them."""
    return True


@pytest.fixture
async def live(
    settings: Settings, sessionmaker: SessionMaker, allow_private_crm_addresses: bool
) -> AsyncIterator[httpx.AsyncClient]:
    """The API served by uvicorn on 127.0.0.1, for requests over real HTTP. It shares the
    database and the signing secret with ``client``, so ``admin``'s token works on it."""
    live_settings = settings.model_copy(
        update={"allow_private_crm_addresses": allow_private_crm_addresses}
    )
    with serve_app(create_app(live_settings, should_migrate=False)) as port:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            yield client


@pytest.fixture
async def admin(
    session: AsyncSession, client: httpx.AsyncClient, settings: Settings
) -> dict[str, str]:
    return await _headers(session, client, settings, "admin", Role.integration_admin)


@pytest.fixture
async def reader(
    session: AsyncSession, client: httpx.AsyncClient, settings: Settings
) -> dict[str, str]:
    return await _headers(session, client, settings, "reader", Role.integration_user)


def connection_body(sandbox: RunningSandbox, **overrides: Any) -> dict[str, Any]:
    body = {
        "server_address": sandbox.base_url,
        "authentication_type": "oauth_client_secret",
        "token_url": sandbox.token_url,
        "client_id": sandbox.config.client_id,
        "client_secret": sandbox.config.client_secret,
        "dataverse_connection_enabled": True,
    }
    body.update(overrides)
    return body


async def configure(
    client: httpx.AsyncClient, headers: dict[str, str], sandbox: RunningSandbox, **overrides: Any
) -> dict[str, Any]:
    response = await client.patch(
        f"{API}/connection", json=connection_body(sandbox, **overrides), headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def enable(
    client: httpx.AsyncClient, headers: dict[str, str], sandbox: RunningSandbox
) -> None:
    await configure(client, headers, sandbox)
    response = await client.post(f"{API}/connection/enable", headers=headers)
    assert response.status_code == 200, response.text


@pytest.fixture
async def crm(sandbox: RunningSandbox) -> AsyncIterator[DataverseClient]:
    """A client on the sandbox for arranging and checking CRM rows."""
    async with client_from_connection(
        server_address=sandbox.base_url,
        api_version=sandbox.config.api_version,
        authentication_type="oauth_client_secret",
        client_id=sandbox.config.client_id,
        client_secret=sandbox.config.client_secret,
        token_url=sandbox.token_url,
    ) as client:
        yield client
