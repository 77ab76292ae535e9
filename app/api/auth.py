"""``POST /api/v1/auth/token`` (OAuth2 password form) and ``GET /api/v1/auth/me``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request

from app.api.deps import CurrentUser, SessionMakerDep, SettingsDep
from app.api.schemas.auth import MeResponse, TokenResponse
from app.auth import tokens
from app.auth.service import authenticate

router = APIRouter(prefix="/auth", tags=["auth"])

# Caps keep a hostile caller from making argon2 hash megabytes or filling throttle rows.
UserNameField = Annotated[str, Form(min_length=1, max_length=100)]
SecretField = Annotated[str, Form(min_length=1, max_length=1024)]


@router.post("/token", response_model=TokenResponse)
async def issue_token(
    request: Request,
    sessionmaker: SessionMakerDep,
    settings: SettingsDep,
    username: UserNameField,
    password: SecretField,
) -> TokenResponse:
    """Password or web service access key in ``password``; answers a short-lived bearer JWT
    that stops working when that credential changes (``app.auth.service.user_for_token``)."""
    client_ip = request.client.host if request.client else None
    sign_in = await authenticate(
        sessionmaker, settings, user_name=username, secret=password, client_ip=client_ip
    )
    user = sign_in.user
    token, lifetime = tokens.create_access_token(
        settings,
        subject=user.user_name,
        roles=sorted(role.value for role in user.role_set),
        version=user.token_version,
        key_id=sign_in.key_id,
    )
    return TokenResponse(access_token=token, expires_in=lifetime)


@router.get("/me", response_model=MeResponse)
async def me(user: CurrentUser) -> MeResponse:
    return MeResponse(
        user_name=user.user_name, full_name=user.full_name, roles=sorted(user.role_set)
    )
