"""Users and their web service access keys (integration-admin only).

A key appears in plaintext only in the response that issues it (create or rotate).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, status

from app.api.deps import SessionDep, SettingsDep, require_roles
from app.api.schemas.users import (
    CrmKeyRead,
    KeyCreate,
    KeyIssued,
    KeyList,
    KeyRead,
    KeyRotated,
    KeysRevoked,
    UserCreate,
    UserDeleted,
    UserList,
    UserRead,
    UserUpdate,
)
from app.auth import user_keys, users
from app.connection import odata_keys
from app.models.security import Role, WebServiceAccessKey

router = APIRouter(
    prefix="/users",
    tags=["users"],
    dependencies=[Depends(require_roles(Role.integration_admin))],
)


def _issued(user_name: str, row: WebServiceAccessKey, key: str) -> KeyIssued:
    return KeyIssued(**KeyRead.from_row(row).model_dump(), user_name=user_name, key=key)


@router.get("", response_model=UserList)
async def list_users(session: SessionDep) -> UserList:
    """List every user with roles and state (never a password hash)."""
    items = [UserRead.from_user(user) for user in await users.list_users(session)]
    return UserList(items=items, count=len(items))


@router.post("", response_model=UserRead, status_code=status.HTTP_201_CREATED)
async def create_user(session: SessionDep, body: UserCreate) -> UserRead:
    user = await users.create_user(session, **body.model_dump())
    return UserRead.from_user(user)


@router.get("/{user_name}", response_model=UserRead)
async def get_user(session: SessionDep, user_name: str) -> UserRead:
    return UserRead.from_user(await users.get_user_or_raise(session, user_name=user_name))


@router.patch("/{user_name}", response_model=UserRead)
async def update_user(session: SessionDep, user_name: str, body: UserUpdate) -> UserRead:
    changes = body.model_dump(exclude_unset=True)
    user = await users.update_user(session, user_name=user_name, **changes)
    return UserRead.from_user(user)


@router.delete("/{user_name}", response_model=UserDeleted)
async def delete_user(session: SessionDep, user_name: str) -> UserDeleted:
    """Delete a user and its access keys (not the last enabled admin, not the OData user)."""
    deleted = await users.delete_user(session, user_name=user_name)
    return UserDeleted(user_name=user_name, access_keys_deleted=deleted)


@router.get("/{user_name}/keys", response_model=KeyList)
async def list_keys(session: SessionDep, user_name: str) -> KeyList:
    """List a user's access keys: ids, dates and state (never the key)."""
    rows = await user_keys.list_keys(session, user_name=user_name)
    items = [KeyRead.from_row(row) for row in rows]
    return KeyList(items=items, count=len(items))


@router.post("/{user_name}/keys", response_model=KeyIssued, status_code=status.HTTP_201_CREATED)
async def create_key(
    session: SessionDep, settings: SettingsDep, user_name: str, body: KeyCreate | None = None
) -> KeyIssued:
    expires_at = body.expires_at if body else None
    row, key = await user_keys.create_key(
        session, settings, user_name=user_name, expires_at=expires_at
    )
    return _issued(user_name, row, key)


@router.post("/{user_name}/keys/rotate", response_model=KeyRotated)
async def rotate_key(
    session: SessionDep, settings: SettingsDep, user_name: str, body: KeyCreate | None = None
) -> KeyRotated:
    """BC's "change web service key"; the CRM's copy too, if the CRM uses this user."""
    expires_at = body.expires_at if body else None
    row, key, outcome = await odata_keys.rotate_key(
        session, settings, user_name=user_name, expires_at=expires_at
    )
    issued = _issued(user_name, row, key)
    return KeyRotated(**issued.model_dump(), crm=CrmKeyRead(**vars(outcome)))


@router.post("/{user_name}/keys/revoke", response_model=KeysRevoked)
async def revoke_keys(session: SessionDep, user_name: str) -> KeysRevoked:
    revoked, outcome = await odata_keys.revoke_keys(session, user_name=user_name)
    return KeysRevoked(user_name=user_name, revoked=revoked, crm=CrmKeyRead(**vars(outcome)))
