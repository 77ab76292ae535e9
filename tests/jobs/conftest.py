"""Sync jobs end to end: real arq workers on real Redis, the sandbox as the CRM over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth.encryption import encrypt_secret
from app.clock import utc_now
from app.connection.defaults import recreate_default_setup
from app.dataverse import DataverseClient
from app.db import SessionMaker, session_scope
from app.models.integration import ConnectionSetup, JobQueueEntry
from app.models.security import Role
from app.settings import Settings
from tests.factories import bearer_headers, create_user
from tests.fixtures.sandbox import RunningSandbox
from tests.sync.conftest import sandbox_client
from tests.workers.conftest import run_burst_worker
from workers import tasks
from workers.queue import create_queue_pool

MAX_ROUNDS = 20  # dependency levels of the default mappings, with room to spare


@pytest.fixture
def worker_settings(settings: Settings) -> Settings:
    """The API's settings (same data dir: same secret key) with a worker's timeouts."""
    return settings.model_copy(update={"scheduler_tick_seconds": 1, "job_timeout_seconds": 60})


@pytest.fixture
async def arq_pool(worker_settings: Settings) -> AsyncIterator[ArqRedis]:
    pool = await create_queue_pool(worker_settings)
    await pool.flushdb()  # no trigger of an earlier test survives
    yield pool
    await pool.aclose()


@pytest.fixture
def tick_ctx(arq_pool: ArqRedis, sessionmaker: SessionMaker) -> dict[str, Any]:
    """What arq hands the tick; the wake-up delay is 0 s instead of 30 s to keep tests short."""
    return {"redis": arq_pool, "sessionmaker": sessionmaker, "wake_up_delay_seconds": 0}


@pytest.fixture
async def connected(
    session: AsyncSession, sandbox: RunningSandbox, settings: Settings
) -> ConnectionSetup:
    """An enabled connection to the sandbox (stored secret) with the default mappings."""
    row = ConnectionSetup(
        server_address=sandbox.base_url, is_enabled=True, dataverse_connection_enabled=True,
        token_url=sandbox.token_url, client_id=sandbox.config.client_id,
        client_secret_encrypted=encrypt_secret(settings, sandbox.config.client_secret),
    )  # fmt: skip
    session.add(row)
    await session.flush()
    await recreate_default_setup(session, setup=row)
    await session.commit()
    return row


@pytest.fixture
async def admin(session: AsyncSession, client: httpx.AsyncClient) -> dict[str, str]:
    await create_user(session, user_name="ops", roles=(Role.integration_admin,))
    await create_user(session, user_name="reader", roles=(Role.integration_user,))
    await session.commit()
    return await bearer_headers(client, user_name="ops")


async def drive(ctx: dict[str, Any], settings: Settings) -> int:
    """Tick and run bursts until nothing more is due; returns the deliveries run."""
    started = 0
    for _ in range(MAX_ROUNDS):
        enqueued = await tasks.tick(ctx)
        ran = await run_burst_worker(settings)  # also what the API enqueued itself
        if not enqueued and not ran:
            return started
        started += ran
    pytest.fail(f"the queue did not settle in {MAX_ROUNDS} rounds")


async def entries(sessionmaker: SessionMaker, **where: Any) -> list[JobQueueEntry]:
    async with sessionmaker() as session:
        statement = select(JobQueueEntry).order_by(col(JobQueueEntry.id))
        for name, value in where.items():
            statement = statement.where(getattr(JobQueueEntry, name) == value)
        return list(await session.exec(statement))


@pytest.fixture
async def reader(admin: dict[str, str], client: httpx.AsyncClient) -> dict[str, str]:
    return await bearer_headers(client, user_name="reader")


@pytest.fixture
async def crm(sandbox: RunningSandbox) -> AsyncIterator[DataverseClient]:
    """The sandbox over HTTP, as the integration user: to look at and delete CRM rows."""
    async with sandbox_client(sandbox) as client:
        yield client


async def full_sync(client: httpx.AsyncClient, admin: dict[str, str], *names: str) -> None:
    """Queue a full synchronization of each mapping over REST."""
    for name in names:
        response = await client.post(f"/api/v1/sync/mappings/{name}/run?full=true", headers=admin)
        assert response.status_code == 202, response.text


async def make_due(sessionmaker: SessionMaker, mapping: str) -> None:
    """The recurring entry's planned start has come (as if its interval had passed)."""
    async with session_scope(sessionmaker) as session:
        await session.exec(
            update(JobQueueEntry)
            .where(col(JobQueueEntry.mapping_name) == mapping, col(JobQueueEntry.recurring))
            .values(earliest_start_at=utc_now() - timedelta(seconds=1))
        )
