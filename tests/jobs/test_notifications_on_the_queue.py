"""A CRM change notification end to end on the job queue: posted to the receiver, it
wakes the mapping's entry, whose run on a real arq worker reads only the notified record
from the sandbox and consumes the notification; the watermark pass brings the rest."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import utc_now
from app.connection.webhook_key import WEBHOOK_KEY_HEADER, new_webhook_key, set_webhook_key
from app.db import SessionMaker
from app.models import erp
from app.models.integration import (
    ConnectionSetup,
    CrmWebhook,
    DataverseEntityChange,
    IntegrationTableMapping,
)
from app.settings import Settings
from tests.fixtures.sandbox import RunningSandbox
from tests.jobs.conftest import drive, full_sync, make_due
from tests.sync import factories as f


def _account_update(account_id: str, person: str) -> dict[str, Any]:
    return {
        "MessageName": "Update", "PrimaryEntityName": "account", "PrimaryEntityId": account_id,
        "OperationId": str(uuid.uuid4()), "RequestId": str(uuid.uuid4()),
        "OperationCreatedOn": f"/Date({int(utc_now().timestamp() * 1000)})/",
        "InitiatingUserId": person, "UserId": person, "Depth": 1, "Stage": 40, "Mode": 1,
        "InputParameters": [], "PreEntityImages": [], "PostEntityImages": [],
    }  # fmt: skip


async def _phone(session: AsyncSession, no: str) -> str:
    session.expire_all()
    return (await session.exec(select(erp.Customer).where(erp.Customer.no == no))).one().phone


async def test_a_notified_account_reaches_the_erp_through_the_queue(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    connected: ConnectionSetup, client: httpx.AsyncClient, admin: dict[str, str],
    tick_ctx: dict[str, Any], worker_settings: Settings, settings: Settings,
) -> None:  # fmt: skip
    await f.add(session, erp.Customer(no="C1", name="Cycle shop"),
                erp.Customer(no="C2", name="Bike barn"))  # fmt: skip
    key = new_webhook_key()
    webhook = CrmWebhook(url="https://bridge.example/api/v1/crm/notifications")
    set_webhook_key(settings, webhook, key)
    session.add(webhook)
    await session.commit()
    await full_sync(client, admin, "CUSTOMER")
    await drive(tick_ctx, worker_settings)
    accounts = {a["name"]: str(a["accountid"]) for a in sandbox.state.rows("accounts")}
    async with sessionmaker() as reading:
        mapping = (await reading.exec(select(IntegrationTableMapping).where(
            IntegrationTableMapping.name == "CUSTOMER"))).one()  # fmt: skip
    watermark = mapping.crm_modified_watermark

    person = await f.crm_user_edit(sandbox, "accounts", accounts["Cycle shop"], telephone1="+1 1")
    await f.crm_user_edit(sandbox, "accounts", accounts["Bike barn"], telephone1="+1 2")
    body = _account_update(accounts["Cycle shop"], person)  # Bike barn's notice is lost
    posted = await client.post(
        "/api/v1/crm/notifications", content=json.dumps(body),
        headers={"content-type": "application/json", WEBHOOK_KEY_HEADER: key},
    )  # fmt: skip
    assert posted.status_code == 202, posted.text

    await drive(tick_ctx, worker_settings)  # the tick wakes CUSTOMER; a worker runs it
    assert await _phone(session, "C1") == "+1 1"
    assert await _phone(session, "C2") == ""  # not notified: waits for the watermark pass
    changes = (await session.exec(select(DataverseEntityChange))).all()
    assert [c.processed_at is not None for c in changes] == [True]
    session.expire_all()
    kept = (await session.exec(select(IntegrationTableMapping).where(
        IntegrationTableMapping.name == "CUSTOMER"))).one()  # fmt: skip
    assert kept.crm_modified_watermark == watermark

    await make_due(sessionmaker, "CUSTOMER")  # its next periodic run: the watermark pass
    await drive(tick_ctx, worker_settings)
    assert await _phone(session, "C2") == "+1 2"
