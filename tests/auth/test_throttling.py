"""Failed password sign-ins: throttled per (user, address) and per address, slowed per user,
and never refusing a right password because of someone else's failures.

The in-process client sets each request's address; tests/hostile/test_lockout.py runs the
same model over real HTTP (uvicorn, X-Forwarded-For from a trusted proxy) at scale.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable, Iterator, MutableMapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
import structlog
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
        update={
            "login_max_failures": MAX_FAILURES,
            "login_window_seconds": window_seconds,
            "login_backoff_max_seconds": 1,
        }
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


@pytest.fixture
def logged() -> Iterator[list[MutableMapping[str, Any]]]:
    with structlog.testing.capture_logs() as events:
        yield events


def _events(logged: list[MutableMapping[str, Any]], name: str) -> list[MutableMapping[str, Any]]:
    return [event for event in logged if event.get("event") == name]


def _assert_throttled(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["retry-after"]) <= WINDOW_SECONDS + 1
    assert response.json()["detail"] == "Too many failed sign-in attempts. Try again later."
    assert "access_token" not in response.text


async def test_failures_from_other_addresses_only_slow_the_real_user_down(
    session: AsyncSession, client_from: ClientFrom, logged: list[MutableMapping[str, Any]]
) -> None:
    await factories.create_user(session, user_name="alice")
    await session.commit()
    for attempt in range(MAX_FAILURES * 3):
        async with client_from(f"10.0.0.{attempt + 1}") as attacker:
            assert (await _login(attacker, "alice", "wrong password!")).status_code == 401

    async with client_from("10.0.1.1") as real_user:
        allowed = await _login(real_user, "alice", factories.PASSWORD)

    assert allowed.status_code == 200, allowed.text
    slowed = _events(logged, "sign_in_slowed")
    assert slowed, "past the limit, password checks for the name wait"
    assert {event["user_name"] for event in slowed} == {"alice"}
    assert all(0 < event["delay_seconds"] <= 1 for event in slowed)


async def test_failures_for_a_user_at_one_address_refuse_that_pair_only(
    session: AsyncSession, client_from: ClientFrom
) -> None:
    await factories.create_user(session, user_name="alice")
    await factories.create_user(session, user_name="carol")
    await session.commit()
    async with client_from("192.0.2.7") as office:
        assert (await _login(office, "carol", factories.PASSWORD)).status_code == 200
        for _ in range(MAX_FAILURES):
            assert (await _login(office, "alice", "wrong password!")).status_code == 401
        _assert_throttled(await _login(office, "alice", factories.PASSWORD))
        # carol signed in from here before: the address's failures do not stand in her way
        assert (await _login(office, "carol", factories.PASSWORD)).status_code == 200
    async with client_from("192.0.2.8") as elsewhere:
        assert (await _login(elsewhere, "alice", factories.PASSWORD)).status_code == 200


async def test_a_throttled_address_answers_known_and_unknown_names_alike(
    session: AsyncSession, client_from: ClientFrom
) -> None:
    """Spraying names from one address: once the address is throttled, a name that never
    signed in from there gets 429 whether or not such a user exists, so the answers do
    not tell the sprayer which names are real."""
    await factories.create_user(session, user_name="alice")
    await session.commit()
    async with client_from("198.51.100.3") as sprayer:
        for _ in range(MAX_FAILURES):
            name = f"guess-{secrets.token_hex(4)}"
            assert (await _login(sprayer, name, "Winter2026!!x")).status_code == 401
        known = await _login(sprayer, "alice", "Winter2026!!x")
        unknown = await _login(sprayer, "mallory", "Winter2026!!x")
    _assert_throttled(known)
    _assert_throttled(unknown)
    assert known.json() == unknown.json()


@pytest.mark.parametrize("window_seconds", [SHORT_WINDOW_SECONDS])
async def test_real_user_signs_in_after_the_window(
    session: AsyncSession, client_from: ClientFrom
) -> None:
    await factories.create_user(session, user_name="alice")
    await session.commit()
    async with client_from("198.51.100.1") as typo:
        for _ in range(MAX_FAILURES):
            await _login(typo, "alice", "wrong password!")
        refused = await _login(typo, "alice", factories.PASSWORD)
    assert refused.status_code == 429

    await asyncio.sleep(int(refused.headers["retry-after"]))

    async with client_from("198.51.100.1") as real_user:
        allowed = await _login(real_user, "alice", factories.PASSWORD)
    assert allowed.status_code == 200, allowed.text


async def test_success_clears_the_pairs_failures(
    session: AsyncSession, client_from: ClientFrom
) -> None:
    await factories.create_user(session, user_name="alice")
    await session.commit()
    async with client_from("10.1.0.1") as laptop:
        for _ in range(MAX_FAILURES - 1):
            assert (await _login(laptop, "alice", "wrong password!")).status_code == 401
        assert (await _login(laptop, "alice", factories.PASSWORD)).status_code == 200
        for _ in range(MAX_FAILURES - 1):
            assert (await _login(laptop, "alice", "wrong password!")).status_code == 401
        response = await _login(laptop, "alice", factories.PASSWORD)

    assert response.status_code == 200, response.text


async def test_user_name_throttling_ignores_case(
    session: AsyncSession, client_from: ClientFrom
) -> None:
    async with client_from("10.2.0.1") as attacker:
        for attempt in range(MAX_FAILURES):
            await _login(attacker, "Alice" if attempt % 2 else "ALICE", "wrong password!")
        response = await _login(attacker, "alice", "wrong password!")

    assert response.status_code == 429


async def test_failures_and_refusals_are_security_events(
    session: AsyncSession, client_from: ClientFrom, logged: list[MutableMapping[str, Any]]
) -> None:
    await factories.create_user(session, user_name="alice")
    await session.commit()
    async with client_from("203.0.113.77") as attacker:
        for _ in range(MAX_FAILURES):
            await _login(attacker, "alice", "wrong password!")
        await _login(attacker, "nobody-here", "wrong password!")
        await _login(attacker, "alice", "wrong password!")

    failed = _events(logged, "sign_in_failed")
    refused = _events(logged, "sign_in_refused")
    assert [e["reason"] for e in failed] == ["wrong_password"] * MAX_FAILURES
    assert {e["throttled_by"] for e in refused} == {"address", "user_at_address"}
    for event in failed + refused:
        assert event["category"] == "security"
        assert event["client_ip"] == "203.0.113.77"
        assert event["user_name"] in ("alice", "nobody-here")
        assert "wrong password!" not in repr(event)
