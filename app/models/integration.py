"""Integration tables: connection setup, mappings, couplings, sync log and job queue."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Field

from app.models.base import TableBase, utc_field
from app.models.types import UTCDateTime


class AuthenticationType(StrEnum):
    oauth_client_secret = "oauth_client_secret"  # noqa: S105 - an option name
    oauth_certificate = "oauth_certificate"
    office365 = "office365"
    ad = "ad"
    ifd = "ifd"


class ConnectionSetup(TableBase, table=True):
    """One row. Columns ending in ``_encrypted`` hold Fernet tokens and are never returned."""

    __tablename__ = "connection_setup"
    server_address: str = Field(default="", max_length=250)
    is_enabled: bool = False
    authentication_type: AuthenticationType = Field(
        default=AuthenticationType.oauth_client_secret, sa_type=sa.String(30)
    )
    tenant_id: str = Field(default="", max_length=100)
    token_url: str = Field(default="", max_length=250)
    client_id: str = Field(default="", max_length=100)
    client_secret_encrypted: str = Field(default="", sa_type=sa.Text)
    # oauth_certificate: the certificate and its private key (PEM), as one Fernet token.
    client_certificate_encrypted: str = Field(default="", sa_type=sa.Text)
    user_name: str = Field(default="", max_length=250)
    password_encrypted: str = Field(default="", sa_type=sa.Text)
    connection_string: str = Field(default="", max_length=2048)
    api_version: str = Field(default="9.2", max_length=10)
    dataverse_connection_enabled: bool = False
    is_solution_installed: bool = False
    item_availability_enabled: bool = False
    odata_url: str = Field(default="", max_length=250)
    odata_user_name: str = Field(default="", max_length=100)
    odata_access_key_encrypted: str = Field(default="", sa_type=sa.Text)
    sales_order_integration_enabled: bool = False
    bidirectional_sales_order_integration: bool = False
    auto_create_sales_orders: bool = False
    auto_process_sales_quotes: bool = False
    unit_group_mapping_enabled: bool = True
    default_price_list_id: uuid.UUID | None = None
    base_currency_id: uuid.UUID | None = None
    base_currency_code: str = Field(default="", max_length=10)
    base_currency_symbol: str = Field(default="", max_length=10)
    base_currency_precision: int = 2
    integration_user_id: uuid.UUID | None = None
    disable_reason: str = Field(default="", max_length=250)
    # The last "test connection": when, whether it passed, and its first failure (or "").
    last_tested_at: datetime | None = utc_field()
    last_test_ok: bool | None = None
    last_test_message: str = Field(default="", max_length=500)


class Direction(StrEnum):
    to_crm = "to_crm"
    from_crm = "from_crm"
    bidirectional = "bidirectional"


class UpdateConflictResolution(StrEnum):
    none = "none"
    send_update_to_crm = "send_update_to_crm"
    get_update_from_crm = "get_update_from_crm"


class DeletionConflictResolution(StrEnum):
    none = "none"
    restore_records = "restore_records"
    remove_coupling = "remove_coupling"


class IntegrationTableMapping(TableBase, table=True):
    __tablename__ = "integration_table_mapping"
    name: str = Field(max_length=50, unique=True)
    table_name: str = Field(max_length=50)
    integration_table: str = Field(max_length=100)
    direction: Direction = Field(default=Direction.bidirectional, sa_type=sa.String(20))
    table_filter: str = Field(default="", max_length=2048)
    integration_table_filter: str = Field(default="", max_length=2048)
    synch_only_coupled_records: bool = True
    dependency_filter: str = Field(default="", max_length=250)
    update_conflict_resolution: UpdateConflictResolution = Field(
        default=UpdateConflictResolution.none, sa_type=sa.String(30)
    )
    deletion_conflict_resolution: DeletionConflictResolution = Field(
        default=DeletionConflictResolution.none, sa_type=sa.String(30)
    )
    create_new_in_case_of_no_match: bool = False
    synch_after_bulk_coupling: bool = False
    erp_modified_watermark: datetime | None = utc_field()
    crm_modified_watermark: datetime | None = utc_field()
    parent_name: str = Field(default="", max_length=50)
    delete_after_synchronization: bool = False
    user_defined: bool = False


class FieldMappingStatus(StrEnum):
    enabled = "enabled"
    disabled = "disabled"


class IntegrationFieldMapping(TableBase, table=True):
    __tablename__ = "integration_field_mapping"
    __table_args__ = (
        sa.UniqueConstraint(
            "mapping_name", "field", "integration_field", name="uq_field_mapping_pair"
        ),
    )
    mapping_name: str = Field(
        max_length=50, foreign_key="integration_table_mapping.name", ondelete="CASCADE", index=True
    )
    field: str = Field(default="", max_length=100)
    integration_field: str = Field(default="", max_length=100)
    direction: Direction = Field(default=Direction.bidirectional, sa_type=sa.String(20))
    constant_value: str = Field(default="", max_length=250)
    validate_field: bool = False
    not_null: bool = False
    clear_value_on_failed_sync: bool = False
    status: FieldMappingStatus = Field(default=FieldMappingStatus.enabled, sa_type=sa.String(10))
    use_for_match_based_coupling: bool = False
    case_sensitive_matching: bool = False
    match_priority: int = 0
    transformation: str = Field(default="", max_length=50)
    # Added by an admin (not one of the defaults): kept by "use default synchronization setup".
    user_defined: bool = False


class SynchResult(StrEnum):
    success = "success"
    failure = "failure"


# A coupling whose last synchronization failed in either direction (partial index and query).
FAILED_COUPLING = "last_synch_result = 'failure' OR last_synch_crm_result = 'failure'"


class IntegrationRecord(TableBase, table=True):
    """A coupling: one ERP row (by system_id) <-> one CRM row id."""

    __tablename__ = "integration_record"
    __table_args__ = (
        sa.UniqueConstraint("table_name", "integration_id", name="uq_coupling_erp"),
        sa.UniqueConstraint("crm_table", "crm_id", "table_name", name="uq_coupling_crm"),
        # Each run reads a table's failed couplings first: without these it scans them all.
        sa.Index("ix_coupling_to_crm_result", "table_name", "last_synch_crm_result", "id"),
        sa.Index("ix_coupling_from_crm_result", "table_name", "last_synch_result", "id"),
        # The console's "records needing attention": only the few such rows are indexed.
        sa.Index(
            "ix_coupling_skipped",
            "table_name",
            sqlite_where=sa.text("skipped = 1"),
            postgresql_where=sa.text("skipped = true"),
        ),
        sa.Index(
            "ix_coupling_failed",
            "table_name",
            sqlite_where=sa.text(FAILED_COUPLING),
            postgresql_where=sa.text(FAILED_COUPLING),
        ),
        # The item availability push finds couplings it never confirmed (new ones) by this.
        sa.Index("ix_coupling_availability", "table_name", "availability_entry_no"),
    )
    table_name: str = Field(max_length=50)
    integration_id: uuid.UUID
    crm_table: str = Field(max_length=100)
    crm_id: uuid.UUID
    last_synch_modified_on: datetime | None = utc_field()
    last_synch_crm_modified_on: datetime | None = utc_field()
    last_synch_result: SynchResult | None = Field(default=None, sa_type=sa.String(10))
    last_synch_crm_result: SynchResult | None = Field(default=None, sa_type=sa.String(10))
    last_synch_job_id: uuid.UUID | None = None
    last_synch_crm_job_id: uuid.UUID | None = None
    skipped: bool = False
    statistics_uploaded: bool = False
    # Loop prevention by content (app/sync/fingerprints.py): digests of the mapped fields as
    # the last sync wrote or read them on each side, and the CRM row version it left with
    # nothing in it still to bring to the ERP. None: not recorded yet.
    erp_fingerprint: dict[str, str] | None = Field(default=None, sa_type=sa.JSON(none_as_null=True))
    crm_fingerprint: dict[str, str] | None = Field(default=None, sa_type=sa.JSON(none_as_null=True))
    crm_version: int | None = Field(default=None, sa_type=sa.BigInteger)
    # Item availability push: the item ledger entry no. up to which the product's quantity
    # on hand is confirmed in the CRM; None: never confirmed (a new coupling), pushed next run.
    availability_entry_no: int | None = Field(default=None, sa_type=sa.BigInteger)


class SynchJobType(StrEnum):
    synchronization = "synchronization"
    coupling = "coupling"
    uncoupling = "uncoupling"


class IntegrationSynchJob(TableBase, table=True):
    """The log of one run of one mapping in one direction; ``system_id`` is its public id."""

    __tablename__ = "integration_synch_job"
    mapping_name: str = Field(max_length=50, index=True)
    type: SynchJobType = Field(default=SynchJobType.synchronization, sa_type=sa.String(20))
    direction: Direction = Field(sa_type=sa.String(20))
    job_queue_entry_id: int | None = Field(default=None, index=True)
    started_at: datetime | None = utc_field(index=True)
    finished_at: datetime | None = utc_field()
    inserted: int = 0
    modified: int = 0
    deleted: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    coupled: int = 0
    uncoupled: int = 0
    # Rows this direction expects to read (progress: done = the counters' sum); None = unknown.
    total_records: int | None = None
    message: str = Field(default="", max_length=2048)


class IntegrationSynchJobError(TableBase, table=True):
    __tablename__ = "integration_synch_job_error"
    job_id: uuid.UUID = Field(
        foreign_key="integration_synch_job.system_id", ondelete="CASCADE", index=True
    )
    source_table: str = Field(default="", max_length=100)
    source_id: str = Field(default="", max_length=100)
    destination_table: str = Field(default="", max_length=100)
    destination_id: str = Field(default="", max_length=100)
    message: str = Field(default="", max_length=2048)
    detail: str = Field(default="", sa_type=sa.Text)
    at: datetime | None = utc_field()


class JobKind(StrEnum):
    mapping_sync = "mapping_sync"
    customer_statistics = "customer_statistics"
    auto_create_sales_orders = "auto_create_sales_orders"
    auto_process_sales_quotes = "auto_process_sales_quotes"
    order_status = "order_status"
    notes = "notes"
    item_availability = "item_availability"
    archived_sales_orders = "archived_sales_orders"
    full_sync = "full_sync"
    coupling = "coupling"
    uncoupling = "uncoupling"
    purge_sync_log = "purge_sync_log"


class JobStatus(StrEnum):
    ready = "ready"
    in_process = "in_process"
    error = "error"
    on_hold = "on_hold"
    finished = "finished"
    on_hold_with_inactivity_timeout = "on_hold_with_inactivity_timeout"


class JobQueueEntry(TableBase, table=True):
    __tablename__ = "job_queue_entry"
    __table_args__ = (sa.Index("ix_job_queue_entry_due", "status", "earliest_start_at"),)
    kind: JobKind = Field(sa_type=sa.String(40))
    mapping_name: str = Field(default="", max_length=50)
    description: str = Field(default="", max_length=250)
    status: JobStatus = Field(default=JobStatus.ready, sa_type=sa.String(40))
    recurring: bool = True
    minutes_between_runs: int = 30
    inactivity_timeout_minutes: int = 0
    earliest_start_at: datetime | None = utc_field()
    max_attempts: int = 3
    attempt: int = 0
    rerun_delay_seconds: int = 60
    last_started_at: datetime | None = utc_field()
    last_finished_at: datetime | None = utc_field()
    last_error: str = Field(default="", max_length=2048)
    category: str = Field(default="", max_length=30)
    parameters: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    claimed_by: str = Field(default="", max_length=100)
    claimed_until: datetime | None = utc_field()
    run_count: int = 0


class CrmPostEvent(StrEnum):
    released = "released"
    shipped = "shipped"
    invoiced = "invoiced"
    # Legacy order integration (app.sales.order_status): the CRM order's state, not a post.
    order_invoiced = "order_invoiced"  # fully posted: CRM order -> Invoiced
    order_deleted = "order_deleted"  # ERP order deleted: CRM order -> Active, resubmittable
    posted = "posted"  # a customer-level post with the buffer's message (account wall)


class CrmPostBuffer(TableBase, table=True):
    __tablename__ = "crm_post_buffer"
    table_name: str = Field(max_length=50)
    record_id: uuid.UUID
    event: CrmPostEvent = Field(sa_type=sa.String(20))
    message: str = Field(default="", max_length=2048)
    processed_at: datetime | None = utc_field(index=True)


class DataverseEntityChange(TableBase, table=True):
    """A CRM change notification: which record of which table changed, and how.

    ``delivery_key`` is the delivery's own id (the webhook's operation id), unique, so a
    delivery that arrives twice is stored once; rows without one (older rows) are kept.
    """

    __tablename__ = "dataverse_entity_change"
    entity_name: str = Field(max_length=100, index=True)
    record_id: uuid.UUID | None = None
    message: str = Field(default="", max_length=20)  # Create, Update or Delete
    delivery_key: str | None = Field(default=None, max_length=100, unique=True)
    received_at: datetime = Field(sa_type=UTCDateTime)
    processed_at: datetime | None = utc_field(index=True)


class CrmWebhook(TableBase, table=True):
    """The webhook Salesbridge registered in the CRM (one row), and what arrived through it.

    ``steps`` lists the registered steps as ``{"message", "entity", "step_id"}``; the
    secret the CRM sends in a header is stored encrypted, like every other credential.
    """

    __tablename__ = "crm_webhook"
    service_endpoint_id: uuid.UUID | None = None
    url: str = Field(default="", max_length=2048)
    secret_encrypted: str = Field(default="", sa_type=sa.Text)
    steps: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    registered_at: datetime | None = utc_field()
    last_error: str = Field(default="", max_length=2048)
    received_count: int = Field(default=0, sa_type=sa.BigInteger)
    refused_count: int = Field(default=0, sa_type=sa.BigInteger)
    last_received_at: datetime | None = utc_field()
    last_refused_at: datetime | None = utc_field()
    last_refusal: str = Field(default="", max_length=200)


class AssistedSetupStatus(StrEnum):
    in_progress = "in_progress"
    finished = "finished"
    cancelled = "cancelled"


class AssistedSetup(TableBase, table=True):
    """One run of the guided connection set-up: answers per step, secrets encrypted."""

    __tablename__ = "assisted_setup"
    status: AssistedSetupStatus = Field(
        default=AssistedSetupStatus.in_progress, sa_type=sa.String(20), index=True
    )
    current_step: str = Field(default="", max_length=30)
    completed_steps: list[str] = Field(default_factory=list, sa_type=JSON)
    answers: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    secrets_encrypted: str = Field(default="", sa_type=sa.Text)
    result: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    finished_at: datetime | None = utc_field()


class SynchCursor(TableBase, table=True):
    """A job's own position in an append-only ERP table (the item availability push's
    item ledger entry no.); a missing row means the job has not completed a run yet."""

    __tablename__ = "synch_cursor"
    name: str = Field(max_length=50, unique=True)
    position: int = Field(default=0, sa_type=sa.BigInteger)
