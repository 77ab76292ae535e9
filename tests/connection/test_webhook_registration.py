"""The webhook Salesbridge registers in the CRM (the sandbox over real HTTP): one service
endpoint and a Create, Update and Delete step per CRM table a mapping reads; converging on
every enable and redeploy, removed on disable, never failing the action that asked."""

from __future__ import annotations

import logging
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import structlog
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.connection import webhook_registration
from app.connection.connection_setup import get_connection_setup
from app.connection.webhook_key import WEBHOOK_KEY_HEADER, get_crm_webhook, webhook_key
from app.connection.webhook_registrar import ENDPOINT_NAME
from app.dataverse import DataverseClient
from app.main import create_app
from app.models.integration import CrmWebhook, Direction, IntegrationTableMapping
from app.settings import Settings
from tests.connection.conftest import API, enable
from tests.fixtures.sandbox import RunningSandbox

ENDPOINT_SELECT = ["serviceendpointid", "name", "contract", "url", "authtype", "messageformat",
                   "isauthvalueset"]  # fmt: skip
STEP_SELECT = ["sdkmessageprocessingstepid", "name", "mode", "stage", "rank", "asyncautodelete",
               "supporteddeployment", "filteringattributes", "statecode", "_eventhandler_value",
               "_sdkmessageid_value", "_sdkmessagefilterid_value"]  # fmt: skip


async def _rows(crm: DataverseClient, entity_set: str, select: list[str]) -> list[dict[str, Any]]:
    return [row async for row in crm.query(entity_set, select=select)]


async def _steps_by_key(crm: DataverseClient) -> dict[tuple[str, str], dict[str, Any]]:
    """The CRM's steps by (message name, table), read back through their bindings."""
    messages = {
        row["sdkmessageid"]: row["name"]
        for row in await _rows(crm, "sdkmessages", ["sdkmessageid", "name"])
    }
    steps: dict[tuple[str, str], dict[str, Any]] = {}
    for step in await _rows(crm, "sdkmessageprocessingsteps", STEP_SELECT):
        found = await crm.get(
            "sdkmessagefilters",
            step["_sdkmessagefilterid_value"],
            select=["primaryobjecttypecode", "_sdkmessageid_value"],
        )
        # The filter and the message bound to the step agree.
        assert found["_sdkmessageid_value"] == step["_sdkmessageid_value"]
        key = (messages[step["_sdkmessageid_value"]], found["primaryobjecttypecode"])
        assert key not in steps, f"two steps for {key}"
        steps[key] = step
    return steps


async def _tables_read(session: AsyncSession) -> set[str]:
    mappings = await session.exec(select(IntegrationTableMapping))
    return {m.integration_table for m in mappings if m.direction != Direction.to_crm}


async def _stored(session: AsyncSession) -> CrmWebhook:
    """The row as the API's own sessions left it (read again, not from this session's cache)."""
    row = await get_crm_webhook(session)
    assert row is not None
    await session.refresh(row)
    return row


def _header_in(authvalue: str) -> dict[str, str]:
    root = ET.fromstring(authvalue)  # noqa: S314 - our own XML, read back from the sandbox
    assert root.tag == "settings"
    return {s.attrib["name"]: s.attrib["value"] for s in root.iter("setting")}


