"""Records as an administrator looks at them: an ERP row with its coupling and sync state,
a CRM row found by name, and the action a failed record needs.

Pages are keyset pages (``id`` of the ERP table), each one a single query with the
coupling joined in; the sync log's errors get their couplings and record labels in one
query per page, never one per row.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.couplings.records import erp_model, record_label
from app.dataverse import DataverseClient
from app.dataverse.addressing import odata_literal
from app.errors import NotFoundError
from app.mappings.field_catalog import crm_fields, entity_set_for, primary_key_of
from app.mappings.table_mappings import get_mapping_or_raise
from app.models.integration import (
    FAILED_COUPLING,
    IntegrationRecord,
    IntegrationSynchJobError,
    IntegrationTableMapping,
    SynchResult,
)
from app.sync.crm_client import crm_errors

MAX_PAGE_SIZE = 200
MAX_CRM_RESULTS = 20
_SEARCHED_COLUMNS = ("no", "code", "description", "name")
_CRM_NAMES = ("fullname", "name", "currencyname", "productnumber", "accountnumber")


@dataclass(frozen=True)
class RecordRow:
    id: int
    system_id: uuid.UUID
    label: str
    name: str
    coupling: IntegrationRecord | None

    @property
    def state(self) -> str:
        """uncoupled | skipped | failed | synchronized | coupled (never synchronized yet)."""
        coupling = self.coupling
        if coupling is None:
            return "uncoupled"
        if coupling.skipped:
            return "skipped"
        results = (coupling.last_synch_result, coupling.last_synch_crm_result)
        if SynchResult.failure in results:
            return "failed"
        if SynchResult.success in results:
            return "synchronized"
        return "coupled"


@dataclass(frozen=True)
class RecordsPage:
    mapping: IntegrationTableMapping
    rows: list[RecordRow]
    next_after: int | None


def _name_of(row: Any) -> str:
    return str(getattr(row, "description", None) or getattr(row, "name", None) or "")


async def browse_records(
    session: AsyncSession,
    *,
    mapping_name: str,
    search: str = "",
    state: str = "",
    after: int | None = None,
    limit: int = 50,
) -> RecordsPage:
    """A mapping's ERP records with their couplings, in id order after ``after``."""
    mapping = await get_mapping_or_raise(session, mapping_name)
    model = erp_model(mapping.table_name)
    coupled = sa.and_(
        col(IntegrationRecord.table_name) == mapping.table_name,
        col(IntegrationRecord.integration_id) == model.system_id,
    )
    statement = select(model, IntegrationRecord).outerjoin(IntegrationRecord, coupled)
    if search:
        dialect = session.get_bind().dialect.name
        statement = statement.where(_search_clause(model, search, dialect))
    statement = _state_filter(statement, state)
    if after is not None:
        statement = statement.where(model.id > after)
    size = min(limit, MAX_PAGE_SIZE)
    found = list(await session.exec(statement.order_by(model.id).limit(size + 1)))
    rows = [
        RecordRow(row.id, row.system_id, record_label(mapping.table_name, row), _name_of(row), c)
        for row, c in found[:size]
    ]
    return RecordsPage(mapping, rows, rows[-1].id if len(found) > size else None)


async def record_row(
    session: AsyncSession, *, mapping: IntegrationTableMapping, integration_id: uuid.UUID
) -> RecordRow:
    """One ERP record of the mapping with its coupling."""
    model = erp_model(mapping.table_name)
    coupled = sa.and_(
        col(IntegrationRecord.table_name) == mapping.table_name,
        col(IntegrationRecord.integration_id) == model.system_id,
    )
    statement = (
        select(model, IntegrationRecord)
        .outerjoin(IntegrationRecord, coupled)
        .where(model.system_id == integration_id)
    )
    found = (await session.exec(statement)).first()
    if found is None:
        msg = f"There is no {mapping.table_name} with system id {integration_id}."
        raise NotFoundError(msg)
    row, coupling = found
    label = record_label(mapping.table_name, row)
    return RecordRow(row.id, row.system_id, label, _name_of(row), coupling)


def _search_clause(model: Any, search: str, dialect: str) -> Any:
    """Any case: SQLite's LIKE ignores ASCII case by itself (ILIKE would wrap both sides in
    lower() and cost three times as much per row); PostgreSQL needs ILIKE."""
    escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    table = model.__table__
    columns = [table.c[name] for name in _SEARCHED_COLUMNS if name in table.c]
    pattern = f"%{escaped}%"
    if dialect == "sqlite":
        return or_(*(column.like(pattern, escape="\\") for column in columns))
    return or_(*(column.ilike(pattern, escape="\\") for column in columns))


def _state_filter(statement: Any, state: str) -> Any:
    """Skipped and failed use the partial indexes' own conditions, so the few such rows
    are found from the index instead of probing every ERP row's coupling."""
    record = IntegrationRecord
    if state == "uncoupled":
        return statement.where(col(record.id).is_(None))
    if state == "coupled":
        return statement.where(col(record.id).is_not(None))
    if state == "skipped":
        return statement.where(sa.column("skipped") == sa.true())
    if state == "failed":
        return statement.where(sa.text(FAILED_COUPLING))
    return statement


