"""The Sales Order Status job (BC codeunit 5352, every 7 min): ``crm_post_buffer`` -> CRM.

Each unprocessed buffer row (``app.erp.order_events``) becomes one CRM write:

- released / shipped / invoiced: a ``post`` regarding the coupled salesorder, "The order
  status has changed to Released." / "A shipment has been created for the order." /
  "An invoice has been created for the order." (BC's texts);
- posted (a customer row): a ``post`` regarding the coupled account, with the row's message;
- order_invoiced: the salesorder to statecode 4 Invoiced / statuscode 100003 Invoiced;
- order_deleted: the salesorder to statecode 0 Active / statuscode 2 Pending with
  ``lastbackofficesubmit`` cleared, so it can be submitted again.

Posts are auto posts (``source`` 1) of type Status (7), as BC's ``TryCreatePost`` writes
them, bound with ``regardingobjectid_<entity>@odata.bind`` (a post's regarding lookup is
polymorphic). A row whose order or customer is no longer coupled, or whose CRM row is
gone, is dropped (processed, nothing written), as BC drops it.

Idempotent: rows are read a page at a time, written in one ``$batch`` and marked
processed in one commit. A run that dies between the two writes again next time; a post's
id is derived from its buffer row (uuid5), so the replay finds its post already there
(duplicate key = done) and state changes are the same PATCH again. A record-level CRM
refusal is logged and the row processed (BC logs and deletes it); a passing failure
(throttled, unreachable) leaves the row for the next run and fails this one, to retry.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import utc_now
from app.dataverse import BatchOperation, BatchResult, bind, create_op, update_op
from app.dataverse.entities import primary_key_for
from app.dataverse.errors import DataverseError, DuplicateRecordError, FailureKind
from app.db import SessionMaker, session_scope
from app.erp.order_events import CRM_ORDER_TABLE, CUSTOMER_TABLE, ORDER_TABLE
from app.jobs.crm_jobs import CrmJob, JobLog, logged_run, open_crm, raise_for_crm
from app.jobs.queue import RunResult
from app.logs import get_logger
from app.models.integration import (
    CrmPostBuffer,
    CrmPostEvent,
    Direction,
    IntegrationRecord,
    JobQueueEntry,
)
from app.settings import Settings
from app.sync import log
from app.sync.errors import RetriableSyncError

logger = get_logger("salesbridge.sync.order_status")


LOG_NAME = "SALES ORDER STATUS"
PAGE_SIZE = 200
IDS_PER_QUERY = 50
POST_SOURCE_AUTO = 1  # post.source: 1 Auto Post
POST_TYPE_STATUS = 7  # post.type: 7 Status
INVOICED = {"statecode": 4, "statuscode": 100003}  # salesorder Invoiced / Invoiced
RESUBMITTABLE = {"statecode": 0, "statuscode": 2, "lastbackofficesubmit": None}  # Active/Pending
POST_TEXTS = {
    CrmPostEvent.released: "The order status has changed to Released.",
    CrmPostEvent.shipped: "A shipment has been created for the order.",
    CrmPostEvent.invoiced: "An invoice has been created for the order.",
}
_POST_NAMESPACE = uuid.UUID("2f6c5d0e-8a7b-4c1d-9e3f-5b6a7c8d9e01")
# ERP table of a buffer row -> (coupled CRM entity, its entity set)
_TARGETS = {ORDER_TABLE: ("salesorder", "salesorders"), CUSTOMER_TABLE: ("account", "accounts")}


@dataclass
class Planned:
    """One buffer row and what it becomes in the CRM (no operation: dropped)."""

    row: CrmPostBuffer
    entity_set: str = ""
    crm_id: uuid.UUID | None = None
    operation: BatchOperation | None = None


def post_id(row: CrmPostBuffer) -> uuid.UUID:
    return uuid.uuid5(_POST_NAMESPACE, str(row.system_id))


def post_body(entity: str, entity_set: str, crm_id: uuid.UUID, text: str) -> dict[str, object]:
    return {
        "text": text[:2000],  # post.text holds 2000 characters
        "source": POST_SOURCE_AUTO,
        "type": POST_TYPE_STATUS,
        f"regardingobjectid_{entity}@odata.bind": bind(entity_set, crm_id),
    }


def plan_operation(planned: Planned, *, entity: str, state: int | None) -> BatchOperation | None:
    """The CRM write for one row whose CRM row exists (``state``: its statecode)."""
    row, crm_id = planned.row, planned.crm_id
    assert crm_id is not None  # noqa: S101 - callers plan only rows with a CRM row
    if row.event == CrmPostEvent.order_invoiced:
        if state == INVOICED["statecode"]:
            return None  # already invoiced: nothing to change
        return update_op(planned.entity_set, crm_id, INVOICED)
    if row.event == CrmPostEvent.order_deleted:
        return update_op(planned.entity_set, crm_id, RESUBMITTABLE)
    text = row.message if row.event == CrmPostEvent.posted else POST_TEXTS.get(row.event, "")
    if not text:
        return None
    body = post_body(entity, planned.entity_set, crm_id, text)
    return create_op("posts", body, id=post_id(row))


async def _pending(session: AsyncSession, after_id: int) -> list[CrmPostBuffer]:
    statement = (
        select(CrmPostBuffer)
        .where(col(CrmPostBuffer.processed_at).is_(None), col(CrmPostBuffer.id) > after_id)
        .order_by(col(CrmPostBuffer.id))
        .limit(PAGE_SIZE)
    )
    return list(await session.exec(statement))


async def _crm_targets(session: AsyncSession, rows: Sequence[CrmPostBuffer]) -> list[Planned]:
    """Each row's CRM entity set and id: from its coupling, or the row itself (deleted order)."""
    erp_ids = [row.record_id for row in rows if row.table_name in _TARGETS]
    statement = select(IntegrationRecord).where(
        col(IntegrationRecord.integration_id).in_(erp_ids),
        sa.or_(
            *(
                sa.and_(
                    col(IntegrationRecord.table_name) == table,
                    col(IntegrationRecord.crm_table) == entity,
                )
                for table, (entity, _) in _TARGETS.items()
            )
        ),
    )
    couplings = {(c.table_name, c.integration_id): c.crm_id for c in await session.exec(statement)}
    planned = []
    for row in rows:
        if row.table_name == CRM_ORDER_TABLE:
            planned.append(Planned(row, "salesorders", row.record_id))
        elif row.table_name in _TARGETS:
            crm_id = couplings.get((row.table_name, row.record_id))
            planned.append(Planned(row, _TARGETS[row.table_name][1], crm_id))
        else:
            planned.append(Planned(row))
    return planned


