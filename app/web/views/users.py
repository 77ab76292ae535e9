"""Users and web service access keys (integration-admin): create, roles, disable/enable,
reset password; issue, rotate, revoke keys. A new key or password is shown once."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from app.api import users as api
from app.api.deps import SessionDep, SettingsDep
from app.api.schemas.users import KeyCreate, UserCreate, UserUpdate
from app.clock import utc_now
from app.errors import InvalidInputError
from app.models.security import Role
from app.web.access import Admin, Caller, page
from app.web.forms import form_lists, form_values, parse
from app.web.rendering import go_to, render
from app.web.routing import ConsoleRoute

router = APIRouter(route_class=ConsoleRoute)
UsersCaller = Annotated[Caller, Depends(page("users"))]
MAX_KEY_DAYS = 3650


@router.get("/users")
async def users_page(request: Request, session: SessionDep, _caller: UsersCaller) -> Response:
    context = {
        "title": "Users and keys",
        "users": (await api.list_users(session)).items,
        "roles": list(Role),
    }
    return render(request, "users.html", context)


@router.get("/users/{user_name}")
async def user_page(
    request: Request, session: SessionDep, _caller: UsersCaller, user_name: str
) -> Response:
    user = await api.get_user(session, user_name)
    keys = (await api.list_keys(session, user.user_name)).items
    context = {"title": user.user_name, "user": user, "keys": keys, "roles": list(Role)}
    return render(request, "user.html", context)


@router.post("/users")
async def create(request: Request, session: SessionDep, _caller: Admin) -> Response:
    values = await form_values(request)
    fields = {
        "user_name": values.get("user_name", ""), "roles": await form_lists(request, "roles"),
        "full_name": values.get("full_name", ""), "email": values.get("email", ""),
    }  # fmt: skip
    if values.get("password"):
        fields["password"] = values["password"]
    user = await api.create_user(session, parse(UserCreate, fields))
    return go_to(request, f"/users/{user.user_name}")


@router.post("/users/{user_name}/roles")
async def set_roles(
    request: Request, session: SessionDep, _caller: Admin, user_name: str
) -> Response:
    body = parse(UserUpdate, {"roles": await form_lists(request, "roles")})
    await api.update_user(session, user_name, body)
    return go_to(request, f"/users/{user_name}")


@router.post("/users/{user_name}/state")
async def set_state(
    request: Request, session: SessionDep, _caller: Admin, user_name: str
) -> Response:
    body = parse(UserUpdate, {"state": (await form_values(request)).get("state", "")})
    await api.update_user(session, user_name, body)
    return go_to(request, f"/users/{user_name}")


def _shown_once(request: Request, what: str, value: str) -> Response:
    return render(request, "partials/shown_once.html", {"what": what, "value": value})


@router.post("/users/{user_name}/reset-password")
async def reset_password(
    request: Request, session: SessionDep, _caller: Admin, user_name: str
) -> Response:
    """A new generated password; every console session of the user ends with the old one."""
    password = secrets.token_urlsafe(18)
    await api.update_user(session, user_name, UserUpdate(password=password))
    return _shown_once(request, f"New password of {user_name}", password)


def _expiry(values: dict[str, str]) -> KeyCreate | None:
    days = values.get("expires_in_days", "")
    if not days:
        return None
    if not days.isdigit() or not 1 <= int(days) <= MAX_KEY_DAYS:
        msg = f"Days until the key expires: a whole number from 1 to {MAX_KEY_DAYS}, or empty."
        raise InvalidInputError(msg)
    return KeyCreate(expires_at=utc_now() + timedelta(days=int(days)))


@router.post("/users/{user_name}/keys")
async def issue_key(
    request: Request, session: SessionDep, settings: SettingsDep, _caller: Admin, user_name: str
) -> Response:
    body = _expiry(await form_values(request))
    issued = await api.create_key(session, settings, user_name, body)
    return _shown_once(
        request, f"New access key of {user_name} (works beside earlier keys)", issued.key
    )


@router.post("/users/{user_name}/keys/rotate")
async def rotate_key(
    request: Request, session: SessionDep, settings: SettingsDep, _caller: Admin, user_name: str
) -> Response:
    body = _expiry(await form_values(request))
    issued = await api.rotate_key(session, settings, user_name, body)
    return _shown_once(
        request, f"New access key of {user_name} (earlier keys are revoked)", issued.key
    )


@router.post("/users/{user_name}/keys/revoke")
async def revoke_keys(
    request: Request, session: SessionDep, _caller: Admin, user_name: str
) -> Response:
    revoked = await api.revoke_keys(session, user_name)
    detail = f"Revoked {revoked.revoked} key(s) of {user_name}."
    return render(request, "partials/message.html", {"status_code": 200, "detail": detail})
