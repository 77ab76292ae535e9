"""The Sales Order Notes job (BC codeunit 5355, every 5 min): notes on coupled orders, both ways.

A note (ERP ``note`` on a ``sales_header``) and a CRM ``annotation`` on the coupled
``salesorder`` are coupled like records are: an ``integration_record`` row with
``table_name`` "note", ``crm_table`` "annotation" (BC's ``CRM Annotation Coupling``),
holding the note's ``modified_at`` and the annotation's ``modifiedon`` as of the last sync.

1. ERP -> CRM: notes on coupled orders that are uncoupled, or changed since their
   coupling's stored ``modified_at``. A new note is first matched to an uncoupled
   annotation of the same order saying the same (a note the auto-create job copied, or a
   run that died before its commit) and coupled; otherwise an annotation is created with
   an id derived from the note (a replay finds it). A changed note updates its annotation.
2. CRM -> ERP: annotations on salesorders (not documents) modified after the entry's synch
   time (minus an overlap), not by the integration user. An uncoupled one on a coupled
   order becomes a note (or is coupled to an uncoupled note saying the same); a coupled
   one changed since its stored ``modifiedon`` updates its note when the text differs.

No echo: the job's own CRM writes carry the integration user and are never read back;
its own ERP writes store the note's ``modified_at`` in the coupling, so they are not sent
back. BC only pushes new ERP notes; this job also pushes edits (the issue asks for both
ways, created and modified). When both sides changed between two runs the ERP side wins
(it is sent first, as BC runs BC -> CRM first). Deleting a note deletes nothing on the
other side (BC neither). Everything a page does commits at once; a run twice changes
nothing the second time.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import as_utc
from app.dataverse import BatchOperation, create_op, update_op
from app.dataverse.errors import DataverseError, DuplicateRecordError, FailureKind, NotFoundError
from app.db import SessionMaker, session_scope
from app.jobs.crm_jobs import (
    CrmJob,
    JobLog,
    last_success_start,
    logged_run,
    open_crm,
    raise_for_crm,
)
from app.jobs.queue import RunResult
from app.models.erp import Note
from app.models.integration import Direction, IntegrationRecord, JobQueueEntry, SynchResult
from app.sales.note_text import (
    annotation_body,
    annotation_id,
    is_same_note,
    new_annotation_body,
    note_values,
)
from app.settings import Settings
from app.sync import log
from app.sync.errors import RetriableSyncError

LOG_NAME = "SALES ORDER NOTES"
NOTE_TABLE, ANNOTATION = "note", "annotation"
ORDER_TABLE, SALESORDER = "sales_header", "salesorder"
PAGE_SIZE = 200
IDS_PER_QUERY = 50
OVERLAP = timedelta(minutes=5)  # CRM rows committed late with an earlier modifiedon
ANNOTATION_FIELDS = ("annotationid", "subject", "notetext", "modifiedon", "_objectid_value")


def crm_time(value: str | None) -> datetime | None:
    return as_utc(datetime.fromisoformat(value.replace("Z", "+00:00"))) if value else None


def is_crm_changed(coupling: IntegrationRecord, annotation: dict[str, Any]) -> bool:
    stored, seen = coupling.last_synch_crm_modified_on, crm_time(annotation.get("modifiedon"))
    return stored is None or seen is None or seen > as_utc(stored)


def _couple(
    note: Note,
    crm_id: uuid.UUID,
    job_id: uuid.UUID,
    direction: Direction,
    crm_modified_on: datetime | None,
) -> IntegrationRecord:
    coupling = IntegrationRecord(
        table_name=NOTE_TABLE, integration_id=note.system_id, crm_table=ANNOTATION, crm_id=crm_id
    )
    log.mark_succeeded(
        coupling,
        direction=direction,
        job_id=job_id,
        erp_modified_at=note.modified_at,
        crm_modified_on=crm_modified_on,
    )
    return coupling


# --- ERP -> CRM --------------------------------------------------------------------------


@dataclass
class Outgoing:
    note: Note
    order_id: uuid.UUID  # the coupled CRM salesorder
    coupling: IntegrationRecord | None
    operation: BatchOperation | None = None
    matched: uuid.UUID | None = None  # an existing annotation saying the same


async def _outgoing_page(session: AsyncSession, after_id: int) -> list[Outgoing]:
    order, coupled = aliased(IntegrationRecord), aliased(IntegrationRecord)
    is_changed = sa.or_(
        col(coupled.id).is_(None),
        sa.and_(
            col(coupled.skipped).is_(False),
            sa.or_(
                col(coupled.last_synch_modified_on).is_(None),
                col(Note.modified_at) > col(coupled.last_synch_modified_on),
            ),
        ),
    )
    statement = (
        select(Note, order.crm_id, coupled)
        .join(
            order,
            sa.and_(
                col(order.table_name) == ORDER_TABLE,
                col(order.crm_table) == SALESORDER,
                col(order.integration_id) == col(Note.record_id),
            ),
        )
        .outerjoin(
            coupled,
            sa.and_(
                col(coupled.table_name) == NOTE_TABLE,
                col(coupled.integration_id) == col(Note.system_id),
            ),
        )
        .where(col(Note.record_table) == ORDER_TABLE, col(Note.id) > after_id, is_changed)
        .order_by(col(Note.id))
        .limit(PAGE_SIZE)
    )
    return [Outgoing(n, o, c) for n, o, c in (await session.exec(statement)).all()]


async def _annotations_of(job: CrmJob, order_ids: Sequence[uuid.UUID]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    unique = sorted(set(order_ids), key=str)
    for start in range(0, len(unique), IDS_PER_QUERY):
        ids = " or ".join(f"_objectid_value eq {i}" for i in unique[start : start + IDS_PER_QUERY])
        try:
            async for row in job.crm.query(
                "annotations", select=ANNOTATION_FIELDS, filter=f"isdocument eq false and ({ids})"
            ):
                found.append(row)
        except DataverseError as exc:
            raise_for_crm(exc, action="read the notes of the CRM orders")
    return found


async def _coupled_crm_ids(session: AsyncSession, crm_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    statement = select(IntegrationRecord.crm_id).where(
        col(IntegrationRecord.table_name) == NOTE_TABLE,
        col(IntegrationRecord.crm_id).in_(list(crm_ids)),
    )
    return set(await session.exec(statement))


async def _plan_outgoing(sessionmaker: SessionMaker, job: CrmJob, page: list[Outgoing]) -> None:
    new = [item for item in page if item.coupling is None]
    candidates = await _annotations_of(job, [item.order_id for item in new]) if new else []
    ids = [uuid.UUID(row["annotationid"]) for row in candidates]
    async with sessionmaker() as session:
        taken = await _coupled_crm_ids(session, ids) if ids else set()
    for item in page:
        note = item.note
        if item.coupling is not None:
            body = annotation_body(note.description, note.text)
            item.operation = update_op("annotations", item.coupling.crm_id, body)
            continue
        for row in candidates:
            row_id = uuid.UUID(row["annotationid"])
            if (
                row_id not in taken
                and str(item.order_id) == str(row.get("_objectid_value"))
                and is_same_note(note.description, note.text, row)
            ):
                item.matched = row_id
                taken.add(row_id)
                break
        if item.matched is None:
            body = new_annotation_body(note.description, note.text, item.order_id)
            item.operation = create_op("annotations", body, id=annotation_id(note.system_id))


async def _record_outgoing(
    session: AsyncSession, joblog: JobLog, page: list[Outgoing], results: dict[int, Any]
) -> bool:
    counters, is_waiting = log.Counters(), False
    for item in page:
        note, result = item.note, results.get(item.note.id or 0)
        if item.matched is not None:
            session.add(_couple(note, item.matched, joblog.job_id, Direction.to_crm, None))
            counters.coupled += 1
        elif result is not None and (
            result.is_ok or isinstance(result.error, DuplicateRecordError)
        ):
            if item.coupling is None:
                crm_id = annotation_id(note.system_id)
                session.add(_couple(note, crm_id, joblog.job_id, Direction.to_crm, None))
                counters.inserted += 1
            else:
                log.mark_succeeded(
                    item.coupling,
                    direction=Direction.to_crm,
                    job_id=joblog.job_id,
                    erp_modified_at=note.modified_at,
                    crm_modified_on=None,
                )
                session.add(item.coupling)
                counters.modified += 1
        elif (
            result is not None
            and result.error is not None
            and (result.error.failure_kind != FailureKind.transient)
        ):
            await _fail_outgoing(session, joblog, item, result.error)
            counters.failed += 1
        else:
            is_waiting = True
    await joblog.add(session, counters)
    return is_waiting


async def _fail_outgoing(
    session: AsyncSession, joblog: JobLog, item: Outgoing, error: DataverseError
) -> None:
    message = f"Could not write the note to the CRM: {error.message}"
    crm_id = item.coupling.crm_id if item.coupling else annotation_id(item.note.system_id)
    joblog.error(
        session,
        log.RecordError(NOTE_TABLE, str(item.note.system_id), ANNOTATION, str(crm_id), message),
    )
    if item.coupling is None:
        return
    if isinstance(error, NotFoundError):
        item.coupling.skipped = True  # deleted in the CRM: not recreated behind a person's back
        item.coupling.last_synch_crm_result = SynchResult.failure
    else:
        await log.mark_failed(
            session,
            item.coupling,
            direction=Direction.to_crm,
            job_id=joblog.job_id,
            message=message,
        )
    session.add(item.coupling)


async def _send_outgoing(job: CrmJob, page: list[Outgoing]) -> dict[int, Any]:
    sending = [item for item in page if item.operation is not None]
    if not sending:
        return {}
    try:
        answers = await job.crm.batch([item.operation for item in sending if item.operation])
    except DataverseError as exc:
        raise_for_crm(exc, action="send the notes to the CRM")
        raise  # unreachable: raise_for_crm raised
    return {item.note.id or 0: answer for item, answer in zip(sending, answers, strict=True)}


async def push_notes(sessionmaker: SessionMaker, job: CrmJob, joblog: JobLog) -> bool:
    """ERP -> CRM; True when some note must wait for a retry (the CRM was unavailable).

    No transaction stays open while the CRM is called: a page is read, planned and sent,
    then its couplings and counters commit together.
    """
    after_id, is_waiting = 0, False
    while True:
        async with sessionmaker() as session:
            page = await _outgoing_page(session, after_id)
        if not page:
            return is_waiting
        after_id = page[-1].note.id or after_id
        await _plan_outgoing(sessionmaker, job, page)
        results = await _send_outgoing(job, page)
        async with session_scope(sessionmaker) as session:
            is_waiting = await _record_outgoing(session, joblog, page, results) or is_waiting


# --- CRM -> ERP --------------------------------------------------------------------------


def annotation_filter(integration_user_id: uuid.UUID, since: datetime | None) -> str:
    text = (
        "objecttypecode eq 'salesorder' and isdocument eq false"
        f" and _modifiedby_value ne {integration_user_id}"
    )
    if since is not None:
        text += f" and modifiedon gt {(since - OVERLAP).strftime('%Y-%m-%dT%H:%M:%SZ')}"
    return text


async def _order_headers(
    session: AsyncSession, order_ids: set[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID]:
    """CRM salesorder id -> the coupled ERP sales header's system id."""
    statement = select(IntegrationRecord.crm_id, IntegrationRecord.integration_id).where(
        col(IntegrationRecord.table_name) == ORDER_TABLE,
        col(IntegrationRecord.crm_table) == SALESORDER,
        col(IntegrationRecord.crm_id).in_(list(order_ids)),
    )
    return dict((await session.exec(statement)).all())


