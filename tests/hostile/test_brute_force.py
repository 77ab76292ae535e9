"""Guessing keys is throttled on the OData service's Basic auth, as on the token endpoint.

tests/auth/test_throttling.py covers passwords at the token endpoint. Here: the OData
service's Basic auth (user name + web service access key) shares the same counters and
answers 429 with ``Retry-After`` in the OData error format to a guessing party, while a
key whose digest matches always passes: keys are 256-bit random, so nobody else's
failures may keep the CRM from its item availability (tests/hostile/test_lockout.py
does this at scale over real HTTP).
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


async def test_guessing_one_users_key_from_many_addresses_never_blocks_the_right_key(
    session: AsyncSession, settings: Settings, client_from: ClientFrom
) -> None:
    real = await odata_factories.odata_reader(session, settings, user_name="crm")
    for attempt in range(MAX_FAILURES * 3):
        async with client_from(f"10.9.0.{attempt + 1}") as attacker:
            guess = _basic("crm", secrets.token_urlsafe(32))
            response = await attacker.get(ODATA, headers=guess)
            assert response.status_code == 401, response.text
            assert response.headers["www-authenticate"].startswith("Basic")

    async with client_from("10.9.1.1") as crm:
        served = await crm.get(ODATA, headers=real)
        # A new address guessing is a new party: its first guesses are plain 401s.
        guess = await crm.get(ODATA, headers=_basic("crm", secrets.token_urlsafe(32)))
    assert served.status_code == 200, served.text
    assert guess.status_code == 401


async def test_guessing_from_one_address_is_throttled_but_a_right_key_passes(
    session: AsyncSession, settings: Settings, client_from: ClientFrom
) -> None:
    real = await odata_factories.odata_reader(session, settings, user_name="crm")
    async with client_from("192.0.2.50") as shared:
        for attempt in range(MAX_FAILURES):
            guess = _basic(f"user{attempt}", secrets.token_urlsafe(32))
            assert (await shared.get(ODATA, headers=guess)).status_code == 401
        _assert_throttled(await shared.get(ODATA, headers=_basic("crm", "sbk_" + "x" * 56)))
        _assert_throttled(
            await shared.get(ODATA, headers=_basic("user9", secrets.token_urlsafe(32)))
        )
        # A key whose digest matches cannot have been guessed: it passes even here.
        odata_auth.clear_cache()
        assert (await shared.get(ODATA, headers=real)).status_code == 200
        assert (await shared.get(f"{ODATA}/$count", headers=real)).status_code == 200
    async with client_from("192.0.2.51") as elsewhere:
        allowed = await elsewhere.get(ODATA, headers=real)
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


async def test_guessing_access_keys_at_the_token_endpoint_never_blocks_the_right_key(
    session: AsyncSession, settings: Settings, client_from: ClientFrom
) -> None:
    """tests/auth covers guessed passwords; a key-only user's keys are guarded the same way:
    a guessing address is throttled, and the right key is issued a token all the same."""
    real = (await odata_factories.odata_reader(session, settings, user_name="svc"))["Authorization"]
    right_key = base64.b64decode(real.removeprefix("Basic ")).decode().partition(":")[2]
    async with client_from("203.0.113.1") as attacker:
        for _ in range(MAX_FAILURES):
            guess = {"username": "svc", "password": f"sbk_{secrets.token_urlsafe(40)}"}
            assert (await attacker.post(TOKEN_URL, data=guess)).status_code == 401
        refused = await attacker.post(TOKEN_URL, data=guess)
        issued = await attacker.post(TOKEN_URL, data={"username": "svc", "password": right_key})
    async with client_from("203.0.113.200") as other:
        odata_auth.clear_cache()
        odata = await other.get(ODATA, headers=_basic("svc", right_key))
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert "access_token" not in refused.text
    assert issued.status_code == 200, issued.text
    assert odata.status_code == 200, odata.text
