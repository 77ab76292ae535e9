"""Sales documents end to end: the tests/jobs fixtures (real arq workers, the sandbox over
HTTP) plus a company whose CRM side is made through the Web API and coupled."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import utc_now
from app.connection.defaults import sync_other_jobs
from app.dataverse import DataverseClient
from app.db import SessionMaker, session_scope
from app.models.integration import ConnectionSetup, JobKind, JobQueueEntry, JobStatus
from app.settings import Settings
from app.sync.crm_client import build_crm_client
from tests.jobs.conftest import (  # noqa: F401, F811 - fixtures reused, not copied
    admin,
    arq_pool,
    connected,
    drive,
    entries,
    reader,
    tick_ctx,
    worker_settings,
)
from tests.sales.world import World, build_world
from tests.workers.conftest import queue_settings, start_worker  # noqa: F401 - fixtures

WRITE_IN = "WRITE-IN"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The suite's settings with the write-in product set up (BC's Sales & Receivables)."""
    return settings.model_copy(update={"write_in_product_no": WRITE_IN})


@pytest.fixture
async def sales_setup(
    session: AsyncSession,
    connected: ConnectionSetup,  # noqa: F811 - the imported fixture
) -> ConnectionSetup:
    """Auto create orders and auto process quotes on; only these jobs run in the tests."""
    connected.auto_create_sales_orders = True
    connected.auto_process_sales_quotes = True
    session.add(connected)
    await sync_other_jobs(session, setup=connected)
    await session.exec(
        update(JobQueueEntry)
        .where(col(JobQueueEntry.kind) == JobKind.mapping_sync)
        .values(status=JobStatus.on_hold)
    )
    await session.commit()
    return connected


@pytest.fixture
async def crm(settings: Settings, sales_setup: ConnectionSetup) -> AsyncIterator[DataverseClient]:
    """A Web API client on the sandbox, for arranging and reading CRM rows over HTTP."""
    async with build_crm_client(settings, sales_setup) as client:
        yield client


@pytest.fixture
async def world(session: AsyncSession, crm: DataverseClient) -> World:
    return await build_world(session, crm, write_in=WRITE_IN)


async def make_due(kind: JobKind, sessionmaker: SessionMaker) -> None:
    async with session_scope(sessionmaker) as session:
        await session.exec(
            update(JobQueueEntry)
            .where(col(JobQueueEntry.kind) == kind)
            .values(status=JobStatus.ready, earliest_start_at=utc_now() - timedelta(seconds=1))
        )


async def run_job(
    kind: JobKind, sessionmaker: SessionMaker, ctx: dict[str, Any], settings: Settings
) -> JobQueueEntry:
    """Make the job's entry due, let the queue run it (real workers); the entry after."""
    await make_due(kind, sessionmaker)
    await drive(ctx, settings)
    (entry,) = await entries(sessionmaker, kind=kind)
    return entry
