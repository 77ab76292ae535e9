"""What one run of a mapping carries: its options, each direction's ``SyncPass``, the
result, and the ``MappingHooks`` a mapping adds to the passes.

Hooks are how rules that live above the engine (sales orders, posted invoices) take part
in a pass without the engine importing them: the caller of ``runner.run_mapping`` gives a
table of hooks by ERP table name (``app.catalog`` builds it), and each pass runs the hooks
of its mapping's table at fixed points. The base class does nothing at every point.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import utc_now
from app.dataverse import BatchOperation, DataverseClient
from app.db import SessionMaker, current_actor
from app.mappings.field_catalog import entity_set_for
from app.models.integration import Direction, IntegrationRecord, IntegrationTableMapping
from app.sync import crm_rules, fingerprints, log, notified_changes, transfer, watermarks
from app.sync.work import FromCrmWork, ToCrmWork

DEFAULT_PAGE_SIZE = 500
DEFAULT_BATCH_OPERATIONS = 200
DEFAULT_CONCURRENCY = 4

Progress = Callable[[str, Direction, log.Counters], None]


@dataclass(frozen=True)
class RunOptions:
    is_full: bool = False
    page_size: int = DEFAULT_PAGE_SIZE
    batch_size: int = DEFAULT_BATCH_OPERATIONS  # operations per $batch request
    concurrency: int = DEFAULT_CONCURRENCY  # $batch requests in flight
    company_name: str = "CRONUS"
    job_queue_entry_id: int | None = None
    on_progress: Progress | None = None
    # "Synchronize now" for chosen records (app.couplings.record_sync): ERP -> CRM reads only
    # these ERP system ids, CRM -> ERP only these CRM ids, both without watermarks (which
    # stay where they are); ``only_direction`` runs one direction of a bidirectional mapping.
    erp_ids: frozenset[uuid.UUID] | None = None
    crm_ids: frozenset[uuid.UUID] | None = None
    only_direction: Direction | None = None
    # CRM change notifications (app.sync.notified_changes): a CRM -> ERP pass may read only
    # the notified records, but a watermark pass runs at least once every
    # ``watermark_pass_after`` (None: only when there is no watermark yet).
    use_notifications: bool = False
    watermark_pass_after: timedelta | None = None


@dataclass
class MappingRunResult:
    mapping_name: str
    counters: dict[Direction, log.Counters] = field(default_factory=dict)
    job_ids: dict[Direction, uuid.UUID] = field(default_factory=dict)

    @property
    def activity(self) -> int:
        return sum(c.activity for c in self.counters.values())


class MappingHooks:
    """The points where a mapping's own rules join a pass; here, each does nothing."""

    async def prepare_to_crm(
        self, session: AsyncSession, run: SyncPass, works: Sequence[ToCrmWork]
    ) -> None:
        """ERP -> CRM, after the field transfer, before lookups are resolved."""

    async def complete_to_crm(
        self, session: AsyncSession, run: SyncPass, works: Sequence[ToCrmWork]
    ) -> None:
        """ERP -> CRM, after lookups are resolved, before the CRM rows are read."""

    def insert_follow_ups(self, run: SyncPass, work: ToCrmWork) -> list[BatchOperation]:
        """Writes that follow the insert of a new CRM row, in its change set."""
        return []

    def wrap_writes(
        self, run: SyncPass, work: ToCrmWork, ops: list[BatchOperation], crm_state: Any
    ) -> list[BatchOperation]:
        """A record's writes as they are sent (``crm_state``: the CRM row's statecode)."""
        return ops

    def is_left_alone(self, run: SyncPass, coupling: IntegrationRecord | None) -> bool:
        """CRM -> ERP: a record this mapping never writes to the ERP."""
        return False

    async def prepare_from_crm(
        self, session: AsyncSession, run: SyncPass, works: Sequence[FromCrmWork]
    ) -> None:
        """CRM -> ERP, after the field transfer, before lookups are resolved."""

    async def after_run(
        self,
        sessionmaker: SessionMaker,
        crm: DataverseClient,
        *,
        hooks: MappingHookTable,
        options: RunOptions,
        result: MappingRunResult,
    ) -> None:
        """After both directions of the mapping ran (runs of dependent mappings go here)."""


