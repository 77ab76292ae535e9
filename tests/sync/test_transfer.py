"""transfer.py: field rules as plain data, table-driven and with hypothesis."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.models.integration import Direction, FieldMappingStatus, IntegrationFieldMapping
from app.sync import transfer
from app.sync.transfer import CrmRef, ErpRef, FieldRule, ProductState

TO, FROM, BI = Direction.to_crm, Direction.from_crm, Direction.bidirectional

ITEM_RULES = [
    FieldRule("no", "productnumber", TO),
    FieldRule("description", "name", BI),
    FieldRule("unit_price", "price", TO),
    FieldRule("inventory", "quantityonhand", TO),
    FieldRule("base_unit_of_measure", "defaultuomscheduleid", BI),
]


def test_rules_keep_enabled_field_mappings_only() -> None:
    rows = [
        IntegrationFieldMapping(mapping_name="M", field="a", integration_field="b"),
        IntegrationFieldMapping(
            mapping_name="M", field="c", integration_field="d", status=FieldMappingStatus.disabled
        ),
    ]
    assert [r.erp_field for r in transfer.rules_from(rows)] == ["a"]


def test_to_crm_takes_to_and_bidirectional_fields_and_refs_for_lookups() -> None:
    erp = {"no": "1000", "description": "Bike", "unit_price": Decimal("12.50"),
           "inventory": Decimal(3), "base_unit_of_measure": "PCS"}  # fmt: skip
    values = transfer.to_crm_values(ITEM_RULES, erp, entity="product")
    assert values == {
        "productnumber": "1000",
        "name": "Bike",
        "price": Decimal("12.50"),
        "quantityonhand": Decimal(3),
        "defaultuomscheduleid": ErpRef("unit_of_measure", "PCS"),
    }


@pytest.mark.parametrize(
    ("rule", "erp", "expected"),
    [
        # a constant to a CRM choice becomes a number
        (FieldRule("", "producttypecode", TO, constant_value="1"), {}, {"producttypecode": 1}),
        # from-CRM fields never go to the CRM
        (FieldRule("email", "internalemailaddress", FROM), {"email": "x"}, {}),
        # not null: an empty owner is not sent at all
        (FieldRule("salesperson_code", "ownerid", TO, not_null=True),
         {"salesperson_code": None}, {}),
        (FieldRule("name", "name", TO, transformation="uppercase"),
         {"name": "bike"}, {"name": "BIKE"}),
        (FieldRule("name", "name", TO, transformation="trim"), {"name": " a "}, {"name": "a"}),
        (FieldRule("unit_price", "price", TO), {"unit_price": 1.5}, {"price": Decimal("1.5")}),
    ],
)  # fmt: skip
def test_to_crm_rules(rule: FieldRule, erp: dict[str, Any], expected: dict[str, Any]) -> None:
    assert transfer.to_crm_values([rule], erp, entity="product") == expected


def test_unknown_transformation_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown transformation"):
        transfer.to_crm_values([FieldRule("name", "name", TO, transformation="x")], {"name": "a"},
                               entity="product")  # fmt: skip


def test_from_crm_reads_lookups_as_refs_and_converts_types() -> None:
    uom = uuid.uuid4()
    record = {"name": "Bike", "_defaultuomscheduleid_value": str(uom), "productnumber": "9"}
    values = transfer.from_crm_values(ITEM_RULES, record, entity="product", table="item")
    assert values == {"description": "Bike", "base_unit_of_measure": CrmRef("unit_of_measure", uom)}
    rules = [FieldRule("", "type", FROM, constant_value="person"),
             FieldRule("type", "", FROM, constant_value="person"),
             FieldRule("credit_limit_lcy", "creditlimit", BI)]  # fmt: skip
    converted = transfer.from_crm_values(rules, {"creditlimit": 10.25}, entity="account",
                                         table="customer")  # fmt: skip
    assert converted == {"type": "person", "credit_limit_lcy": Decimal("10.25")}


def test_changed_fields_compare_normalised_values() -> None:
    uom = uuid.uuid4()
    desired = {"price": Decimal("12.50"), "name": "Bike", "defaultuomscheduleid": uom,
               "owneridtype": "systemuser", "description": ""}  # fmt: skip
    current = {"price": 12.5, "name": "Bike", "_defaultuomscheduleid_value": str(uom),
               "description": None}  # fmt: skip
    assert transfer.changed_crm_fields(desired, current, entity="product") == {}
    current["name"] = "Old"
    assert transfer.changed_crm_fields(desired, current, entity="product") == {"name": "Bike"}
    assert transfer.changed_erp_fields({"a": Decimal("1.0")}, {"a": Decimal(1)}) == {}


@pytest.mark.parametrize(
    ("values", "table", "expected_price", "expected_stock", "expected_type"),
    [
        ({"price": Decimal(-5), "quantityonhand": Decimal(-2)}, "item", Decimal(0), Decimal(0), 1),
        ({"price": Decimal(5), "quantityonhand": Decimal(2)}, "item", Decimal(5), Decimal(2), 1),
        ({"price": Decimal(-1), "quantityonhand": Decimal(8)}, "resource",
         Decimal(0), Decimal(8), 3),
    ],
)  # fmt: skip
def test_product_rules(
    values: dict[str, Any], table: str, expected_price: Decimal, expected_stock: Decimal,
    expected_type: int,
) -> None:  # fmt: skip
    shaped = transfer.product_values(values, table=table, is_insert=True)
    assert shaped["price"] == expected_price
    assert shaped["quantityonhand"] == expected_stock
    assert shaped["producttypecode"] == expected_type
    assert shaped["quantitydecimal"] == 2


def test_blocked_means_retired() -> None:
    assert transfer.product_state(is_blocked=True) is ProductState.retired
    assert transfer.state_body(ProductState.retired) == {"statecode": 1, "statuscode": 2}
    assert transfer.state_body(ProductState.active) == {"statecode": 0, "statuscode": 1}


def test_json_values() -> None:
    assert transfer.to_json(Decimal("2.00")) == 2
    assert transfer.to_json(Decimal("2.5")) == 2.5
    assert transfer.to_json(dt.date(2024, 1, 2)) == "2024-01-02"


@given(st.decimals(allow_nan=False, allow_infinity=False, places=5,
                   min_value=Decimal(-10**12), max_value=Decimal(10**12)))  # fmt: skip
def test_a_decimal_survives_the_json_round_trip(value: Decimal) -> None:
    # What we send comes back from the CRM as a JSON number; it must compare as unchanged.
    assert transfer.same_value(value, transfer.to_json(value))


@given(st.decimals(allow_nan=False, allow_infinity=False, places=5,
                   min_value=Decimal(-10**9), max_value=Decimal(10**9)))  # fmt: skip
def test_product_price_is_never_negative(value: Decimal) -> None:
    shaped = transfer.product_values({"price": value}, table="item", is_insert=False)
    assert shaped["price"] >= 0
    assert shaped["price"] == max(value, Decimal(0))
