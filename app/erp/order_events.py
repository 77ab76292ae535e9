"""ERP order events for the CRM (``crm_post_buffer``), written in the ERP action's transaction.

BC's ``CRM Sales Document Posting Mgt`` subscribers, for the legacy sales order
integration: releasing, shipping and invoicing an order
coupled to a CRM salesorder, posting it in full, and deleting it each leave one buffer row
that the order status job (``app.sales.order_status``) turns into CRM writes. The row is
added with the ERP change, so it exists exactly when the change was committed.

Rows are written only when the connection is enabled with the legacy sales order
integration (the only mode with an order status job to drain them; BC's bidirectional
mode exits these subscribers early) and only for coupled orders: BC buffers every order
and drops the uncoupled ones in the job, which would fill the table for nothing.

A deleted order has no ERP row left to point at, and BC removes its coupling at once, so
its row names the CRM salesorder itself (``table_name`` "salesorder", ``record_id`` the
CRM id); every other row names the ERP record (``sales_header`` / ``customer``).
"""

from __future__ import annotations

import uuid

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models.erp import Customer, SalesDocumentType, SalesHeader
from app.models.integration import ConnectionSetup, CrmPostBuffer, CrmPostEvent, IntegrationRecord

ORDER_TABLE = "sales_header"
CUSTOMER_TABLE = "customer"
CRM_ORDER_TABLE = "salesorder"
CRM_TABLES = {ORDER_TABLE: CRM_ORDER_TABLE, CUSTOMER_TABLE: "account"}
PRODUCT_NAME = "Salesbridge"
# BC's CRMOrderHasBeenPostedMsg: "%1 '%2' has been posted in %3." (type, your reference).
ORDER_POSTED_MESSAGE = "Order '{reference}' has been posted in {product}."


async def _is_legacy_integration_on(session: AsyncSession) -> bool:
    setup = (await session.exec(select(ConnectionSetup).order_by(col(ConnectionSetup.id)))).first()
    return (
        setup is not None
        and setup.is_enabled
        and setup.sales_order_integration_enabled
        and not setup.bidirectional_sales_order_integration
    )


async def _coupling(
    session: AsyncSession, table_name: str, system_id: uuid.UUID
) -> IntegrationRecord | None:
    """The record's coupling to its CRM counterpart (a sales header may be a quote's)."""
    statement = select(IntegrationRecord).where(
        IntegrationRecord.table_name == table_name,
        IntegrationRecord.crm_table == CRM_TABLES[table_name],
        IntegrationRecord.integration_id == system_id,
    )
    return (await session.exec(statement)).first()


async def _coupled_order(session: AsyncSession, header: SalesHeader) -> IntegrationRecord | None:
    if header.document_type != SalesDocumentType.order:
        return None
    if not await _is_legacy_integration_on(session):
        return None
    return await _coupling(session, ORDER_TABLE, header.system_id)


def _add(
    session: AsyncSession,
    table_name: str,
    record_id: uuid.UUID,
    event: CrmPostEvent,
    message: str = "",
) -> None:
    session.add(
        CrmPostBuffer(table_name=table_name, record_id=record_id, event=event, message=message)
    )


async def record_released(session: AsyncSession, header: SalesHeader) -> None:
    if await _coupled_order(session, header) is not None:
        _add(session, ORDER_TABLE, header.system_id, CrmPostEvent.released)
        await session.flush()


async def record_posted(
    session: AsyncSession, header: SalesHeader, *, is_fully_invoiced: bool
) -> None:
    """One posting of a coupled order: a shipment and an invoice were created (posting
    here always does both), the customer's wall hears of it, and a fully invoiced order
    sets the CRM order to Invoiced."""
    if await _coupled_order(session, header) is None:
        return
    for event in (CrmPostEvent.shipped, CrmPostEvent.invoiced):
        _add(session, ORDER_TABLE, header.system_id, event)
    if is_fully_invoiced:
        _add(session, ORDER_TABLE, header.system_id, CrmPostEvent.order_invoiced)
    customer = (
        await session.exec(select(Customer).where(Customer.no == header.sell_to_customer_no))
    ).first()
    if customer is not None and await _coupling(session, CUSTOMER_TABLE, customer.system_id):
        message = ORDER_POSTED_MESSAGE.format(
            reference=header.your_reference or header.no, product=PRODUCT_NAME
        )
        _add(session, CUSTOMER_TABLE, customer.system_id, CrmPostEvent.posted, message)
    await session.flush()


async def record_deleted(session: AsyncSession, header: SalesHeader) -> None:
    """A coupled order deleted by a user (not by posting): uncouple it now, as BC does,
    and leave the CRM order's id for the job, which makes it active again."""
    coupling = await _coupled_order(session, header)
    if coupling is None:
        return
    _add(session, CRM_ORDER_TABLE, coupling.crm_id, CrmPostEvent.order_deleted)
    await session.delete(coupling)
    await session.flush()
