"""Loop prevention by content end to end: no write of ours hides a person's edit, and no
write of ours alone comes back (issue 19 §1).

REST, real arq workers and Redis, the sandbox over HTTP. Customers are coupled by a full
sync of CUSTOMER on the queue; the recurring CUSTOMER entry and the customer statistics
job then run on workers. A person's CRM edit goes through ``person_edits_crm`` (the one
place that makes it), ERP edits through the ERP REST API, the integration user's own
writes over the Web API.
"""

from __future__ import annotations

from typing import Any

import httpx
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.dataverse import DataverseClient
from app.db import SessionMaker
from app.models import erp
from app.models.integration import (
    ConnectionSetup,
    IntegrationRecord,
    JobKind,
    JobStatus,
)
from app.settings import Settings
from tests.fixtures.sandbox import RunningSandbox
from tests.jobs.conftest import drive, entries, full_sync, make_due
from tests.sync import factories as f

MAPPING = "CUSTOMER"
SELECT = ["accountid", "name", "telephone1", "address1_city", "_modifiedby_value",
          "_nav_accountstatisticsid_value", "versionnumber"]  # fmt: skip


async def person_edits_crm(
    sandbox: RunningSandbox, entity_set: str, record_id: Any, **changes: Any
) -> None:
    """A salesperson's edit in the CRM (stamped with their user, not the integration user):
    a PATCH over the sandbox's Web API impersonating the salesperson (``crm_user_edit``)."""
    await f.crm_user_edit(sandbox, entity_set, record_id, **changes)


async def erp_edit(
    client: httpx.AsyncClient, admin: dict[str, str], no: str, **changes: str
) -> None:
    """A person's edit through the ERP REST API."""
    response = await client.patch(f"/api/v1/customers/{no}", headers=admin, json=changes)
    assert response.status_code == 200, response.text


async def coupled_customers(
    session: AsyncSession, client: httpx.AsyncClient, admin: dict[str, str],
    tick_ctx: dict[str, Any], settings: Settings, *nos: str,
) -> dict[str, Any]:  # fmt: skip
    """The customers, made in the CRM by a full sync of CUSTOMER on the queue: CRM ids."""
    await f.add(session, *(erp.Customer(no=no, name=f"Shop {no}", phone="+44 1483 555 0150",
                                        city="Guildford") for no in nos))  # fmt: skip
    await session.commit()
    await full_sync(client, admin, MAPPING)
    await drive(tick_ctx, settings)
    found = {}
    for no in nos:
        row = await customer(session, no)
        statement = select(IntegrationRecord).where(
            IntegrationRecord.integration_id == row.system_id
        )
        found[no] = (await session.exec(statement)).one().crm_id
    return found


async def customer(session: AsyncSession, no: str) -> erp.Customer:
    statement = select(erp.Customer).where(erp.Customer.no == no)
    return (await session.exec(statement.execution_options(populate_existing=True))).one()


async def account(crm: DataverseClient, crm_id: Any) -> dict[str, Any]:
    (row,) = [
        r async for r in crm.query("accounts", select=SELECT, filter=f"accountid eq {crm_id}")
    ]
    return row


async def run_customer(
    client: httpx.AsyncClient, admin: dict[str, str], sessionmaker: SessionMaker,
    tick_ctx: dict[str, Any], settings: Settings,
) -> dict[str, dict[str, Any]]:  # fmt: skip
    """The recurring CUSTOMER entry on a worker; its two sync jobs by direction (REST)."""
    await make_due(sessionmaker, MAPPING)
    assert await drive(tick_ctx, settings) == 1
    listed = await client.get(f"/api/v1/sync-jobs?mapping_name={MAPPING}", headers=admin)
    assert listed.status_code == 200, listed.text
    return {job["direction"]: job for job in listed.json()["items"][:2]}


async def run_statistics(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    sessionmaker: SessionMaker,
    tick_ctx: dict[str, Any],
    settings: Settings,
) -> None:
    """The customer statistics job, run now over REST on a worker."""
    (entry,) = await entries(sessionmaker, kind=JobKind.customer_statistics)
    response = await client.post(f"/api/v1/job-queue-entries/{entry.id}/run-now", headers=admin)
    assert response.status_code == 202, response.text
    await drive(tick_ctx, settings)
    (entry,) = await entries(sessionmaker, kind=JobKind.customer_statistics)
    assert entry.last_error == ""


def activity(job: dict[str, Any]) -> dict[str, int]:
    names = ("inserted", "modified", "skipped", "failed")
    return {name: job[name] for name in names if job[name]}


