"""Bodies of the authentication endpoints."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from app.models.security import Role


class TokenResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int


class MeResponse(BaseModel):
    """The caller as the API sees them: name and roles, nothing secret."""

    model_config = ConfigDict(extra="forbid")

    user_name: str
    full_name: str
    roles: list[Role]
