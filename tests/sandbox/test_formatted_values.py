"""Formatted values and lookup annotations with ``Prefer: odata.include-annotations``."""

from __future__ import annotations

import httpx

from tests.sandbox.conftest import entity_id

FORMATTED = "@OData.Community.Display.V1.FormattedValue"
NAV = "@Microsoft.Dynamics.CRM.associatednavigationproperty"
LOGICAL = "@Microsoft.Dynamics.CRM.lookuplogicalname"
ALL = {"Prefer": 'odata.include-annotations="*"'}


async def _order(api: httpx.AsyncClient) -> tuple[str, str]:
    account = entity_id(await api.post("accounts", json={"name": "Contoso"}))
    body = {
        "name": "SO-1",
        "customerid_account@odata.bind": f"/accounts({account})",
        "freightamount": 1234.5,
        "requestdeliveryby": "2025-03-04T15:06:00Z",
        "paymenttermscode": 2,
        "willcall": True,
    }
    return entity_id(await api.post("salesorders", json=body)), account


async def test_formatted_values_of_every_kind(api: httpx.AsyncClient) -> None:
    """With odata.include-annotations="*" Dataverse puts a FormattedValue next to choice,
    state, status, money, date, yes/no and lookup columns (the label, the amount with its
    currency symbol, the date as the user reads it, the looked-up row's primary name), and
    on lookups the navigation property and logical name of the target; null columns get
    none, and Preference-Applied echoes the preference."""
    order, account = await _order(api)
    response = await api.get(f"salesorders({order})", headers=ALL)
    assert response.headers["Preference-Applied"] == 'odata.include-annotations="*"'
    row = response.json()
    assert row["statecode" + FORMATTED] == "Active"
    assert row["statuscode" + FORMATTED] == "New"
    assert row["freightamount" + FORMATTED] == "$1,234.50"
    assert row["requestdeliveryby" + FORMATTED] == "3/4/2025 3:06 PM"
    assert row["paymenttermscode" + FORMATTED] == "2% 10, Net 30"
    assert row["willcall" + FORMATTED] == "Yes"
    assert row["_customerid_value"] == account
    assert row["_customerid_value" + FORMATTED] == "Contoso"
    assert row["_customerid_value" + NAV] == "customerid_account"
    assert row["_customerid_value" + LOGICAL] == "account"
    assert row["_createdby_value" + NAV] == "createdby"
    assert row["_createdby_value" + LOGICAL] == "systemuser"
    assert row["_transactioncurrencyid_value" + FORMATTED] == "US Dollar"
    assert "_pricelevelid_value" + FORMATTED not in row  # null: no annotation
    keys = list(row)
    assert keys.index("_customerid_value" + FORMATTED) < keys.index("_customerid_value")


async def test_only_the_named_annotations(api: httpx.AsyncClient) -> None:
    """Naming one annotation returns only that one; without the preference none come."""
    order, _ = await _order(api)
    prefer = {"Prefer": 'odata.include-annotations="OData.Community.Display.V1.FormattedValue"'}
    row = (await api.get(f"salesorders({order})", headers=prefer)).json()
    assert row["statecode" + FORMATTED] == "Active"
    assert not any(name.endswith((NAV, LOGICAL)) for name in row)
    bare = (await api.get(f"salesorders({order})")).json()
    assert not any("@" in name for name in bare if not name.startswith("@odata"))
    listed = (
        await api.get(
            "salesorders", params={"$select": "statuscode,_customerid_value"}, headers=ALL
        )
    ).json()["value"][0]
    assert listed["statuscode" + FORMATTED] == "New"
    assert listed["_customerid_value" + LOGICAL] == "account"


async def test_annotations_on_representations_and_expansions(api: httpx.AsyncClient) -> None:
    """Annotations follow the row wherever it is written out: a create's representation
    and an expanded related row."""
    created = await api.post(
        "products",
        json={"name": "Bike", "productnumber": "B-1", "producttypecode": 1, "price": 10},
        headers={"Prefer": 'return=representation,odata.include-annotations="*"'},
    )
    product = created.json()
    assert product["statecode" + FORMATTED] == "Draft"
    assert product["producttypecode" + FORMATTED] == "Sales Inventory"
    assert product["price" + FORMATTED] == "$10.00"
    order, _ = await _order(api)
    expanded = (
        await api.get(
            f"salesorders({order})",
            params={"$expand": "customerid_account($select=name,statecode)"},
            headers=ALL,
        )
    ).json()
    assert expanded["customerid_account"]["statecode" + FORMATTED] == "Active"
