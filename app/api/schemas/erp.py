"""ERP request and response shapes, derived from the tables so they cannot drift.

``build_schemas`` turns one SQLModel table into ``<Name>Create`` (required fields as the
table requires them), ``<Name>Update`` (every field optional, only the fields sent
change; ``null`` only where the column is nullable), ``<Name>Read`` (all public fields
plus ``id`` and the audit columns) and ``<Name>List``. Limits come from the columns:
string lengths, 18 digits with 5 decimals for money and quantities (Decimal, never
float), non-negative amounts unless a field is declared ``signed``. Input schemas forbid
unknown fields.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from types import NoneType, UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import sqlalchemy as sa
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer, create_model
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from app.models import erp
from app.models.base import TableBase
from app.models.types import DECIMAL_PRECISION, DECIMAL_SCALE, ExactDecimal

AUDIT_FIELDS: dict[str, Any] = {
    "system_id": uuid.UUID,
    "created_at": AwareDatetime,
    "modified_at": AwareDatetime,
    "modified_by": str,
}


def decimal_text(value: Decimal) -> str:
    """Money and quantities as exact decimal strings without trailing zeros ("13.75")."""
    return format(value.normalize(), "f")


Amount = Annotated[Decimal, PlainSerializer(decimal_text, return_type=str, when_used="json")]


def decimal_json_schema(*, signed: bool = True) -> dict[str, Any]:
    """How an exact decimal field is declared in the OpenAPI document: what ``ExactDecimal``
    carries, as a JSON number or its decimal text (the pattern constrains the text)."""
    before, after = DECIMAL_PRECISION - DECIMAL_SCALE, DECIMAL_SCALE
    sign = "-?" if signed else ""
    return {
        "pattern": rf"^{sign}[0-9]{{1,{before}}}(\.[0-9]{{1,{after}}})?$",
        "description": (
            f"Exact decimal: at most {before} digits before the decimal point and {after} "
            "after it. Sent back as its decimal text, never as a binary float."
        ),
    }


def _read_type(annotation: Any) -> Any:
    if _base_type(annotation) is Decimal:
        exact = Annotated[Amount, Field(json_schema_extra=decimal_json_schema())]
        return exact | None if annotation is not Decimal else exact
    return annotation


MAX_INT = 2**31 - 1  # an INTEGER column on PostgreSQL
NO_NUL = r"^[^\x00]*$"


class WriteSchema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReadSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True)


@dataclass(frozen=True)
class SchemaSet:
    create: type[BaseModel]
    update: type[BaseModel]
    read: type[BaseModel]
    list: type[BaseModel]
    upsert_result: type[BaseModel]


def _base_type(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, UnionType):
        args = [arg for arg in get_args(annotation) if arg is not NoneType]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _limits(
    model: type[TableBase], name: str, annotation: Any, *, is_signed: bool
) -> dict[str, Any]:
    column_type = sa.inspect(model).columns[name].type
    base = _base_type(annotation)
    limits: dict[str, Any] = {}
    length = getattr(column_type, "length", None)  # sa.String and sqlmodel's AutoString
    if base is str and isinstance(length, int):
        limits["max_length"] = length
    if base is Decimal and isinstance(column_type, ExactDecimal):
        limits.update(max_digits=column_type.precision, decimal_places=column_type.scale)
        limits["json_schema_extra"] = decimal_json_schema(signed=is_signed)
        if not is_signed:
            limits["ge"] = 0
    if base is str:
        limits["pattern"] = NO_NUL  # PostgreSQL text cannot hold NUL
    if base is int:
        limits["le"] = MAX_INT
        if not is_signed:
            limits["ge"] = 0
    return limits


def _table_fields(model: type[TableBase], exclude: Sequence[str]) -> dict[str, FieldInfo]:
    skipped = {"id", *AUDIT_FIELDS, *exclude}
    return {name: info for name, info in model.model_fields.items() if name not in skipped}


def build_schemas(
    model: type[TableBase],
    name: str,
    *,
    exclude: Sequence[str] = (),
    read_only: Sequence[str] = (),
    immutable: Sequence[str] = (),
    optional_in_create: Sequence[str] = (),
    signed: Sequence[str] = (),
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> SchemaSet:
    """The schema ladder of one table; ``immutable`` fields can be set on create only."""
    create: dict[str, Any] = {}
    update: dict[str, Any] = {}
    read: dict[str, Any] = {"id": (int, ...)}
    for field, info in _table_fields(model, exclude).items():
        annotation = info.annotation
        limits = {
            **_limits(model, field, annotation, is_signed=field in signed),
            **(overrides or {}).get(field, {}),
        }
        read[field] = (_read_type(annotation), ...)
        if field in read_only:
            continue
        default = info.get_default(call_default_factory=False)
        if field in optional_in_create:
            default = None
        required = default is PydanticUndefined
        if required and _base_type(annotation) is str:
            limits.setdefault("min_length", 1)
        create[field] = (annotation, Field(... if required else default, **limits))
        if field not in immutable:
            update[field] = (annotation, Field(None, **limits))
    read.update({field: (kind, ...) for field, kind in AUDIT_FIELDS.items()})
    return _schema_set(name, create, update, read)


def _schema_set(
    name: str, create: dict[str, Any], update: dict[str, Any], read: dict[str, Any]
) -> SchemaSet:
    read_model = create_model(f"{name}Read", __base__=ReadSchema, **read)
    list_model = create_model(
        f"{name}List",
        items=(list[read_model], ...),
        count=(int | None, None),
        next=(str | None, None),
    )
    upsert_model = create_model(
        f"{name}UpsertResult",
        inserted=(int, ...),
        updated=(int, ...),
        items=(list[read_model], ...),
    )
    return SchemaSet(
        create=create_model(f"{name}Create", __base__=WriteSchema, **create),
        update=create_model(f"{name}Update", __base__=WriteSchema, **update),
        read=read_model,
        list=list_model,
        upsert_result=upsert_model,
    )


CURRENCY = build_schemas(
    erp.Currency, "Currency", immutable=("code",), overrides={"exchange_rate": {"gt": 0}}
)
UNIT_OF_MEASURE = build_schemas(erp.UnitOfMeasure, "UnitOfMeasure", immutable=("code",))
LOCATION = build_schemas(erp.Location, "Location", immutable=("code",))
ITEM = build_schemas(erp.Item, "Item", immutable=("no",))
RESOURCE = build_schemas(erp.Resource, "Resource", immutable=("no",))
CUSTOMER_PRICE_GROUP = build_schemas(
    erp.CustomerPriceGroup, "CustomerPriceGroup", immutable=("code",)
)
SALES_PRICE = build_schemas(erp.SalesPrice, "SalesPrice")
SALESPERSON = build_schemas(erp.Salesperson, "Salesperson", immutable=("code",))
CUSTOMER = build_schemas(erp.Customer, "Customer", immutable=("no",))
CONTACT = build_schemas(erp.Contact, "Contact", immutable=("no",))
OPPORTUNITY = build_schemas(erp.Opportunity, "Opportunity", immutable=("no",))
PURCHASE_LINE = build_schemas(erp.PurchaseLine, "PurchaseLine", overrides={"line_no": {"ge": 1}})
ITEM_LEDGER_ENTRY = build_schemas(
    erp.ItemLedgerEntry, "ItemLedgerEntry", read_only=("entry_no",), signed=("quantity",)
)
CUST_LEDGER_ENTRY = build_schemas(
    erp.CustLedgerEntry,
    "CustLedgerEntry",
    signed=("amount_lcy", "remaining_amount_lcy"),
)


class PaymentCreate(WriteSchema):
    """A customer payment; it is applied to open invoices, oldest due first."""

    customer_no: str = Field(min_length=1, max_length=20, pattern=NO_NUL)
    amount: Decimal = Field(gt=0, max_digits=DECIMAL_PRECISION, decimal_places=DECIMAL_SCALE)
    posting_date: date
    document_no: str | None = Field(default=None, min_length=1, max_length=20, pattern=NO_NUL)
    applies_to_document_no: str | None = Field(
        default=None, min_length=1, max_length=20, pattern=NO_NUL
    )


class AppliedEntry(BaseModel):
    entry_no: int
    document_no: str
    amount_applied: Amount
    remaining_amount_lcy: Amount
    open: bool


PaymentRead = create_model(
    "PaymentRead", payment=(CUST_LEDGER_ENTRY.read, ...), applied=(list[AppliedEntry], ...)
)