async def test_a_crm_edit_under_a_statistics_link_reaches_the_erp(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    crm: DataverseClient, connected: ConnectionSetup, client: httpx.AsyncClient,
    admin: dict[str, str], tick_ctx: dict[str, Any], worker_settings: Settings,
) -> None:  # fmt: skip
    crm_ids = await coupled_customers(session, client, admin, tick_ctx, worker_settings, "C1", "C2")
    run_args = (client, admin, sessionmaker, tick_ctx, worker_settings)
    await run_customer(*run_args)  # settles what the full sync wrote

    # A salesperson changes C1's phone in the CRM; before CUSTOMER runs, the statistics job
    # links a statistics row to every account: the integration user wrote both rows last.
    await person_edits_crm(sandbox, "accounts", crm_ids["C1"], telephone1="+44 1483 999 0001")
    await run_statistics(*run_args)
    for no in ("C1", "C2"):
        linked = await account(crm, crm_ids[no])
        assert linked["_nav_accountstatisticsid_value"] is not None
        assert linked["_modifiedby_value"] == str(sandbox.state.user_id)

    jobs = await run_customer(*run_args)
    assert activity(jobs["from_crm"]) == {"modified": 1}  # C1 only: C2's link is not a change
    assert activity(jobs["to_crm"]) == {}
    assert (await customer(session, "C1")).phone == "+44 1483 999 0001"
    assert (await account(crm, crm_ids["C1"]))["telephone1"] == "+44 1483 999 0001"
    assert (await customer(session, "C2")).phone == "+44 1483 555 0150"

    # Our ERP write of C1 goes nowhere: the next run finds nothing on either side.
    jobs = await run_customer(*run_args)
    assert activity(jobs["to_crm"]) == {} and activity(jobs["from_crm"]) == {}
    (entry,) = await entries(sessionmaker, mapping_name=MAPPING, recurring=True)
    assert entry.status == JobStatus.on_hold_with_inactivity_timeout


async def test_an_integration_user_write_alone_is_no_change_and_costs_no_request(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    crm: DataverseClient, connected: ConnectionSetup, client: httpx.AsyncClient,
    admin: dict[str, str], tick_ctx: dict[str, Any], worker_settings: Settings,
) -> None:  # fmt: skip
    crm_ids = await coupled_customers(session, client, admin, tick_ctx, worker_settings, "C1")
    run_args = (client, admin, sessionmaker, tick_ctx, worker_settings)
    await run_customer(*run_args)
    counters = sandbox.state.counters

    async def requests_of_a_run() -> tuple[int, dict[str, dict[str, Any]]]:
        before = counters.total_requests
        jobs = await run_customer(*run_args)
        return counters.total_requests - before, jobs

    idle_requests, jobs = await requests_of_a_run()
    assert activity(jobs["to_crm"]) == {} and activity(jobs["from_crm"]) == {}
    # The integration user writes a field CUSTOMER does not map (as the order status or
    # statistics jobs do): the row is read in the same page as always, found unchanged.
    await crm.update("accounts", crm_ids["C1"], {"description": "Written by another job"})
    version = (await account(crm, crm_ids["C1"]))["versionnumber"]
    requests, jobs = await requests_of_a_run()
    assert activity(jobs["to_crm"]) == {} and activity(jobs["from_crm"]) == {}
    assert jobs["from_crm"]["unchanged"] == 1
    assert requests == idle_requests
    assert (await account(crm, crm_ids["C1"]))["versionnumber"] == version  # nothing written
    # The same write of a mapped field is a change, whoever made it: it reaches the ERP.
    await crm.update("accounts", crm_ids["C1"], {"address1_city": "Woking"})
    requests, jobs = await requests_of_a_run()
    assert activity(jobs["from_crm"]) == {"modified": 1} and activity(jobs["to_crm"]) == {}
    assert (await customer(session, "C1")).city == "Woking"


async def test_an_erp_edit_under_a_crm_to_erp_write_reaches_the_crm(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    crm: DataverseClient, connected: ConnectionSetup, client: httpx.AsyncClient,
    admin: dict[str, str], tick_ctx: dict[str, Any], worker_settings: Settings,
) -> None:  # fmt: skip
    crm_ids = await coupled_customers(session, client, admin, tick_ctx, worker_settings, "C1")
    run_args = (client, admin, sessionmaker, tick_ctx, worker_settings)
    await run_customer(*run_args)
    # A person changes the phone in the ERP, another the city in the CRM; the CRM edit is
    # synchronized first (CRM -> ERP only), which writes the ERP row as the sync.
    await erp_edit(client, admin, "C1", phone="+44 20 7946 0000")
    await person_edits_crm(sandbox, "accounts", crm_ids["C1"], address1_city="Woking")
    body = {"mapping_name": MAPPING, "codes": ["C1"], "direction": "from_crm"}
    response = await client.post("/api/v1/couplings/synchronize", headers=admin, json=body)
    assert response.status_code == 200, response.text
    row = await customer(session, "C1")
    assert (row.city, row.phone, row.modified_by) == (
        "Woking",
        "+44 20 7946 0000",
        "salesbridge-sync",
    )

    jobs = await run_customer(*run_args)
    assert activity(jobs["to_crm"]) == {"modified": 1} and activity(jobs["from_crm"]) == {}
    crm_row = await account(crm, crm_ids["C1"])
    assert (crm_row["telephone1"], crm_row["address1_city"]) == ("+44 20 7946 0000", "Woking")
    jobs = await run_customer(*run_args)
    assert activity(jobs["to_crm"]) == {} and activity(jobs["from_crm"]) == {}
