"""Synchronize chosen records now, and create chosen records on the other side.

BC's "Synchronize now", "Create new in Dynamics 365 Sales" and its reverse, for up to
``MAX_RECORDS`` records of one mapping, run inside the caller's request with a deadline
(explicit actions may call the CRM, with timeouts; scheduled work never waits on them). They use the
sync engine itself (``run_mapping`` restricted to the chosen ids), so conflicts, lookups,
couplings, the sync job rows and their error rows are exactly those of a scheduled run;
the mapping's watermarks are not moved.

Everything that can be refused is checked before anything is written: the mapping, the
ids, the direction, and (for "synchronize now") that every record is coupled unless the
caller asked to create the missing ones. A skipped coupling of a chosen record is restored
first: choosing it is the manual synchronization BC offers for skipped records.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.catalog import run_mapping
from app.clock import utc_now
from app.dataverse import DataverseClient
from app.dataverse.errors import FailureKind
from app.db import SessionMaker, current_actor, session_scope
from app.errors import ConflictError, InvalidInputError, NotFoundError, SalesbridgeError
from app.mappings.field_catalog import entity_set_for, primary_key_of
from app.mappings.table_mappings import get_mapping_or_raise
from app.models.integration import (
    Direction,
    IntegrationRecord,
    IntegrationSynchJobError,
    IntegrationTableMapping,
    UpdateConflictResolution,
)
from app.sync import erp_tables, to_crm
from app.sync.crm_client import CrmRefusedError, CrmUnavailableError, crm_errors
from app.sync.errors import SyncError
from app.sync.runner import directions_of
from app.sync.sync_pass import RunOptions

MAX_RECORDS = 100
TIMEOUT_SECONDS = 120.0
CRM_IDS_PER_QUERY = 50


class SyncNowTimeoutError(SalesbridgeError):
    """The chosen records did not finish within the request's deadline."""

    status_code = 504


class Outcome(StrEnum):
    inserted = "inserted"
    modified = "modified"
    unchanged = "unchanged"
    skipped = "skipped"
    failed = "failed"
    uncoupled = "uncoupled"
    already_coupled = "already_coupled"
    outside_filter = "outside_filter"
    missing_in_crm = "missing_in_crm"
    missing_in_erp = "missing_in_erp"


@dataclass(frozen=True)
class Selection:
    """The records, by exactly one of: ERP system ids, ERP codes, CRM ids."""

    integration_ids: Sequence[uuid.UUID] | None = None
    codes: Sequence[str] | None = None
    crm_ids: Sequence[uuid.UUID] | None = None


@dataclass
class DirectionResult:
    direction: Direction
    outcome: Outcome
    message: str = ""


@dataclass
class Target:
    label: str
    integration_id: uuid.UUID | None
    crm_id: uuid.UUID | None
    coupling: IntegrationRecord | None
    results: list[DirectionResult] = field(default_factory=list)
    # No CRM row yet: uncoupled, or coupled by an insert that never reached the CRM.
    is_new_in_crm: bool = False

    def __post_init__(self) -> None:
        self.is_new_in_crm = self.coupling is None

    def settle(self, direction: Direction, outcome: Outcome, message: str = "") -> None:
        self.results.append(DirectionResult(direction, outcome, message))

    def is_settled(self, direction: Direction) -> bool:
        return any(result.direction == direction for result in self.results)


@dataclass
class Report:
    mapping_name: str
    job_ids: dict[Direction, uuid.UUID]
    records: list[Target]


# --- choosing the records ----------------------------------------------------------------


def _missing(kind: str, wanted: Sequence[Any], found: set[Any]) -> None:
    missing = [str(value) for value in dict.fromkeys(wanted) if value not in found]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        msg = f"There is no {kind} {shown}; nothing was synchronized."
        raise NotFoundError(msg)


