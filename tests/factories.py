"""Plain factory functions for tests: rows with sensible defaults, overrides as keywords."""

from __future__ import annotations

from typing import Any

import httpx
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth import access_keys, passwords
from app.models.security import Role, User, WebServiceAccessKey
from app.settings import Settings

PASSWORD = "correct horse battery staple"


async def create_user(
    session: AsyncSession,
    *,
    user_name: str = "admin",
    roles: tuple[Role, ...] = (Role.integration_admin,),
    password: str | None = PASSWORD,
    **overrides: Any,
) -> User:
    user = User(
        user_name=user_name,
        roles=",".join(r.value for r in roles),
        password_hash=passwords.hash_password(password) if password else None,
        **overrides,
    )
    session.add(user)
    await session.flush()
    return user


async def create_access_key(session: AsyncSession, settings: Settings, *, user: User) -> str:
    issued = access_keys.issue_key(settings.access_key_pepper.get_secret_value())
    assert user.id is not None
    session.add(
        WebServiceAccessKey(user_id=user.id, key_id=issued.key_id, key_digest=issued.digest)
    )
    await session.flush()
    return issued.key


async def bearer_headers(
    client: httpx.AsyncClient, *, user_name: str, password: str = PASSWORD
) -> dict[str, str]:
    response = await client.post(
        "/api/v1/auth/token", data={"username": user_name, "password": password}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}
