"""The entity sets the service publishes: names, keys, typed properties and their SQL.

Everything else (``$metadata``, ``$filter`` allow-list, ``$select``, ``$orderby``, the JSON
shape) is derived from these declarations, so a property exists everywhere or nowhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import ColumnElement, FromClause
from sqlmodel import SQLModel

from app.models.availability import ItemAvailabilityRow, ItemLocationAvailabilityRow
from app.models.integration import IntegrationRecord
from app.models.types import DECIMAL_PRECISION, DECIMAL_SCALE
from app.odata.sql_constructs import (
    decimal_number,
    decimal_text,
    entity_json,
    guid_text,
    json_field,
    utc_timestamp_text,
)

NAMESPACE = "Salesbridge"
CONTAINER = "Container"
QTY_PRECISION, QTY_SCALE = DECIMAL_PRECISION, DECIMAL_SCALE
ENTITY_JSON = "__entity_json"  # the last column of every read: the entity as JSON text


@dataclass(frozen=True)
class Property:
    name: str
    edm_type: str  # Edm.String, Edm.Decimal, Edm.Guid, Edm.Boolean, Edm.DateTimeOffset
    column: ColumnElement[Any]
    nullable: bool = False
    max_length: int | None = None

    @property
    def is_decimal(self) -> bool:
        return self.edm_type == "Edm.Decimal"

    @property
    def is_string(self) -> bool:
        return self.edm_type == "Edm.String"

    def output_column(self, *, decimals_as_text: bool = False) -> ColumnElement[Any]:
        """What the query selects: values orjson writes directly, with little per-row work.

        Decimals come exactly, as numbers where a double carries them (else as their text,
        which ``app.odata.serialize`` writes as a JSON number), or as text for formats that
        send them as strings; GUIDs and (on SQLite) timestamps as the text that is sent;
        SQLite's 0/1 booleans are left for ``app.odata.serialize`` to turn into bools.
        """
        if self.is_decimal:
            construct = decimal_text if decimals_as_text else decimal_number
            return construct(self.column, QTY_SCALE).label(self.name)
        if self.edm_type == "Edm.Guid":
            return guid_text(self.column).label(self.name)
        if self.edm_type == "Edm.DateTimeOffset":
            return utc_timestamp_text(self.column).label(self.name)
        return self.column.label(self.name)

    def json_value(self) -> json_field:
        """The value inside ``EntitySet.json_column`` (v4 JSON: decimals as numbers)."""
        return json_field(self.column, self.edm_type, QTY_SCALE if self.is_decimal else 0)


@dataclass(frozen=True)
class EntitySet:
    name: str
    key: tuple[str, ...]
    properties: tuple[Property, ...]
    source: FromClause
    description: str
    condition: ColumnElement[bool] | None = None
    by_name: dict[str, Property] = field(init=False, repr=False, compare=False)
    folded: dict[str, Property] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {p.name: p for p in self.properties})
        object.__setattr__(self, "folded", {p.name.casefold(): p for p in self.properties})

    @property
    def type_name(self) -> str:
        return self.name

    @property
    def qualified_type(self) -> str:
        return f"{NAMESPACE}.{self.type_name}"

    @property
    def filter_fields(self) -> dict[str, ColumnElement[Any]]:
        return {p.name: p.column for p in self.properties}

    def json_column(self) -> ColumnElement[str]:
        """The whole entity as v4 JSON object text, built in SQL: the common answer (every
        property, minimal metadata) is sent from it without per-value work in Python, and
        every entity's ETag is derived from it, whatever $select or format was asked."""
        names = tuple(prop.name for prop in self.properties)  # this module's, never input
        return entity_json(names, *(prop.json_value() for prop in self.properties)).label(
            ENTITY_JSON
        )

    def resolve(self, name: str) -> Property | None:
        """A property by exact name, else case-insensitively (OData 4.01 Advanced #10)."""
        return self.by_name.get(name) or self.folded.get(name.casefold())


_tables = SQLModel.metadata.tables
_ia = _tables[str(ItemAvailabilityRow.__tablename__)]
_ila = _tables[str(ItemLocationAvailabilityRow.__tablename__)]
_coupling = sa.alias(_tables[str(IntegrationRecord.__tablename__)], "coupling")
_coupled = sa.and_(
    _coupling.c.table_name == "item",
    _coupling.c.crm_table == "product",
    _coupling.c.integration_id == _ia.c.item_system_id,
)


def _quantities(table: Any) -> list[Property]:
    return [
        Property("Inventory", "Edm.Decimal", table.c.inventory),
        Property("QtyOnSalesOrder", "Edm.Decimal", table.c.qty_on_sales_order),
        Property("QtyOnPurchaseOrder", "Edm.Decimal", table.c.qty_on_purchase_order),
        Property("ProjectedAvailable", "Edm.Decimal", table.c.projected_available),
    ]


ITEM_AVAILABILITY = EntitySet(
    name="ItemAvailability",
    key=("ItemNo",),
    description="Availability per item: inventory, open sales and purchase order quantities.",
    source=_ia.outerjoin(_coupling, _coupled),
    properties=(
        Property("ItemNo", "Edm.String", _ia.c.item_no, max_length=20),
        Property("Description", "Edm.String", _ia.c.description, max_length=100),
        Property(
            "BaseUnitOfMeasure",
            "Edm.String",
            _ia.c.base_unit_of_measure,
            nullable=True,
            max_length=10,
        ),
        Property("CRMProductId", "Edm.Guid", _coupling.c.crm_id, nullable=True),
        *_quantities(_ia),
        Property("Blocked", "Edm.Boolean", _ia.c.blocked),
        Property("LastModified", "Edm.DateTimeOffset", _ia.c.modified_at),
    ),
)

ITEM_AVAILABILITY_BY_LOCATION = EntitySet(
    name="ItemAvailabilityByLocation",
    key=("ItemNo", "LocationCode"),
    description="Availability per item and location ('' = no location).",
    source=_ila,
    properties=(
        Property("ItemNo", "Edm.String", _ila.c.item_no, max_length=20),
        Property("LocationCode", "Edm.String", _ila.c.location_code, max_length=10),
        *_quantities(_ila),
        Property("LastModified", "Edm.DateTimeOffset", _ila.c.modified_at),
    ),
)

PRODUCT_ITEM_AVAILABILITY = EntitySet(
    name="ProductItemAvailability",
    key=("ItemNo",),
    description="BC's classic shape for Dynamics 365 Sales: coupled items only.",
    source=_ia.join(_coupling, _coupled),
    properties=(
        Property("CRM_ID", "Edm.Guid", _coupling.c.crm_id),
        Property("ItemNo", "Edm.String", _ia.c.item_no, max_length=20),
        Property("UOM", "Edm.String", _ia.c.base_unit_of_measure, nullable=True, max_length=10),
        Property("Inventory", "Edm.Decimal", _ia.c.inventory),
    ),
)

ENTITY_SETS: dict[str, EntitySet] = {
    s.name: s for s in (ITEM_AVAILABILITY, ITEM_AVAILABILITY_BY_LOCATION, PRODUCT_ITEM_AVAILABILITY)
}
