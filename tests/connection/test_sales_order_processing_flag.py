"""Sales order integration sets the CRM organization's sales order processing flag.

BC sets ``organization.issopintegrationenabled`` when sales order integration is enabled
(so Sales hands submitted orders to the back office) and clears it when it is disabled.
Over real HTTP: the service in uvicorn, the flag read back through the sandbox's Web API.
"""

from __future__ import annotations

import uuid

import httpx

from app.dataverse import DataverseClient
from tests.fixtures.live_api import API, connect, sandbox_connection
from tests.fixtures.sandbox import RunningSandbox


async def _flag(crm: DataverseClient) -> bool:
    organization_id = (await crm.whoami()).organization_id
    row = await crm.get("organizations", organization_id, select=["issopintegrationenabled"])
    return bool(row["issopintegrationenabled"])


async def _patch(
    api: httpx.AsyncClient, admin: dict[str, str], **changes: object
) -> httpx.Response:
    return await api.patch(f"{API}/connection", json=changes, headers=admin)


async def test_the_flag_follows_the_sales_order_integration_switches(
    live_api: httpx.AsyncClient, live_admin: dict[str, str], sandbox: RunningSandbox,
    crm: DataverseClient,
) -> None:  # fmt: skip
    organization_id = sandbox.state.identity.organization_id
    seeded = sandbox.state.get("organizations", organization_id)
    await connect(live_api, live_admin, sandbox)
    assert await _flag(crm) is False  # a stock org fulfils its orders itself
    # Nothing to change, nothing written (changing the org takes a privilege).
    assert sandbox.state.get("organizations", organization_id) == seeded

    assert (await _patch(live_api, live_admin, sales_order_integration_enabled=True)).is_success
    assert await _flag(crm) is True
    assert (await _patch(live_api, live_admin, sales_order_integration_enabled=False)).is_success
    assert await _flag(crm) is False
    turned_on = await _patch(live_api, live_admin, bidirectional_sales_order_integration=True)
    assert turned_on.status_code == 200, turned_on.text
    assert await _flag(crm) is True
    mappings = (await live_api.get(f"{API}/mappings", headers=live_admin)).json()
    assert "SALESORDER-ORDER" in {m["name"] for m in mappings}


async def test_changes_while_disabled_reach_the_crm_when_the_connection_is_enabled(
    live_api: httpx.AsyncClient, live_admin: dict[str, str], sandbox: RunningSandbox,
    crm: DataverseClient,
) -> None:  # fmt: skip
    await connect(live_api, live_admin, sandbox, sales_order_integration_enabled=True)
    assert await _flag(crm) is True  # set on enabling
    assert (await live_api.post(f"{API}/connection/disable", headers=live_admin)).is_success

    assert (await _patch(live_api, live_admin, sales_order_integration_enabled=False)).is_success
    assert await _flag(crm) is True  # a disabled connection does not call the CRM
    enabled = await live_api.post(f"{API}/connection/enable", headers=live_admin)

    assert enabled.status_code == 200, enabled.text
    assert await _flag(crm) is False


async def test_a_crm_that_cannot_take_the_flag_leaves_the_setup_unchanged(
    live_api: httpx.AsyncClient, live_admin: dict[str, str], sandbox: RunningSandbox,
    crm: DataverseClient,
) -> None:  # fmt: skip
    await connect(live_api, live_admin, sandbox)
    await live_api.put(f"{sandbox.control_url}/faults", json={"error_rate": 1.0})

    response = await _patch(live_api, live_admin, sales_order_integration_enabled=True)

    assert response.status_code == 502, response.text
    assert "sales order processing flag" in response.json()["detail"]
    await live_api.put(f"{sandbox.control_url}/faults", json={"error_rate": 0.0})
    setup = (await live_api.get(f"{API}/connection", headers=live_admin)).json()
    assert setup["sales_order_integration_enabled"] is False
    assert await _flag(crm) is False
    mappings = (await live_api.get(f"{API}/mappings", headers=live_admin)).json()
    assert "SALESORDER-ORDER" not in {m["name"] for m in mappings}


async def test_the_assisted_setup_sets_the_flag_when_it_enables_sales_orders(
    live_api: httpx.AsyncClient, live_admin: dict[str, str], sandbox: RunningSandbox,
    crm: DataverseClient,
) -> None:  # fmt: skip
    assert (await live_api.post(f"{API}/assisted-setup", headers=live_admin)).status_code == 201
    steps = {
        "crm_url": {"server_address": sandbox.base_url},
        "credentials": {
            key: value for key, value in sandbox_connection(sandbox).items()
            if key in ("token_url", "client_id", "client_secret")
        },
        "options": {"import_solution": False, "enable_sales_order_integration": True,
                    "enable_dataverse_connection": True},
    }  # fmt: skip
    for step, answers in steps.items():
        put = await live_api.put(f"{API}/assisted-setup/steps/{step}", json=answers,
                                 headers=live_admin)  # fmt: skip
        assert put.status_code == 200, put.text

    finished = await live_api.post(f"{API}/assisted-setup/finish", headers=live_admin)

    assert finished.status_code == 200, finished.text
    result = finished.json()["result"]
    assert result["is_enabled"] is True
    assert not any("sales order processing" in step for step in result["next_steps"])
    assert await _flag(crm) is True
    organization = sandbox.state.get("organizations", sandbox.state.identity.organization_id)
    assert organization is not None
    assert uuid.UUID(str(organization["organizationid"])) == (await crm.whoami()).organization_id
