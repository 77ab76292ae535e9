"""The audit mixin every table carries (BC's SystemId, SystemCreatedAt, SystemModifiedAt/By)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlmodel import Field, SQLModel

from app.clock import utc_now
from app.models.types import DECIMAL_PRECISION, DECIMAL_SCALE, ExactDecimal, UTCDateTime


class TableBase(SQLModel):
    id: int | None = Field(default=None, primary_key=True)
    system_id: uuid.UUID = Field(default_factory=uuid.uuid4, unique=True, nullable=False)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime, nullable=False)
    modified_at: datetime = Field(
        default_factory=utc_now, sa_type=UTCDateTime, nullable=False, index=True
    )
    modified_by: str = Field(default="system", max_length=100)


def money(default: Decimal = Decimal(0), **kwargs: Any) -> Any:
    """An exact decimal column for amounts and quantities (``ExactDecimal``, never float)."""
    return Field(
        default=default,
        max_digits=DECIMAL_PRECISION,
        decimal_places=DECIMAL_SCALE,
        sa_type=ExactDecimal,
        **kwargs,
    )


def utc_field(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)
