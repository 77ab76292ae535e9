"""``salesbridge sync status`` says whether CRM change notifications arrive."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from app.clock import utc_now
from app.db import create_engine, create_sessionmaker
from app.models.integration import CrmWebhook, DataverseEntityChange
from app.settings import get_settings
from tests.cli.test_commands import data_dir as data_dir  # the fixture, shared
from tests.cli.test_commands import ok


async def _add(*rows: Any) -> None:
    engine = create_engine(get_settings().database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            session.add_all(rows)
            await session.commit()
    finally:
        await engine.dispose()


def _change(*, processed: bool) -> DataverseEntityChange:
    now = utc_now()
    return DataverseEntityChange(
        entity_name="account", record_id=uuid.uuid4(), message="Update",
        delivery_key=str(uuid.uuid4()), received_at=now, processed_at=now if processed else None,
    )  # fmt: skip


def test_sync_status_shows_notifications_not_registered_then_arriving(data_dir: Path) -> None:
    ok("init")
    before = ok("sync", "status").stdout
    assert "CRM change notifications: not registered (periodic runs only)" in before
    assert "received 0; refused 0" in before

    now = utc_now()
    webhook = CrmWebhook(
        url="https://bridge.example/api/v1/crm/notifications",
        registered_at=now - timedelta(hours=1),
        steps=[{"message": m, "entity": "account", "step_id": str(uuid.uuid4())}
               for m in ("Create", "Update", "Delete")],
        received_count=12, last_received_at=now, refused_count=2, last_refused_at=now,
        last_refusal="wrong key " + "and more words " * 10,
    )  # fmt: skip
    asyncio.run(_add(webhook, _change(processed=False), _change(processed=True)))

    narrow = ok("sync", "status").stdout
    assert "CRM change notifications: registered" in narrow and "3 steps" in narrow
    assert "received 12, last" in narrow and "refused 2, last" in narrow
    assert "last refusal: wrong key" in narrow
    assert "pending changes (not read by a run yet): 1" in narrow
    assert max(len(line) for line in narrow.splitlines()) <= 80, narrow
    wide = ok("sync", "status", "--wide").stdout
    assert "posted to https://bridge.example/api/v1/crm/notifications" in wide
