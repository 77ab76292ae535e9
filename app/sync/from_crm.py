"""One CRM -> ERP pass of a mapping, a CRM page at a time.

Candidates: first the CRM rows whose coupling failed last time in this direction (not
skipped), then the rows in the mapping's integration table filter with ``modifiedon``
after the CRM watermark (minus 1 s: Dataverse keeps seconds), oldest first, whoever wrote
them. Whether a row holds a change is decided by its content (``fingerprints``): a row
at the version the sync left it, or whose mapped fields digest as the sync last wrote or
read them, is unchanged, so the sync's own writes (and the integration user's writes to
other fields, such as a statistics link) come back as nothing to do, while a person's
edit under a later write of ours is still seen. Each page is one transaction: ERP rows
written (each in a savepoint, so one refused row fails alone), read again, couplings,
errors, counters and the page's watermark.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import as_utc
from app.dataverse.errors import DataverseError
from app.db import SYNC_ACTOR, session_scope
from app.erp import numbering
from app.logs import get_logger
from app.models.integration import Direction, IntegrationRecord, SynchResult
from app.sync import (
    coupling_state,
    erp_tables,
    field_merge,
    fingerprints,
    log,
    notified_changes,
    transfer,
    watermarks,
)
from app.sync.conflicts import SyncAction, UpdateFacts, decide_missing_destination, decide_update
from app.sync.errors import from_dataverse
from app.sync.transfer import CrmRef
from app.sync.work import FromCrmWork, Settlement

if TYPE_CHECKING:
    from app.sync.sync_pass import SyncPass

logger = get_logger("salesbridge.sync.from_crm")

CRM_IDS_PER_QUERY = 50
NUMBER_PREFIXES = {
    "customer": "CU", "contact": "CT", "item": "IT", "resource": "RS", "opportunity": "OP",
}  # fmt: skip


def _modified_on(record: dict[str, Any]) -> datetime | None:
    value = record.get("modifiedon")
    return as_utc(datetime.fromisoformat(str(value).replace("Z", "+00:00"))) if value else None


def _is_source_changed(work: FromCrmWork) -> bool:
    coupling = work.coupling
    if coupling is None or coupling.last_synch_result == SynchResult.failure:
        return True
    stored, current = coupling.last_synch_crm_modified_on, _modified_on(work.record)
    return stored is None or current is None or current > as_utc(stored)


# --- reading -----------------------------------------------------------------------------


def _filter(run: SyncPass) -> str:
    parts = []
    if run.mapping.integration_table_filter.strip():
        parts.append(f"({run.mapping.integration_table_filter})")
    lower = watermarks.read_from(run.crm_watermark, overlap=watermarks.CRM_OVERLAP)
    if lower is not None:
        parts.append(f"modifiedon gt {watermarks.crm_filter_value(lower)}")
    return " and ".join(parts)


async def _read_by_ids(
    run: SyncPass, ids: Sequence[uuid.UUID], *, within_filter: bool = False
) -> list[dict[str, Any]]:
    """The CRM rows with these ids (50 to a query: the URL stays short); with
    ``within_filter``, only those inside the mapping's integration table filter, as the
    watermark pass would read them."""
    pk = f"{run.entity}id"
    table_filter = run.mapping.integration_table_filter.strip()
    found: list[dict[str, Any]] = []
    for start in range(0, len(ids), CRM_IDS_PER_QUERY):
        text = " or ".join(f"{pk} eq {i}" for i in ids[start : start + CRM_IDS_PER_QUERY])
        if within_filter and table_filter:
            text = f"({table_filter}) and ({text})"
        try:
            found += [
                r
                async for r in run.crm.query(
                    run.entity_set, select=run.from_crm_select, filter=text
                )
            ]
        except DataverseError as exc:
            raise from_dataverse(exc, action=f"read the CRM {run.entity} rows") from exc
    return found


def _couplings_of(run: SyncPass, works: Sequence[FromCrmWork]) -> sa.ColumnElement[bool]:
    return sa.and_(
        col(IntegrationRecord.table_name) == run.mapping.table_name,
        col(IntegrationRecord.crm_table) == run.entity,
        col(IntegrationRecord.crm_id).in_([w.crm_id for w in works]),
    )


async def _set_aside_as_left(
    session: AsyncSession, run: SyncPass, works: Sequence[FromCrmWork]
) -> None:
    """Rows at the version the sync left them with nothing pending (most often its own
    writes, read back) are unchanged: told from the couplings' columns alone, with no
    transfer, lookup, digest or ERP row (one light query per page)."""
    statement = sa.select(col(IntegrationRecord.crm_id), col(IntegrationRecord.crm_version)).where(
        _couplings_of(run, works),
        col(IntegrationRecord.crm_version).is_not(None),
        col(IntegrationRecord.crm_fingerprint).is_not(None),
        col(IntegrationRecord.skipped).is_(False),
        sa.or_(
            col(IntegrationRecord.last_synch_result).is_(None),
            col(IntegrationRecord.last_synch_result) != SynchResult.failure,
        ),
    )
    versions = dict((await session.execute(statement)).all())
    for work in works:
        version = versions.get(work.crm_id)
        if version is not None and version == coupling_state.crm_version(work.record):
            work.action = SyncAction.unchanged


async def _attach(session: AsyncSession, run: SyncPass, works: Sequence[FromCrmWork]) -> None:
    """Couplings by CRM id, and the coupled ERP rows, two queries per page."""
    if not works:
        return
    statement = select(IntegrationRecord).where(_couplings_of(run, works))
    couplings = {c.crm_id: c for c in await session.exec(statement)}
    model = erp_tables.model_for(run.mapping.table_name)
    ids = [c.integration_id for c in couplings.values()]
    system_id = erp_tables.column(model, "system_id")
    rows = {r.system_id: r for r in await session.exec(select(model).where(system_id.in_(ids)))}
    for work in works:
        work.coupling = couplings.get(work.crm_id)
        if work.coupling is not None:
            work.row = rows.get(work.coupling.integration_id)


# --- deciding and writing ----------------------------------------------------------------


async def _resolve(session: AsyncSession, run: SyncPass, works: Sequence[FromCrmWork]) -> None:
    """Replace every ``CrmRef`` by the coupled ERP code, or fail the record.

    The base currency is the ERP's blank currency code (LCY), as ERP -> CRM sends it.
    """
    wanted: dict[str, set[uuid.UUID]] = {}
    for work in works:
        for value in work.values.values():
            if isinstance(value, CrmRef):
                wanted.setdefault(value.table, set()).add(value.crm_id)
    found = {t: await erp_tables.coupled_codes(session, table=t, crm_ids=ids)
             for t, ids in wanted.items()}  # fmt: skip
    for work in works:
        for name, value in list(work.values.items()):
            if isinstance(value, CrmRef):
                code = found[value.table].get(value.crm_id)
                is_lcy = value.table == "currency" and value.crm_id == run.context.base_currency_id
                if code is None and not is_lcy:
                    work.action = SyncAction.fail
                    work.message = (
                        f"The CRM row {value.crm_id} in field {name} is not coupled to a "
                        f"{value.table.replace('_', ' ')}; synchronize that table first."
                    )
                work.values[name] = code


def _compare_source(run: SyncPass, work: FromCrmWork) -> bool:
    """Does the CRM record hold a change to bring? Sets the work's settlement if it does.

    A coupling with no CRM fingerprint yet falls back to the rule before fingerprints
    (``modifiedon`` after the last sync's); a failed one is always looked at again.
    """
    coupling = work.coupling
    assert coupling is not None  # noqa: S101 - a row is only found through its coupling
    is_failed = coupling.last_synch_result == SynchResult.failure
    stored = coupling.crm_fingerprint
    version = coupling_state.crm_version(work.record)
    source = fingerprints.crm_fingerprint(run.layout, work.record, entity=run.entity)
    changes = fingerprints.compare(source, stored)
    is_changed = is_failed or (changes.any if stored is not None else _is_source_changed(work))
    if not is_changed:
        if stored is not None:  # another write (a statistics link, ...): remember its version
            coupling.crm_version = version
        return False
    work.settlement = Settlement(source_print=source, source_changes=changes)
    return True


def _decide(run: SyncPass, work: FromCrmWork) -> None:
    if work.coupling is not None and work.coupling.skipped:
        work.action = SyncAction.skip
        return
    if run.hooks.is_left_alone(run, work.coupling):
        work.action = SyncAction.ignore
        return
    if work.row is None:
        decision = decide_missing_destination(
            is_coupled=work.coupling is not None, only_coupled=run.only_coupled,
            resolution=run.mapping.deletion_conflict_resolution,
            destination=run.mapping.table_name,
        )  # fmt: skip
        work.action, work.message = decision.action, decision.message
        if work.action == SyncAction.insert:
            source = fingerprints.crm_fingerprint(run.layout, work.record, entity=run.entity)
            work.settlement = Settlement(source, fingerprints.compare(source, None))
        return
    if not _compare_source(run, work):
        work.action = SyncAction.unchanged
        return
    _decide_update(run, work)


def _decide_update(run: SyncPass, work: FromCrmWork) -> None:
    coupling, settlement = work.coupling, work.settlement
    assert coupling is not None and settlement is not None  # noqa: S101 - see _decide
    layout = run.layout
    stored = coupling.last_synch_modified_on
    before = fingerprints.erp_pair_fingerprint(layout, vars(work.row))
    changes = transfer.changed_erp_fields(work.values, vars(work.row))
    pairs = layout.erp_pairs if run.mapping.direction == Direction.bidirectional else {}
    plan = field_merge.plan_fields(
        changes, pairs=pairs, source=settlement.source_changes,
        destination=fingerprints.compare(before, coupling.erp_fingerprint),
        # no fingerprint yet: the ERP row changed if someone else wrote it after the last sync
        destination_changed_if_unknown=work.row.modified_by != SYNC_ACTOR
        and (stored is None or as_utc(work.row.modified_at) > as_utc(stored)),
        to_crm=False,
    )  # fmt: skip
    facts = UpdateFacts(
        direction=Direction.from_crm,
        is_source_changed=True,
        is_destination_changed=bool(plan.conflicting),
        is_mapping_bidirectional=run.mapping.direction == Direction.bidirectional,
        conflicting=plan.conflicting,
        has_changes=bool(plan.send),
    )
    decision = decide_update(
        facts, resolution=run.mapping.update_conflict_resolution,
        table=run.mapping.table_name, entity=run.entity,
    )  # fmt: skip
    work.action, work.message = decision.action, decision.message
    settlement.destination_before = before
    settlement.agreed = field_merge.agreed_fields(work.values, changes, layout.erp_pairs)
    work.values = field_merge.written_fields(plan, won=True)
    settlement.written = [name for name in work.values if name in layout.erp_pairs]


async def _insert_row(session: AsyncSession, run: SyncPass, work: FromCrmWork) -> None:
    table = run.mapping.table_name
    model = erp_tables.model_for(table)
    values = dict(work.values)
    code = erp_tables.code_field(table)
    if code is not None and not values.get(code):
        prefix = NUMBER_PREFIXES.get(table)
        if prefix is None:
            msg = f"A new {table} needs its {code}, which the field mappings do not provide."
            raise ValueError(msg)
        series = numbering.DocumentSeries(prefix, model, (erp_tables.column(model, code),))
        values[code] = await numbering.next_document_no(session, series)
    work.row = model(**values)
    session.add(work.row)


async def _write(session: AsyncSession, run: SyncPass, work: FromCrmWork) -> None:
    try:
        async with session.begin_nested():
            if work.action == SyncAction.insert:
                await _insert_row(session, run, work)
            else:
                for name, value in work.values.items():
                    setattr(work.row, name, value)
            await session.flush()
    except (SQLAlchemyError, ValueError, TypeError) as exc:
        # The savepoint's rollback expired the row: reload it (a refused insert has none).
        if work.action == SyncAction.insert:
            work.row = None
        else:
            await session.refresh(work.row)
        work.action = SyncAction.fail
        work.message = f"The ERP refused the values: {str(exc).splitlines()[0][:500]}"


async def _read_back(
    session: AsyncSession, run: SyncPass, works: Sequence[FromCrmWork]
) -> dict[int, fingerprints.Fingerprint]:
    """The written ERP rows' fingerprints as the database now holds them, one query per
    page: a change another writer made to the row before our write is in it, so it is
    not taken for ours (``coupling_state.settle_from_crm``)."""
    written = [w for w in works if w.action in (SyncAction.insert, SyncAction.modify)]
    if not written:
        return {}
    model = erp_tables.model_for(run.mapping.table_name)
    ids = [w.row.id for w in written]
    statement = select(model).where(erp_tables.column(model, "id").in_(ids))
    list(await session.exec(statement.execution_options(populate_existing=True)))
    names = run.layout.erp_fields
    rows = [w.row for w in written]
    computed = await erp_tables.computed_values(session, run.mapping.table_name, rows, names)
    return {
        id(w): fingerprints.erp_fingerprint(
            run.layout, erp_tables.values_of(w.row, names, computed[w.row.system_id])
        )
        for w in written
    }


async def _record(
    session: AsyncSession,
    run: SyncPass,
    work: FromCrmWork,
    erp_after: fingerprints.Fingerprint | None,
) -> None:
    if work.action in (SyncAction.insert, SyncAction.modify):
        if work.coupling is None:
            work.coupling = IntegrationRecord(
                table_name=run.mapping.table_name, integration_id=work.row.system_id,
                crm_table=run.entity, crm_id=work.crm_id,
            )  # fmt: skip
            session.add(work.coupling)
        elif work.coupling.integration_id != work.row.system_id:  # restored
            work.coupling.integration_id = work.row.system_id
        is_settled = coupling_state.settle_from_crm(work.coupling, work, erp_after=erp_after)
        log.mark_succeeded(
            work.coupling, direction=Direction.from_crm, job_id=run.job_id,
            erp_modified_at=work.row.modified_at if is_settled else None,
            crm_modified_on=_modified_on(work.record),
        )  # fmt: skip
    elif work.action == SyncAction.uncouple and work.coupling is not None:
        await session.delete(work.coupling)
    elif (
        work.action == SyncAction.unchanged
        and work.coupling is not None
        and (work.settlement is not None or work.coupling.last_synch_result == SynchResult.failure)
    ):  # compared, found in agreement (or retried and found so: no longer failed)
        coupling_state.settle_from_crm(work.coupling, work, erp_after=None)
        log.mark_succeeded(
            work.coupling, direction=Direction.from_crm, job_id=run.job_id,
            erp_modified_at=None, crm_modified_on=_modified_on(work.record),
        )  # fmt: skip
    elif work.action == SyncAction.fail:
        message = f"CRM {run.entity} {work.crm_id}: {work.message}"
        log.log_error(session, job_id=run.job_id, error=log.RecordError(
            source_table=run.entity, source_id=str(work.crm_id),
            destination_table=run.mapping.table_name,
            destination_id=str(work.row.system_id) if work.row is not None else "",
            message=message,
        ))  # fmt: skip
        if work.coupling is not None:
            await log.mark_failed(
                session, work.coupling, direction=Direction.from_crm, job_id=run.job_id,
                message=message,
            )  # fmt: skip


async def _process(
    session: AsyncSession, run: SyncPass, records: Sequence[dict[str, Any]]
) -> log.Counters:
    pk = f"{run.entity}id"
    works = [FromCrmWork(record=r, crm_id=uuid.UUID(str(r[pk]))) for r in records]
    if works:
        await _set_aside_as_left(session, run, works)
    live = [work for work in works if work.action == SyncAction.modify]
    await _attach(session, run, live)
    for work in live:
        work.values = transfer.from_crm_values(
            run.rules, work.record, entity=run.entity, table=run.mapping.table_name
        )
        if (unmapped := transfer.unmapped_option(work.values)) and work.action != SyncAction.ignore:
            work.action, work.message = SyncAction.fail, unmapped
    await run.hooks.prepare_from_crm(session, run, live)
    await _resolve(session, run, live)
    counters = log.Counters()
    for work in live:
        if work.action not in (SyncAction.fail, SyncAction.ignore):
            _decide(run, work)
        if work.action in (SyncAction.insert, SyncAction.modify):
            await _write(session, run, work)
    written = await _read_back(session, run, works)
    for work in works:
        await _record(session, run, work, written.get(id(work)))
        counters.count(work.action)
    await session.flush()
    await log.add_counters(session, job_id=run.job_id, counters=counters)
    return counters


async def _failed_pass(run: SyncPass, total: log.Counters) -> set[uuid.UUID]:
    done: set[uuid.UUID] = set()
    after_id = 0
    while True:
        async with session_scope(run.sessionmaker) as session:
            statement = (
                select(IntegrationRecord)
                .where(
                    IntegrationRecord.table_name == run.mapping.table_name,
                    IntegrationRecord.crm_table == run.entity,
                    IntegrationRecord.last_synch_result == SynchResult.failure,
                    col(IntegrationRecord.skipped).is_(False),
                    col(IntegrationRecord.id) > after_id,
                )
                .order_by(col(IntegrationRecord.id))
                .limit(run.page_size)
            )
            couplings = list(await session.exec(statement))
            if not couplings:
                return done
            after_id = couplings[-1].id or after_id
            records = await _read_by_ids(run, [c.crm_id for c in couplings])
            done.update(c.crm_id for c in couplings)
            total.merge(await _process(session, run, records))


async def _chosen_pass(run: SyncPass, ids: frozenset[uuid.UUID]) -> log.Counters:
    """Only the chosen CRM rows ("synchronize now"); the watermark is not touched."""
    total = log.Counters()
    ordered = sorted(ids)
    for start in range(0, len(ordered), run.page_size):
        records = await _read_by_ids(run, ordered[start : start + run.page_size])
        async with session_scope(run.sessionmaker) as session:
            total.merge(await _process(session, run, records))
        run.report_progress(total)
    return total


def _is_watermark_pass_due(run: SyncPass) -> bool:
    """The watermark pass still runs at least once per period, however many notified runs
    came between, so a notification that never arrived only delays its change."""
    if run.crm_watermark is None:
        return True
    every = run.options.watermark_pass_after
    return every is not None and run.signpost - as_utc(run.crm_watermark) >= every


def _chooses_notified_pass(run: SyncPass, taken: notified_changes.TakenChanges) -> bool:
    if not run.options.use_notifications or run.options.is_full:
        return False
    return taken.fits_a_notified_pass() and not _is_watermark_pass_due(run)


async def _notified_pass(run: SyncPass, taken: notified_changes.TakenChanges) -> log.Counters:
    """Failed records first, then only the notified records, read by id; the watermark
    stays where it is (the next watermark pass reads them again and finds them unchanged).
    A record deleted since, or outside the integration table filter, is not returned and
    so is skipped; a Delete notification changes nothing here, as the periodic pass sees
    no deleted CRM row either (a deletion conflict shows when the ERP side changes)."""
    total = log.Counters()
    done = await _failed_pass(run, total)
    if taken.deleted_ids:
        logger.info(
            "crm_deletions_notified", mapping=run.mapping.name, records=len(taken.deleted_ids)
        )
    ids = sorted(taken.record_ids - done)
    records = await _read_by_ids(run, ids, within_filter=True)
    logger.info(
        "crm_notified_pass", mapping=run.mapping.name, notifications=taken.count,
        notified=len(ids), found=len(records),
    )  # fmt: skip
    for start in range(0, len(records), run.page_size):
        async with session_scope(run.sessionmaker) as session:
            total.merge(await _process(session, run, records[start : start + run.page_size]))
        run.report_progress(total)
    return total


async def run_pass(run: SyncPass) -> log.Counters:
    """The whole CRM -> ERP pass: failed records first, then the modified ones (only the
    notified ones when they are few, see ``_chooses_notified_pass``)."""
    if run.options.crm_ids is not None:
        return await _chosen_pass(run, run.options.crm_ids)
    async with session_scope(run.sessionmaker) as session:
        run.notified = await notified_changes.take(session, run.mapping, until=run.signpost)
    if _chooses_notified_pass(run, run.notified):
        return await _notified_pass(run, run.notified)
    total = log.Counters()
    done = await _failed_pass(run, total)
    params = {
        "$select": ",".join(run.from_crm_select),
        "$filter": _filter(run),
        "$orderby": f"modifiedon asc,{run.entity}id asc",
    }
    pk = f"{run.entity}id"
    try:
        async for page in run.crm.pages(run.entity_set, params=params, page_size=run.page_size):
            newest = [m for m in (_modified_on(r) for r in page) if m is not None]
            if newest:
                run.observe_crm(max(newest))
            records = [r for r in page if uuid.UUID(str(r[pk])) not in done]
            async with session_scope(run.sessionmaker) as session:
                total.merge(await _process(session, run, records))
                if newest:
                    await run.commit_crm_progress(session, max(newest))
            run.report_progress(total)
    except DataverseError as exc:
        raise from_dataverse(exc, action=f"read the CRM {run.entity} rows") from exc
    # Every row others changed up to now was read (the query started after the signpost),
    # so the watermark may reach the signpost even when none was: otherwise a CRM where
    # only the sync writes is read from the beginning by every run (O(table size)).
    run.observe_crm(run.signpost)
    return total
