"""SALESORDER-ORDER and SOLINE-ORDERDETAIL through the mapping sync (as BC does).

The field mappings carry the plain values; this module adds what the engine needs for
orders, through hooks the passes call:

- Dataverse edits only Active orders ("Only Active orders can be edited"), and an order
  the ERP knows is Submitted: every write to a submitted order or to one of its lines is
  wrapped, in its change set, between "set Active" and "set Submitted again" (what BC
  does to write ``lastbackofficesubmit``), so it is all or nothing and the order never
  stays Active;
- a line's product is the product coupled to its item *or resource* (the field mapping
  names one lookup table); a line coupled to a CRM write-in line whose ERP item (the
  write-in item) has no product keeps the write-in; a line's ``salesorderid`` is the CRM
  order coupled to its header, and a line whose header is not coupled is skipped (it goes
  with its header); ``producttypecode`` is insert-only, so it is sent on inserts only;
- SOLINE-ORDERDETAIL has no job: the header mapping's run runs it (bidirectional mode)
  for the lines of coupled orders that are new, failed or changed since their last sync,
  and for the CRM lines changed since its watermark. A CRM line added to an order after
  the ERP order was created is not added to the ERP order (not done: it is left alone,
  uncoupled); changes to coupled lines flow both ways.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.dataverse import BatchOperation, DataverseClient, update_op
from app.dataverse.errors import DataverseError
from app.db import SessionMaker, session_scope
from app.models.erp import SalesHeader, SalesLine, SalesLineType
from app.models.integration import (
    Direction,
    IntegrationRecord,
    IntegrationTableMapping,
)
from app.sync import erp_tables
from app.sync.conflicts import SyncAction
from app.sync.errors import from_dataverse
from app.sync.runner import run_mapping
from app.sync.sync_pass import (
    MappingHooks,
    MappingHookTable,
    MappingRunResult,
    RunOptions,
    SyncPass,
)
from app.sync.transfer import CrmRef, ErpRef
from app.sync.work import FromCrmWork, ToCrmWork

HEADER_MAPPING = "SALESORDER-ORDER"
LINE_MAPPING = "SOLINE-ORDERDETAIL"
ORDER_ENTITY = "salesorder"
LINE_ENTITY = "salesorderdetail"
SUBMITTED = {"statecode": 1, "statuscode": 3}
ACTIVE = {"statecode": 0, "statuscode": 1}
ORDERS_PER_QUERY = 50
LINES_PER_RUN = 500


def is_order_pass(run: SyncPass) -> bool:
    return run.entity in (ORDER_ENTITY, LINE_ENTITY) and run.mapping.table_name in (
        "sales_header",
        "sales_line",
    )


# --- ERP -> CRM --------------------------------------------------------------------------


async def _header_ids(session: AsyncSession, lines: Sequence[SalesLine]) -> dict[str, uuid.UUID]:
    """ERP order no. -> the coupled CRM order id, for orders whose insert reached the CRM."""
    nos = sorted({line.document_no for line in lines})
    statement = (
        sa.select(col(SalesHeader.no), col(IntegrationRecord.crm_id))
        .join(IntegrationRecord, col(IntegrationRecord.integration_id) == SalesHeader.system_id)
        .where(
            col(IntegrationRecord.table_name) == "sales_header",
            col(IntegrationRecord.crm_table) == ORDER_ENTITY,
            col(IntegrationRecord.last_synch_crm_modified_on).is_not(None),
            col(SalesHeader.document_type) == "order",
            col(SalesHeader.no).in_(nos),
        )
    )
    return {str(no): crm_id for no, crm_id in (await session.execute(statement)).all()}


async def _order_states(run: SyncPass, ids: set[uuid.UUID]) -> None:
    """The statecode of the lines' CRM orders (one query per 50), kept on the run."""
    ordered = sorted(ids - set(run.order_states), key=str)
    for start in range(0, len(ordered), ORDERS_PER_QUERY):
        text = " or ".join(
            f"salesorderid eq {i}" for i in ordered[start : start + ORDERS_PER_QUERY]
        )
        try:
            async for order in run.crm.query(
                "salesorders", select=["salesorderid", "statecode"], filter=text
            ):
                run.order_states[uuid.UUID(str(order["salesorderid"]))] = int(order["statecode"])
        except DataverseError as exc:
            raise from_dataverse(exc, action="read the state of the CRM orders") from exc


async def shape(session: AsyncSession, run: SyncPass, works: Sequence[ToCrmWork]) -> None:
    """Before lookups are resolved: lines' products by type, their order, insert-only codes."""
    if run.entity != LINE_ENTITY:
        return
    live = [w for w in works if w.action != SyncAction.fail]
    headers = await _header_ids(session, [w.row for w in live])
    resources = [w.row.no for w in live if w.row.type == SalesLineType.resource]
    items = [w.row.no for w in live if w.row.type == SalesLineType.item]
    coupled = {
        "resource": await erp_tables.coupled_crm_ids(session, table="resource", codes=resources),
        "item": await erp_tables.coupled_crm_ids(session, table="item", codes=items),
    }
    for work in live:
        line: SalesLine = work.row
        header = headers.get(line.document_no)
        if header is None:  # goes with its order once that is in the CRM
            work.action = SyncAction.skip
            continue
        work.values["salesorderid"] = header
        product = work.values.get("productid")
        if isinstance(product, ErpRef):
            table = str(line.type)
            if work.coupling is not None and line.no not in coupled[table]:
                del work.values["productid"]  # a CRM write-in line stays a write-in
            else:
                work.values["productid"] = ErpRef(table, product.code)
        if work.coupling is not None:
            work.values.pop("producttypecode", None)  # insert-only
    await _order_states(run, {w.values["salesorderid"] for w in live if "salesorderid" in w.values})


