"""Couplings: list, couple, uncouple, match-based coupling, restore skipped, stale ones,
synchronize chosen records now, create chosen records in the CRM or in the ERP.

The last three run the sync engine inside the request for at most 100 records, with a
deadline (``app.couplings.record_sync``); bigger sets belong to the mapping's job.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import AdminUser, IntegrationUser, SessionDep, SessionMakerDep, SettingsDep
from app.api.schemas.couplings import (
    MAX_IDS,
    CountRead,
    CoupleRead,
    CoupleRequest,
    CouplingList,
    CouplingRead,
    CreateInCrmRequest,
    CreateInErpRequest,
    DirectionResultRead,
    MatchRead,
    MatchRequest,
    RecordMatchRead,
    RecordSyncRead,
    RecordSyncReport,
    RestoreSkippedRequest,
    StaleList,
    StaleRead,
    SynchronizeNowRequest,
)
from app.connection.connection_setup import get_connection_setup
from app.couplings import matching, record_sync, records
from app.dataverse import DataverseClient
from app.db import SessionMaker, session_scope
from app.erp import listing
from app.errors import ConflictError
from app.models.integration import ConnectionSetup
from app.settings import Settings
from app.sync.crm_client import build_crm_client

router = APIRouter(prefix="/couplings", tags=["couplings"])

NameQuery = Annotated[str | None, Query(max_length=50)]


@router.get("", response_model=CouplingList)
async def list_couplings(
    *,
    session: SessionDep,
    _user: IntegrationUser,
    mapping: NameQuery = None,
    table: NameQuery = None,
    crm_table: Annotated[str | None, Query(max_length=100)] = None,
    skipped: bool | None = None,
    failed: bool | None = None,
    integration_id: uuid.UUID | None = None,
    crm_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=records.MAX_PAGE_SIZE)] = 100,
    offset: Annotated[int, Query(ge=0, le=listing.MAX_OFFSET)] = 0,
) -> CouplingList:
    filters = records.CouplingFilter(
        mapping_name=mapping, table_name=table, crm_table=crm_table, is_skipped=skipped,
        is_failed=failed, integration_id=integration_id, crm_id=crm_id,
    )  # fmt: skip
    rows, total = await records.list_couplings(session, filters=filters, limit=limit, offset=offset)
    items = [CouplingRead.from_row(row) for row in rows]
    return CouplingList(total=total, limit=limit, offset=offset, items=items)


@router.post("", response_model=CoupleRead)
async def couple(
    session: SessionDep, settings: SettingsDep, _user: AdminUser, body: CoupleRequest
) -> CoupleRead:
    """Couple an ERP record to an existing CRM row (checked in the CRM)."""
    setup = await get_connection_setup(session, settings)
    await records.get_erp_record_or_raise(session, body.mapping_name, body.integration_id)
    async with build_crm_client(settings, setup) as crm:
        result = await records.couple(
            session,
            mapping_name=body.mapping_name,
            integration_id=body.integration_id,
            crm_id=body.crm_id,
            crm=crm,
            should_replace=body.replace,
        )
    return CoupleRead(
        coupling=CouplingRead.from_row(result.coupling),
        is_new=result.is_new,
        notes=result.replaced_stale,
    )


@router.delete("/by-mapping/{name}", response_model=CountRead)
async def uncouple_mapping(session: SessionDep, _user: AdminUser, name: str) -> CountRead:
    return CountRead(count=await records.uncouple_mapping(session, mapping_name=name))


@router.delete("/{coupling_id}", response_model=CountRead)
async def uncouple_one(session: SessionDep, _user: AdminUser, coupling_id: uuid.UUID) -> CountRead:
    return CountRead(count=await records.uncouple(session, coupling_ids=[coupling_id]))


@router.delete("", response_model=CountRead)
async def uncouple_many(
    session: SessionDep,
    _user: AdminUser,
    ids: Annotated[list[uuid.UUID], Query(min_length=1, max_length=MAX_IDS)],
) -> CountRead:
    return CountRead(count=await records.uncouple(session, coupling_ids=ids))


@router.post("/match", response_model=MatchRead)
async def match(
    session: SessionDep, sessionmaker: SessionMakerDep, settings: SettingsDep, _user: AdminUser,
    body: MatchRequest,
) -> MatchRead:  # fmt: skip
    """Match-based coupling, then what the mapping asks for (create new, synchronize)."""
    setup = await get_connection_setup(session, settings)
    await matching.prepare(session, mapping_name=body.mapping_name)
    async with build_crm_client(settings, setup) as crm:
        report = await matching.match_and_couple(
            session,
            mapping_name=body.mapping_name,
            crm=crm,
            integration_ids=body.integration_ids,
            limit=body.limit,
        )
        await session.commit()  # the follow-ups run the engine in their own sessions
        follow_ups = await _after_matching(sessionmaker, crm, settings, setup, report)
    records = [
        RecordMatchRead(
            integration_id=r.integration_id, record=r.label, outcome=r.outcome.value,
            crm_id=r.crm_id, message=r.message,
        )
        for r in report.records
    ]  # fmt: skip
    coupled = report.count(matching.MatchOutcome.coupled)
    return MatchRead(
        mapping_name=report.mapping_name,
        job_id=report.job_id,
        coupled=coupled,
        not_matched=len(records) - coupled,
        has_more=report.has_more,
        records=records,
        created=[_report(r) for r in follow_ups.created],
        synchronized=[_report(r) for r in follow_ups.synchronized],
    )


async def _after_matching(
    sessionmaker: SessionMaker, crm: DataverseClient, settings: Settings,
    setup: ConnectionSetup, report: matching.MatchReport,
) -> record_sync.FollowUps:  # fmt: skip
    if not setup.is_enabled:  # synchronizing needs the enabled connection; coupling does not
        return record_sync.FollowUps()
    outcomes = matching.MatchOutcome
    return await record_sync.after_matching(
        sessionmaker, crm, mapping_name=report.mapping_name,
        coupled=[r.integration_id for r in report.records if r.outcome == outcomes.coupled],
        unmatched=[r.integration_id for r in report.records if r.outcome == outcomes.no_match],
        company_name=settings.company_name,
    )  # fmt: skip


@router.post("/restore-skipped", response_model=CountRead)
async def restore_skipped(
    session: SessionDep, _user: AdminUser, body: RestoreSkippedRequest
) -> CountRead:
    count = await records.restore_skipped(
        session, coupling_ids=body.coupling_ids, mapping_name=body.mapping_name
    )
    return CountRead(count=count)


async def _stale(
    session: SessionDep, settings: SettingsDep, name: str, *, check_crm: bool, remove: bool
) -> StaleList:
    crm = None
    if check_crm:
        setup = await get_connection_setup(session, settings)
        crm = build_crm_client(settings, setup)
    try:
        action = records.remove_stale_couplings if remove else records.find_stale_couplings
        stale = await action(session, mapping_name=name, crm=crm)
    finally:
        if crm is not None:
            await crm.aclose()
    items = [StaleRead(coupling=CouplingRead.from_row(s.coupling), reason=s.reason) for s in stale]
    return StaleList(mapping_name=name, removed=remove, items=items)


@router.get("/stale/{name}", response_model=StaleList)
async def find_stale(
    *,
    session: SessionDep,
    settings: SettingsDep,
    _user: IntegrationUser,
    name: str,
    check_crm: bool = False,
) -> StaleList:
    """Couplings of a mapping whose ERP record (or, with check_crm, CRM row) is gone."""
    return await _stale(session, settings, name, check_crm=check_crm, remove=False)


@router.delete("/stale/{name}", response_model=StaleList)
async def remove_stale(
    *,
    session: SessionDep,
    settings: SettingsDep,
    _user: AdminUser,
    name: str,
    check_crm: bool = False,
) -> StaleList:
    return await _stale(session, settings, name, check_crm=check_crm, remove=True)


async def _setup(sessionmaker: SessionMaker, settings: Settings) -> ConnectionSetup:
    # Its own short transaction: the run that follows writes from other sessions.
    async with session_scope(sessionmaker) as session:
        setup = await get_connection_setup(session, settings)
    if not setup.is_enabled:
        msg = "The Dynamics 365 Sales connection is not enabled; enable it to synchronize."
        raise ConflictError(msg)
    return setup


def _report(report: record_sync.Report) -> RecordSyncReport:
    records = [
        RecordSyncRead(
            record=t.label, integration_id=t.integration_id, crm_id=t.crm_id,
            results=[DirectionResultRead(direction=r.direction, outcome=r.outcome.value,
                                         message=r.message) for r in t.results],
        )
        for t in report.records
    ]  # fmt: skip
    return RecordSyncReport(
        mapping_name=report.mapping_name, job_ids=report.job_ids, records=records
    )


@router.post("/synchronize", response_model=RecordSyncReport)
async def synchronize_now(
    sessionmaker: SessionMakerDep, settings: SettingsDep, _user: AdminUser,
    body: SynchronizeNowRequest,
) -> RecordSyncReport:  # fmt: skip
    """Synchronize up to 100 chosen records now; uncoupled ones are a 409 unless created."""
    setup = await _setup(sessionmaker, settings)
    selection = record_sync.Selection(
        integration_ids=body.integration_ids, codes=body.codes, crm_ids=body.crm_ids
    )
    async with build_crm_client(settings, setup) as crm:
        report = await record_sync.synchronize_now(
            sessionmaker, crm, mapping_name=body.mapping_name, selection=selection,
            direction=body.direction, create_if_not_coupled=body.create_if_not_coupled,
            company_name=settings.company_name,
        )  # fmt: skip
    return _report(report)


@router.post("/create-in-crm", response_model=RecordSyncReport)
async def create_in_crm(
    sessionmaker: SessionMakerDep, settings: SettingsDep, _user: AdminUser,
    body: CreateInCrmRequest,
) -> RecordSyncReport:  # fmt: skip
    """Create chosen uncoupled ERP records in the CRM and couple them."""
    setup = await _setup(sessionmaker, settings)
    selection = record_sync.Selection(integration_ids=body.integration_ids, codes=body.codes)
    async with build_crm_client(settings, setup) as crm:
        report = await record_sync.create_in_crm(
            sessionmaker, crm, mapping_name=body.mapping_name, selection=selection,
            company_name=settings.company_name,
        )  # fmt: skip
    return _report(report)


@router.post("/create-in-erp", response_model=RecordSyncReport)
async def create_in_erp(
    sessionmaker: SessionMakerDep, settings: SettingsDep, _user: AdminUser,
    body: CreateInErpRequest,
) -> RecordSyncReport:  # fmt: skip
    """Create chosen uncoupled CRM rows in the ERP and couple them."""
    setup = await _setup(sessionmaker, settings)
    async with build_crm_client(settings, setup) as crm:
        report = await record_sync.create_in_erp(
            sessionmaker, crm, mapping_name=body.mapping_name, crm_ids=body.crm_ids,
            company_name=settings.company_name,
        )  # fmt: skip
    return _report(report)
