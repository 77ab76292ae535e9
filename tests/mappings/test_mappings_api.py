"""Mappings over REST, the default set as data, and "use default synchronization setup"."""

from __future__ import annotations

import uuid

import httpx
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.mappings.default_mappings import (
    BASE_MAPPINGS,
    SALESORDER_ORDER_BIDIRECTIONAL,
    SALESORDER_ORDER_LEGACY,
    SOLINE_ORDERDETAIL,
)
from app.mappings.field_catalog import crm_fields, erp_fields
from app.mappings.table_mappings import validate_integration_table_filter, validate_table_filter
from app.models.erp import Item
from app.models.integration import (
    IntegrationRecord,
    IntegrationTableMapping,
    JobKind,
    JobQueueEntry,
    JobStatus,
)
from tests.connection.conftest import API, enable
from tests.fixtures.sandbox import RunningSandbox

ALL_DEFAULTS = (*BASE_MAPPINGS, SALESORDER_ORDER_LEGACY, SALESORDER_ORDER_BIDIRECTIONAL,
                SOLINE_ORDERDETAIL)  # fmt: skip


def test_every_default_names_real_fields_and_valid_filters() -> None:
    for default in ALL_DEFAULTS:
        erp, crm = erp_fields(default.table_name), crm_fields(default.integration_table)
        assert erp and crm, default.name
        for spec in default.fields:
            assert not spec.field or spec.field in erp, (default.name, spec.field)
            assert not spec.integration_field or spec.integration_field in crm, (
                default.name, spec.integration_field)  # fmt: skip
            assert spec.field or spec.integration_field
        pairs = [(s.field, s.integration_field) for s in default.fields]
        assert len(pairs) == len(set(pairs)), default.name
        assert (
            validate_table_filter(default.table_name, default.table_filter) == default.table_filter
        )
        validate_integration_table_filter(
            default.integration_table, default.integration_table_filter
        )


def test_the_seed_table_is_covered() -> None:
    by_name = {d.name: d for d in ALL_DEFAULTS}
    expected = {
        "UNIT OF MEASURE": ("unit_of_measure", "uomschedule", "to_crm"),
        "ITEM-PRODUCT": ("item", "product", "bidirectional"),
        "RESOURCE-PRODUCT": ("resource", "product", "bidirectional"),
        "CUSTPRCGRP-PRICE": ("customer_price_group", "pricelevel", "to_crm"),
        "SALESPRC-PRODPRICE": ("sales_price", "productpricelevel", "to_crm"),
        "OPPORTUNITY": ("opportunity", "opportunity", "bidirectional"),
        "POSTEDSALESINV-INV": ("sales_invoice_header", "invoice", "to_crm"),
        "POSTEDSALESLINE-INV": ("sales_invoice_line", "invoicedetail", "to_crm"),
    }
    for name, (table, entity, direction) in expected.items():
        default = by_name[name]
        assert (default.table_name, default.integration_table, default.direction) == (
            table, entity, direction)  # fmt: skip
    assert "producttypecode eq 3" in by_name["RESOURCE-PRODUCT"].integration_table_filter
    assert "sales_code ne ''" in by_name["SALESPRC-PRODPRICE"].table_filter
    assert (
        SALESORDER_ORDER_LEGACY.table_filter == "document_type eq 'order' and status eq 'released'"
    )


