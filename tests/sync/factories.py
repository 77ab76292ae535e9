"""ERP rows for sync tests: plain async functions with overrides."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import erp
from app.models.integration import IntegrationRecord
from tests.fixtures.sandbox import RunningSandbox, edit_as_person

_ENTRY = iter(range(1, 10**9))


async def add(session: AsyncSession, *rows: Any) -> None:
    session.add_all(rows)
    await session.flush()


def unit(code: str) -> erp.UnitOfMeasure:
    return erp.UnitOfMeasure(code=code, description=f"Unit {code}")


def item(no: str, **overrides: Any) -> erp.Item:
    values: dict[str, Any] = {"description": f"Item {no}", "base_unit_of_measure": "PCS",
                              "unit_price": Decimal("10.50"), "unit_cost": Decimal(7)}  # fmt: skip
    values.update(overrides)
    return erp.Item(no=no, **values)


def resource(no: str, **overrides: Any) -> erp.Resource:
    values: dict[str, Any] = {"name": f"Resource {no}", "base_unit_of_measure": "HOUR",
                              "unit_price": Decimal(80), "capacity": Decimal(160)}  # fmt: skip
    values.update(overrides)
    return erp.Resource(no=no, **values)


def stock(item_no: str, quantity: Decimal | int) -> erp.ItemLedgerEntry:
    return erp.ItemLedgerEntry(
        entry_no=next(_ENTRY), item_no=item_no, posting_date=dt.date(2024, 1, 1),
        entry_type=erp.ItemLedgerEntryType.positive_adjmt, quantity=Decimal(quantity),
    )  # fmt: skip


def coupling(
    table: str, system_id: uuid.UUID, crm_table: str, crm_id: uuid.UUID
) -> IntegrationRecord:
    return IntegrationRecord(
        table_name=table, integration_id=system_id, crm_table=crm_table, crm_id=crm_id
    )


async def crm_user_edit(
    running: RunningSandbox, entity_set: str, record_id: Any, **changes: Any
) -> str:
    """A change made in the CRM by a person (not the integration user): a PATCH over the
    sandbox's Web API impersonating a salesperson; returns the person's system user id."""
    return await edit_as_person(running, entity_set, record_id, changes)