async def _note_couplings(
    session: AsyncSession, crm_ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[IntegrationRecord, Note | None]]:
    statement = (
        select(IntegrationRecord, Note)
        .outerjoin(Note, col(Note.system_id) == col(IntegrationRecord.integration_id))
        .where(
            col(IntegrationRecord.table_name) == NOTE_TABLE,
            col(IntegrationRecord.crm_id).in_(crm_ids),
        )
    )
    return {c.crm_id: (c, n) for c, n in (await session.exec(statement)).all()}


async def _uncoupled_same_note(
    session: AsyncSession, header_id: uuid.UUID, values: dict[str, str]
) -> Note | None:
    coupled = select(IntegrationRecord.id).where(
        col(IntegrationRecord.table_name) == NOTE_TABLE,
        col(IntegrationRecord.integration_id) == col(Note.system_id),
    )
    statement = select(Note).where(
        col(Note.record_table) == ORDER_TABLE,
        col(Note.record_id) == header_id,
        col(Note.description) == values["description"],
        col(Note.text) == values["text"],
        ~coupled.exists(),
    )
    return (await session.exec(statement.limit(1))).first()


async def _take_annotation(
    session: AsyncSession,
    joblog: JobLog,
    annotation: dict[str, Any],
    headers: dict[uuid.UUID, uuid.UUID],
    couplings: dict[uuid.UUID, tuple[IntegrationRecord, Note | None]],
    counters: log.Counters,
) -> None:
    crm_id, seen = uuid.UUID(annotation["annotationid"]), crm_time(annotation.get("modifiedon"))
    values = note_values(annotation)
    coupling, note = couplings.get(crm_id, (None, None))
    if coupling is not None:
        if coupling.skipped or note is None or not is_crm_changed(coupling, annotation):
            counters.unchanged += 1
            return
        if (note.description, note.text) != (values["description"], values["text"]):
            note.description, note.text = values["description"], values["text"]
            session.add(note)
            await session.flush()
            counters.modified += 1
        else:
            counters.unchanged += 1
        log.mark_succeeded(
            coupling,
            direction=Direction.from_crm,
            job_id=joblog.job_id,
            erp_modified_at=note.modified_at,
            crm_modified_on=seen,
        )
        session.add(coupling)
        return
    header_id = headers.get(uuid.UUID(str(annotation.get("_objectid_value"))))
    if header_id is None:
        return  # not on a coupled order: not ours
    note = await _uncoupled_same_note(session, header_id, values)
    if note is None:
        note = Note(
            record_table=ORDER_TABLE,
            record_id=header_id,
            description=values["description"],
            text=values["text"],
        )
        session.add(note)
        counters.inserted += 1
    else:
        counters.coupled += 1
    await session.flush()
    session.add(_couple(note, crm_id, joblog.job_id, Direction.from_crm, seen))
    await session.flush()


