"""ERP -> CRM pages sent while the next page is planned: nothing lost, nothing doubled."""

from __future__ import annotations

import pytest
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.catalog import run_mapping
from app.dataverse import DataverseClient
from app.db import SYNC_ACTOR, SessionMaker
from app.models.integration import (
    ConnectionSetup,
    Direction,
    IntegrationRecord,
    IntegrationSynchJob,
    SynchResult,
)
from app.sync.errors import SyncError
from app.sync.log import Counters
from app.sync.sync_pass import RunOptions
from tests.fixtures.sandbox import RunningSandbox
from tests.sync import factories as f

TO = Direction.to_crm
# Two items a page, one product (three operations) a batch: several pages and batches overlap.
SMALL_PAGES = RunOptions(is_full=True, page_size=2, batch_size=3, concurrency=2)
NOS = [f"70{n:02d}" for n in range(7)]


async def _seed(session: AsyncSession, sessionmaker: SessionMaker, crm: DataverseClient) -> None:
    await f.add(session, f.unit("PCS"))
    await f.add(session, *(f.item(no) for no in NOS))
    await session.commit()
    await run_mapping(sessionmaker, crm, mapping_name="UNIT OF MEASURE", options=SMALL_PAGES)


async def _item_couplings(session: AsyncSession) -> list[IntegrationRecord]:
    session.expire_all()
    statement = select(IntegrationRecord).where(IntegrationRecord.table_name == "item")
    return list((await session.exec(statement)).all())


async def test_overlapping_pages_record_every_record_once(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    crm: DataverseClient, setup: ConnectionSetup,
) -> None:  # fmt: skip
    await _seed(session, sessionmaker, crm)
    seen: list[int] = []

    def progress(_: str, direction: Direction, counters: Counters) -> None:
        if direction == TO:
            seen.append(counters.inserted)

    options = RunOptions(**{**SMALL_PAGES.__dict__, "on_progress": progress})
    result = await run_mapping(sessionmaker, crm, mapping_name="ITEM-PRODUCT", options=options)

    assert result.counters[TO].inserted == len(NOS)
    assert seen == [2, 4, 6, 7]  # pages recorded in order, one commit each
    statement = select(IntegrationSynchJob).where(
        IntegrationSynchJob.system_id == result.job_ids[TO]
    )
    job = (await session.exec(statement)).one()
    assert job.inserted == len(NOS)
    couplings = await _item_couplings(session)
    products = {p["productid"]: p for p in sandbox.state.rows("products")}
    assert sorted(str(c.crm_id) for c in couplings) == sorted(products)
    for coupling in couplings:  # written by the bulk INSERT and UPDATE, audit columns too
        assert coupling.last_synch_crm_result == SynchResult.success
        assert coupling.last_synch_crm_job_id == result.job_ids[TO]
        assert coupling.last_synch_crm_modified_on is not None
        assert coupling.last_synch_modified_on is not None
        assert coupling.modified_by == SYNC_ACTOR
        assert coupling.created_at is not None
    assert sandbox.state.count("productpricelevels") == len(NOS)
    assert all(p["statecode"] == 0 for p in products.values())
    again = await run_mapping(sessionmaker, crm, mapping_name="ITEM-PRODUCT", options=SMALL_PAGES)
    assert again.counters[TO].unchanged == len(NOS)
    assert again.activity == 0


async def test_a_failure_mid_pipeline_loses_and_doubles_nothing(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    crm: DataverseClient, setup: ConnectionSetup,
) -> None:  # fmt: skip
    await _seed(session, sessionmaker, crm)
    config = sandbox.state.config

    def break_the_crm(_: str, direction: Direction, counters: Counters) -> None:
        # After the first page is recorded every CRM call fails: the pages in flight
        # (sent or being planned) must stay pending, not be lost or written twice.
        if direction == TO and counters.inserted:
            config.error_rate, config.error_statuses = 1.0, (500,)

    options = RunOptions(**{**SMALL_PAGES.__dict__, "on_progress": break_the_crm})
    with pytest.raises(SyncError):
        await run_mapping(sessionmaker, crm, mapping_name="ITEM-PRODUCT", options=options)
    config.error_rate = 0.0
    couplings = await _item_couplings(session)
    succeeded = [c for c in couplings if c.last_synch_crm_result == SynchResult.success]
    assert len(succeeded) >= 2  # the first page was recorded
    pending = [c for c in couplings if c.last_synch_crm_result == SynchResult.failure]
    assert all(c.last_synch_crm_modified_on is None for c in pending)
    assert len(pending) >= 1

    await run_mapping(sessionmaker, crm, mapping_name="ITEM-PRODUCT", options=SMALL_PAGES)
    couplings = await _item_couplings(session)
    assert len(couplings) == len(NOS)
    assert all(c.last_synch_crm_result == SynchResult.success for c in couplings)
    numbers = sorted(p["productnumber"] for p in sandbox.state.rows("products"))
    assert numbers == NOS  # exactly one product per item
    assert sorted(str(c.crm_id) for c in couplings) == sorted(
        p["productid"] for p in sandbox.state.rows("products")
    )
