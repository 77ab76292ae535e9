"""The fields each side offers a mapping: ERP columns (from the models) and CRM attributes.

The CRM list is data: the attributes of the Dataverse tables the default mappings use
and of BC's integration solution. Dataverse filters name a lookup as
``_<lookup>_value``, so the filterable names of a lookup are that form, while field
mappings name the lookup itself (``transactioncurrencyid``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnClause
from sqlmodel import SQLModel

from app.models import erp
from app.models.types import ExactDecimal


class FieldType(StrEnum):
    string = "string"
    integer = "integer"
    decimal = "decimal"
    money = "money"
    boolean = "boolean"
    date = "date"
    datetime = "datetime"
    uuid = "uuid"
    choice = "choice"
    lookup = "lookup"
    json = "json"


@dataclass(frozen=True)
class FieldInfo:
    name: str
    type: FieldType
    target: str = ""  # lookups: the entity (or entities, "|"-separated) they point at
    is_computed: bool = False  # ERP: derived (not a column); readable, never written

    @property
    def filter_name(self) -> str:
        return f"_{self.name}_value" if self.type == FieldType.lookup else self.name


# --- ERP side ---------------------------------------------------------------------------

ERP_MODELS: dict[str, type[SQLModel]] = {
    model.__tablename__: model  # type: ignore[misc]
    for model in vars(erp).values()
    if isinstance(model, type) and issubclass(model, SQLModel) and hasattr(model, "__table__")
}

# Values the ERP derives rather than stores; the sync engine computes them on read.
ERP_COMPUTED: dict[str, tuple[FieldInfo, ...]] = {
    "item": (FieldInfo("inventory", FieldType.decimal, is_computed=True),),
}

_HIDDEN_ERP_COLUMNS = frozenset({"id"})


def _erp_type(column: sa.Column[Any]) -> FieldType:
    column_type = column.type
    # sqlmodel's AutoString and our UTCDateTime are TypeDecorators whose python_type is
    # ``object``: the wrapped type says what the values are.
    if isinstance(column_type, sa.types.TypeDecorator):
        column_type = column_type.impl_instance
    try:
        python_type = column_type.python_type
    except NotImplementedError:
        return FieldType.string
    for kind, field_type in (
        (bool, FieldType.boolean),
        (int, FieldType.integer),
        (Decimal, FieldType.decimal),
        (dt.datetime, FieldType.datetime),
        (dt.date, FieldType.date),
        (uuid.UUID, FieldType.uuid),
        (dict, FieldType.json),
    ):
        if issubclass(python_type, kind):
            return field_type
    return FieldType.string


@cache
def erp_fields(table_name: str) -> dict[str, FieldInfo]:
    """Every readable field of an ERP table, by name; empty if the table is unknown."""
    model = ERP_MODELS.get(table_name)
    if model is None:
        return {}
    table: sa.Table = model.__table__  # type: ignore[attr-defined]
    found = {
        column.name: FieldInfo(column.name, _erp_type(column))
        for column in table.columns
        if column.name not in _HIDDEN_ERP_COLUMNS
    }
    found.update({info.name: info for info in ERP_COMPUTED.get(table_name, ())})
    return found


def erp_filter_columns(table_name: str) -> dict[str, ColumnClause[Any]]:
    """Typed stand-ins for the columns a table filter may name (not computed fields).

    Detached ``column()`` objects with plain SQL types, because the models' decorated
    types (AutoString, UTCDateTime) report no Python type to the filter compiler.
    """
    return {
        info.name: sa.column(info.name, SQL_TYPES[info.type])
        for info in erp_fields(table_name).values()
        if not info.is_computed and info.type in SQL_TYPES
    }


# --- CRM side ---------------------------------------------------------------------------

S, INT, D, M = FieldType.string, FieldType.integer, FieldType.decimal, FieldType.money
B, DA, DT, U, C = (
    FieldType.boolean,
    FieldType.date,
    FieldType.datetime,
    FieldType.uuid,
    FieldType.choice,
)


def _attrs(*names: str, kind: FieldType = S) -> dict[str, FieldInfo]:
    return {name: FieldInfo(name, kind) for name in names}


def _lookup(name: str, target: str) -> dict[str, FieldInfo]:
    return {name: FieldInfo(name, FieldType.lookup, target)}


def _address(prefix: str, *, with_name: bool = True) -> dict[str, FieldInfo]:
    parts = ["line1", "line2", "city", "postalcode", "country", "stateorprovince"]
    if with_name:
        parts.insert(0, "name")
    return _attrs(*(f"{prefix}{part}" for part in parts))


_SYSTEM = {
    **_attrs("createdon", "modifiedon", kind=DT),
    **_attrs("versionnumber", kind=INT),
    **_lookup("createdby", "systemuser"),
    **_lookup("modifiedby", "systemuser"),
}
_STATE = _attrs("statecode", "statuscode", kind=C)
_OWNED = {**_lookup("ownerid", "systemuser"), **_attrs("owneridtype")}
_CURRENCY = _lookup("transactioncurrencyid", "transactioncurrency")


def _entity(pk: str, *parts: dict[str, FieldInfo]) -> dict[str, FieldInfo]:
    merged: dict[str, FieldInfo] = {pk: FieldInfo(pk, U), **_SYSTEM}
    for part in parts:
        merged.update(part)
    return merged


CRM_ATTRIBUTES: dict[str, dict[str, FieldInfo]] = {
    "systemuser": _entity(
        "systemuserid",
        _attrs("fullname", "firstname", "lastname", "internalemailaddress", "domainname"),
        _attrs("mobilephone", "address1_telephone1"),
        _attrs("isdisabled", "islicensed", "isintegrationuser", kind=B),
        _attrs("applicationid", "azureactivedirectoryobjectid", kind=U),
        _lookup("businessunitid", "businessunit"),
    ),
    "transactioncurrency": _entity(
        "transactioncurrencyid",
        _attrs("isocurrencycode", "currencyname", "currencysymbol"),
        _attrs("exchangerate", kind=D),
        _attrs("currencyprecision", kind=INT),
        _STATE,
    ),
    "account": _entity(
        "accountid",
        _attrs("name", "accountnumber", "address1_primarycontactname", "emailaddress1", "fax"),
        _attrs("websiteurl", "telephone1"),
        _address("address1_", with_name=False),
        _attrs("address1_freighttermscode", "address1_shippingmethodcode", kind=C),
        _attrs("paymenttermscode", "customertypecode", kind=C),
        _attrs("creditlimit", kind=M),
        _lookup("primarycontactid", "contact"),
        _lookup("parentaccountid", "account"),
        _lookup("defaultpricelevelid", "pricelevel"),
        _CURRENCY,
        _OWNED,
        _STATE,
    ),
    "contact": _entity(
        "contactid",
        _attrs("firstname", "middlename", "lastname", "fullname", "emailaddress1", "fax"),
        _attrs("websiteurl", "mobilephone", "pager", "telephone1", "parentcustomeridtype"),
        _address("address1_", with_name=False),
        _lookup("parentcustomerid", "account|contact"),
        _CURRENCY,
        _OWNED,
        _STATE,
    ),
    "uomschedule": _entity("uomscheduleid", _attrs("name", "baseuomname", "description"), _STATE),
    "uom": _entity(
        "uomid",
        _attrs("name"),
        _attrs("quantity", kind=D),
        _lookup("uomscheduleid", "uomschedule"),
        _lookup("baseuom", "uom"),
    ),
    "product": _entity(
        "productid",
        _attrs("productnumber", "name", "description", "vendorid", "vendorname"),
        _attrs("vendorpartnumber"),
        _attrs("producttypecode", "productstructure", kind=C),
        _attrs("quantitydecimal", kind=INT),
        _attrs("price", "currentcost", "standardcost", kind=M),
        _attrs("quantityonhand", "stockvolume", "stockweight", kind=D),
        _lookup("defaultuomscheduleid", "uomschedule"),
        _lookup("defaultuomid", "uom"),
        _lookup("pricelevelid", "pricelevel"),
        _CURRENCY,
        _STATE,
    ),
    "pricelevel": _entity(
        "pricelevelid",
        _attrs("name", "description"),
        _attrs("begindate", "enddate", kind=DA),
        _CURRENCY,
        _STATE,
    ),
    "productpricelevel": _entity(
        "productpricelevelid",
        _attrs("productnumber"),
        _attrs("amount", kind=M),
        _attrs("pricingmethodcode", kind=C),
        _lookup("pricelevelid", "pricelevel"),
        _lookup("productid", "product"),
        _lookup("uomid", "uom"),
        _lookup("uomscheduleid", "uomschedule"),
        _CURRENCY,
    ),
    "opportunity": _entity(
        "opportunityid",
        _attrs("name"),
        _attrs("estimatedvalue", kind=M),
        _attrs("estimatedclosedate", kind=DA),
        _lookup("parentcontactid", "contact"),
        _lookup("parentaccountid", "account"),
        _lookup("customerid", "account|contact"),
        _lookup("pricelevelid", "pricelevel"),
        _CURRENCY,
        _OWNED,
        _STATE,
    ),
}


def _document(pk: str, number: str, *extra: dict[str, FieldInfo]) -> dict[str, FieldInfo]:
    return _entity(
        pk,
        _attrs(number, "name", "description"),
        _address("shipto_"),
        _address("billto_"),
        _attrs("totalamountlessfreight", "totalamount", "discountamount", kind=M),
        _attrs("shippingmethodcode", "paymenttermscode", kind=C),
        _lookup("customerid", "account|contact"),
        _lookup("opportunityid", "opportunity"),
        _lookup("pricelevelid", "pricelevel"),
        _CURRENCY,
        _OWNED,
        _STATE,
        *extra,
    )


def _line(pk: str, parent: str, *extra: dict[str, FieldInfo]) -> dict[str, FieldInfo]:
    return _entity(
        pk,
        _attrs("productdescription", "description"),
        _attrs("quantity", kind=D),
        _attrs("priceperunit", "manualdiscountamount", "baseamount", "extendedamount", kind=M),
        _attrs("ispriceoverridden", "isproductoverridden", kind=B),
        _attrs("lineitemnumber", "sequencenumber", kind=INT),
        _attrs("producttypecode", kind=C),
        _lookup(parent, parent.removesuffix("id")),  # invoiceid -> the invoice entity
        _lookup("productid", "product"),
        _lookup("uomid", "uom"),
        _CURRENCY,
        *extra,
    )


CRM_ATTRIBUTES["invoice"] = _document(
    "invoiceid",
    "invoicenumber",
    _attrs("duedate", "datedelivered", kind=DA),
    _lookup("salesorderid", "salesorder"),
)
CRM_ATTRIBUTES["invoicedetail"] = _line("invoicedetailid", "invoiceid")
CRM_ATTRIBUTES["salesorder"] = _document(
    "salesorderid",
    "ordernumber",
    _attrs("customeridtype", "bcbi_businesscentralordernumber"),
    _attrs("requestdeliveryby", "datefulfilled", "submitdate", kind=DA),
    _attrs("lastbackofficesubmit", kind=DA),
    _attrs("discountpercentage", kind=D),
    _attrs("freighttermscode", kind=C),
    _lookup("quoteid", "quote"),
)
CRM_ATTRIBUTES["salesorderdetail"] = _line(
    "salesorderdetailid",
    "salesorderid",
    _attrs("quantityshipped", kind=D),
    _attrs("requestdeliveryby", kind=DA),
    _attrs("bcbi_businesscentrallinenumber", kind=INT),
)


# CRM entity a lookup points at -> the ERP table whose coupled rows it holds (a lookup is
# written from, and read back into, that table's code).
LOOKUP_TABLES: dict[str, str] = {
    "systemuser": "salesperson",
    "transactioncurrency": "currency",
    "uomschedule": "unit_of_measure",
    "pricelevel": "customer_price_group",
    "product": "item",
    "contact": "contact",
    "account": "customer",
    "opportunity": "opportunity",
}
TRANSFORMATIONS = ("", "trim", "uppercase", "lowercase")


def crm_fields(entity: str) -> dict[str, FieldInfo]:
    """The attributes of a CRM entity (logical name), by name; empty if unknown."""
    return CRM_ATTRIBUTES.get(entity, {})


SQL_TYPES: dict[FieldType, Any] = {
    FieldType.string: sa.String(),
    FieldType.integer: sa.Integer(),
    FieldType.choice: sa.Integer(),
    FieldType.decimal: ExactDecimal(),  # how the ERP stores them (scaled on SQLite)
    FieldType.money: ExactDecimal(),
    FieldType.boolean: sa.Boolean(),
    FieldType.date: sa.Date(),
    FieldType.datetime: sa.DateTime(timezone=True),
    FieldType.uuid: sa.Uuid(),
    FieldType.lookup: sa.Uuid(),
}


def crm_filter_columns(entity: str) -> dict[str, ColumnClause[Any]]:
    """Detached ``column()`` objects for compiling a CRM ``$filter`` (never run as SQL)."""
    return {
        info.filter_name: sa.column(info.filter_name, SQL_TYPES[info.type])
        for info in crm_fields(entity).values()
    }


# Entity set names of the CRM entities the mappings use (Dataverse plurals).
ENTITY_SETS: dict[str, str] = {
    "systemuser": "systemusers",
    "transactioncurrency": "transactioncurrencies",
    "account": "accounts",
    "contact": "contacts",
    "uomschedule": "uomschedules",
    "uom": "uoms",
    "product": "products",
    "pricelevel": "pricelevels",
    "productpricelevel": "productpricelevels",
    "opportunity": "opportunities",
    "invoice": "invoices",
    "invoicedetail": "invoicedetails",
    "salesorder": "salesorders",
    "salesorderdetail": "salesorderdetails",
}


def entity_set_for(entity: str) -> str:
    return ENTITY_SETS[entity]


def primary_key_of(entity: str) -> str:
    return f"{entity}id"
