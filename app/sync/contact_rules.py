"""CONTACT: a person's parent account.

BC fills a CRM contact's ``parentcustomerid`` in a subscriber: the person's company
contact has a business relation to a customer, and the parent is the account coupled to
that customer; back from the CRM, the parent account's coupled customer's company
contact becomes the person's "Company No.". Our ERP has no business relation table, so
the relation is by number: **the company contact of customer X is the contact numbered X**,
and a person's ``company_no`` names that customer. The default field mapping
``company_no -> parentcustomerid`` carries the value; the passes run this module's
``ContactHooks`` to resolve it instead of the generic lookup, for BC's messages and rules:

- ERP -> CRM: ``company_no`` X -> the account coupled to customer X, bound through
  ``parentcustomerid_account@odata.bind`` (the ``account`` constant of
  ``parentcustomeridtype`` picks the navigation property). Customer X not coupled yet is a
  dependency failure retried next run; no customer X fails with BC's "must have a contact
  company that has a business relation to a customer".
- CRM -> ERP: the parent account coupled to customer X -> ``company_no`` X. A parent
  account that is not coupled fails the record; a contact whose parent is another contact
  is outside the mapping (BC's filter ParentCustomerIdType=account) and is left alone. The
  Web API cannot filter on the lookup's type, so the parents that are not coupled
  customers are looked up among the accounts (one query per page, only for those).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.dataverse.errors import DataverseError
from app.models.erp import Customer
from app.sync import erp_tables
from app.sync.conflicts import SyncAction
from app.sync.errors import from_dataverse, not_coupled
from app.sync.sync_pass import MappingHooks, SyncPass
from app.sync.transfer import CrmRef, ErpRef
from app.sync.work import FromCrmWork, ToCrmWork

ENTITY = "contact"
TABLE = "contact"
PARENT = "parentcustomerid"
COMPANY_NO = "company_no"
IDS_PER_QUERY = 50


def _applies(run: SyncPass) -> bool:
    return run.entity == ENTITY and run.mapping.table_name == TABLE


async def _existing_customers(session: AsyncSession, codes: Iterable[str]) -> set[str]:
    wanted = sorted(set(codes))
    if not wanted:
        return set()
    statement = select(Customer.no).where(col(Customer.no).in_(wanted))
    return set(await session.exec(statement))


async def parents_to_crm(session: AsyncSession, run: SyncPass, works: Sequence[ToCrmWork]) -> None:
    """Replace each contact's parent (a customer no) by its coupled account, or fail it."""
    if not _applies(run):
        return
    refs = [(w, w.values[PARENT]) for w in works if isinstance(w.values.get(PARENT), ErpRef)]
    codes = {ref.code for _, ref in refs if ref.code}
    coupled = await erp_tables.coupled_crm_ids(session, table="customer", codes=codes)
    existing = await _existing_customers(session, codes - coupled.keys())
    for work, ref in refs:
        work.values[PARENT] = coupled.get(ref.code)
        if not ref.code or ref.code in coupled:
            continue
        work.action = SyncAction.fail
        if ref.code in existing:
            work.message = not_coupled("customer", ref.code, mapping_hint="CUSTOMER").message
        else:
            work.message = (
                f"The contact {work.row.no} must have a contact company that has a business "
                f"relation to a customer: there is no customer {ref.code}."
            )


async def _account_ids(run: SyncPass, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these CRM ids are accounts (the others are contacts)."""
    found: set[uuid.UUID] = set()
    for start in range(0, len(ids), IDS_PER_QUERY):
        text = " or ".join(f"accountid eq {i}" for i in ids[start : start + IDS_PER_QUERY])
        try:
            async for record in run.crm.query("accounts", select=["accountid"], filter=text):
                found.add(uuid.UUID(str(record["accountid"])))
        except DataverseError as exc:
            raise from_dataverse(exc, action="read the parent accounts of CRM contacts") from exc
    return found


async def parents_from_crm(
    session: AsyncSession, run: SyncPass, works: Sequence[FromCrmWork]
) -> None:
    """Replace each CRM contact's parent by the coupled customer's no, or fail / leave it."""
    if not _applies(run):
        return
    refs = [
        (w, w.values[COMPANY_NO]) for w in works if isinstance(w.values.get(COMPANY_NO), CrmRef)
    ]
    ids = {ref.crm_id for _, ref in refs}
    codes = await erp_tables.coupled_codes(session, table="customer", crm_ids=ids)
    uncoupled = sorted(ids - codes.keys(), key=str)
    accounts = await _account_ids(run, uncoupled) if uncoupled else set()
    for work, ref in refs:
        code = codes.get(ref.crm_id)
        work.values[COMPANY_NO] = code
        if code is not None:
            continue
        if ref.crm_id in accounts:
            work.action = SyncAction.fail
            work.message = (
                f"The parent account {ref.crm_id} is not coupled to a customer; synchronize "
                "CUSTOMER first."
            )
        else:  # the parent is a contact: outside the mapping (ParentCustomerIdType=account)
            work.action = SyncAction.ignore


class ContactHooks(MappingHooks):
    """The CONTACT mapping's parent account rules, at the passes' lookup steps."""

    async def prepare_to_crm(
        self, session: AsyncSession, run: SyncPass, works: Sequence[ToCrmWork]
    ) -> None:
        await parents_to_crm(session, run, works)

    async def prepare_from_crm(
        self, session: AsyncSession, run: SyncPass, works: Sequence[FromCrmWork]
    ) -> None:
        await parents_from_crm(session, run, works)
