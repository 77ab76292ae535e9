"""Connection setup: every field (secrets write-only), test connection step by step,
enable/disable, redeploy the solution, "use default synchronization setup", reset the
OData URL. Reads are for integration users, every change for the admin, as in the API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from app.api import connection as api
from app.api import mappings as api_mappings
from app.api.deps import SessionDep, SettingsDep
from app.api.schemas.connection import ConnectionUpdate, DisableRequest
from app.auth.users import list_users
from app.errors import InvalidInputError
from app.models.integration import AuthenticationType
from app.models.security import Role
from app.web.access import Admin, Caller, page
from app.web.forms import form_values, parse, without_blanks
from app.web.rendering import go_to, render
from app.web.routing import ConsoleRoute

router = APIRouter(route_class=ConsoleRoute)
ConnectionCaller = Annotated[Caller, Depends(page("connection"))]
SECRETS = ("client_secret", "password", "odata_access_key", "client_certificate")
# Write-only fields: left blank, the stored value stays.
WRITE_ONLY = (*SECRETS, "client_certificate_password")


@router.get("/connection")
async def connection_page(
    request: Request, session: SessionDep, settings: SettingsDep, caller: ConnectionCaller
) -> Response:
    setup = await api.get_connection(session, settings, caller.user)
    odata_users = [
        u.user_name
        for u in await list_users(session)
        if {Role.product_availability, Role.integration_admin} & u.role_set
    ]
    context = {
        "title": "Connection setup", "setup": setup, "is_admin": caller.is_admin,
        "auth_types": list(AuthenticationType), "odata_users": odata_users,
        "default_odata_url": settings.odata_url.rstrip("/"),
    }  # fmt: skip
    return render(request, "connection.html", context)


@router.post("/connection")
async def save(
    request: Request, session: SessionDep, settings: SettingsDep, caller: Admin
) -> Response:
    values = await form_values(request)
    cleared = {name for name in SECRETS if values.pop(f"clear_{name}", "false") == "true"}
    values = without_blanks(values, WRITE_ONLY)
    values.update(dict.fromkeys(cleared, ""))
    await api.update_connection(session, settings, caller.user, parse(ConnectionUpdate, values))
    return go_to(request, "/connection")


@router.post("/connection/reset-odata-url")
async def reset_odata_url(
    request: Request, session: SessionDep, settings: SettingsDep, caller: Admin
) -> Response:
    body = ConnectionUpdate(reset_odata_url=True)
    await api.update_connection(session, settings, caller.user, body)
    return go_to(request, "/connection")


@router.post("/connection/test")
async def test(
    request: Request, session: SessionDep, settings: SettingsDep, caller: Admin
) -> Response:
    result = await api.test_connection(session, settings, caller.user)
    return render(request, "partials/connection_test.html", {"result": result})


@router.post("/connection/enable")
async def enable(
    request: Request, session: SessionDep, settings: SettingsDep, caller: Admin
) -> Response:
    await api.enable_connection(session, settings, caller.user)
    return go_to(request, "/connection")


@router.post("/connection/disable")
async def disable(
    request: Request, session: SessionDep, settings: SettingsDep, caller: Admin
) -> Response:
    body = parse(DisableRequest, await form_values(request))
    await api.disable_connection(session, settings, caller.user, body)
    return go_to(request, "/connection")


@router.post("/connection/deploy-solution")
async def deploy(
    request: Request, session: SessionDep, settings: SettingsDep, caller: Admin
) -> Response:
    report = await api.deploy_solution(session, settings, caller.user)
    roles = ", ".join(role.name for role in report.roles)
    detail = (
        f"Solution {report.solution_action}; roles {roles}; "
        f"connection record {report.nav_connection_action}."
    )
    return render(request, "partials/message.html", {"status_code": 200, "detail": detail})


@router.post("/connection/reset-defaults")
async def reset_defaults(
    request: Request, session: SessionDep, settings: SettingsDep, caller: Admin
) -> Response:
    values = await form_values(request)
    if values.get("confirm") != "true":
        msg = "Tick the box to confirm: the default mappings and job queue entries are recreated."
        raise InvalidInputError(msg)
    result = await api_mappings.reset_defaults(session, settings, caller.user)
    detail = (
        f"Recreated {len(result.mappings)} default mappings, {result.field_mappings} field "
        f"mappings and {result.job_queue_entries} job queue entries; couplings were kept."
    )
    return render(request, "partials/message.html", {"status_code": 200, "detail": detail})
