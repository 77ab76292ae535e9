"""Inputs schemathesis found answering 500: each is now a clear 4xx on both databases."""

from __future__ import annotations

import httpx
import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from app.settings import Settings
from tests.factories import bearer_headers, create_user

HUGE = "99999999999999999999"  # past every integer column (SQLite overflowed, PostgreSQL too)


@pytest.fixture
async def admin(client: httpx.AsyncClient, session: AsyncSession) -> dict[str, str]:
    await create_user(session, user_name="admin")
    await session.commit()
    return await bearer_headers(client, user_name="admin")


@pytest.mark.parametrize(
    "url",
    [
        f"/api/v1/job-queue-entries/{HUGE}",
        f"/api/v1/job-queue-entries/{HUGE}/set-on-hold",
        f"/api/v1/sync/progress?job_queue_entry_id=1&job_queue_entry_id={HUGE}",
        f"/api/v1/couplings?offset={HUGE}",
    ],
)
async def test_huge_integers_are_refused(
    client: httpx.AsyncClient, admin: dict[str, str], url: str
) -> None:
    method = "POST" if url.endswith("set-on-hold") else "GET"
    response = await client.request(method, url, headers=admin)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "ValidationFailed"


async def test_job_queue_entry_ids_start_at_one(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    assert (await client.get("/api/v1/job-queue-entries/0", headers=admin)).status_code == 422
    assert (await client.get("/api/v1/job-queue-entries/1", headers=admin)).status_code == 404


async def test_nul_characters_are_bad_input_not_a_crash(
    client: httpx.AsyncClient, admin: dict[str, str], settings: Settings
) -> None:
    """PostgreSQL cannot store U+0000; SQLite can. Either way the caller gets a 4xx."""
    response = await client.patch(
        "/api/v1/connection", json={"client_id": "a\u0000b"}, headers=admin
    )
    if settings.is_sqlite:
        assert response.status_code == 200, response.text
        assert response.json()["client_id"] == "a\u0000b"
    else:
        assert response.status_code == 400, response.text
        assert response.json() == {
            "error": "InvalidInput",
            "detail": "Text may not contain NUL characters (U+0000) or characters it cannot store.",
        }
    lookup = await client.get("/api/v1/items/a%00b", headers=admin)
    assert lookup.status_code == (404 if settings.is_sqlite else 400), lookup.text
