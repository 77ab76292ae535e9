"""Match-based coupling (BC's ``CDS Int. Table Couple``).

For each uncoupled ERP row in the mapping's table filter, the field mappings flagged
``use_for_match_based_coupling`` are tried group by group (``match_priority`` ascending):
the CRM is asked for rows whose attributes equal the ERP values (and that pass the
mapping's integration table filter). Text compares case-insensitively unless the field
mapping says otherwise; empty ERP values are ignored. Exactly one CRM row that is not
coupled yet -> couple it. None, or several -> the row stays uncoupled and the reason is
reported and logged as a failed record of a ``coupling`` sync job. What the mapping asks
for next ("create new in case of no match", "synch. after bulk coupling") runs the sync
engine: ``app.couplings.record_sync.after_matching``, called by the REST endpoint.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from itertools import groupby
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import utc_now
from app.couplings.records import erp_model, get_coupling_by_crm_id, record_label
from app.dataverse import DataverseClient
from app.dataverse.addressing import odata_literal
from app.errors import InvalidInputError
from app.logs import get_logger
from app.mappings.field_catalog import SQL_TYPES, entity_set_for, erp_fields, primary_key_of
from app.mappings.table_mappings import get_mapping_or_raise
from app.models.integration import (
    FieldMappingStatus,
    IntegrationFieldMapping,
    IntegrationRecord,
    IntegrationSynchJob,
    IntegrationSynchJobError,
    IntegrationTableMapping,
    SynchJobType,
)
from app.odata.filters import compile_filter
from app.sync.crm_client import crm_errors

log = get_logger("salesbridge.sync.matching")

MAX_RECORDS_PER_CALL = 1000
CANDIDATES_PER_QUERY = 10  # enough to tell one match from several after post-filtering


class MatchOutcome(StrEnum):
    coupled = "coupled"
    no_match = "no_match"
    multiple_matches = "multiple_matches"
    no_match_values = "no_match_values"


@dataclass
class RecordMatch:
    integration_id: uuid.UUID
    label: str
    outcome: MatchOutcome
    crm_id: uuid.UUID | None = None
    message: str = ""


@dataclass
class MatchReport:
    mapping_name: str
    job_id: uuid.UUID
    records: list[RecordMatch] = field(default_factory=list)
    has_more: bool = False

    def count(self, outcome: MatchOutcome) -> int:
        return sum(1 for record in self.records if record.outcome == outcome)


async def _match_groups(
    session: AsyncSession, mapping: IntegrationTableMapping
) -> list[list[IntegrationFieldMapping]]:
    statement = (
        select(IntegrationFieldMapping)
        .where(
            IntegrationFieldMapping.mapping_name == mapping.name,
            col(IntegrationFieldMapping.use_for_match_based_coupling).is_(True),
            IntegrationFieldMapping.status == FieldMappingStatus.enabled,
            IntegrationFieldMapping.field != "",
            IntegrationFieldMapping.integration_field != "",
        )
        .order_by(col(IntegrationFieldMapping.match_priority), col(IntegrationFieldMapping.id))
    )
    rows = list(await session.exec(statement))
    if not rows:
        msg = (
            f"The mapping {mapping.name} has no enabled field mapping flagged for match-based "
            "coupling: flag one (use_for_match_based_coupling) first."
        )
        raise InvalidInputError(msg)
    return [list(group) for _, group in groupby(rows, key=lambda row: row.match_priority)]


def _erp_query_columns(table: sa.Table, table_name: str) -> dict[str, Any]:
    """Real columns, type-coerced so the filter compiler sees their value types."""
    return {
        name: sa.type_coerce(table.c[name], SQL_TYPES[info.type])
        for name, info in erp_fields(table_name).items()
        if not info.is_computed and info.type in SQL_TYPES
    }


async def _uncoupled_rows(
    session: AsyncSession,
    mapping: IntegrationTableMapping,
    *,
    integration_ids: Sequence[uuid.UUID] | None,
    limit: int,
) -> list[Any]:
    model = erp_model(mapping.table_name)
    coupled = select(IntegrationRecord.id).where(
        IntegrationRecord.table_name == mapping.table_name,
        IntegrationRecord.integration_id == model.system_id,
    )
    statement = select(model).where(~coupled.exists()).order_by(model.id).limit(limit + 1)
    if mapping.table_filter:
        columns = _erp_query_columns(model.__table__, mapping.table_name)
        statement = statement.where(compile_filter(mapping.table_filter, columns))
    if integration_ids is not None:
        statement = statement.where(col(model.system_id).in_(list(integration_ids)))
    return list(await session.exec(statement))


def _literal(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return odata_literal(value)


def _same(erp_value: Any, crm_value: Any, *, case_sensitive: bool) -> bool:
    if crm_value is None:
        return False
    if isinstance(erp_value, str):
        left, right = erp_value.strip(), str(crm_value).strip()
        return left == right if case_sensitive else left.casefold() == right.casefold()
    if isinstance(erp_value, Decimal | int | float) and not isinstance(erp_value, bool):
        try:
            return Decimal(str(erp_value)) == Decimal(str(crm_value))
        except InvalidOperation:
            return False
    return str(erp_value).lower() == str(crm_value).lower()


def _conditions(
    row: Any, group: list[IntegrationFieldMapping]
) -> list[tuple[IntegrationFieldMapping, Any]]:
    found = []
    for field_mapping in group:
        value = getattr(row, field_mapping.field, None)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue  # BC ignores empty values when matching
        found.append((field_mapping, value.strip() if isinstance(value, str) else value))
    return found


async def _candidates(
    crm: DataverseClient,
    mapping: IntegrationTableMapping,
    conditions: list[tuple[IntegrationFieldMapping, Any]],
) -> list[uuid.UUID]:
    entity = mapping.integration_table
    pk = primary_key_of(entity)
    text = " and ".join(f"{fm.integration_field} eq {_literal(value)}" for fm, value in conditions)
    if mapping.integration_table_filter:
        text = f"({text}) and ({mapping.integration_table_filter})"
    attributes = sorted({fm.integration_field for fm, _ in conditions})
    with crm_errors(f"look for matching CRM {entity} rows"):
        rows = [
            row
            async for row in crm.query(
                entity_set_for(entity), select=[pk, *attributes], filter=text,
                top=CANDIDATES_PER_QUERY,
            )
        ]  # fmt: skip
    # Dataverse compares text case-insensitively; case-sensitive fields are checked here.
    return [
        uuid.UUID(str(row[pk]))
        for row in rows
        if all(
            _same(value, row.get(fm.integration_field), case_sensitive=fm.case_sensitive_matching)
            for fm, value in conditions
        )
    ]


async def _find_match(
    session: AsyncSession,
    crm: DataverseClient,
    mapping: IntegrationTableMapping,
    groups: list[list[IntegrationFieldMapping]],
    row: Any,
    *,
    taken: set[uuid.UUID] | frozenset[uuid.UUID] = frozenset(),
) -> RecordMatch:
    """The row's single free CRM match (outcome ``coupled``), or why there is none."""
    label = record_label(mapping.table_name, row)
    saw_several = had_values = False
    for group in groups:
        conditions = _conditions(row, group)
        if not conditions:
            continue
        had_values = True
        free = [
            crm_id
            for crm_id in await _candidates(crm, mapping, conditions)
            if crm_id not in taken
            and await get_coupling_by_crm_id(session, mapping=mapping, crm_id=crm_id) is None
        ]
        if len(free) == 1:
            return RecordMatch(row.system_id, label, MatchOutcome.coupled, free[0])
        saw_several = saw_several or len(free) > 1
    return _unmatched(row.system_id, label, mapping, had_values=had_values, several=saw_several)


