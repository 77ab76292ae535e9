"""The assisted setup in one call: what ``salesbridge connection setup`` and the demo run.

The same state machine as ``POST /api/v1/assisted-setup`` (start, the three steps,
finish), so the command line validates, tests, deploys and enables exactly as the REST
API does. Item availability is published for the OData user (created as a key-only
product-availability user when missing) with a new access key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth import users
from app.auth.service import get_user_by_name
from app.connection import assisted_setup
from app.models.integration import AssistedSetup
from app.models.security import Role
from app.settings import Settings

DEFAULT_ODATA_USER = "crm"


@dataclass(frozen=True)
class ConnectAnswers:
    server_address: str
    client_id: str
    client_secret: str
    tenant_id: str = ""
    token_url: str = ""
    odata_url: str = ""  # empty: this service's public URL + /odata/v4
    odata_user_name: str = DEFAULT_ODATA_USER
    is_solution_imported: bool = True
    api_version: str = "9.2"


async def ensure_odata_user(session: AsyncSession, user_name: str) -> None:
    """The CRM's reader of item availability: product-availability, access keys only."""
    if await get_user_by_name(session, user_name) is None:
        await users.create_user(
            session,
            user_name=user_name,
            roles=[Role.product_availability],
            full_name="Dynamics 365 Sales (item availability)",
        )


def _steps(settings: Settings, answers: ConnectAnswers) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("crm_url", {"server_address": answers.server_address}),
        ("credentials", {
            "authentication_type": "oauth_client_secret", "client_id": answers.client_id,
            "client_secret": answers.client_secret, "tenant_id": answers.tenant_id or None,
            "token_url": answers.token_url or None,
        }),
        ("options", {
            "import_solution": answers.is_solution_imported, "publish_item_availability": True,
            "odata_url": answers.odata_url or settings.odata_url.rstrip("/"),
            "odata_user_name": answers.odata_user_name, "issue_odata_access_key": True,
            "enable_dataverse_connection": True, "api_version": answers.api_version,
        }),
    ]  # fmt: skip


async def connect(
    session: AsyncSession, settings: Settings, *, answers: ConnectAnswers
) -> AssistedSetup:
    """Run the whole assisted setup; the finished flow (its ``result``) is returned."""
    await ensure_odata_user(session, answers.odata_user_name)
    await assisted_setup.start(session, settings)
    for step, values in _steps(settings, answers):
        await assisted_setup.put_step(session, settings, step=step, answers=values)
    return await assisted_setup.finish(session, settings)
