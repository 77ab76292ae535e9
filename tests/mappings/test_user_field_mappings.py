"""User-defined field mappings: added and deleted over REST, checked, and synchronized.

REST over real HTTP (the service in uvicorn); the end-to-end run adds the sandbox as the
CRM and real arq workers: a customer's number goes to the account number, and its price
group to the account's price list lookup and back, through field mappings an admin added.
"""

from __future__ import annotations

from typing import Any

import httpx

from app.connection.defaults import build_field_mappings, build_mapping
from app.mappings import user_field_mappings
from app.mappings.default_mappings import (
    BASE_MAPPINGS,
    SALESORDER_ORDER_BIDIRECTIONAL,
    SALESORDER_ORDER_LEGACY,
    SOLINE_ORDERDETAIL,
)
from app.models.integration import ConnectionSetup
from app.settings import Settings
from tests.fixtures.live_api import API, connect, crm_person_edit, queue_full_sync, run_queue
from tests.fixtures.sandbox import RunningSandbox


def _fields(name: str) -> str:
    return f"{API}/mappings/{name}/fields"


BAD = [
    ("CUSTOMER", {"field": "nope", "integration_field": "name", "direction": "to_crm"}, 400,
     "has no field 'nope'"),
    ("CUSTOMER", {"field": "name", "integration_field": "nope", "direction": "to_crm"}, 400,
     "has no attribute 'nope'"),
    ("CURRENCY", {"field": "description", "integration_field": "currencysymbol",
                  "direction": "from_crm"}, 400, "is to_crm: a field mapping cannot go from_crm"),
    ("CUSTOMER", {"field": "credit_limit_lcy", "integration_field": "telephone1",
                  "direction": "to_crm"}, 400,
     "cannot go to the CRM: a decimal value cannot be written into a string field"),
    ("CUSTOMER", {"field": "name", "integration_field": "creditlimit", "direction": "to_crm"},
     400, "a string value cannot be written into a money field"),
    ("CUSTOMER", {"field": "credit_limit_lcy", "integration_field": "paymenttermscode",
                  "direction": "to_crm"}, 400, "is an option set: map an ERP code"),
    ("CUSTOMER", {"field": "name", "integration_field": "customertypecode",
                  "direction": "to_crm"}, 400, "is a choice: map a whole number"),
    ("ITEM-PRODUCT", {"field": "vendor_no", "integration_field": "defaultuomid",
                      "direction": "to_crm"}, 400, "filled from the code of a coupled ERP table"),
    ("CUSTOMER", {"field": "no", "integration_field": "accountnumber",
                  "direction": "bidirectional"}, 400, "identifies the ERP customer"),
    ("ITEM-PRODUCT", {"field": "inventory", "integration_field": "description",
                      "direction": "from_crm"}, 400, "computed or kept by the ERP"),
    ("CUSTOMER", {"field": "name", "integration_field": "modifiedon", "direction": "to_crm"},
     400, "set by the CRM"),
    ("CUSTOMER", {"integration_field": "creditlimit", "constant_value": "abc",
                  "direction": "to_crm"}, 400, "'abc' is not a money"),
    ("CUSTOMER", {"field": "name", "integration_field": "accountnumber", "constant_value": "x",
                  "direction": "to_crm"}, 400, "either the ERP field or the CRM attribute empty"),
    ("CUSTOMER", {"integration_field": "accountnumber", "constant_value": "X",
                  "direction": "from_crm"}, 400, "only travels to_crm"),
    ("CUSTOMER", {"integration_field": "accountnumber", "direction": "to_crm"}, 400,
     "needs a constant value"),
    ("OPPORTUNITY", {"field": "status", "constant_value": "maybe", "direction": "from_crm"},
     400, "status is one of not_started, in_progress, won, lost"),
    ("CUSTOMER", {"field": "name", "integration_field": "accountnumber", "direction": "to_crm",
                  "transformation": "reverse"}, 400, "Unknown transformation"),
    ("CUSTOMER", {"field": "", "integration_field": "", "direction": "to_crm"}, 400,
     "needs the ERP field, the CRM attribute"),
    ("CUSTOMER", {"field": "contact", "integration_field": "telephone1", "direction": "to_crm"},
     409, "telephone1 is written by the field mapping phone -> telephone1"),
    ("SALESPEOPLE", {"field": "email", "integration_field": "domainname",
                     "direction": "from_crm"}, 409, "email is written by the field mapping"),
    ("CUSTOMER", {"field": "phone", "integration_field": "telephone1", "direction": "to_crm"},
     409, "exists already"),
    ("NO-SUCH-MAPPING", {"field": "a", "integration_field": "b", "direction": "to_crm"}, 404,
     "no integration table mapping"),
    ("CUSTOMER", {"field": "name", "integration_field": "accountnumber"}, 422, "direction"),
    ("CUSTOMER", {"field": "name", "integration_field": "accountnumber", "direction": "to_crm",
                  "user_defined": False}, 422, "user_defined"),
]  # fmt: skip


