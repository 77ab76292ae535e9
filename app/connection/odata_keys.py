"""Rotating or revoking a user's access keys without breaking the CRM behind its back.

The CRM calls our item availability service as the connection's OData user, with the key
kept in its ``nav_connection`` row. So when that user's keys change through Salesbridge:

- a rotation stores the new key in the connection setup and writes it to ``nav_connection``
  in the same action. If the CRM cannot be updated, the rotation is refused and nothing
  changes: the old key keeps working (to cut it off anyway, revoke);
- a revocation revokes the CRM's key as asked; the stored copy is cleared and the result
  says that the CRM's item availability calls now fail, with the one-step fix: a new key
  for the CRM (``issue_odata_access_key`` on the connection, or a rotation), which also
  updates ``nav_connection``.

Other users' keys never touch the CRM.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth import user_keys
from app.auth.encryption import encrypt_secret
from app.auth.users import get_user_or_raise
from app.connection import crm_settings
from app.errors import SalesbridgeError
from app.logs import get_logger
from app.models.integration import ConnectionSetup
from app.models.security import WebServiceAccessKey
from app.settings import Settings

log = get_logger("salesbridge.connection.odata_keys")

FIX = (
    "To give the CRM a new key in one step: PATCH /api/v1/connection with "
    '{"issue_odata_access_key": true}, or `salesbridge key rotate %s`.'
)


@dataclass(frozen=True)
class CrmKeyOutcome:
    """What the key change did to the CRM's access.

    ``action``: unaffected (not the CRM's user) | updated / created (``nav_connection``
    written) | stored (kept in the setup; the CRM gets it with the solution deployment) |
    revoked (the CRM's key is revoked: its calls fail until it gets a new one).
    """

    action: str
    message: str


UNAFFECTED = CrmKeyOutcome("unaffected", "The CRM does not use this user's keys.")


async def _odata_setup(session: AsyncSession, user_name: str) -> ConnectionSetup | None:
    """The setup row if ``user_name`` is its OData user, else None (no row is created)."""
    user = await get_user_or_raise(session, user_name=user_name)
    statement = select(ConnectionSetup).order_by(col(ConnectionSetup.id))
    setup = (await session.exec(statement)).first()
    if setup is None or not setup.odata_user_name:
        return None
    is_odata_user = setup.odata_user_name == user.user_name
    return setup if is_odata_user else None


async def rotate_key(
    session: AsyncSession, settings: Settings, *, user_name: str, expires_at: datetime | None
) -> tuple[WebServiceAccessKey, str, CrmKeyOutcome]:
    """Revoke the user's keys, issue one; the CRM gets it now if it uses this user."""
    setup = await _odata_setup(session, user_name)
    row, key = await user_keys.rotate_key(
        session, settings, user_name=user_name, expires_at=expires_at
    )
    if setup is None:
        return row, key, UNAFFECTED
    setup.odata_access_key_encrypted = encrypt_secret(settings, key)
    session.add(setup)
    await session.flush()
    if not crm_settings.is_nav_connection_kept(setup):
        message = (
            "The new key is stored in the connection setup; the CRM gets it when the "
            "integration solution is deployed with item availability published."
        )
        return row, key, CrmKeyOutcome("stored", message)
    try:
        action = await crm_settings.push_nav_connection(settings, setup)
    except SalesbridgeError as exc:
        msg = (
            f"The key was not rotated, the old key still works: {exc.detail} To cut the old "
            "key off regardless, revoke the user's keys, then give the CRM a new key."
        )
        raise type(exc)(msg) from None
    log.info("odata_key_rotated_in_crm", user_name=user_name, action=action)
    return row, key, CrmKeyOutcome(action, "The CRM's nav_connection holds the new key.")


async def revoke_keys(session: AsyncSession, *, user_name: str) -> tuple[int, CrmKeyOutcome]:
    """Revoke every key of the user; says so clearly if the CRM's key was among them."""
    setup = await _odata_setup(session, user_name)
    revoked = await user_keys.revoke_keys(session, user_name=user_name)
    if setup is None or not setup.odata_access_key_encrypted:
        return revoked, UNAFFECTED
    setup.odata_access_key_encrypted = ""
    session.add(setup)
    await session.flush()
    message = (
        "The revoked keys include the one Dynamics 365 Sales uses for item availability: "
        "its calls to the OData service now fail (401). " + FIX % user_name
    )
    log.warning("odata_key_of_crm_revoked", user_name=user_name)
    return revoked, CrmKeyOutcome("revoked", message)
