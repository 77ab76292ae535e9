"""Payment terms, shipment methods and shipping agents: ERP codes <-> CRM option values.

REST over real HTTP (the service in uvicorn); the end-to-end runs add the sandbox as the
CRM and real arq workers: a customer's codes become its account's option values, a
person's change of those values in the CRM comes back as codes, and a code without an
option mapping fails its record with the reason until an admin maps it.
"""

from __future__ import annotations

from typing import Any

import httpx

from app.settings import Settings
from tests.fixtures.live_api import API, connect, crm_person_edit, queue_full_sync, run_queue
from tests.fixtures.sandbox import RunningSandbox

OPTIONS = f"{API}/option-mappings"


async def _pairs(
    api: httpx.AsyncClient, headers: dict[str, str], option_set: str
) -> dict[str, int]:
    response = await api.get(OPTIONS, params={"option_set": option_set}, headers=headers)
    assert response.status_code == 200, response.text
    return {row["erp_code"]: row["option_value"] for row in response.json()}


async def test_defaults_and_changes_with_their_checks(
    live_api: httpx.AsyncClient, live_admin: dict[str, str], live_reader: dict[str, str],
) -> None:  # fmt: skip
    reset = await live_api.post(f"{OPTIONS}/reset-defaults", headers=live_admin)
    assert reset.json() == {"option_mappings": 13}
    assert await _pairs(live_api, live_reader, "payment_terms") == {
        "NET30": 1, "2%10NET30": 2, "NET45": 3, "NET60": 4,
    }  # fmt: skip
    sets = (await live_api.get(f"{OPTIONS}/option-sets", headers=live_reader)).json()
    assert {s["name"]: s["crm_attributes"][0] for s in sets} == {
        "payment_terms": "paymenttermscode", "shipment_method": "freighttermscode",
        "shipping_agent": "shippingmethodcode",
    }  # fmt: skip

    created = await live_api.post(
        OPTIONS, json={"option_set": "shipping_agent", "erp_code": "OWNLOG", "option_value": 8,
                       "caption": "Own logistics"}, headers=live_admin,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    pair = created.json()
    renamed = await live_api.patch(
        f"{OPTIONS}/{pair['id']}", json={"caption": "Own fleet"}, headers=live_admin
    )
    assert renamed.json()["caption"] == "Own fleet"
    assert (await live_api.post(OPTIONS, json=pair | {}, headers=live_reader)).status_code == 403
    deleted = await live_api.delete(f"{OPTIONS}/{pair['id']}", headers=live_admin)
    assert deleted.status_code == 204
    assert (await live_api.get(f"{OPTIONS}/{pair['id']}", headers=live_reader)).status_code == 404


BAD = [
    ({"option_set": "payment_terms", "erp_code": "NET30", "option_value": 9}, 409,
     "already pairs 'NET30' with option value 1"),
    ({"option_set": "payment_terms", "erp_code": "COD", "option_value": 1}, 409,
     "each code and each value may appear once"),
    ({"option_set": "incoterms", "erp_code": "X", "option_value": 1}, 400, "Unknown option set"),
    ({"option_set": "payment_terms", "erp_code": " COD", "option_value": 9}, 400, "spaces"),
    ({"option_set": "payment_terms", "erp_code": "", "option_value": 9}, 400, "1 to 10"),
    ({"option_set": "payment_terms", "erp_code": "COD", "option_value": -1}, 400, "0 to"),
    ({"option_set": "payment_terms", "erp_code": "X" * 11, "option_value": 9}, 422, "erp_code"),
    ({"option_set": "payment_terms", "erp_code": "COD"}, 422, "option_value"),
    ({"option_set": "payment_terms", "erp_code": "COD", "option_value": "x"}, 422, "option_value"),
]  # fmt: skip


async def test_bad_option_mappings_are_refused_and_change_nothing(
    live_api: httpx.AsyncClient, live_admin: dict[str, str],
) -> None:  # fmt: skip
    await live_api.post(f"{OPTIONS}/reset-defaults", headers=live_admin)
    for body, status, words in BAD:
        response = await live_api.post(OPTIONS, json=body, headers=live_admin)
        assert response.status_code == status, (body, response.text)
        assert words in response.text, (body, response.text)
    net30 = (await live_api.get(OPTIONS, params={"option_set": "payment_terms"},
                                headers=live_admin)).json()[0]  # fmt: skip
    clash = await live_api.patch(f"{OPTIONS}/{net30['id']}", json={"option_value": 2},
                                 headers=live_admin)  # fmt: skip
    assert clash.status_code == 409
    unknown = await live_api.patch(
        f"{OPTIONS}/00000000-0000-0000-0000-000000000001", json={"caption": "x"},
        headers=live_admin,
    )  # fmt: skip
    assert unknown.status_code == 404
    assert (
        await live_api.get(OPTIONS, params={"option_set": "nope"}, headers=live_admin)
    ).status_code == 400
    assert len((await live_api.get(OPTIONS, headers=live_admin)).json()) == 13


# --- end to end --------------------------------------------------------------------------


async def _customer(api: httpx.AsyncClient, admin: dict[str, str], no: str, **codes: str) -> None:
    body = {"no": no, "name": f"Customer {no}", **codes}
    response = await api.post(f"{API}/customers", json=body, headers=admin)
    assert response.status_code == 201, response.text


def _account(sandbox: RunningSandbox, name: str) -> dict[str, Any]:
    (account,) = [a for a in sandbox.state.rows("accounts") if a.get("name") == name]
    return account


async def _erp_customer(api: httpx.AsyncClient, admin: dict[str, str], no: str) -> dict[str, Any]:
    response = await api.get(f"{API}/customers/{no}", headers=admin)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _sync_customers(
    api: httpx.AsyncClient, admin: dict[str, str], ctx: dict[str, Any], settings: Settings
) -> None:
    await queue_full_sync(api, admin, "CUSTOMER")
    await run_queue(ctx, settings)


async def test_codes_travel_as_option_values_both_ways(
    live_api: httpx.AsyncClient, live_admin: dict[str, str], sandbox: RunningSandbox,
    tick_ctx: dict[str, Any], worker_settings: Settings,
) -> None:  # fmt: skip
    enabled = await connect(live_api, live_admin, sandbox)
    assert enabled["is_enabled"] is True  # the default setup made the default pairs too
    assert (await _pairs(live_api, live_admin, "shipping_agent"))["UPS"] == 4
    await _customer(live_api, live_admin, "C1", payment_terms_code="NET30",
                    shipment_method_code="FOB", shipping_agent_code="UPS")  # fmt: skip

    await _sync_customers(live_api, live_admin, tick_ctx, worker_settings)

    account = _account(sandbox, "Customer C1")
    assert account["paymenttermscode"] == 1
    assert account["address1_freighttermscode"] == 1
    assert account["address1_shippingmethodcode"] == 4
    await crm_person_edit(sandbox, "accounts", account["accountid"], paymenttermscode=3,
                    address1_shippingmethodcode=7, address1_freighttermscode=None)  # fmt: skip

    await _sync_customers(live_api, live_admin, tick_ctx, worker_settings)

    customer = await _erp_customer(live_api, live_admin, "C1")
    assert customer["payment_terms_code"] == "NET45"
    assert customer["shipping_agent_code"] == "WILLCALL"
    assert customer["shipment_method_code"] == ""


async def test_an_unmapped_code_fails_its_record_until_it_is_mapped(
    live_api: httpx.AsyncClient, live_admin: dict[str, str], sandbox: RunningSandbox,
    tick_ctx: dict[str, Any], worker_settings: Settings,
) -> None:  # fmt: skip
    await connect(live_api, live_admin, sandbox)
    await _customer(live_api, live_admin, "C2", payment_terms_code="COD")
    await _customer(live_api, live_admin, "C3", payment_terms_code="NET60")

    await _sync_customers(live_api, live_admin, tick_ctx, worker_settings)

    assert [a["name"] for a in sandbox.state.rows("accounts")] == ["Customer C3"]
    jobs = (await live_api.get(f"{API}/sync-jobs", params={"mapping_name": "CUSTOMER",
                                                           "direction": "to_crm"},
                               headers=live_admin)).json()["items"]  # fmt: skip
    failed = next(job for job in jobs if job["failed"])
    errors = (await live_api.get(f"{API}/sync-jobs/{failed['id']}/errors",
                                 headers=live_admin)).json()["items"]  # fmt: skip
    assert "The payment terms code 'COD' has no CRM option value" in errors[0]["message"]
    assert "POST /api/v1/option-mappings" in errors[0]["message"]

    # The CRM's fourth option now means cash on delivery in this company.
    rows = (await live_api.get(OPTIONS, params={"option_set": "payment_terms"},
                               headers=live_admin)).json()  # fmt: skip
    net60 = next(row for row in rows if row["erp_code"] == "NET60")
    changed = await live_api.patch(f"{OPTIONS}/{net60['id']}", json={"erp_code": "COD"},
                                   headers=live_admin)  # fmt: skip
    assert changed.status_code == 200, changed.text
    # Failed twice with the same error, the record was skipped (BC's rule): restore it.
    restored = await live_api.post(f"{API}/couplings/restore-skipped", headers=live_admin,
                                   json={"mapping_name": "CUSTOMER"})  # fmt: skip
    assert restored.status_code == 200 and restored.json()["count"] == 1
    await _sync_customers(live_api, live_admin, tick_ctx, worker_settings)

    assert _account(sandbox, "Customer C2")["paymenttermscode"] == 4


async def test_a_crm_value_without_a_code_fails_the_record_and_keeps_the_erp_code(
    live_api: httpx.AsyncClient, live_admin: dict[str, str], sandbox: RunningSandbox,
    tick_ctx: dict[str, Any], worker_settings: Settings,
) -> None:  # fmt: skip
    await connect(live_api, live_admin, sandbox)
    await _customer(live_api, live_admin, "C4", payment_terms_code="NET30")
    await _sync_customers(live_api, live_admin, tick_ctx, worker_settings)
    rows = (await live_api.get(OPTIONS, params={"option_set": "payment_terms"},
                               headers=live_admin)).json()  # fmt: skip
    net45 = next(row for row in rows if row["option_value"] == 3)
    assert (await live_api.delete(f"{OPTIONS}/{net45['id']}", headers=live_admin)).is_success
    await crm_person_edit(sandbox, "accounts", _account(sandbox, "Customer C4")["accountid"],
                    paymenttermscode=3)  # fmt: skip

    await _sync_customers(live_api, live_admin, tick_ctx, worker_settings)

    assert (await _erp_customer(live_api, live_admin, "C4"))["payment_terms_code"] == "NET30"
    jobs = (await live_api.get(f"{API}/sync-jobs", params={"mapping_name": "CUSTOMER",
                                                           "direction": "from_crm"},
                               headers=live_admin)).json()["items"]  # fmt: skip
    failed = next(job for job in jobs if job["failed"])
    errors = (await live_api.get(f"{API}/sync-jobs/{failed['id']}/errors",
                                 headers=live_admin)).json()["items"]  # fmt: skip
    assert "The CRM paymenttermscode value 3 has no payment terms code" in errors[0]["message"]
