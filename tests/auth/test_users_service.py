"""app.auth.users and app.auth.user_keys as the CLI calls them: flush only, classified errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth import access_keys, passwords, user_keys, users
from app.clock import utc_now
from app.db import SessionMaker
from app.errors import ConflictError, InvalidInputError, NotFoundError
from app.models.security import Role, User, UserState, WebServiceAccessKey
from app.settings import Settings

PASSWORD = "twelve chars!"


async def test_create_user_stores_roles_and_argon2_hash(session: AsyncSession) -> None:
    user = await users.create_user(
        session,
        user_name="Alice",
        roles=[Role.product_availability, Role.integration_admin],
        password=PASSWORD,
        full_name="Alice A.",
        email="alice@contoso.com",
    )

    assert user.id is not None
    assert user.roles == "integration-admin,product-availability"
    assert user.password_hash is not None and user.password_hash.startswith("$argon2id$")
    assert passwords.verify_password(PASSWORD, user.password_hash)
    assert await users.count_users(session) == 1
    assert (await users.get_user_or_raise(session, user_name="alice")).id == user.id


async def test_create_user_only_flushes(session: AsyncSession, sessionmaker: SessionMaker) -> None:
    await users.create_user(session, user_name="alice", roles=[Role.integration_user])
    await session.rollback()

    async with sessionmaker() as other:
        assert await users.count_users(other) == 0


BAD_NEW_USERS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"user_name": "", "roles": [Role.integration_user]}, InvalidInputError, "user name"),
    ({"user_name": "a b", "roles": [Role.integration_user]}, InvalidInputError, "user name"),
    ({"user_name": "a/b", "roles": [Role.integration_user]}, InvalidInputError, "user name"),
    ({"user_name": "a" * 101, "roles": [Role.integration_user]}, InvalidInputError, "1-100"),
    ({"user_name": "alice", "roles": []}, InvalidInputError, "at least one role"),
    (
        {"user_name": "alice", "roles": [Role.integration_user], "password": "x" * 11},
        InvalidInputError,
        "at least 12 characters",
    ),
    (
        {"user_name": "alice", "roles": [Role.integration_user], "full_name": "x" * 101},
        InvalidInputError,
        "full name is too long",
    ),
]


async def test_create_user_refuses_bad_input(session: AsyncSession) -> None:
    for kwargs, error, message in BAD_NEW_USERS:
        with pytest.raises(error, match=message):
            await users.create_user(session, **kwargs)
    assert await users.count_users(session) == 0


async def test_duplicate_user_name_is_a_conflict_ignoring_case(session: AsyncSession) -> None:
    await users.create_user(session, user_name="alice", roles=[Role.integration_user])

    with pytest.raises(ConflictError, match="already exists"):
        await users.create_user(session, user_name="ALICE", roles=[Role.integration_user])


async def test_list_disable_enable_set_password(session: AsyncSession) -> None:
    await users.create_user(session, user_name="root", roles=[Role.integration_admin])
    await users.create_user(session, user_name="bob", roles=[Role.integration_user])

    disabled = await users.disable_user(session, user_name="bob")
    assert disabled.state == UserState.disabled
    enabled = await users.enable_user(session, user_name="bob")
    assert enabled.state == UserState.enabled
    changed = await users.set_password(session, user_name="bob", password=PASSWORD)
    assert passwords.verify_password(PASSWORD, changed.password_hash)
    assert [u.user_name for u in await users.list_users(session)] == ["bob", "root"]
    with pytest.raises(InvalidInputError):
        await users.set_password(session, user_name="bob", password="short")


async def test_unknown_user_is_not_found(session: AsyncSession, settings: Settings) -> None:
    for call in (
        users.get_user_or_raise(session, user_name="ghost"),
        users.disable_user(session, user_name="ghost"),
        users.enable_user(session, user_name="ghost"),
        users.set_password(session, user_name="ghost", password=PASSWORD),
        user_keys.create_key(session, settings, user_name="ghost"),
        user_keys.rotate_key(session, settings, user_name="ghost"),
        user_keys.revoke_keys(session, user_name="ghost"),
        user_keys.list_keys(session, user_name="ghost"),
    ):
        with pytest.raises(NotFoundError, match="'ghost' does not exist"):
            await call


async def test_the_last_enabled_admin_stays(session: AsyncSession) -> None:
    await users.create_user(session, user_name="root", roles=[Role.integration_admin])

    with pytest.raises(ConflictError, match="last enabled integration-admin"):
        await users.disable_user(session, user_name="root")
    with pytest.raises(ConflictError, match="last enabled integration-admin"):
        await users.set_roles(session, user_name="root", roles=[Role.integration_user])


async def test_create_key_returns_plaintext_once_and_stores_digest(
    session: AsyncSession, settings: Settings
) -> None:
    await users.create_user(session, user_name="crm", roles=[Role.product_availability])
    expires_at = utc_now() + timedelta(days=1)

    row, key = await user_keys.create_key(session, settings, user_name="crm", expires_at=expires_at)

    assert access_keys.parse_key_id(key) == row.key_id
    pepper = settings.access_key_pepper.get_secret_value()
    assert row.key_digest == access_keys.digest_key(pepper, key)
    assert key not in row.model_dump_json()
    assert row.expires_at == expires_at
    assert [k.key_id for k in await user_keys.list_keys(session, user_name="crm")] == [row.key_id]


@pytest.mark.parametrize(
    ("expires_at", "message"),
    [
        (datetime(2001, 1, 1, tzinfo=UTC), "must be in the future"),
        (datetime(2999, 1, 1), "needs a time zone"),  # noqa: DTZ001 - the case under test
    ],
)
async def test_bad_expiry_is_refused(
    session: AsyncSession, settings: Settings, expires_at: datetime, message: str
) -> None:
    await users.create_user(session, user_name="crm", roles=[Role.product_availability])

    with pytest.raises(InvalidInputError, match=message):
        await user_keys.create_key(session, settings, user_name="crm", expires_at=expires_at)
    with pytest.raises(InvalidInputError, match=message):
        await user_keys.rotate_key(session, settings, user_name="crm", expires_at=expires_at)


async def test_rotate_is_one_transaction(
    session: AsyncSession, sessionmaker: SessionMaker, settings: Settings
) -> None:
    await users.create_user(session, user_name="crm", roles=[Role.product_availability])
    old, _key = await user_keys.create_key(session, settings, user_name="crm")
    old_key_id = old.key_id
    await session.commit()

    new, _new_key = await user_keys.rotate_key(session, settings, user_name="crm")
    assert (new.key_id != old_key_id, old.revoked_at is not None) == (True, True)
    await session.rollback()  # the caller's transaction fails: nothing of the rotation stays

    async with sessionmaker() as other:
        rows = list(await other.exec(select(WebServiceAccessKey)))
    assert [(r.key_id, r.revoked_at) for r in rows] == [(old_key_id, None)]


async def test_revoke_counts_only_active_keys(session: AsyncSession, settings: Settings) -> None:
    await users.create_user(session, user_name="crm", roles=[Role.product_availability])
    for _ in range(3):
        await user_keys.create_key(session, settings, user_name="crm")

    assert await user_keys.revoke_keys(session, user_name="crm") == 3
    assert await user_keys.revoke_keys(session, user_name="crm") == 0
    keys = await user_keys.list_keys(session, user_name="crm")
    assert all(k.revoked_at is not None for k in keys)
    user = (await session.exec(select(User))).one()
    assert user.state == UserState.enabled
