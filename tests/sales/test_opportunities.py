"""Opportunities both ways, on demand: the mapping run on the queue (real workers, the
sandbox over HTTP) and "synchronize now" of one opportunity."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import httpx
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.dataverse import DataverseClient
from app.db import SessionMaker
from app.models import erp
from app.models.integration import ConnectionSetup, IntegrationRecord, JobKind, JobQueueEntry
from app.settings import Settings
from tests.fixtures.sandbox import RunningSandbox
from tests.jobs.conftest import drive, entries
from tests.sales.posted_company import coupled_company
from tests.sync import factories as f

MAPPING = "OPPORTUNITY"


def _opportunity(sandbox: RunningSandbox, name: str) -> dict[str, Any]:
    (found,) = [o for o in sandbox.state.rows("opportunities") if o.get("name") == name]
    return found


async def test_opportunities_flow_both_ways_on_demand(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    crm: DataverseClient, connected: ConnectionSetup, client: httpx.AsyncClient,
    admin: dict[str, str], tick_ctx: dict[str, Any], worker_settings: Settings,
) -> None:  # fmt: skip
    company = await coupled_company(session, sessionmaker, sandbox, crm)
    contact_id = await crm.create("contacts", {
        "firstname": "Ann", "lastname": "Lee",
        "parentcustomerid_account@odata.bind": f"/accounts({company.accounts['C1']})",
    })  # fmt: skip
    contact = erp.Contact(no="CT1", first_name="Ann", surname="Lee", company_no="C1")
    await f.add(session, contact)
    await f.add(session, f.coupling("contact", contact.system_id, "contact", contact_id))
    await f.add(
        session,
        erp.Opportunity(no="OP1", description="Spring bikes", contact_no="CT1",
                        contact_company_no="C1", salesperson_code="SP",
                        status=erp.OpportunityStatus.in_progress,
                        estimated_value_lcy=Decimal("1250.50"),
                        estimated_closing_date=date(2026, 5, 31)),
        erp.Opportunity(no="OP2", description="Closed deal", status=erp.OpportunityStatus.won),
    )  # fmt: skip
    await session.commit()
    assert await entries(sessionmaker, mapping_name=MAPPING, recurring=True) == []  # on demand

    # "Synchronize now" of the whole mapping: a one-off entry that real workers run.
    response = await client.post(f"/api/v1/sync/mappings/{MAPPING}/run", headers=admin)
    assert response.status_code == 202, response.text
    await drive(tick_ctx, worker_settings)
    (spring,) = sandbox.state.rows("opportunities")  # the won one is outside the table filter
    assert spring["name"] == "Spring bikes"
    assert spring["_parentcontactid_value"] == str(contact_id)
    assert spring["_parentaccountid_value"] == str(company.accounts["C1"])
    assert spring["_ownerid_value"] == str(company.user_id)  # salesperson SP's CRM user
    assert spring["estimatedvalue"] == 1250.5
    assert spring["estimatedclosedate"][:10] == "2026-05-31"
    assert (spring["statecode"], spring["statuscode"]) == (0, 1)  # Open / In Progress

    # CRM -> ERP: a salesperson renames it and opens another one in the CRM.
    await f.crm_user_edit(sandbox, "opportunities", spring["opportunityid"], name="Spring bikes XL")
    autumn = await crm.create("opportunities", {"name": "Autumn bikes"})
    await f.crm_user_edit(sandbox, "opportunities", autumn)
    response = await client.post(f"/api/v1/sync/mappings/{MAPPING}/run", headers=admin)
    assert response.status_code == 202, response.text
    await drive(tick_ctx, worker_settings)
    session.expire_all()
    rows = {o.no: o for o in await session.exec(select(erp.Opportunity))}
    assert rows["OP1"].description == "Spring bikes XL"
    (new_no,) = set(rows) - {"OP1", "OP2"}
    assert new_no.startswith("OP") and rows[new_no].description == "Autumn bikes"
    assert rows[new_no].status == erp.OpportunityStatus.not_started
    coupling = (await session.exec(select(IntegrationRecord).where(
        IntegrationRecord.integration_id == rows[new_no].system_id))).one()  # fmt: skip
    assert coupling.crm_id == autumn
    runs = await entries(sessionmaker, mapping_name=MAPPING)
    assert {e.kind for e in runs} == {JobKind.mapping_sync} and not any(e.recurring for e in runs)

    # "Synchronize now" of one opportunity, ERP -> CRM, through the couplings endpoint.
    op1 = rows["OP1"]
    op1.estimated_value_lcy = Decimal(2000)
    await session.commit()
    body = {"mapping_name": MAPPING, "codes": ["OP1"], "direction": "to_crm"}
    response = await client.post("/api/v1/couplings/synchronize", json=body, headers=admin)
    assert response.status_code == 200, response.text
    (record,) = response.json()["records"]
    assert [r["outcome"] for r in record["results"]] == ["modified"]
    assert _opportunity(sandbox, "Spring bikes XL")["estimatedvalue"] == 2000
    assert len(sandbox.state.rows("opportunities")) == 2


async def test_an_opportunity_waits_for_its_contact(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    crm: DataverseClient, connected: ConnectionSetup, client: httpx.AsyncClient,
    admin: dict[str, str],
) -> None:  # fmt: skip
    await coupled_company(session, sessionmaker, sandbox, crm)
    await f.add(session, erp.Contact(no="CT9", first_name="Not", surname="Coupled",
                                     company_no="C1"))  # fmt: skip
    await f.add(session, erp.Opportunity(no="OP1", description="Deal", contact_no="CT9",
                                         salesperson_code="SP"))  # fmt: skip
    await session.commit()
    body = {"mapping_name": MAPPING, "codes": ["OP1"], "create_if_not_coupled": True,
            "direction": "to_crm"}  # fmt: skip
    response = await client.post("/api/v1/couplings/synchronize", json=body, headers=admin)
    assert response.status_code == 200, response.text
    (result,) = response.json()["records"][0]["results"]
    assert result["outcome"] == "failed"
    assert "The contact CT9 is not coupled" in result["message"]
    assert sandbox.state.count("opportunities") == 0
    queued = (await session.exec(select(JobQueueEntry).where(
        col(JobQueueEntry.mapping_name) == MAPPING))).all()  # fmt: skip
    assert queued == []  # synchronize now runs in the request, not on the queue
