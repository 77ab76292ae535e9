"""The sandbox as the CRM, a connection setup with the default mappings, ERP factories."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from app.connection.defaults import recreate_default_setup
from app.dataverse import DataverseClient, client_from_connection
from app.models.integration import ConnectionSetup
from tests.fixtures.sandbox import RunningSandbox


def sandbox_client(sandbox: RunningSandbox) -> DataverseClient:
    return client_from_connection(
        server_address=sandbox.base_url,
        api_version=sandbox.config.api_version,
        authentication_type="oauth_client_secret",
        client_id=sandbox.config.client_id,
        client_secret=sandbox.config.client_secret,
        token_url=sandbox.token_url,
    )


@pytest.fixture
async def crm(sandbox: RunningSandbox) -> AsyncIterator[DataverseClient]:
    async with sandbox_client(sandbox) as client:
        yield client


@pytest.fixture
async def setup(session: AsyncSession, sandbox: RunningSandbox) -> ConnectionSetup:
    """An enabled connection to the sandbox with the default mappings (no CRM rows yet)."""
    row = ConnectionSetup(
        server_address=sandbox.base_url, is_enabled=True, dataverse_connection_enabled=True
    )
    session.add(row)
    await session.flush()
    await recreate_default_setup(session, setup=row)
    await session.commit()
    return row
