"""Every secret stays out of every response, log line, sync log row and queue payload.

One pass over the main flows with the production logging at DEBUG (JSON): users, passwords
and access keys, sign-ins right and wrong, the connection set-up and the assisted set-up
with CRM secrets, connection tests with a wrong and a right secret, enable and deploy, OData
reads with a web service access key, and a full sync into the sandbox run by a real arq
worker. Then every parameterless GET route of the app and every sync job's
errors are read back. Each secret value is searched for in all responses (bodies and
headers), all captured log output, the text columns of the sync log and job queue tables,
and every key and value in Redis. tests/auth/test_no_secret_leaks.py and
tests/connection/test_connection_api.py scan their own areas; this is the whole surface.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, cast

import httpx
import pytest
import sqlalchemy as sa
from arq.connections import ArqRedis
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlmodel import SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import SessionMaker
from app.models.integration import ConnectionSetup
from app.models.security import User, WebServiceAccessKey
from app.settings import Settings
from tests.auth.test_no_secret_leaks import debug_logging  # noqa: F401 - a fixture
from tests.factories import PASSWORD, bearer_headers, create_user
from tests.fixtures.sandbox import RunningSandbox
from tests.jobs.conftest import drive
from tests.odata.factories import add_items, add_ledger, basic_header
from workers.queue import create_queue_pool

API = "/api/v1"
CRM_SECRET = "crm-client-secret-do-not-leak-7301"
CRM_PASSWORD = "crm-password-do-not-leak-8402"
USER_PASSWORD = "a user's passphrase not to leak"
WRONG_PASSWORD = "a wrong guess that must not be logged"
# Any JWT (ours or the CRM's): only the token endpoint's own answer may carry one.
JWT = re.compile(r"eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}")
SCANNED_TABLES = ("integration_synch_job", "integration_synch_job_error", "job_queue_entry",
                  "job_queue_log_entry", "integration_record")  # fmt: skip


class Flow:
    """Calls the API and keeps every response."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.responses: list[httpx.Response] = []

    async def call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = await self.client.request(method, url, **kwargs)
        self.responses.append(response)
        return response


async def _run_flows(
    flow: Flow, sandbox: RunningSandbox, session: AsyncSession, settings: Settings
) -> tuple[dict[str, str], set[str]]:
    """Everything a deployment does with secrets; returns the admin header and issued secrets."""
    issued: set[str] = set()
    await create_user(session, user_name="admin")
    await session.commit()
    admin = await bearer_headers(flow.client, user_name="admin")
    issued.add(admin["Authorization"].removeprefix("Bearer "))
    crm_user = {"user_name": "crm", "roles": ["product-availability"]}
    await flow.call("POST", f"{API}/users", json=crm_user, headers=admin)
    person = {"user_name": "person", "roles": ["integration-user"], "password": USER_PASSWORD}
    await flow.call("POST", f"{API}/users", json=person, headers=admin)
    first = (await flow.call("POST", f"{API}/users/crm/keys", headers=admin)).json()["key"]
    key = (await flow.call("POST", f"{API}/users/crm/keys/rotate", headers=admin)).json()["key"]
    issued |= {first, key}
    for secret in (WRONG_PASSWORD, USER_PASSWORD):
        form = {"username": "person", "password": secret}
        signed_in = await flow.call("POST", f"{API}/auth/token", data=form)
        if signed_in.status_code == 200:
            issued.add(signed_in.json()["access_token"])

    connection = {
        "server_address": sandbox.base_url, "authentication_type": "oauth_client_secret",
        "token_url": sandbox.token_url, "client_id": sandbox.config.client_id,
        "client_secret": CRM_SECRET, "password": CRM_PASSWORD, "tenant_id": "t",
        "dataverse_connection_enabled": True, "item_availability_enabled": True,
        "odata_user_name": "crm", "odata_access_key": key,
    }  # fmt: skip
    await flow.call("PATCH", f"{API}/connection", json=connection, headers=admin)
    await flow.call("POST", f"{API}/connection/test", headers=admin)  # the wrong secret
    right = {"client_secret": sandbox.config.client_secret}
    await flow.call("PATCH", f"{API}/connection", json=right, headers=admin)
    await flow.call("POST", f"{API}/connection/test", headers=admin)
    await flow.call("POST", f"{API}/connection/enable", headers=admin)
    await flow.call("POST", f"{API}/connection/deploy-solution", headers=admin)
    await flow.call("POST", f"{API}/assisted-setup", headers=admin)
    step = {"client_id": "x", "client_secret": CRM_SECRET, "password": CRM_PASSWORD}
    await flow.call("PUT", f"{API}/assisted-setup/steps/credentials", json=step, headers=admin)
    await flow.call("GET", f"{API}/assisted-setup", headers=admin)
    await flow.call("DELETE", f"{API}/assisted-setup", headers=admin)

    await add_items(session, ["S1000", "S1001", "S1002"])
    await add_ledger(session, [("S1000", "BLUE", 4)])
    await session.commit()
    odata = basic_header("crm", key)
    await flow.call("GET", "/odata/v4/ItemAvailability", headers=odata)
    await flow.call("GET", "/odata/v4/ItemAvailability('S1000')", headers=odata)
    await flow.call("GET", "/odata/v4/ItemAvailability", headers=basic_header("crm", first))
    return admin, issued


