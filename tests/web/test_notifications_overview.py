"""The overview page says whether CRM change notifications arrive, on both databases."""

from __future__ import annotations

import html
import re
import uuid
from datetime import timedelta

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import utc_now
from app.models.integration import CrmWebhook, DataverseEntityChange
from app.models.security import Role
from tests.web.conftest import ConsoleFactory

pytestmark = pytest.mark.usefixtures("sessionmaker")


def _text(page: str) -> str:
    """The page's text without tags, whitespace folded: what a reader sees."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


async def test_the_overview_shows_registration_counts_and_pending_changes(
    console_for: ConsoleFactory, session: AsyncSession
) -> None:
    console = await console_for("admin")
    before = _text((await console.http.get("/")).text)
    assert "CRM change notifications" in before
    assert "Webhook not registered periodic runs only" in before
    assert "Received 0 Refused 0 Pending 0" in before

    now = utc_now()
    session.add(CrmWebhook(
        url="https://bridge.example/api/v1/crm/notifications",
        registered_at=now - timedelta(hours=2),
        steps=[{"message": m, "entity": "account", "step_id": str(uuid.uuid4())}
               for m in ("Create", "Update")],
        received_count=1234, last_received_at=now - timedelta(hours=3),
        refused_count=5, last_refused_at=now - timedelta(hours=1), last_refusal="wrong key",
        last_error="The step for lead could not be registered: 0x80040203",
    ))  # fmt: skip
    session.add_all([
        DataverseEntityChange(entity_name="account", record_id=uuid.uuid4(), message="Update",
                              delivery_key=str(uuid.uuid4()), received_at=now)
        for _ in range(3)
    ])  # fmt: skip
    await session.commit()

    shown = _text((await console.http.get("/")).text)
    assert "Webhook registered 2 h ago, 2 steps" in shown
    assert "URL https://bridge.example/api/v1/crm/notifications" in shown
    assert "Error failed The step for lead could not be registered" in shown
    assert "Received 1,234, last 3 h ago" in shown
    assert "Refused 5 last 1 h ago: wrong key" in shown
    assert "Pending 3" in shown

    reader = await console_for("reader", Role.integration_user)
    assert "Pending 3" in _text((await reader.http.get("/")).text)
