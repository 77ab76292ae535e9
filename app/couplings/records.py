"""Couplings (``integration_record``): one ERP row (by ``system_id``) <-> one CRM row id.

Couple, uncouple (one, many, all of a mapping), list with filters, restore skipped ones,
and find or remove stale couplings whose ERP row or CRM row no longer exists. A CRM row
already coupled to another existing record of the same table is a conflict; a coupling
left over from a deleted ERP record is replaced. Match-based coupling
lives in ``app.couplings.matching``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import utc_now
from app.dataverse import DataverseClient
from app.dataverse.errors import NotFoundError as CrmNotFoundError
from app.db import current_actor
from app.errors import ConflictError, InvalidInputError, NotFoundError
from app.logs import get_logger
from app.mappings.field_catalog import ERP_MODELS, entity_set_for, primary_key_of
from app.mappings.table_mappings import get_mapping_or_raise
from app.models.integration import IntegrationRecord, IntegrationTableMapping, SynchResult
from app.sync.crm_client import crm_errors

log = get_logger("salesbridge.sync.couplings")

MAX_PAGE_SIZE = 1000
CRM_IDS_PER_QUERY = 50


@dataclass(frozen=True)
class CouplingFilter:
    mapping_name: str | None = None
    table_name: str | None = None
    crm_table: str | None = None
    is_skipped: bool | None = None
    is_failed: bool | None = None
    integration_id: uuid.UUID | None = None
    crm_id: uuid.UUID | None = None


@dataclass
class CoupleResult:
    coupling: IntegrationRecord
    is_new: bool
    replaced_stale: list[str]


@dataclass(frozen=True)
class StaleCoupling:
    coupling: IntegrationRecord
    reason: str  # "erp_record_deleted" | "crm_row_deleted"


def erp_model(table_name: str) -> Any:
    try:
        return ERP_MODELS[table_name]
    except KeyError:
        msg = f"Unknown ERP table {table_name!r}."
        raise InvalidInputError(msg) from None


def record_label(table_name: str, row: Any) -> str:
    """How people know a row: its number or code, else its system id."""
    natural = getattr(row, "no", None) or getattr(row, "code", None)
    return f"{table_name} {natural}" if natural else f"{table_name} {row.system_id}"


async def get_erp_record(session: AsyncSession, table_name: str, system_id: uuid.UUID) -> Any:
    model = erp_model(table_name)
    statement = select(model).where(model.system_id == system_id)
    return (await session.exec(statement)).first()


async def get_erp_record_or_raise(
    session: AsyncSession, mapping_name: str, integration_id: uuid.UUID
) -> Any:
    mapping = await get_mapping_or_raise(session, mapping_name)
    record = await get_erp_record(session, mapping.table_name, integration_id)
    if record is None:
        msg = f"There is no {mapping.table_name} with system id {integration_id}."
        raise NotFoundError(msg)
    return record


async def get_coupling(
    session: AsyncSession, *, table_name: str, integration_id: uuid.UUID
) -> IntegrationRecord | None:
    statement = select(IntegrationRecord).where(
        IntegrationRecord.table_name == table_name,
        IntegrationRecord.integration_id == integration_id,
    )
    return (await session.exec(statement)).first()


async def get_coupling_or_raise(session: AsyncSession, coupling_id: uuid.UUID) -> IntegrationRecord:
    statement = select(IntegrationRecord).where(IntegrationRecord.system_id == coupling_id)
    found = (await session.exec(statement)).first()
    if found is None:
        msg = f"There is no coupling {coupling_id}."
        raise NotFoundError(msg)
    return found


async def get_coupling_by_crm_id(
    session: AsyncSession, *, mapping: IntegrationTableMapping, crm_id: uuid.UUID
) -> IntegrationRecord | None:
    statement = select(IntegrationRecord).where(
        IntegrationRecord.crm_table == mapping.integration_table,
        IntegrationRecord.crm_id == crm_id,
        IntegrationRecord.table_name == mapping.table_name,
    )
    return (await session.exec(statement)).first()


async def assert_crm_row_exists(
    crm: DataverseClient, *, mapping: IntegrationTableMapping, crm_id: uuid.UUID
) -> None:
    entity = mapping.integration_table
    with crm_errors(f"read the CRM {entity} {crm_id}"):
        try:
            await crm.get(entity_set_for(entity), crm_id, select=[primary_key_of(entity)])
        except CrmNotFoundError:
            msg = f"The CRM {entity} {crm_id} does not exist."
            raise NotFoundError(msg) from None


async def _release_crm_row(
    session: AsyncSession, mapping: IntegrationTableMapping, crm_id: uuid.UUID, keep: uuid.UUID
) -> list[str]:
    """Make room for ``crm_id``: a live other coupling is a conflict, a stale one goes."""
    other = await get_coupling_by_crm_id(session, mapping=mapping, crm_id=crm_id)
    if other is None or other.integration_id == keep:
        return []
    holder = await get_erp_record(session, mapping.table_name, other.integration_id)
    if holder is not None:
        msg = (
            f"The CRM {mapping.integration_table} {crm_id} is already coupled to "
            f"{record_label(mapping.table_name, holder)}; uncouple that record first."
        )
        raise ConflictError(msg)
    await session.delete(other)
    await session.flush()
    log.info("stale_coupling_replaced", table=mapping.table_name, crm_id=str(crm_id))
    return [f"removed the coupling of deleted {mapping.table_name} {other.integration_id}"]


async def couple(
    session: AsyncSession,
    *,
    mapping_name: str,
    integration_id: uuid.UUID,
    crm_id: uuid.UUID,
    crm: DataverseClient | None = None,
    should_replace: bool = False,
) -> CoupleResult:
    """Couple an ERP record to a CRM row; with ``crm``, the CRM row must exist."""
    mapping = await get_mapping_or_raise(session, mapping_name)
    record = await get_erp_record_or_raise(session, mapping_name, integration_id)
    current = await get_coupling(
        session, table_name=mapping.table_name, integration_id=integration_id
    )
    if current is not None and current.crm_id == crm_id:
        return CoupleResult(current, is_new=False, replaced_stale=[])
    if current is not None and not should_replace:
        msg = (
            f"{record_label(mapping.table_name, record)} is already coupled to CRM "
            f"{current.crm_table} {current.crm_id}; uncouple it first or ask to replace it."
        )
        raise ConflictError(msg)
    if crm is not None:
        await assert_crm_row_exists(crm, mapping=mapping, crm_id=crm_id)
    notes = await _release_crm_row(session, mapping, crm_id, keep=integration_id)
    if current is not None:
        await session.delete(current)
        await session.flush()
    coupling = IntegrationRecord(
        table_name=mapping.table_name,
        integration_id=integration_id,
        crm_table=mapping.integration_table,
        crm_id=crm_id,
    )
    session.add(coupling)
    await session.flush()
    return CoupleResult(coupling, is_new=True, replaced_stale=notes)


async def uncouple(session: AsyncSession, *, coupling_ids: Sequence[uuid.UUID]) -> int:
    """Remove the given couplings; all must exist, else nothing is removed."""
    wanted = set(coupling_ids)
    statement = select(IntegrationRecord).where(col(IntegrationRecord.system_id).in_(wanted))
    found = list(await session.exec(statement))
    missing = wanted - {row.system_id for row in found}
    if missing:
        shown = ", ".join(sorted(str(m) for m in missing)[:5])
        msg = f"Unknown coupling id(s): {shown}; nothing was uncoupled."
        raise NotFoundError(msg)
    for row in found:
        await session.delete(row)
    await session.flush()
    return len(found)


def _mapping_scope(mapping: IntegrationTableMapping) -> list[Any]:
    return [
        IntegrationRecord.table_name == mapping.table_name,
        IntegrationRecord.crm_table == mapping.integration_table,
    ]


async def uncouple_mapping(session: AsyncSession, *, mapping_name: str) -> int:
    mapping = await get_mapping_or_raise(session, mapping_name)
    statement = delete(IntegrationRecord).where(*_mapping_scope(mapping))
    result = await session.exec(statement)
    return int(result.rowcount or 0)


async def _conditions(session: AsyncSession, filters: CouplingFilter) -> list[Any]:
    conditions: list[Any] = []
    if filters.mapping_name is not None:
        mapping = await get_mapping_or_raise(session, filters.mapping_name)
        conditions.extend(_mapping_scope(mapping))
    for column, value in (
        (IntegrationRecord.table_name, filters.table_name),
        (IntegrationRecord.crm_table, filters.crm_table),
        (IntegrationRecord.skipped, filters.is_skipped),
        (IntegrationRecord.integration_id, filters.integration_id),
        (IntegrationRecord.crm_id, filters.crm_id),
    ):
        if value is not None:
            conditions.append(column == value)
    if filters.is_failed is not None:
        # coalesce: a never-synced direction (NULL) is "not failed", not unknown.
        failed = or_(
            func.coalesce(IntegrationRecord.last_synch_result, "") == SynchResult.failure,
            func.coalesce(IntegrationRecord.last_synch_crm_result, "") == SynchResult.failure,
        )
        conditions.append(failed if filters.is_failed else ~failed)
    return conditions


async def list_couplings(
    session: AsyncSession, *, filters: CouplingFilter, limit: int = 100, offset: int = 0
) -> tuple[list[IntegrationRecord], int]:
    """One page of couplings (oldest first) and the total that match the filters."""
    conditions = await _conditions(session, filters)
    total_statement = select(func.count()).select_from(IntegrationRecord).where(*conditions)
    total = int((await session.exec(total_statement)).one())
    statement = (
        select(IntegrationRecord)
        .where(*conditions)
        .order_by(col(IntegrationRecord.id))
        .offset(offset)
        .limit(min(limit, MAX_PAGE_SIZE))
    )
    return list(await session.exec(statement)), total


async def restore_skipped(
    session: AsyncSession,
    *,
    coupling_ids: Sequence[uuid.UUID] | None = None,
    mapping_name: str | None = None,
) -> int:
    """Un-skip couplings so the next run tries them again (statistics are re-uploaded)."""
    if not coupling_ids and mapping_name is None:
        msg = "Name the couplings to restore (coupling_ids) or a mapping (mapping_name)."
        raise InvalidInputError(msg)
    conditions: list[Any] = [col(IntegrationRecord.skipped).is_(True)]
    if coupling_ids:
        await _assert_all_exist(session, coupling_ids)
        conditions.append(col(IntegrationRecord.system_id).in_(list(coupling_ids)))
    if mapping_name is not None:
        mapping = await get_mapping_or_raise(session, mapping_name)
        conditions.extend(_mapping_scope(mapping))
    statement = (
        update(IntegrationRecord)
        .where(*conditions)
        .values(
            skipped=False,
            statistics_uploaded=False,
            modified_at=utc_now(),
            modified_by=current_actor.get(),
        )
    )
    result = await session.exec(statement)
    return int(result.rowcount or 0)


async def _assert_all_exist(session: AsyncSession, coupling_ids: Sequence[uuid.UUID]) -> None:
    wanted = set(coupling_ids)
    statement = select(IntegrationRecord.system_id).where(
        col(IntegrationRecord.system_id).in_(wanted)
    )
    found: set[uuid.UUID] = set(await session.exec(statement))
    missing = wanted - found
    if missing:
        shown = ", ".join(sorted(str(m) for m in missing)[:5])
        msg = f"Unknown coupling id(s): {shown}; nothing was changed."
        raise NotFoundError(msg)


async def _erp_orphans(
    session: AsyncSession, mapping: IntegrationTableMapping
) -> list[IntegrationRecord]:
    model = erp_model(mapping.table_name)
    exists = select(model.id).where(model.system_id == IntegrationRecord.integration_id)
    statement = (
        select(IntegrationRecord)
        .where(*_mapping_scope(mapping), ~exists.exists())
        .order_by(col(IntegrationRecord.id))
    )
    return list(await session.exec(statement))


async def _crm_orphans(
    session: AsyncSession, crm: DataverseClient, mapping: IntegrationTableMapping
) -> list[IntegrationRecord]:
    """Couplings whose CRM row is gone, asked in chunks of ids (``pk eq a or pk eq b``)."""
    entity = mapping.integration_table
    pk = primary_key_of(entity)
    statement = (
        select(IntegrationRecord)
        .where(*_mapping_scope(mapping))
        .order_by(col(IntegrationRecord.id))
    )
    rows = list(await session.exec(statement))
    gone: list[IntegrationRecord] = []
    for start in range(0, len(rows), CRM_IDS_PER_QUERY):
        chunk = rows[start : start + CRM_IDS_PER_QUERY]
        text = " or ".join(f"{pk} eq {row.crm_id}" for row in chunk)
        with crm_errors(f"check the CRM {entity} rows"):
            found = {
                uuid.UUID(str(record[pk]))
                async for record in crm.query(entity_set_for(entity), select=[pk], filter=text)
            }
        gone.extend(row for row in chunk if row.crm_id not in found)
    return gone


async def find_stale_couplings(
    session: AsyncSession, *, mapping_name: str, crm: DataverseClient | None = None
) -> list[StaleCoupling]:
    """Couplings whose ERP record was deleted, and (with ``crm``) whose CRM row was."""
    mapping = await get_mapping_or_raise(session, mapping_name)
    stale = [StaleCoupling(r, "erp_record_deleted") for r in await _erp_orphans(session, mapping)]
    if crm is not None:
        seen = {item.coupling.system_id for item in stale}
        stale.extend(
            StaleCoupling(r, "crm_row_deleted")
            for r in await _crm_orphans(session, crm, mapping)
            if r.system_id not in seen
        )
    return stale


async def remove_stale_couplings(
    session: AsyncSession, *, mapping_name: str, crm: DataverseClient | None = None
) -> list[StaleCoupling]:
    stale = await find_stale_couplings(session, mapping_name=mapping_name, crm=crm)
    for item in stale:
        await session.delete(item.coupling)
    await session.flush()
    log.info("stale_couplings_removed", mapping=mapping_name, count=len(stale))
    return stale
