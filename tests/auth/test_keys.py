"""Web service access keys: shown once, stored as a peppered digest, expiry, rotate, revoke."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth import access_keys
from app.clock import utc_now
from app.models.security import Role, WebServiceAccessKey
from app.settings import Settings
from tests import factories

USERS = "/api/v1/users"
TOKEN_URL = "/api/v1/auth/token"
KEY_FIELDS = {"key_id", "created_at", "expires_at", "last_used_at", "revoked_at", "is_active"}


@pytest.fixture
async def admin(client: httpx.AsyncClient, session: AsyncSession) -> dict[str, str]:
    await factories.create_user(session, user_name="admin")
    await factories.create_user(
        session, user_name="crm", roles=(Role.product_availability,), password=None
    )
    await session.commit()
    return await factories.bearer_headers(client, user_name="admin")


async def _rows(session: AsyncSession) -> list[WebServiceAccessKey]:
    session.expire_all()
    return list(
        await session.exec(select(WebServiceAccessKey).order_by(col(WebServiceAccessKey.id)))
    )


async def _login(client: httpx.AsyncClient, key: str) -> int:
    response = await client.post(TOKEN_URL, data={"username": "crm", "password": key})
    return response.status_code


async def test_new_key_is_shown_once_and_only_its_digest_is_stored(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, admin: dict[str, str]
) -> None:
    issued = await client.post(f"{USERS}/crm/keys", headers=admin)

    assert issued.status_code == 201, issued.text
    body = issued.json()
    key = body["key"]
    assert set(body) == KEY_FIELDS | {"key", "user_name"}
    assert key.startswith(f"sbk_{body['key_id']}_")
    assert len(key.split("_", 2)[2]) == 43  # 32 random bytes, base64url
    (row,) = await _rows(session)
    assert row.key_id == body["key_id"]
    assert row.key_digest == access_keys.digest_key(
        settings.access_key_pepper.get_secret_value(), key
    )
    stored_values = [str(value) for value in row.model_dump().values()]
    assert not any(key in value or value == key.split("_", 2)[2] for value in stored_values)
    listed = await client.get(f"{USERS}/crm/keys", headers=admin)
    assert [set(k) for k in listed.json()["items"]] == [KEY_FIELDS]
    assert key not in listed.text and row.key_digest not in listed.text
    assert await _login(client, key) == 200


async def test_keys_differ_and_both_work(
    client: httpx.AsyncClient, session: AsyncSession, admin: dict[str, str]
) -> None:
    first = (await client.post(f"{USERS}/crm/keys", headers=admin)).json()["key"]
    second = (await client.post(f"{USERS}/crm/keys", headers=admin)).json()["key"]

    assert first != second
    assert [await _login(client, first), await _login(client, second)] == [200, 200]
    assert len(await _rows(session)) == 2


async def test_rotate_revokes_old_keys_and_issues_one(
    client: httpx.AsyncClient, session: AsyncSession, admin: dict[str, str]
) -> None:
    old_keys = [(await client.post(f"{USERS}/crm/keys", headers=admin)).json()["key"] for _ in "ab"]

    rotated = await client.post(f"{USERS}/crm/keys/rotate", headers=admin)

    assert rotated.status_code == 200, rotated.text
    new_key = rotated.json()["key"]
    assert [await _login(client, key) for key in old_keys] == [401, 401]
    assert await _login(client, new_key) == 200
    rows = await _rows(session)
    assert [row.revoked_at is not None for row in rows] == [True, True, False]
    listed = (await client.get(f"{USERS}/crm/keys", headers=admin)).json()["items"]
    assert [k["is_active"] for k in listed] == [False, False, True]


async def test_revoke_stops_every_key(
    client: httpx.AsyncClient, session: AsyncSession, admin: dict[str, str]
) -> None:
    key = (await client.post(f"{USERS}/crm/keys", headers=admin)).json()["key"]
    assert await _login(client, key) == 200

    revoked = await client.post(f"{USERS}/crm/keys/revoke", headers=admin)
    again = await client.post(f"{USERS}/crm/keys/revoke", headers=admin)

    unaffected = {"action": "unaffected", "message": "The CRM does not use this user's keys."}
    assert revoked.json() == {"user_name": "crm", "revoked": 1, "crm": unaffected}
    assert again.json() == {"user_name": "crm", "revoked": 0, "crm": unaffected}
    assert await _login(client, key) == 401
    (row,) = await _rows(session)
    assert row.revoked_at is not None


async def test_key_with_expiry_works_until_it_expires(
    client: httpx.AsyncClient, session: AsyncSession, admin: dict[str, str]
) -> None:
    expires_at = (utc_now() + timedelta(days=30)).replace(microsecond=0)

    issued = await client.post(
        f"{USERS}/crm/keys", json={"expires_at": expires_at.isoformat()}, headers=admin
    )

    assert issued.status_code == 201, issued.text
    key = issued.json()["key"]
    assert await _login(client, key) == 200
    (row,) = await _rows(session)
    assert row.expires_at == expires_at
    row.expires_at = utc_now() - timedelta(seconds=1)  # the expiry date arrives
    session.add(row)
    await session.commit()
    assert await _login(client, key) == 401
    listed = (await client.get(f"{USERS}/crm/keys", headers=admin)).json()["items"]
    assert listed[0]["is_active"] is False


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"expires_at": "2001-01-01T00:00:00Z"}, "must be in the future"),
        ({"expires_at": "2999-01-01T00:00:00"}, "timezone"),
        ({"expires_at": "next tuesday"}, "expires_at"),
        ({"expiry": "2999-01-01T00:00:00Z"}, "Extra inputs are not permitted"),
    ],
)
async def test_bad_key_requests_are_refused_and_issue_nothing(
    client: httpx.AsyncClient,
    session: AsyncSession,
    admin: dict[str, str],
    body: dict[str, str],
    message: str,
) -> None:
    for path in ("keys", "keys/rotate"):
        response = await client.post(f"{USERS}/crm/{path}", json=body, headers=admin)

        assert response.status_code in (400, 422)
        assert message in response.json()["detail"]
        assert "key" not in {k for k in response.json() if k != "detail"}
    assert await _rows(session) == []


async def test_malformed_key_never_matches(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, admin: dict[str, str]
) -> None:
    key = (await client.post(f"{USERS}/crm/keys", headers=admin)).json()["key"]
    key_id = key.split("_")[1]

    attempts = [
        key[:-1] + ("A" if key[-1] != "A" else "B"),  # right id, wrong secret
        f"sbk_{key_id}_{'A' * 43}",
        key.upper(),
        key + "x",
        key[4:],
    ]

    assert [await _login(client, attempt) for attempt in attempts] == [401] * len(attempts)
