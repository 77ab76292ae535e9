"""Bodies of the mapping endpoints: table mappings, field mappings, field lists."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.api.schemas.connection import WEBHOOK_TEXT, WebhookRead
from app.api.schemas.rows import RowRead
from app.mappings.field_catalog import FieldInfo
from app.models.integration import (
    DeletionConflictResolution,
    Direction,
    FieldMappingStatus,
    IntegrationTableMapping,
    UpdateConflictResolution,
)


class MappingRead(BaseModel):
    name: str
    table_name: str
    integration_table: str
    direction: Direction
    table_filter: str
    integration_table_filter: str
    synch_only_coupled_records: bool
    dependency_filter: str
    update_conflict_resolution: UpdateConflictResolution
    deletion_conflict_resolution: DeletionConflictResolution
    create_new_in_case_of_no_match: bool
    synch_after_bulk_coupling: bool
    erp_modified_watermark: datetime | None
    crm_modified_watermark: datetime | None
    user_defined: bool
    modified_at: datetime

    @classmethod
    def from_row(cls, row: IntegrationTableMapping) -> MappingRead:
        return cls.model_validate(row.model_dump(warnings=False))


class MappingUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    direction: Direction = Direction.bidirectional
    table_filter: str = Field(default="", max_length=2048)
    integration_table_filter: str = Field(default="", max_length=2048)
    synch_only_coupled_records: bool = True
    dependency_filter: str = Field(default="", max_length=250)
    update_conflict_resolution: UpdateConflictResolution = UpdateConflictResolution.none
    deletion_conflict_resolution: DeletionConflictResolution = DeletionConflictResolution.none
    create_new_in_case_of_no_match: bool = False
    synch_after_bulk_coupling: bool = False


class FieldMappingRead(RowRead):
    id: uuid.UUID
    mapping_name: str
    field: str
    integration_field: str
    direction: Direction
    constant_value: str
    validate_field: bool
    not_null: bool
    clear_value_on_failed_sync: bool
    status: FieldMappingStatus
    use_for_match_based_coupling: bool
    case_sensitive_matching: bool
    match_priority: int
    transformation: str
    user_defined: bool


class FieldMappingUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    direction: Direction = Direction.bidirectional
    constant_value: str = Field(default="", max_length=250)
    validate_field: bool = True
    not_null: bool = False
    clear_value_on_failed_sync: bool = False
    status: FieldMappingStatus = FieldMappingStatus.enabled
    use_for_match_based_coupling: bool = False
    case_sensitive_matching: bool = False
    match_priority: int = Field(default=0, ge=0, le=100)


class FieldMappingCreate(BaseModel):
    """A user-defined field mapping: ERP field and CRM attribute, or one and a constant."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(default="", max_length=100)
    integration_field: str = Field(default="", max_length=100)
    direction: Direction
    constant_value: str = Field(default="", max_length=250)
    validate_field: bool = True
    not_null: bool = False
    clear_value_on_failed_sync: bool = False
    status: FieldMappingStatus = FieldMappingStatus.enabled
    use_for_match_based_coupling: bool = False
    case_sensitive_matching: bool = False
    match_priority: int = Field(default=0, ge=0, le=100)
    transformation: str = Field(default="", max_length=50)


class FieldRead(BaseModel):
    name: str
    type: str
    target: str = ""
    filter_name: str
    is_computed: bool = False

    @classmethod
    def from_info(cls, info: FieldInfo) -> FieldRead:
        return cls(
            name=info.name,
            type=info.type.value,
            target=info.target,
            filter_name=info.filter_name,
            is_computed=info.is_computed,
        )


class IntegrationFieldsRead(BaseModel):
    mapping_name: str
    table_name: str
    integration_table: str
    erp_fields: list[FieldRead]
    crm_fields: list[FieldRead]


class ResetDefaultsRead(BaseModel):
    mappings: list[str]
    field_mappings: int
    job_queue_entries: int
    kept_user_defined: list[str]
    kept_user_defined_fields: int
    option_mappings_added: int
    # The change notifications registered again for the new mappings (connection enabled).
    webhook: WebhookRead | None = Field(default=None, description=WEBHOOK_TEXT)


class OptionMappingRead(RowRead):
    id: uuid.UUID
    option_set: str
    erp_code: str
    option_value: int
    caption: str
    modified_at: datetime


class OptionMappingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    option_set: str = Field(max_length=30)
    erp_code: str = Field(max_length=10)
    option_value: int
    caption: str = Field(default="", max_length=100)


class OptionMappingUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    erp_code: str = Field(default="", max_length=10)
    option_value: int = 0
    caption: str = Field(default="", max_length=100)


class OptionSetRead(BaseModel):
    name: str
    title: str
    crm_attributes: list[str]


class OptionResetRead(BaseModel):
    option_mappings: int
