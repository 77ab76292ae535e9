"""Changing the CRM's OData user's key through Salesbridge keeps the CRM working.

The CRM calls item availability with the key in its ``nav_connection`` row. Over real HTTP:
the service in uvicorn, the sandbox as the CRM (read back through the Web API), the OData
service called as the CRM would call it, and ``salesbridge key`` as a real process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from sqlmodel.ext.asyncio.session import AsyncSession

from app.dataverse import DataverseClient
from app.models.security import Role
from app.settings import Settings
from tests.factories import create_user
from tests.fixtures.live_api import API, connect
from tests.fixtures.sandbox import RunningSandbox
from tests.odata.factories import basic_header
from tests.workers.conftest import ROOT, wait_for, worker_environment

SALESBRIDGE = str(Path(sys.executable).parent / "salesbridge")
ODATA_USER = "crm-reader"


async def _crm_key(crm: DataverseClient) -> str:
    rows = [row async for row in crm.query("nav_connections", filter="statecode eq 0")]
    assert len(rows) == 1, rows
    return str(rows[0]["nav_dynamicsnavodataaccesskey"])


async def _odata_status(api: httpx.AsyncClient, key: str) -> int:
    response = await api.get("/odata/v4/", headers=basic_header(ODATA_USER, key))
    return response.status_code


async def _refused(api: httpx.AsyncClient, key: str) -> bool:
    """The key gets 401, once the OData service's 5 s cache of verified keys let it go."""

    async def refused() -> bool:
        return await _odata_status(api, key) == 401

    await wait_for(refused, timeout=20, what="the old key to be refused")
    return True


async def _published(
    api: httpx.AsyncClient, admin: dict[str, str], sandbox: RunningSandbox, session: AsyncSession
) -> None:
    """Item availability published to the CRM: the OData user, its key, the solution."""
    await create_user(session, user_name=ODATA_USER, roles=(Role.product_availability,),
                      password=None)  # fmt: skip
    await session.commit()
    await connect(
        api, admin, sandbox, item_availability_enabled=True, odata_user_name=ODATA_USER,
        issue_odata_access_key=True, odata_url=f"{str(api.base_url).rstrip('/')}/odata/v4",
    )  # fmt: skip
    deployed = await api.post(f"{API}/connection/deploy-solution", headers=admin)
    assert deployed.status_code == 200, deployed.text
    assert deployed.json()["nav_connection_action"] == "created"


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SALESBRIDGE, *args], cwd=ROOT, env=worker_environment(settings), capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip


async def test_rotating_the_odata_users_key_updates_the_crm_in_the_same_action(
    live_api: httpx.AsyncClient, live_admin: dict[str, str], sandbox: RunningSandbox,
    session: AsyncSession, crm: DataverseClient,
) -> None:  # fmt: skip
    await _published(live_api, live_admin, sandbox, session)
    first = await _crm_key(crm)
    assert await _odata_status(live_api, first) == 200

    rotated = await live_api.post(f"{API}/users/{ODATA_USER}/keys/rotate", headers=live_admin)

    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert body["crm"]["action"] == "updated"
    assert await _crm_key(crm) == body["key"]
    assert await _odata_status(live_api, body["key"]) == 200
    assert await _refused(live_api, first)
    setup = (await live_api.get(f"{API}/connection", headers=live_admin)).json()
    assert setup["odata_access_key"] == {"is_set": True, "hint": f"…{body['key'][-4:]}"}


async def test_the_cli_rotation_updates_the_crm_too(
    live_api: httpx.AsyncClient, live_admin: dict[str, str], sandbox: RunningSandbox,
    session: AsyncSession, crm: DataverseClient, settings: Settings,
) -> None:  # fmt: skip
    await _published(live_api, live_admin, sandbox, session)
    before = await _crm_key(crm)

    result = _cli(settings, "key", "rotate", ODATA_USER)

    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    assert "nav_connection holds the new key" in result.stderr and key not in result.stderr
    assert await _crm_key(crm) == key != before
    assert await _odata_status(live_api, key) == 200
    assert await _refused(live_api, before)