async def test_bad_field_mappings_are_refused_with_the_reason(
    live_api: httpx.AsyncClient, live_admin: dict[str, str], sandbox: RunningSandbox,
) -> None:  # fmt: skip
    await connect(live_api, live_admin, sandbox)
    before = len((await live_api.get(_fields("CUSTOMER"), headers=live_admin)).json())
    for mapping, body, status, words in BAD:
        response = await live_api.post(_fields(mapping), json=body, headers=live_admin)
        assert response.status_code == status, (mapping, body, response.text)
        assert words in response.text, (mapping, body, response.text)
    assert len((await live_api.get(_fields("CUSTOMER"), headers=live_admin)).json()) == before


async def test_add_delete_and_keep_through_the_default_setup(
    live_api: httpx.AsyncClient, live_admin: dict[str, str], live_reader: dict[str, str],
    sandbox: RunningSandbox,
) -> None:  # fmt: skip
    await connect(live_api, live_admin, sandbox)
    body = {"field": "no", "integration_field": "accountnumber", "direction": "to_crm"}
    assert (await live_api.post(_fields("CUSTOMER"), json=body,
                                headers=live_reader)).status_code == 403  # fmt: skip

    added = await live_api.post(_fields("CUSTOMER"), json=body, headers=live_admin)

    assert added.status_code == 201, added.text
    field = added.json()
    assert field["user_defined"] is True and field["status"] == "enabled"
    constant = await live_api.post(
        _fields("CUSTOMER"), headers=live_admin,
        json={"integration_field": "fax", "constant_value": "n/a", "direction": "to_crm"},
    )  # fmt: skip
    assert constant.status_code == 201, constant.text
    reset = (await live_api.post(f"{API}/mappings/reset-defaults", headers=live_admin)).json()
    assert reset["kept_user_defined_fields"] == 2
    after = (await live_api.get(_fields("CUSTOMER"), headers=live_admin)).json()
    assert {f["id"] for f in after if f["user_defined"]} == {field["id"], constant.json()["id"]}

    default = next(f for f in after if f["integration_field"] == "telephone1")
    refused = await live_api.delete(f"{_fields('CUSTOMER')}/{default['id']}", headers=live_admin)
    assert refused.status_code == 409 and "disable it instead" in refused.text
    deleted = await live_api.delete(f"{_fields('CUSTOMER')}/{field['id']}", headers=live_admin)
    assert deleted.status_code == 204
    gone = await live_api.get(f"{_fields('CUSTOMER')}/{field['id']}", headers=live_admin)
    assert gone.status_code == 404


# --- end to end --------------------------------------------------------------------------


