"""Item availability aggregates, kept current by database triggers (``availability_triggers``).

Derived data, not business records: they carry no audit columns (triggers fill them, and
``system_id`` would mean nothing). One row per item (with the item fields the OData service
shows, so a read touches one table) and one per item and location. Only items that exist
have rows; creating an item recomputes its rows from the source tables, so the order in
which items and their ledger entries or order lines arrive does not matter.

``bench/odata.py`` measured this against a grouped query over the ledger; see docs/odata.md.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.models.types import ExactDecimal, UTCDateTime


def _code(length: int) -> sa.types.TypeEngine[str]:
    # Code-point order on PostgreSQL too, so key ranges (startswith) and keyset paging are
    # served by the primary key index and agree with SQLite.
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _quantity() -> sa.Column[Decimal]:
    return sa.Column(ExactDecimal(), nullable=False, server_default="0")


class ItemAvailabilityRow(SQLModel, table=True):
    __tablename__ = "item_availability"
    __table_args__ = (
        sa.Index("ix_item_availability_projected", "projected_available", "item_no"),
        sa.Index("ix_item_availability_inventory", "inventory", "item_no"),
    )
    item_no: str = Field(sa_column=sa.Column(_code(20), primary_key=True))
    item_system_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid(), nullable=False, index=True))
    description: str = Field(default="", max_length=100)
    base_unit_of_measure: str | None = Field(default=None, max_length=10)
    blocked: bool = False
    inventory: Decimal = Field(default=Decimal(0), sa_column=_quantity())
    qty_on_sales_order: Decimal = Field(default=Decimal(0), sa_column=_quantity())
    qty_on_purchase_order: Decimal = Field(default=Decimal(0), sa_column=_quantity())
    projected_available: Decimal = Field(default=Decimal(0), sa_column=_quantity())
    modified_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class ItemLocationAvailabilityRow(SQLModel, table=True):
    __tablename__ = "item_location_availability"
    item_no: str = Field(sa_column=sa.Column(_code(20), primary_key=True))
    location_code: str = Field(sa_column=sa.Column(_code(10), primary_key=True))
    inventory: Decimal = Field(default=Decimal(0), sa_column=_quantity())
    qty_on_sales_order: Decimal = Field(default=Decimal(0), sa_column=_quantity())
    qty_on_purchase_order: Decimal = Field(default=Decimal(0), sa_column=_quantity())
    projected_available: Decimal = Field(default=Decimal(0), sa_column=_quantity())
    modified_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
