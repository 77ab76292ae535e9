"""CRM -> ERP runs that read only the notified records (app/sync/notified_changes.py),
against the sandbox: by id when the notifications are few and name their records, the
watermark pass otherwise, rows consumed once, a repeated run changing nothing."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.catalog import run_mapping
from app.clock import as_utc, utc_now
from app.dataverse import DataverseClient
from app.db import SessionMaker
from app.jobs import log_purge
from app.models import erp
from app.models.integration import (
    ConnectionSetup,
    DataverseEntityChange,
    Direction,
    IntegrationTableMapping,
)
from app.sync.notified_changes import MAX_NOTIFIED_RECORDS
from app.sync.sync_pass import RunOptions
from tests.fixtures.sandbox import RunningSandbox
from tests.sync import factories as f

FULL = RunOptions(is_full=True)
FROM = Direction.from_crm
NOTIFIED = RunOptions(use_notifications=True, only_direction=FROM)


def _row(sandbox: RunningSandbox, entity_set: str, key: str, value: str) -> dict[str, Any]:
    return next(r for r in sandbox.state.rows(entity_set) if r[key] == value)


def _change(entity: str, record_id: Any, message: str = "Update") -> DataverseEntityChange:
    return DataverseEntityChange(
        entity_name=entity, record_id=None if record_id is None else uuid.UUID(str(record_id)),
        message=message, delivery_key=str(uuid.uuid4()), received_at=utc_now(),
    )  # fmt: skip


async def _notify(session: AsyncSession, *changes: DataverseEntityChange) -> None:
    session.add_all(changes)
    await session.commit()


async def _changes(session: AsyncSession) -> list[DataverseEntityChange]:
    session.expire_all()
    return list((await session.exec(select(DataverseEntityChange))).all())


async def _mapping(session: AsyncSession, name: str) -> IntegrationTableMapping:
    session.expire_all()
    statement = select(IntegrationTableMapping).where(IntegrationTableMapping.name == name)
    return (await session.exec(statement)).one()


def _crm_reads(sandbox: RunningSandbox, entity_set: str) -> int:
    return int(sandbox.state.counters.snapshot()["by_entity_set"].get(entity_set, 0))


async def _customers_synced(
    session: AsyncSession, sessionmaker: SessionMaker, crm: DataverseClient, *nos: str
) -> None:
    await f.add(session, *(erp.Customer(no=no, name=f"Customer {no}") for no in nos))
    await session.commit()
    await run_mapping(sessionmaker, crm, mapping_name="CUSTOMER", options=FULL)


async def _customer(session: AsyncSession, no: str) -> erp.Customer:
    session.expire_all()
    return (await session.exec(select(erp.Customer).where(erp.Customer.no == no))).one()


async def test_notified_accounts_are_read_by_id_without_moving_the_watermark(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    crm: DataverseClient, setup: ConnectionSetup,
) -> None:  # fmt: skip
    await _customers_synced(session, sessionmaker, crm, "C1", "C2")
    watermark = (await _mapping(session, "CUSTOMER")).crm_modified_watermark
    assert watermark is not None
    c1 = _row(sandbox, "accounts", "name", "Customer C1")["accountid"]
    c2 = _row(sandbox, "accounts", "name", "Customer C2")["accountid"]
    await f.crm_user_edit(sandbox, "accounts", c1, telephone1="+44 1")
    await f.crm_user_edit(sandbox, "accounts", c2, telephone1="+44 2")
    # Only C1's change is notified (C2's notification was lost).
    await _notify(session, _change("account", c1), _change("account", c1))
    reads = _crm_reads(sandbox, "accounts")

    notified = await run_mapping(sessionmaker, crm, mapping_name="CUSTOMER", options=NOTIFIED)

    assert notified.counters[FROM].modified == 1
    assert _crm_reads(sandbox, "accounts") == reads + 1  # one query: the notified id
    assert (await _customer(session, "C1")).phone == "+44 1"
    assert (await _customer(session, "C2")).phone == ""  # not notified: not read
    assert (await _mapping(session, "CUSTOMER")).crm_modified_watermark == watermark
    assert all(c.processed_at is not None for c in await _changes(session))

    # The next watermark pass (nothing pending) brings the change whose notice was lost.
    periodic = await run_mapping(sessionmaker, crm, mapping_name="CUSTOMER", options=NOTIFIED)
    assert periodic.counters[FROM].modified == 1
    assert (await _customer(session, "C2")).phone == "+44 2"
    moved = (await _mapping(session, "CUSTOMER")).crm_modified_watermark
    assert moved is not None and as_utc(moved) > as_utc(watermark)


async def test_a_repeated_run_changes_nothing_twice(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    crm: DataverseClient, setup: ConnectionSetup,
) -> None:  # fmt: skip
    await _customers_synced(session, sessionmaker, crm, "C1")
    c1 = _row(sandbox, "accounts", "name", "Customer C1")["accountid"]
    await f.crm_user_edit(sandbox, "accounts", c1, telephone1="+44 9")
    await _notify(session, _change("account", c1))
    first = await run_mapping(sessionmaker, crm, mapping_name="CUSTOMER", options=NOTIFIED)
    assert first.counters[FROM].modified == 1
    customer = await _customer(session, "C1")
    stamp = customer.modified_at

    # As if the job ran again before its rows were marked (arq may run a job twice).
    await session.exec(update(DataverseEntityChange).values(processed_at=None))
    await session.commit()
    again = await run_mapping(sessionmaker, crm, mapping_name="CUSTOMER", options=NOTIFIED)
    assert again.activity == 0
    assert (await _customer(session, "C1")).modified_at == stamp
    assert all(c.processed_at is not None for c in await _changes(session))


async def test_too_many_notifications_or_one_without_a_record_take_the_watermark_pass(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    crm: DataverseClient, setup: ConnectionSetup,
) -> None:  # fmt: skip
    await _customers_synced(session, sessionmaker, crm, "C1", "C2")
    c1 = _row(sandbox, "accounts", "name", "Customer C1")["accountid"]
    c2 = _row(sandbox, "accounts", "name", "Customer C2")["accountid"]
    watermark = (await _mapping(session, "CUSTOMER")).crm_modified_watermark

    # More records than a notified pass reads: C2, not notified, comes too.
    await f.crm_user_edit(sandbox, "accounts", c1, telephone1="+44 11")
    await f.crm_user_edit(sandbox, "accounts", c2, telephone1="+44 22")
    others = [_change("account", uuid.uuid4()) for _ in range(MAX_NOTIFIED_RECORDS)]
    await _notify(session, _change("account", c1), *others)
    many = await run_mapping(sessionmaker, crm, mapping_name="CUSTOMER", options=NOTIFIED)
    assert many.counters[FROM].modified == 2
    assert (await _customer(session, "C2")).phone == "+44 22"
    moved = (await _mapping(session, "CUSTOMER")).crm_modified_watermark
    assert moved is not None and watermark is not None and as_utc(moved) > as_utc(watermark)
    assert all(c.processed_at is not None for c in await _changes(session))

    # A row from before record ids were stored names no record: the watermark pass too.
    await f.crm_user_edit(sandbox, "accounts", c2, telephone1="+44 33")
    await _notify(session, _change("account", c1), _change("account", None))
    blind = await run_mapping(sessionmaker, crm, mapping_name="CUSTOMER", options=NOTIFIED)
    assert blind.counters[FROM].modified == 1
    assert (await _customer(session, "C2")).phone == "+44 33"
    assert all(c.processed_at is not None for c in await _changes(session))


async def test_the_watermark_pass_still_runs_once_per_period(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    crm: DataverseClient, setup: ConnectionSetup,
) -> None:  # fmt: skip
    await _customers_synced(session, sessionmaker, crm, "C1", "C2")
    c1 = _row(sandbox, "accounts", "name", "Customer C1")["accountid"]
    c2 = _row(sandbox, "accounts", "name", "Customer C2")["accountid"]
    await f.crm_user_edit(sandbox, "accounts", c1, telephone1="+44 5")
    await f.crm_user_edit(sandbox, "accounts", c2, telephone1="+44 6")
    await _notify(session, _change("account", c1))
    due = RunOptions(use_notifications=True, only_direction=FROM,
                     watermark_pass_after=timedelta(0))  # fmt: skip
    result = await run_mapping(sessionmaker, crm, mapping_name="CUSTOMER", options=due)
    assert result.counters[FROM].modified == 2  # the watermark pass: both
    assert all(c.processed_at is not None for c in await _changes(session))


async def test_deleted_records_and_delete_notifications_are_skipped(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    crm: DataverseClient, setup: ConnectionSetup,
) -> None:  # fmt: skip
    await _customers_synced(session, sessionmaker, crm, "C1", "C2")
    c1 = _row(sandbox, "accounts", "name", "Customer C1")["accountid"]
    c2 = _row(sandbox, "accounts", "name", "Customer C2")["accountid"]
    await f.crm_user_edit(sandbox, "accounts", c1, telephone1="+44 7")
    gone = uuid.uuid4()  # created and deleted before the run read it
    await _notify(
        session, _change("account", c1), _change("account", gone, "Create"),
        _change("account", gone, "Delete"), _change("account", c2, "Delete"),
    )  # fmt: skip
    result = await run_mapping(sessionmaker, crm, mapping_name="CUSTOMER", options=NOTIFIED)
    counters = result.counters[FROM]
    assert (counters.modified, counters.failed, counters.deleted) == (1, 0, 0)
    assert (await _customer(session, "C2")).name == "Customer C2"  # as the periodic run does
    assert all(c.processed_at is not None for c in await _changes(session))


async def _items_synced(
    session: AsyncSession, sessionmaker: SessionMaker, crm: DataverseClient, *nos: str
) -> None:
    await f.add(session, f.unit("PCS"))
    await f.add(session, *(f.item(no) for no in nos))
    await session.commit()
    await run_mapping(sessionmaker, crm, mapping_name="UNIT OF MEASURE", options=FULL)
    await run_mapping(sessionmaker, crm, mapping_name="ITEM-PRODUCT", options=FULL)
    await run_mapping(sessionmaker, crm, mapping_name="RESOURCE-PRODUCT", options=FULL)


async def test_a_table_two_mappings_read_is_processed_when_both_read_it(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    crm: DataverseClient, setup: ConnectionSetup,
) -> None:  # fmt: skip
    await _items_synced(session, sessionmaker, crm, "1000", "1001")
    p1 = _row(sandbox, "products", "productnumber", "1000")["productid"]
    await f.crm_user_edit(sandbox, "products", p1, name="Renamed in CRM")
    await _notify(session, _change("product", p1))

    items = await run_mapping(sessionmaker, crm, mapping_name="ITEM-PRODUCT", options=NOTIFIED)
    assert items.counters[FROM].modified == 1
    session.expire_all()
    item = (await session.exec(select(erp.Item).where(col(erp.Item.no) == "1000"))).one()
    assert item.description == "Renamed in CRM"
    # RESOURCE-PRODUCT reads products too and has not yet: the row waits for it.
    assert [c.processed_at for c in await _changes(session)] == [None]
    again = await run_mapping(sessionmaker, crm, mapping_name="ITEM-PRODUCT", options=NOTIFIED)
    assert again.activity == 0  # consumed by ITEM-PRODUCT: not read by id again

    resources = await run_mapping(
        sessionmaker, crm, mapping_name="RESOURCE-PRODUCT", options=NOTIFIED
    )
    assert resources.activity == 0  # an item's product is outside its table filter
    assert all(c.processed_at is not None for c in await _changes(session))


async def test_the_log_purge_deletes_old_processed_notifications_only(
    session: AsyncSession, sessionmaker: SessionMaker
) -> None:
    now = utc_now()
    old, recent, waiting = (_change("account", uuid.uuid4()) for _ in range(3))
    old.processed_at = now - timedelta(days=40)
    recent.processed_at = now - timedelta(days=1)
    waiting.received_at = now - timedelta(days=40)  # never read: kept, whatever its age
    await _notify(session, old, recent, waiting)
    parameters = log_purge.PurgeParameters(older_than_days=30, batch_size=1)
    await log_purge.purge_sync_log(sessionmaker, parameters=parameters, now=now)
    kept = {c.delivery_key for c in await _changes(session)}
    assert kept == {recent.delivery_key, waiting.delivery_key}
