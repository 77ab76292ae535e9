"""Every ERP route refuses anonymous callers (401) and callers without the role (403)."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI
from sqlmodel.ext.asyncio.session import AsyncSession

from app.api import erp as erp_api
from app.auth import tokens
from app.models.security import Role
from app.settings import Settings
from tests import factories

ERP_PATHS = {
    *(resource.path for resource in erp_api.RESOURCES),
    "item-ledger-entries",
    "customer-ledger-entries",
    "sales-quotes",
    "sales-orders",
    "sales-invoices",
}


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every ERP operation in the OpenAPI document."""
    found = []
    for path, operations in app.openapi()["paths"].items():
        if path.split("/")[3:4] not in ([p] for p in ERP_PATHS):
            continue
        found += [(method.upper(), re.sub(r"\{[^}]+\}", "1", path)) for method in operations]
    return found


async def test_every_erp_route_needs_an_integration_role(
    app: FastAPI, client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    routes = _routes(app)
    assert len(routes) > 90
    await factories.create_user(
        session, user_name="viewer", roles=(Role.product_availability,), password=None
    )
    await session.commit()
    token, _ = tokens.create_access_token(
        settings, subject="viewer", roles=["product-availability"], version=0, key_id=None
    )
    wrong_role = {"Authorization": f"Bearer {token}"}
    for method, path in routes:
        anonymous = await client.request(method, path, json={})
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        refused = await client.request(method, path, json={}, headers=wrong_role)
        assert refused.status_code == 403, (method, path, refused.text)
