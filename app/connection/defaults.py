""" "Use default synchronization setup": recreate the default mappings and their job queue.

Default mappings (``user_defined`` false) are deleted and created again from
``default_mappings``; user-defined mappings, their jobs, user-defined field mappings and
every coupling are kept. Option sets without option mappings get the default pairs.
Job queue entries: one recurring entry per mapping that has a job
(ready, every 30 min, 10 attempts, rerun after 30 s, inactivity timeout per mapping), and
the codeunit-style entries (on hold with inactivity timeout, 2 attempts) the setup enables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import catalog
from app.clock import utc_now
from app.errors import ConflictError
from app.logs import get_logger
from app.mappings import option_mappings, user_field_mappings
from app.mappings.default_mappings import MappingDefault, default_mappings
from app.models.integration import (
    ConnectionSetup,
    FieldMappingStatus,
    IntegrationFieldMapping,
    IntegrationTableMapping,
    JobKind,
    JobQueueEntry,
    JobStatus,
)

log = get_logger("salesbridge.sync.defaults")

SERVICE_NAME = "Dynamics 365 Sales"
MAPPING_JOB_MAX_ATTEMPTS = 10
OTHER_JOB_MAX_ATTEMPTS = 2
RERUN_DELAY_SECONDS = 30


@dataclass(frozen=True)
class OtherJob:
    kind: JobKind
    minutes: int
    description: str


OTHER_JOBS: tuple[OtherJob, ...] = (
    OtherJob(JobKind.customer_statistics, 30,
             f"Customer Statistics - {SERVICE_NAME} synchronization job"),
    OtherJob(JobKind.auto_create_sales_orders, 30,
             "Automatically create sales orders from sales orders that are submitted in "
             f"{SERVICE_NAME}."),
    OtherJob(JobKind.auto_process_sales_quotes, 30,
             "Automatically process sales quotes from sales quotes that are activated in "
             f"{SERVICE_NAME}."),
    OtherJob(JobKind.order_status, 7, f"Sales Order Status - {SERVICE_NAME} synchronization job"),
    OtherJob(JobKind.notes, 5, f"Sales Order Notes - {SERVICE_NAME} synchronization job"),
    OtherJob(JobKind.archived_sales_orders, 30,
             f"Archived Sales Orders - {SERVICE_NAME} synchronization job"),
    OtherJob(JobKind.item_availability, 30,
             f"Item Availability - {SERVICE_NAME} synchronization job"),
)  # fmt: skip


def is_other_job_wanted(kind: JobKind, setup: ConnectionSetup) -> bool:
    """Whether the setup enables a codeunit-style job ("Created when")."""
    legacy = setup.sales_order_integration_enabled
    bidirectional = setup.bidirectional_sales_order_integration
    wanted = {
        JobKind.customer_statistics: True,
        JobKind.auto_create_sales_orders: setup.auto_create_sales_orders,
        JobKind.auto_process_sales_quotes: setup.auto_process_sales_quotes,
        JobKind.order_status: legacy,
        JobKind.notes: legacy or bidirectional,
        JobKind.archived_sales_orders: bidirectional,
        JobKind.item_availability: setup.item_availability_enabled,
    }
    # Kinds without a runner in this version are not created: an entry that can only fail
    # would fill the queue with errors. They appear once their runner exists.
    return wanted.get(kind, False) and catalog.can_run(kind)


def mapping_job_description(mapping_name: str) -> str:
    return f"{mapping_name} - {SERVICE_NAME} synchronization job"


@dataclass(frozen=True)
class ResetResult:
    mappings: list[str]
    field_mappings: int
    job_queue_entries: int
    kept_user_defined: list[str]
    kept_user_defined_fields: int = 0
    option_mappings_added: int = 0


def defaults_for(setup: ConnectionSetup) -> tuple[MappingDefault, ...]:
    return default_mappings(
        legacy_sales_orders=setup.sales_order_integration_enabled,
        bidirectional_sales_orders=setup.bidirectional_sales_order_integration,
    )


def _integration_table_filter(default: MappingDefault, setup: ConnectionSetup) -> str:
    # The integration user is never a salesperson (BC: IsIntegrationUser = No).
    if default.name == "SALESPEOPLE" and setup.integration_user_id is not None:
        return f"{default.integration_table_filter} and systemuserid ne {setup.integration_user_id}"
    return default.integration_table_filter


def build_mapping(default: MappingDefault, setup: ConnectionSetup) -> IntegrationTableMapping:
    return IntegrationTableMapping(
        name=default.name,
        table_name=default.table_name,
        integration_table=default.integration_table,
        direction=default.direction,
        table_filter=default.table_filter,
        integration_table_filter=_integration_table_filter(default, setup),
        synch_only_coupled_records=default.synch_only_coupled_records,
        dependency_filter=default.dependency_filter,
        deletion_conflict_resolution=default.deletion_conflict_resolution,
        create_new_in_case_of_no_match=default.create_new_in_case_of_no_match,
        synch_after_bulk_coupling=default.synch_after_bulk_coupling,
        user_defined=False,
    )


def build_field_mappings(default: MappingDefault) -> list[IntegrationFieldMapping]:
    return [
        IntegrationFieldMapping(
            mapping_name=default.name,
            field=spec.field,
            integration_field=spec.integration_field,
            direction=spec.direction,
            constant_value=spec.constant_value,
            validate_field=spec.validate_field,
            not_null=spec.not_null,
            clear_value_on_failed_sync=spec.clear_value_on_failed_sync,
            status=FieldMappingStatus.enabled if spec.is_enabled else FieldMappingStatus.disabled,
            use_for_match_based_coupling=spec.use_for_match,
        )
        for spec in default.fields
    ]


def _initial_status(setup: ConnectionSetup, ready: JobStatus) -> JobStatus:
    return ready if setup.is_enabled else JobStatus.on_hold


def build_mapping_job(default: MappingDefault, setup: ConnectionSetup) -> JobQueueEntry | None:
    if default.job is None:
        return None
    return JobQueueEntry(
        kind=JobKind.mapping_sync,
        mapping_name=default.name,
        description=mapping_job_description(default.name),
        status=_initial_status(setup, JobStatus.ready),
        recurring=True,
        minutes_between_runs=default.job.minutes_between_runs,
        inactivity_timeout_minutes=default.job.inactivity_timeout_minutes,
        earliest_start_at=utc_now(),
        max_attempts=MAPPING_JOB_MAX_ATTEMPTS,
        rerun_delay_seconds=RERUN_DELAY_SECONDS,
        category=default.job.category,
    )


def build_other_job(job: OtherJob, setup: ConnectionSetup) -> JobQueueEntry:
    return JobQueueEntry(
        kind=job.kind,
        description=job.description,
        status=_initial_status(setup, JobStatus.on_hold_with_inactivity_timeout),
        recurring=True,
        minutes_between_runs=job.minutes,
        inactivity_timeout_minutes=job.minutes,
        # on hold with an inactivity timeout: the first start comes after the timeout
        earliest_start_at=utc_now() + timedelta(minutes=job.minutes),
        max_attempts=OTHER_JOB_MAX_ATTEMPTS,
        rerun_delay_seconds=RERUN_DELAY_SECONDS,
    )


async def _refuse_if_running(session: AsyncSession, mapping_names: list[str]) -> None:
    running = (
        await session.exec(
            select(JobQueueEntry).where(
                JobQueueEntry.status == JobStatus.in_process,
                (col(JobQueueEntry.mapping_name).in_(mapping_names))
                | col(JobQueueEntry.kind).in_([job.kind for job in OTHER_JOBS]),
            )
        )
    ).first()
    if running is not None:
        what = running.mapping_name or str(running.kind)
        msg = f"A synchronization job is running ({what}); try again when it has finished."
        raise ConflictError(msg)


async def _delete_mappings(session: AsyncSession, names: list[str]) -> None:
    """Delete mappings with their field mappings and their own job queue entries."""
    if not names:
        return
    await session.exec(
        delete(JobQueueEntry).where(
            col(JobQueueEntry.kind).in_([JobKind.mapping_sync, JobKind.full_sync]),
            col(JobQueueEntry.mapping_name).in_(names),
        )
    )
    await session.exec(
        delete(IntegrationFieldMapping).where(col(IntegrationFieldMapping.mapping_name).in_(names))
    )
    await session.exec(
        delete(IntegrationTableMapping).where(col(IntegrationTableMapping.name).in_(names))
    )
    await session.flush()


async def _add_defaults(
    session: AsyncSession, wanted: list[MappingDefault], setup: ConnectionSetup
) -> tuple[int, int]:
    """Insert mappings, then their field mappings and jobs; returns (fields, jobs)."""
    for default in wanted:
        session.add(build_mapping(default, setup))
    await session.flush()  # parents first: field mappings reference the mapping name
    field_count = job_count = 0
    for default in wanted:
        field_rows = build_field_mappings(default)
        session.add_all(field_rows)
        field_count += len(field_rows)
        job = build_mapping_job(default, setup)
        if job is not None:
            session.add(job)
            job_count += 1
    await session.flush()
    return field_count, job_count


async def recreate_default_setup(session: AsyncSession, *, setup: ConnectionSetup) -> ResetResult:
    """Delete the default mappings and their jobs, create them again; one transaction."""
    existing = list(await session.exec(select(IntegrationTableMapping)))
    user_defined = sorted(m.name for m in existing if m.user_defined)
    wanted = [d for d in defaults_for(setup) if d.name not in user_defined]
    doomed = sorted({*(m.name for m in existing if not m.user_defined), *(d.name for d in wanted)})
    await _refuse_if_running(session, doomed)
    own_fields = await user_field_mappings.saved_user_fields(session, doomed)
    await _delete_mappings(session, doomed)
    other_kinds = [job.kind for job in OTHER_JOBS]
    await session.exec(delete(JobQueueEntry).where(col(JobQueueEntry.kind).in_(other_kinds)))
    field_count, job_count = await _add_defaults(session, wanted, setup)
    for other in OTHER_JOBS:
        if is_other_job_wanted(other.kind, setup):
            session.add(build_other_job(other, setup))
            job_count += 1
    await session.flush()
    kept_fields = await user_field_mappings.restore_user_fields(session, own_fields)
    options = await option_mappings.ensure_default_option_mappings(session)
    log.info("default_setup_recreated", mappings=len(wanted), job_queue_entries=job_count)
    return ResetResult(
        [d.name for d in wanted], field_count, job_count, user_defined, kept_fields, options
    )


async def has_default_mappings(session: AsyncSession) -> bool:
    statement = select(IntegrationTableMapping.id).where(
        col(IntegrationTableMapping.user_defined).is_(False)
    )
    return (await session.exec(statement)).first() is not None


async def sync_other_jobs(session: AsyncSession, *, setup: ConnectionSetup) -> None:
    """Create or delete the optional entries after a setting changed (BC's OnValidate)."""
    rows = list(
        await session.exec(
            select(JobQueueEntry).where(col(JobQueueEntry.kind).in_([j.kind for j in OTHER_JOBS]))
        )
    )
    present = {row.kind: row for row in rows}
    for other in OTHER_JOBS:
        row = present.get(other.kind)
        if is_other_job_wanted(other.kind, setup) and row is None:
            session.add(build_other_job(other, setup))
        elif not is_other_job_wanted(other.kind, setup) and row is not None:
            if row.status == JobStatus.in_process:
                msg = f"The {other.kind} job is running; try again when it has finished."
                raise ConflictError(msg)
            await session.delete(row)
    await session.flush()


SALES_ORDER_MAPPINGS = ("SALESORDER-ORDER", "SOLINE-ORDERDETAIL")


async def recreate_sales_order_mappings(session: AsyncSession, *, setup: ConnectionSetup) -> None:
    """After the sales order switches changed: BC's ResetSalesOrderMappingConfiguration."""
    statement = select(IntegrationTableMapping).where(
        col(IntegrationTableMapping.name).in_(SALES_ORDER_MAPPINGS)
    )
    existing = list(await session.exec(statement))
    kept = {m.name for m in existing if m.user_defined}
    await _refuse_if_running(session, list(SALES_ORDER_MAPPINGS))
    doomed = [m.name for m in existing if not m.user_defined]
    own_fields = await user_field_mappings.saved_user_fields(session, doomed)
    await _delete_mappings(session, doomed)
    wanted = [
        d for d in defaults_for(setup) if d.name in SALES_ORDER_MAPPINGS and d.name not in kept
    ]
    await _add_defaults(session, wanted, setup)
    await user_field_mappings.restore_user_fields(session, own_fields)
