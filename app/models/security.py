"""Users, roles and web service access keys (spec security.md)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field

from app.models.base import TableBase, utc_field
from app.models.types import UTCDateTime


class Role(StrEnum):
    integration_admin = "integration-admin"
    integration_user = "integration-user"
    product_availability = "product-availability"


class UserState(StrEnum):
    enabled = "enabled"
    disabled = "disabled"


class User(TableBase, table=True):
    __tablename__ = "user_account"
    user_name: str = Field(max_length=100, unique=True)
    full_name: str = Field(default="", max_length=100)
    email: str = Field(default="", max_length=100)
    password_hash: str | None = Field(default=None, max_length=255)
    roles: str = Field(default="", max_length=200)
    state: UserState = Field(default=UserState.enabled, sa_type=sa.String(10))
    # Every bearer token carries the value it was issued under; a change of password,
    # state or a lost role bumps it, so the user's earlier tokens stop working.
    token_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})

    @property
    def role_set(self) -> frozenset[Role]:
        return frozenset(Role(r) for r in self.roles.split(",") if r)


class WebServiceAccessKey(TableBase, table=True):
    __tablename__ = "web_service_access_key"
    user_id: int = Field(foreign_key="user_account.id", ondelete="CASCADE", index=True)
    key_id: str = Field(max_length=32, unique=True)
    key_digest: str = Field(max_length=128, unique=True)
    expires_at: datetime | None = utc_field()
    last_used_at: datetime | None = utc_field()
    revoked_at: datetime | None = utc_field()


class LoginThrottle(TableBase, table=True):
    """Sign-in counters shared by all API processes (subjects: ``app.auth.throttle``).

    A subject's window starts at its first failure; ``failure_count`` counts the failures
    in that window. ``seen:`` subjects record the last successful password sign-in instead.
    """

    __tablename__ = "login_throttle"
    subject: str = Field(max_length=200, unique=True)
    failure_count: int = 0
    window_started_at: datetime | None = utc_field(index=True)


class ConsoleSession(TableBase, table=True):
    """A web console sign-in: the cookie carries a random token, the row only its digest.

    ``credential`` is the fingerprint of the user's credential when the session began
    (``app.auth.console_sessions.credential_fingerprint``): a password reset or a role
    change ends every session opened before it.
    """

    __tablename__ = "console_session"
    token_digest: str = Field(max_length=64, unique=True)
    user_id: int = Field(foreign_key="user_account.id", ondelete="CASCADE", index=True)
    credential: str = Field(max_length=64)
    last_seen_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
