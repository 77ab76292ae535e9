"""Bodies of the job queue and sync log endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from app.models.integration import Direction, JobKind, JobStatus, SynchJobType

MINUTES_PER_YEAR = 525_600


class JobQueueEntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    system_id: uuid.UUID
    kind: JobKind
    mapping_name: str
    description: str
    status: JobStatus
    recurring: bool
    minutes_between_runs: int
    inactivity_timeout_minutes: int
    earliest_start_at: datetime | None
    max_attempts: int
    attempt: int
    rerun_delay_seconds: int
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_error: str
    category: str
    parameters: dict[str, Any]
    claimed_by: str
    claimed_until: datetime | None
    run_count: int
    created_at: datetime
    modified_at: datetime
    modified_by: str


class JobQueueEntryList(BaseModel):
    items: list[JobQueueEntryRead]
    count: int | None
    next: str | None


class JobQueueEntryCreate(BaseModel):
    """A new entry; it starts at ``earliest_start_at`` (default: now) unless on hold."""

    model_config = ConfigDict(extra="forbid")

    kind: JobKind
    mapping_name: str = Field(default="", max_length=50)
    description: str = Field(default="", max_length=250)
    status: Literal[JobStatus.ready, JobStatus.on_hold] = JobStatus.ready
    recurring: bool = True
    minutes_between_runs: int = Field(default=30, ge=1, le=MINUTES_PER_YEAR)
    inactivity_timeout_minutes: int = Field(default=0, ge=0, le=MINUTES_PER_YEAR)
    earliest_start_at: AwareDatetime | None = None
    max_attempts: int = Field(default=3, ge=1, le=100)
    rerun_delay_seconds: int = Field(default=60, ge=0, le=86_400)
    category: str = Field(default="", max_length=30)
    parameters: dict[str, Any] = Field(default_factory=dict)


class JobQueueEntryUpdate(BaseModel):
    """The settings of an entry; status changes go through the actions (set-ready, ...)."""

    model_config = ConfigDict(extra="forbid")

    mapping_name: str | None = Field(default=None, max_length=50)
    description: str | None = Field(default=None, max_length=250)
    recurring: bool | None = None
    minutes_between_runs: int | None = Field(default=None, ge=1, le=MINUTES_PER_YEAR)
    inactivity_timeout_minutes: int | None = Field(default=None, ge=0, le=MINUTES_PER_YEAR)
    earliest_start_at: AwareDatetime | None = None
    max_attempts: int | None = Field(default=None, ge=1, le=100)
    rerun_delay_seconds: int | None = Field(default=None, ge=0, le=86_400)
    category: str | None = Field(default=None, max_length=30)
    parameters: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> Self:
        nulls = sorted(n for n in self.model_fields_set if getattr(self, n) is None)
        if nulls:
            msg = f"{', '.join(nulls)} cannot be null; leave a field out to keep its value."
            raise ValueError(msg)
        return self


class SyncJobRead(BaseModel):
    """One run of one mapping in one direction; ``id`` is the job's public UUID."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID = Field(validation_alias="system_id")
    mapping_name: str
    type: SynchJobType
    direction: Direction
    job_queue_entry_id: int | None
    started_at: datetime | None
    finished_at: datetime | None
    inserted: int
    modified: int
    deleted: int
    unchanged: int
    skipped: int
    failed: int
    coupled: int
    uncoupled: int
    message: str


class SyncJobList(BaseModel):
    items: list[SyncJobRead]
    count: int | None
    next: str | None


class SyncJobErrorRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID = Field(validation_alias="system_id")
    job_id: uuid.UUID
    source_table: str
    source_id: str
    destination_table: str
    destination_id: str
    message: str
    detail: str
    at: datetime | None


class SyncJobErrorList(BaseModel):
    items: list[SyncJobErrorRead]
    count: int | None
    next: str | None
