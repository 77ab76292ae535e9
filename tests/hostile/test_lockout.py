"""Nobody can lock the CRM (or anyone) out: over real HTTP, with many client addresses.

uvicorn serves the app on 127.0.0.1 and trusts X-Forwarded-For from 127.0.0.1
(``SALESBRIDGE_TRUSTED_PROXIES``), so each request comes "from" the address the test puts
in that header, as behind a reverse proxy.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
import structlog
from fastapi import FastAPI
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import utc_now
from app.db import SessionMaker
from app.main import create_app
from app.models.security import LoginThrottle, Role
from app.odata import auth as odata_auth
from app.settings import Settings
from tests import factories
from tests.hostile.live import serve_app

ODATA = "/odata/v4/ItemAvailability"
TOKEN_URL = "/api/v1/auth/token"
CRM_ADDRESS = "198.18.7.7"
ATTACKERS = 125
ATTEMPTS_EACH = 8  # 1,000 in all; past login_max_failures (5) an attacker gets 429s
AT_ONCE = 25


@pytest.fixture
def proxied(settings: Settings) -> Settings:
    return settings.model_copy(
        # No backoff here: it slows password guesses, which is not what this file is about.
        update={"trusted_proxies": "127.0.0.1", "login_backoff_max_seconds": 0}
    )


@pytest.fixture
async def api(proxied: Settings, sessionmaker: SessionMaker) -> AsyncIterator[httpx.AsyncClient]:
    odata_auth.clear_cache()
    app: FastAPI = create_app(proxied, should_migrate=False)
    with serve_app(app) as port:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            yield client
    odata_auth.clear_cache()


def _basic(user_name: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user_name}:{secret}".encode()).decode()


def _from(address: str, **headers: str) -> dict[str, str]:
    return {"X-Forwarded-For": address, **headers}


def _guess(api: httpx.AsyncClient, address: str, kind: int) -> asyncio.Task[httpx.Response]:
    """One failed attempt against the CRM's user, of one of four kinds."""
    wrong_key = f"sbk_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
    requests = (
        lambda: api.get(ODATA, headers=_from(address, Authorization=_basic("crm", wrong_key))),
        lambda: api.post(
            TOKEN_URL, data={"username": "crm", "password": "a password guess"},
            headers=_from(address),
        ),
        lambda: api.post(
            TOKEN_URL, data={"username": "crm", "password": wrong_key}, headers=_from(address)
        ),
        lambda: api.get(ODATA, headers=_from(address, Authorization=_basic("crm", "guess"))),
    )  # fmt: skip
    return asyncio.ensure_future(requests[kind % len(requests)]())


async def _crm_reads(api: httpx.AsyncClient, key: str, address: str = CRM_ADDRESS) -> int:
    odata_auth.clear_cache()  # a real check of the key, not the 5 s cache of the last one
    response = await api.get(ODATA, headers=_from(address, Authorization=_basic("crm", key)))
    return response.status_code


@pytest.fixture
async def crm_key(session: AsyncSession, settings: Settings) -> str:
    crm = await factories.create_user(
        session, user_name="crm", roles=(Role.product_availability,), password=None
    )
    key = await factories.create_access_key(session, settings, user=crm)
    await factories.create_user(session, user_name="admin")
    await session.commit()
    return key


async def test_a_thousand_failures_from_other_addresses_never_refuse_the_crms_key(
    api: httpx.AsyncClient, crm_key: str
) -> None:
    statuses: Counter[int] = Counter()
    crm_answers: list[int] = []
    attempts = [
        (f"10.66.{n // 200}.{n % 200 + 1}", kind)
        for kind in range(ATTEMPTS_EACH)
        for n in range(ATTACKERS)
    ]
    for start in range(0, len(attempts), AT_ONCE):
        batch = [_guess(api, address, kind) for address, kind in attempts[start : start + AT_ONCE]]
        crm_answers.append(await _crm_reads(api, crm_key))
        statuses.update(response.status_code for response in await asyncio.gather(*batch))

    assert sum(statuses.values()) == ATTACKERS * ATTEMPTS_EACH == 1000
    assert set(statuses) == {401, 429}, statuses  # failures, then throttled failures
    assert statuses[429] >= ATTACKERS * (ATTEMPTS_EACH - 5)
    assert crm_answers == [200] * len(crm_answers)
    # Even from an address that has been guessing all along, the right key is the CRM.
    assert await _crm_reads(api, crm_key, address="10.66.0.1") == 200
    # And a person with a password, from an address of their own, is not slowed either.
    admin = await api.post(
        TOKEN_URL, data={"username": "admin", "password": factories.PASSWORD},
        headers=_from("198.18.7.8"),
    )  # fmt: skip
    assert admin.status_code == 200, admin.text


async def test_a_sprayed_address_keeps_serving_who_signed_in_there_before(
    api: httpx.AsyncClient, crm_key: str
) -> None:
    """Behind one proxy address: the admin signed in before, then someone sprays names.
    Every failure and refusal is a security event with the name and address."""
    office = "192.0.2.200"
    admin_form = {"username": "admin", "password": factories.PASSWORD}
    assert (await api.post(TOKEN_URL, data=admin_form, headers=_from(office))).status_code == 200
    with structlog.testing.capture_logs() as logged:
        for n in range(6):
            form = {"username": f"user{n}", "password": "Summer2026!!"}
            await api.post(TOKEN_URL, data=form, headers=_from(office))
        newcomer = await api.post(
            TOKEN_URL, data={"username": "nobody-yet", "password": "Summer2026!!"},
            headers=_from(office),
        )  # fmt: skip
    admin = await api.post(TOKEN_URL, data=admin_form, headers=_from(office))

    assert newcomer.status_code == 429
    assert admin.status_code == 200, admin.text
    assert await _crm_reads(api, crm_key, address=office) == 200
    events = [(e["event"], e["user_name"], e.get("throttled_by")) for e in logged
              if e.get("category") == "security"]  # fmt: skip
    assert events[:5] == [("sign_in_failed", f"user{n}", None) for n in range(5)]
    assert events[5:] == [("sign_in_refused", "user5", "address"),
                          ("sign_in_refused", "nobody-yet", "address")]  # fmt: skip
    assert all(e["client_ip"] == office for e in logged if e.get("category") == "security")
    assert "Summer2026" not in repr(logged)


async def test_old_counters_are_purged_on_the_way(
    api: httpx.AsyncClient, session: AsyncSession, crm_key: str, settings: Settings
) -> None:
    long_ago = utc_now() - timedelta(days=400)
    for subject in ("pair:ghost|10.0.0.1", "addr:10.0.0.1", "user:ghost", "seen:ghost|10.0.0.1"):
        session.add(LoginThrottle(subject=subject, failure_count=3, window_started_at=long_ago))
    session.add(LoginThrottle(subject="seen:admin|10.0.0.2", window_started_at=utc_now()))
    await session.commit()

    form = {"username": "admin", "password": "not the password"}
    assert (await api.post(TOKEN_URL, data=form, headers=_from("10.0.0.3"))).status_code == 401

    subjects = set(await session.exec(select(LoginThrottle.subject)))
    assert subjects == {
        "seen:admin|10.0.0.2",
        "pair:admin|10.0.0.3",
        "addr:10.0.0.3",
        "user:admin",
    }
    left = await session.exec(
        select(LoginThrottle).where(col(LoginThrottle.subject).startswith("pair:"))
    )
    assert [row.failure_count for row in left] == [1]
