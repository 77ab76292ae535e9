"""CONTACT on the job queue: a person's parent account, real arq workers, the sandbox."""

from __future__ import annotations

from typing import Any

import httpx
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import SessionMaker
from app.models import erp
from app.models.integration import (
    ConnectionSetup,
    Direction,
    IntegrationSynchJob,
    JobStatus,
)
from app.settings import Settings
from tests.fixtures.sandbox import RunningSandbox
from tests.jobs.conftest import drive, entries, full_sync, make_due
from tests.sync import factories as f

LOGICAL = "_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"
PARENT = "parentcustomerid_account@odata.bind"


async def _contact_jobs(sessionmaker: SessionMaker) -> list[IntegrationSynchJob]:
    async with sessionmaker() as session:
        statement = (
            select(IntegrationSynchJob)
            .where(IntegrationSynchJob.mapping_name == "CONTACT")
            .order_by(col(IntegrationSynchJob.started_at), col(IntegrationSynchJob.id))
        )
        return list(await session.exec(statement))


def _account_id(sandbox: RunningSandbox, name: str) -> str:
    return str(next(a["accountid"] for a in sandbox.state.rows("accounts") if a["name"] == name))


async def test_a_person_goes_to_the_crm_under_its_account_and_crm_edits_come_back(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    connected: ConnectionSetup, client: httpx.AsyncClient, admin: dict[str, str],
    tick_ctx: dict[str, Any], worker_settings: Settings,
) -> None:  # fmt: skip
    # Through the ERP API: each customer's company contact shares its number.
    rows = {
        "customers": [{"no": "C1", "name": "Cycle shop"}, {"no": "C2", "name": "Bike barn"}],
        "contacts": [
            {"no": "C1", "type": "company", "surname": "Cycle shop"},
            {"no": "C2", "type": "company", "surname": "Bike barn"},
            {"no": "CT1", "first_name": "Ann", "surname": "Lee", "company_no": "C1"},
        ],
    }
    for path, bodies in rows.items():
        for body in bodies:
            response = await client.post(f"/api/v1/{path}", headers=admin, json=body)
            assert response.status_code == 201, response.text
    await full_sync(client, admin, "CUSTOMER", "CONTACT")
    await drive(tick_ctx, worker_settings)
    (person,) = sandbox.state.rows("contacts")  # company contacts are not synced
    assert (person["firstname"], person["lastname"]) == ("Ann", "Lee")
    assert person["_parentcustomerid_value"] == _account_id(sandbox, "Cycle shop")
    assert person[LOGICAL] == "account"

    # A person moves the contact to the other account and renames it in the CRM.
    barn = _account_id(sandbox, "Bike barn")
    await f.crm_user_edit(sandbox, "contacts", person["contactid"], lastname="Lee-Smith",
                          **{PARENT: f"/accounts({barn})"})  # fmt: skip
    await make_due(sessionmaker, "CONTACT")
    await drive(tick_ctx, worker_settings)
    session.expire_all()
    contact = (await session.exec(select(erp.Contact).where(erp.Contact.no == "CT1"))).one()
    assert (contact.surname, contact.company_no) == ("Lee-Smith", "C2")
    back = (await _contact_jobs(sessionmaker))[-2:]
    assert {j.direction: j.modified for j in back} == {Direction.to_crm: 0, Direction.from_crm: 1}
    shown = await client.get("/api/v1/contacts/CT1", headers=admin)
    assert shown.json()["company_no"] == "C2"

    # Not echoed: the next run has nothing to do and the entry rests.
    await make_due(sessionmaker, "CONTACT")
    await drive(tick_ctx, worker_settings)
    idle = (await _contact_jobs(sessionmaker))[-2:]
    assert all(j.inserted + j.modified + j.failed == 0 for j in idle)
    (entry,) = await entries(sessionmaker, mapping_name="CONTACT", recurring=True)
    assert entry.status == JobStatus.on_hold_with_inactivity_timeout
    assert sandbox.state.rows("contacts")[0]["lastname"] == "Lee-Smith"
