"""FastAPI dependencies: the session, the caller, and role checks.

``integration-admin`` may do everything, so every role check also admits it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth import tokens
from app.auth.service import user_for_token
from app.db import SessionMaker, current_actor
from app.errors import ForbiddenError, UnauthorizedError
from app.models.security import Role, User
from app.settings import Settings


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_sessionmaker(request: Request) -> SessionMaker:
    sessionmaker: SessionMaker = request.app.state.sessionmaker
    return sessionmaker


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request, committed before the response is sent."""
    async with get_sessionmaker(request)() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionMakerDep = Annotated[SessionMaker, Depends(get_sessionmaker)]
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]

# Declared as OAuth2's password flow so /docs' "Authorize" asks for a user name and password
# (and gets the token itself); any bearer from POST /api/v1/auth/token works the same.
_bearer = OAuth2PasswordBearer(
    tokenUrl="/api/v1/auth/token",
    scheme_name="sign-in",
    description="User name and password (or an access key as the password) of a Salesbridge user.",
    auto_error=False,
)


async def get_current_user(
    session: SessionDep,
    settings: SettingsDep,
    bearer: Annotated[str | None, Depends(_bearer)],
) -> User:
    if bearer is None:
        msg = "Not authenticated: send 'Authorization: Bearer <token>' (POST /api/v1/auth/token)."
        raise UnauthorizedError(msg)
    claims = tokens.decode_access_token(settings, bearer)
    user = await user_for_token(session, claims)
    if user is None:
        raise UnauthorizedError(tokens.INVALID)
    current_actor.set(user.user_name)
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def has_any_role(user: User, roles: tuple[Role, ...]) -> bool:
    granted = user.role_set
    return Role.integration_admin in granted or any(role in granted for role in roles)


def require_roles(*roles: Role) -> Callable[[User], Coroutine[Any, Any, User]]:
    async def dependency(user: CurrentUser) -> User:
        if not has_any_role(user, roles):
            names = ", ".join(r.value for r in (Role.integration_admin, *roles))
            msg = f"This needs one of the roles: {names}."
            raise ForbiddenError(msg)
        return user

    return dependency


AdminUser = Annotated[User, Depends(require_roles(Role.integration_admin))]
IntegrationUser = Annotated[User, Depends(require_roles(Role.integration_user))]
