"""Sign in with user name and password (the token endpoint's check and throttling), sign out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from starlette.responses import RedirectResponse

from app.api.auth import SecretField, UserNameField
from app.api.deps import SessionDep, SessionMakerDep, SettingsDep
from app.auth import access_keys, console_sessions
from app.auth.service import authenticate
from app.errors import TooManyRequestsError, UnauthorizedError
from app.web import cookies
from app.web.access import Caller, SignedIn, SignInRequiredError, current_caller
from app.web.rendering import render
from app.web.routing import ConsoleRoute

router = APIRouter(route_class=ConsoleRoute)

KEY_NOT_ACCEPTED = (
    "Sign in with your password. Web service access keys are for the OData service and the "
    "API, not for the console."
)


def _safe_next(target: str | None) -> str | None:
    """Only a path of this site: never another origin (``//host``, ``/\\host``, a scheme)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    return target[:500]


def _form(
    request: Request, settings: SettingsDep, *, next_url: str | None, message: str = "",
    status_code: int = 200, user_name: str = "",
) -> Response:  # fmt: skip
    token = cookies.new_sign_in_token()
    context = {
        "next_url": _safe_next(next_url) or "", "message": message, "user_name": user_name,
        "sign_in_token": token,
    }  # fmt: skip
    response = render(request, "sign_in.html", context, status_code=status_code)
    cookies.set_sign_in_cookie(response, request, settings, value=token)
    return response


@router.get("/sign-in")
async def sign_in_page(
    request: Request, session: SessionDep, settings: SettingsDep, next: str | None = None
) -> Response:
    try:
        caller = await current_caller(request, session, settings)
    except SignInRequiredError:
        return _form(request, settings, next_url=next)
    return RedirectResponse(_safe_next(next) or caller.home, status_code=303)


@router.post("/sign-in")
async def sign_in(
    request: Request,
    session: SessionDep,
    sessionmaker: SessionMakerDep,
    settings: SettingsDep,
    username: UserNameField,
    password: SecretField,
    sign_in_token: Annotated[str, Form(max_length=100)] = "",
    next_url: Annotated[str, Form(alias="next", max_length=500)] = "",
) -> Response:
    if not cookies.is_sign_in_token_valid(request, sign_in_token):
        message = "The sign-in form expired: please sign in again."
        return _form(request, settings, next_url=next_url, message=message, status_code=403)
    if access_keys.parse_key_id(password) is not None:
        return _form(request, settings, next_url=next_url, message=KEY_NOT_ACCEPTED,
                     status_code=401, user_name=username)  # fmt: skip
    client_ip = request.client.host if request.client else None
    try:
        signed_in = await authenticate(
            sessionmaker, settings, user_name=username, secret=password, client_ip=client_ip
        )
    except (UnauthorizedError, TooManyRequestsError) as exc:
        response = _form(request, settings, next_url=next_url, message=exc.detail,
                         status_code=exc.status_code, user_name=username)  # fmt: skip
        response.headers.update(exc.headers or {})
        return response
    user = signed_in.user
    token = await console_sessions.open_session(session, settings, user=user)
    caller = Caller(user=user, csrf="")
    response = RedirectResponse(_safe_next(next_url) or caller.home, status_code=303)
    cookies.set_session_cookie(response, request, settings, token=token)
    return response


@router.post("/sign-out")
async def sign_out(
    request: Request, session: SessionDep, settings: SettingsDep, _caller: SignedIn
) -> Response:
    token = cookies.session_token(request, settings)
    if token:
        await console_sessions.end_session(session, token=token)
    response = RedirectResponse("/sign-in", status_code=303)
    cookies.clear_session_cookie(response)
    return response
