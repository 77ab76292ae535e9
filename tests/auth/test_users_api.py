"""/api/v1/users: create, list, read and change users (integration-admin only)."""

from __future__ import annotations

import httpx
import pytest
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth import passwords
from app.models.security import Role, User
from tests import factories

USERS = "/api/v1/users"
NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
async def admin(client: httpx.AsyncClient, session: AsyncSession) -> dict[str, str]:
    await factories.create_user(session, user_name="admin")
    await session.commit()
    return await factories.bearer_headers(client, user_name="admin")


async def _stored_user(session: AsyncSession, user_name: str) -> User | None:
    session.expire_all()
    return (await session.exec(select(User).where(User.user_name == user_name))).first()


async def test_create_then_get_and_list(
    client: httpx.AsyncClient, session: AsyncSession, admin: dict[str, str]
) -> None:
    body = {
        "user_name": "svc.crm@contoso",
        "roles": ["product-availability", "integration-user", "integration-user"],
        "password": NEW_PASSWORD,
        "full_name": "CRM Service",
        "email": "crm@contoso.com",
    }

    created = await client.post(USERS, json=body, headers=admin)

    assert created.status_code == 201, created.text
    shown = created.json()
    assert shown["user_name"] == "svc.crm@contoso"
    assert shown["roles"] == ["integration-user", "product-availability"]
    assert shown["state"] == "enabled"
    assert shown["has_password"] is True
    assert "password" not in shown and "password_hash" not in shown
    fetched = await client.get(f"{USERS}/svc.crm@contoso", headers=admin)
    assert fetched.json() == shown
    listed = await client.get(USERS, headers=admin)
    assert listed.json()["count"] == 2 and listed.json()["next"] is None
    assert [u["user_name"] for u in listed.json()["items"]] == ["admin", "svc.crm@contoso"]
    stored = await _stored_user(session, "svc.crm@contoso")
    assert stored is not None
    assert stored.modified_by == "admin"
    assert passwords.verify_password(NEW_PASSWORD, stored.password_hash)
    login = await client.post(
        "/api/v1/auth/token", data={"username": "svc.crm@contoso", "password": NEW_PASSWORD}
    )
    assert login.status_code == 200


async def test_key_only_user_has_no_password(
    client: httpx.AsyncClient, session: AsyncSession, admin: dict[str, str]
) -> None:
    created = await client.post(
        USERS, json={"user_name": "crm", "roles": ["product-availability"]}, headers=admin
    )

    assert created.status_code == 201, created.text
    assert created.json()["has_password"] is False
    stored = await _stored_user(session, "crm")
    assert stored is not None and stored.password_hash is None


INVALID_NEW_USERS: list[tuple[dict[str, object], str]] = [
    ({"user_name": "x", "roles": ["integration-user"], "is_admin": True}, "is_admin"),
    ({"user_name": "x", "roles": []}, "roles"),
    ({"user_name": "x"}, "roles"),
    ({"user_name": "x", "roles": ["root"]}, "roles"),
    ({"user_name": "x", "roles": "integration-user"}, "roles"),
    ({"user_name": "bad name", "roles": ["integration-user"]}, "user_name"),
    ({"user_name": "-x", "roles": ["integration-user"]}, "user_name"),
    ({"user_name": "x" * 101, "roles": ["integration-user"]}, "user_name"),
    ({"user_name": 42, "roles": ["integration-user"]}, "user_name"),
    ({"user_name": "x", "roles": ["integration-user"], "password": "short"}, "password"),
    ({"user_name": "x", "roles": ["integration-user"], "email": "not-an-email"}, "email"),
    ({"user_name": "x", "roles": ["integration-user"], "full_name": "n" * 101}, "full_name"),
]


async def test_invalid_user_is_refused_with_422_and_not_stored(
    client: httpx.AsyncClient, session: AsyncSession, admin: dict[str, str]
) -> None:
    failures = []
    for body, field in INVALID_NEW_USERS:
        response = await client.post(USERS, json=body, headers=admin)
        shown = response.json()
        if response.status_code != 422 or field not in shown["detail"]:
            failures.append(f"{body}: {response.status_code} {shown}")

    assert failures == []
    assert [u.user_name for u in (await session.exec(select(User)))] == ["admin"]