async def _sync(
    flow: Flow, admin: dict[str, str], sessionmaker: SessionMaker, settings: Settings
) -> None:
    worker_settings = settings.model_copy(update={"job_timeout_seconds": 60})
    pool = await create_queue_pool(worker_settings)
    try:
        queued = await flow.call("POST", f"{API}/sync/full", headers=admin)
        assert queued.status_code == 202, queued.text
        ctx = {"redis": pool, "sessionmaker": sessionmaker, "wake_up_delay_seconds": 0}
        assert await drive(ctx, worker_settings) > 0
    finally:
        await pool.aclose()


async def _read_everything(flow: Flow, app: FastAPI, admin: dict[str, str]) -> None:
    for route in app.routes:
        if not isinstance(route, APIRoute) or "GET" not in (route.methods or set()):
            continue
        if "{" not in route.path and route.include_in_schema and route.path != "/metrics":
            await flow.call("GET", route.path, headers=admin)
    jobs = (await flow.call("GET", f"{API}/sync-jobs", headers=admin)).json()["items"]
    assert jobs  # the sync ran and left its log
    for job in jobs:
        await flow.call("GET", f"{API}/sync-jobs/{job['id']}/errors", headers=admin)
    for name in ("ITEM-PRODUCT", "UNIT OF MEASURE"):
        await flow.call("GET", f"{API}/mappings/{name}", headers=admin)


async def _stored_secrets(session: AsyncSession) -> set[str]:
    session.expire_all()
    found = {u.password_hash for u in await session.exec(select(User)) if u.password_hash}
    found |= {k.key_digest for k in await session.exec(select(WebServiceAccessKey))}
    for setup in await session.exec(select(ConnectionSetup)):
        found |= {value for value in (setup.client_secret_encrypted, setup.password_encrypted,
                                      setup.odata_access_key_encrypted) if value}  # fmt: skip
    return found


async def _sync_log_text(session: AsyncSession) -> str:
    parts = []
    for name in SCANNED_TABLES:
        table = SQLModel.metadata.tables.get(name)
        if table is None:
            continue
        for row in await session.execute(sa.select(table)):
            parts.append(repr(tuple(row)))
    return "\n".join(parts)


async def _redis_value(pool: ArqRedis, name: str, kind: str) -> Any:
    reads: dict[str, Callable[[str], Any]] = {
        "string": pool.get,
        "zset": lambda key: pool.zrange(key, 0, -1),
        "hash": pool.hgetall,
        "list": lambda key: pool.lrange(key, 0, -1),
    }
    return await cast(Awaitable[Any], reads[kind](name)) if kind in reads else kind


async def _redis_text(settings: Settings) -> str:
    pool = await create_queue_pool(settings)
    try:
        parts = []
        async for name in pool.scan_iter():
            value = await _redis_value(pool, name.decode(), (await pool.type(name)).decode())
            parts.append(f"{name!r} {value!r}")
        return "\n".join(parts)
    finally:
        await pool.aclose()


@pytest.mark.usefixtures("debug_logging")
async def test_no_secret_anywhere_across_the_main_flows(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: SessionMaker,
    settings: Settings,
    sandbox: RunningSandbox,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    flow = Flow(client)
    admin, issued = await _run_flows(flow, sandbox, session, settings)
    await _sync(flow, admin, sessionmaker, settings)
    await _read_everything(flow, app, admin)

    assert sandbox.state.count("products") == 3  # the sync reached the CRM
    captured = capsys.readouterr()
    records = "\n".join(f"{r.getMessage()} {r.args!r} {r.__dict__!r}" for r in caplog.records)
    logs = "\n".join([caplog.text, records, captured.out, captured.err])
    assert "request" in logs and "sync" in logs  # logging was captured
    secrets = issued | await _stored_secrets(session) | {
        PASSWORD, CRM_SECRET, CRM_PASSWORD, USER_PASSWORD, WRONG_PASSWORD,
        sandbox.config.client_secret, settings.secret_key.get_secret_value(),
        settings.access_key_pepper.get_secret_value(),
    }  # fmt: skip
    secrets |= {key.split("_", 2)[2] for key in issued if key.startswith("sbk_")}
    secrets |= set(settings.encryption_keys.get_secret_value().split(","))
    assert len(flow.responses) > 40
    for response in flow.responses:
        shown = response.text + str(response.headers)
        found = [s for s in secrets if s in shown]
        leaked = sorted(s[:6] + "..." for s in found)
        request = response.request
        issues_key = request.method == "POST" and request.url.path.endswith(("/keys", "/rotate"))
        issues_token = request.url.path.endswith("/auth/token")
        if issues_key or issues_token:  # shows what it issues (a key and its random part)
            longest = max(found, key=len, default="")
            assert all(s in longest for s in found), (request.url.path, leaked)
            assert longest in issued or not found, (request.url.path, leaked)
            continue
        assert leaked == [], f"{request.method} {request.url.path}: {leaked}"
        assert not JWT.search(shown), f"{request.method} {request.url.path} shows a token"
    stores = {
        "logs": logs,
        "sync log": await _sync_log_text(session),
        "redis": await _redis_text(settings),
    }
    for where, text in stores.items():
        leaked = sorted(s[:6] + "..." for s in secrets if s in text)
        assert leaked == [], f"{where}: {leaked}"
        assert not JWT.search(text), f"{where} holds a token: {JWT.search(text)}"
