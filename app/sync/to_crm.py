"""One ERP -> CRM pass of a mapping, a page at a time.

Candidates: first the rows whose coupling failed last time (not skipped), then the rows
in the table filter modified after the ERP watermark, sorted by (modified_at, id) and read
with a keyset, so memory holds one page whatever the table size. Each page:

1. decides from the database alone what it can: skipped couplings, and rows not changed
   since their coupling's ``last_synch_modified_on`` (which is how the sync's own ERP
   writes are not sent again);
2. transfers fields, resolves lookups through couplings (a missing one fails that record:
   "The unit of measure PCS is not coupled ..."), reads the coupled CRM rows in one query;
3. decides insert / modify / unchanged / skip / fail per record (``conflicts``);
4. writes through ``$batch``: one change set per record, client-generated ids, several
   batches in flight; a new record gets a coupling before it is sent, so a redo after a
   crash re-sends the same id;
5. stores coupling timestamps, errors, counters and the page's watermark in one commit.

Steps 1-3 of the next page (and its new couplings' commit) run while step 4 of this one
is in flight (``_Pipeline``); step 5 follows in page order. Couplings are written with
one multi-row INSERT and one executemany UPDATE per page, not through the ORM flush.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import as_utc, utc_now
from app.dataverse import BatchOperation, BatchResult, ChangeSet, create_op, update_op
from app.dataverse.addressing import record_path
from app.dataverse.errors import DataverseError
from app.db import current_actor, session_scope
from app.models.integration import (
    Direction,
    IntegrationRecord,
    IntegrationTableMapping,
    SynchResult,
)
from app.sync import (
    coupling_state,
    crm_rules,
    erp_tables,
    field_merge,
    fingerprints,
    log,
    transfer,
    watermarks,
)
from app.sync.conflicts import SyncAction, UpdateFacts, decide_missing_destination, decide_update
from app.sync.errors import FatalSyncError, from_dataverse, not_coupled
from app.sync.transfer import ErpRef
from app.sync.work import Settlement, ToCrmWork

if TYPE_CHECKING:
    from app.sync.sync_pass import SyncPass

CRM_IDS_PER_QUERY = 50
REPRESENTATION = {"Prefer": "return=representation"}


def _is_pending(coupling: IntegrationRecord | None) -> bool:
    """A coupling made for an insert that has not reached the CRM yet."""
    return coupling is not None and coupling.last_synch_crm_modified_on is None


def _is_source_changed(row: Any, coupling: IntegrationRecord | None) -> bool:
    if coupling is None or coupling.last_synch_crm_result == SynchResult.failure:
        return True
    stored = coupling.last_synch_modified_on
    return stored is None or as_utc(row.modified_at) > as_utc(stored)


def _is_read_before(run: SyncPass, row: Any, coupling: IntegrationRecord | None) -> bool:
    """A row of the watermark's overlap that an earlier run synchronized as it is now: read
    again only in case a write committed late (``watermarks.ERP_OVERLAP``), not counted."""
    return (
        run.erp_watermark is not None
        and as_utc(row.modified_at) <= as_utc(run.erp_watermark)
        and coupling is not None
        and not coupling.skipped
        and not _is_source_changed(row, coupling)
        and not _is_pending(coupling)
    )


# --- candidates --------------------------------------------------------------------------


def _base_query(mapping: IntegrationTableMapping, *, only_coupled: bool) -> Any:
    model = erp_tables.model_for(mapping.table_name)
    on = sa.and_(
        col(IntegrationRecord.table_name) == mapping.table_name,
        col(IntegrationRecord.integration_id) == erp_tables.column(model, "system_id"),
    )
    statement = select(model, IntegrationRecord).outerjoin(IntegrationRecord, on)
    clause = erp_tables.filter_clause(mapping.table_name, mapping.table_filter)
    is_coupled = col(IntegrationRecord.id).is_not(None)
    if clause is not None and mapping.table_name in crm_rules.PRODUCT_TABLES:
        # A coupled item that became blocked still syncs once more: to retire its product.
        clause = sa.or_(clause, sa.and_(erp_tables.column(model, "blocked").is_(True), is_coupled))
    if clause is not None:
        statement = statement.where(clause)
    if only_coupled:
        statement = statement.where(is_coupled)
    return statement


async def _failed_page(
    session: AsyncSession, run: SyncPass, after_id: int, limit: int
) -> list[tuple[Any, IntegrationRecord]]:
    statement = (
        _base_query(run.mapping, only_coupled=True)
        .where(
            erp_tables.failed_to_crm(),
            col(IntegrationRecord.id) > after_id,
        )
        .order_by(col(IntegrationRecord.id))
        .limit(limit)
    )
    return list((await session.exec(statement)).all())


async def _modified_page(
    session: AsyncSession, run: SyncPass, after: tuple[datetime, int] | None, limit: int
) -> list[tuple[Any, IntegrationRecord | None]]:
    model = erp_tables.model_for(run.mapping.table_name)
    modified_at, row_id = erp_tables.column(model, "modified_at"), erp_tables.column(model, "id")
    statement = _base_query(run.mapping, only_coupled=run.only_coupled)
    lower = watermarks.read_from(run.erp_watermark, overlap=watermarks.ERP_OVERLAP)
    if lower is not None:
        statement = statement.where(modified_at > lower)
    if after is not None:
        statement = statement.where(sa.tuple_(modified_at, row_id) > sa.tuple_(*after))
    statement = statement.order_by(modified_at, row_id).limit(limit)
    return list((await session.exec(statement)).all())


async def chosen_rows(
    session: AsyncSession,
    mapping: IntegrationTableMapping,
    system_ids: Sequence[uuid.UUID],
    *,
    only_coupled: bool,
) -> list[tuple[Any, IntegrationRecord | None]]:
    """The given ERP rows that pass the mapping's table filter, with their couplings."""
    model = erp_tables.model_for(mapping.table_name)
    system_id, row_id = erp_tables.column(model, "system_id"), erp_tables.column(model, "id")
    statement = _base_query(mapping, only_coupled=only_coupled)
    statement = statement.where(system_id.in_(list(system_ids))).order_by(row_id)
    return list((await session.exec(statement)).all())