async def test_read_update_and_bad_input(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    reader: dict[str, str],
    session: AsyncSession,
    sandbox: RunningSandbox,
) -> None:
    await enable(client, admin, sandbox)
    listed = (await client.get(f"{API}/mappings", headers=reader)).json()
    assert "ITEM-PRODUCT" in {m["name"] for m in listed}
    response = await client.get(f"{API}/mappings/NOPE", headers=reader)
    assert response.status_code == 404 and "ITEM-PRODUCT" in response.json()["detail"]
    item = f"{API}/mappings/ITEM-PRODUCT"
    assert (await client.patch(item, json={"table_filter": ""}, headers=reader)).status_code == 403
    bad = [
        ({"table_filter": "colour eq 'red'"}, 400, "colour"),
        ({"table_filter": "blocked eq 'no'"}, 400, "blocked"),
        ({"integration_table_filter": "nosuchattr eq 1"}, 400, "nosuchattr"),
        ({"integration_table_filter": "producttypecode eq"}, 400, "syntax"),
        ({"dependency_filter": "UNIT OF MEASURE|GHOST"}, 400, "GHOST"),
        ({"dependency_filter": "ITEM-PRODUCT"}, 400, "itself"),
        ({"direction": "sideways"}, 422, "direction"),
        ({"name": "RENAMED"}, 422, "name"),
    ]
    for body, status, words in bad:
        response = await client.patch(item, json={**body, "synch_only_coupled_records": False},
                                      headers=admin)  # fmt: skip
        assert response.status_code == status, (body, response.text)
        assert words in response.json()["detail"], body
    response = await client.patch(f"{API}/mappings/SALESPEOPLE", json={"direction": "to_crm"},
                                  headers=admin)  # fmt: skip
    assert response.status_code == 400 and "email -> internalemailaddress" in response.text
    session.expire_all()
    mapping = (await session.exec(select(IntegrationTableMapping).where(
        IntegrationTableMapping.name == "ITEM-PRODUCT"))).one()  # fmt: skip
    assert mapping.synch_only_coupled_records is True
    body = {"table_filter": "blocked eq false and unit_price gt 0",
            "integration_table_filter": "statecode eq 0 and _defaultuomscheduleid_value ne null",
            "update_conflict_resolution": "get_update_from_crm"}  # fmt: skip
    response = await client.patch(item, json=body, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["update_conflict_resolution"] == "get_update_from_crm"


async def test_field_mappings_and_integration_fields(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    reader: dict[str, str],
    sandbox: RunningSandbox,
) -> None:
    await enable(client, admin, sandbox)
    fields = (await client.get(f"{API}/mappings/ITEM-PRODUCT/fields", headers=reader)).json()
    price = next(f for f in fields if f["integration_field"] == "price")
    url = f"{API}/mappings/ITEM-PRODUCT/fields/{price['id']}"
    assert (await client.get(url, headers=reader)).json()["field"] == "unit_price"
    missing = f"{API}/mappings/ITEM-PRODUCT/fields/{uuid.uuid4()}"
    assert (await client.get(missing, headers=reader)).status_code == 404
    assert (
        await client.get(f"{API}/mappings/ITEM-PRODUCT/fields/123", headers=reader)
    ).status_code == 422
    for body, status in (
        ({"direction": "from_crm", "status": "enabled"}, 200),
        ({"match_priority": 101}, 422),
        ({"constant_value": "1"}, 400),
        ({"field": "unit_cost"}, 422),
    ):
        response = await client.patch(url, json=body, headers=admin)
        assert response.status_code == status, (body, response.text)
    response = await client.patch(url, json={"status": "disabled"}, headers=admin)
    assert response.json()["status"] == "disabled"
    uom = next(f for f in fields if f["integration_field"] == "defaultuomscheduleid")
    response = await client.patch(
        f"{API}/mappings/ITEM-PRODUCT/fields/{uom['id']}",
        json={"use_for_match_based_coupling": True},
        headers=admin,
    )
    assert response.status_code == 400 and "lookup" in response.text
    both = (
        await client.get(f"{API}/mappings/ITEM-PRODUCT/integration-fields", headers=reader)
    ).json()
    erp = {f["name"]: f for f in both["erp_fields"]}
    crm = {f["name"]: f for f in both["crm_fields"]}
    assert erp["unit_price"]["type"] == "decimal" and erp["inventory"]["is_computed"] is True
    assert crm["defaultuomscheduleid"]["filter_name"] == "_defaultuomscheduleid_value"
    assert crm["producttypecode"]["type"] == "choice"
    assert (
        await client.get(f"{API}/mappings/X/integration-fields", headers=reader)
    ).status_code == 404


async def test_reset_defaults_keeps_couplings_and_user_defined_mappings(
    client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession, sandbox: RunningSandbox
) -> None:
    await enable(client, admin, sandbox)
    item = Item(no="1000", description="Bike")
    session.add(item)
    session.add(
        IntegrationTableMapping(
            name="MY-ITEMS", table_name="item", integration_table="product", user_defined=True
        )
    )
    session.add(JobQueueEntry(kind=JobKind.mapping_sync, mapping_name="MY-ITEMS"))
    await session.flush()
    session.add(IntegrationRecord(table_name="item", integration_id=item.system_id,
                                  crm_table="product", crm_id=uuid.uuid4()))  # fmt: skip
    await session.commit()
    await client.patch(f"{API}/mappings/ITEM-PRODUCT", json={"table_filter": ""}, headers=admin)
    response = await client.post(f"{API}/mappings/reset-defaults", headers=admin)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["kept_user_defined"] == ["MY-ITEMS"] and "ITEM-PRODUCT" in result["mappings"]
    session.expire_all()
    mapping = (await session.exec(select(IntegrationTableMapping).where(
        IntegrationTableMapping.name == "ITEM-PRODUCT"))).one()  # fmt: skip
    assert mapping.table_filter == "blocked eq false"
    assert len(list(await session.exec(select(IntegrationRecord)))) == 1
    jobs = list(await session.exec(select(JobQueueEntry)))
    assert any(j.mapping_name == "MY-ITEMS" for j in jobs)
    assert sum(j.mapping_name == "ITEM-PRODUCT" for j in jobs) == 1
    running = next(j for j in jobs if j.mapping_name == "CUSTOMER")
    running.status = JobStatus.in_process
    await session.commit()
    response = await client.post(f"{API}/mappings/reset-defaults", headers=admin)
    assert response.status_code == 409 and "CUSTOMER" in response.json()["detail"]
