"""Sales order integration by hand: submitted CRM orders not yet created in the ERP, and
creating the ERP order of one of them (what the auto-create job does for all of them).

Listing is for integration users; creating is an integration-admin action, like the
other actions that write through the connection.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

from fastapi import APIRouter

from app.api.deps import AdminUser, IntegrationUser, SessionDep, SessionMakerDep, SettingsDep
from app.api.schemas.sales_integration import (
    CreatedOrderRead,
    SubmittedOrderList,
    SubmittedOrderRead,
)
from app.connection.connection_setup import get_connection_setup
from app.dataverse import DataverseClient
from app.errors import ConflictError, NotConfiguredError, NotFoundError
from app.models.integration import ConnectionSetup
from app.sales import crm_documents, sales_jobs, sales_orders
from app.sales.crm_documents import ORDER
from app.sales.sales_orders import Outcome
from app.sync import erp_tables
from app.sync.crm_client import CrmUnavailableError, build_crm_client
from app.sync.errors import FailureKind, SyncError

router = APIRouter(prefix="/sales-integration", tags=["sales integration"])


async def _enabled_setup(session: SessionDep, settings: SettingsDep) -> ConnectionSetup:
    setup = await get_connection_setup(session, settings)
    if not setup.is_enabled:
        msg = "The Dynamics 365 Sales connection is not enabled; enable it first."
        raise NotConfiguredError(msg)
    return setup


@asynccontextmanager
async def _crm(settings: SettingsDep, setup: ConnectionSetup) -> AsyncIterator[DataverseClient]:
    """The CRM client; the engine's CRM errors become 409 (setup) or 502 (CRM trouble)."""
    try:
        async with build_crm_client(settings, setup) as crm:
            yield crm
    except SyncError as exc:
        if exc.failure_kind == FailureKind.config:
            raise ConflictError(exc.message) from None
        raise CrmUnavailableError(exc.message) from None


def _decimal(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    return Decimal(str(value))


@router.get("/submitted-orders", response_model=SubmittedOrderList)
async def submitted_orders(
    session: SessionDep, settings: SettingsDep, _user: IntegrationUser
) -> SubmittedOrderList:
    """Submitted CRM orders without ``lastbackofficesubmit``: the auto-create job's queue."""
    setup = await _enabled_setup(session, settings)
    async with _crm(settings, setup) as crm:
        records = await sales_orders.pending_orders(crm)
    ids = [uuid.UUID(str(r[ORDER.pk])) for r in records]
    customers = [
        uuid.UUID(str(r["_customerid_value"])) for r in records if r.get("_customerid_value")
    ]
    coupled_customers = await erp_tables.coupled_codes(session, table="customer", crm_ids=customers)
    created = await sales_orders.erp_numbers(session, ids)
    items = []
    for record, crm_id in zip(records, ids, strict=True):
        customer = record.get("_customerid_value")
        customer_id = uuid.UUID(str(customer)) if customer else None
        items.append(
            SubmittedOrderRead(
                crm_id=crm_id,
                ordernumber=crm_documents.number_of(ORDER, record),
                name=str(record.get("name") or ""),
                customer_id=customer_id,
                customer_no=coupled_customers.get(customer_id) if customer_id else None,
                total_amount=_decimal(record.get("totalamount")),
                modified_on=record.get("modifiedon"),
                erp_order_no=created.get(crm_id),
            )  # fmt: skip
        )
    return SubmittedOrderList(items=items)


@router.post("/submitted-orders/{crm_id}/create-erp-order", response_model=CreatedOrderRead)
async def create_erp_order(
    session: SessionDep, sessionmaker: SessionMakerDep, settings: SettingsDep, _user: AdminUser,
    crm_id: uuid.UUID,
) -> CreatedOrderRead:  # fmt: skip
    """Create the ERP order of one submitted CRM order now (idempotent: never twice)."""
    setup = await _enabled_setup(session, settings)
    await session.commit()  # the setup row may be new; the creation uses its own sessions
    async with _crm(settings, setup) as crm:
        record = await crm_documents.read_document(crm, ORDER, crm_id)
        if record is None:
            msg = f"There is no CRM order {crm_id}."
            raise NotFoundError(msg)
        context = await sales_jobs.crm_context(sessionmaker, crm, setup, settings)
        (result,) = await sales_orders.create_chosen(
            sessionmaker, crm, [record], settings=settings,
            base_currency_id=context.base_currency_id,
        )  # fmt: skip
    if result.outcome == Outcome.failed:
        raise ConflictError(result.message)
    return CreatedOrderRead(
        crm_id=result.crm_id, ordernumber=result.ordernumber, outcome=result.outcome,
        erp_order_no=result.erp_order_no,
    )  # fmt: skip
