"""The ERP tables the generic resource code serves, each described once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.erp.references import Reference
from app.erp.resources import ErpTable
from app.models import erp

UOM_LABEL = "Unit of measure"


def _uom(field: str) -> Reference:
    return Reference(field, erp.UnitOfMeasure, "code", UOM_LABEL)


def _salesperson() -> Reference:
    return Reference("salesperson_code", erp.Salesperson, "code", "Salesperson")


def _currency() -> Reference:
    return Reference("currency_code", erp.Currency, "code", "Currency")


def _location() -> Reference:
    return Reference("location_code", erp.Location, "code", "Location")


def _item(field: str = "item_no") -> Reference:
    return Reference(field, erp.Item, "no", "Item")


def _sales_type_is(sales_type: erp.SalesType) -> Any:
    return lambda row: row.get("sales_type") == sales_type


def check_sales_price(row: Mapping[str, Any]) -> list[tuple[str, str]]:
    """BC's rules: the sales code names the customer or group, and dates are in order."""
    problems: list[tuple[str, str]] = []
    needs_code = row.get("sales_type") in (
        erp.SalesType.customer,
        erp.SalesType.customer_price_group,
        erp.SalesType.campaign,
    )
    if needs_code and not row.get("sales_code"):
        problems.append(("sales_code", f"sales_code is required for {row['sales_type']} prices."))
    if row.get("sales_type") == erp.SalesType.all_customers and row.get("sales_code"):
        problems.append(("sales_code", "sales_code must be empty for all_customers prices."))
    starting, ending = row.get("starting_date"), row.get("ending_date")
    if starting is not None and ending is not None and ending < starting:
        problems.append(("ending_date", "ending_date must not be before starting_date."))
    return problems


CURRENCY = ErpTable(erp.Currency, "Currency", ("code",), path_key="code")
UNIT_OF_MEASURE = ErpTable(erp.UnitOfMeasure, UOM_LABEL, ("code",), path_key="code")
LOCATION = ErpTable(erp.Location, "Location", ("code",), path_key="code")
ITEM = ErpTable(
    erp.Item,
    "Item",
    ("no",),
    path_key="no",
    references=(_uom("base_unit_of_measure"),),
    nullable_references=frozenset({"base_unit_of_measure"}),
)
RESOURCE = ErpTable(
    erp.Resource,
    "Resource",
    ("no",),
    path_key="no",
    references=(_uom("base_unit_of_measure"),),
    nullable_references=frozenset({"base_unit_of_measure"}),
)
CUSTOMER_PRICE_GROUP = ErpTable(
    erp.CustomerPriceGroup, "Customer price group", ("code",), path_key="code"
)
SALES_PRICE = ErpTable(
    erp.SalesPrice,
    "Sales price",
    (
        "item_no",
        "sales_type",
        "sales_code",
        "currency_code",
        "starting_date",
        "unit_of_measure_code",
        "minimum_quantity",
    ),
    references=(
        _item(),
        _currency(),
        _uom("unit_of_measure_code"),
        Reference(
            "sales_code", erp.Customer, "no", "Customer", _sales_type_is(erp.SalesType.customer)
        ),
        Reference(
            "sales_code",
            erp.CustomerPriceGroup,
            "code",
            "Customer price group",
            _sales_type_is(erp.SalesType.customer_price_group),
        ),
    ),
    check=check_sales_price,
)
SALESPERSON = ErpTable(erp.Salesperson, "Salesperson", ("code",), path_key="code")
CUSTOMER = ErpTable(
    erp.Customer,
    "Customer",
    ("no",),
    path_key="no",
    references=(
        _salesperson(),
        _currency(),
        Reference("customer_price_group", erp.CustomerPriceGroup, "code", "Customer price group"),
    ),
    nullable_references=frozenset({"salesperson_code", "currency_code", "customer_price_group"}),
)
CONTACT = ErpTable(
    erp.Contact,
    "Contact",
    ("no",),
    path_key="no",
    references=(
        _salesperson(),
        _currency(),
        Reference("company_no", erp.Contact, "no", "Company contact"),
    ),
    nullable_references=frozenset({"salesperson_code", "currency_code"}),
)
OPPORTUNITY = ErpTable(
    erp.Opportunity,
    "Opportunity",
    ("no",),
    path_key="no",
    references=(_salesperson(), Reference("contact_no", erp.Contact, "no", "Contact")),
    nullable_references=frozenset({"salesperson_code", "contact_no"}),
)
PURCHASE_LINE = ErpTable(
    erp.PurchaseLine,
    "Purchase line",
    ("document_no", "line_no"),
    references=(_item(), _location()),
)
