"""Bodies of the synchronization actions and their progress."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.api.schemas.jobs import JobQueueEntryRead


class QueuedRuns(BaseModel):
    """The one-off job queue entries a request created, in the order they will run."""

    entries: list[JobQueueEntryRead]


class SyncJobProgress(BaseModel):
    """One sync job (one direction of one run): records done of total (None: unknown)."""

    model_config = ConfigDict(from_attributes=True)

    job_id: uuid.UUID
    mapping_name: str
    direction: str
    job_queue_entry_id: int | None
    started_at: datetime | None
    finished_at: datetime | None
    done: int
    total: int | None


class SyncProgress(BaseModel):
    items: list[SyncJobProgress]


class DeleteOldSyncJobs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    older_than_days: int = Field(default=30, ge=0, le=36_500)


class DeletedSyncJobs(BaseModel):
    deleted: int