async def test_revoking_the_crms_key_says_so_and_one_step_gives_it_a_new_one(
    live_api: httpx.AsyncClient, live_admin: dict[str, str], sandbox: RunningSandbox,
    session: AsyncSession, crm: DataverseClient, settings: Settings,
) -> None:  # fmt: skip
    await _published(live_api, live_admin, sandbox, session)
    revoked_key = await _crm_key(crm)

    revoked = await live_api.post(f"{API}/users/{ODATA_USER}/keys/revoke", headers=live_admin)

    assert revoked.status_code == 200, revoked.text
    outcome = revoked.json()["crm"]
    assert outcome["action"] == "revoked"
    assert "now fail (401)" in outcome["message"] and "issue_odata_access_key" in outcome["message"]
    assert await _refused(live_api, revoked_key)
    setup = (await live_api.get(f"{API}/connection", headers=live_admin)).json()
    assert setup["odata_access_key"] == {"is_set": False, "hint": None}
    unrelated = await live_api.patch(
        f"{API}/connection", json={"auto_create_sales_orders": False}, headers=live_admin
    )
    assert unrelated.status_code == 200, unrelated.text  # a revoked key blocks nothing else

    renewed = await live_api.patch(
        f"{API}/connection", json={"issue_odata_access_key": True}, headers=live_admin
    )

    assert renewed.status_code == 200, renewed.text
    new_key = await _crm_key(crm)
    assert new_key != revoked_key and await _odata_status(live_api, new_key) == 200


async def test_the_cli_revocation_warns_about_the_crm(
    live_api: httpx.AsyncClient, live_admin: dict[str, str], sandbox: RunningSandbox,
    session: AsyncSession, settings: Settings,
) -> None:  # fmt: skip
    await _published(live_api, live_admin, sandbox, session)

    result = _cli(settings, "key", "revoke", ODATA_USER)

    assert result.returncode == 0, result.stderr
    assert f"Revoked 1 access key of '{ODATA_USER}'." in result.stderr
    assert "Warning: The revoked keys include the one Dynamics 365 Sales uses" in result.stderr
    assert f"salesbridge key rotate {ODATA_USER}" in result.stderr


async def test_a_rotation_the_crm_cannot_take_changes_nothing(
    live_api: httpx.AsyncClient, live_admin: dict[str, str], sandbox: RunningSandbox,
    session: AsyncSession, crm: DataverseClient,
) -> None:  # fmt: skip
    await _published(live_api, live_admin, sandbox, session)
    before = await _crm_key(crm)
    await live_api.put(f"{sandbox.control_url}/faults", json={"error_rate": 1.0})

    rotated = await live_api.post(f"{API}/users/{ODATA_USER}/keys/rotate", headers=live_admin)

    assert rotated.status_code == 502, rotated.text
    assert "The key was not rotated, the old key still works" in rotated.json()["detail"]
    await live_api.put(f"{sandbox.control_url}/faults", json={"error_rate": 0.0})
    assert await _crm_key(crm) == before
    assert await _odata_status(live_api, before) == 200
    keys = (await live_api.get(f"{API}/users/{ODATA_USER}/keys", headers=live_admin)).json()
    assert [k["is_active"] for k in keys["items"]] == [True]


async def test_other_users_keys_never_touch_the_crm(
    live_api: httpx.AsyncClient, live_admin: dict[str, str], sandbox: RunningSandbox,
    session: AsyncSession, crm: DataverseClient,
) -> None:  # fmt: skip
    await _published(live_api, live_admin, sandbox, session)
    before = await _crm_key(crm)
    await create_user(session, user_name="someone", roles=(Role.product_availability,),
                      password=None)  # fmt: skip
    await session.commit()
    writes_before: dict[str, Any] = sandbox.state.counters.snapshot()

    rotated = await live_api.post(f"{API}/users/someone/keys/rotate", headers=live_admin)

    assert rotated.status_code == 200 and rotated.json()["crm"]["action"] == "unaffected"
    assert await _crm_key(crm) == before
    assert sandbox.state.counters.snapshot()["by_entity_set"].get("nav_connections") == (
        writes_before["by_entity_set"].get("nav_connections", 0) + 1  # only our read above
    )
