"""Sync requests arriving at once are checked one after another: no duplicate runs queued."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
from sqlalchemy import delete, update
from sqlmodel import col

from app.db import SessionMaker
from app.models.integration import ConnectionSetup, JobQueueEntry, JobStatus
from tests.sync_jobs.conftest import entries

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