async def _stop_reading_salespeople(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    """SALESPEOPLE only reads the CRM: stop its field mappings, then turn it to_crm."""
    fields = (await client.get(f"{API}/mappings/SALESPEOPLE/fields", headers=admin)).json()
    for field in fields:
        changed = await client.patch(
            f"{API}/mappings/SALESPEOPLE/fields/{field['id']}",
            json={"status": "disabled"},
            headers=admin,
        )
        assert changed.status_code == 200, changed.text
    turned = await client.patch(
        f"{API}/mappings/SALESPEOPLE", json={"direction": "to_crm"}, headers=admin
    )
    assert turned.status_code == 200, turned.text


async def test_enable_registers_one_endpoint_and_three_steps_per_table_read(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    sandbox: RunningSandbox,
    crm: DataverseClient,
    session: AsyncSession,
    settings: Settings,
) -> None:
    await enable(client, admin, sandbox)
    [endpoint] = await _rows(crm, "serviceendpoints", ENDPOINT_SELECT)
    url = settings.public_url.rstrip("/") + settings.webhook_path
    assert endpoint["name"] == ENDPOINT_NAME
    assert (endpoint["contract"], endpoint["messageformat"], endpoint["authtype"]) == (8, 2, 5)
    assert endpoint["url"] == url and endpoint["isauthvalueset"] is True
    row = await _stored(session)
    key = webhook_key(settings, row)
    assert len(key) >= 40
    # authvalue is write-only over the Web API (as in Dataverse): read the sandbox's store.
    stored_endpoint = sandbox.state.get("serviceendpoints", endpoint["serviceendpointid"])
    assert stored_endpoint is not None
    assert _header_in(stored_endpoint["authvalue"]) == {WEBHOOK_KEY_HEADER: key}

    tables = await _tables_read(session)
    assert {"account", "contact", "systemuser", "product"} <= tables
    assert "transactioncurrency" not in tables  # CURRENCY only writes to the CRM
    steps = await _steps_by_key(crm)
    assert set(steps) == {(m, t) for t in tables for m in ("Create", "Update", "Delete")}
    for (message, table), step in steps.items():
        assert step["_eventhandler_value"] == endpoint["serviceendpointid"]
        assert (step["mode"], step["stage"], step["rank"], step["statecode"]) == (1, 40, 1, 0)
        assert step["asyncautodelete"] is True and step["supporteddeployment"] == 0
        assert step["name"] == f"Salesbridge: {message} of {table}"
        if message != "Update":
            assert not step["filteringattributes"]
    account_columns = steps["Update", "account"]["filteringattributes"].split(",")
    read = {"name", "address1_city", "transactioncurrencyid", "statecode", "customertypecode"}
    assert read <= set(account_columns)
    assert not {"creditlimit", "ownerid"} & set(account_columns)  # sent to the CRM, never read

    assert row.service_endpoint_id == uuid.UUID(endpoint["serviceendpointid"])
    assert row.url == url and row.registered_at is not None and row.last_error == ""
    recorded = {(s["message"], s["entity"]): s["step_id"] for s in row.steps}
    assert recorded == {k: v["sdkmessageprocessingstepid"] for k, v in steps.items()}
    shown = (await client.get(f"{API}/connection", headers=admin)).json()["webhook"]
    assert shown == {"registered": True, "url": url, "steps": len(steps), "reason": ""}


async def test_enabling_and_redeploying_again_creates_nothing_twice(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    sandbox: RunningSandbox,
    crm: DataverseClient,
    session: AsyncSession,
    settings: Settings,
) -> None:
    await enable(client, admin, sandbox)
    first = {k: s["sdkmessageprocessingstepid"] for k, s in (await _steps_by_key(crm)).items()}
    key = webhook_key(settings, await _stored(session))
    for _ in range(2):
        deployed = await client.post(f"{API}/connection/deploy-solution", headers=admin)
        assert deployed.status_code == 200, deployed.text
        assert deployed.json()["webhook"]["registered"] is True
        assert deployed.json()["webhook"]["steps"] == len(first)
    response = await client.post(f"{API}/connection/enable", headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["webhook"]["steps"] == len(first)
    assert len(await _rows(crm, "serviceendpoints", ["serviceendpointid"])) == 1
    again = {k: s["sdkmessageprocessingstepid"] for k, s in (await _steps_by_key(crm)).items()}
    assert again == first
    assert webhook_key(settings, await _stored(session)) == key  # the key is kept


async def test_redeploy_removes_the_steps_of_a_mapping_no_longer_reading_the_crm(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    sandbox: RunningSandbox,
    crm: DataverseClient,
) -> None:
    await enable(client, admin, sandbox)
    assert ("Update", "systemuser") in await _steps_by_key(crm)
    await _stop_reading_salespeople(client, admin)
    before = await _steps_by_key(crm)
    deployed = await client.post(f"{API}/connection/deploy-solution", headers=admin)
    assert deployed.status_code == 200, deployed.text
    after = await _steps_by_key(crm)
    assert {table for _, table in after} == {table for _, table in before} - {"systemuser"}
    assert deployed.json()["webhook"]["steps"] == len(after) == len(before) - 3
    # The other steps were kept as they were, not made again.
    assert all(after[k]["sdkmessageprocessingstepid"] == before[k]["sdkmessageprocessingstepid"]
               for k in after)  # fmt: skip


async def test_redeploy_narrows_the_update_columns_when_a_field_mapping_stops(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    sandbox: RunningSandbox,
    crm: DataverseClient,
) -> None:
    await enable(client, admin, sandbox)
    before = (await _steps_by_key(crm))["Update", "systemuser"]
    assert "mobilephone" in before["filteringattributes"].split(",")
    fields = (await client.get(f"{API}/mappings/SALESPEOPLE/fields", headers=admin)).json()
    [phone] = [f for f in fields if f["integration_field"] == "mobilephone"]
    changed = await client.patch(
        f"{API}/mappings/SALESPEOPLE/fields/{phone['id']}",
        json={"status": "disabled"},
        headers=admin,
    )
    assert changed.status_code == 200, changed.text
    deployed = await client.post(f"{API}/connection/deploy-solution", headers=admin)
    assert deployed.status_code == 200, deployed.text
    after = (await _steps_by_key(crm))["Update", "systemuser"]
    assert after["sdkmessageprocessingstepid"] == before["sdkmessageprocessingstepid"]
    assert "mobilephone" not in after["filteringattributes"].split(",")
    assert "internalemailaddress" in after["filteringattributes"].split(",")


async def test_disable_removes_the_endpoint_and_every_step(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    sandbox: RunningSandbox,
    crm: DataverseClient,
    session: AsyncSession,
) -> None:
    await enable(client, admin, sandbox)
    assert await _steps_by_key(crm)
    response = await client.post(f"{API}/connection/disable", headers=admin)
    assert response.status_code == 200, response.text
    shown = response.json()["webhook"]
    assert shown["registered"] is False and shown["steps"] == 0
    assert "disabled" in shown["reason"]
    assert await _rows(crm, "serviceendpoints", ["serviceendpointid"]) == []
    assert await _rows(crm, "sdkmessageprocessingsteps", ["sdkmessageprocessingstepid"]) == []
    row = await _stored(session)
    assert row.service_endpoint_id is None and row.steps == [] and row.url == ""


async def test_a_disable_that_cannot_reach_the_crm_keeps_the_ids_for_the_next_enable(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    sandbox: RunningSandbox,
    crm: DataverseClient,
    session: AsyncSession,
) -> None:
    await enable(client, admin, sandbox)
    registered = await _stored(session)
    endpoint_id, step_count = registered.service_endpoint_id, len(registered.steps)
    sandbox.config.error_rate, sandbox.config.error_statuses = 1.0, (500,)
    try:
        response = await client.post(f"{API}/connection/disable", headers=admin)
    finally:
        sandbox.config.error_rate = 0.0
    assert response.status_code == 200, response.text
    assert response.json()["is_enabled"] is False
    shown = response.json()["webhook"]
    assert shown["registered"] is True and "Could not remove" in shown["reason"]
    row = await _stored(session)
    assert row.service_endpoint_id == endpoint_id and len(row.steps) == step_count
    assert "next enable" in row.last_error

    # The CRM still holds everything; the next enable finds and reuses it, nothing doubled.
    assert len(await _rows(crm, "serviceendpoints", ["serviceendpointid"])) == 1
    response = await client.post(f"{API}/connection/enable", headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["webhook"] == {**shown, "reason": ""}
    [endpoint] = await _rows(crm, "serviceendpoints", ["serviceendpointid"])
    assert endpoint["serviceendpointid"] == str(endpoint_id)
    assert len(await _steps_by_key(crm)) == step_count


async def test_a_registration_the_crm_refuses_is_reported_not_raised(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    sandbox: RunningSandbox,
    session: AsyncSession,
    settings: Settings,
) -> None:
    await enable(client, admin, sandbox)
    setup = await get_connection_setup(session, settings)
    row = await _stored(session)
    row.service_endpoint_id, row.steps = None, []  # as if never registered
    session.add(row)
    await session.flush()
    sandbox.config.error_rate, sandbox.config.error_statuses = 1.0, (500,)
    try:
        report = await webhook_registration.register_webhook(session, settings, setup)
    finally:
        sandbox.config.error_rate = 0.0
    assert report.registered is False
    assert report.reason.startswith("Could not register the webhook in the CRM")
    assert "periodic synchronization" in report.reason
    assert (await _stored(session)).last_error == report.reason


@pytest.fixture
async def webhooks_off(
    settings: Settings, sessionmaker: object
) -> AsyncIterator[tuple[httpx.AsyncClient, Settings]]:
    """The API of a service started with SALESBRIDGE_WEBHOOKS_ENABLED=false."""
    off = settings.model_copy(update={"webhooks_enabled": False})
    application = create_app(off, should_migrate=False)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
            yield api, off


async def test_webhooks_turned_off_removes_the_registration_and_registers_nothing(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    sandbox: RunningSandbox,
    crm: DataverseClient,
    session: AsyncSession,
    webhooks_off: tuple[httpx.AsyncClient, Settings],
) -> None:
    await enable(client, admin, sandbox)
    assert await _steps_by_key(crm)
    api, _ = webhooks_off
    deployed = await api.post(f"{API}/connection/deploy-solution", headers=admin)
    assert deployed.status_code == 200, deployed.text
    shown = deployed.json()["webhook"]
    assert shown["registered"] is False and "SALESBRIDGE_WEBHOOKS_ENABLED" in shown["reason"]
    assert await _rows(crm, "serviceendpoints", ["serviceendpointid"]) == []
    assert await _rows(crm, "sdkmessageprocessingsteps", ["sdkmessageprocessingstepid"]) == []
    for path in ("disable", "enable"):
        response = await api.post(f"{API}/connection/{path}", headers=admin)
        assert response.status_code == 200, response.text
    assert response.json()["webhook"]["registered"] is False
    assert await _rows(crm, "serviceendpoints", ["serviceendpointid"]) == []
    row = await _stored(session)
    assert row.service_endpoint_id is None and row.steps == []


async def test_a_url_a_cloud_crm_cannot_call_is_not_registered_and_says_why(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    sandbox: RunningSandbox,
    crm: DataverseClient,
    session: AsyncSession,
    settings: Settings,
    webhooks_off: tuple[httpx.AsyncClient, Settings],
) -> None:
    api, _ = webhooks_off
    await enable(api, admin, sandbox)  # enabled, nothing registered
    setup = await get_connection_setup(session, settings)
    assert setup.is_enabled
    cloud = settings.model_copy(update={"allow_private_crm_addresses": False})
    assert not cloud.has_public_url  # no SALESBRIDGE_PUBLIC_URL: only the local default
    with structlog.testing.capture_logs() as events:
        report = await webhook_registration.register_webhook(session, cloud, setup)
    assert report.registered is False and report.steps == 0
    assert "SALESBRIDGE_PUBLIC_URL is not set" in report.reason
    assert "SALESBRIDGE_ALLOW_PRIVATE_CRM_ADDRESSES" in report.reason
    assert (await _stored(session)).last_error == report.reason
    assert await _rows(crm, "serviceendpoints", ["serviceendpointid"]) == []
    # Nothing was tried in the CRM, so nothing failed: the reason is logged once.
    assert [(e["event"], e["reason"]) for e in events] == [
        ("crm_webhook_not_registered", report.reason)
    ]


async def test_reset_to_the_defaults_registers_the_new_mappings(
    client: httpx.AsyncClient, admin: dict[str, str], sandbox: RunningSandbox, crm: DataverseClient
) -> None:
    await enable(client, admin, sandbox)
    everything = await _steps_by_key(crm)
    await _stop_reading_salespeople(client, admin)
    deployed = await client.post(f"{API}/connection/deploy-solution", headers=admin)
    assert deployed.json()["webhook"]["steps"] == len(everything) - 3
    reset = await client.post(f"{API}/mappings/reset-defaults", headers=admin)
    assert reset.status_code == 200, reset.text
    assert reset.json()["webhook"]["steps"] == len(everything)
    assert set(await _steps_by_key(crm)) == set(everything)
    await client.post(f"{API}/connection/disable", headers=admin)
    reset = await client.post(f"{API}/mappings/reset-defaults", headers=admin)
    assert reset.status_code == 200 and reset.json()["webhook"] is None
    assert await _rows(crm, "serviceendpoints", ["serviceendpointid"]) == []


async def test_the_key_never_appears_in_a_response_or_a_log(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    sandbox: RunningSandbox,
    session: AsyncSession,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as events:
        await enable(client, admin, sandbox)
        responses = [
            await client.get(f"{API}/connection", headers=admin),
            await client.post(f"{API}/connection/deploy-solution", headers=admin),
            await client.post(f"{API}/mappings/reset-defaults", headers=admin),
            await client.post(f"{API}/connection/enable", headers=admin),
            await client.post(f"{API}/connection/disable", headers=admin),
        ]
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    key = webhook_key(settings, await _stored(session))
    names = [event["event"] for event in events]
    assert names.count("crm_webhook_registered") == 4 and "crm_webhook_removed" in names
    captured = capsys.readouterr()
    texts = [r.text for r in responses] + [repr(events), caplog.text, captured.out, captured.err]
    assert all(key not in text for text in texts)
    row = await _stored(session)
    assert row.secret_encrypted and key not in row.secret_encrypted


async def test_redeploy_repairs_what_was_changed_in_the_crm(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    sandbox: RunningSandbox,
    crm: DataverseClient,
    session: AsyncSession,
) -> None:
    await enable(client, admin, sandbox)
    [endpoint] = await _rows(crm, "serviceendpoints", ["serviceendpointid"])
    steps = await _steps_by_key(crm)
    # The stored id lost (another database restored, say): found again by name, not doubled.
    row = await _stored(session)
    row.service_endpoint_id = uuid.uuid4()
    session.add(row)
    await session.commit()
    # A step disabled and another deleted by hand; the url edited by hand.
    update_id = steps["Update", "account"]["sdkmessageprocessingstepid"]
    await crm.update("sdkmessageprocessingsteps", update_id, {"statecode": 1})
    create_id = steps["Create", "contact"]["sdkmessageprocessingstepid"]
    await crm.delete("sdkmessageprocessingsteps", create_id)
    moved = {"url": "https://elsewhere.example/x"}
    await crm.update("serviceendpoints", endpoint["serviceendpointid"], moved)
    deployed = await client.post(f"{API}/connection/deploy-solution", headers=admin)
    assert deployed.status_code == 200, deployed.text
    assert deployed.json()["webhook"]["steps"] == len(steps)
    [again] = await _rows(crm, "serviceendpoints", ["serviceendpointid", "url"])
    assert again["serviceendpointid"] == endpoint["serviceendpointid"]
    assert again["url"] == deployed.json()["webhook"]["url"]
    repaired = await _steps_by_key(crm)
    assert set(repaired) == set(steps)
    assert repaired["Update", "account"]["statecode"] == 0
    assert (await _stored(session)).service_endpoint_id == uuid.UUID(endpoint["serviceendpointid"])

    # The endpoint deleted in the CRM (its steps go with it): registered again from scratch.
    await crm.delete("serviceendpoints", endpoint["serviceendpointid"])
    assert await _rows(crm, "sdkmessageprocessingsteps", ["sdkmessageprocessingstepid"]) == []
    deployed = await client.post(f"{API}/connection/deploy-solution", headers=admin)
    assert deployed.json()["webhook"] == {
        **deployed.json()["webhook"],
        "registered": True,
        "reason": "",
    }
    [recreated] = await _rows(crm, "serviceendpoints", ["serviceendpointid"])
    assert recreated["serviceendpointid"] != endpoint["serviceendpointid"]
    assert set(await _steps_by_key(crm)) == set(steps)
    row = await _stored(session)
    assert row.service_endpoint_id == uuid.UUID(recreated["serviceendpointid"])
    assert len(row.steps) == len(steps)
