"""The API keeps answering while a full sync runs in real worker processes.

Slow step only (``pytest -m slow``). A few thousand items, the sandbox as the CRM over HTTP,
``salesbridge serve`` and two ``salesbridge worker`` processes on the suite's Redis; a full
sync is started over REST and, until every entry has finished, four clients read REST lists,
the sync progress and the OData service. Asserted: every request answered 200, every entry
finished, the CRM holds one product per item. The latencies are reported by
``bench/odata_load.py --during-sync``, not asserted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth.encryption import encrypt_secret
from app.db import SessionMaker
from app.models.integration import ConnectionSetup
from app.models.security import Role
from app.settings import Settings
from bench.odata_load import (
    environment,
    load_during_sync,
    queue_full_sync,
    start_processes,
    stop_processes,
)
from bench.sync import _seed as seed_items_and_mappings
from tests.factories import PASSWORD, create_access_key, create_user
from tests.fixtures.sandbox import RunningSandbox
from tests.fixtures.services import free_port
from tests.odata.factories import basic_header

pytestmark = pytest.mark.slow

ITEMS = 2500
WORKERS = 2


def _assert_clean_logs(log_dir: Path) -> None:
    for log in log_dir.glob("process-*.log"):
        text = log.read_text(errors="replace")
        assert "unhandled_error" not in text and "Traceback" not in text, text[-3000:]


async def test_api_answers_while_workers_run_a_full_sync(
    session: AsyncSession,
    sessionmaker: SessionMaker,
    settings: Settings,
    sandbox: RunningSandbox,
    tmp_path: Path,
) -> None:
    await seed_items_and_mappings(sessionmaker, sandbox.base_url, ITEMS)
    setup = (await session.exec(select(ConnectionSetup))).one()
    setup.token_url = sandbox.token_url
    setup.client_id = sandbox.config.client_id
    setup.client_secret_encrypted = encrypt_secret(settings, sandbox.config.client_secret)
    setup.dataverse_connection_enabled = True
    await create_user(session, user_name="ops", roles=(Role.integration_admin,))
    reader = await create_user(
        session, user_name="crm", roles=(Role.product_availability,), password=None
    )
    key = await create_access_key(session, settings, user=reader)
    await session.commit()
    port = free_port()  # started once everything is in place, so no tick sees half a set-up
    env = environment(settings.database_url, settings.redis_url, settings.data_dir)
    processes = start_processes(env, port, WORKERS, tmp_path)
    try:
        figures = await _full_sync_under_reads(port, key)
    finally:
        stop_processes(processes)

    assert figures["errors"] == 0, figures["error_samples"]
    assert set(figures["entries"].values()) == {"finished"}, figures["entries"]
    assert figures["requests"] > 100  # the clients really ran during the sync
    products = sandbox.state.rows("products")
    assert len(products) == ITEMS
    assert len({p["productnumber"] for p in products}) == ITEMS
    _assert_clean_logs(tmp_path)


async def _full_sync_under_reads(port: int, key: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as api:
        token = await api.post("/api/v1/auth/token", data={"username": "ops", "password": PASSWORD})
        bearer = f"Bearer {token.json()['access_token']}"
        entry_ids = await queue_full_sync(api, bearer)

    return await load_during_sync(
        port,
        bearer,
        basic_header("crm", key)["Authorization"],
        [f"{n:07d}" for n in range(ITEMS)],
        entry_ids,
        timeout=480,
    )
