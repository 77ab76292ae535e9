"""A job queue entry's run builds its CRM client from the stored (encrypted) setup."""

from __future__ import annotations

import pytest
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth.encryption import encrypt_secret
from app.catalog import run_queue_entry
from app.db import SessionMaker
from app.models.integration import ConnectionSetup, IntegrationSynchJob
from app.settings import Settings
from app.sync.errors import FatalSyncError
from tests.fixtures.sandbox import RunningSandbox
from tests.sync import factories as f


async def test_entry_runs_the_mapping_with_the_stored_connection(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    setup: ConnectionSetup, settings: Settings,
) -> None:  # fmt: skip
    setup.token_url = sandbox.token_url
    setup.client_id = sandbox.config.client_id
    setup.client_secret_encrypted = encrypt_secret(settings, sandbox.config.client_secret)
    session.add(setup)
    await f.add(session, f.unit("PCS"), f.unit("BOX"))
    await session.commit()
    activity = await run_queue_entry(
        sessionmaker, mapping_name="UNIT OF MEASURE", is_full=True, entry_id=7, settings=settings
    )
    assert activity == 2
    assert sandbox.state.count("uomschedules") == 2
    job = (await session.exec(select(IntegrationSynchJob))).one()
    assert (job.job_queue_entry_id, job.inserted) == (7, 2)
    idle = await run_queue_entry(
        sessionmaker, mapping_name="UNIT OF MEASURE", is_full=False, entry_id=7, settings=settings
    )
    assert idle == 0  # the entry may go on hold with its inactivity timeout


async def test_a_disabled_connection_is_a_configuration_error(
    session: AsyncSession, sessionmaker: SessionMaker, setup: ConnectionSetup, settings: Settings
) -> None:
    setup.is_enabled = False
    session.add(setup)
    await session.commit()
    with pytest.raises(FatalSyncError, match="not enabled") as raised:
        await run_queue_entry(
            sessionmaker, mapping_name="CURRENCY", is_full=False, entry_id=None, settings=settings
        )
    assert raised.value.failure_kind == "config"
