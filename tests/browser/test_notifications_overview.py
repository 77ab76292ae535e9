"""The overview in a real browser against a real serve: CRM change notifications posted
to the receiver over HTTP (one accepted, one with a wrong key) show as received and
refused, with the pending changes."""

from __future__ import annotations

import json
import uuid

import httpx
from playwright.async_api import BrowserContext, expect

from app.clock import utc_now
from app.connection.webhook_key import WEBHOOK_KEY_HEADER, new_webhook_key, set_webhook_key
from app.db import create_engine, create_sessionmaker, session_scope
from app.models.integration import CrmWebhook, DataverseEntityChange
from app.settings import Settings
from tests.browser.conftest import sign_in
from tests.fixtures.browser import screenshot
from tests.fixtures.live_service import LiveService


async def _arrange(live: LiveService) -> str:
    """A registered webhook with its key, and one change no run has read yet."""
    settings = Settings(data_dir=live.data_dir, database_url=live.database_url)
    key = new_webhook_key()
    row = CrmWebhook(
        url=f"{live.url}/api/v1/crm/notifications", registered_at=utc_now(),
        steps=[{"message": m, "entity": "account", "step_id": str(uuid.uuid4())}
               for m in ("Create", "Update", "Delete")],
    )  # fmt: skip
    set_webhook_key(settings, row, key)
    engine = create_engine(live.database_url)
    try:
        async with session_scope(create_sessionmaker(engine)) as session:
            session.add(row)
            session.add(DataverseEntityChange(
                entity_name="contact", record_id=uuid.uuid4(), message="Update",
                delivery_key=str(uuid.uuid4()), received_at=utc_now(),
            ))  # fmt: skip
    finally:
        await engine.dispose()
    return key


def _delivery() -> bytes:
    record = str(uuid.uuid4())
    created = int(utc_now().timestamp() * 1000)
    return json.dumps({
        "MessageName": "Update", "PrimaryEntityName": "account", "PrimaryEntityId": record,
        "OperationId": str(uuid.uuid4()), "RequestId": str(uuid.uuid4()),
        "OperationCreatedOn": f"/Date({created})/", "InitiatingUserId": str(uuid.uuid4()),
        "UserId": str(uuid.uuid4()), "Depth": 1, "Stage": 40, "Mode": 1,
        "InputParameters": [], "PreEntityImages": [], "PostEntityImages": [],
    }).encode()  # fmt: skip


async def test_the_overview_shows_notifications_arriving(
    context: BrowserContext, live: LiveService
) -> None:
    key = await _arrange(live)
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as crm:
        headers = {"content-type": "application/json", "x-ms-dynamics-entity-name": "account"}
        accepted = await crm.post("/api/v1/crm/notifications", content=_delivery(),
                                  headers={**headers, WEBHOOK_KEY_HEADER: key})  # fmt: skip
        # No mapping is scheduled in this fresh service: received, and ignored.
        assert (accepted.status_code, accepted.json()["status"]) == (200, "ignored")
        wrong = {**headers, WEBHOOK_KEY_HEADER: "not the key"}
        refused = await crm.post("/api/v1/crm/notifications", content=_delivery(), headers=wrong)
        assert refused.status_code == 401

    page = await context.new_page()
    await sign_in(page, live, "admin", live.admin_password)
    card = page.get_by_role("region", name="CRM change notifications")
    await expect(card).to_be_visible()
    await expect(card).to_contain_text("registered")
    await expect(card).to_contain_text("3 steps")
    await expect(card.locator("dt:has-text('Received') + dd")).to_contain_text("1, last")
    await expect(card.locator("dt:has-text('Refused') + dd")).to_contain_text("wrong key")
    await expect(card.locator("dt:has-text('Refused') + dd")).to_contain_text("1")
    await expect(card.locator("dt:has-text('Pending') + dd")).to_have_text("1")
    await expect(card).not_to_contain_text(key)
    await screenshot(page, "overview-notifications")
