"""Users and their roles: the service the REST API and the CLI share.

Functions flush and never commit: the caller (request dependency or CLI session scope)
owns the transaction. User names are unique ignoring case, because sign-in throttling and
people both treat ``Alice`` and ``alice`` as one account.
"""

from __future__ import annotations

import re
from enum import Enum

from sqlalchemy import delete, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth import passwords
from app.db import lock_until_commit
from app.errors import ConflictError, InvalidInputError, NotFoundError
from app.logs import get_logger
from app.models.security import Role, User, UserState, WebServiceAccessKey

log = get_logger("salesbridge.users")

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
USER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$"
_USER_NAME = re.compile(USER_NAME_PATTERN)
MAX_PROFILE_LENGTH = 100


class Unchanged(Enum):
    """Marks an argument of ``update_user`` the caller did not give (None means "remove")."""

    token = 0


UNCHANGED = Unchanged.token


def check_user_name(user_name: str) -> str:
    if not _USER_NAME.match(user_name):
        msg = (
            f"Invalid user name {user_name[:100]!r}: use 1-100 letters, digits, '.', '_', '@' "
            "or '-', starting with a letter or digit."
        )
        raise InvalidInputError(msg)
    return user_name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        msg = f"The password is too short: use at least {MIN_PASSWORD_LENGTH} characters."
        raise InvalidInputError(msg)
    if len(password) > MAX_PASSWORD_LENGTH:
        msg = f"The password is too long: use at most {MAX_PASSWORD_LENGTH} characters."
        raise InvalidInputError(msg)
    return password


def check_profile(*, full_name: str | None, email: str | None) -> None:
    for label, value in (("full name", full_name), ("email", email)):
        if value is not None and len(value) > MAX_PROFILE_LENGTH:
            msg = f"The {label} is too long: use at most {MAX_PROFILE_LENGTH} characters."
            raise InvalidInputError(msg)


def format_roles(roles: list[Role]) -> str:
    """Roles as stored: comma-separated, deduplicated, in the enum's order."""
    if not roles:
        msg = "A user needs at least one role: " + ", ".join(r.value for r in Role) + "."
        raise InvalidInputError(msg)
    return ",".join(role.value for role in Role if role in set(roles))


async def _find_user(session: AsyncSession, user_name: str) -> User | None:
    statement = select(User).where(func.lower(col(User.user_name)) == user_name.lower())
    return (await session.exec(statement)).first()


async def get_user_or_raise(session: AsyncSession, *, user_name: str) -> User:
    user = await _find_user(session, user_name)
    if user is None:
        msg = f"User {user_name[:100]!r} does not exist."
        raise NotFoundError(msg)
    return user


async def list_users(session: AsyncSession) -> list[User]:
    return list(await session.exec(select(User).order_by(col(User.user_name))))


async def count_users(session: AsyncSession) -> int:
    return (await session.exec(select(func.count()).select_from(User))).one()


async def create_user(
    session: AsyncSession,
    *,
    user_name: str,
    roles: list[Role],
    password: str | None = None,
    full_name: str = "",
    email: str = "",
) -> User:
    check_user_name(user_name)
    check_profile(full_name=full_name, email=email)
    stored_roles = format_roles(roles)
    password_hash = (
        passwords.hash_password(check_password(password)) if password is not None else None
    )
    if await _find_user(session, user_name) is not None:
        msg = f"User {user_name!r} already exists."
        raise ConflictError(msg)
    user = User(
        user_name=user_name,
        roles=stored_roles,
        password_hash=password_hash,
        full_name=full_name,
        email=email,
    )
    session.add(user)
    await session.flush()
    log.info("user_created", user_name=user_name, roles=stored_roles)
    return user


def _is_enabled_admin(user: User) -> bool:
    return user.state == UserState.enabled and Role.integration_admin in user.role_set


async def _keep_an_admin(session: AsyncSession, user: User, *, stays_admin: bool) -> None:
    """Refuse, before changing anything, a change that leaves no enabled administrator.

    Two admins disabling each other at once must not both pass the check: the lock makes
    the second wait for the first's commit, and both the user and the count are read
    after it, fresh from the database.
    """
    if stays_admin:
        return
    await lock_until_commit(session, "enabled-admins", table=User)
    await session.refresh(user)
    if not _is_enabled_admin(user):
        return
    others = (
        select(func.count())
        .select_from(User)
        .where(
            User.state == UserState.enabled,
            User.id != user.id,
            col(User.roles).contains(Role.integration_admin.value),
        )
    )
    if (await session.exec(others)).one() == 0:
        msg = f"User {user.user_name!r} is the last enabled integration-admin; keep at least one."
        raise ConflictError(msg)


