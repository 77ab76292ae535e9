"""Sync requests arriving at once are checked one after another: no duplicate runs queued."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest
from sqlalchemy import delete, update
from sqlmodel import col

from app.clock import utc_now
from app.db import SessionMaker, session_scope
from app.errors import ConflictError
from app.jobs import queue, scheduling
from app.models.integration import ConnectionSetup, JobQueueEntry, JobStatus
from tests.jobs.conftest import entries

API = "/api/v1/sync"
REQUESTS = [f"{API}/full", f"{API}/modified", f"{API}/mappings/CUSTOMER/run?full=true"] * 5


async def test_simultaneous_requests_queue_each_run_once(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    connected: ConnectionSetup,
    sessionmaker: SessionMaker,
) -> None:
    for _ in range(3):
        responses = await asyncio.gather(*(client.post(path, headers=admin) for path in REQUESTS))
        codes = Counter(r.status_code for r in responses)
        # One full sync and one "modified" run are accepted; every other request finds one
        # of them queued (the CUSTOMER full sync is part of the full sync).
        assert codes == {202: 2, 409: len(REQUESTS) - 2}, [r.text for r in responses]
        one_offs = await entries(sessionmaker, recurring=False)
        per_mapping = Counter((e.kind, e.mapping_name) for e in one_offs)
        assert per_mapping and set(per_mapping.values()) == {1}
        async with sessionmaker() as session:  # the runs ended: the next round may queue again
            await session.exec(delete(JobQueueEntry).where(col(JobQueueEntry.recurring).is_(False)))
            await session.exec(update(JobQueueEntry).values(status=JobStatus.ready))
            await session.commit()


async def test_a_claim_between_reading_and_holding_the_recurring_entry_wins(
    sessionmaker: SessionMaker, connected: ConnectionSetup
) -> None:
    """A worker claims the recurring entry after a full sync request read it as ready."""
    (recurring,) = await entries(sessionmaker, mapping_name="CURRENCY", recurring=True)
    async with session_scope(sessionmaker) as worker:
        won = await queue.claim(worker, entry_id=recurring.id or 0, run_count=recurring.run_count,
                               worker_id="w:1", now=utc_now(), claim_seconds=60)  # fmt: skip
    assert won is not None
    async with sessionmaker() as request:
        stale = await request.merge(recurring, load=False)  # what the request had read
        with pytest.raises(ConflictError, match="synchronizing now"):
            await scheduling._hold(request, stale)
        await request.rollback()
    (after,) = await entries(sessionmaker, mapping_name="CURRENCY", recurring=True)
    assert after.status == JobStatus.in_process and after.claimed_by == "w:1"
