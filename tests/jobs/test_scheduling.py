"""Wake-up, dependency order, one run per mapping, progress and the CLI (no arq needed here)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from typer.testing import CliRunner

from app.cli import cli
from app.clock import as_utc, utc_now
from app.db import SYNC_ACTOR, SessionMaker, current_actor, session_scope
from app.jobs import queue, scheduling, wakeup
from app.models import erp
from app.models.integration import (
    ConnectionSetup,
    DataverseEntityChange,
    Direction,
    IntegrationSynchJob,
    IntegrationTableMapping,
    JobKind,
    JobQueueEntry,
    JobStatus,
)
from app.settings import Settings, get_settings
from app.sync import log, notified_changes
from tests.fixtures.sandbox import RunningSandbox
from tests.jobs.conftest import entries
from tests.sync import factories as f

LATER = timedelta(hours=12)


async def _rest_all(sessionmaker: SessionMaker) -> None:
    """Every recurring entry resting after an idle run that started just now."""
    now = utc_now()
    async with session_scope(sessionmaker) as session:
        await session.exec(
            update(JobQueueEntry)
            .where(col(JobQueueEntry.recurring))
            .values(status=JobStatus.on_hold_with_inactivity_timeout,
                    earliest_start_at=now + LATER, last_started_at=now)
        )  # fmt: skip


async def _woken(sessionmaker: SessionMaker) -> set[str]:
    async with session_scope(sessionmaker) as session:
        await wakeup.wake_changed_entries(session, now=utc_now(), delay_seconds=30)
    soon = utc_now() + timedelta(minutes=1)
    return {
        e.mapping_name
        for e in await entries(sessionmaker, kind=JobKind.mapping_sync, recurring=True)
        if e.status == JobStatus.ready and as_utc(e.earliest_start_at) < soon  # type: ignore[arg-type]
    }


async def test_changes_wake_only_the_entries_that_read_them(
    session: AsyncSession, sessionmaker: SessionMaker, connected: ConnectionSetup
) -> None:
    await _rest_all(sessionmaker)
    assert await _woken(sessionmaker) == set()
    token = current_actor.set(SYNC_ACTOR)
    try:  # what the sync wrote itself wakes nothing
        await f.add(session, f.unit("PCS"))
        await session.commit()
    finally:
        current_actor.reset(token)
    assert await _woken(sessionmaker) == set()
    # A person's edit: the mapping reading that ERP table wakes; SALESPEOPLE (CRM -> ERP
    # only) does not wake for an ERP salesperson.
    await f.add(session, f.item("1000"), erp.Salesperson(code="AS", name="Ann"))
    await session.commit()
    assert await _woken(sessionmaker) == {"ITEM-PRODUCT"}
    item_entry = await entries(sessionmaker, mapping_name="ITEM-PRODUCT", recurring=True)
    start = as_utc(item_entry[0].earliest_start_at)  # type: ignore[arg-type]
    assert utc_now() < start <= utc_now() + timedelta(seconds=30)  # 30 s after the tick

    await _rest_all(sessionmaker)
    session.add_all([
        DataverseEntityChange(entity_name="systemuser", received_at=utc_now()),
        DataverseEntityChange(entity_name="transactioncurrency", received_at=utc_now()),
    ])  # fmt: skip
    await session.commit()
    # CURRENCY only sends to the CRM: a CRM currency change does not wake it.
    assert await _woken(sessionmaker) == {"SALESPEOPLE"}
    # The tick only wakes; the mapping's run consumes the rows (here: as its run would).
    changes = (await session.exec(select(DataverseEntityChange))).all()
    assert all(c.processed_at is None for c in changes)
    await _rest_all(sessionmaker)
    assert await _woken(sessionmaker) == {"SALESPEOPLE"}  # not read yet: woken again
    async with session_scope(sessionmaker) as consuming:
        salespeople = (
            await consuming.exec(
                select(IntegrationTableMapping).where(IntegrationTableMapping.name == "SALESPEOPLE")
            )
        ).one()
        taken = await notified_changes.take(consuming, salespeople, until=utc_now())
        await notified_changes.consume(consuming, salespeople, taken, now=utc_now())
    await _rest_all(sessionmaker)
    assert await _woken(sessionmaker) == set()  # read by its run: not again


async def test_an_entry_on_hold_by_a_person_is_not_woken(
    session: AsyncSession, sessionmaker: SessionMaker, connected: ConnectionSetup
) -> None:
    await _rest_all(sessionmaker)
    (entry,) = await entries(sessionmaker, mapping_name="ITEM-PRODUCT", recurring=True)
    async with session_scope(sessionmaker) as held:
        await held.exec(
            update(JobQueueEntry).where(col(JobQueueEntry.id) == entry.id)
            .values(status=JobStatus.on_hold)
        )  # fmt: skip
    await f.add(session, f.unit("PCS"))
    await f.add(session, f.item("1000"))
    await session.commit()
    await _woken(sessionmaker)
    (entry,) = await entries(sessionmaker, mapping_name="ITEM-PRODUCT", recurring=True)
    assert entry.status == JobStatus.on_hold


async def test_dependencies_start_first_and_one_run_per_mapping(
    session: AsyncSession, sessionmaker: SessionMaker, connected: ConnectionSetup
) -> None:
    await _rest_all(sessionmaker)
    queued = await scheduling.request_runs(
        session, kind=JobKind.full_sync, names=["ITEM-PRODUCT", "UNIT OF MEASURE"]
    )
    await session.commit()
    unit, item = queued
    assert (unit.mapping_name, item.parameters["after"]) == ("UNIT OF MEASURE", [unit.id])
    now = utc_now()
    async with session_scope(sessionmaker) as s:
        due = [d.entry_id for d in await queue.find_due(s, now=now)]
        assert await scheduling.startable(s, due) == {unit.id}
    async with session_scope(sessionmaker) as s:
        claim = await queue.claim(s, entry_id=unit.id or 0, run_count=0, worker_id="w:1",
                                 now=now, claim_seconds=60)  # fmt: skip
    assert claim is not None
    # A second entry of the same mapping, due now, cannot start while the first runs.
    (recurring,) = await entries(sessionmaker, mapping_name="UNIT OF MEASURE", recurring=True)
    assert recurring.status == JobStatus.on_hold  # held for the full sync
    other = JobQueueEntry(kind=JobKind.mapping_sync, mapping_name="UNIT OF MEASURE",
                          recurring=False, earliest_start_at=now)  # fmt: skip
    session.add(other)
    await session.commit()
    async with session_scope(sessionmaker) as s:
        assert other.id not in await scheduling.startable(s, [other.id or 0])
        assert await queue.claim(s, entry_id=other.id or 0, run_count=0, worker_id="w:2",
                                now=now, claim_seconds=60) is None  # fmt: skip
    async with session_scope(sessionmaker) as s:
        fresh = await s.get(JobQueueEntry, unit.id)
        assert fresh is not None
        await queue.finish(s, run=claim, entry=fresh, result=queue.RunResult(changed=2), now=now)
        await scheduling.release_held(s, entry=fresh)
    async with session_scope(sessionmaker) as s:
        due = [d.entry_id for d in await queue.find_due(s, now=utc_now())]
        startable = await scheduling.startable(s, due)
    (recurring,) = await entries(sessionmaker, mapping_name="UNIT OF MEASURE", recurring=True)
    assert recurring.status == JobStatus.ready  # the full sync ended: restored
    # The dependency ended: the item full sync may start; of the two due entries of the
    # unit mapping, one starts now, the other after it.
    assert startable == {item.id, recurring.id}


async def test_racing_claims_of_one_mapping_start_one_run(
    session: AsyncSession, sessionmaker: SessionMaker, connected: ConnectionSetup
) -> None:
    now = utc_now()
    twins = [JobQueueEntry(kind=JobKind.mapping_sync, mapping_name="CURRENCY", recurring=False,
                           earliest_start_at=now) for _ in range(3)]  # fmt: skip
    session.add_all(twins)
    await session.commit()

    async def claim(entry: JobQueueEntry) -> queue.Claim | None:
        async with session_scope(sessionmaker) as s:
            return await queue.claim(s, entry_id=entry.id or 0, run_count=0, worker_id="w",
                                    now=now, claim_seconds=60)  # fmt: skip

    claims = await asyncio.gather(*(claim(e) for e in twins), return_exceptions=True)
    won = [c for c in claims if isinstance(c, queue.Claim)]
    assert len(won) == 1, claims  # SQLite may refuse a loser with "database is locked"


async def test_actions_refuse_what_cannot_run(
    session: AsyncSession, sessionmaker: SessionMaker, connected: ConnectionSetup,
    client: httpx.AsyncClient, admin: dict[str, str], reader: dict[str, str],
) -> None:  # fmt: skip
    missing = await client.post("/api/v1/sync/mappings/NOPE/run", headers=admin)
    assert missing.status_code == 404 and "NOPE" in missing.json()["detail"]
    denied = await client.post("/api/v1/sync/mappings/CURRENCY/run", headers=reader)
    assert denied.status_code == 403
    async with session_scope(sessionmaker) as s:
        await s.exec(
            update(JobQueueEntry)
            .where(col(JobQueueEntry.mapping_name) == "CURRENCY", col(JobQueueEntry.recurring))
            .values(status=JobStatus.in_process, claimed_by="w:1",
                    claimed_until=utc_now() + LATER)
        )  # fmt: skip
    busy = await client.post("/api/v1/sync/mappings/CURRENCY/run?full=true", headers=admin)
    assert busy.status_code == 409 and "synchronizing now" in busy.json()["detail"]
    modified = await client.post("/api/v1/sync/mappings/CURRENCY/run", headers=admin)
    assert modified.status_code == 202  # waits for the running entry (one run per mapping)
    assert modified.json()["entries"][0]["kind"] == "mapping_sync"


async def test_progress_shows_records_done_of_total(
    session: AsyncSession, client: httpx.AsyncClient, reader: dict[str, str]
) -> None:
    job = await log.start_job(session, mapping_name="ITEM-PRODUCT", direction=Direction.to_crm,
                              started_at=utc_now(), job_queue_entry_id=41)  # fmt: skip
    job.total_records = 10
    await log.add_counters(
        session, job_id=job.system_id, counters=log.Counters(inserted=3, unchanged=1)
    )
    ended = IntegrationSynchJob(mapping_name="CURRENCY", direction=Direction.to_crm,
                                started_at=utc_now(), finished_at=utc_now())  # fmt: skip
    dead_entry = JobQueueEntry(
        kind=JobKind.mapping_sync, mapping_name="CUSTOMER", status=JobStatus.ready
    )  # its worker was killed mid-run
    session.add_all([ended, dead_entry])
    await session.flush()
    cut_short = IntegrationSynchJob(
        mapping_name="CUSTOMER",
        direction=Direction.to_crm,
        started_at=utc_now(),
        job_queue_entry_id=dead_entry.id,
    )
    session.add(cut_short)
    await session.commit()
    response = await client.get("/api/v1/sync/progress?job_queue_entry_id=41", headers=reader)
    assert response.status_code == 200
    (item,) = response.json()["items"]
    assert (item["mapping_name"], item["done"], item["total"]) == ("ITEM-PRODUCT", 4, 10)
    other = await client.get("/api/v1/sync/progress?job_queue_entry_id=7", headers=reader)
    assert other.json()["items"] == []
    every = await client.get("/api/v1/sync/progress", headers=reader)
    assert [i["mapping_name"] for i in every.json()["items"]] == ["ITEM-PRODUCT"]


@pytest.fixture
def cli_env(settings: Settings, database_url: str) -> Iterator[None]:
    """The CLI reads the test's database and data dir (the secret key) from the environment."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("SALESBRIDGE_")}
    for name in saved:
        del os.environ[name]
    os.environ["SALESBRIDGE_DATA_DIR"] = str(settings.data_dir)
    os.environ["SALESBRIDGE_DATABASE_URL"] = database_url
    # As the suite's settings: the sandbox CRM is on 127.0.0.1.
    allowance = str(settings.allow_private_crm_addresses)
    os.environ["SALESBRIDGE_ALLOW_PRIVATE_CRM_ADDRESSES"] = allowance
    get_settings.cache_clear()
    yield
    for name in ("SALESBRIDGE_DATA_DIR", "SALESBRIDGE_DATABASE_URL",
                 "SALESBRIDGE_ALLOW_PRIVATE_CRM_ADDRESSES"):  # fmt: skip
        del os.environ[name]
    os.environ.update(saved)
    get_settings.cache_clear()


@pytest.fixture
async def two_units(session: AsyncSession, connected: ConnectionSetup) -> None:
    await f.add(session, f.unit("PCS"), f.unit("BOX"))
    await session.commit()


def test_cli_runs_a_mapping_in_process_and_shows_the_queue(
    two_units: None, sandbox: RunningSandbox, cli_env: None, tmp_path: Path
) -> None:
    runner = CliRunner()
    ran = runner.invoke(cli, ["sync", "run", "UNIT OF MEASURE", "--full"])
    assert ran.exit_code == 0, (ran.output, ran.exception)
    assert "2/2" in ran.output  # the progress bar: records done / total
    assert sandbox.state.count("uomschedules") == 2
    status = runner.invoke(cli, ["sync", "status"])
    assert status.exit_code == 0, status.output
    rows = [line for line in status.output.splitlines() if "ITEM-PRODUCT" in line]
    assert rows and "scheduled" in rows[0]  # status ready, in words
    unknown = runner.invoke(cli, ["sync", "run", "NOPE"])
    assert unknown.exit_code == 1 and "NOPE" in unknown.output
