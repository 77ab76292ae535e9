"""Near-real-time sync end to end, with real processes: ``salesbridge sandbox`` and
``salesbridge serve`` (its embedded worker and Redis), connected with the CLI as a user
would (``connection setup --sandbox``, which registers the webhook, then ``sync full``).

Changes are made as people make them: an item over the REST API, an account in the CRM
by a salesperson. The recurring runs are 30 minutes apart and the database wake-up waits
30 s, so a change that arrives within ``DEADLINE`` came by a nudge or a notification.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import utc_now
from app.connection.webhook_key import WEBHOOK_KEY_HEADER, get_crm_webhook, webhook_key
from app.db import create_engine
from app.sandbox.security import SEEDED_ROLES
from app.settings import Settings
from tests.fixtures.live_service import BIN, LiveService, live_service

DEADLINE = 20.0  # below the 30 s wake-up delay: only the fast paths arrive in time
ODATA = {"Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"}
RECEIVER = "/api/v1/crm/notifications"


@dataclass
class Connected:
    live: LiveService
    erp: httpx.AsyncClient  # the REST API as the admin
    crm: httpx.AsyncClient  # the CRM's Web API as the application user
    control: httpx.AsyncClient  # the sandbox's control API
    person: str  # a salesperson's systemuserid

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        engine = create_engine(self.live.database_url)
        try:
            async with engine.connect() as connection:
                return list((await connection.execute(text(sql), params)).all())
        finally:
            await engine.dispose()

    async def account_of(self, customer_no: str) -> str:
        [(crm_id,)] = await self.rows(
            "SELECT r.crm_id FROM customer c JOIN integration_record r"
            " ON r.integration_id = c.system_id AND r.table_name = 'customer' WHERE c.no = :no",
            no=customer_no,
        )
        return str(uuid.UUID(str(crm_id)))

    async def edit_account(self, account: str, changes: dict[str, Any]) -> None:
        """As the salesperson: the application user acting on their behalf."""
        answer = await self.crm.patch(
            f"accounts({account})",
            json=changes,
            headers={"MSCRMCallerID": self.person, "If-Match": "*"},
        )
        assert answer.status_code == 204, answer.text

    async def deliveries_settled(self) -> dict[str, Any]:
        """The sandbox's webhook counters once no delivery is pending."""
        while True:
            state = (await self.control.get("webhooks")).json()
            if state["pending"] == 0:
                return dict(state["counters"])
            await asyncio.sleep(0.1)