async def pull_notes(
    sessionmaker: SessionMaker, job: CrmJob, joblog: JobLog, since: datetime | None
) -> None:
    params = {
        "$select": ",".join(ANNOTATION_FIELDS),
        "$filter": annotation_filter(job.integration_user_id, since),
        "$orderby": "modifiedon asc,annotationid asc",
    }
    try:
        async for rows in job.crm.pages("annotations", params=params, page_size=PAGE_SIZE):
            async with session_scope(sessionmaker) as session:
                orders = {
                    uuid.UUID(str(r["_objectid_value"])) for r in rows if r.get("_objectid_value")
                }
                headers = await _order_headers(session, orders) if orders else {}
                couplings = await _note_couplings(
                    session, [uuid.UUID(r["annotationid"]) for r in rows]
                )
                counters = log.Counters()
                for annotation in rows:
                    await _take_annotation(
                        session, joblog, annotation, headers, couplings, counters
                    )
                await joblog.add(session, counters)
    except DataverseError as exc:
        raise_for_crm(exc, action="read the notes of the CRM orders")


async def run(sessionmaker: SessionMaker, entry: JobQueueEntry, settings: Settings) -> RunResult:
    """One run of the notes job: ERP -> CRM, then CRM -> ERP; returns what it changed."""
    async with open_crm(sessionmaker, settings) as job:
        names: dict[str, Any] = {"name": LOG_NAME, "entry_id": entry.id}
        async with logged_run(sessionmaker, direction=Direction.to_crm, **names) as outgoing:
            if await push_notes(sessionmaker, job, outgoing):
                msg = "The CRM did not take some notes (throttled or unavailable)."
                raise RetriableSyncError(msg)
        async with sessionmaker() as session:
            since = await last_success_start(session, name=LOG_NAME, direction=Direction.from_crm)
        async with logged_run(sessionmaker, direction=Direction.from_crm, **names) as incoming:
            await pull_notes(sessionmaker, job, incoming, since)
    return RunResult(changed=outgoing.counters.activity + incoming.counters.activity)
