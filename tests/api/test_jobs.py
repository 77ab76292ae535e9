"""REST: the job queue (/api/v1/job-queue-entries) and the sync log (/api/v1/sync-jobs)."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import utc_now
from app.models.integration import IntegrationSynchJob, JobQueueEntry, JobStatus
from app.models.security import Role
from app.settings import Settings
from tests.factories import bearer_headers, create_user
from tests.workers.conftest import run_burst_worker
from tests.workers.factories import create_entry, create_sync_job
from workers.queue import entry_job_id

ENTRIES = "/api/v1/job-queue-entries"
SYNC_JOBS = "/api/v1/sync-jobs"
PURGE = {"kind": "purge_sync_log", "description": "Purge sync log", "recurring": False}


@pytest.fixture
async def admin(client: httpx.AsyncClient, session: AsyncSession) -> dict[str, str]:
    await create_user(session, user_name="admin")
    await session.commit()
    return await bearer_headers(client, user_name="admin")


async def _entries(session: AsyncSession) -> int:
    return (await session.exec(select(func.count()).select_from(JobQueueEntry))).one()


async def test_admin_creates_reads_updates_and_deletes_an_entry(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    body = {**PURGE, "parameters": {"older_than_days": 7}, "max_attempts": 2}
    created = await client.post(ENTRIES, json=body, headers=admin)
    assert created.status_code == 201, created.text
    entry = created.json()
    assert entry["status"] == "ready" and entry["parameters"] == {"older_than_days": 7}
    assert entry["earliest_start_at"] is not None and entry["modified_by"] == "admin"
    url = f"{ENTRIES}/{entry['id']}"

    listed = await client.get(ENTRIES, params={"status": "ready"}, headers=admin)
    assert listed.status_code == 200
    assert listed.json()["count"] == 1 and listed.json()["items"][0]["id"] == entry["id"]
    assert (await client.get(ENTRIES, params={"status": "error"}, headers=admin)).json()[
        "count"
    ] == 0

    changes = {"description": "Weekly purge", "parameters": {"older_than_days": 14}}
    updated = await client.patch(url, json=changes, headers=admin)
    assert updated.status_code == 200, updated.text
    assert updated.json()["description"] == "Weekly purge"
    assert (await client.get(url, headers=admin)).json()["parameters"] == {"older_than_days": 14}

    assert (await client.delete(url, headers=admin)).status_code == 204
    missing = await client.get(url, headers=admin)
    assert missing.status_code == 404 and "does not exist" in missing.json()["detail"]


BAD_ENTRIES: list[tuple[dict[str, object], str]] = [
    ({**PURGE, "max_attempts": "many"}, "body.max_attempts"),
    ({**PURGE, "max_attempts": 0}, "body.max_attempts"),
    ({**PURGE, "colour": "red"}, "body.colour"),
    ({**PURGE, "kind": "make_coffee"}, "body.kind"),
    ({**PURGE, "status": "in_process"}, "body.status"),
    ({**PURGE, "earliest_start_at": "2030-01-01T00:00:00"}, "body.earliest_start_at"),
    ({**PURGE, "parameters": {"older_than_days": -1}}, "parameters.older_than_days"),
    ({**PURGE, "parameters": {"shred": True}}, "parameters.shred"),
    ({"kind": "mapping_sync"}, "mapping_name"),
    ({"kind": "mapping_sync", "mapping_name": "NOPE"}, "mapping_name"),
]


async def test_a_bad_entry_is_refused_with_the_field_and_nothing_is_written(
    client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession
) -> None:
    for body, field in BAD_ENTRIES:
        response = await client.post(ENTRIES, json=body, headers=admin)
        assert response.status_code == 422, (body, response.text)
        assert field in [error["field"] for error in response.json()["errors"]], response.text
    assert await _entries(session) == 0


async def test_malformed_requests_get_clear_4xx(
    client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession
) -> None:
    headers = {**admin, "content-type": "application/json"}
    broken = await client.post(ENTRIES, content=b'{"kind": ', headers=headers)
    assert broken.status_code == 422 and broken.json()["error"]
    assert (await client.get(f"{ENTRIES}/abc", headers=admin)).status_code == 422
    assert (await client.get(f"{ENTRIES}/999", headers=admin)).status_code == 404
    assert (await client.get(ENTRIES, params={"colour": "red"}, headers=admin)).status_code == 400
    entry = await create_entry(session)
    url = f"{ENTRIES}/{entry.id}"
    for changes in ({"max_attempts": None}, {"kind": "notes"}, {"rerun_delay_seconds": -5}):
        response = await client.patch(url, json=changes, headers=admin)
        assert response.status_code == 422, (changes, response.text)
    assert (await client.get(url, headers=admin)).json()["max_attempts"] == entry.max_attempts


async def test_hold_ready_and_the_running_guard(
    client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession
) -> None:
    failed = await create_entry(session, status=JobStatus.error, attempt=3, last_error="boom")
    held = await client.post(f"{ENTRIES}/{failed.id}/set-on-hold", headers=admin)
    assert held.status_code == 200 and held.json()["status"] == "on_hold"
    ready = await client.post(f"{ENTRIES}/{failed.id}/set-ready", headers=admin)
    assert ready.status_code == 200
    assert (ready.json()["status"], ready.json()["attempt"]) == ("ready", 0)

    running = await create_entry(
        session,
        status=JobStatus.in_process,
        claimed_by="host:42",
        claimed_until=utc_now() + timedelta(minutes=5),
    )
    url = f"{ENTRIES}/{running.id}"
    for response in (
        await client.post(f"{url}/set-on-hold", headers=admin),
        await client.post(f"{url}/run-now", headers=admin),
        await client.delete(url, headers=admin),
    ):
        assert response.status_code == 409
        assert "is running" in response.json()["detail"]
    assert (await client.get(url, headers=admin)).json()["status"] == "in_process"


async def test_run_now_triggers_a_worker_at_once(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    session: AsyncSession,
    app: FastAPI,
    settings: Settings,
) -> None:
    pool = await app.state.queue.pool()  # the app's own connection, opened on first use
    await pool.flushdb()
    entry = await create_entry(
        session, status=JobStatus.on_hold, earliest_start_at=utc_now() + timedelta(days=1)
    )
    await create_sync_job(session, started_at=utc_now() - timedelta(days=90), errors=2)
    response = await client.post(f"{ENTRIES}/{entry.id}/run-now", headers=admin)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "ready"
    assert datetime.fromisoformat(response.json()["earliest_start_at"]) <= utc_now()
    assert entry.id is not None
    assert await pool.exists(f"arq:job:{entry_job_id(entry.id, 0)}")
    assert await run_burst_worker(settings) == 1
    done = (await client.get(f"{ENTRIES}/{entry.id}", headers=admin)).json()
    assert (done["status"], done["run_count"], done["last_error"]) == ("finished", 1, "")
    assert (await session.exec(select(func.count()).select_from(IntegrationSynchJob))).one() == 0


async def test_sync_jobs_newest_first_with_their_errors(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await create_user(session, user_name="integration", roles=(Role.integration_user,))
    older = await create_sync_job(session, started_at=utc_now() - timedelta(hours=2), errors=3)
    newer = await create_sync_job(
        session, started_at=utc_now() - timedelta(hours=1), mapping_name="CUSTOMER"
    )
    headers = await bearer_headers(client, user_name="integration")

    listed = (await client.get(SYNC_JOBS, headers=headers)).json()
    assert [job["id"] for job in listed["items"]] == [str(newer.system_id), str(older.system_id)]
    filtered = await client.get(SYNC_JOBS, params={"mapping_name": "CUSTOMER"}, headers=headers)
    assert [job["id"] for job in filtered.json()["items"]] == [str(newer.system_id)]
    one = await client.get(f"{SYNC_JOBS}/{older.system_id}", headers=headers)
    assert one.status_code == 200 and one.json()["failed"] == 3

    errors = await client.get(
        f"{SYNC_JOBS}/{older.system_id}/errors", params={"limit": 2}, headers=headers
    )
    assert errors.status_code == 200
    assert (errors.json()["count"], len(errors.json()["items"])) == (3, 2)
    assert errors.json()["next"] and "offset=2" in errors.json()["next"]
    assert (await client.get(f"{SYNC_JOBS}/not-a-uuid", headers=headers)).status_code == 422
    unknown = await client.get(f"{SYNC_JOBS}/{newer.system_id.hex[::-1]}/errors", headers=headers)
    assert unknown.status_code == 404


async def test_roles_guard_the_job_queue_and_the_sync_log(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await create_user(session, user_name="integration", roles=(Role.integration_user,))
    await create_user(session, user_name="odata", roles=(Role.product_availability,))
    await session.commit()
    assert (await client.get(ENTRIES)).status_code == 401
    assert (await client.get(SYNC_JOBS)).status_code == 401
    user = await bearer_headers(client, user_name="integration")
    assert (await client.get(ENTRIES, headers=user)).status_code == 403
    assert (await client.post(ENTRIES, json=PURGE, headers=user)).status_code == 403
    assert (await client.get(SYNC_JOBS, headers=user)).status_code == 200
    odata = await bearer_headers(client, user_name="odata")
    assert (await client.get(SYNC_JOBS, headers=odata)).status_code == 403
