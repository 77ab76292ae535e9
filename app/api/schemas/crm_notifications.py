"""Bodies of the CRM change notification receiver and its status."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class NotificationAccepted(BaseModel):
    """A delivery stored (202) or ignored (200, with the reason)."""

    status: Literal["accepted", "ignored"] = Field(
        description="accepted: stored for the next run; ignored: nothing to do (see reason)."
    )
    entity: str = Field(description="The CRM table's logical name (PrimaryEntityName).")
    message: str = Field(description="Create, Update or Delete (MessageName).")
    record_id: uuid.UUID = Field(description="The changed CRM record (PrimaryEntityId).")
    reason: str = Field(default="", description="Why an ignored delivery was ignored.")


class NotificationStatusRead(BaseModel):
    """Whether CRM change notifications arrive."""

    model_config = ConfigDict(from_attributes=True)

    registered: bool = Field(description="A webhook and its steps are registered in the CRM.")
    registered_at: datetime | None = Field(description="When the webhook was registered.")
    url: str = Field(description="Where the CRM posts (the receiver under the public URL).")
    steps: int = Field(description="Registered steps (one per message and table).")
    last_error: str = Field(description="The last registration error, or empty.")
    received_count: int = Field(description="Deliveries accepted (stored or ignored).")
    last_received_at: datetime | None = Field(description="When the last one was accepted.")
    refused_count: int = Field(description="Deliveries refused: wrong key, malformed, replays.")
    last_refused_at: datetime | None = Field(description="When the last one was refused.")
    last_refusal: str = Field(description="Why the last delivery was refused (short).")
    pending: int = Field(description="Changes received that a run has not read yet.")
