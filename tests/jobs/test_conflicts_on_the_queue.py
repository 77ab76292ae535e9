"""Update and deletion conflicts end to end: REST, real arq workers and Redis, the sandbox.

Each test couples a few customers with a full sync of CUSTOMER (a bidirectional mapping),
then plays one round per resolution: the admin sets the resolution over REST, a person
changes a customer on both sides (or deletes it on one side and changes it on the other),
then the recurring entry runs on a real worker. Outcomes are read where a user would: the
ERP row (REST and database), the CRM row over HTTP, the coupling, and the sync jobs and
their errors over REST. ERP edits and deletions go through the ERP REST API, CRM deletions
over HTTP; a CRM edit by a person is a PATCH over HTTP by the integration's application
user impersonating a salesperson (``crm_user_edit``, ``MSCRMCallerID``).
"""

from __future__ import annotations

import uuid
from typing import Any, NamedTuple, TypeVar

import httpx
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from app.dataverse import DataverseClient
from app.db import SessionMaker
from app.models import erp
from app.models.integration import ConnectionSetup, IntegrationRecord, JobStatus, SynchResult
from app.models.integration import DeletionConflictResolution as Del
from app.models.integration import UpdateConflictResolution as Upd
from app.settings import Settings
from tests.fixtures.sandbox import RunningSandbox
from tests.jobs.conftest import drive, entries, full_sync, make_due
from tests.sync import factories as f

MAPPING = "CUSTOMER"
SELECT = ["accountid", "name", "telephone1", "customertypecode"]


class Coupled(NamedTuple):
    """A coupling as the full sync made it (ids only: the rows are read again later)."""

    system_id: uuid.UUID
    integration_id: uuid.UUID
    crm_id: uuid.UUID


async def _coupled_customers(
    session: AsyncSession, client: httpx.AsyncClient, admin: dict[str, str],
    tick_ctx: dict[str, Any], settings: Settings, *nos: str,
) -> dict[str, Coupled]:  # fmt: skip
    """The customers, inserted in the CRM by a full sync on the queue; their couplings."""
    await f.add(session, *(erp.Customer(no=no, name=f"Shop {no}", phone="100") for no in nos))
    await session.commit()
    await full_sync(client, admin, MAPPING)
    await drive(tick_ctx, settings)
    couplings = {}
    for no in nos:
        coupling = await _coupling(session, no)
        couplings[no] = Coupled(coupling.system_id, coupling.integration_id, coupling.crm_id)
    return couplings


T = TypeVar("T")


def _fresh(statement: SelectOfScalar[T]) -> SelectOfScalar[T]:
    """Read the rows again (the workers changed them), without expiring the others."""
    return statement.execution_options(populate_existing=True)


async def _customer(session: AsyncSession, no: str) -> erp.Customer | None:
    return (await session.exec(_fresh(select(erp.Customer).where(erp.Customer.no == no)))).first()


async def _coupling(session: AsyncSession, no: str) -> IntegrationRecord:
    row = await _customer(session, no)
    assert row is not None
    statement = select(IntegrationRecord).where(IntegrationRecord.integration_id == row.system_id)
    return (await session.exec(_fresh(statement))).one()


async def _account(crm: DataverseClient, crm_id: uuid.UUID) -> dict[str, Any] | None:
    """The CRM row over HTTP, or None when it is not there."""
    rows = [r async for r in crm.query("accounts", select=SELECT, filter=f"accountid eq {crm_id}")]
    return rows[0] if rows else None


async def _set_resolution(
    client: httpx.AsyncClient, admin: dict[str, str], **resolution: str
) -> None:
    """The admin changes the mapping's conflict resolution over REST."""
    response = await client.patch(f"/api/v1/mappings/{MAPPING}", headers=admin, json=resolution)
    assert response.status_code == 200, response.text
    assert {k: response.json()[k] for k in resolution} == resolution


async def _erp_edit(
    client: httpx.AsyncClient, admin: dict[str, str], no: str, **changes: str
) -> None:
    """A person's edit through the ERP REST API."""
    response = await client.patch(f"/api/v1/customers/{no}", headers=admin, json=changes)
    assert response.status_code == 200, response.text


