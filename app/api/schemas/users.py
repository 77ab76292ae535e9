"""Users and web service access keys as the REST API shows them: never a hash or digest."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field, field_validator

from app.auth.users import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, USER_NAME_PATTERN
from app.clock import utc_now
from app.models.security import Role, User, UserState, WebServiceAccessKey

UserName = Annotated[str, Field(pattern=USER_NAME_PATTERN, max_length=100)]
Password = Annotated[str, Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)]
Roles = Annotated[list[Role], Field(min_length=1, max_length=len(Role))]
FullName = Annotated[str, Field(max_length=100)]
Email = EmailStr | Literal[""]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserCreate(_Input):
    user_name: UserName
    roles: Roles
    password: Password | None = None
    full_name: FullName = ""
    email: Email = ""


class UserUpdate(_Input):
    """Only the fields sent change. ``"password": null`` removes the password (key-only)."""

    roles: Roles | None = None
    state: UserState | None = None
    full_name: FullName | None = None
    email: Email | None = None
    password: Password | None = None

    @field_validator("roles", "state", "full_name", "email", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            msg = "may not be null; leave the field out to keep its value"
            raise ValueError(msg)
        return value


class UserRead(BaseModel):
    user_name: str
    full_name: str
    email: str
    roles: list[Role]
    state: UserState
    has_password: bool
    created_at: datetime
    modified_at: datetime

    @classmethod
    def from_user(cls, user: User) -> UserRead:
        return cls(
            user_name=user.user_name,
            full_name=user.full_name,
            email=user.email,
            roles=sorted(user.role_set),
            state=user.state,
            has_password=user.password_hash is not None,
            created_at=user.created_at,
            modified_at=user.modified_at,
        )


class UserList(BaseModel):
    """Every user, as every list of the API: ``items``, ``count``, ``next`` (no paging)."""

    items: list[UserRead]
    count: int
    next: str | None = None


class UserDeleted(BaseModel):
    user_name: str
    access_keys_deleted: int


class KeyCreate(_Input):
    """BC's "key expiration date"; no expiry when left out."""

    expires_at: AwareDatetime | None = None


class KeyRead(BaseModel):
    key_id: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    is_active: bool

    @classmethod
    def from_row(cls, row: WebServiceAccessKey) -> KeyRead:
        is_expired = row.expires_at is not None and row.expires_at <= utc_now()
        return cls(
            key_id=row.key_id,
            created_at=row.created_at,
            expires_at=row.expires_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
            is_active=row.revoked_at is None and not is_expired,
        )


class KeyList(BaseModel):
    """A user's keys, as every list of the API: ``items``, ``count``, ``next`` (no paging)."""

    items: list[KeyRead]
    count: int
    next: str | None = None


class CrmKeyRead(BaseModel):
    """What a key change did to the CRM, which calls item availability as the OData user."""

    action: str  # unaffected | updated | created | stored | revoked
    message: str


class KeyIssued(KeyRead):
    """The only response that carries a key: store it now, it cannot be shown again."""

    user_name: str
    key: str


class KeyRotated(KeyIssued):
    crm: CrmKeyRead  # whether the CRM, if it calls item availability as this user, got it


class KeysRevoked(BaseModel):
    user_name: str
    revoked: int
    crm: CrmKeyRead