async def _chosen_pages(run: SyncPass, pipeline: _Pipeline, ids: frozenset[uuid.UUID]) -> None:
    """Only the chosen records ("synchronize now"); the watermark is not touched."""
    ordered = sorted(ids)
    for start in range(0, len(ordered), run.page_size):
        async with session_scope(run.sessionmaker) as session:
            rows = await chosen_rows(
                session, run.mapping, ordered[start : start + run.page_size],
                only_coupled=run.only_coupled,
            )  # fmt: skip
            works = await _prepare(session, run, rows)
        await pipeline.push(works, bookmark=None)


# --- one page ----------------------------------------------------------------------------


async def _resolve_lookups(
    session: AsyncSession, run: SyncPass, works: Sequence[ToCrmWork]
) -> None:
    """Replace every ``ErpRef`` by the coupled CRM id, or fail the record that needs it."""
    wanted: dict[str, set[str]] = {}
    for work in works:
        for value in work.values.values():
            if isinstance(value, ErpRef):
                wanted.setdefault(value.table, set()).add(value.code)
    found = {
        table: await erp_tables.coupled_crm_ids(session, table=table, codes=codes)
        for table, codes in wanted.items()
    }
    clearable = transfer.clearable_lookups(run.rules)
    for work in works:
        for name, value in list(work.values.items()):
            if not isinstance(value, ErpRef):
                continue
            crm_id = found[value.table].get(value.code)
            if crm_id is None and value.table == "currency" and not value.code:
                crm_id = run.context.base_currency_id  # blank currency = LCY
            if crm_id is None and value.code and name not in clearable:
                work.action = SyncAction.fail
                work.message = not_coupled(value.table, value.code).message
            work.values[name] = crm_id


