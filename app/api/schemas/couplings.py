"""Bodies of the coupling endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.api.schemas.rows import RowRead
from app.models.integration import Direction, SynchResult

MAX_IDS = 1000


class CouplingRead(RowRead):
    id: uuid.UUID
    table_name: str
    integration_id: uuid.UUID
    crm_table: str
    crm_id: uuid.UUID
    last_synch_modified_on: datetime | None
    last_synch_crm_modified_on: datetime | None
    last_synch_result: SynchResult | None
    last_synch_crm_result: SynchResult | None
    skipped: bool
    created_at: datetime


class CouplingList(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[CouplingRead]


class CoupleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mapping_name: str = Field(max_length=50)
    integration_id: uuid.UUID
    crm_id: uuid.UUID
    replace: bool = False


class CoupleRead(BaseModel):
    coupling: CouplingRead
    is_new: bool
    notes: list[str]


class CountRead(BaseModel):
    count: int


class MatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mapping_name: str = Field(max_length=50)
    integration_ids: list[uuid.UUID] | None = Field(default=None, min_length=1, max_length=MAX_IDS)
    limit: int = Field(default=MAX_IDS, ge=1, le=MAX_IDS)


class RecordMatchRead(BaseModel):
    integration_id: uuid.UUID
    record: str
    outcome: str
    crm_id: uuid.UUID | None
    message: str


class RestoreSkippedRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    coupling_ids: list[uuid.UUID] | None = Field(default=None, min_length=1, max_length=MAX_IDS)
    mapping_name: str | None = Field(default=None, max_length=50)

    @model_validator(mode="after")
    def _one_scope(self) -> RestoreSkippedRequest:
        if not self.coupling_ids and self.mapping_name is None:
            msg = "give coupling_ids or mapping_name"
            raise ValueError(msg)
        return self


class StaleRead(BaseModel):
    coupling: CouplingRead
    reason: str


class StaleList(BaseModel):
    mapping_name: str
    removed: bool
    items: list[StaleRead]


MAX_RECORDS_NOW = 100  # app.couplings.record_sync.MAX_RECORDS: run inside the request


class _ChosenRecords(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mapping_name: str = Field(max_length=50)
    integration_ids: list[uuid.UUID] | None = Field(
        default=None, min_length=1, max_length=MAX_RECORDS_NOW
    )
    codes: list[Annotated[str, Field(min_length=1, max_length=50)]] | None = Field(
        default=None, min_length=1, max_length=MAX_RECORDS_NOW
    )


class SynchronizeNowRequest(_ChosenRecords):
    crm_ids: list[uuid.UUID] | None = Field(default=None, min_length=1, max_length=MAX_RECORDS_NOW)
    direction: Direction | None = None
    create_if_not_coupled: bool = False

    @model_validator(mode="after")
    def _one_selection(self) -> SynchronizeNowRequest:
        given = [self.integration_ids, self.codes, self.crm_ids]
        if sum(value is not None for value in given) != 1:
            msg = "give exactly one of integration_ids, codes or crm_ids"
            raise ValueError(msg)
        return self


class CreateInCrmRequest(_ChosenRecords):
    @model_validator(mode="after")
    def _one_selection(self) -> CreateInCrmRequest:
        if (self.integration_ids is None) == (self.codes is None):
            msg = "give exactly one of integration_ids or codes"
            raise ValueError(msg)
        return self


class CreateInErpRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mapping_name: str = Field(max_length=50)
    crm_ids: list[uuid.UUID] = Field(min_length=1, max_length=MAX_RECORDS_NOW)


class DirectionResultRead(BaseModel):
    direction: Direction
    outcome: str
    message: str


class RecordSyncRead(BaseModel):
    record: str
    integration_id: uuid.UUID | None
    crm_id: uuid.UUID | None
    results: list[DirectionResultRead]


class RecordSyncReport(BaseModel):
    mapping_name: str
    job_ids: dict[Direction, uuid.UUID]
    records: list[RecordSyncRead]


class MatchRead(BaseModel):
    mapping_name: str
    job_id: uuid.UUID
    coupled: int
    not_matched: int
    has_more: bool
    records: list[RecordMatchRead]
    # The mapping's follow-ups: "create new in case of no match", "synch. after bulk coupling".
    created: list[RecordSyncReport] = []
    synchronized: list[RecordSyncReport] = []
