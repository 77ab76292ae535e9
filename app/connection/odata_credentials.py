"""The item availability web service settings handed to the CRM: URL, user, access key.

The key must be a web service access key of the chosen user (we keep only digests, so
the admin either pastes the user's key, which is checked, or asks for a new key to be
issued to that user). It is stored encrypted and only ever leaves through the solution
deployment, which writes it into the CRM's ``nav_connection`` row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth import access_keys, user_keys
from app.auth.encryption import encrypt_secret
from app.auth.service import get_user_by_name
from app.clock import as_utc, utc_now
from app.connection.setup_validation import check_url
from app.errors import InvalidInputError
from app.models.integration import ConnectionSetup
from app.models.security import Role, User, UserState, WebServiceAccessKey
from app.settings import Settings

ODATA_FIELDS = frozenset(
    {"item_availability_enabled", "odata_url", "reset_odata_url", "odata_user_name",
     "odata_access_key", "issue_odata_access_key"}
)  # fmt: skip
_ODATA_ROLES = frozenset({Role.product_availability, Role.integration_admin})


async def check_odata_user(session: AsyncSession, user_name: str) -> User:
    user = await get_user_by_name(session, user_name)
    if user is None or user.state != UserState.enabled:
        msg = f"The OData user {user_name[:100]!r} does not exist or is disabled."
        raise InvalidInputError(msg)
    if not user.role_set & _ODATA_ROLES:
        msg = (
            f"The OData user {user_name!r} cannot read the item availability service: "
            "give it the product-availability role."
        )
        raise InvalidInputError(msg)
    return user


async def check_access_key(
    session: AsyncSession, settings: Settings, *, user: User, key: str
) -> None:
    key_id = access_keys.parse_key_id(key)
    row = None
    if key_id is not None:
        statement = select(WebServiceAccessKey).where(
            WebServiceAccessKey.key_id == key_id, WebServiceAccessKey.user_id == user.id
        )
        row = (await session.exec(statement)).first()
    pepper = settings.access_key_pepper.get_secret_value()
    is_valid = (
        row is not None
        and row.revoked_at is None
        and (row.expires_at is None or as_utc(row.expires_at) > utc_now())
        and access_keys.key_matches(pepper, key, row.key_digest)
    )
    if not is_valid:
        msg = (
            f"The OData access key is not a valid web service access key of {user.user_name!r}: "
            "paste that user's current key, or ask for a new one (issue_odata_access_key)."
        )
        raise InvalidInputError(msg)


async def apply_odata_changes(
    session: AsyncSession, settings: Settings, *, setup: ConnectionSetup, changes: Mapping[str, Any]
) -> None:
    if changes.get("reset_odata_url"):
        setup.odata_url = settings.odata_url.rstrip("/")
    elif "odata_url" in changes:
        url = changes["odata_url"] or ""
        setup.odata_url = check_url(url, label="OData URL") if url else ""
    if "odata_user_name" in changes and changes["odata_user_name"] != setup.odata_user_name:
        setup.odata_user_name = changes["odata_user_name"] or ""
        setup.odata_access_key_encrypted = ""  # the old key belongs to the old user
    if setup.odata_user_name and ("odata_user_name" in changes or "odata_access_key" in changes):
        await check_odata_user(session, setup.odata_user_name)
    await _apply_key(session, settings, setup=setup, changes=changes)
    if "item_availability_enabled" in changes:
        setup.item_availability_enabled = bool(changes["item_availability_enabled"])
    # Only when they change: a revoked key must not block unrelated setup changes.
    if setup.item_availability_enabled and ODATA_FIELDS & changes.keys():
        _raise_if_odata_incomplete(setup)


async def _apply_key(
    session: AsyncSession, settings: Settings, *, setup: ConnectionSetup, changes: Mapping[str, Any]
) -> None:
    key = changes.get("odata_access_key")
    wants_new = bool(changes.get("issue_odata_access_key"))
    if key and wants_new:
        msg = "Give an OData access key or ask for a new one, not both."
        raise InvalidInputError(msg)
    if (key or wants_new) and not setup.odata_user_name:
        msg = "Choose the OData user (odata_user_name) before its access key."
        raise InvalidInputError(msg)
    if key:
        user = await check_odata_user(session, setup.odata_user_name)
        await check_access_key(session, settings, user=user, key=key)
        setup.odata_access_key_encrypted = encrypt_secret(settings, key)
    elif wants_new:
        await check_odata_user(session, setup.odata_user_name)
        _row, new_key = await user_keys.create_key(
            session, settings, user_name=setup.odata_user_name
        )
        setup.odata_access_key_encrypted = encrypt_secret(settings, new_key)
    elif "odata_access_key" in changes:  # an explicit empty value clears it
        setup.odata_access_key_encrypted = ""


def _raise_if_odata_incomplete(setup: ConnectionSetup) -> None:
    missing = [
        name
        for name, value in (
            ("odata_url", setup.odata_url),
            ("odata_user_name", setup.odata_user_name),
            ("odata_access_key", setup.odata_access_key_encrypted),
        )
        if not value
    ]
    if missing:
        msg = f"Publishing item availability needs {', '.join(missing)}."
        raise InvalidInputError(msg)