async def _couplings_of(
    session: AsyncSession, mapping: IntegrationTableMapping, *, column: Any, values: list[Any]
) -> dict[Any, IntegrationRecord]:
    statement = select(IntegrationRecord).where(
        IntegrationRecord.table_name == mapping.table_name,
        IntegrationRecord.crm_table == mapping.integration_table,
        col(column).in_(values),
    )
    return {getattr(c, column.key): c for c in await session.exec(statement)}


async def _erp_targets(
    session: AsyncSession, mapping: IntegrationTableMapping, selection: Selection
) -> list[Target]:
    table = mapping.table_name
    model = erp_tables.model_for(table)
    if selection.codes is not None:
        code = erp_tables.code_field(table)
        if code is None:
            msg = f"A {table} has no number or code; choose its records by integration_ids."
            raise InvalidInputError(msg)
        key, wanted = erp_tables.column(model, code), list[Any](selection.codes)
    else:
        key, wanted = erp_tables.column(model, "system_id"), list(selection.integration_ids or [])
    rows = {
        getattr(r, key.name): r for r in await session.exec(select(model).where(key.in_(wanted)))
    }
    _missing(f"{table.replace('_', ' ')} with {key.name}", wanted, set(rows))
    ordered = [rows[value] for value in dict.fromkeys(wanted)]
    couplings = await _couplings_of(
        session, mapping, column=IntegrationRecord.integration_id,
        values=[r.system_id for r in ordered],
    )  # fmt: skip
    targets = []
    for row in ordered:
        coupling = couplings.get(row.system_id)
        crm_id = coupling.crm_id if coupling is not None else None
        targets.append(Target(erp_tables.label(table, row), row.system_id, crm_id, coupling))
    return targets


async def _crm_targets(
    session: AsyncSession, mapping: IntegrationTableMapping, crm_ids: Sequence[uuid.UUID]
) -> list[Target]:
    wanted = list(dict.fromkeys(crm_ids))
    couplings = await _couplings_of(session, mapping, column=IntegrationRecord.crm_id,
                                    values=wanted)  # fmt: skip
    label = f"CRM {mapping.integration_table}"
    return [
        Target(f"{label} {crm_id}", getattr(couplings.get(crm_id), "integration_id", None),
               crm_id, couplings.get(crm_id))
        for crm_id in wanted
    ]  # fmt: skip


async def _targets(
    session: AsyncSession, mapping: IntegrationTableMapping, selection: Selection
) -> list[Target]:
    if selection.crm_ids is not None:
        return await _crm_targets(session, mapping, selection.crm_ids)
    return await _erp_targets(session, mapping, selection)


