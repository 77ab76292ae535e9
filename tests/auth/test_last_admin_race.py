"""Two admins disabling each other at once never leave no enabled admin (real HTTP, both DBs).

Before the guard took a lock, 4 runs in 5 ended with both disabled: each request counted
the other admin as still enabled.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models.security import User, UserState
from app.settings import Settings
from tests import factories
from tests.hostile.live import serve

ROUNDS = 10


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    with serve(settings) as port:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            yield client


async def _bearer(api: httpx.AsyncClient, user_name: str, key: str) -> dict[str, str]:
    form = {"username": user_name, "password": key}
    response = await api.post("/api/v1/auth/token", data=form)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def _enabled_admins(session: AsyncSession) -> list[str]:
    session.expire_all()
    statement = select(User.user_name).where(User.state == UserState.enabled)
    return sorted(await session.exec(statement))


async def test_admins_disabling_each_other_at_once_keep_one_enabled(
    api: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    keys = {}
    for name in ("ann", "bob"):
        user = await factories.create_user(session, user_name=name, password=None)
        keys[name] = await factories.create_access_key(session, settings, user=user)
    await session.commit()

    outcomes = []
    for _ in range(ROUNDS):
        ann, bob = [await _bearer(api, name, keys[name]) for name in ("ann", "bob")]
        answers = await asyncio.gather(
            api.patch("/api/v1/users/bob", json={"state": "disabled"}, headers=ann),
            api.patch("/api/v1/users/ann", json={"state": "disabled"}, headers=bob),
        )
        statuses = sorted(answer.status_code for answer in answers)
        outcomes.append(statuses)
        assert len(await _enabled_admins(session)) == 1, statuses
        # The loser was refused (409), or its token had died with its account (401).
        assert statuses in ([200, 401], [200, 409]), [a.text for a in answers]
        await session.exec(update(User).values(state=UserState.enabled))  # type: ignore[call-overload]
        await session.commit()

    assert len(outcomes) == ROUNDS
