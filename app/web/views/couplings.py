"""Couplings: a mapping's ERP records with their coupling and sync state; couple to a CRM
row found by search, uncouple, synchronize now, create in the CRM or the ERP, match-based
coupling with a preview, restore skipped records.

Every action calls the REST route's own function (``app.api.couplings``) with the body
the REST API would get, so checks, CRM client handling and results are the API's.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.api import couplings as api
from app.api.deps import SessionDep, SessionMakerDep, SettingsDep
from app.api.schemas.couplings import (
    CoupleRequest,
    CreateInCrmRequest,
    CreateInErpRequest,
    MatchRequest,
    RestoreSkippedRequest,
    SynchronizeNowRequest,
)
from app.connection.connection_setup import get_connection_setup
from app.couplings import matching, record_state
from app.mappings.table_mappings import get_mapping_or_raise, list_mappings
from app.sync.crm_client import build_crm_client
from app.web.access import Admin, Caller, page
from app.web.forms import form_values, parse
from app.web.rendering import is_htmx, render
from app.web.routing import ConsoleRoute

router = APIRouter(route_class=ConsoleRoute)
CouplingsCaller = Annotated[Caller, Depends(page("couplings"))]
PAGE_SIZE = 50
STATES = ("uncoupled", "coupled", "failed", "skipped")


class BrowseForm(BaseModel):
    model_config = ConfigDict(extra="ignore")

    mapping: str | None = Field(default=None, max_length=50)
    q: str = Field(default="", max_length=100)
    state: str = Field(default="", pattern="^(|uncoupled|coupled|failed|skipped)$")
    after: int | None = Field(default=None, ge=0, le=2**63 - 1)

    @field_validator("mapping", "after", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if value == "" else value


@router.get("/couplings")
async def browse(request: Request, session: SessionDep, caller: CouplingsCaller) -> Response:
    form = parse(BrowseForm, request.query_params)
    mappings = await list_mappings(session)
    context: dict[str, Any] = {
        "title": "Couplings", "form": form, "mappings": mappings, "states": STATES,
        "is_admin": caller.is_admin,
    }  # fmt: skip
    if not form.mapping:
        context["attention"] = await record_state.attention_counts(session)
    else:
        records = await record_state.browse_records(
            session, mapping_name=form.mapping, search=form.q, state=form.state,
            after=form.after, limit=PAGE_SIZE,
        )  # fmt: skip
        query = {k: v for k, v in request.query_params.items() if k != "after" and v}
        context.update(page=records, query=query)
    name = "partials/records_page.html" if is_htmx(request) and form.mapping else "couplings.html"
    return render(request, name, context)


@router.get("/couplings/{mapping_name}/crm-search")
async def crm_search(
    request: Request, session: SessionDep, settings: SettingsDep, caller: CouplingsCaller,
    mapping_name: str, q: Annotated[str, Query(min_length=1, max_length=100)],
    integration_id: uuid.UUID | None = None,
) -> Response:  # fmt: skip
    setup = await get_connection_setup(session, settings)
    async with build_crm_client(settings, setup) as crm:
        rows = await record_state.search_crm(session, crm, mapping_name=mapping_name, text=q)
    context = {"rows": rows, "mapping_name": mapping_name, "integration_id": integration_id,
               "is_admin": caller.is_admin}  # fmt: skip
    return render(request, "partials/crm_results.html", context)


@router.get("/couplings/{mapping_name}/record/{integration_id}")
async def record_page(
    request: Request, session: SessionDep, caller: CouplingsCaller,
    mapping_name: str, integration_id: uuid.UUID,
) -> Response:  # fmt: skip
    mapping = await get_mapping_or_raise(session, mapping_name)
    found = await record_state.record_row(session, mapping=mapping, integration_id=integration_id)
    context = {"title": found.label, "mapping": mapping, "row": found,
               "is_admin": caller.is_admin}  # fmt: skip
    return render(request, "coupling_record.html", context)


def _done(request: Request, message: str, **extra: Any) -> Response:
    context = {"status_code": 200, "detail": message, "errors": [], **extra}
    return render(request, "partials/message.html", context)


@router.post("/couplings/couple")
async def couple(
    request: Request, session: SessionDep, settings: SettingsDep, caller: Admin
) -> Response:
    body = parse(CoupleRequest, await form_values(request))
    result = await api.couple(session, settings, caller.user, body)
    notes = " ".join(result.notes)
    return _done(
        request, f"Coupled to CRM {result.coupling.crm_table} {result.coupling.crm_id}. {notes}"
    )


@router.post("/couplings/uncouple")
async def uncouple(request: Request, session: SessionDep, caller: Admin) -> Response:
    values = await form_values(request)
    coupling_id = parse(_CouplingId, values).coupling_id
    await api.uncouple_one(session, caller.user, coupling_id)
    return _done(request, "Uncoupled.")


class _CouplingId(BaseModel):
    model_config = ConfigDict(extra="forbid")

    coupling_id: uuid.UUID


@router.post("/couplings/restore")
async def restore(request: Request, session: SessionDep, caller: Admin) -> Response:
    values = await form_values(request)
    if "coupling_id" in values:
        body = RestoreSkippedRequest(coupling_ids=[parse(_CouplingId, values).coupling_id])
    else:
        body = parse(RestoreSkippedRequest, values)
    restored = await api.restore_skipped(session, caller.user, body)
    return _done(
        request, f"Restored {restored.count} skipped record(s); the next run tries them again."
    )


def _report_text(report: Any) -> str:
    lines = []
    for record in report.records:
        outcomes = ", ".join(f"{r.direction}: {r.outcome}{' - ' + r.message if r.message else ''}"
                             for r in record.results)  # fmt: skip
        lines.append(f"{record.record}: {outcomes}")
    return "; ".join(lines) or "Nothing to do."


@router.post("/couplings/synchronize")
async def synchronize(
    request: Request, sessionmaker: SessionMakerDep, settings: SettingsDep, caller: Admin
) -> Response:
    values = await form_values(request)
    fields = {"mapping_name": values.get("mapping_name", ""),
              "integration_ids": [values.get("integration_id", "")]}  # fmt: skip
    report = await api.synchronize_now(
        sessionmaker, settings, caller.user, parse(SynchronizeNowRequest, fields)
    )
    return _done(request, f"Synchronized. {_report_text(report)}")


@router.post("/couplings/create-in-crm")
async def create_in_crm(
    request: Request, sessionmaker: SessionMakerDep, settings: SettingsDep, caller: Admin
) -> Response:
    values = await form_values(request)
    fields = {"mapping_name": values.get("mapping_name", ""),
              "integration_ids": [values.get("integration_id", "")]}  # fmt: skip
    report = await api.create_in_crm(
        sessionmaker, settings, caller.user, parse(CreateInCrmRequest, fields)
    )
    return _done(request, f"Created in the CRM. {_report_text(report)}")


@router.post("/couplings/create-in-erp")
async def create_in_erp(
    request: Request, sessionmaker: SessionMakerDep, settings: SettingsDep, caller: Admin
) -> Response:
    values = await form_values(request)
    fields = {"mapping_name": values.get("mapping_name", ""), "crm_ids": [values.get("crm_id", "")]}
    report = await api.create_in_erp(
        sessionmaker, settings, caller.user, parse(CreateInErpRequest, fields)
    )
    return _done(request, f"Created in the ERP. {_report_text(report)}")


@router.post("/couplings/match-preview")
async def match_preview(
    request: Request, session: SessionDep, settings: SettingsDep, caller: Admin
) -> Response:
    body = parse(MatchRequest, await form_values(request))
    setup = await get_connection_setup(session, settings)
    await matching.prepare(session, mapping_name=body.mapping_name)
    async with build_crm_client(settings, setup) as crm:
        report = await matching.preview_matches(
            session, mapping_name=body.mapping_name, crm=crm, limit=body.limit
        )
    context = {"report": report, "mapping_name": body.mapping_name}
    return render(request, "partials/match_preview.html", context)


@router.post("/couplings/match")
async def match(
    request: Request, session: SessionDep, sessionmaker: SessionMakerDep, settings: SettingsDep,
    caller: Admin,
) -> Response:  # fmt: skip
    body = parse(MatchRequest, await form_values(request))
    result = await api.match(session, sessionmaker, settings, caller.user, body)
    return _done(
        request,
        f"Match-based coupling of {result.mapping_name}: {result.coupled} coupled, "
        f"{result.not_matched} not matched{' (more records left)' if result.has_more else ''}.",
    )