async def _existing_in_crm(
    crm: DataverseClient, mapping: IntegrationTableMapping, ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    entity = mapping.integration_table
    pk = primary_key_of(entity)
    found: set[uuid.UUID] = set()
    for start in range(0, len(ids), CRM_IDS_PER_QUERY):
        text = " or ".join(f"{pk} eq {i}" for i in ids[start : start + CRM_IDS_PER_QUERY])
        with crm_errors(f"read the CRM {entity} rows"):
            found |= {
                uuid.UUID(str(r[pk]))
                async for r in crm.query(entity_set_for(entity), select=[pk], filter=text)
            }
    return found


async def _find_pending(
    crm: DataverseClient, mapping: IntegrationTableMapping, targets: Sequence[Target]
) -> None:
    """Couplings never synchronized to the CRM whose row is not there: inserts to redo.

    The engine makes such a coupling before sending a new record (and keeps it when the
    insert fails); a manual coupling to an existing row looks the same until it is synced.
    """
    unsynced = [
        t for t in targets
        if t.coupling is not None and t.coupling.last_synch_crm_modified_on is None
    ]  # fmt: skip
    found = await _existing_in_crm(
        crm, mapping, [t.coupling.crm_id for t in unsynced if t.coupling]
    )
    for target in unsynced:
        target.is_new_in_crm = target.crm_id not in found


def _allowed_directions(
    mapping: IntegrationTableMapping, direction: Direction | None
) -> list[Direction]:
    allowed = directions_of(mapping)
    wanted = allowed if direction in (None, Direction.bidirectional) else [direction]
    if any(d not in allowed for d in wanted) or (
        direction == Direction.bidirectional and len(allowed) == 1
    ):
        msg = (
            f"The mapping {mapping.name} synchronizes {mapping.direction.replace('_', ' ')} "
            f"only; it cannot synchronize {str(direction).replace('_', ' ')}."
        )
        raise InvalidInputError(msg)
    return [d for d in wanted if d is not None]


async def _restore_skipped(
    sessionmaker: SessionMaker, targets: Sequence[Target], plan: Plan
) -> None:
    ids = [
        t.coupling.system_id for t in targets
        if t.coupling is not None and t.coupling.skipped and plan.includes(t)
    ]  # fmt: skip
    if not ids:
        return
    async with session_scope(sessionmaker) as session:
        await session.exec(
            update(IntegrationRecord)
            .where(col(IntegrationRecord.system_id).in_(ids))
            .values(skipped=False, modified_at=utc_now(), modified_by=current_actor.get())
        )


async def _settle_outside_filter(
    sessionmaker: SessionMaker, mapping: IntegrationTableMapping, targets: Sequence[Target]
) -> None:
    """ERP -> CRM only sends rows in the mapping's table filter: say so for the others."""
    ids = [t.integration_id for t in targets if t.integration_id is not None]
    model = erp_tables.model_for(mapping.table_name)
    system_id = erp_tables.column(model, "system_id")
    async with session_scope(sessionmaker) as session:
        rows = await to_crm.chosen_rows(session, mapping, ids, only_coupled=False)
        existing = set(await session.exec(select(system_id).where(system_id.in_(ids))))
    inside = {row.system_id for row, _ in rows}
    for target in targets:
        if target.integration_id is None or target.integration_id in inside:
            continue
        if target.integration_id not in existing:  # chosen by CRM id, coupling left over
            target.settle(
                Direction.to_crm, Outcome.missing_in_erp,
                f"The coupled {mapping.table_name} {target.integration_id} no longer exists; "
                f"remove the stale coupling (DELETE /couplings/stale/{mapping.name}).",
            )  # fmt: skip
            continue
        target.settle(
            Direction.to_crm, Outcome.outside_filter,
            f"{target.label} is outside the table filter of {mapping.name} "
            f"({mapping.table_filter}); it is not sent to the CRM.",
        )  # fmt: skip


# --- running and reading the results -----------------------------------------------------


@dataclass(frozen=True)
class Plan:
    erp_ids: frozenset[uuid.UUID]
    crm_ids: frozenset[uuid.UUID]
    directions: list[Direction]
    is_creating: bool

    def runs(self, target: Target, direction: Direction) -> bool:
        if direction not in self.directions:
            return False
        if direction == Direction.to_crm:
            return target.integration_id in self.erp_ids
        return target.crm_id in self.crm_ids

    def includes(self, target: Target) -> bool:
        return any(self.runs(target, direction) for direction in self.directions)


def _plan(targets: Sequence[Target], directions: Sequence[Direction], *, creating: bool) -> Plan:
    open_ = {d: [t for t in targets if not t.is_settled(d)] for d in directions}
    erp_ids = frozenset(
        t.integration_id for t in open_.get(Direction.to_crm, []) if t.integration_id
    )
    crm_ids = frozenset(t.crm_id for t in open_.get(Direction.from_crm, []) if t.crm_id)
    run = [d for d in directions if (erp_ids if d == Direction.to_crm else crm_ids)]
    return Plan(erp_ids, crm_ids, run, creating)


async def _run(
    sessionmaker: SessionMaker, crm: DataverseClient, mapping_name: str, plan: Plan,
    *, company_name: str, timeout_seconds: float,
) -> dict[Direction, uuid.UUID]:  # fmt: skip
    if not plan.directions:
        return {}
    options = RunOptions(
        # A full run inserts uncoupled rows (only-coupled is off); the ids still limit it.
        is_full=plan.is_creating, company_name=company_name,
        erp_ids=plan.erp_ids if Direction.to_crm in plan.directions else None,
        crm_ids=plan.crm_ids if Direction.from_crm in plan.directions else None,
        only_direction=plan.directions[0] if len(plan.directions) == 1 else None,
    )  # fmt: skip
    try:
        async with asyncio.timeout(timeout_seconds):
            result = await run_mapping(
                sessionmaker, crm, mapping_name=mapping_name, options=options
            )
    except TimeoutError:
        msg = (
            f"The synchronization did not finish within {timeout_seconds:.0f} s; what was "
            "done is kept and logged. Choose fewer records or run the mapping's job."
        )
        raise SyncNowTimeoutError(msg) from None
    except SyncError as exc:
        error = (
            CrmUnavailableError if exc.failure_kind == FailureKind.transient else CrmRefusedError
        )
        raise error(exc.message) from None
    return result.job_ids


def _outcome(
    target: Target, direction: Direction, after: IntegrationRecord | None, job_id: uuid.UUID
) -> tuple[Outcome, str]:
    if after is None:
        if target.coupling is not None:
            return Outcome.uncoupled, "The coupling was removed (deletion-conflict resolution)."
        return Outcome.unchanged, "Nothing was written."
    written_by = after.last_synch_crm_job_id if direction == Direction.to_crm else (
        after.last_synch_job_id)  # fmt: skip
    if written_by == job_id:
        is_new = target.is_new_in_crm if direction == Direction.to_crm else target.coupling is None
        return (Outcome.inserted if is_new else Outcome.modified), ""
    if after.skipped:
        return Outcome.skipped, "The coupling is skipped."
    return Outcome.unchanged, "Nothing to write: not changed since the last synchronization."


async def _read_results(
    session: AsyncSession, mapping: IntegrationTableMapping, targets: Sequence[Target],
    plan: Plan, job_ids: dict[Direction, uuid.UUID],
) -> None:  # fmt: skip
    for direction, job_id in job_ids.items():
        chosen = [t for t in targets if plan.runs(t, direction)]
        statement = select(IntegrationSynchJobError).where(
            IntegrationSynchJobError.job_id == job_id
        )
        errors = {e.source_id: e.message for e in await session.exec(statement)}
        to = direction == Direction.to_crm
        column = IntegrationRecord.integration_id if to else IntegrationRecord.crm_id
        keys = [t.integration_id if to else t.crm_id for t in chosen]
        after = await _couplings_of(session, mapping, column=column, values=keys)
        for target, key in zip(chosen, keys, strict=True):
            coupling = after.get(key)
            if str(key) in errors:
                target.settle(direction, Outcome.failed, errors[str(key)])
            else:
                target.settle(direction, *_outcome(target, direction, coupling, job_id))
            if coupling is not None:
                target.integration_id, target.crm_id = coupling.integration_id, coupling.crm_id


async def _execute(
    sessionmaker: SessionMaker, crm: DataverseClient, mapping: IntegrationTableMapping,
    targets: list[Target], plan: Plan, *, company_name: str, timeout_seconds: float,
) -> Report:  # fmt: skip
    await _restore_skipped(sessionmaker, targets, plan)
    job_ids = await _run(sessionmaker, crm, mapping.name, plan, company_name=company_name,
                         timeout_seconds=timeout_seconds)  # fmt: skip
    async with session_scope(sessionmaker) as session:
        await _read_results(session, mapping, targets, plan, job_ids)
    return Report(mapping.name, job_ids, targets)


# --- the three actions -------------------------------------------------------------------


async def _load(
    sessionmaker: SessionMaker, mapping_name: str, selection: Selection
) -> tuple[IntegrationTableMapping, list[Target]]:
    async with session_scope(sessionmaker) as session:
        mapping = await get_mapping_or_raise(session, mapping_name)
        targets = await _targets(session, mapping, selection)
    if len(targets) > MAX_RECORDS:
        msg = f"Choose at most {MAX_RECORDS} records at a time; {len(targets)} were given."
        raise InvalidInputError(msg)
    return mapping, targets


def _refuse_uncoupled(
    mapping: IntegrationTableMapping, uncoupled: Sequence[Target], directions: list[Direction]
) -> None:
    shown = ", ".join(t.label for t in uncoupled[:5]) + (" ..." if len(uncoupled) > 5 else "")
    is_crm_side = uncoupled[0].integration_id is None
    side = Direction.from_crm if is_crm_side else Direction.to_crm
    where = "the ERP" if is_crm_side else "the CRM"
    if side not in directions:
        msg = (
            f"Not coupled: {shown}. The mapping {mapping.name} cannot create records in "
            f"{where}; couple them first (POST /couplings or /couplings/match)."
        )
    else:
        msg = (
            f"Not coupled: {shown}. Couple them (POST /couplings) or create them in {where} "
            "(create_if_not_coupled: true)."
        )
    raise ConflictError(msg)


async def synchronize_now(
    sessionmaker: SessionMaker, crm: DataverseClient, *, mapping_name: str, selection: Selection,
    direction: Direction | None = None, create_if_not_coupled: bool = False,
    company_name: str = "CRONUS", timeout_seconds: float = TIMEOUT_SECONDS,
) -> Report:  # fmt: skip
    """Synchronize chosen records now in the mapping's direction(s) or the one chosen."""
    mapping, targets = await _load(sessionmaker, mapping_name, selection)
    directions = _allowed_directions(mapping, direction)
    uncoupled = [t for t in targets if t.coupling is None]
    side = Direction.from_crm if selection.crm_ids is not None else Direction.to_crm
    if uncoupled and (not create_if_not_coupled or side not in directions):
        _refuse_uncoupled(mapping, uncoupled, directions)
    if Direction.to_crm in directions:
        await _find_pending(crm, mapping, targets)
        await _settle_outside_filter(sessionmaker, mapping, targets)
    if Direction.from_crm in directions:
        await _check_crm_rows(crm, mapping, targets)
    plan = _plan(targets, directions, creating=bool(uncoupled))
    return await _execute(sessionmaker, crm, mapping, targets, plan, company_name=company_name,
                          timeout_seconds=timeout_seconds)  # fmt: skip


async def _check_crm_rows(
    crm: DataverseClient, mapping: IntegrationTableMapping, targets: Sequence[Target]
) -> None:
    """Unknown CRM ids are refused; a coupled CRM row that is gone is reported per record."""
    ids = [t.crm_id for t in targets if t.crm_id is not None]
    found = await _existing_in_crm(crm, mapping, ids)
    unknown = [
        t.crm_id for t in targets if t.coupling is None and t.crm_id and t.crm_id not in found
    ]
    _missing(f"CRM {mapping.integration_table}", unknown, set())
    for target in targets:
        if target.crm_id is not None and target.crm_id not in found and target.is_new_in_crm:
            target.settle(
                Direction.from_crm, Outcome.unchanged,
                "Not in the CRM yet: synchronizing to the CRM creates it.",
            )  # fmt: skip
        elif target.crm_id is not None and target.crm_id not in found:
            target.settle(
                Direction.from_crm, Outcome.missing_in_crm,
                f"The coupled CRM {mapping.integration_table} {target.crm_id} no longer exists.",
            )  # fmt: skip


def _settle_coupled(targets: Sequence[Target], direction: Direction) -> None:
    for target in targets:
        if target.coupling is not None and not target.is_new_in_crm:
            target.settle(
                direction, Outcome.already_coupled,
                f"{target.label} is already coupled to CRM {target.coupling.crm_table} "
                f"{target.coupling.crm_id}; synchronize it instead, or uncouple it first.",
            )  # fmt: skip


async def create_in_crm(
    sessionmaker: SessionMaker, crm: DataverseClient, *, mapping_name: str, selection: Selection,
    company_name: str = "CRONUS", timeout_seconds: float = TIMEOUT_SECONDS,
) -> Report:  # fmt: skip
    """Insert chosen uncoupled ERP records in the CRM and couple them."""
    mapping, targets = await _load(sessionmaker, mapping_name, selection)
    directions = _allowed_directions(mapping, Direction.to_crm)
    await _find_pending(crm, mapping, targets)
    _settle_coupled(targets, Direction.to_crm)
    await _settle_outside_filter(sessionmaker, mapping, targets)
    plan = _plan(targets, directions, creating=True)
    return await _execute(sessionmaker, crm, mapping, targets, plan, company_name=company_name,
                          timeout_seconds=timeout_seconds)  # fmt: skip


async def create_in_erp(
    sessionmaker: SessionMaker, crm: DataverseClient, *, mapping_name: str,
    crm_ids: Sequence[uuid.UUID], company_name: str = "CRONUS",
    timeout_seconds: float = TIMEOUT_SECONDS,
) -> Report:  # fmt: skip
    """Insert chosen uncoupled CRM rows in the ERP and couple them."""
    mapping, targets = await _load(sessionmaker, mapping_name, Selection(crm_ids=crm_ids))
    directions = _allowed_directions(mapping, Direction.from_crm)
    _settle_coupled(targets, Direction.from_crm)
    await _check_crm_rows(crm, mapping, [t for t in targets if t.coupling is None])
    plan = _plan(targets, directions, creating=True)
    return await _execute(sessionmaker, crm, mapping, targets, plan, company_name=company_name,
                          timeout_seconds=timeout_seconds)  # fmt: skip


# --- after match-based coupling ----------------------------------------------------------


def _chunks(ids: Sequence[uuid.UUID]) -> list[list[uuid.UUID]]:
    return [list(ids[start : start + MAX_RECORDS]) for start in range(0, len(ids), MAX_RECORDS)]


def _direction_after_coupling(mapping: IntegrationTableMapping) -> Direction | None:
    """BC: a bidirectional mapping syncs the way its update-conflict resolution points."""
    if mapping.direction != Direction.bidirectional:
        return None
    return {
        UpdateConflictResolution.get_update_from_crm: Direction.from_crm,
        UpdateConflictResolution.send_update_to_crm: Direction.to_crm,
    }.get(UpdateConflictResolution(mapping.update_conflict_resolution))


@dataclass
class FollowUps:
    created: list[Report] = field(default_factory=list)
    synchronized: list[Report] = field(default_factory=list)


async def after_matching(
    sessionmaker: SessionMaker, crm: DataverseClient, *, mapping_name: str,
    coupled: Sequence[uuid.UUID], unmatched: Sequence[uuid.UUID], company_name: str = "CRONUS",
) -> FollowUps:  # fmt: skip
    """What the mapping asks for after match-based coupling (ERP system ids given).

    "Create new in case of no match" creates the records no CRM row matched (not those
    several rows matched: a new row would only add a duplicate); "synch. after bulk
    coupling" synchronizes the newly coupled ones. Both in chunks of ``MAX_RECORDS``.
    """
    async with session_scope(sessionmaker) as session:
        mapping = await get_mapping_or_raise(session, mapping_name)
    done = FollowUps()
    can_create = Direction.to_crm in directions_of(mapping)
    if mapping.create_new_in_case_of_no_match and can_create:
        for chunk in _chunks(unmatched):
            done.created.append(await create_in_crm(
                sessionmaker, crm, mapping_name=mapping_name,
                selection=Selection(integration_ids=chunk), company_name=company_name,
            ))  # fmt: skip
    if mapping.synch_after_bulk_coupling:
        for chunk in _chunks(coupled):
            done.synchronized.append(await synchronize_now(
                sessionmaker, crm, mapping_name=mapping_name,
                selection=Selection(integration_ids=chunk),
                direction=_direction_after_coupling(mapping), company_name=company_name,
            ))  # fmt: skip
    return done