async def _crm_states(
    job: CrmJob, entity_set: str, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int | None]:
    """The CRM rows that exist, with their statecode (None on tables without one)."""
    pk = primary_key_for(entity_set)
    found: dict[uuid.UUID, int | None] = {}
    unique = sorted(set(ids), key=str)
    for start in range(0, len(unique), IDS_PER_QUERY):
        text = " or ".join(f"{pk} eq {i}" for i in unique[start : start + IDS_PER_QUERY])
        try:
            async for record in job.crm.query(entity_set, select=[pk, "statecode"], filter=text):
                found[uuid.UUID(str(record[pk]))] = record.get("statecode")
        except DataverseError as exc:
            raise_for_crm(exc, action=f"read the CRM {entity_set}")
    return found


async def _plan(job: CrmJob, planned: list[Planned]) -> None:
    for entity, entity_set in _TARGETS.values():
        ids = [p.crm_id for p in planned if p.entity_set == entity_set and p.crm_id is not None]
        states = await _crm_states(job, entity_set, ids) if ids else {}
        for item in planned:
            if item.entity_set == entity_set and item.crm_id in states:
                item.operation = plan_operation(item, entity=entity, state=states[item.crm_id])


def _is_passing(result: BatchResult) -> bool:
    error = result.error
    return error is None or error.failure_kind == FailureKind.transient


async def _send(job: CrmJob, planned: Sequence[Planned]) -> dict[int, BatchResult]:
    """Row id -> the result of its operation (rows without one are not sent)."""
    sending = [p for p in planned if p.operation is not None]
    if not sending:
        return {}
    try:
        results = await job.crm.batch([p.operation for p in sending if p.operation is not None])
    except DataverseError as exc:
        raise_for_crm(exc, action="send the order status changes")
        raise  # unreachable: raise_for_crm raised
    return {p.row.id: r for p, r in zip(sending, results, strict=True) if p.row.id is not None}


async def _record(
    session: AsyncSession,
    joblog: JobLog,
    planned: Sequence[Planned],
    results: dict[int, BatchResult],
) -> bool:
    """Mark rows processed and count them; True when some row must wait for a retry."""
    counters, done, is_waiting = log.Counters(), [], False
    for item in planned:
        result = results.get(item.row.id or 0)
        if result is None:
            counters.skipped += 1  # dropped: no coupling, CRM row gone, or nothing to change
        elif result.is_ok:
            counters.modified += 1
        elif isinstance(result.error, DuplicateRecordError):
            counters.unchanged += 1  # posted by a run that died before marking the row
        elif not result.is_ok and not _is_passing(result):
            counters.failed += 1
            joblog.error(
                session,
                log.RecordError(
                    item.row.table_name,
                    str(item.row.record_id),
                    item.entity_set,
                    str(item.crm_id or ""),
                    f"Could not write the {item.row.event} change: "
                    f"{result.error.message if result.error else result.outcome}",
                ),
            )
        else:
            is_waiting = True
            continue
        done.append(item)
    if done:
        await session.exec(
            update(CrmPostBuffer)
            .where(col(CrmPostBuffer.id).in_([i.row.id for i in done]))
            .values(processed_at=utc_now())
            .execution_options(synchronize_session=False)
        )
    await joblog.add(session, counters)
    return is_waiting


async def run(sessionmaker: SessionMaker, entry: JobQueueEntry, settings: Settings) -> RunResult:
    """One run of the order status job; returns what it changed in the CRM."""
    async with open_crm(sessionmaker, settings) as job:
        async with logged_run(
            sessionmaker, name=LOG_NAME, direction=Direction.to_crm, entry_id=entry.id
        ) as joblog:
            after_id, is_waiting = 0, False
            while True:
                async with sessionmaker() as session:
                    rows = await _pending(session, after_id)
                    if not rows:
                        break
                    planned = await _crm_targets(session, rows)
                after_id = rows[-1].id or after_id
                await _plan(job, [p for p in planned if p.crm_id is not None])
                results = await _send(job, planned)
                async with session_scope(sessionmaker) as session:
                    is_waiting = await _record(session, joblog, planned, results) or is_waiting
            if is_waiting:
                msg = "The CRM did not take some order status changes (throttled or unavailable)."
                raise RetriableSyncError(msg)
    logger.info("order_status_sent", **{k: v for k, v in vars(joblog.counters).items() if v})
    return RunResult(changed=joblog.counters.modified)
