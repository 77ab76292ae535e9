"""Every failed sign-in costs the same work, and throttled or malformed ones cost no argon2.

Timing is not asserted here (bench/sign_in_timing.py measures it: medians over 200 tries
per case). What makes the timing equal is asserted instead, over real HTTP: for each kind
of failure, the same SQL statements in the same order, the same number of argon2
verifications (the service's ``salesbridge_password_checks_total`` on ``/metrics``) and
the same answer, whether or not the user exists.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import utc_now
from app.db import SessionMaker
from app.main import create_app
from app.models.security import Role, UserState, WebServiceAccessKey
from app.settings import Settings
from tests import factories
from tests.hostile.live import serve_app

TOKEN_URL = "/api/v1/auth/token"
ODATA = "/odata/v4/ItemAvailability"


@dataclass
class Served:
    app: FastAPI
    client: httpx.AsyncClient
    statements: list[str]
    addresses: int = 0

    def new_address(self) -> str:
        """A fresh client address per attempt: every attempt starts from the same counters."""
        self.addresses += 1
        return f"10.77.{self.addresses // 250}.{self.addresses % 250 + 1}"


@dataclass(frozen=True)
class Work:
    status: int
    body: Any
    statements: tuple[str, ...]
    password_checks: float


@pytest.fixture
async def served(settings: Settings, sessionmaker: SessionMaker) -> AsyncIterator[Served]:
    proxied = settings.model_copy(update={"trusted_proxies": "127.0.0.1"})
    app = create_app(proxied, should_migrate=False)
    with serve_app(app) as port:
        statements: list[str] = []

        def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            statements.append(statement)

        sync_engine = app.state.engine.sync_engine
        event.listen(sync_engine, "before_cursor_execute", record)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield Served(app, client, statements)
        event.remove(sync_engine, "before_cursor_execute", record)


async def _password_checks(client: httpx.AsyncClient) -> float:
    metrics = (await client.get("/metrics")).text
    name = "salesbridge_password_checks_total"
    line = next(x for x in metrics.splitlines() if x.startswith(name))
    return float(line.split()[-1])


async def _work(served: Served, request: dict[str, Any], *, address: str | None = None) -> Work:
    before = await _password_checks(served.client)
    served.statements.clear()
    headers = {"X-Forwarded-For": address or served.new_address(), **request.pop("headers", {})}
    response = await served.client.request(**request, headers=headers)
    statements = tuple(served.statements)
    checks = await _password_checks(served.client) - before
    return Work(response.status_code, response.json(), statements, checks)


def _token(user_name: str, secret: str) -> dict[str, Any]:
    return {"method": "POST", "url": TOKEN_URL, "data": {"username": user_name, "password": secret}}


def _basic(user_name: str, secret: str) -> dict[str, Any]:
    token = base64.b64encode(f"{user_name}:{secret}".encode()).decode()
    return {"method": "GET", "url": ODATA, "headers": {"Authorization": f"Basic {token}"}}


def _random_key() -> str:
    return f"sbk_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"


@pytest.fixture
async def people(session: AsyncSession, settings: Settings) -> dict[str, str]:
    """alice (password and key), svc (key-only), gone (disabled); returns keys by role."""
    alice = await factories.create_user(session, user_name="alice")
    alice_key = await factories.create_access_key(session, settings, user=alice)
    svc = await factories.create_user(
        session, user_name="svc", roles=(Role.product_availability,), password=None
    )
    revoked = await factories.create_access_key(session, settings, user=svc)
    expired = await factories.create_access_key(session, settings, user=svc)
    await factories.create_user(session, user_name="gone", state=UserState.disabled)
    for key, name, value in (
        (revoked, "revoked_at", utc_now()),
        (expired, "expires_at", utc_now() - timedelta(days=1)),
    ):
        statement = select(WebServiceAccessKey).where(
            WebServiceAccessKey.key_id == key.split("_")[1]
        )
        row = (await session.exec(statement)).one()
        setattr(row, name, value)
        session.add(row)
    await session.commit()
    return {"alice": alice_key, "revoked": revoked, "expired": expired}


def _assert_same_work(works: dict[str, Work]) -> Work:
    first_name, first = next(iter(works.items()))
    for name, work in works.items():
        assert work.status == first.status, (name, work.status, first_name, first.status)
        assert work.body == first.body, (name, work.body)
        assert work.statements == first.statements, (name, work.statements, first.statements)
        assert work.password_checks == first.password_checks, (name, work.password_checks)
    return first


async def test_failed_password_sign_ins_cost_the_same_work(
    served: Served, people: dict[str, str]
) -> None:
    works = {
        "wrong password": await _work(served, _token("alice", "not her password!")),
        "unknown user": await _work(served, _token("mallory", "not her password!")),
        "key-only user": await _work(served, _token("svc", "not a password at all")),
        "disabled user": await _work(served, _token("gone", factories.PASSWORD)),
    }
    work = _assert_same_work(works)
    assert work.status == 401
    assert work.password_checks == 1
    assert work.statements  # the counters were read and written


async def test_failed_key_sign_ins_cost_the_same_work_and_no_argon2(
    served: Served, people: dict[str, str]
) -> None:
    """The reported leak: a key-shaped password cost argon2 only for unknown users."""
    for request in (_token, _basic):
        works = {
            "wrong key": await _work(served, request("alice", _random_key())),
            "unknown user": await _work(served, request("mallory", _random_key())),
            "revoked key": await _work(served, request("svc", people["revoked"])),
            "expired key": await _work(served, request("svc", people["expired"])),
            "another user's key": await _work(served, request("svc", people["alice"])),
            "disabled user": await _work(served, request("gone", _random_key())),
        }
        work = _assert_same_work(works)
        assert work.status == 401
        assert work.password_checks == 0
        assert len(work.statements) >= 4  # user, key, counters read, counters written


async def test_throttled_and_malformed_attempts_are_refused_before_argon2(
    served: Served, people: dict[str, str], settings: Settings
) -> None:
    address = "10.78.0.1"
    for _ in range(settings.login_max_failures):
        failed = await _work(served, _token("alice", "wrong password!"), address=address)
        assert (failed.status, failed.password_checks) == (401, 1)

    throttled = await _work(served, _token("alice", factories.PASSWORD), address=address)
    malformed = await _work(served, _token("not a user name!", "some password"))
    password_on_odata = await _work(served, _basic("alice", factories.PASSWORD))

    assert (throttled.status, throttled.password_checks) == (429, 0)
    assert len(throttled.statements) == 1  # the counters, read once
    assert (malformed.status, malformed.password_checks) == (401, 0)
    assert (password_on_odata.status, password_on_odata.password_checks) == (401, 0)
