"""Registering a webhook as Microsoft's "Register a webhook" does it, over the Web API: a
``serviceendpoints`` row (contract 8) and ``sdkmessageprocessingsteps`` bound to it, to a
message (``sdkmessages``) and to a table's filter (``sdkmessagefilters``)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.fixtures.sandbox import RunningSandbox
from tests.sandbox.conftest import entity_id, error_of

RETURN = {"Prefer": "return=representation"}


async def _message_id(api: httpx.AsyncClient, name: str) -> str:
    found = await api.get(
        "sdkmessages", params={"$filter": f"name eq '{name}'", "$select": "sdkmessageid"}
    )
    assert found.status_code == 200
    rows = found.json()["value"]
    assert len(rows) == 1
    message_id: str = rows[0]["sdkmessageid"]
    return message_id


async def _filter_id(api: httpx.AsyncClient, message_id: str, table: str) -> str:
    found = await api.get(
        "sdkmessagefilters",
        params={
            "$filter": (
                f"primaryobjecttypecode eq '{table}' and _sdkmessageid_value eq {message_id}"
            ),
            "$select": "sdkmessagefilterid,primaryobjecttypecode",
        },
    )
    assert found.status_code == 200
    rows = found.json()["value"]
    assert [row["primaryobjecttypecode"] for row in rows] == [table]
    filter_id: str = rows[0]["sdkmessagefilterid"]
    return filter_id


def _endpoint_body(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "Salesbridge notifications",
        "contract": 8,
        "url": "https://bridge.example/api/v1/crm/notifications",
        "authtype": 5,
        "authvalue": '<settings><setting name="x-salesbridge-webhook-key" value="k1" /></settings>',
        "messageformat": 2,
        "namespaceaddress": "https://bridge.example/api/v1/crm/notifications",
        "description": "Account changes",
        **overrides,
    }


async def test_every_table_has_a_filter_per_record_message(api: httpx.AsyncClient) -> None:
    for message in ("Create", "Update", "Delete"):
        message_id = await _message_id(api, message)
        for table in ("account", "contact", "salesorder", "product"):
            assert await _filter_id(api, message_id, table)


async def test_register_read_update_and_delete_a_webhook(
    api: httpx.AsyncClient, sandbox: RunningSandbox
) -> None:
    made = await api.post("serviceendpoints", json=_endpoint_body(), headers=RETURN)
    assert made.status_code == 201, made.text
    endpoint = made.json()
    endpoint_id = endpoint["serviceendpointid"]
    assert endpoint["contract"] == 8 and endpoint["authtype"] == 5
    assert endpoint["authvalue"] is None  # write-only, as in Dataverse
    assert endpoint["isauthvalueset"] is True
    assert sandbox.state.get("serviceendpoints", endpoint_id)["authvalue"].startswith("<settings>")

    message_id = await _message_id(api, "Update")
    filter_id = await _filter_id(api, message_id, "account")
    step = {
        "name": "Salesbridge: account Update",
        "mode": 1,
        "stage": 40,
        "rank": 1,
        "supporteddeployment": 0,
        "asyncautodelete": False,
        "filteringattributes": "name,accountnumber",
        "eventhandler_serviceendpoint@odata.bind": f"/serviceendpoints({endpoint_id})",
        "sdkmessageid@odata.bind": f"/sdkmessages({message_id})",
        "sdkmessagefilterid@odata.bind": f"/sdkmessagefilters({filter_id})",
    }
    created = await api.post("sdkmessageprocessingsteps", json=step)
    assert created.status_code == 204, created.text
    step_id = entity_id(created)

    listed = await api.get(
        "sdkmessageprocessingsteps",
        params={
            "$filter": f"_eventhandler_value eq {endpoint_id} and mode eq 1",
            "$select": "name,stage,statecode,_sdkmessageid_value,_sdkmessagefilterid_value",
        },
    )
    assert listed.status_code == 200, listed.text
    [row] = listed.json()["value"]
    assert row["sdkmessageprocessingstepid"] == step_id
    assert (row["stage"], row["statecode"]) == (40, 0)
    assert (row["_sdkmessageid_value"], row["_sdkmessagefilterid_value"]) == (message_id, filter_id)

    disabled = await api.patch(
        f"sdkmessageprocessingsteps({step_id})", json={"statecode": 1}, headers=RETURN
    )
    assert disabled.status_code == 200, disabled.text
    assert (disabled.json()["statecode"], disabled.json()["statuscode"]) == (1, 2)
    moved = await api.patch(
        f"serviceendpoints({endpoint_id})", json={"url": "https://other.example/hook"}
    )
    assert moved.status_code == 204

    # Deleting the endpoint deletes its steps (Dataverse's cascade).
    assert (await api.delete(f"serviceendpoints({endpoint_id})")).status_code == 204
    assert (await api.get(f"sdkmessageprocessingsteps({step_id})")).status_code == 404


async def test_bad_registrations_are_refused(api: httpx.AsyncClient) -> None:
    refused = await api.post("serviceendpoints", json=_endpoint_body(contract=42))
    assert refused.status_code == 400
    assert error_of(refused)["code"] == "0x80044331"
    made = await api.post("serviceendpoints", json=_endpoint_body())
    endpoint_id = entity_id(made)
    unsuffixed = await api.post(
        "sdkmessageprocessingsteps",
        json={"name": "x", "mode": 1, "stage": 40,
              "eventhandler@odata.bind": f"/serviceendpoints({endpoint_id})"},
    )  # fmt: skip
    assert unsuffixed.status_code == 400
    bad_mode = await api.post(
        "sdkmessageprocessingsteps",
        json={"name": "x", "mode": 3, "stage": 40,
              "eventhandler_serviceendpoint@odata.bind": f"/serviceendpoints({endpoint_id})"},
    )  # fmt: skip
    assert bad_mode.status_code == 400