def unlocked(
    run: SyncPass, work: ToCrmWork, ops: list[BatchOperation], state: Any
) -> list[BatchOperation]:
    """Writes to a submitted order (or its lines) between Active and Submitted again."""
    if not ops or not is_order_pass(run):
        return ops
    if run.entity == ORDER_ENTITY:
        order_id, order_state = work.crm_id, state
    else:
        order_id = work.values.get("salesorderid")
        order_state = run.order_states.get(order_id) if isinstance(order_id, uuid.UUID) else None
    if order_id is None or order_state != SUBMITTED["statecode"]:
        return ops
    return [
        update_op("salesorders", order_id, ACTIVE),
        *ops,
        update_op("salesorders", order_id, SUBMITTED),
    ]


# --- CRM -> ERP --------------------------------------------------------------------------


def shape_erp_values(run: SyncPass, works: Sequence[FromCrmWork]) -> None:
    """A CRM line's product is its ERP line's item or resource; a write-in keeps the no."""
    if run.entity != LINE_ENTITY or run.mapping.table_name != "sales_line":
        return
    for work in works:
        work.values.pop("line_no", None)  # the ERP line's key: the ERP numbers its lines
        if work.row is None or "no" not in work.values:
            continue
        product = work.values["no"]
        if product is None:
            del work.values["no"]
        elif isinstance(product, CrmRef):
            work.values["no"] = CrmRef(str(work.row.type), product.crm_id)


def is_new_crm_line(run: SyncPass, coupling: IntegrationRecord | None) -> bool:
    """A CRM line that no ERP line is coupled to: left alone (see the module docstring)."""
    return run.entity == LINE_ENTITY and run.mapping.table_name == "sales_line" and not coupling


# --- the header run also runs the lines --------------------------------------------------


async def pending_line_ids(session: AsyncSession) -> list[uuid.UUID]:
    """ERP lines of coupled orders that are uncoupled, failed or changed since their sync."""
    header_coupling = aliased(IntegrationRecord)
    line_coupling = aliased(IntegrationRecord)
    line_id = col(SalesLine.system_id)
    statement = (
        sa.select(line_id)
        .join(
            SalesHeader,
            sa.and_(
                col(SalesHeader.document_type) == SalesLine.document_type,
                col(SalesHeader.no) == SalesLine.document_no,
            ),
        )
        .join(
            header_coupling,
            sa.and_(
                col(header_coupling.table_name) == "sales_header",
                col(header_coupling.crm_table) == ORDER_ENTITY,
                col(header_coupling.integration_id) == SalesHeader.system_id,
            ),
        )
        .outerjoin(
            line_coupling,
            sa.and_(
                col(line_coupling.table_name) == "sales_line",
                col(line_coupling.integration_id) == line_id,
            ),
        )
        .where(
            col(SalesLine.document_type) == "order",
            erp_tables.unsent_to_crm(line_coupling, col(SalesLine.modified_at)),
        )
        .order_by(col(SalesLine.id))
    )
    return list((await session.execute(statement)).scalars().all())


async def after_header_run(
    sessionmaker: SessionMaker,
    crm: DataverseClient,
    *,
    hooks: MappingHookTable,
    options: RunOptions,
    result: MappingRunResult,
) -> None:
    """Run SOLINE-ORDERDETAIL (when the setup has it) after its header mapping."""
    async with session_scope(sessionmaker) as session:
        exists = await session.scalar(
            select(IntegrationTableMapping.id).where(IntegrationTableMapping.name == LINE_MAPPING)
        )
        line_ids = await pending_line_ids(session) if exists else []
    if not exists:
        return
    base = replace(options, erp_ids=None, crm_ids=None, only_direction=None)
    chunks = [line_ids[i : i + LINES_PER_RUN] for i in range(0, len(line_ids), LINES_PER_RUN)]
    for position, chunk in enumerate(chunks or [[]]):
        # The first run also reads the CRM lines changed since the line mapping's watermark.
        child = await run_mapping(
            sessionmaker, crm, mapping_name=LINE_MAPPING, hooks=hooks,
            options=replace(base, erp_ids=frozenset(chunk),
                            only_direction=None if position == 0 else Direction.to_crm),
        )  # fmt: skip
        for direction, counters in child.counters.items():
            if direction in result.counters:
                result.counters[direction].merge(counters)


class OrderHooks(MappingHooks):
    """SALESORDER-ORDER and SOLINE-ORDERDETAIL in the passes (see the module docstring)."""

    async def prepare_to_crm(
        self, session: AsyncSession, run: SyncPass, works: Sequence[ToCrmWork]
    ) -> None:
        await shape(session, run, works)

    def wrap_writes(
        self, run: SyncPass, work: ToCrmWork, ops: list[BatchOperation], crm_state: Any
    ) -> list[BatchOperation]:
        return unlocked(run, work, ops, crm_state)

    def is_left_alone(self, run: SyncPass, coupling: IntegrationRecord | None) -> bool:
        return is_new_crm_line(run, coupling)

    async def prepare_from_crm(
        self, session: AsyncSession, run: SyncPass, works: Sequence[FromCrmWork]
    ) -> None:
        shape_erp_values(run, works)

    async def after_run(
        self,
        sessionmaker: SessionMaker,
        crm: DataverseClient,
        *,
        hooks: MappingHookTable,
        options: RunOptions,
        result: MappingRunResult,
    ) -> None:
        if result.mapping_name == HEADER_MAPPING:  # its lines have no job
            await after_header_run(sessionmaker, crm, hooks=hooks, options=options, result=result)