def _end_tokens(user: User) -> None:
    """Every bearer token issued to the user so far stops working (``user_for_token``)."""
    user.token_version += 1


async def set_state(session: AsyncSession, *, user_name: str, state: UserState) -> User:
    user = await get_user_or_raise(session, user_name=user_name)
    await _keep_an_admin(session, user, stays_admin=state == UserState.enabled)
    if state != user.state and state == UserState.disabled:
        _end_tokens(user)  # enabling again must not bring the old tokens back
    user.state = state
    session.add(user)
    await session.flush()
    log.info("user_state_changed", user_name=user.user_name, state=state.value)
    return user


async def disable_user(session: AsyncSession, *, user_name: str) -> User:
    """Disabled users cannot sign in, and their tokens and keys stop working at once."""
    return await set_state(session, user_name=user_name, state=UserState.disabled)


async def enable_user(session: AsyncSession, *, user_name: str) -> User:
    return await set_state(session, user_name=user_name, state=UserState.enabled)


async def set_roles(session: AsyncSession, *, user_name: str, roles: list[Role]) -> User:
    stored_roles = format_roles(roles)
    user = await get_user_or_raise(session, user_name=user_name)
    await _keep_an_admin(session, user, stays_admin=Role.integration_admin in roles)
    if user.role_set - set(roles):
        _end_tokens(user)  # a token must not outlive a role it was issued with
    user.roles = stored_roles
    session.add(user)
    await session.flush()
    log.info("user_roles_changed", user_name=user.user_name, roles=user.roles)
    return user


async def set_password(session: AsyncSession, *, user_name: str, password: str | None) -> User:
    """A new password, or None to make the account key-only (no password sign-in)."""
    user = await get_user_or_raise(session, user_name=user_name)
    user.password_hash = (
        passwords.hash_password(check_password(password)) if password is not None else None
    )
    _end_tokens(user)
    session.add(user)
    await session.flush()
    log.info("user_sign_in_changed", user_name=user.user_name, is_key_only=password is None)
    return user


async def set_profile(
    session: AsyncSession, *, user_name: str, full_name: str | None = None, email: str | None = None
) -> User:
    check_profile(full_name=full_name, email=email)
    user = await get_user_or_raise(session, user_name=user_name)
    if full_name is not None:
        user.full_name = full_name
    if email is not None:
        user.email = email
    session.add(user)
    await session.flush()
    return user


async def update_user(
    session: AsyncSession,
    *,
    user_name: str,
    roles: list[Role] | None = None,
    state: UserState | None = None,
    full_name: str | None = None,
    email: str | None = None,
    password: str | None | Unchanged = UNCHANGED,
) -> User:
    """Apply the given changes together; arguments left as None/UNCHANGED keep their value."""
    user = await set_profile(session, user_name=user_name, full_name=full_name, email=email)
    if roles is not None:
        user = await set_roles(session, user_name=user_name, roles=roles)
    if state is not None:
        user = await set_state(session, user_name=user_name, state=state)
    if password is not UNCHANGED:
        user = await set_password(session, user_name=user_name, password=password)
    return user


async def delete_user(session: AsyncSession, *, user_name: str) -> int:
    """Delete a user with its access keys; returns how many keys went with it.

    Refused for the last enabled admin and for the user the CRM reads item availability
    as (the connection names it): deleting it would cut the CRM off without a word.
    """
    # Here, not at the top: the user commands of the CLI need no integration tables.
    from app.models.integration import ConnectionSetup

    user = await get_user_or_raise(session, user_name=user_name)
    await _keep_an_admin(session, user, stays_admin=False)
    publishing = await session.exec(
        select(ConnectionSetup.id).where(
            func.lower(ConnectionSetup.odata_user_name) == user.user_name.lower(),
            col(ConnectionSetup.item_availability_enabled).is_(True),
        )
    )
    if publishing.first() is not None:
        msg = (
            f"User {user.user_name!r} is the connection's OData user (item availability): "
            "name another one in the connection setup first."
        )
        raise ConflictError(msg)
    owned = col(WebServiceAccessKey.user_id) == user.id
    key_count = (
        await session.exec(select(func.count()).select_from(WebServiceAccessKey).where(owned))
    ).one()
    # One statement for the keys, then the user: the ORM must not track rows that the
    # database's ON DELETE CASCADE removes behind its back.
    await session.exec(delete(WebServiceAccessKey).where(owned))
    await session.delete(user)
    await session.flush()
    log.info("user_deleted", user_name=user.user_name, access_keys=key_count)
    return int(key_count)
