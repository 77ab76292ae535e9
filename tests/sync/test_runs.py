"""Runs of master-data mappings against the sandbox: incremental, failures, conflicts."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.catalog import run_mapping
from app.couplings import records
from app.dataverse import DataverseClient
from app.db import SessionMaker
from app.models import erp
from app.models.integration import (
    ConnectionSetup,
    DeletionConflictResolution,
    Direction,
    IntegrationRecord,
    IntegrationSynchJob,
    IntegrationSynchJobError,
    IntegrationTableMapping,
    UpdateConflictResolution,
)
from app.sync.sync_pass import RunOptions
from tests.fixtures.sandbox import RunningSandbox
from tests.sync import factories as f

FULL = RunOptions(is_full=True)
TO, FROM = Direction.to_crm, Direction.from_crm


async def _items_synced(session: AsyncSession, sessionmaker: SessionMaker,
                        crm: DataverseClient, *nos: str) -> None:  # fmt: skip
    await f.add(session, f.unit("PCS"))
    await f.add(session, *(f.item(no) for no in nos))
    await session.commit()
    await run_mapping(sessionmaker, crm, mapping_name="UNIT OF MEASURE", options=FULL)
    await run_mapping(sessionmaker, crm, mapping_name="ITEM-PRODUCT", options=FULL)


async def _item(session: AsyncSession, no: str) -> erp.Item:
    session.expire_all()
    return (await session.exec(select(erp.Item).where(erp.Item.no == no))).one()


def _product(sandbox: RunningSandbox, no: str) -> dict[str, Any]:
    return next(p for p in sandbox.state.rows("products") if p["productnumber"] == no)


async def test_no_change_is_unchanged_and_an_erp_change_is_sent_once(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    crm: DataverseClient, setup: ConnectionSetup,
) -> None:  # fmt: skip
    await _items_synced(session, sessionmaker, crm, "1000", "1001")
    idle = await run_mapping(sessionmaker, crm, mapping_name="ITEM-PRODUCT")
    assert idle.activity == 0  # the sync's own writes are neither resent nor read back
    item = await _item(session, "1000")
    item.unit_price = Decimal("99.25")
    await session.commit()
    before = sandbox.state.counters.snapshot()
    changed = await run_mapping(sessionmaker, crm, mapping_name="ITEM-PRODUCT")
    assert changed.counters[TO].modified == 1
    assert changed.counters[FROM].modified == 0
    assert _product(sandbox, "1000")["price"] == 99.25
    price_items = [i for i in sandbox.state.rows("productpricelevels")
                   if i["_productid_value"] == _product(sandbox, "1000")["productid"]]  # fmt: skip
    assert [i["amount"] for i in price_items] == [99.25]  # the price list item follows
    again = await run_mapping(sessionmaker, crm, mapping_name="ITEM-PRODUCT")
    assert again.activity == 0
    assert sandbox.state.counters.snapshot() != before
    jobs = (await session.exec(select(IntegrationSynchJob))).all()
    assert {j.direction for j in jobs if j.mapping_name == "ITEM-PRODUCT"} == {TO, FROM}
    assert all(j.finished_at is not None for j in jobs)


async def test_missing_dependency_fails_then_skips_then_restores(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    crm: DataverseClient, setup: ConnectionSetup,
) -> None:  # fmt: skip
    await f.add(session, f.unit("BOX"))
    await f.add(session, f.item("2000", base_unit_of_measure="BOX"))
    await session.commit()
    first = await run_mapping(sessionmaker, crm, mapping_name="ITEM-PRODUCT", options=FULL)
    assert first.counters[TO].failed == 1
    errors = (await session.exec(select(IntegrationSynchJobError))).all()
    assert "unit of measure BOX is not coupled" in errors[0].message
    assert "item 2000" in errors[0].message
    second = await run_mapping(sessionmaker, crm, mapping_name="ITEM-PRODUCT")
    assert second.counters[TO].failed == 1  # failed records are retried by the next run
    session.expire_all()
    coupling = (await session.exec(select(IntegrationRecord))).one()
    assert coupling.skipped  # the same error twice
    third = await run_mapping(sessionmaker, crm, mapping_name="ITEM-PRODUCT")
    assert third.counters[TO].failed == 0
    await records.restore_skipped(session, mapping_name="ITEM-PRODUCT")
    await session.commit()
    await run_mapping(sessionmaker, crm, mapping_name="UNIT OF MEASURE", options=FULL)
    fixed = await run_mapping(sessionmaker, crm, mapping_name="ITEM-PRODUCT")
    assert fixed.counters[TO].inserted == 1
    assert _product(sandbox, "2000")["productid"] == str(coupling.crm_id)  # the reserved id
    assert sandbox.state.count("products") == 1


async def test_blocked_item_retires_its_product(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    crm: DataverseClient, setup: ConnectionSetup,
) -> None:  # fmt: skip
    await _items_synced(session, sessionmaker, crm, "3000")
    item = await _item(session, "3000")
    item.blocked = True
    await session.commit()
    result = await run_mapping(sessionmaker, crm, mapping_name="ITEM-PRODUCT")
    assert result.counters[TO].modified == 1
    assert (_product(sandbox, "3000")["statecode"], _product(sandbox, "3000")["statuscode"]) == (
        1,
        2,
    )


async def test_crm_edit_flows_back_and_conflicts_follow_the_resolution(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    crm: DataverseClient, setup: ConnectionSetup,
) -> None:  # fmt: skip
    await _items_synced(session, sessionmaker, crm, "4000")
    product = _product(sandbox, "4000")
    await f.crm_user_edit(sandbox, "products", product["productid"], name="Renamed in CRM")
    back = await run_mapping(sessionmaker, crm, mapping_name="ITEM-PRODUCT")
    assert back.counters[FROM].modified == 1
    assert (await _item(session, "4000")).description == "Renamed in CRM"
    assert (await run_mapping(sessionmaker, crm, mapping_name="ITEM-PRODUCT")).activity == 0

    # Both sides change the bidirectional name: with no resolution, both directions fail.
    item = await _item(session, "4000")
    item.description = "ERP name"
    await session.commit()
    await f.crm_user_edit(sandbox, "products", product["productid"], name="CRM name")
    conflict = await run_mapping(sessionmaker, crm, mapping_name="ITEM-PRODUCT")
    assert conflict.counters[TO].failed == 1
    messages = [e.message for e in (await session.exec(select(IntegrationSynchJobError))).all()]
    assert any("description field on the item table" in m for m in messages)

    # CRM wins: ERP->CRM skips, CRM->ERP applies.
    await session.exec(update(IntegrationTableMapping).where(
        col(IntegrationTableMapping.name) == "ITEM-PRODUCT").values(
        update_conflict_resolution=UpdateConflictResolution.get_update_from_crm))  # fmt: skip
    await session.commit()
    resolved = await run_mapping(sessionmaker, crm, mapping_name="ITEM-PRODUCT")
    assert resolved.counters[TO].skipped == 1
    assert resolved.counters[FROM].modified == 1
    assert (await _item(session, "4000")).description == "CRM name"
    assert _product(sandbox, "4000")["name"] == "CRM name"


async def test_deletion_conflicts(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    crm: DataverseClient, setup: ConnectionSetup,
) -> None:  # fmt: skip
    await _items_synced(session, sessionmaker, crm, "5000")
    await crm.delete("products", _product(sandbox, "5000")["productid"])
    item = await _item(session, "5000")
    item.unit_price = Decimal(1)
    await session.commit()
    failed = await run_mapping(sessionmaker, crm, mapping_name="ITEM-PRODUCT")
    assert failed.counters[TO].failed == 1
    error = (await session.exec(select(IntegrationSynchJobError))).one()
    assert "coupled to a deleted product record" in error.message

    mapping = col(IntegrationTableMapping.name) == "ITEM-PRODUCT"
    restore = DeletionConflictResolution.restore_records
    await session.exec(update(IntegrationTableMapping).where(mapping).values(
        deletion_conflict_resolution=restore))  # fmt: skip
    await session.commit()
    restored = await run_mapping(sessionmaker, crm, mapping_name="ITEM-PRODUCT")
    assert restored.counters[TO].inserted == 1
    assert _product(sandbox, "5000")["price"] == 1

    await crm.delete("products", _product(sandbox, "5000")["productid"])
    remove = DeletionConflictResolution.remove_coupling
    await session.exec(update(IntegrationTableMapping).where(mapping).values(
        deletion_conflict_resolution=remove))  # fmt: skip
    item = await _item(session, "5000")
    item.unit_price = Decimal(2)
    await session.commit()
    removed = await run_mapping(sessionmaker, crm, mapping_name="ITEM-PRODUCT")
    assert removed.counters[TO].uncoupled == 1
    assert (await session.exec(select(IntegrationRecord).where(
        IntegrationRecord.table_name == "item"))).all() == []  # fmt: skip


async def test_a_write_that_commits_after_a_later_one_is_read_not_skipped(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    crm: DataverseClient, setup: ConnectionSetup,
) -> None:  # fmt: skip
    """``modified_at`` is stamped before the commit: a write stamped before another but
    committed after the run that read the other is below the watermark. The ERP overlap
    reads it; the rows of the overlap the sync already has are not counted again."""
    await _items_synced(session, sessionmaker, crm, "1000", "1001")
    item = await _item(session, "1000")
    item.description = "Read first"
    await session.commit()
    first = await run_mapping(sessionmaker, crm, mapping_name="ITEM-PRODUCT")
    assert first.counters[TO].modified == 1
    watermark = (
        await session.exec(
            select(IntegrationTableMapping.erp_modified_watermark).where(
                IntegrationTableMapping.name == "ITEM-PRODUCT"
            )
        )
    ).one()
    assert watermark is not None
    late = watermark - timedelta(milliseconds=5)  # stamped before "1000", which the run read
    await session.exec(
        update(erp.Item)
        .where(col(erp.Item.no) == "1001")
        .values(description="Committed late", modified_at=late)
    )
    await session.commit()
    second = await run_mapping(sessionmaker, crm, mapping_name="ITEM-PRODUCT")
    assert second.counters[TO].modified == 1
    assert second.counters[TO].unchanged == 0  # "1000", read again in the overlap, not counted
    assert _product(sandbox, "1001")["name"] == "Committed late"
