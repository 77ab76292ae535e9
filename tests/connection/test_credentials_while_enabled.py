"""A new client secret for an enabled connection is tried against the CRM before it is kept.

Over real HTTP: the service in uvicorn, the sandbox as the CRM (its token endpoint plays
Entra ID), real arq workers running the synchronization.
"""

from __future__ import annotations

from typing import Any

import httpx
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth.encryption import decrypt_secret
from app.models.integration import ConnectionSetup, JobQueueEntry
from app.settings import Settings
from tests.fixtures.live_api import API, connect, queue_full_sync, run_queue
from tests.fixtures.sandbox import RunningSandbox
from tests.sync import factories as f


async def _stored_secret(session: AsyncSession, settings: Settings) -> str:
    session.expire_all()
    setup = (await session.exec(select(ConnectionSetup))).one()
    return decrypt_secret(settings, setup.client_secret_encrypted)


async def _item_reaches_the_crm(
    session: AsyncSession, api: httpx.AsyncClient, admin: dict[str, str], sandbox: RunningSandbox,
    ctx: dict[str, Any], worker_settings: Settings, *, no: str,
) -> bool:  # fmt: skip
    await f.add(session, f.item(no))
    await session.commit()
    await queue_full_sync(api, admin, "UNIT OF MEASURE", "ITEM-PRODUCT")
    await run_queue(ctx, worker_settings)
    return any(p.get("productnumber") == no for p in sandbox.state.rows("products"))


async def test_a_wrong_secret_is_refused_while_enabled_and_syncs_keep_running(
    live_api: httpx.AsyncClient, live_admin: dict[str, str], sandbox: RunningSandbox,
    session: AsyncSession, settings: Settings, tick_ctx: dict[str, Any],
    worker_settings: Settings,
) -> None:  # fmt: skip
    await f.add(session, f.unit("PCS"))
    await session.commit()
    await connect(live_api, live_admin, sandbox)
    await run_queue(tick_ctx, worker_settings)  # the first runs after enabling

    wrong = "not-the-secret-value-1234"
    response = await live_api.patch(
        f"{API}/connection", json={"client_secret": wrong}, headers=live_admin
    )

    assert response.status_code == 409, response.text
    detail = response.json()["detail"]
    assert "Not saved: the CRM refused the new client_secret" in detail
    assert "the token endpoint refused the client id or client secret" in detail
    assert "Invalid client secret" not in detail  # classified, never the other side's words
    assert wrong not in response.text
    assert await _stored_secret(session, settings) == sandbox.config.client_secret
    assert await _item_reaches_the_crm(
        session, live_api, live_admin, sandbox, tick_ctx, worker_settings, no="1000"
    )
    cleared = await live_api.patch(
        f"{API}/connection", json={"client_secret": ""}, headers=live_admin
    )
    assert cleared.status_code == 409 and "cannot work without its client_secret" in cleared.text
    assert await _stored_secret(session, settings) == sandbox.config.client_secret


async def test_a_rotated_secret_is_accepted_once_the_crm_takes_it(
    live_api: httpx.AsyncClient, live_admin: dict[str, str], sandbox: RunningSandbox,
    session: AsyncSession, settings: Settings, tick_ctx: dict[str, Any],
    worker_settings: Settings,
) -> None:  # fmt: skip
    """The app's secret is replaced in Entra: syncs fail until the new one is entered,
    which is accepted without disabling the connection (the jobs are never held)."""
    await f.add(session, f.unit("PCS"))
    await session.commit()
    await connect(live_api, live_admin, sandbox)
    await run_queue(tick_ctx, worker_settings)
    sandbox.state.config.client_secret = "rotated-secret-value-5678"  # the old one is deleted

    assert not await _item_reaches_the_crm(
        session, live_api, live_admin, sandbox, tick_ctx, worker_settings, no="1000"
    )
    response = await live_api.patch(
        f"{API}/connection", json={"client_secret": "rotated-secret-value-5678"},
        headers=live_admin,
    )  # fmt: skip

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["is_enabled"] is True and body["client_secret"]["hint"] == "…5678"
    assert await _stored_secret(session, settings) == "rotated-secret-value-5678"
    held = select(JobQueueEntry).where(JobQueueEntry.status == "on_hold")
    assert (await session.exec(held)).all() == []
    assert await _item_reaches_the_crm(
        session, live_api, live_admin, sandbox, tick_ctx, worker_settings, no="1001"
    )


async def test_an_unreachable_crm_keeps_the_old_secret(
    live_api: httpx.AsyncClient, live_admin: dict[str, str], sandbox: RunningSandbox,
    session: AsyncSession, settings: Settings,
) -> None:  # fmt: skip
    await connect(live_api, live_admin, sandbox)
    faults = await live_api.put(f"{sandbox.control_url}/faults", json={"error_rate": 1.0})
    assert faults.status_code == 200

    response = await live_api.patch(
        f"{API}/connection", json={"client_secret": sandbox.config.client_secret},
        headers=live_admin,
    )  # fmt: skip

    assert response.status_code == 502, response.text
    assert "could not be reached to try the new client_secret" in response.json()["detail"]
    assert await _stored_secret(session, settings) == sandbox.config.client_secret


async def test_a_disabled_connection_takes_any_secret_and_tests_it_on_enable(
    live_api: httpx.AsyncClient, live_admin: dict[str, str], sandbox: RunningSandbox,
    session: AsyncSession, settings: Settings,
) -> None:  # fmt: skip
    """Disabled, nothing runs on the secret: it is stored, and enabling tests it."""
    await connect(live_api, live_admin, sandbox)
    disabled = await live_api.post(f"{API}/connection/disable", headers=live_admin)
    assert disabled.status_code == 200
    response = await live_api.patch(
        f"{API}/connection", json={"client_secret": "wrong-but-disabled-0000"}, headers=live_admin
    )
    assert response.status_code == 200, response.text
    enabled = await live_api.post(f"{API}/connection/enable", headers=live_admin)
    assert enabled.status_code == 409
    assert "the token endpoint refused the client id or client secret" in enabled.text