async def _run_entry(
    client: httpx.AsyncClient, reader: dict[str, str], sessionmaker: SessionMaker,
    tick_ctx: dict[str, Any], settings: Settings,
) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Run the recurring CUSTOMER entry on a worker; its two sync jobs by direction (REST)."""
    await make_due(sessionmaker, MAPPING)
    assert await drive(tick_ctx, settings) == 1
    listed = await client.get(f"/api/v1/sync-jobs?mapping_name={MAPPING}", headers=reader)
    assert listed.status_code == 200, listed.text
    newest = listed.json()["items"][:2]  # newest first: this run's two directions
    (entry,) = await entries(sessionmaker, mapping_name=MAPPING, recurring=True)
    assert {(job["job_queue_entry_id"], job["started_at"]) for job in newest} == {
        (entry.id, newest[0]["started_at"])
    }
    return {job["direction"]: job for job in newest}


def _counts(job: dict[str, Any]) -> dict[str, int]:
    """What a job did, leaving out "unchanged".

    The sync's own recent writes are read again and found unchanged from the database
    alone; how many depends on timing.
    """
    names = ("inserted", "modified", "skipped", "failed", "uncoupled")
    return {name: job[name] for name in names if job[name]}


async def _error_messages(
    client: httpx.AsyncClient, reader: dict[str, str], job: dict[str, Any]
) -> list[str]:
    response = await client.get(f"/api/v1/sync-jobs/{job['id']}/errors", headers=reader)
    assert response.status_code == 200, response.text
    return [error["message"] for error in response.json()["items"]]


async def test_an_update_conflict_for_each_resolution(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    crm: DataverseClient, connected: ConnectionSetup, client: httpx.AsyncClient,
    admin: dict[str, str], reader: dict[str, str], tick_ctx: dict[str, Any],
    worker_settings: Settings,
) -> None:  # fmt: skip
    couplings = await _coupled_customers(
        session, client, admin, tick_ctx, worker_settings, "C1", "C2", "C3", "C4"
    )
    created = await _account(crm, couplings["C1"].crm_id)
    # A Customer, like BC's template makes it: inside the mapping's integration table filter.
    assert created is not None and created["customertypecode"] == 3

    async def conflict(no: str) -> None:
        """The bidirectional name changed on both sides since the last synchronization."""
        await _erp_edit(client, admin, no, name=f"{no} named in the ERP")
        await f.crm_user_edit(sandbox, "accounts", couplings[no].crm_id, name=f"{no} named in CRM")

    async def names(no: str) -> tuple[str, str]:
        row, account = await _customer(session, no), await _account(crm, couplings[no].crm_id)
        assert row is not None and account is not None
        return row.name, account["name"]

    async def run() -> dict[str, dict[str, Any]]:
        return await _run_entry(client, reader, sessionmaker, tick_ctx, worker_settings)

    played: list[Upd] = []

    async def resolve_by(resolution: Upd) -> None:
        await _set_resolution(client, admin, update_conflict_resolution=resolution)
        played.append(resolution)

    # none: neither side wins; both directions fail with BC's message, nothing is written.
    await resolve_by(Upd.none)
    await conflict("C1")
    await conflict("C4")
    jobs = await run()
    assert _counts(jobs["to_crm"]) == {"failed": 2}
    assert _counts(jobs["from_crm"]) == {"failed": 2}
    for direction, table in (("to_crm", "account"), ("from_crm", "customer")):
        for message in await _error_messages(client, reader, jobs[direction]):
            assert f"Cannot update a record in the {table} table" in message
            assert "is bi-directional, and one or both values have changed" in message
    assert await names("C1") == ("C1 named in the ERP", "C1 named in CRM")
    c1 = await _coupling(session, "C1")
    assert (c1.last_synch_crm_result, c1.last_synch_result) == (SynchResult.failure,) * 2
    assert not c1.skipped  # once is not twice

    # send_update_to_crm: the ERP wins, for the new conflict and for C1, retried first.
    # C4 a person settles by hand meanwhile: the retry finds both sides in agreement.
    await resolve_by(Upd.send_update_to_crm)
    await conflict("C2")
    await f.crm_user_edit(sandbox, "accounts", couplings["C4"].crm_id, name="C4 named in the ERP")
    jobs = await run()
    assert _counts(jobs["to_crm"]) == {"modified": 2}
    # C1 and C4 are read again as failed couplings and agree; C2, which the sync just wrote,
    # is read back too and found unchanged by its version: nothing goes back to the ERP.
    assert _counts(jobs["from_crm"]) == {} and jobs["from_crm"]["unchanged"] == 3
    assert await names("C1") == ("C1 named in the ERP",) * 2
    assert await names("C2") == ("C2 named in the ERP",) * 2
    assert await names("C4") == ("C4 named in the ERP",) * 2
    for no in ("C1", "C4"):  # no longer failed records, either way
        state = await _coupling(session, no)
        assert (state.last_synch_crm_result, state.last_synch_result) == (SynchResult.success,) * 2
    assert (await _coupling(session, "C2")).last_synch_crm_result == SynchResult.success

    # get_update_from_crm: the CRM wins; the ERP -> CRM pass leaves the record alone.
    await resolve_by(Upd.get_update_from_crm)
    await conflict("C3")
    jobs = await run()
    assert _counts(jobs["to_crm"]) == {"skipped": 1}  # C1 and C4 are not retried again
    assert _counts(jobs["from_crm"]) == {"modified": 1}
    assert await names("C3") == ("C3 named in CRM",) * 2
    c3 = await _coupling(session, "C3")
    assert c3.last_synch_result == SynchResult.success and not c3.skipped
    (entry,) = await entries(sessionmaker, mapping_name=MAPPING, recurring=True)
    assert entry.status == JobStatus.ready  # a modified record is activity

    # Nothing left to do: the sync's own writes on either side are not echoed (what is
    # read again, like its ERP write of C3, is found unchanged).
    jobs = await run()
    assert _counts(jobs["to_crm"]) == {} and _counts(jobs["from_crm"]) == {}
    (entry,) = await entries(sessionmaker, mapping_name=MAPPING, recurring=True)
    assert entry.status == JobStatus.on_hold_with_inactivity_timeout
    assert set(played) == set(Upd)  # every resolution there is
    assert [await names(no) for no in ("C1", "C2", "C3")] == [
        ("C1 named in the ERP",) * 2, ("C2 named in the ERP",) * 2, ("C3 named in CRM",) * 2
    ]  # fmt: skip


async def test_a_deletion_conflict_for_each_resolution_on_each_side(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    crm: DataverseClient, connected: ConnectionSetup, client: httpx.AsyncClient,
    admin: dict[str, str], reader: dict[str, str], tick_ctx: dict[str, Any],
    worker_settings: Settings,
) -> None:  # fmt: skip
    # Per resolution: one customer deleted in the CRM, another deleted in the ERP.
    couplings = await _coupled_customers(
        session, client, admin, tick_ctx, worker_settings, "R1", "R2", "U1", "U2", "N1", "N2"
    )

    async def delete_in_crm(no: str) -> None:
        """Deleted in the CRM over HTTP, then changed in the ERP: the change finds it gone."""
        await crm.delete("accounts", couplings[no].crm_id)
        await _erp_edit(client, admin, no, phone="200")

    async def delete_in_erp(no: str) -> None:
        """Deleted through the ERP REST API, then changed in the CRM."""
        response = await client.delete(f"/api/v1/customers/{no}", headers=admin)
        assert response.status_code == 204, response.text
        await f.crm_user_edit(sandbox, "accounts", couplings[no].crm_id, telephone1="300")

    async def coupling_of(no: str) -> IntegrationRecord | None:
        system_id = couplings[no].system_id
        statement = select(IntegrationRecord).where(IntegrationRecord.system_id == system_id)
        return (await session.exec(_fresh(statement))).first()

    async def run() -> dict[str, dict[str, Any]]:
        return await _run_entry(client, reader, sessionmaker, tick_ctx, worker_settings)

    played: list[Del] = []

    async def resolve_by(resolution: Del) -> None:
        await _set_resolution(client, admin, deletion_conflict_resolution=resolution)
        played.append(resolution)

    # restore_records: each record is created again on the side that lost it, and the
    # coupling follows the new row.
    await resolve_by(Del.restore_records)
    await delete_in_crm("R1")
    await delete_in_erp("R2")
    jobs = await run()
    assert _counts(jobs["to_crm"]) == {"inserted": 1}
    assert _counts(jobs["from_crm"]) == {"inserted": 1}
    r1 = await coupling_of("R1")
    assert r1 is not None and r1.crm_id != couplings["R1"].crm_id
    assert await _account(crm, couplings["R1"].crm_id) is None
    restored = await _account(crm, r1.crm_id)
    assert restored is not None
    assert (restored["name"], restored["telephone1"]) == ("Shop R1", "200")
    assert r1.last_synch_crm_result == SynchResult.success
    r2 = await coupling_of("R2")
    assert r2 is not None and r2.integration_id != couplings["R2"].integration_id
    assert await _customer(session, "R2") is None  # the new row has a number of its own
    again = await session.exec(_fresh(select(erp.Customer).where(erp.Customer.name == "Shop R2")))
    (row,) = again.all()
    assert (row.system_id, row.phone) == (r2.integration_id, "300")
    shown = await client.get(f"/api/v1/customers/{row.no}", headers=reader)
    assert shown.status_code == 200 and shown.json()["phone"] == "300"

    # remove_coupling: the surviving record stays as it is, uncoupled.
    await resolve_by(Del.remove_coupling)
    await delete_in_crm("U1")
    await delete_in_erp("U2")
    jobs = await run()
    assert _counts(jobs["to_crm"]) == {"uncoupled": 1}
    assert _counts(jobs["from_crm"]) == {"uncoupled": 1}
    assert await coupling_of("U1") is None and await coupling_of("U2") is None
    u1 = await _customer(session, "U1")
    assert u1 is not None and u1.phone == "200"
    u2 = await _account(crm, couplings["U2"].crm_id)
    assert u2 is not None and u2["telephone1"] == "300"
    (entry,) = await entries(sessionmaker, mapping_name=MAPPING, recurring=True)
    # Uncoupling is not activity.
    assert entry.status == JobStatus.on_hold_with_inactivity_timeout

    # none: each record fails with BC's message, the same error twice skips it.
    await resolve_by(Del.none)
    await delete_in_crm("N1")
    await delete_in_erp("N2")
    jobs = await run()
    assert _counts(jobs["to_crm"]) == {"failed": 1}
    assert _counts(jobs["from_crm"]) == {"failed": 1}
    (to_crm,) = await _error_messages(client, reader, jobs["to_crm"])
    assert to_crm.startswith("customer N1: ") and "coupled to a deleted account record" in to_crm
    (from_crm,) = await _error_messages(client, reader, jobs["from_crm"])
    assert str(couplings["N2"].crm_id) in from_crm
    assert "coupled to a deleted customer record" in from_crm
    n1, n2 = await coupling_of("N1"), await coupling_of("N2")
    assert n1 is not None and n1.last_synch_crm_result == SynchResult.failure and not n1.skipped
    assert n2 is not None and n2.last_synch_result == SynchResult.failure and not n2.skipped
    assert await _account(crm, couplings["N2"].crm_id) is not None  # nothing was deleted
    jobs = await run()  # both retried first, both fail the same way again
    assert _counts(jobs["to_crm"]) == {"failed": 1}
    assert _counts(jobs["from_crm"]) == {"failed": 1}
    n1, n2 = await coupling_of("N1"), await coupling_of("N2")
    assert n1 is not None and n1.skipped and n2 is not None and n2.skipped
    jobs = await run()  # skipped: not tried any more (until restored), so no failure
    assert not any(job["failed"] for job in jobs.values())

    # Restored, with a resolution chosen: the next run retries both first and resolves them.
    unskipped = await client.post(
        "/api/v1/couplings/restore-skipped", headers=admin, json={"mapping_name": MAPPING}
    )
    assert unskipped.status_code == 200 and unskipped.json()["count"] == 2
    await resolve_by(Del.restore_records)
    jobs = await run()
    assert _counts(jobs["to_crm"]) == {"inserted": 1}
    assert _counts(jobs["from_crm"]) == {"inserted": 1}
    n1, n2 = await coupling_of("N1"), await coupling_of("N2")
    assert n1 is not None and not n1.skipped and n1.last_synch_crm_result == SynchResult.success
    assert n2 is not None and not n2.skipped and n2.last_synch_result == SynchResult.success
    assert await _account(crm, n1.crm_id) is not None
    assert n2.integration_id != couplings["N2"].integration_id
    assert set(played) == set(Del)  # every resolution there is