async def _match_row(
    session: AsyncSession,
    crm: DataverseClient,
    mapping: IntegrationTableMapping,
    groups: list[list[IntegrationFieldMapping]],
    row: Any,
) -> RecordMatch:
    match = await _find_match(session, crm, mapping, groups, row)
    if match.outcome == MatchOutcome.coupled and match.crm_id is not None:
        session.add(
            IntegrationRecord(
                table_name=mapping.table_name,
                integration_id=row.system_id,
                crm_table=mapping.integration_table,
                crm_id=match.crm_id,
            )
        )
        await session.flush()
    return match


def _unmatched(
    integration_id: uuid.UUID,
    label: str,
    mapping: IntegrationTableMapping,
    *,
    had_values: bool,
    several: bool,
) -> RecordMatch:
    entity = mapping.integration_table
    if not had_values:
        message = f"{label} has no values in the fields used for matching."
        return RecordMatch(integration_id, label, MatchOutcome.no_match_values, message=message)
    if several:
        message = (
            f"Several uncoupled CRM {entity} rows match {label}; couple it by hand or add a "
            "field with a higher match priority to tell them apart."
        )
        return RecordMatch(integration_id, label, MatchOutcome.multiple_matches, message=message)
    message = f"No uncoupled CRM {entity} row matches {label}."
    return RecordMatch(integration_id, label, MatchOutcome.no_match, message=message)