async def test_unknown_field_names_the_field(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.post(
        USERS, json={"user_name": "x", "roles": ["integration-user"], "role": "x"}, headers=admin
    )

    assert response.status_code == 422
    assert "body.role: Extra inputs are not permitted" in response.json()["detail"]


async def test_malformed_json_gets_422(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.post(
        USERS,
        content=b'{"user_name": "x", ',
        headers={**admin, "Content-Type": "application/json"},
    )

    assert response.status_code == 422
    assert response.json()["error"] == "ValidationFailed"


async def test_duplicate_user_name_is_409_ignoring_case(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.post(
        USERS, json={"user_name": "ADMIN", "roles": ["integration-user"]}, headers=admin
    )

    assert response.status_code == 409
    assert response.json() == {"error": "Conflict", "detail": "User 'ADMIN' already exists."}


async def test_unknown_user_is_404(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for response in [
        await client.get(f"{USERS}/ghost", headers=admin),
        await client.patch(f"{USERS}/ghost", json={"full_name": "G"}, headers=admin),
        await client.get(f"{USERS}/ghost/keys", headers=admin),
        await client.post(f"{USERS}/ghost/keys", headers=admin),
        await client.post(f"{USERS}/ghost/keys/rotate", headers=admin),
        await client.post(f"{USERS}/ghost/keys/revoke", headers=admin),
    ]:
        assert response.status_code == 404
        assert response.json()["detail"] == "User 'ghost' does not exist."


async def test_patch_changes_only_what_is_sent(
    client: httpx.AsyncClient, session: AsyncSession, admin: dict[str, str]
) -> None:
    await factories.create_user(
        session, user_name="alice", roles=(Role.integration_user,), email="a@contoso.com"
    )
    await session.commit()

    response = await client.patch(
        f"{USERS}/alice",
        json={"full_name": "Alice Example", "roles": ["product-availability"]},
        headers=admin,
    )

    assert response.status_code == 200, response.text
    shown = response.json()
    assert shown["full_name"] == "Alice Example"
    assert shown["roles"] == ["product-availability"]
    assert shown["email"] == "a@contoso.com"
    assert shown["state"] == "enabled"
    assert shown["has_password"] is True


async def test_patch_password_and_remove_it(
    client: httpx.AsyncClient, session: AsyncSession, admin: dict[str, str]
) -> None:
    await factories.create_user(session, user_name="alice", roles=(Role.integration_user,))
    await session.commit()

    changed = await client.patch(f"{USERS}/alice", json={"password": NEW_PASSWORD}, headers=admin)
    old_login = await client.post(
        "/api/v1/auth/token", data={"username": "alice", "password": factories.PASSWORD}
    )
    new_login = await client.post(
        "/api/v1/auth/token", data={"username": "alice", "password": NEW_PASSWORD}
    )
    removed = await client.patch(f"{USERS}/alice", json={"password": None}, headers=admin)

    assert changed.status_code == 200
    assert (old_login.status_code, new_login.status_code) == (401, 200)
    assert removed.json()["has_password"] is False
    stored = await _stored_user(session, "alice")
    assert stored is not None and stored.password_hash is None


INVALID_CHANGES: list[tuple[dict[str, object], str]] = [
    ({"roles": None}, "roles"),
    ({"state": None}, "state"),
    ({"state": "locked"}, "state"),
    ({"roles": []}, "roles"),
    ({"password": "short"}, "password"),
    ({"user_name": "renamed"}, "user_name"),
    ({"password_hash": "x"}, "password_hash"),
]


async def test_invalid_patch_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, session: AsyncSession, admin: dict[str, str]
) -> None:
    await factories.create_user(session, user_name="alice", roles=(Role.integration_user,))
    await session.commit()
    failures = []
    for body, field in INVALID_CHANGES:
        response = await client.patch(f"{USERS}/alice", json=body, headers=admin)
        if response.status_code != 422 or field not in response.json()["detail"]:
            failures.append(f"{body}: {response.status_code} {response.text}")

    assert failures == []
    stored = await _stored_user(session, "alice")
    assert stored is not None
    assert (stored.roles, stored.state, stored.user_name) == (
        "integration-user",
        "enabled",
        "alice",
    )


async def test_disable_then_enable(
    client: httpx.AsyncClient, session: AsyncSession, admin: dict[str, str]
) -> None:
    await factories.create_user(session, user_name="alice", roles=(Role.integration_user,))
    await session.commit()
    login = {"username": "alice", "password": factories.PASSWORD}

    disabled = await client.patch(f"{USERS}/alice", json={"state": "disabled"}, headers=admin)
    refused = await client.post("/api/v1/auth/token", data=login)
    enabled = await client.patch(f"{USERS}/alice", json={"state": "enabled"}, headers=admin)
    allowed = await client.post("/api/v1/auth/token", data=login)

    assert disabled.json()["state"] == "disabled"
    assert refused.status_code == 401
    assert enabled.json()["state"] == "enabled"
    assert allowed.status_code == 200


@pytest.mark.parametrize("body", [{"state": "disabled"}, {"roles": ["integration-user"]}])
async def test_last_enabled_admin_cannot_be_removed(
    client: httpx.AsyncClient, session: AsyncSession, admin: dict[str, str], body: dict[str, object]
) -> None:
    response = await client.patch(f"{USERS}/admin", json=body, headers=admin)

    assert response.status_code == 409
    assert "last enabled integration-admin" in response.json()["detail"]
    stored = await _stored_user(session, "admin")
    assert stored is not None
    assert stored.state == "enabled" and stored.roles == "integration-admin"


async def test_an_admin_may_step_down_when_another_remains(
    client: httpx.AsyncClient, session: AsyncSession, admin: dict[str, str]
) -> None:
    await factories.create_user(session, user_name="admin2")
    await session.commit()

    response = await client.patch(f"{USERS}/admin", json={"state": "disabled"}, headers=admin)

    assert response.status_code == 200
    assert (await client.get("/api/v1/auth/me", headers=admin)).status_code == 401


async def test_me_shows_name_and_roles_only(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await factories.create_user(
        session,
        user_name="pa",
        roles=(Role.product_availability,),
        full_name="Availability reader",
    )
    await session.commit()
    headers = await factories.bearer_headers(client, user_name="pa")

    response = await client.get("/api/v1/auth/me", headers=headers)

    assert response.json() == {
        "user_name": "pa",
        "full_name": "Availability reader",
        "roles": ["product-availability"],
    }
