"""Failed sign-ins are throttled per user name and per client address, then forgiven."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import SessionMaker
from app.main import create_app
from app.settings import Settings
from tests import factories

TOKEN_URL = "/api/v1/auth/token"
MAX_FAILURES = 3
WINDOW_SECONDS = 60
SHORT_WINDOW_SECONDS = 2  # only where a test waits for the window to pass

ClientFrom = Callable[[str], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def window_seconds() -> int:
    """Overridden by ``parametrize`` in the one test that waits for the window to pass."""
    return WINDOW_SECONDS


@pytest.fixture
async def throttled_app(
    settings: Settings, sessionmaker: SessionMaker, window_seconds: int
) -> AsyncIterator[FastAPI]:
    strict = settings.model_copy(
        update={"login_max_failures": MAX_FAILURES, "login_window_seconds": window_seconds}
    )
    application = create_app(strict, should_migrate=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def client_from(throttled_app: FastAPI) -> ClientFrom:
    """A client whose requests come from the given address."""

    @asynccontextmanager
    async def open_client(address: str) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=throttled_app, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c

    return open_client


async def _login(client: httpx.AsyncClient, user_name: str, password: str) -> httpx.Response:
    return await client.post(TOKEN_URL, data={"username": user_name, "password": password})


async def test_failures_for_one_user_name_are_throttled_from_any_address(
    session: AsyncSession, client_from: ClientFrom
) -> None:
    await factories.create_user(session, user_name="alice")
    await session.commit()
    for attempt in range(MAX_FAILURES):
        async with client_from(f"10.0.0.{attempt + 1}") as attacker:
            assert (await _login(attacker, "alice", "wrong password!")).status_code == 401

    async with client_from("10.0.1.1") as real_user:
        refused = await _login(real_user, "alice", factories.PASSWORD)
        other_user = await _login(real_user, "bob", "whatever password")

    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= WINDOW_SECONDS + 1
    assert refused.json()["detail"] == "Too many failed sign-in attempts. Try again later."
    assert "access_token" not in refused.text
    assert other_user.status_code == 401  # another user name from a clean address is not blocked


async def test_failures_from_one_address_are_throttled_for_any_user_name(
    session: AsyncSession, client_from: ClientFrom
) -> None:
    await factories.create_user(session, user_name="alice")
    await session.commit()
    async with client_from("192.0.2.7") as attacker:
        for attempt in range(MAX_FAILURES):
            response = await _login(attacker, f"guess{attempt}", "wrong password!")
            assert response.status_code == 401
        refused = await _login(attacker, "alice", factories.PASSWORD)
    async with client_from("192.0.2.8") as real_user:
        allowed = await _login(real_user, "alice", factories.PASSWORD)

    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert allowed.status_code == 200, allowed.text


@pytest.mark.parametrize("window_seconds", [SHORT_WINDOW_SECONDS])
async def test_real_user_signs_in_after_the_window(
    session: AsyncSession, client_from: ClientFrom
) -> None:
    await factories.create_user(session, user_name="alice")
    await session.commit()
    async with client_from("198.51.100.1") as attacker:
        for _ in range(MAX_FAILURES):
            await _login(attacker, "alice", "wrong password!")
        refused = await _login(attacker, "alice", factories.PASSWORD)
    assert refused.status_code == 429

    await asyncio.sleep(int(refused.headers["retry-after"]))

    async with client_from("198.51.100.1") as real_user:
        allowed = await _login(real_user, "alice", factories.PASSWORD)
    assert allowed.status_code == 200, allowed.text


async def test_success_clears_the_user_names_failures(
    session: AsyncSession, client_from: ClientFrom
) -> None:
    await factories.create_user(session, user_name="alice")
    await session.commit()
    for attempt in range(MAX_FAILURES - 1):
        async with client_from(f"10.1.0.{attempt}") as typo:
            assert (await _login(typo, "alice", "wrong password!")).status_code == 401
    async with client_from("10.1.1.1") as real_user:
        assert (await _login(real_user, "alice", factories.PASSWORD)).status_code == 200

    for attempt in range(MAX_FAILURES - 1):
        async with client_from(f"10.1.2.{attempt}") as typo:
            assert (await _login(typo, "alice", "wrong password!")).status_code == 401
    async with client_from("10.1.3.1") as real_user:
        response = await _login(real_user, "alice", factories.PASSWORD)

    assert response.status_code == 200, response.text


async def test_user_name_throttling_ignores_case(
    session: AsyncSession, client_from: ClientFrom
) -> None:
    for attempt in range(MAX_FAILURES):
        async with client_from(f"10.2.0.{attempt}") as attacker:
            await _login(attacker, "Alice" if attempt % 2 else "ALICE", "wrong password!")

    async with client_from("10.2.1.1") as other:
        response = await _login(other, "alice", "wrong password!")

    assert response.status_code == 429
