"""One customer's statistics as the statistics job computes them for the CRM.

The figures are computed now from the ledger and the open order lines, so they can be
compared with the ``nav_accountstatistics`` row the last job run wrote; ``account_id``
and ``statistics_uploaded`` say whether that row exists.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel
from sqlmodel import select

from app.api.deps import IntegrationUser, SessionDep
from app.clock import utc_now
from app.errors import NotFoundError
from app.models.erp import Customer
from app.models.integration import IntegrationRecord
from app.sales import customer_statistics

router = APIRouter(prefix="/customer-statistics", tags=["customer statistics"])

CustomerNo = Annotated[str, Path(min_length=1, max_length=20, pattern=r"^[^\x00]+$")]


class CustomerStatisticsRead(BaseModel):
    customer_no: str
    name: str
    as_of: date
    balance_lcy: Decimal
    outstanding_orders_lcy: Decimal
    shipped_not_invoiced_lcy: Decimal
    outstanding_invoices_lcy: Decimal
    outstanding_service_orders_lcy: Decimal
    service_shipped_not_invoiced_lcy: Decimal
    outstanding_service_invoices_lcy: Decimal
    total_lcy: Decimal
    credit_limit_lcy: Decimal
    overdue_amounts_lcy: Decimal
    total_sales_lcy: Decimal
    invoiced_prepayment_amount_lcy: Decimal
    account_id: uuid.UUID | None
    statistics_uploaded: bool


@router.get("/{customer_no}", response_model=CustomerStatisticsRead)
async def read_customer_statistics(
    session: SessionDep, customer_no: CustomerNo, _user: IntegrationUser
) -> CustomerStatisticsRead:
    customer = (await session.exec(select(Customer).where(Customer.no == customer_no))).first()
    if customer is None:
        msg = f"Customer '{customer_no}' was not found."
        raise NotFoundError(msg)
    as_of = utc_now().date()
    figures = (await customer_statistics.figures_for(session, [customer], as_of=as_of))[customer.no]
    coupling = (
        await session.exec(
            select(IntegrationRecord).where(
                IntegrationRecord.table_name == "customer",
                IntegrationRecord.integration_id == customer.system_id,
            )
        )
    ).first()
    return CustomerStatisticsRead(
        customer_no=customer.no,
        name=customer.name,
        as_of=as_of,
        balance_lcy=figures.balance,
        outstanding_orders_lcy=figures.outstanding_orders,
        shipped_not_invoiced_lcy=figures.shipped_not_invoiced,
        outstanding_invoices_lcy=figures.outstanding_invoices,
        outstanding_service_orders_lcy=figures.outstanding_service_orders,
        service_shipped_not_invoiced_lcy=figures.service_shipped_not_invoiced,
        outstanding_service_invoices_lcy=figures.outstanding_service_invoices,
        total_lcy=figures.total,
        credit_limit_lcy=figures.credit_limit,
        overdue_amounts_lcy=figures.overdue_amounts,
        total_sales_lcy=figures.total_sales,
        invoiced_prepayment_amount_lcy=figures.invoiced_prepayment_amount,
        account_id=coupling.crm_id if coupling is not None else None,
        statistics_uploaded=coupling.statistics_uploaded if coupling is not None else False,
    )
