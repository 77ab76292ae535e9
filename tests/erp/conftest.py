"""ERP API fixtures: an integration user's client and a seeded set of master data."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth import tokens
from app.models.security import Role
from app.settings import Settings
from tests import factories
from tests.erp import seed

USER = "integrator"


@pytest.fixture
async def api(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    """The app's client, authenticated as an integration user, over seeded master data."""
    await factories.create_user(
        session, user_name=USER, roles=(Role.integration_user,), password=None
    )
    await seed.master_data(session)
    await session.commit()
    token, _ = tokens.create_access_token(
        settings, subject=USER, roles=[Role.integration_user.value], version=0, key_id=None
    )
    client.headers["Authorization"] = f"Bearer {token}"
    yield client
    client.headers.pop("Authorization", None)
