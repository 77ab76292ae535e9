"""Key predicates, @odata.bind values and lookup columns."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from app.dataverse import addressing
from app.dataverse.entities import primary_key_for

ID = uuid.UUID("00000000-0000-0000-0000-000000000001")


def test_record_path_by_id_and_by_alternate_key() -> None:
    assert addressing.record_path("accounts", ID) == f"accounts({ID})"
    assert addressing.record_path("accounts", str(ID).upper()) == f"accounts({ID})"
    assert (
        addressing.record_path("products", {"productnumber": "A-1"})
        == "products(productnumber='A-1')"
    )
    two_part = addressing.record_path("contacts", {"firstname": "Joe", "age": 3})
    assert two_part == "contacts(firstname='Joe',age=3)"


def test_key_values_are_escaped_and_encoded() -> None:
    # A quote doubles (OData), URL-significant characters are percent-encoded.
    path = addressing.record_path("products", {"productnumber": "O'Neil/1#2?x 3%"})
    assert path == "products(productnumber='O''Neil%2F1%232%3Fx%203%25')"


@pytest.mark.parametrize(
    ("value", "literal"),
    [(None, "null"), (True, "true"), (False, "false"), (7, "7"), (Decimal("1.50"), "1.50"),
     (ID, str(ID)), ("x", "'x'")],
)  # fmt: skip
def test_odata_literal(value: addressing.KeyValue, literal: str) -> None:
    assert addressing.odata_literal(value) == literal


def test_a_plain_string_key_must_be_a_guid() -> None:
    with pytest.raises(ValueError, match="badly formed"):
        addressing.record_path("accounts", "ABC123")
    with pytest.raises(ValueError, match="at least one column"):
        addressing.record_path("accounts", {})


def test_bind_and_lookup_names() -> None:
    assert addressing.bind("products", ID) == f"/products({ID})"
    assert addressing.bind("products", {"productnumber": "X"}) == "/products(productnumber='X')"
    assert addressing.bind_field("customerid_account") == "customerid_account@odata.bind"
    assert addressing.lookup_field("pricelevelid") == "_pricelevelid_value"
    assert addressing.read_lookup({"_pricelevelid_value": str(ID)}, "pricelevelid") == ID
    assert addressing.read_lookup({"_pricelevelid_value": None}, "pricelevelid") is None


def test_parse_entity_id() -> None:
    url = f"https://org.crm.dynamics.com/api/data/v9.2/accounts({ID})"
    assert addressing.parse_entity_id(url) == ID
    assert addressing.parse_entity_id("https://x/api/data/v9.2/accounts(name='a')") is None
    assert addressing.parse_entity_id(None) is None


def test_primary_keys_known_and_explicit() -> None:
    assert primary_key_for("opportunities") == "opportunityid"
    assert primary_key_for("nav_accountstatisticses") == "nav_accountstatisticsid"
    assert primary_key_for("tasks", primary_key="activityid") == "activityid"
    with pytest.raises(ValueError, match="primary_key="):
        primary_key_for("tasks")
