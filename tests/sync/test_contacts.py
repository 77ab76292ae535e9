"""CONTACT: a person's parent account, both ways (app/sync/contact_rules.py)."""

from __future__ import annotations

from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.catalog import run_mapping
from app.dataverse import DataverseClient
from app.db import SessionMaker
from app.models import erp
from app.models.integration import ConnectionSetup, Direction, IntegrationSynchJobError
from app.sync.sync_pass import RunOptions
from tests.fixtures.sandbox import RunningSandbox
from tests.sync import factories as f

FULL = RunOptions(is_full=True)
TO, FROM = Direction.to_crm, Direction.from_crm
LOGICAL = "_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"
PARENT = "parentcustomerid_account@odata.bind"
CONTACT_FILTER = "_parentcustomerid_value ne null and statecode eq 0"  # the mapping's


def _customer(no: str) -> erp.Customer:
    return erp.Customer(no=no, name=f"Customer {no}")


def _person(no: str, company_no: str, surname: str = "Lee") -> erp.Contact:
    return erp.Contact(no=no, first_name="Ann", surname=surname, company_no=company_no)


def _account_id(sandbox: RunningSandbox, name: str) -> str:
    return str(next(a["accountid"] for a in sandbox.state.rows("accounts") if a["name"] == name))


def _contact(sandbox: RunningSandbox, lastname: str) -> dict[str, Any]:
    return next(c for c in sandbox.state.rows("contacts") if c["lastname"] == lastname)


async def _errors(session: AsyncSession) -> list[str]:
    return [e.message for e in (await session.exec(select(IntegrationSynchJobError))).all()]


async def _erp_contact(session: AsyncSession, no: str) -> erp.Contact:
    session.expire_all()
    return (await session.exec(select(erp.Contact).where(erp.Contact.no == no))).one()


async def _synced_company(
    session: AsyncSession, sessionmaker: SessionMaker, crm: DataverseClient
) -> None:
    """Customers C1 and C2 and person CT1 of C1, synced to the CRM."""
    await f.add(session, _customer("C1"), _customer("C2"))
    await f.add(session, _person("CT1", "C1"))
    await session.commit()
    await run_mapping(sessionmaker, crm, mapping_name="CUSTOMER", options=FULL)
    result = await run_mapping(sessionmaker, crm, mapping_name="CONTACT", options=FULL)
    assert result.counters[TO].inserted == 1


async def test_a_person_gets_the_account_of_its_company_as_parent(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    crm: DataverseClient, setup: ConnectionSetup,
) -> None:  # fmt: skip
    await f.add(session, _customer("C1"), _customer("C2"))
    await f.add(
        session,
        erp.Contact(no="C1", type=erp.ContactType.company, surname="Customer C1"),
        _person("CT1", "C1"),
        _person("CT2", "NOPE", surname="Orphan"),  # its company is no customer
    )
    await session.commit()

    early = await run_mapping(sessionmaker, crm, mapping_name="CONTACT", options=FULL)
    assert early.counters[TO].failed == 2
    assert sandbox.state.count("contacts") == 0
    messages = await _errors(session)
    assert any("contact CT1" in m and "customer C1 is not coupled" in m and "CUSTOMER" in m
               for m in messages)  # fmt: skip
    assert any("contact CT2" in m and "must have a contact company that has a business relation"
               " to a customer: there is no customer NOPE" in m for m in messages)  # fmt: skip

    await run_mapping(sessionmaker, crm, mapping_name="CUSTOMER", options=FULL)
    retried = await run_mapping(sessionmaker, crm, mapping_name="CONTACT")  # failed first
    assert retried.counters[TO].inserted == 1
    assert retried.counters[TO].failed == 1  # CT2 still has no customer
    person = _contact(sandbox, "Lee")
    assert person["_parentcustomerid_value"] == _account_id(sandbox, "Customer C1")
    assert person[LOGICAL] == "account"  # bound through parentcustomerid_account
    assert sandbox.state.count("contacts") == 1  # the company contact is not synced
    # Inside the mapping's own CRM filter now, so CRM edits of it can come back.
    found = [c["contactid"] async for c in crm.query("contacts", filter=CONTACT_FILTER)]
    assert found == [person["contactid"]]

    idle = await run_mapping(sessionmaker, crm, mapping_name="CONTACT")
    assert (idle.counters[TO].inserted, idle.counters[TO].modified) == (0, 0)
    assert idle.counters[FROM].activity == 0  # the sync's own write is not read back

    moved = await _erp_contact(session, "CT1")
    moved.company_no = "C2"
    await session.commit()
    result = await run_mapping(sessionmaker, crm, mapping_name="CONTACT")
    assert result.counters[TO].modified == 1
    assert _contact(sandbox, "Lee")["_parentcustomerid_value"] == _account_id(
        sandbox, "Customer C2"
    )


async def test_crm_edits_come_back_with_the_company_of_the_parent_account(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    crm: DataverseClient, setup: ConnectionSetup,
) -> None:  # fmt: skip
    await _synced_company(session, sessionmaker, crm)
    person = _contact(sandbox, "Lee")
    c2 = _account_id(sandbox, "Customer C2")
    await f.crm_user_edit(sandbox, "contacts", person["contactid"], lastname="Lee-Smith",
                          **{PARENT: f"/accounts({c2})"})  # fmt: skip
    back = await run_mapping(sessionmaker, crm, mapping_name="CONTACT")
    assert back.counters[FROM].modified == 1
    contact = await _erp_contact(session, "CT1")
    assert (contact.surname, contact.company_no) == ("Lee-Smith", "C2")
    assert (await run_mapping(sessionmaker, crm, mapping_name="CONTACT")).activity == 0

    # A parent account the sync does not know: the record fails and the ERP keeps C2.
    stranger = await crm.create("accounts", {"name": "Stranger", "customertypecode": 3})
    await f.crm_user_edit(sandbox, "contacts", person["contactid"],
                          **{PARENT: f"/accounts({stranger})"})  # fmt: skip
    refused = await run_mapping(sessionmaker, crm, mapping_name="CONTACT")
    assert refused.counters[FROM].failed == 1
    assert any(f"parent account {stranger} is not coupled to a customer" in m
               for m in await _errors(session))  # fmt: skip
    assert (await _erp_contact(session, "CT1")).company_no == "C2"

    # A full sync brings new CRM people of a coupled account; one whose parent is a contact
    # is outside the mapping (BC: ParentCustomerIdType=account) and left alone.
    c1 = _account_id(sandbox, "Customer C1")
    newbie = await crm.create("contacts", {
        "firstname": "Bo", "lastname": "Newbie",
        "parentcustomerid_account@odata.bind": f"/accounts({c1})",
    })  # fmt: skip
    kid = await crm.create("contacts", {
        "firstname": "Kid", "lastname": "Child",
        "parentcustomerid_contact@odata.bind": f"/contacts({person['contactid']})",
    })  # fmt: skip
    for made in (newbie, kid):
        await f.crm_user_edit(sandbox, "contacts", made)
    full = await run_mapping(sessionmaker, crm, mapping_name="CONTACT", options=FULL)
    assert full.counters[FROM].inserted == 1
    assert full.counters[FROM].failed == 1  # CT1, still under the stranger; not the kid
    session.expire_all()
    people = {c.surname: c for c in (await session.exec(select(erp.Contact))).all()}
    assert set(people) == {"Lee-Smith", "Newbie"}
    assert (people["Newbie"].company_no, people["Newbie"].type) == ("C1", erp.ContactType.person)
