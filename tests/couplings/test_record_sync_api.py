"""Synchronize now, create in the CRM and create in the ERP, over REST against the sandbox."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import httpx
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.dataverse import DataverseClient
from app.models import erp
from app.models.integration import (
    IntegrationRecord,
    IntegrationSynchJob,
    IntegrationSynchJobError,
    IntegrationTableMapping,
)
from tests.connection.conftest import API, enable
from tests.fixtures.sandbox import RunningSandbox
from tests.sync import factories as f

SYNC, TO_CRM, TO_ERP = (f"{API}/couplings/{name}" for name in
                        ("synchronize", "create-in-crm", "create-in-erp"))  # fmt: skip


def _products(sandbox: RunningSandbox, no: str) -> list[dict[str, Any]]:
    return [p for p in sandbox.state.rows("products") if p["productnumber"] == no]


def _results(body: dict[str, Any]) -> list[list[tuple[str, str]]]:
    return [[(r["direction"], r["outcome"]) for r in rec["results"]] for rec in body["records"]]


async def _count(session: AsyncSession, model: Any) -> int:
    return int((await session.exec(select(func.count()).select_from(model))).one())


async def _post(client: httpx.AsyncClient, url: str, headers: dict[str, str],
                **body: Any) -> dict[str, Any]:  # fmt: skip
    response = await client.post(url, json=body, headers=headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_create_in_crm_then_synchronize_edits_both_ways(
    client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession,
    sandbox: RunningSandbox,
) -> None:  # fmt: skip
    await enable(client, admin, sandbox)
    await f.add(session, f.unit("PCS"))
    await f.add(session, f.item("1000"))
    await session.commit()

    # Before its unit is in the CRM, the item cannot be created: a per-record failure.
    body = await _post(client, TO_CRM, admin, mapping_name="ITEM-PRODUCT", codes=["1000"])
    assert _results(body) == [[("to_crm", "failed")]]
    assert "PCS is not coupled" in body["records"][0]["results"][0]["message"]
    assert _products(sandbox, "1000") == []

    body = await _post(client, TO_CRM, admin, mapping_name="UNIT OF MEASURE", codes=["PCS"])
    assert _results(body) == [[("to_crm", "inserted")]]
    body = await _post(client, TO_CRM, admin, mapping_name="ITEM-PRODUCT", codes=["1000"])
    assert _results(body) == [[("to_crm", "inserted")]]  # the failed one is retried
    (product,) = _products(sandbox, "1000")
    assert body["records"][0]["crm_id"] == product["productid"]
    again = await _post(client, TO_CRM, admin, mapping_name="ITEM-PRODUCT", codes=["1000"])
    assert _results(again) == [[("to_crm", "already_coupled")]]
    assert "already coupled" in again["records"][0]["results"][0]["message"]
    assert len(_products(sandbox, "1000")) == 1

    # An ERP edit, synchronized now: the product follows; the CRM side has nothing new.
    item = (await session.exec(select(erp.Item).where(erp.Item.no == "1000"))).one()
    item.unit_price = Decimal("42.50")
    await session.commit()
    body = await _post(client, SYNC, admin, mapping_name="ITEM-PRODUCT",
                       integration_ids=[str(item.system_id)])  # fmt: skip
    assert _results(body) == [[("to_crm", "modified"), ("from_crm", "unchanged")]]
    assert set(body["job_ids"]) == {"to_crm", "from_crm"}
    assert _products(sandbox, "1000")[0]["price"] == 42.5
    jobs = {j.system_id: j for j in await session.exec(select(IntegrationSynchJob))}
    assert jobs[uuid.UUID(body["job_ids"]["to_crm"])].modified == 1

    # A CRM edit by a person, synchronized now from the CRM side by its CRM id.
    await f.crm_user_edit(sandbox, "products", product["productid"], name="Renamed in CRM")
    body = await _post(client, SYNC, admin, mapping_name="ITEM-PRODUCT",
                       crm_ids=[product["productid"]], direction="from_crm")  # fmt: skip
    assert _results(body) == [[("from_crm", "modified")]]
    assert body["records"][0]["integration_id"] == str(item.system_id)
    session.expire_all()
    item = (await session.exec(select(erp.Item).where(erp.Item.no == "1000"))).one()
    assert item.description == "Renamed in CRM"
    mapping = (await session.exec(select(IntegrationTableMapping).where(
        IntegrationTableMapping.name == "ITEM-PRODUCT"))).one()  # fmt: skip
    assert (mapping.erp_modified_watermark, mapping.crm_modified_watermark) == (None, None)

    # Both sides changed the same bidirectional field: the mapping's resolution (none) fails it.
    item.description = "Renamed in ERP"
    await session.commit()
    await f.crm_user_edit(sandbox, "products", product["productid"], name="Renamed again")
    body = await _post(client, SYNC, admin, mapping_name="ITEM-PRODUCT", codes=["1000"])
    assert _results(body) == [[("to_crm", "failed"), ("from_crm", "failed")]]
    assert "bi-directional" in body["records"][0]["results"][0]["message"]
    errors = await session.exec(select(IntegrationSynchJobError).where(
        IntegrationSynchJobError.job_id == uuid.UUID(body["job_ids"]["to_crm"])))  # fmt: skip
    assert len(list(errors)) == 1
    assert _products(sandbox, "1000")[0]["name"] == "Renamed again"


async def test_uncoupled_needs_the_create_flag_and_bad_input_changes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], reader: dict[str, str],
    session: AsyncSession, sandbox: RunningSandbox,
) -> None:  # fmt: skip
    await enable(client, admin, sandbox)
    await f.add(session, f.unit("PCS"))
    await f.add(session, f.item("2000"), f.item("2001"), f.item("2002"))
    await session.commit()
    await _post(client, TO_CRM, admin, mapping_name="UNIT OF MEASURE", codes=["PCS"])
    jobs, couplings = await _count(session, IntegrationSynchJob), await _count(
        session, IntegrationRecord)  # fmt: skip

    response = await client.post(SYNC, json={"mapping_name": "ITEM-PRODUCT",
                                             "codes": ["2000", "2001"]}, headers=admin)  # fmt: skip
    assert response.status_code == 409, response.text
    detail = response.json()["detail"]
    assert "Not coupled: item 2000, item 2001" in detail and "create_if_not_coupled" in detail
    unknown, some_uuid = str(uuid.uuid4()), str(uuid.uuid4())
    for url, body, status in (
        (SYNC, {"mapping_name": "NOPE", "codes": ["2000"]}, 404),
        (SYNC, {"mapping_name": "ITEM-PRODUCT", "integration_ids": [unknown]}, 404),
        (SYNC, {"mapping_name": "ITEM-PRODUCT", "codes": ["2000", "9999"]}, 404),
        (
            SYNC,
            {"mapping_name": "ITEM-PRODUCT", "crm_ids": [some_uuid], "create_if_not_coupled": True},
            404,
        ),
        (SYNC, {"mapping_name": "ITEM-PRODUCT"}, 422),
        (SYNC, {"mapping_name": "ITEM-PRODUCT", "codes": ["2000"], "crm_ids": [some_uuid]}, 422),
        (SYNC, {"mapping_name": "ITEM-PRODUCT", "codes": [f"{n}" for n in range(101)]}, 422),
        (SYNC, {"mapping_name": "ITEM-PRODUCT", "codes": ["2000"], "direction": "up"}, 422),
        (
            SYNC,
            {"mapping_name": "UNIT OF MEASURE", "codes": ["PCS"], "direction": "from_crm"},
            400,
        ),
        (SYNC, {"mapping_name": "SALES_PRICE?", "codes": ["x"], "extra": 1}, 422),
        (TO_CRM, {"mapping_name": "ITEM-PRODUCT", "crm_ids": [some_uuid]}, 422),
        (TO_CRM, {"mapping_name": "SALESPEOPLE", "codes": ["JR"]}, 404),
        (TO_ERP, {"mapping_name": "UNIT OF MEASURE", "crm_ids": [some_uuid]}, 400),
        (TO_ERP, {"mapping_name": "ITEM-PRODUCT", "crm_ids": [some_uuid]}, 404),
        (TO_ERP, {"mapping_name": "ITEM-PRODUCT", "crm_ids": []}, 422),
    ):
        response = await client.post(url, json=body, headers=admin)
        assert response.status_code == status, (body, response.text)
        assert response.json()["detail"]
    response = await client.post(SYNC, json={"mapping_name": "ITEM-PRODUCT", "codes": ["2000"]},
                                 headers=reader)  # fmt: skip
    assert response.status_code == 403
    assert await _count(session, IntegrationSynchJob) == jobs  # nothing partial
    assert await _count(session, IntegrationRecord) == couplings
    assert _products(sandbox, "2000") == []

    blocked = (await session.exec(select(erp.Item).where(erp.Item.no == "2001"))).one()
    blocked.blocked = True
    await session.commit()
    body = await _post(client, SYNC, admin, mapping_name="ITEM-PRODUCT", codes=["2000", "2001"],
                       create_if_not_coupled=True)  # fmt: skip
    assert _results(body) == [[("to_crm", "inserted")], [("to_crm", "outside_filter")]]
    assert _products(sandbox, "2001") == []
    assert len(_products(sandbox, "2000")) == 1
    errors = await _count(session, IntegrationSynchJobError)
    body = await _post(client, SYNC, admin, mapping_name="ITEM-PRODUCT", codes=["2000"])
    assert _results(body) == [[("to_crm", "unchanged"), ("from_crm", "unchanged")]]
    assert await _count(session, IntegrationSynchJobError) == errors
    # A coupled and a new record together: the new one is only created (nothing to read).
    body = await _post(client, SYNC, admin, mapping_name="ITEM-PRODUCT", codes=["2000", "2002"],
                       create_if_not_coupled=True)  # fmt: skip
    assert _results(body) == [[("to_crm", "unchanged"), ("from_crm", "unchanged")],
                              [("to_crm", "inserted")]]  # fmt: skip
    assert len(_products(sandbox, "2002")) == 1


async def test_create_in_erp_couples_a_crm_account(
    client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession,
    sandbox: RunningSandbox, crm: DataverseClient,
) -> None:  # fmt: skip
    await enable(client, admin, sandbox)
    account = await crm.create("accounts", {"name": "Northwind", "customertypecode": 3})
    # The account's currency must be coupled first: the ERP customer refers to it by code.
    currency_id = (await crm.get("accounts", account))["_transactioncurrencyid_value"]
    await f.add(session, erp.Currency(code="USD"))
    await session.commit()
    usd = (await session.exec(select(erp.Currency))).one()
    couple = {"mapping_name": "CURRENCY", "integration_id": str(usd.system_id),
              "crm_id": currency_id}  # fmt: skip
    assert (await client.post(f"{API}/couplings", json=couple, headers=admin)).status_code == 200
    body = await _post(client, TO_ERP, admin, mapping_name="CUSTOMER", crm_ids=[str(account)])
    assert _results(body) == [[("from_crm", "inserted")]], body
    customer = (await session.exec(select(erp.Customer))).one()
    assert customer.name == "Northwind"
    assert body["records"][0]["integration_id"] == str(customer.system_id)
    again = await _post(client, TO_ERP, admin, mapping_name="CUSTOMER", crm_ids=[str(account)])
    assert _results(again) == [[("from_crm", "already_coupled")]]
    assert await _count(session, erp.Customer) == 1


async def test_match_creates_the_unmatched_and_syncs_the_coupled_when_the_mapping_says_so(
    client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession,
    sandbox: RunningSandbox, crm: DataverseClient,
) -> None:  # fmt: skip
    await enable(client, admin, sandbox)
    await f.add(session, f.unit("PCS"), f.unit("BOX"))
    await session.commit()
    pcs = await crm.create("uomschedules", {"name": "pcs", "baseuomname": "pcs"})
    body = await _post(client, f"{API}/couplings/match", admin, mapping_name="UNIT OF MEASURE")
    outcomes = {r["record"]: r["outcome"] for r in body["records"]}
    assert outcomes == {"unit_of_measure PCS": "coupled", "unit_of_measure BOX": "no_match"}
    (created,) = body["created"]
    assert [(r["record"], r["results"][0]["outcome"]) for r in created["records"]] == [
        ("unit of measure BOX", "inserted")]  # fmt: skip
    (synchronized,) = body["synchronized"]
    assert _results(synchronized) == [[("to_crm", "modified")]]
    schedules = {s["uomscheduleid"]: s["name"] for s in sandbox.state.rows("uomschedules")}
    assert sorted(schedules.values()) == ["BOX", "PCS"] and schedules[str(pcs)] == "PCS"
    assert await _count(session, IntegrationRecord) == 2
