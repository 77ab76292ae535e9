"""What the CRM keeps about us, written when our setting changes, in the same action.

- The organization's sales order processing flag (``organization.issopintegrationenabled``):
  BC sets it when sales order integration is enabled, so Sales hands submitted orders to
  the back office instead of fulfilling them itself, and clears it when disabled.
- The ``nav_connection`` row: how the CRM calls our item availability service (ERP URL,
  OData URL, OData user name and access key). The solution deployment writes it; a change
  of the OData settings or of that user's key writes it again, or the CRM's calls fail
  with 401 until someone redeploys.

Both are written only where the CRM is expected to hold them: the flag once the connection
is enabled, the row once the solution is installed and item availability is published.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from app.auth.encryption import decrypt_secret
from app.connection.setup_validation import missing_credentials
from app.dataverse import DataverseClient
from app.logs import get_logger
from app.models.integration import ConnectionSetup
from app.settings import Settings, product_item_availability_url
from app.sync.crm_client import build_crm_client, crm_errors

log = get_logger("salesbridge.connection.crm_settings")

NAV_CONNECTIONS = "nav_connections"
SOP_FLAG = "issopintegrationenabled"
LEGACY_SERVICE_ROOT = "/odata/v4"


@dataclass(frozen=True)
class OdataSettings:
    """The values ``nav_connection`` carries, to tell whether a change touched them."""

    is_published: bool
    url: str
    user_name: str
    key_ciphertext: str

    @classmethod
    def of(cls, setup: ConnectionSetup) -> OdataSettings:
        return cls(
            setup.item_availability_enabled,
            setup.odata_url,
            setup.odata_user_name,
            setup.odata_access_key_encrypted,
        )


def sales_order_processing(setup: ConnectionSetup) -> bool:
    return setup.sales_order_integration_enabled or setup.bidirectional_sales_order_integration


def is_nav_connection_kept(setup: ConnectionSetup) -> bool:
    """Whether the CRM holds a ``nav_connection`` row we keep current."""
    return setup.is_solution_installed and setup.item_availability_enabled


def crm_odata_url(settings: Settings, setup: ConnectionSetup) -> str:
    """The URL for ``nav_dynamicsnavodataurl``: BC's, the V3 ``ProductItemAvailability`` of
    the company. A v4 service root stored by an earlier version (``.../odata/v4``) is moved
    onto it, on the same host; a URL the admin set to anything else is kept as it is."""
    stored = setup.odata_url.rstrip("/")
    if stored.endswith(LEGACY_SERVICE_ROOT):
        base = stored.removesuffix(LEGACY_SERVICE_ROOT)
        return product_item_availability_url(base, settings.company_name)
    return setup.odata_url


def nav_connection_body(settings: Settings, setup: ConnectionSetup) -> dict[str, Any]:
    return {
        "nav_name": settings.company_name,
        "nav_dynamicsnavurl": settings.public_url,
        "nav_dynamicsnavodataurl": setup.odata_url,
        "nav_dynamicsnavodatausername": setup.odata_user_name,
        "nav_dynamicsnavodataaccesskey": decrypt_secret(settings, setup.odata_access_key_encrypted),
    }


async def write_nav_connection(
    crm: DataverseClient, settings: Settings, setup: ConnectionSetup
) -> str:
    """Create or update the active ``nav_connection`` row: created | updated | skipped."""
    if not setup.item_availability_enabled:
        return "skipped"
    setup.odata_url = crm_odata_url(settings, setup)  # what the CRM gets is what setup shows
    body = nav_connection_body(settings, setup)
    async for found in crm.query(
        NAV_CONNECTIONS, filter="statecode eq 0", select=["nav_connectionid"], top=1
    ):
        await crm.update(NAV_CONNECTIONS, uuid.UUID(str(found["nav_connectionid"])), body)
        return "updated"
    await crm.create(NAV_CONNECTIONS, body)
    return "created"


async def write_sales_order_processing(crm: DataverseClient, *, enabled: bool) -> bool:
    """Set the organization's flag (the org WhoAmI names) unless it has that value already.

    Only a needed write is made: changing the organization takes a privilege an
    integration user may lack, and enabling a connection that changes nothing there
    should not depend on it. Returns whether it wrote.
    """
    organization_id = (await crm.whoami()).organization_id
    row = await crm.get("organizations", organization_id, select=[SOP_FLAG])
    if bool(row.get(SOP_FLAG)) == enabled:
        return False
    await crm.update("organizations", organization_id, {SOP_FLAG: enabled})
    return True


async def push_nav_connection(settings: Settings, setup: ConnectionSetup) -> str:
    """Write ``nav_connection`` now if the CRM keeps one: updated | created | not_installed."""
    if not is_nav_connection_kept(setup):
        return "not_installed"
    async with build_crm_client(settings, setup) as crm:
        with crm_errors("update the item availability connection (nav_connection) in the CRM"):
            action = await write_nav_connection(crm, settings, setup)
    log.info("nav_connection_written", action=action)
    return action


async def push_setup_changes(
    settings: Settings,
    setup: ConnectionSetup,
    *,
    was_processing_orders: bool,
    odata_before: OdataSettings,
) -> None:
    """After a setup change: the CRM-side values it changed, or an error that undoes it."""
    wants_flag = setup.is_enabled and sales_order_processing(setup) != was_processing_orders
    wants_nav = is_nav_connection_kept(setup) and OdataSettings.of(setup) != odata_before
    if not (wants_flag or wants_nav) or missing_credentials(setup):
        return
    async with build_crm_client(settings, setup) as crm:
        if wants_flag:
            await _set_flag(crm, enabled=sales_order_processing(setup))
        if wants_nav:
            with crm_errors("update the item availability connection (nav_connection)"):
                action = await write_nav_connection(crm, settings, setup)
            log.info("nav_connection_written", action=action)


async def push_sales_order_processing(settings: Settings, setup: ConnectionSetup) -> None:
    """On enabling the connection: the flag as the setup has it, set or cleared."""
    async with build_crm_client(settings, setup) as crm:
        await _set_flag(crm, enabled=sales_order_processing(setup))


async def _set_flag(crm: DataverseClient, *, enabled: bool) -> None:
    with crm_errors("set the sales order processing flag of the CRM organization"):
        if await write_sales_order_processing(crm, enabled=enabled):
            log.info("crm_sales_order_processing_set", enabled=enabled)
