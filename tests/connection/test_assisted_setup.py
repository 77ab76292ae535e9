"""The assisted setup end to end against the sandbox, and its step rules."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import catalog
from app.clock import utc_now
from app.connection.defaults import OTHER_JOBS, build_other_job, is_other_job_wanted
from app.connection.solution import ROLES, SOLUTION_NAME
from app.models.integration import (
    ConnectionSetup,
    IntegrationFieldMapping,
    IntegrationTableMapping,
    JobKind,
    JobQueueEntry,
    JobStatus,
)
from app.models.security import Role
from tests.connection.conftest import API
from tests.factories import create_access_key, create_user
from tests.fixtures.sandbox import RunningSandbox

STEPS = f"{API}/assisted-setup/steps"


async def _run_steps(
    client: httpx.AsyncClient, admin: dict[str, str], sandbox: RunningSandbox, options: dict
) -> None:
    response = await client.post(f"{API}/assisted-setup", headers=admin)
    assert response.status_code == 201, response.text
    assert response.json()["current_step"] == "crm_url"
    response = await client.put(
        f"{STEPS}/crm_url", json={"server_address": sandbox.base_url + "/"}, headers=admin
    )
    assert response.status_code == 200, response.text
    assert response.json()["current_step"] == "credentials"
    credentials = {
        "authentication_type": "oauth_client_secret",
        "client_id": sandbox.config.client_id,
        "client_secret": sandbox.config.client_secret,
        "token_url": sandbox.token_url,
    }
    response = await client.put(f"{STEPS}/credentials", json=credentials, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["secrets"]["client_secret"] is True
    response = await client.put(f"{STEPS}/options", json=options, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["current_step"] == "finish"


async def test_from_nothing_to_an_enabled_connection(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    session: AsyncSession,
    settings,
    sandbox: RunningSandbox,
) -> None:
    availability = await create_user(
        session, user_name="crm-reader", roles=(Role.product_availability,), password=None
    )
    key = await create_access_key(session, settings, user=availability)
    await session.commit()
    options = {
        "import_solution": True,
        "publish_item_availability": True,
        "odata_user_name": "crm-reader",
        "odata_access_key": key,
        "enable_dataverse_connection": True,
        "enable_sales_order_integration": True,
        "auto_create_sales_orders": True,
    }
    await _run_steps(client, admin, sandbox, options)

    response = await client.post(f"{API}/assisted-setup/finish", headers=admin)
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert response.json()["status"] == "finished"
    assert result["is_enabled"] is True
    assert result["integration_user_id"] == sandbox.state.user_id
    assert "SALESORDER-ORDER" in result["mappings"]
    assert any("salespeople" in step.lower() for step in result["next_steps"])

    setup = (await session.exec(select(ConnectionSetup))).one()
    assert setup.is_enabled and setup.is_solution_installed and setup.item_availability_enabled
    assert str(setup.integration_user_id) == sandbox.state.user_id
    mappings = {m.name: m for m in await session.exec(select(IntegrationTableMapping))}
    assert {"SALESPEOPLE", "CUSTOMER", "ITEM-PRODUCT", "POSTEDSALESLINE-INV"} <= set(mappings)
    assert mappings["ITEM-PRODUCT"].integration_table_filter.startswith("producttypecode eq 1")
    fields = list(await session.exec(select(IntegrationFieldMapping)))
    assert any(f.field == "unit_price" and f.integration_field == "price" for f in fields)
    jobs = {(j.kind, j.mapping_name): j for j in await session.exec(select(JobQueueEntry))}
    item_job = jobs[(JobKind.mapping_sync, "ITEM-PRODUCT")]
    assert item_job.status == JobStatus.ready
    assert (item_job.minutes_between_runs, item_job.inactivity_timeout_minutes) == (30, 1440)
    assert (item_job.max_attempts, item_job.rerun_delay_seconds) == (10, 30)
    assert item_job.description == "ITEM-PRODUCT - Dynamics 365 Sales synchronization job"
    assert jobs[(JobKind.mapping_sync, "RESOURCE-PRODUCT")].inactivity_timeout_minutes == 720
    assert (JobKind.mapping_sync, "OPPORTUNITY") not in jobs
    # The non-mapping jobs the answers switch on, on hold until their timeout.
    others = {kind: job for (kind, _), job in jobs.items() if kind != JobKind.mapping_sync}
    assert {JobKind.order_status, JobKind.notes, JobKind.item_availability} <= set(others)
    assert {j.status for j in others.values()} == {JobStatus.on_hold_with_inactivity_timeout}

    # The CRM side: solution, roles assigned to the integration user, nav_connection row.
    state = sandbox.state
    assert [s["uniquename"] for s in state.rows("solutions")] == [SOLUTION_NAME]
    assigned = set(state.associated("systemuserroles_association", state.user_id))
    role_names = {r["roleid"]: r["name"] for r in state.rows("roles")}
    assert {role_names[r] for r in assigned} >= {spec.name for spec in ROLES}
    (nav,) = state.rows("nav_connections")
    assert nav["nav_dynamicsnavodatausername"] == "crm-reader"
    assert nav["nav_dynamicsnavodataaccesskey"] == key
    assert nav["nav_dynamicsnavodataurl"] == settings.odata_url  # BC's V3 resource URL
    assert "/ProductItemAvailability" in nav["nav_dynamicsnavodataurl"]
    assert nav["nav_dynamicsnavurl"] == settings.public_url


async def test_steps_in_order_and_bad_answers_change_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession
) -> None:
    response = await client.get(f"{API}/assisted-setup", headers=admin)
    assert response.status_code == 404
    await client.post(f"{API}/assisted-setup", headers=admin)
    response = await client.put(f"{STEPS}/credentials", json={}, headers=admin)
    assert response.status_code == 409
    assert "crm_url" in response.json()["detail"]
    for bad in ("ftp://crm.example.com", "https://", "http://crm.example.com", "not a url"):
        response = await client.put(f"{STEPS}/crm_url", json={"server_address": bad}, headers=admin)
        assert response.status_code == 400, bad
    response = await client.put(
        f"{STEPS}/crm_url",
        json={"server_address": "https://x.crm4.dynamics.com", "extra": 1},
        headers=admin,
    )
    assert response.status_code == 422
    state = (await client.get(f"{API}/assisted-setup", headers=admin)).json()
    assert state["current_step"] == "crm_url" and state["answers"]["server_address"] == ""
    response = await client.put(
        f"{STEPS}/crm_url", json={"server_address": "https://x.crm4.dynamics.com"}, headers=admin
    )
    assert response.status_code == 200
    response = await client.put(
        f"{STEPS}/credentials",
        json={"client_id": "app", "token_url": "https://login.example.com/t"},
        headers=admin,
    )
    assert response.status_code == 400
    assert "client_secret" in response.json()["detail"]
    response = await client.post(f"{API}/assisted-setup/finish", headers=admin)
    assert response.status_code == 409
    await client.put(
        f"{STEPS}/credentials",
        json={"client_id": "app", "client_secret": "s" * 20, "tenant_id": "t"},
        headers=admin,
    )
    response = await client.put(
        f"{STEPS}/options",
        json={"enable_sales_order_integration": True, "enable_dataverse_connection": False},
        headers=admin,
    )
    assert response.status_code == 409
    assert "Dataverse" in response.json()["detail"]
    response = await client.put(f"{STEPS}/options", json={"api_version": "8.2"}, headers=admin)
    assert response.status_code == 400
    assert (await session.exec(select(IntegrationTableMapping))).first() is None


async def test_finish_with_a_failing_connection_keeps_everything(
    client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession, sandbox: RunningSandbox
) -> None:
    await client.post(f"{API}/assisted-setup", headers=admin)
    await client.put(f"{STEPS}/crm_url", json={"server_address": sandbox.base_url}, headers=admin)
    await client.put(
        f"{STEPS}/credentials",
        json={"client_id": sandbox.config.client_id, "client_secret": "wrong-secret-value",
              "token_url": sandbox.token_url},
        headers=admin,
    )  # fmt: skip
    response = await client.post(f"{API}/assisted-setup/finish", headers=admin)
    assert response.status_code == 409, response.text
    assert "token" in response.json()["detail"]
    state = (await client.get(f"{API}/assisted-setup", headers=admin)).json()
    assert state["status"] == "in_progress"
    setup = (await session.exec(select(ConnectionSetup))).first()
    assert setup is None or not setup.is_enabled
    assert (await session.exec(select(IntegrationTableMapping))).first() is None
    assert sandbox.state.rows("solutions") == []


def test_other_jobs_follow_the_spec_defaults_and_start_after_their_timeout() -> None:
    setup = ConnectionSetup(is_enabled=True, dataverse_connection_enabled=True)
    by_kind = {job.kind: job for job in OTHER_JOBS}
    before = utc_now()
    statistics = build_other_job(by_kind[JobKind.customer_statistics], setup)
    assert statistics.status == JobStatus.on_hold_with_inactivity_timeout
    assert (statistics.max_attempts, statistics.inactivity_timeout_minutes) == (2, 30)
    assert statistics.earliest_start_at is not None
    assert statistics.earliest_start_at >= before + timedelta(minutes=30)
    assert by_kind[JobKind.order_status].minutes == 7
    assert by_kind[JobKind.notes].minutes == 5


def test_other_jobs_are_wanted_only_when_they_can_run() -> None:
    setup = ConnectionSetup(auto_create_sales_orders=True, item_availability_enabled=True)
    for job in OTHER_JOBS:
        assert is_other_job_wanted(job.kind, setup) is False or catalog.can_run(job.kind)
    assert catalog.can_run(JobKind.customer_statistics)
    assert is_other_job_wanted(JobKind.customer_statistics, setup)  # always, as in BC
