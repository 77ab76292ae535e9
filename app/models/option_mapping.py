"""Option mappings: an ERP code <-> a CRM option value (BC's "CRM Option Mapping").

Payment terms, shipment methods and shipping agents are codes in the ERP and choice
columns (option sets) in the CRM; each row pairs one code of one option set with one
option value, so a mapping works both ways.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Field

from app.models.base import TableBase


class CrmOptionMapping(TableBase, table=True):
    __tablename__ = "crm_option_mapping"
    __table_args__ = (
        sa.UniqueConstraint("option_set", "erp_code", name="uq_option_mapping_code"),
        sa.UniqueConstraint("option_set", "option_value", name="uq_option_mapping_value"),
    )
    option_set: str = Field(max_length=30)  # payment_terms | shipment_method | shipping_agent
    erp_code: str = Field(max_length=10)
    option_value: int
    caption: str = Field(default="", max_length=100)
