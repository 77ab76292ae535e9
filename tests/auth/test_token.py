"""POST /api/v1/auth/token: passwords and web service access keys -> bearer JWT, and its use."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth import tokens, user_keys
from app.auth.service import BAD_CREDENTIALS
from app.clock import utc_now
from app.models.security import Role, UserState, WebServiceAccessKey
from app.settings import Settings
from tests import factories

TOKEN_URL = "/api/v1/auth/token"


async def test_password_login_issues_a_token_that_works(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    await factories.create_user(session, user_name="alice", roles=(Role.integration_user,))
    await session.commit()

    response = await client.post(
        TOKEN_URL, data={"username": "alice", "password": factories.PASSWORD}
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.token_minutes * 60
    claims = tokens.decode_access_token(settings, body["access_token"])
    assert claims.subject == "alice"
    assert claims.roles == ("integration-user",)
    me = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json() == {"user_name": "alice", "full_name": "", "roles": ["integration-user"]}


async def test_oauth2_clients_may_send_grant_type_and_scope(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await factories.create_user(session, user_name="alice")
    await session.commit()

    response = await client.post(
        TOKEN_URL,
        data={
            "grant_type": "password",
            "username": "alice",
            "password": factories.PASSWORD,
            "scope": "",
        },
    )

    assert response.status_code == 200, response.text


async def test_access_key_login_issues_a_token(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await factories.create_user(
        session, user_name="crm", roles=(Role.product_availability,), password=None
    )
    key = await factories.create_access_key(session, settings, user=user)
    await session.commit()

    headers = await factories.bearer_headers(client, user_name="crm", password=key)

    me = await client.get("/api/v1/auth/me", headers=headers)
    assert me.status_code == 200
    assert me.json()["roles"] == ["product-availability"]


async def test_key_login_stamps_last_used_at(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await factories.create_user(session, user_name="crm", password=None)
    key = await factories.create_access_key(session, settings, user=user)
    await session.commit()

    await factories.bearer_headers(client, user_name="crm", password=key)

    await factories.create_user(session, user_name="admin")
    await session.commit()
    headers = await factories.bearer_headers(client, user_name="admin")
    keys = (await client.get("/api/v1/users/crm/keys", headers=headers)).json()["items"]
    assert keys[0]["last_used_at"] is not None


async def _user_with_disabled_account(session: AsyncSession, settings: Settings) -> str:
    await factories.create_user(session, user_name="alice", state=UserState.disabled)
    return factories.PASSWORD


async def _user_with_revoked_key(session: AsyncSession, settings: Settings) -> str:
    user = await factories.create_user(session, user_name="alice", password=None)
    key = await factories.create_access_key(session, settings, user=user)
    await session.flush()
    await user_keys.revoke_keys(session, user_name="alice")
    return key


async def _user_with_expired_key(session: AsyncSession, settings: Settings) -> str:
    user = await factories.create_user(session, user_name="alice", password=None)
    key = await factories.create_access_key(session, settings, user=user)
    row = (await session.exec(select(WebServiceAccessKey))).one()
    row.expires_at = utc_now() - timedelta(minutes=1)
    session.add(row)
    return key


async def _user_with_other_users_key(session: AsyncSession, settings: Settings) -> str:
    await factories.create_user(session, user_name="alice", password=None)
    bob = await factories.create_user(session, user_name="bob", password=None)
    return await factories.create_access_key(session, settings, user=bob)


async def _user_then_wrong_password(session: AsyncSession, settings: Settings) -> str:
    await factories.create_user(session, user_name="alice")
    return "not the password at all"


async def _no_such_user(session: AsyncSession, settings: Settings) -> str:
    return factories.PASSWORD


async def _key_only_user_with_empty_hash_tries_password(
    session: AsyncSession, settings: Settings
) -> str:
    await factories.create_user(session, user_name="alice", password=None)
    return factories.PASSWORD


@pytest.mark.parametrize(
    "arrange",
    [
        _user_then_wrong_password,
        _no_such_user,
        _user_with_disabled_account,
        _user_with_revoked_key,
        _user_with_expired_key,
        _user_with_other_users_key,
        _key_only_user_with_empty_hash_tries_password,
    ],
)
async def test_bad_credentials_get_one_and_the_same_401(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, arrange: object
) -> None:
    secret = await arrange(session, settings)  # type: ignore[operator]
    await session.commit()

    response = await client.post(TOKEN_URL, data={"username": "alice", "password": secret})

    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized", "detail": BAD_CREDENTIALS}
    assert response.headers["www-authenticate"] == "Bearer"
    assert "access_token" not in response.text


MALFORMED_FORMS: list[tuple[dict[str, str], str]] = [
    ({"password": "x" * 20}, "username"),
    ({"username": "alice"}, "password"),
    ({"username": "a" * 101, "password": "x" * 20}, "username"),
    ({"username": "alice", "password": "x" * 1025}, "password"),
]


async def test_malformed_token_requests_get_422(client: httpx.AsyncClient) -> None:
    failures = []
    for data, field in MALFORMED_FORMS:
        response = await client.post(TOKEN_URL, data=data)
        if response.status_code != 422 or field not in response.json()["detail"]:
            failures.append(f"{sorted(data)}: {response.status_code}")

    assert failures == []


async def test_json_body_instead_of_form_gets_422(client: httpx.AsyncClient) -> None:
    response = await client.post(TOKEN_URL, json={"username": "a", "password": "b"})

    assert response.status_code == 422


async def test_disabled_users_existing_token_stops_working(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await factories.create_user(session, user_name="admin")
    await factories.create_user(session, user_name="alice", roles=(Role.integration_user,))
    await session.commit()
    alice = await factories.bearer_headers(client, user_name="alice")
    admin = await factories.bearer_headers(client, user_name="admin")
    assert (await client.get("/api/v1/auth/me", headers=alice)).status_code == 200

    disabled = await client.patch("/api/v1/users/alice", json={"state": "disabled"}, headers=admin)

    assert disabled.status_code == 200, disabled.text
    response = await client.get("/api/v1/auth/me", headers=alice)
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid or expired token."


async def test_role_taken_away_ends_existing_tokens(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """The token dies with the role (tests/auth/test_token_revocation.py over real HTTP);
    signed in again, the user has the roles it has now."""
    await factories.create_user(session, user_name="root")
    await factories.create_user(session, user_name="admin2")
    await session.commit()
    root = await factories.bearer_headers(client, user_name="root")
    admin2 = await factories.bearer_headers(client, user_name="admin2")
    assert (await client.get("/api/v1/users", headers=admin2)).status_code == 200

    changed = await client.patch(
        "/api/v1/users/admin2", json={"roles": ["integration-user"]}, headers=root
    )

    assert changed.status_code == 200, changed.text
    assert (await client.get("/api/v1/users", headers=admin2)).status_code == 401
    again = await factories.bearer_headers(client, user_name="admin2")
    assert (await client.get("/api/v1/users", headers=again)).status_code == 403


async def test_deleted_users_token_stops_working(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await factories.create_user(session, user_name="alice")
    await session.commit()
    headers = await factories.bearer_headers(client, user_name="alice")

    await session.delete(user)
    await session.commit()

    assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 401
