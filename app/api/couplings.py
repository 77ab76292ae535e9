"""Couplings: list, couple, uncouple, match-based coupling, restore skipped, stale ones.

Synchronizing one record now and creating new CRM rows for selected records need the
sync engine and are not offered here yet.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.api.schemas.couplings import (
    MAX_IDS,
    CountRead,
    CoupleRead,
    CoupleRequest,
    CouplingList,
    CouplingRead,
    MatchRead,
    MatchRequest,
    RecordMatchRead,
    RestoreSkippedRequest,
    StaleList,
    StaleRead,
)
from app.auth.deps import AdminUser, IntegrationUser, SessionDep, SettingsDep
from app.sync import couplings, matching
from app.sync.connection import get_connection_setup
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
    limit: Annotated[int, Query(ge=1, le=couplings.MAX_PAGE_SIZE)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CouplingList:
    filters = couplings.CouplingFilter(
        mapping_name=mapping, table_name=table, crm_table=crm_table, is_skipped=skipped,
        is_failed=failed, integration_id=integration_id, crm_id=crm_id,
    )  # fmt: skip
    rows, total = await couplings.list_couplings(
        session, filters=filters, limit=limit, offset=offset
    )
    items = [CouplingRead.from_row(row) for row in rows]
    return CouplingList(total=total, limit=limit, offset=offset, items=items)


@router.post("", response_model=CoupleRead)
async def couple(
    session: SessionDep, settings: SettingsDep, _user: AdminUser, body: CoupleRequest
) -> CoupleRead:
    """Couple an ERP record to an existing CRM row (checked in the CRM)."""
    setup = await get_connection_setup(session, settings)
    await couplings.get_erp_record_or_raise(session, body.mapping_name, body.integration_id)
    async with build_crm_client(settings, setup) as crm:
        result = await couplings.couple(
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
    return CountRead(count=await couplings.uncouple_mapping(session, mapping_name=name))


@router.delete("/{coupling_id}", response_model=CountRead)
async def uncouple_one(session: SessionDep, _user: AdminUser, coupling_id: uuid.UUID) -> CountRead:
    return CountRead(count=await couplings.uncouple(session, coupling_ids=[coupling_id]))


@router.delete("", response_model=CountRead)
async def uncouple_many(
    session: SessionDep,
    _user: AdminUser,
    ids: Annotated[list[uuid.UUID], Query(min_length=1, max_length=MAX_IDS)],
) -> CountRead:
    return CountRead(count=await couplings.uncouple(session, coupling_ids=ids))


@router.post("/match", response_model=MatchRead)
async def match(
    session: SessionDep, settings: SettingsDep, _user: AdminUser, body: MatchRequest
) -> MatchRead:
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
    )


@router.post("/restore-skipped", response_model=CountRead)
async def restore_skipped(
    session: SessionDep, _user: AdminUser, body: RestoreSkippedRequest
) -> CountRead:
    count = await couplings.restore_skipped(
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
        action = couplings.remove_stale_couplings if remove else couplings.find_stale_couplings
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
