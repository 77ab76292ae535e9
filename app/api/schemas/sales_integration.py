"""Bodies of the sales integration endpoints (CRM orders -> ERP orders)."""

from __future__ import annotations

import uuid

from pydantic import BaseModel

from app.api.schemas.erp import Amount
from app.sales.sales_orders import Outcome


class SubmittedOrderRead(BaseModel):
    """A submitted CRM order that has no ERP order yet (or whose CRM mark is missing)."""

    crm_id: uuid.UUID
    ordernumber: str
    name: str
    customer_id: uuid.UUID | None
    customer_no: str | None  # the coupled ERP customer; None = not coupled (creation fails)
    total_amount: Amount | None  # exact, as the CRM holds it ("50", "12.34")
    modified_on: str | None
    erp_order_no: str | None  # set when the ERP order exists and only the CRM mark is missing


class SubmittedOrderList(BaseModel):
    items: list[SubmittedOrderRead]


class CreatedOrderRead(BaseModel):
    crm_id: uuid.UUID
    ordernumber: str
    outcome: Outcome
    erp_order_no: str