async def _read_crm(run: SyncPass, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    pk = f"{run.entity}id"
    select_fields = transfer.crm_select(run.rules, run.entity)
    found: dict[uuid.UUID, dict[str, Any]] = {}
    for start in range(0, len(ids), CRM_IDS_PER_QUERY):
        text = " or ".join(f"{pk} eq {i}" for i in ids[start : start + CRM_IDS_PER_QUERY])
        try:
            async for record in run.crm.query(run.entity_set, select=select_fields, filter=text):
                found[uuid.UUID(str(record[pk]))] = record
        except DataverseError as exc:
            raise from_dataverse(exc, action=f"read the CRM {run.entity} rows") from exc
    return found


def _crm_modified_on(record: dict[str, Any] | None) -> datetime | None:
    value = (record or {}).get("modifiedon")
    return as_utc(datetime.fromisoformat(value.replace("Z", "+00:00"))) if value else None


def _plan_insert(run: SyncPass, work: ToCrmWork) -> None:
    crm_id = work.crm_id or uuid.uuid4()
    work.crm_id, work.action = crm_id, SyncAction.insert
    values = dict(work.values)
    if run.is_product:
        values = crm_rules.product_insert_values(values, run.context)
    elif run.entity == "pricelevel":
        values = crm_rules.price_list_insert_values(values, run.context)
    elif run.entity == "account" and run.mapping.table_name == "customer":
        values = crm_rules.account_insert_values(values)
    body = transfer.crm_payload(values, entity=run.entity)
    op = create_op(run.entity_set, body, id=crm_id)
    work.ops = [op]
    if run.is_product:
        work.ops += crm_rules.product_follow_ups(
            crm_id, values, run.context, is_insert=True,
            is_blocked=bool(work.row.blocked), current_state=None,
        )  # fmt: skip
    work.ops += run.hooks.insert_follow_ups(run, work)
    work.ops = run.hooks.wrap_writes(run, work, work.ops, None)
    _ask_for_representation(run, work)


def _ask_for_representation(run: SyncPass, work: ToCrmWork) -> None:
    """The last write to the record itself returns the row as it is after it (``modifiedon``
    for the coupling, ``versionnumber`` and the fingerprinted fields for loop prevention):
    read in the same request, so no other writer's change can slip in between."""
    own = record_path(run.entity_set, work.crm_id) if work.crm_id else None
    for position in range(len(work.ops) - 1, -1, -1):
        op = work.ops[position]
        is_own = op.record_id == work.crm_id or op.path.split("?", 1)[0] == own
        if is_own and op.method in ("POST", "PATCH"):
            separator = "&" if "?" in op.path else "?"
            work.ops[position] = replace(
                op, path=f"{op.path}{separator}$select={','.join(run.from_crm_select)}",
                headers={**op.headers, **REPRESENTATION},
            )  # fmt: skip
            return


def _field_plan(
    run: SyncPass, work: ToCrmWork, current: dict[str, Any], changes: dict[str, Any]
) -> field_merge.FieldPlan:
    """Which differing fields go to the CRM (``field_merge``), and the work's settlement."""
    assert work.coupling is not None and work.settlement is not None  # noqa: S101 - see caller
    layout = run.layout
    stored = work.coupling.last_synch_crm_modified_on
    crm_modified = _crm_modified_on(current)
    by_others = str(current.get("_modifiedby_value") or "") != str(run.context.integration_user_id)
    before = fingerprints.crm_fingerprint(layout, current, entity=run.entity)
    pairs = layout.crm_pairs if run.mapping.direction == Direction.bidirectional else {}
    plan = field_merge.plan_fields(
        changes, pairs=pairs, source=work.settlement.source_changes,
        destination=fingerprints.compare(before, work.coupling.crm_fingerprint),
        # a coupling with no fingerprint yet: the CRM row changed if someone else wrote it
        # after the last sync (the rule before fingerprints)
        destination_changed_if_unknown=bool(
            by_others and crm_modified and (stored is None or crm_modified > as_utc(stored))
        ),
        to_crm=True,
    )  # fmt: skip
    work.settlement.destination_before = before
    work.settlement.destination_version = coupling_state.crm_version(current)
    work.settlement.agreed = field_merge.agreed_fields(work.values, changes, layout.crm_pairs)
    return plan


def _plan_update(run: SyncPass, work: ToCrmWork, current: dict[str, Any]) -> None:
    coupling, crm_id, settlement = work.coupling, work.crm_id, work.settlement
    if coupling is None or crm_id is None or settlement is None:
        return
    changes = transfer.changed_crm_fields(work.values, current, entity=run.entity)
    if run.is_product:
        changes = {k: v for k, v in changes.items() if k != "quantitydecimal"}
    plan = _field_plan(run, work, current, changes)
    facts = UpdateFacts(
        direction=Direction.to_crm,
        is_source_changed=True,
        is_destination_changed=bool(plan.conflicting),
        is_mapping_bidirectional=run.mapping.direction == Direction.bidirectional,
        conflicting=plan.conflicting,
        has_changes=bool(plan.send),
    )
    written = field_merge.written_fields(plan, won=True)
    follow_ups: list[BatchOperation] = []
    if run.is_product:
        follow_ups = crm_rules.product_follow_ups(
            crm_id, {**work.values, **written}, run.context, is_insert=False,
            is_blocked=bool(work.row.blocked), current_state=current.get("statecode"),
        )  # fmt: skip
        if "price" not in written:
            follow_ups = [op for op in follow_ups if not op.path.startswith("productpricelevels")]
        facts = UpdateFacts(**{**facts.__dict__, "has_changes": bool(plan.send or follow_ups)})
    decision = decide_update(
        facts, resolution=run.mapping.update_conflict_resolution,
        table=run.mapping.table_name, entity=run.entity,
    )  # fmt: skip
    work.action, work.message = decision.action, decision.message
    if decision.action == SyncAction.modify:
        body = transfer.crm_payload(written, entity=run.entity)
        settlement.written = [name for name in written if name in run.layout.crm_pairs]
        work.ops = ([update_op(run.entity_set, crm_id, body)] if body else []) + follow_ups
        work.ops = run.hooks.wrap_writes(run, work, work.ops, current.get("statecode"))
        _ask_for_representation(run, work)


def _plan_missing(run: SyncPass, work: ToCrmWork) -> None:
    decision = decide_missing_destination(
        is_coupled=work.coupling is not None, only_coupled=run.only_coupled,
        resolution=run.mapping.deletion_conflict_resolution, destination=run.entity,
    )  # fmt: skip
    work.action, work.message = decision.action, decision.message
    if decision.action == SyncAction.insert:
        work.crm_id = uuid.uuid4()  # restore: a new CRM row, the coupling follows it
        _plan_insert(run, work)


async def _plan(session: AsyncSession, run: SyncPass, works: list[ToCrmWork]) -> None:
    for work in works:
        work.values = transfer.to_crm_values(run.rules, work.erp_values, entity=run.entity)
        if unmapped := transfer.unmapped_option(work.values):
            work.action, work.message = SyncAction.fail, unmapped
        if run.is_product:
            work.values = transfer.product_values(
                work.values, table=run.mapping.table_name, is_insert=work.coupling is None
            )
    await run.hooks.prepare_to_crm(session, run, works)
    await _resolve_lookups(session, run, works)
    await run.hooks.complete_to_crm(session, run, works)
    live = [w for w in works if w.action not in (SyncAction.fail, SyncAction.skip)]
    if run.is_product:
        schedules = [w.values.get("defaultuomscheduleid") for w in live]
        await crm_rules.load_base_units(run.crm, run.context, [s for s in schedules if s])
        for work in live:
            schedule = work.values.get("defaultuomscheduleid")
            if schedule in run.context.base_units:
                work.values["defaultuomid"] = run.context.base_units[schedule]
    # Pending couplings are read too: a redo after a crash finds the row it already made.
    current = await _read_crm(run, [w.coupling.crm_id for w in live if w.coupling])
    for work in live:
        if work.coupling is not None:
            work.crm_id = work.coupling.crm_id
        if work.coupling is None or (_is_pending(work.coupling) and work.crm_id not in current):
            _plan_insert(run, work)
        elif work.crm_id in current:
            _plan_update(run, work, current[work.crm_id])
        else:
            _plan_missing(run, work)


# --- sending -----------------------------------------------------------------------------


def _batches(works: Sequence[ToCrmWork], max_operations: int) -> list[list[ToCrmWork]]:
    """Group records so a batch holds at most ``max_operations`` operations."""
    groups: list[list[ToCrmWork]] = []
    current: list[ToCrmWork] = []
    size = 0
    for work in works:
        if current and size + len(work.ops) > max_operations:
            groups.append(current)
            current, size = [], 0
        current.append(work)
        size += len(work.ops)
    if current:
        groups.append(current)
    return groups


def _apply_results(work: ToCrmWork, results: Sequence[BatchResult]) -> dict[str, Any] | None:
    """The CRM row as the write returned it, or the failure on the work."""
    failed = next((r for r in results if not r.is_ok), None)
    if failed is not None:
        what = "new record" if work.action == SyncAction.insert else "update"
        error = failed.error
        reason = error.dataverse_message if error is not None else f"{failed.outcome}"
        work.action = SyncAction.fail
        work.message = f"The CRM refused the {what}: {reason}"
        return None
    for op, result in zip(work.ops, results, strict=True):
        if op.headers.get("Prefer") == REPRESENTATION["Prefer"] and isinstance(result.body, dict):
            return result.body
    return None


async def _send(
    run: SyncPass, works: Sequence[ToCrmWork], gate: asyncio.Semaphore
) -> dict[int, dict[str, Any] | None]:
    """Write every planned record; returns the CRM row as written per work (by id()).

    ``gate`` is shared by the whole pass, so the batches of a page being sent while the
    next page is planned never exceed ``concurrency`` together.
    """
    pending = [w for w in works if w.ops and w.action in (SyncAction.insert, SyncAction.modify)]
    written: dict[int, dict[str, Any] | None] = {}

    async def send(group: list[ToCrmWork]) -> None:
        async with gate:
            try:
                results = await run.crm.batch([ChangeSet(w.ops) for w in group])
            except DataverseError as exc:
                raise from_dataverse(exc, action=f"write {run.entity} rows to the CRM") from exc
        position = 0
        for work in group:
            own = results[position : position + len(work.ops)]
            position += len(work.ops)
            written[id(work)] = _apply_results(work, own)

    await asyncio.gather(*(send(group) for group in _batches(pending, run.batch_size)))
    return written


# --- the page, committed -----------------------------------------------------------------

_COUPLINGS = IntegrationRecord.__table__  # type: ignore[attr-defined]
_COUPLING_CLASS = sa.inspect(IntegrationRecord).class_manager
# Defaults read once: pydantic's ``get_default`` inspects a factory's signature per call.
_COUPLING_DEFAULTS = {
    name: info.default
    for name, info in IntegrationRecord.model_fields.items()
    if info.default_factory is None and not info.is_required()
}
_COUPLING_FACTORIES: dict[str, Callable[[], Any]] = {
    name: info.default_factory  # type: ignore[misc]
    for name, info in IntegrationRecord.model_fields.items()
    if info.default_factory is not None
}
_COUPLING_COLUMNS = tuple(c.name for c in _COUPLINGS.columns if c.name != "id")
# What recording a page changes on a coupling (written by one executemany UPDATE).
_COUPLING_STATE = (
    "crm_id",
    "last_synch_modified_on",
    "last_synch_crm_modified_on",
    "last_synch_crm_result",
    "last_synch_crm_job_id",
    "skipped",
    "erp_fingerprint",
    "crm_fingerprint",
    "crm_version",
)


def _triage(rows: Sequence[tuple[Any, IntegrationRecord | None]]) -> list[ToCrmWork]:
    works: list[ToCrmWork] = []
    for row, coupling in rows:
        work = ToCrmWork(row=row, coupling=coupling)
        if coupling is not None and coupling.skipped:
            work.action = SyncAction.skip
        elif not _is_source_changed(row, coupling) and not _is_pending(coupling):
            work.action = SyncAction.unchanged
        works.append(work)
    return works


def _new_coupling(run: SyncPass, work: ToCrmWork, now: datetime) -> IntegrationRecord:
    """A detached coupling, built without SQLModel's constructor.

    ``IntegrationRecord(...)`` runs every field's default through SQLModel's per-attribute
    ``__setattr__`` (about 70 us CPU, the largest single cost of a new record in a full
    sync, docs/sync.md); here the values go straight into the instance dict beside a
    fresh SQLAlchemy state, which is what loading a row does. Later assignments
    (``log.mark_succeeded``) go through the instrumented attributes as usual.
    """
    values: dict[str, Any] = {
        "table_name": run.mapping.table_name, "integration_id": work.row.system_id,
        "crm_table": run.entity, "crm_id": work.crm_id or uuid.uuid4(),
        "last_synch_crm_result": SynchResult.failure,
        "created_at": now, "modified_at": now, "modified_by": current_actor.get(),
    }  # fmt: skip
    coupling: IntegrationRecord = _COUPLING_CLASS.new_instance()
    given = set(values)
    values = {**_COUPLING_DEFAULTS, **values}
    for name, factory in _COUPLING_FACTORIES.items():
        if name not in given:
            values[name] = factory()
    coupling.__dict__.update(values)
    object.__setattr__(coupling, "__pydantic_fields_set__", given)
    object.__setattr__(coupling, "__pydantic_extra__", None)
    object.__setattr__(coupling, "__pydantic_private__", None)
    return coupling


async def _reserve_couplings(
    session: AsyncSession, run: SyncPass, works: Sequence[ToCrmWork]
) -> None:
    """Couple new records to their client-generated CRM id before sending them.

    A new record that already failed (a missing dependency) is coupled the same way, as
    pending, so it is retried first by the next run and not lost behind the watermark.
    New couplings go in as one multi-row INSERT (the ORM's flush cost more than the
    sandbox's answer on a full sync); they stay detached and are updated by ``_record``.
    """
    fresh: list[IntegrationRecord] = []
    restored: list[uuid.UUID] = []
    now = utc_now()
    for work in works:
        is_new_failure = work.action == SyncAction.fail and work.coupling is None
        if is_new_failure:  # so the next run retries it (failed records come first)
            work.crm_id = uuid.uuid4()
        elif work.action != SyncAction.insert or work.crm_id is None:
            continue
        if work.coupling is None:
            work.coupling = _new_coupling(run, work, now)
            fresh.append(work.coupling)
        elif work.coupling.crm_id != work.crm_id:  # restored after a deletion in the CRM
            work.coupling.crm_id = work.crm_id
            work.coupling.last_synch_crm_modified_on = None
            work.coupling.crm_fingerprint = work.coupling.crm_version = None
            restored.append(work.coupling.system_id)
    if fresh:
        # Straight from the instance dicts (never expired: made above, not loaded).
        rows = [{name: vars(c)[name] for name in _COUPLING_COLUMNS} for c in fresh]
        await session.execute(sa.insert(_COUPLINGS), rows)
    if restored:  # a new CRM row: the quantity the availability push confirmed is not on it
        key = _COUPLINGS.c.system_id.in_(restored)
        await session.execute(sa.update(_COUPLINGS).where(key).values(availability_entry_no=None))
    await session.commit()


def _coupling_state(coupling: IntegrationRecord, now: datetime) -> dict[str, Any]:
    state = {name: getattr(coupling, name) for name in _COUPLING_STATE}
    return {**state, "key": coupling.system_id, "modified_at": now,
            "modified_by": current_actor.get()}  # fmt: skip


async def _store_couplings(
    session: AsyncSession, states: Sequence[dict[str, Any]], gone: Sequence[uuid.UUID]
) -> None:
    """One executemany UPDATE for the page's couplings, one DELETE for the uncoupled."""
    if states:
        key = _COUPLINGS.c.system_id == sa.bindparam("key")
        await session.execute(sa.update(_COUPLINGS).where(key), list(states))
    if gone:
        await session.execute(sa.delete(_COUPLINGS).where(_COUPLINGS.c.system_id.in_(gone)))


def _succeeded(
    run: SyncPass, work: ToCrmWork, coupling: IntegrationRecord, written: dict[str, Any] | None
) -> None:
    log.mark_succeeded(
        coupling, direction=Direction.to_crm, job_id=run.job_id,
        erp_modified_at=work.row.modified_at, crm_modified_on=_crm_modified_on(written),
    )  # fmt: skip
    coupling_state.settle_to_crm(
        coupling, work, layout=run.layout, entity=run.entity, written=written
    )


async def _record(
    session: AsyncSession,
    run: SyncPass,
    works: Sequence[ToCrmWork],
    written: dict[int, dict[str, Any] | None],
) -> log.Counters:
    """Counters, errors and coupling state of a sent page (couplings are detached)."""
    counters = log.Counters()
    states: list[dict[str, Any]] = []
    gone: list[uuid.UUID] = []
    now = utc_now()
    for work in works:
        counters.count(work.action)
        coupling = work.coupling
        if work.action in (SyncAction.insert, SyncAction.modify) and coupling is not None:
            _succeeded(run, work, coupling, written.get(id(work)))
            states.append(_coupling_state(coupling, now))
        elif work.action == SyncAction.uncouple and coupling is not None:
            gone.append(coupling.system_id)
        elif (
            work.action == SyncAction.unchanged
            and coupling is not None
            and (
                work.settlement is not None or coupling.last_synch_crm_result == SynchResult.failure
            )
        ):  # compared, found in agreement (or retried and found so: no longer failed)
            _succeeded(run, work, coupling, None)
            states.append(_coupling_state(coupling, now))
        elif work.action == SyncAction.fail:
            _log_failure(session, run, work)
            if coupling is not None:
                await log.mark_failed(
                    session, coupling, direction=Direction.to_crm, job_id=run.job_id,
                    message=work.message,
                )  # fmt: skip
                states.append(_coupling_state(coupling, now))
    await _store_couplings(session, states, gone)
    await session.flush()
    return counters


def _log_failure(session: AsyncSession, run: SyncPass, work: ToCrmWork) -> None:
    error = log.RecordError(
        source_table=run.mapping.table_name,
        source_id=str(work.row.system_id),
        destination_table=run.entity,
        destination_id=str(work.crm_id or ""),
        message=f"{erp_tables.label(run.mapping.table_name, work.row)}: {work.message}",
    )
    log.log_error(session, job_id=run.job_id, error=error)
    work.message = error.message


def _compare_source(run: SyncPass, work: ToCrmWork) -> None:
    """The ERP row against its coupling's fingerprint: a row whose mapped fields are as the
    last sync left them (a write of the sync's own, a change to other fields) is unchanged,
    decided without asking the CRM."""
    source = fingerprints.erp_fingerprint(run.layout, work.erp_values)
    coupling = work.coupling
    stored = coupling.erp_fingerprint if coupling is not None else None
    changes = fingerprints.compare(source, stored)
    work.settlement = Settlement(source_print=source, source_changes=changes)
    is_settled_before = (
        coupling is not None
        and coupling.last_synch_crm_result != SynchResult.failure
        and not _is_pending(coupling)
    )
    if is_settled_before and not changes.any:
        work.action = SyncAction.unchanged


async def _prepare(session: AsyncSession, run: SyncPass, rows: Sequence[Any]) -> list[ToCrmWork]:
    """Triage, plan and reserve a page (committed); what is left is sending it."""
    works = _triage(rows)
    todo = [w for w in works if w.action == SyncAction.modify]
    names = run.layout.erp_fields
    computed = await erp_tables.computed_values(
        session, run.mapping.table_name, [w.row for w in todo], names
    )
    for work in todo:
        work.erp_values = erp_tables.values_of(work.row, names, computed[work.row.system_id])
        _compare_source(run, work)
    todo = [w for w in todo if w.action == SyncAction.modify]
    try:
        await _plan(session, run, todo)
    except ValueError as exc:  # a field mapping that cannot work (unknown transformation)
        msg = f"The field mappings of {run.mapping.name} cannot be used: {exc}"
        raise FatalSyncError(msg) from exc
    await _reserve_couplings(session, run, todo)
    return works


@dataclass
class _Page:
    """A planned page whose batches are on their way."""

    works: list[ToCrmWork]
    sending: asyncio.Task[dict[int, dict[str, Any] | None]]
    bookmark: datetime | None


class _Pipeline:
    """Sends one page while the next one is read and planned.

    The engine's database work (reading, planning, couplings) and the CRM's work on the
    batches then overlap instead of taking turns. Pages are still recorded in order, each
    in its own commit with its watermark bookmark, so the watermark never passes a page
    that is not recorded; a page's couplings were committed before it was sent, so a crash
    in between leaves pending couplings that the next run retries first.
    """

    def __init__(self, run: SyncPass) -> None:
        self.run = run
        self.total = log.Counters()
        self.gate = asyncio.Semaphore(run.concurrency)
        self.previous: _Page | None = None

    async def push(self, works: list[ToCrmWork], *, bookmark: datetime | None) -> None:
        sending = asyncio.create_task(_send(self.run, works, self.gate))
        page = _Page(works, sending, bookmark)
        try:
            await self.drain()
        finally:
            self.previous = page

    async def drain(self) -> None:
        page, self.previous = self.previous, None
        if page is None:
            return
        written = await page.sending
        async with session_scope(self.run.sessionmaker) as session:
            counters = await _record(session, self.run, page.works, written)
            await log.add_counters(session, job_id=self.run.job_id, counters=counters)
            if page.bookmark is not None:
                await self.run.commit_erp_progress(session, page.bookmark)
        self.total.merge(counters)
        self.run.report_progress(self.total)

    async def abandon(self) -> None:
        """After a failure: stop the page in flight (its couplings stay pending)."""
        page, self.previous = self.previous, None
        if page is not None:
            page.sending.cancel()
            await asyncio.gather(page.sending, return_exceptions=True)


async def _failed_pages(run: SyncPass, pipeline: _Pipeline) -> set[int]:
    done: set[int] = set()
    after_id = 0
    while True:
        async with session_scope(run.sessionmaker) as session:
            rows = await _failed_page(session, run, after_id, run.page_size)
            if not rows:
                return done
            after_id = rows[-1][1].id or after_id
            done.update(row.id for row, _ in rows)
            works = await _prepare(session, run, rows)
        await pipeline.push(works, bookmark=None)


async def run_pass(run: SyncPass) -> log.Counters:
    """The whole ERP -> CRM pass: failed records first, then the modified ones."""
    pipeline = _Pipeline(run)
    try:
        if run.options.erp_ids is not None:
            await _chosen_pages(run, pipeline, run.options.erp_ids)
            await pipeline.drain()
            return pipeline.total
        done = await _failed_pages(run, pipeline)
        after: tuple[datetime, int] | None = None
        while True:
            async with session_scope(run.sessionmaker) as session:
                page = await _modified_page(session, run, after, run.page_size)
                if not page:
                    break
                after = (page[-1][0].modified_at, page[-1][0].id)
                run.observe_erp(page[-1][0].modified_at)
                fresh = [
                    (row, coupling)
                    for row, coupling in page
                    if row.id not in done and not _is_read_before(run, row, coupling)
                ]
                works = await _prepare(session, run, fresh)
            await pipeline.push(works, bookmark=watermarks.page_bookmark(after[0]))
        await pipeline.drain()
    except BaseException:
        await pipeline.abandon()
        raise
    return pipeline.total