async def attention_counts(session: AsyncSession) -> dict[str, tuple[int, int]]:
    """Skipped and failed couplings per ERP table; each count reads only its partial index
    (``ix_coupling_skipped``, ``ix_coupling_failed``), however many couplings there are."""
    conditions: tuple[Any, ...] = (sa.column("skipped") == sa.true(), sa.text(FAILED_COUPLING))
    counts: dict[str, list[int]] = {}
    for index, condition in enumerate(conditions):
        statement = (
            select(IntegrationRecord.table_name, sa.func.count())
            .where(condition)
            .group_by(col(IntegrationRecord.table_name))
        )
        for table, count in await session.exec(statement):
            counts.setdefault(str(table), [0, 0])[index] = int(count)
    return {table: (pair[0], pair[1]) for table, pair in counts.items()}


@dataclass(frozen=True)
class CrmRow:
    crm_id: uuid.UUID
    name: str
    coupled_to: str | None  # the ERP record it is coupled to, if any


def _crm_name_attribute(entity: str) -> str:
    attributes = crm_fields(entity)
    return next((name for name in _CRM_NAMES if name in attributes), primary_key_of(entity))


async def search_crm(
    session: AsyncSession, crm: DataverseClient, *, mapping_name: str, text: str
) -> list[CrmRow]:
    """CRM rows of the mapping's table whose name contains ``text`` (or with that id)."""
    mapping = await get_mapping_or_raise(session, mapping_name)
    entity, pk = mapping.integration_table, primary_key_of(mapping.integration_table)
    name = _crm_name_attribute(entity)
    try:
        wanted = f"{pk} eq {uuid.UUID(text.strip())}"
    except ValueError:
        wanted = f"contains({name},{odata_literal(text.strip())})"
    if mapping.integration_table_filter:
        wanted = f"({wanted}) and ({mapping.integration_table_filter})"
    with crm_errors(f"search the CRM {entity} rows"):
        found = [
            row
            async for row in crm.query(
                entity_set_for(entity), select=sorted({pk, name}), filter=wanted,
                top=MAX_CRM_RESULTS,
            )
        ]  # fmt: skip
    ids = [uuid.UUID(str(row[pk])) for row in found]
    holders = await _coupled_labels(session, mapping, ids)
    return [
        CrmRow(crm_id, str(row.get(name) or ""), holders.get(crm_id))
        for crm_id, row in zip(ids, found, strict=True)
    ]


async def _coupled_labels(
    session: AsyncSession, mapping: IntegrationTableMapping, crm_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, str]:
    if not crm_ids:
        return {}
    model = erp_model(mapping.table_name)
    statement = (
        select(IntegrationRecord.crm_id, model)
        .join(model, col(model.system_id) == col(IntegrationRecord.integration_id))
        .where(
            IntegrationRecord.table_name == mapping.table_name,
            IntegrationRecord.crm_table == mapping.integration_table,
            col(IntegrationRecord.crm_id).in_(list(crm_ids)),
        )
    )
    found = await session.exec(statement)
    return {crm_id: record_label(mapping.table_name, row) for crm_id, row in found}


# --- failed records in the sync log ------------------------------------------------------


@dataclass(frozen=True)
class FailedRecord:
    error: IntegrationSynchJobError
    label: str
    coupling: IntegrationRecord | None
    action: str


def needed_action(error: IntegrationSynchJobError, coupling: IntegrationRecord | None) -> str:
    """What an administrator does about one failed record, in words."""
    if coupling is not None and coupling.skipped:
        return (
            "Skipped: it failed twice the same way. Fix the cause, then restore it "
            "(or synchronize it now) so runs try it again."
        )
    if "is not coupled" in error.message:
        return "Couple or synchronize the record it refers to first; the next run retries it."
    if "does not exist" in error.message or "was deleted" in error.message:
        return "Uncouple it, or restore the missing record on the other side."
    return "Fix the cause the message names; the next run retries it (or synchronize it now)."


def _uuids(error: IntegrationSynchJobError) -> list[uuid.UUID]:
    found = []
    for value in (error.source_id, error.destination_id):
        try:
            found.append(uuid.UUID(value))
        except ValueError:
            continue
    return found


async def failed_records(
    session: AsyncSession,
    *,
    mapping: IntegrationTableMapping,
    errors: Sequence[IntegrationSynchJobError],
) -> list[FailedRecord]:
    """The errors of one page with their record's label and coupling (two queries)."""
    model = erp_model(mapping.table_name)
    keys = {error.id: _uuids(error) for error in errors}
    ids = {value for values in keys.values() for value in values}
    couplings: dict[uuid.UUID, IntegrationRecord] = {}
    rows: dict[uuid.UUID, Any] = {}
    if ids:
        record = IntegrationRecord
        statement = select(record).where(
            record.table_name == mapping.table_name,
            or_(col(record.integration_id).in_(ids), col(record.crm_id).in_(ids)),
        )
        for coupling in await session.exec(statement):
            couplings[coupling.integration_id] = couplings[coupling.crm_id] = coupling
            ids.add(coupling.integration_id)
        for row in await session.exec(select(model).where(col(model.system_id).in_(ids))):
            rows[row.system_id] = row
    found = []
    for error in errors:
        own = keys[error.id]
        found_coupling = next((couplings[k] for k in own if k in couplings), None)
        erp_ids = [found_coupling.integration_id] if found_coupling is not None else own
        row = next((rows[k] for k in erp_ids if k in rows), None)
        label = record_label(mapping.table_name, row) if row is not None else error.source_id
        action = needed_action(error, found_coupling)
        found.append(FailedRecord(error, label, found_coupling, action))
    return found