async def _post(api: httpx.AsyncClient, admin: dict[str, str], path: str, body: Any) -> Any:
    response = await api.post(f"{API}/{path}", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return response.json()


def _account(sandbox: RunningSandbox, name: str) -> dict[str, Any]:
    (account,) = [a for a in sandbox.state.rows("accounts") if a.get("name") == name]
    return account


def _price_list(sandbox: RunningSandbox, name: str) -> str:
    (row,) = [p for p in sandbox.state.rows("pricelevels") if p.get("name") == name]
    return str(row["pricelevelid"])


async def _sync(
    api: httpx.AsyncClient, admin: dict[str, str], ctx: dict[str, Any], settings: Settings,
    *names: str,
) -> None:  # fmt: skip
    await queue_full_sync(api, admin, *names)
    await run_queue(ctx, settings)


async def test_user_defined_field_mappings_synchronize_both_ways(
    live_api: httpx.AsyncClient, live_admin: dict[str, str], sandbox: RunningSandbox,
    tick_ctx: dict[str, Any], worker_settings: Settings,
) -> None:  # fmt: skip
    await connect(live_api, live_admin, sandbox)
    for code in ("RETAIL", "WHOLESALE"):
        await _post(live_api, live_admin, "customer-price-groups", {"code": code})
    await _post(live_api, live_admin, "customers",
                {"no": "C1", "name": "Cycle shop", "customer_price_group": "RETAIL"})  # fmt: skip
    number = await _post(live_api, live_admin, "mappings/CUSTOMER/fields",
                         {"field": "no", "integration_field": "accountnumber",
                          "direction": "to_crm"})  # fmt: skip
    await _post(live_api, live_admin, "mappings/CUSTOMER/fields",
                {"field": "customer_price_group", "integration_field": "defaultpricelevelid",
                 "direction": "bidirectional"})  # fmt: skip

    await _sync(live_api, live_admin, tick_ctx, worker_settings, "CUSTPRCGRP-PRICE", "CUSTOMER")

    account = _account(sandbox, "Cycle shop")
    assert account["accountnumber"] == "C1"
    assert account["_defaultpricelevelid_value"] == _price_list(sandbox, "RETAIL")
    wholesale = _price_list(sandbox, "WHOLESALE")
    await crm_person_edit(sandbox, "accounts", account["accountid"], **{
        "defaultpricelevelid@odata.bind": f"/pricelevels({wholesale})",
    })  # fmt: skip

    await _sync(live_api, live_admin, tick_ctx, worker_settings, "CUSTOMER")

    customer = (await live_api.get(f"{API}/customers/C1", headers=live_admin)).json()
    assert customer["customer_price_group"] == "WHOLESALE"
    deleted = await live_api.delete(f"{_fields('CUSTOMER')}/{number['id']}", headers=live_admin)
    assert deleted.status_code == 204
    await _post(live_api, live_admin, "customers", {"no": "C2", "name": "Bike hub"})
    await _sync(live_api, live_admin, tick_ctx, worker_settings, "CUSTOMER")
    assert _account(sandbox, "Bike hub").get("accountnumber") is None


def test_every_default_field_mapping_passes_the_checks() -> None:
    """The rules for one's own field mappings are no stricter than BC's defaults."""
    defaults = (*BASE_MAPPINGS, SALESORDER_ORDER_LEGACY, SALESORDER_ORDER_BIDIRECTIONAL,
                SOLINE_ORDERDETAIL)  # fmt: skip
    for default in defaults:
        mapping = build_mapping(default, ConnectionSetup())
        fields = build_field_mappings(default)
        for field in fields:
            user_field_mappings.check_field_mapping(mapping, field, fields)


async def test_a_patch_that_would_break_the_rules_is_refused(
    live_api: httpx.AsyncClient, live_admin: dict[str, str], sandbox: RunningSandbox,
) -> None:  # fmt: skip
    await connect(live_api, live_admin, sandbox)
    fields = (await live_api.get(_fields("ITEM-PRODUCT"), headers=live_admin)).json()
    number = next(f for f in fields if f["integration_field"] == "productnumber")

    url = f"{_fields('ITEM-PRODUCT')}/{number['id']}"
    response = await live_api.patch(url, json={"direction": "bidirectional"}, headers=live_admin)

    assert response.status_code == 400 and "identifies the ERP item" in response.text
    again = (await live_api.get(f"{_fields('ITEM-PRODUCT')}/{number['id']}",
                                headers=live_admin)).json()  # fmt: skip
    assert again["direction"] == "to_crm"