async def _check_requested(
    session: AsyncSession, mapping: IntegrationTableMapping, ids: Sequence[uuid.UUID]
) -> None:
    model = erp_model(mapping.table_name)
    statement = select(model.system_id).where(col(model.system_id).in_(list(ids)))
    found: set[uuid.UUID] = set(await session.exec(statement))
    missing = set(ids) - found
    if missing:
        shown = ", ".join(sorted(str(m) for m in missing)[:5])
        msg = f"There is no {mapping.table_name} with system id {shown}."
        raise InvalidInputError(msg)


async def prepare(session: AsyncSession, *, mapping_name: str) -> None:
    """Check the mapping can be matched before anyone contacts the CRM."""
    await _match_groups(session, await get_mapping_or_raise(session, mapping_name))


async def match_and_couple(
    session: AsyncSession,
    *,
    mapping_name: str,
    crm: DataverseClient,
    integration_ids: Sequence[uuid.UUID] | None = None,
    limit: int = MAX_RECORDS_PER_CALL,
) -> MatchReport:
    """Couple uncoupled ERP rows to their single CRM match; logs a ``coupling`` sync job."""
    mapping = await get_mapping_or_raise(session, mapping_name)
    groups = await _match_groups(session, mapping)
    if integration_ids is not None:
        await _check_requested(session, mapping, integration_ids)
    started_at = utc_now()
    rows = await _uncoupled_rows(
        session, mapping, integration_ids=integration_ids, limit=min(limit, MAX_RECORDS_PER_CALL)
    )
    job = IntegrationSynchJob(
        mapping_name=mapping.name, type=SynchJobType.coupling, direction=mapping.direction,
        started_at=started_at,
    )  # fmt: skip
    report = MatchReport(mapping.name, job.system_id, has_more=len(rows) > limit)
    for row in rows[:limit]:
        report.records.append(await _match_row(session, crm, mapping, groups, row))
    await _log_job(session, job, mapping, report)
    log.info(
        "match_based_coupling",
        mapping=mapping.name,
        coupled=job.coupled,
        failed=job.failed,
    )
    return report


async def _log_job(
    session: AsyncSession,
    job: IntegrationSynchJob,
    mapping: IntegrationTableMapping,
    report: MatchReport,
) -> None:
    failures = [r for r in report.records if r.outcome != MatchOutcome.coupled]
    job.coupled = report.count(MatchOutcome.coupled)
    job.failed = len(failures)
    job.finished_at = utc_now()
    job.message = f"Match-based coupling: {job.coupled} coupled, {job.failed} not matched."
    session.add(job)
    await session.flush()
    for failure in failures:
        session.add(
            IntegrationSynchJobError(
                job_id=job.system_id,
                source_table=mapping.table_name,
                source_id=str(failure.integration_id),
                destination_table=mapping.integration_table,
                message=failure.message,
                at=job.finished_at,
            )
        )
    await session.flush()


async def preview_matches(
    session: AsyncSession,
    *,
    mapping_name: str,
    crm: DataverseClient,
    limit: int = MAX_RECORDS_PER_CALL,
) -> MatchReport:
    """What ``match_and_couple`` would do now, writing nothing (no coupling, no log).

    A CRM row two ERP rows would match goes to the first, as in the real run.
    """
    mapping = await get_mapping_or_raise(session, mapping_name)
    groups = await _match_groups(session, mapping)
    rows = await _uncoupled_rows(
        session, mapping, integration_ids=None, limit=min(limit, MAX_RECORDS_PER_CALL)
    )
    report = MatchReport(mapping.name, uuid.uuid4(), has_more=len(rows) > limit)
    taken: set[uuid.UUID] = set()
    for row in rows[:limit]:
        match = await _find_match(session, crm, mapping, groups, row, taken=taken)
        if match.crm_id is not None:
            taken.add(match.crm_id)
        report.records.append(match)
    return report