NO_HOOKS = MappingHooks()
MappingHookTable = Mapping[str, MappingHooks]  # ERP table name -> its hooks


@dataclass
class SyncPass:
    """Everything one direction of one run needs; pages read and update it."""

    sessionmaker: SessionMaker
    crm: DataverseClient
    mapping: IntegrationTableMapping
    rules: list[transfer.FieldRule]
    context: crm_rules.CrmContext
    direction: Direction
    job_id: uuid.UUID
    signpost: datetime
    options: RunOptions
    hooks: MappingHooks = NO_HOOKS
    erp_watermark: datetime | None = None  # as stored when the run started
    crm_watermark: datetime | None = None
    newest_erp: datetime | None = None
    newest_crm: datetime | None = None
    order_states: dict[uuid.UUID, int] = field(default_factory=dict)  # app.sales.order_sync
    notified: notified_changes.TakenChanges | None = None  # taken by a CRM -> ERP pass

    @property
    def entity(self) -> str:
        return self.mapping.integration_table

    @functools.cached_property
    def from_crm_select(self) -> list[str]:
        """The CRM attributes a CRM -> ERP pass reads and an ERP -> CRM write asks back:
        ``modifiedon``, ``versionnumber`` and the fields the CRM sends to the ERP (which the
        CRM side's fingerprint covers), not the ERP -> CRM only ones."""
        back = [rule for rule in self.rules if rule.comes_from_crm]
        return transfer.crm_select(back, self.entity)

    @functools.cached_property
    def layout(self) -> fingerprints.Layout:
        """Which fields the fingerprints cover (``app.sync.fingerprints``)."""
        return fingerprints.layout_of(self.rules, extra_erp=("blocked",) if self.is_product else ())

    @property
    def entity_set(self) -> str:
        return entity_set_for(self.entity)

    @property
    def is_product(self) -> bool:
        return self.entity == "product" and self.mapping.table_name in crm_rules.PRODUCT_TABLES

    @property
    def only_coupled(self) -> bool:
        return self.mapping.synch_only_coupled_records and not self.options.is_full

    @property
    def page_size(self) -> int:
        return self.options.page_size

    @property
    def batch_size(self) -> int:
        return self.options.batch_size

    @property
    def concurrency(self) -> int:
        return self.options.concurrency

    def observe_erp(self, value: datetime) -> None:
        self.newest_erp = max(filter(None, (self.newest_erp, value)))

    def observe_crm(self, value: datetime) -> None:
        self.newest_crm = max(filter(None, (self.newest_crm, value)))

    async def commit_erp_progress(self, session: AsyncSession, bookmark: datetime) -> None:
        await store_watermark(session, self, "erp_modified_watermark", [bookmark])

    async def commit_crm_progress(self, session: AsyncSession, bookmark: datetime) -> None:
        await store_watermark(session, self, "crm_modified_watermark", [bookmark])

    def report_progress(self, counters: log.Counters) -> None:
        if self.options.on_progress is not None:
            self.options.on_progress(self.mapping.name, self.direction, counters)


async def store_watermark(
    session: AsyncSession, run: SyncPass, column: str, observed: list[datetime | None]
) -> None:
    """Move one watermark forward (only), capped at the signpost, in the page's commit."""
    stored = await session.scalar(
        select(getattr(IntegrationTableMapping, column)).where(
            col(IntegrationTableMapping.id) == run.mapping.id
        )
    )
    new = watermarks.advance(stored, observed, signpost=run.signpost)
    if new is None or new == stored:
        return
    statement = (
        update(IntegrationTableMapping)
        .where(col(IntegrationTableMapping.id) == run.mapping.id)
        .values({column: new, "modified_at": utc_now(), "modified_by": current_actor.get()})
        .execution_options(synchronize_session=False)
    )
    await session.exec(statement)