def _cli(live: LiveService, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESBRIDGE_")}
    env.update(
        SALESBRIDGE_DATA_DIR=str(live.data_dir),
        SALESBRIDGE_PORT=live.url.rsplit(":", 1)[1],
        SALESBRIDGE_SANDBOX_PORT=live.sandbox.base_url.rsplit(":", 1)[1],
        SALESBRIDGE_ALLOW_PRIVATE_CRM_ADDRESSES="true",
        SALESBRIDGE_LOG_LEVEL="WARNING",
    )
    done = subprocess.run(  # noqa: S603 - our own command
        [str(BIN / "salesbridge"), *args], env=env, capture_output=True, text=True, timeout=300,
        check=False, cwd=live.data_dir.parent,
    )  # fmt: skip
    assert done.returncode == 0, f"salesbridge {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> float:
    """Seconds until ``check`` holds; fails after DEADLINE."""
    began = time.monotonic()
    while time.monotonic() - began < DEADLINE:
        if await check():
            return time.monotonic() - began
        await asyncio.sleep(0.1)
    pytest.fail(f"{what}: not there after {DEADLINE} s")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    with live_service(tmp_path_factory.mktemp("near-real-time")) as live:
        yield live


@pytest.fixture(scope="module")
async def connected(service: LiveService) -> AsyncIterator[Connected]:
    token = _cli(service, "token", "admin").split()[0]
    erp = httpx.AsyncClient(
        base_url=f"{service.url}/api/v1/", headers={"Authorization": f"Bearer {token}"}, timeout=60
    )
    units = [{"code": "PCS", "description": "Pieces"}]
    assert (await erp.post("units-of-measure/bulk-upsert", json=units)).status_code == 200
    items = [{"no": f"NRT{n}", "description": f"Item {n}", "base_unit_of_measure": "PCS"}
             for n in range(5)]  # fmt: skip
    assert (await erp.post("items/bulk-upsert", json=items)).status_code == 200
    customers = [{"no": f"NRC{n}", "name": f"Near Real Time {n}"} for n in range(5)]
    assert (await erp.post("customers/bulk-upsert", json=customers)).status_code == 200
    setup = _cli(service, "connection", "setup", "--sandbox")
    assert "notifications" in setup.lower(), setup
    _cli(service, "sync", "full")

    config = service.sandbox_config
    form = {
        "grant_type": "client_credentials",
        "client_id": config.client_id,
        "client_secret": config.client_secret,
        "scope": f"{service.sandbox.base_url}/.default",
    }
    async with httpx.AsyncClient() as client:
        answer = await client.post(service.token_url, data=form)
    bearer = {**ODATA, "Authorization": f"Bearer {answer.json()['access_token']}"}
    crm = httpx.AsyncClient(
        base_url=f"{service.sandbox.base_url}/api/data/v{config.api_version}/", headers=bearer
    )
    control = httpx.AsyncClient(base_url=f"{service.sandbox.base_url}/_sandbox/")
    made = await control.post("users", json={"firstname": "Sam", "lastname": "Seller"})
    app_user = (await crm.get("WhoAmI")).json()["UserId"]
    role = f"{crm.base_url}roles({SEEDED_ROLES['Delegate']})"
    granted = await crm.post(
        f"systemusers({app_user})/systemuserroles_association/$ref", json={"@odata.id": role}
    )
    assert granted.status_code in (204, 412), granted.text
    try:
        yield Connected(service, erp, crm, control, str(made.json()["systemuserid"]))
    finally:
        for client in (erp, crm, control):
            await client.aclose()


async def test_the_webhook_is_registered_in_the_crm(connected: Connected) -> None:
    [endpoint] = (await connected.crm.get("serviceendpoints")).json()["value"]
    assert endpoint["url"] == f"{connected.live.url}{RECEIVER}"
    steps = (await connected.crm.get("sdkmessageprocessingsteps")).json()["value"]
    assert {s["_eventhandler_value"] for s in steps} == {endpoint["serviceendpointid"]}


async def test_an_account_edited_in_the_crm_is_in_the_erp_within_seconds(
    connected: Connected,
) -> None:
    account = await connected.account_of("NRC0")
    await connected.edit_account(account, {"telephone1": "+46 8 555 0100"})

    async def arrived() -> bool:
        rows = await connected.rows("SELECT phone FROM customer WHERE no = 'NRC0'")
        return rows == [("+46 8 555 0100",)]

    await eventually(arrived, "the CRM edit in the ERP")
    [(received,)] = await connected.rows("SELECT received_count FROM crm_webhook")
    assert received >= 1


async def test_an_item_edited_over_rest_is_in_the_crm_within_seconds_and_not_echoed(
    connected: Connected,
) -> None:
    before = await connected.deliveries_settled()
    answer = await connected.erp.patch("items/NRT0", json={"description": "Racing bike"})
    assert answer.status_code == 200

    async def arrived() -> bool:
        found = await connected.crm.get(
            "products", params={"$filter": "productnumber eq 'NRT0'", "$select": "name"}
        )
        return [row["name"] for row in found.json()["value"]] == ["Racing bike"]

    await eventually(arrived, "the REST edit in the CRM")
    # The integration user's write of the product is notified by the CRM like any other;
    # the receiver sets it aside, so nothing runs for it and the item is not written back.
    after = await connected.deliveries_settled()
    assert after["delivered"] > before["delivered"]
    [(product,)] = await connected.rows(
        "SELECT r.crm_id FROM item i JOIN integration_record r"
        " ON r.integration_id = i.system_id AND r.table_name = 'item' WHERE i.no = 'NRT0'"
    )
    echoes = await connected.rows(
        "SELECT count(*) FROM dataverse_entity_change WHERE record_id = :id", id=product
    )
    assert echoes == [(0,)]
    [(modified_by,)] = await connected.rows("SELECT modified_by FROM item WHERE no = 'NRT0'")
    assert modified_by != "salesbridge-sync"  # the sync never wrote the item back


async def test_a_dropped_notification_is_caught_up_by_the_next_periodic_run(
    connected: Connected,
) -> None:
    account = await connected.account_of("NRC1")
    assert (await connected.control.patch("webhooks", json={"drop_rate": 1})).status_code == 200
    try:
        before = await connected.deliveries_settled()
        await connected.edit_account(account, {"telephone1": "+46 8 555 0111"})
        after = await connected.deliveries_settled()
    finally:
        await connected.control.patch("webhooks", json={"drop_rate": 0})
    assert after["dropped"] == before["dropped"] + 1
    [(phone,)] = await connected.rows("SELECT phone FROM customer WHERE no = 'NRC1'")
    assert phone != "+46 8 555 0111"  # nothing told Salesbridge yet
    # The mapping's periodic run, started now rather than waited for (30 minutes).
    assert (await connected.erp.post("sync/mappings/CUSTOMER/run")).status_code == 202

    async def caught_up() -> bool:
        rows = await connected.rows("SELECT phone FROM customer WHERE no = 'NRC1'")
        return rows == [("+46 8 555 0111",)]

    await eventually(caught_up, "the dropped change after the periodic run")


async def test_a_duplicated_notification_changes_nothing_twice(connected: Connected) -> None:
    account = await connected.account_of("NRC2")
    knobs = {"duplicate_rate": 1, "delay_ms": 0}
    assert (await connected.control.patch("webhooks", json=knobs)).status_code == 200
    try:
        await connected.edit_account(account, {"telephone1": "+46 8 555 0122"})
        counters = await connected.deliveries_settled()
    finally:
        await connected.control.patch("webhooks", json={"duplicate_rate": 0})
    assert counters["duplicated"] >= 1

    async def arrived() -> bool:
        rows = await connected.rows("SELECT phone FROM customer WHERE no = 'NRC2'")
        return rows == [("+46 8 555 0122",)]

    await eventually(arrived, "the duplicated change")
    stored = await connected.rows(
        "SELECT count(*) FROM dataverse_entity_change WHERE record_id = :id",
        id=uuid.UUID(account).hex,  # how SQLite holds a UUID column
    )
    assert stored == [(1,)]  # the second copy was refused as already received
    [(modified_at,)] = await connected.rows("SELECT modified_at FROM customer WHERE no = 'NRC2'")
    await asyncio.sleep(3)  # several ticks and debounce windows: nothing runs it again
    assert await connected.rows("SELECT modified_at FROM customer WHERE no = 'NRC2'") == [
        (modified_at,)
    ]


async def test_the_receiver_refuses_a_wrong_key_and_a_malformed_body(
    connected: Connected,
) -> None:
    live = connected.live
    settings = Settings(data_dir=live.data_dir, database_url=live.database_url)
    engine = create_engine(live.database_url)
    try:
        async with AsyncSession(engine) as session:
            row = await get_crm_webhook(session)
    finally:
        await engine.dispose()
    assert row is not None
    key = webhook_key(settings, row)
    [(refused_before,)] = await connected.rows("SELECT refused_count FROM crm_webhook")
    [(stored_before,)] = await connected.rows("SELECT count(*) FROM dataverse_entity_change")
    created = int(utc_now().timestamp() * 1000)
    body = json.dumps({
        "MessageName": "Update", "PrimaryEntityName": "account",
        "PrimaryEntityId": str(uuid.uuid4()), "OperationId": str(uuid.uuid4()),
        "OperationCreatedOn": f"/Date({created})/", "UserId": str(uuid.uuid4()),
    })  # fmt: skip
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(base_url=live.url) as client:
        wrong = await client.post(
            RECEIVER, content=body, headers={**headers, WEBHOOK_KEY_HEADER: "not-the-key"}
        )
        assert wrong.status_code == 401, wrong.text
        malformed = await client.post(
            RECEIVER, content="{not json", headers={**headers, WEBHOOK_KEY_HEADER: key}
        )
        assert malformed.status_code == 400, malformed.text
        for answer in (wrong, malformed):
            assert answer.json()["detail"] and key not in answer.text
    [(refused_after,)] = await connected.rows("SELECT refused_count FROM crm_webhook")
    assert refused_after == refused_before + 2
    [(stored_after,)] = await connected.rows("SELECT count(*) FROM dataverse_entity_change")
    assert stored_after == stored_before
