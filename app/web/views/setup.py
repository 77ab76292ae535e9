"""Assisted setup ("Set up Dynamics 365 Sales connection"): the state machine of
``app.connection.assisted_setup`` as a guided form, then the first full synchronization
with a live progress bar. Every step calls the REST route's function."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from app.api import connection as api
from app.api import sync as api_sync
from app.api.deps import SessionDep, SettingsDep
from app.api.schemas.connection import AssistedSetupRead, CredentialsStep, CrmUrlStep, OptionsStep
from app.auth.users import list_users
from app.connection import assisted_setup
from app.errors import InvalidInputError
from app.jobs.queue_summary import entries_state
from app.models.integration import AssistedSetupStatus
from app.models.security import Role
from app.sync import progress
from app.web.access import Admin, Caller, page
from app.web.forms import form_values, parse, without_blanks
from app.web.rendering import go_to, render
from app.web.routing import ConsoleRoute

router = APIRouter(route_class=ConsoleRoute)
SetupCaller = Annotated[Caller, Depends(page("setup"))]
STEP_SCHEMAS: dict[str, type[BaseModel]] = {
    "crm_url": CrmUrlStep, "credentials": CredentialsStep, "options": OptionsStep,
}  # fmt: skip
SECRETS = ("client_secret", "password", "odata_access_key")
MAX_ENTRIES = 100
EntryIds = Annotated[list[Annotated[int, Field(ge=1, le=2**31 - 1)]], Query(max_length=MAX_ENTRIES)]


@router.get("/setup")
async def setup_page(
    request: Request, session: SessionDep, settings: SettingsDep, _caller: SetupCaller,
    entry: EntryIds = [],  # noqa: B006 - FastAPI copies defaults
) -> Response:  # fmt: skip
    flow = await assisted_setup.get_current(session)
    odata_users = [
        user.user_name
        for user in await list_users(session)
        if Role.product_availability in user.role_set or Role.integration_admin in user.role_set
    ]
    context: dict[str, Any] = {
        "title": "Assisted setup",
        "flow": AssistedSetupRead.from_flow(settings, flow) if flow is not None else None,
        "is_in_progress": flow is not None and flow.status == AssistedSetupStatus.in_progress,
        "odata_users": odata_users,
        "entry_ids": entry,
    }
    return render(request, "setup.html", context)


@router.post("/setup/start")
async def start(
    request: Request, session: SessionDep, settings: SettingsDep, caller: Admin
) -> Response:
    await api.start_assisted_setup(session, settings, caller.user)
    return go_to(request, "/setup")


@router.post("/setup/steps/{step}")
async def put_step(
    request: Request, session: SessionDep, settings: SettingsDep, caller: Admin, step: str
) -> Response:
    schema = STEP_SCHEMAS.get(step)
    if schema is None:
        await assisted_setup.put_step(session, settings, step=step, answers={})  # its 404
        return go_to(request, "/setup")
    values = without_blanks(await form_values(request), SECRETS)
    body = parse(schema, values)
    answers = body.model_dump(exclude_unset=True)
    await assisted_setup.put_step(session, settings, step=step, answers=answers)
    return go_to(request, "/setup")


@router.post("/setup/finish")
async def finish(
    request: Request, session: SessionDep, settings: SettingsDep, caller: Admin
) -> Response:
    await api.finish_assisted_setup(session, settings, caller.user)
    return go_to(request, "/setup")


@router.post("/setup/cancel")
async def cancel(
    request: Request, session: SessionDep, settings: SettingsDep, caller: Admin
) -> Response:
    await api.cancel_assisted_setup(session, settings, caller.user)
    return go_to(request, "/setup")


@router.post("/setup/first-sync")
async def first_sync(request: Request, session: SessionDep, caller: Admin) -> Response:
    queued = await api_sync.full_sync(request, session, caller.user)
    ids = "&".join(f"entry={e.id}" for e in queued.entries)
    return go_to(request, f"/setup?{ids}#first-sync")


@router.get("/setup/progress")
async def first_sync_progress(
    request: Request, session: SessionDep, _caller: SetupCaller,
    entry: EntryIds,
) -> Response:  # fmt: skip
    if not entry:
        msg = "Name the job queue entries to follow (entry=...)."
        raise InvalidInputError(msg)
    state = await entries_state(session, entry)
    running = await progress.running_jobs(session, entry_ids=entry)
    context = {"state": state, "running": running, "entry_ids": entry}
    return render(request, "partials/first_sync.html", context)
