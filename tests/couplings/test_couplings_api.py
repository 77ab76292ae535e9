"""Couplings over REST against the sandbox: couple, conflicts, stale ones, uncouple,
restore skipped, and match-based coupling with 0, 1 and several matches."""

from __future__ import annotations

import uuid

import httpx
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.dataverse import DataverseClient
from app.models.erp import Customer, Item
from app.models.integration import IntegrationRecord, IntegrationSynchJob, IntegrationSynchJobError
from tests.connection.conftest import API, enable
from tests.fixtures.sandbox import RunningSandbox


async def _items(session: AsyncSession, *numbers: str) -> list[Item]:
    rows = [Item(no=no, description=f"Item {no}") for no in numbers]
    session.add_all(rows)
    await session.commit()
    return rows


async def _product(crm: DataverseClient, number: str) -> uuid.UUID:
    return await crm.create("products", {"name": number, "productnumber": number,
                                         "producttypecode": 1})  # fmt: skip


async def test_couple_conflicts_stale_and_uncouple(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    reader: dict[str, str],
    session: AsyncSession,
    sandbox: RunningSandbox,
    crm: DataverseClient,
) -> None:
    await enable(client, admin, sandbox)
    first, second, third = await _items(session, "1000", "1001", "1002")
    product, other = await _product(crm, "P-1"), await _product(crm, "P-2")

    def couple(item: Item, crm_id: uuid.UUID, **extra: object) -> dict:
        return {"mapping_name": "ITEM-PRODUCT", "integration_id": str(item.system_id),
                "crm_id": str(crm_id), **extra}  # fmt: skip

    response = await client.post(f"{API}/couplings", json=couple(first, product), headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["is_new"] is True
    again = await client.post(f"{API}/couplings", json=couple(first, product), headers=admin)
    assert again.json()["is_new"] is False
    response = await client.post(f"{API}/couplings", json=couple(second, product), headers=admin)
    assert response.status_code == 409 and "item 1000" in response.json()["detail"]
    response = await client.post(f"{API}/couplings", json=couple(first, other), headers=admin)
    assert response.status_code == 409 and "uncouple it first" in response.json()["detail"]
    response = await client.post(
        f"{API}/couplings", json=couple(second, uuid.uuid4()), headers=admin
    )
    assert response.status_code == 404 and "does not exist" in response.json()["detail"]
    for body, status in (
        (couple(second, other, mapping_name="NOPE"), 404),
        ({**couple(second, other), "integration_id": "not-a-uuid"}, 422),
        (couple(Item(no="x"), other), 404),
        ({**couple(second, other), "unexpected": 1}, 422),
    ):
        assert (
            await client.post(f"{API}/couplings", json=body, headers=admin)
        ).status_code == status
    assert (
        await client.post(f"{API}/couplings", json=couple(second, other), headers=reader)
    ).status_code == 403

    # The ERP record of a coupling is deleted: its coupling is stale and gets replaced.
    await session.delete(first)
    await session.commit()
    response = await client.post(f"{API}/couplings", json=couple(second, product), headers=admin)
    assert response.status_code == 200, response.text
    assert "deleted item" in response.json()["notes"][0]

    # A CRM row deleted under a coupling is reported and removable.
    await client.post(f"{API}/couplings", json=couple(third, other), headers=admin)
    await crm.delete("products", other)
    stale_url = f"{API}/couplings/stale/ITEM-PRODUCT"
    assert (await client.get(stale_url, headers=reader)).json()["items"] == []
    stale = (await client.get(stale_url, params={"check_crm": "true"}, headers=reader)).json()
    assert [(s["coupling"]["crm_id"], s["reason"]) for s in stale["items"]] == [
        (str(other), "crm_row_deleted")]  # fmt: skip
    removed = await client.delete(stale_url, params={"check_crm": "true"}, headers=admin)
    assert removed.status_code == 200 and len(removed.json()["items"]) == 1
    assert (await client.get(f"{API}/couplings/stale/NOPE", headers=reader)).status_code == 404

    listed = (await client.get(f"{API}/couplings", params={"mapping": "ITEM-PRODUCT"},
                               headers=reader)).json()  # fmt: skip
    assert listed["total"] == 1 and listed["items"][0]["integration_id"] == str(second.system_id)
    coupling_id = listed["items"][0]["id"]
    response = await client.delete(
        f"{API}/couplings", params={"ids": [coupling_id, str(uuid.uuid4())]}, headers=admin
    )
    assert response.status_code == 404
    assert (await client.get(f"{API}/couplings", headers=reader)).json()["total"] == 1
    assert (await client.delete(f"{API}/couplings/not-a-uuid", headers=admin)).status_code == 422
    response = await client.delete(f"{API}/couplings/{coupling_id}", headers=admin)
    assert response.json() == {"count": 1}
    assert (await client.delete(f"{API}/couplings/{coupling_id}", headers=admin)).status_code == 404


async def test_list_filters_restore_skipped_and_uncouple_all(
    client: httpx.AsyncClient, admin: dict[str, str], reader: dict[str, str], session: AsyncSession,
    sandbox: RunningSandbox,
) -> None:  # fmt: skip
    await enable(client, admin, sandbox)
    items = await _items(session, "A", "B", "C")
    couplings = [
        IntegrationRecord(table_name="item", integration_id=item.system_id, crm_table="product",
                          crm_id=uuid.uuid4(), skipped=index == 0,
                          last_synch_crm_result="failure" if index < 2 else "success")
        for index, item in enumerate(items)
    ]  # fmt: skip
    session.add_all(couplings)
    await session.commit()
    url = f"{API}/couplings"
    assert (await client.get(url, params={"skipped": "true"}, headers=reader)).json()["total"] == 1
    assert (await client.get(url, params={"failed": "true"}, headers=reader)).json()["total"] == 2
    assert (await client.get(url, params={"failed": "false"}, headers=reader)).json()["total"] == 1
    assert (await client.get(url, params={"table": "customer"}, headers=reader)).json()[
        "total"
    ] == 0
    page = (await client.get(url, params={"limit": 2, "offset": 2}, headers=reader)).json()
    assert page["total"] == 3 and len(page["items"]) == 1
    for params in ({"limit": 0}, {"skipped": "maybe"}, {"crm_id": "x"}):
        assert (await client.get(url, params=params, headers=reader)).status_code == 422
    assert (await client.get(url, params={"mapping": "NOPE"}, headers=reader)).status_code == 404

    restore = f"{API}/couplings/restore-skipped"
    skipped_id = str(couplings[0].system_id)
    response = await client.post(restore, json={"coupling_ids": [skipped_id, str(uuid.uuid4())]},
                                 headers=admin)  # fmt: skip
    assert response.status_code == 404
    assert (await client.post(restore, json={}, headers=admin)).status_code == 422
    response = await client.post(restore, json={"coupling_ids": [skipped_id]}, headers=admin)
    assert response.json() == {"count": 1}
    assert (await client.get(url, params={"skipped": "true"}, headers=reader)).json()["total"] == 0

    assert (await client.delete(f"{url}/by-mapping/NOPE", headers=admin)).status_code == 404
    response = await client.delete(f"{url}/by-mapping/ITEM-PRODUCT", headers=admin)
    assert response.json() == {"count": 3}
    assert (await client.get(url, headers=reader)).json()["total"] == 0


async def test_match_based_coupling_with_none_one_and_several_matches(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    session: AsyncSession,
    sandbox: RunningSandbox,
    crm: DataverseClient,
) -> None:
    await enable(client, admin, sandbox)
    names = ["Contoso", "Fabrikam", "Nowhere", "Litware", "Adatum"]
    customers = {name: Customer(no=name.upper()[:6], name=name) for name in names}
    session.add_all(customers.values())
    await session.commit()
    contoso = await crm.create("accounts", {"name": "contoso", "customertypecode": 3})
    for _ in range(2):
        await crm.create("accounts", {"name": "Fabrikam", "customertypecode": 3})
    await crm.create("accounts", {"name": "Litware", "customertypecode": 1})  # not a customer
    adatum = await crm.create("accounts", {"name": "ADATUM", "customertypecode": 3})

    def body(*chosen: str) -> dict:
        ids = [str(customers[name].system_id) for name in chosen]
        return {"mapping_name": "CUSTOMER", "integration_ids": ids}

    response = await client.post(f"{API}/couplings/match",
                                 json=body("Contoso", "Fabrikam", "Nowhere", "Litware"),
                                 headers=admin)  # fmt: skip
    assert response.status_code == 200, response.text
    report = response.json()
    outcomes = {r["record"]: (r["outcome"], r["crm_id"]) for r in report["records"]}
    assert outcomes["customer CONTOS"] == ("coupled", str(contoso))
    assert outcomes["customer FABRIK"][0] == "multiple_matches"
    assert outcomes["customer NOWHER"][0] == "no_match"
    assert outcomes["customer LITWAR"][0] == "no_match"
    assert (report["coupled"], report["not_matched"]) == (1, 3)
    job = (await session.exec(select(IntegrationSynchJob))).one()
    assert (job.type, job.coupled, job.failed) == ("coupling", 1, 3)
    errors = list(await session.exec(select(IntegrationSynchJobError)))
    assert any("Several uncoupled CRM account rows" in e.message for e in errors)

    fields = (await client.get(f"{API}/mappings/CUSTOMER/fields", headers=admin)).json()
    name_field = next(f for f in fields if f["field"] == "name")
    field_url = f"{API}/mappings/CUSTOMER/fields/{name_field['id']}"
    await client.patch(field_url, json={"case_sensitive_matching": True}, headers=admin)
    response = await client.post(f"{API}/couplings/match", json=body("Adatum"), headers=admin)
    assert response.json()["records"][0]["outcome"] == "no_match"
    await client.patch(field_url, json={"case_sensitive_matching": False}, headers=admin)
    response = await client.post(f"{API}/couplings/match", json=body("Adatum"), headers=admin)
    assert response.json()["records"][0]["crm_id"] == str(adatum)

    # Already coupled rows are not matched again; the coupled CRM row is not offered twice.
    response = await client.post(f"{API}/couplings/match", json={"mapping_name": "CUSTOMER"},
                                 headers=admin)  # fmt: skip
    assert {r["record"] for r in response.json()["records"]} == {
        "customer FABRIK", "customer NOWHER", "customer LITWAR"}  # fmt: skip
    assert len(list(await session.exec(select(IntegrationRecord)))) == 2
    for bad, status in (
        ({"mapping_name": "NOPE"}, 404),
        ({"mapping_name": "POSTEDSALESLINE-INV"}, 400),
        ({"mapping_name": "CUSTOMER", "integration_ids": []}, 422),
        ({"mapping_name": "CUSTOMER", "integration_ids": [str(uuid.uuid4())]}, 400),
        ({"mapping_name": "CUSTOMER", "limit": 0}, 422),
    ):
        response = await client.post(f"{API}/couplings/match", json=bad, headers=admin)
        assert response.status_code == status, (bad, response.text)


async def test_coupling_needs_a_configured_connection(
    client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession, sandbox: RunningSandbox
) -> None:
    await enable(client, admin, sandbox)
    (item,) = await _items(session, "9")
    await client.post(f"{API}/connection/disable", headers=admin)
    await client.patch(f"{API}/connection", json={"server_address": ""}, headers=admin)
    body = {"mapping_name": "ITEM-PRODUCT", "integration_id": str(item.system_id),
            "crm_id": str(uuid.uuid4())}  # fmt: skip
    response = await client.post(f"{API}/couplings", json=body, headers=admin)
    assert response.status_code == 409 and "CRM URL" in response.json()["detail"]
