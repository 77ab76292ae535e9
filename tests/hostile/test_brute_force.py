"""Guessing credentials is throttled on the OData service's Basic auth, as on the token endpoint.

tests/auth/test_throttling.py covers the token endpoint (per user name, per address, the
window, case). Here: the OData service's Basic auth (user name + web service access key)
shares the same counters, answers 429 with ``Retry-After`` in the OData error format, and a
guessing client never learns whether a key was right while it is throttled.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import SessionMaker
from app.main import create_app
from app.odata import auth as odata_auth
from app.settings import Settings
from tests import factories
from tests.odata import factories as odata_factories

ODATA = "/odata/v4/ItemAvailability"
TOKEN_URL = "/api/v1/auth/token"
MAX_FAILURES = 4
WINDOW_SECONDS = 120

ClientFrom = Callable[[str], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
async def strict_app(settings: Settings, sessionmaker: SessionMaker) -> AsyncIterator[FastAPI]:
    odata_auth.clear_cache()  # a credential cached by an earlier test must not count
    strict = settings.model_copy(
        update={"login_max_failures": MAX_FAILURES, "login_window_seconds": WINDOW_SECONDS}
    )
    application = create_app(strict, should_migrate=False)
    async with application.router.lifespan_context(application):
        yield application
    odata_auth.clear_cache()


@pytest.fixture
def client_from(strict_app: FastAPI) -> ClientFrom:
    @asynccontextmanager
    async def open_client(address: str) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=strict_app, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c

    return open_client


def _basic(user_name: str, key: str) -> dict[str, str]:
    token = base64.b64encode(f"{user_name}:{key}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _assert_throttled(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["retry-after"]) <= WINDOW_SECONDS + 1
    error = response.json()["error"]
    assert error["message"] == "Too many failed sign-in attempts. Try again later."
    assert error["code"]
    assert response.headers["odata-version"] == "4.0"
    assert "value" not in response.json()


async def test_guessing_one_users_key_is_throttled_from_any_address(
    session: AsyncSession, settings: Settings, client_from: ClientFrom
) -> None:
    real = await odata_factories.odata_reader(session, settings, user_name="crm")
    for attempt in range(MAX_FAILURES):
        async with client_from(f"10.9.0.{attempt + 1}") as attacker:
            guess = _basic("crm", secrets.token_urlsafe(32))
            response = await attacker.get(ODATA, headers=guess)
            assert response.status_code == 401, response.text
            assert response.headers["www-authenticate"].startswith("Basic")

    async with client_from("10.9.1.1") as other:
        refused_guess = await other.get(ODATA, headers=_basic("crm", secrets.token_urlsafe(32)))
        refused_right_key = await other.get(ODATA, headers=real)
        # The token endpoint shares the counter: the user name is throttled there too.
        token = await other.post(TOKEN_URL, data={"username": "crm", "password": "guess"})
    _assert_throttled(refused_guess)
    _assert_throttled(refused_right_key)  # a right key during the block reveals nothing
    assert token.status_code == 429
    assert int(token.headers["retry-after"]) >= 1


async def test_guessing_from_one_address_is_throttled_for_every_user_name(
    session: AsyncSession, settings: Settings, client_from: ClientFrom
) -> None:
    real = await odata_factories.odata_reader(session, settings, user_name="crm")
    async with client_from("192.0.2.50") as attacker:
        for attempt in range(MAX_FAILURES):
            guess = _basic(f"user{attempt}", secrets.token_urlsafe(32))
            assert (await attacker.get(ODATA, headers=guess)).status_code == 401
        _assert_throttled(await attacker.get(ODATA, headers=real))
        _assert_throttled(await attacker.get(f"{ODATA}/$count", headers=real))
    async with client_from("192.0.2.51") as real_client:  # the real client elsewhere is served
        allowed = await real_client.get(ODATA, headers=real)
    assert allowed.status_code == 200, allowed.text


async def test_passwords_on_basic_auth_count_as_failures(
    session: AsyncSession, settings: Settings, client_from: ClientFrom
) -> None:
    """A user with a password but Basic auth: passwords are not accepted by the OData service,
    so even the right password is a failed attempt, and counts towards the block."""
    await factories.create_user(session, user_name="human")
    await session.commit()
    async with client_from("198.51.100.9") as attacker:
        for _ in range(MAX_FAILURES):
            response = await attacker.get(ODATA, headers=_basic("human", factories.PASSWORD))
            assert response.status_code == 401, response.text
        _assert_throttled(await attacker.get(ODATA, headers=_basic("human", factories.PASSWORD)))


async def test_guessing_access_keys_at_the_token_endpoint_is_throttled(
    session: AsyncSession, settings: Settings, client_from: ClientFrom
) -> None:
    """tests/auth covers guessed passwords; a key-only user's keys are guarded the same way,
    and a throttled sign-in never issues a token, even for the right key."""
    real = (await odata_factories.odata_reader(session, settings, user_name="svc"))["Authorization"]
    right_key = base64.b64decode(real.removeprefix("Basic ")).decode().partition(":")[2]
    for attempt in range(MAX_FAILURES):
        async with client_from(f"203.0.113.{attempt + 1}") as attacker:
            guess = {"username": "svc", "password": f"sbk_{secrets.token_urlsafe(40)}"}
            assert (await attacker.post(TOKEN_URL, data=guess)).status_code == 401
    async with client_from("203.0.113.200") as other:
        refused = await other.post(TOKEN_URL, data={"username": "svc", "password": right_key})
        odata = await other.get(ODATA, headers=_basic("svc", right_key))
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert "access_token" not in refused.text
    _assert_throttled(odata)
