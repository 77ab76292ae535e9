"""Every client operation against the sandbox over real HTTP."""

from __future__ import annotations

import uuid

import httpx
import pytest

from app.dataverse import DataverseClient, bind, bind_field, lookup_field, read_lookup
from app.dataverse.errors import (
    ConcurrencyError,
    DuplicateRecordError,
    InvalidRecordError,
    NotFoundError,
)
from tests.dataverse.conftest import client_for
from tests.fixtures.sandbox import RunningSandbox


async def test_whoami_names_the_application_user(
    crm: DataverseClient, dv_sandbox: RunningSandbox
) -> None:
    me = await crm.whoami()
    assert str(me.user_id) == dv_sandbox.state.user_id
    assert str(me.organization_id) == dv_sandbox.state.identity.organization_id


async def test_create_uses_the_client_id_and_reads_back(
    crm: DataverseClient, dv_sandbox: RunningSandbox
) -> None:
    chosen = uuid.uuid4()
    product_id = await crm.create("products", {"name": "Bike", "productnumber": "1000"}, id=chosen)
    assert product_id == chosen
    by_id = await crm.get("products", chosen, select=["name", "statecode"])
    assert by_id["name"] == "Bike" and by_id["statecode"] == 2  # products start Draft
    by_key = await crm.get("products", {"productnumber": "1000"})
    assert by_key["productid"] == str(chosen)
    assert by_key["_modifiedby_value"] == dv_sandbox.state.user_id
    assert dv_sandbox.state.count("products") == 1


async def test_create_with_an_existing_id_on_first_attempt_is_a_conflict(
    crm: DataverseClient,
) -> None:
    account_id = await crm.create("accounts", {"name": "A"})
    with pytest.raises(DuplicateRecordError) as caught:
        await crm.create("accounts", {"name": "again"}, id=account_id)
    assert caught.value.is_record_level and not caught.value.after_ambiguous_attempt
    assert caught.value.code  # Dataverse's error.code travels with the exception


async def test_update_never_creates_and_checks_row_versions(crm: DataverseClient) -> None:
    account_id = await crm.create("accounts", {"name": "Old"})
    await crm.update("accounts", account_id, {"name": "New"})
    record = await crm.get("accounts", account_id)
    assert record["name"] == "New"
    with pytest.raises(NotFoundError) as missing:
        await crm.update("accounts", uuid.uuid4(), {"name": "ghost"})
    assert missing.value.status_code == 404 and missing.value.code == "0x80040217"
    assert "PATCH accounts(" in str(missing.value)
    stale = 'W/"1"'
    with pytest.raises(ConcurrencyError):
        await crm.update("accounts", account_id, {"name": "x"}, etag=stale)
    await crm.update("accounts", account_id, {"name": "Newer"}, etag=record["@odata.etag"])
    assert (await crm.get("accounts", account_id))["name"] == "Newer"


async def test_upsert_by_id_and_by_alternate_key(
    crm: DataverseClient, dv_sandbox: RunningSandbox
) -> None:
    """Dataverse names a record upserted by alternate key by its key values in
    OData-EntityId (no GUID there), so the client must get the id another way: it asks for
    the representation's primary key and returns that id, on create and on update alike."""
    made = await crm.upsert("products", {"productnumber": "P-1"}, {"name": "First"})
    assert made is not None
    assert dv_sandbox.state.rows("products")[0]["productid"] == str(made)
    again = await crm.upsert("products", {"productnumber": "P-1"}, {"name": "Second"})
    assert again == made
    assert (await crm.get("products", made))["name"] == "Second"
    chosen = uuid.uuid4()
    assert await crm.upsert("accounts", chosen, {"name": "By id"}) == chosen
    await crm.upsert("accounts", chosen, {"name": "By id, updated"})
    assert dv_sandbox.state.get("accounts", str(chosen))["name"] == "By id, updated"  # type: ignore[index]
    assert dv_sandbox.state.count("products") == 1


async def test_delete_and_missing_ok(crm: DataverseClient) -> None:
    account_id = await crm.create("accounts", {"name": "Doomed"})
    await crm.delete("accounts", account_id)
    with pytest.raises(NotFoundError):
        await crm.get("accounts", account_id)
    with pytest.raises(NotFoundError):
        await crm.delete("accounts", account_id)
    await crm.delete("accounts", account_id, missing_ok=True)


async def test_set_state_follows_the_state_rules(crm: DataverseClient) -> None:
    product_id = await crm.create("products", {"name": "Draft", "productnumber": "D1"})
    await crm.set_state("products", product_id, statecode=0, statuscode=1)  # publish
    assert (await crm.get("products", product_id, select=["statecode"]))["statecode"] == 0
    account_id = await crm.create("accounts", {"name": "Customer"})
    order_id = await crm.create(
        "salesorders",
        {"name": "SO-1", bind_field("customerid_account"): bind("accounts", account_id)},
    )
    await crm.set_state("salesorders", order_id, statecode=1, statuscode=3)  # submit
    order = await crm.get("salesorders", order_id)
    assert (order["statecode"], order["statuscode"]) == (1, 3)
    with pytest.raises(InvalidRecordError) as refused:  # only Active orders are editable
        await crm.update("salesorders", order_id, {"name": "changed"})
    assert refused.value.is_record_level


async def test_lookups_bind_by_id_and_alternate_key_and_read_as_value(
    crm: DataverseClient,
) -> None:
    schedule_id = await crm.create("uomschedules", {"name": "Units", "baseuomname": "PCS"})
    uom_id = await crm.create(
        "uoms",
        {
            "name": "BOX",
            "quantity": 12,
            "uomscheduleid@odata.bind": bind("uomschedules", schedule_id),
        },
    )
    uom = await crm.get("uoms", uom_id)
    assert read_lookup(uom, "uomscheduleid") == schedule_id
    await crm.create("products", {"name": "Bolt", "productnumber": "B-1"})
    account_id = await crm.create("accounts", {"name": "Holder"})
    note_id = await crm.create(
        "annotations",
        {
            "subject": "hi",
            "objectid_product@odata.bind": bind("products", {"productnumber": "B-1"}),
        },
    )
    note = await crm.get("annotations", note_id, select=[lookup_field("objectid")])
    product = await crm.get("products", {"productnumber": "B-1"})
    assert note[lookup_field("objectid")] == product["productid"]
    assert account_id != note_id


async def test_associate_and_disassociate(crm: DataverseClient, dv_sandbox: RunningSandbox) -> None:
    me = (await crm.whoami()).user_id
    role = next(iter(await _roles(crm)))
    await crm.associate(
        "systemusers", me, "systemuserroles_association", target_set="roles", target_key=role
    )
    assert str(role) in dv_sandbox.state.associated("systemuserroles_association", str(me))
    with pytest.raises(DuplicateRecordError):  # already linked, and not by a replay of ours
        await crm.associate(
            "systemusers", me, "systemuserroles_association", target_set="roles", target_key=role
        )
    await crm.disassociate("systemusers", me, "systemuserroles_association", target_key=role)
    assert dv_sandbox.state.associated("systemuserroles_association", str(me)) == []
    # A single-valued lookup through $ref (PUT) and its removal.
    account_id = await crm.create("accounts", {"name": "Parent"})
    contact_id = await crm.create("contacts", {"firstname": "Pat"})
    await crm.associate(
        "accounts", account_id, "primarycontactid", target_set="contacts",
        target_key=contact_id, is_single_valued=True,
    )  # fmt: skip
    assert read_lookup(await crm.get("accounts", account_id), "primarycontactid") == contact_id
    await crm.disassociate("accounts", account_id, "primarycontactid")
    assert read_lookup(await crm.get("accounts", account_id), "primarycontactid") is None


async def _roles(crm: DataverseClient) -> list[uuid.UUID]:
    return [uuid.UUID(row["roleid"]) async for row in crm.query("roles", select=["roleid"])]


async def test_query_select_filter_orderby_top_and_paging(crm: DataverseClient) -> None:
    for number in range(7):
        await crm.create("accounts", {"name": f"Acc {number}", "accountnumber": f"N{number}"})
    rows = [
        row
        async for row in crm.query(
            "accounts", select=["name", "accountnumber"], filter="accountnumber ne 'N3'",
            orderby="accountnumber desc", page_size=2,
        )
    ]  # fmt: skip
    assert [r["accountnumber"] for r in rows] == ["N6", "N5", "N4", "N2", "N1", "N0"]
    assert set(rows[0]) >= {"name", "accountnumber", "accountid"}
    assert "createdon" not in rows[0]  # $select honoured
    top_server = [r async for r in crm.query("accounts", orderby=["accountnumber"], top=3)]
    assert [r["accountnumber"] for r in top_server] == ["N0", "N1", "N2"]
    top_paged = [
        r async for r in crm.query("accounts", orderby="accountnumber", top=3, page_size=2)
    ]
    assert [r["accountnumber"] for r in top_paged] == ["N0", "N1", "N2"]


async def test_query_errors_are_typed(crm: DataverseClient) -> None:
    with pytest.raises(InvalidRecordError) as bad:
        _ = [r async for r in crm.query("accounts", filter="name eqq 'x'")]
    assert bad.value.status_code == 400 and bad.value.code == "0x80060888"
    with pytest.raises(NotFoundError):
        _ = [r async for r in crm.query("nosuchset")]


async def test_standard_headers_on_the_wire(dv_sandbox: RunningSandbox) -> None:
    seen: list[httpx.Request] = []

    class Recording(httpx.AsyncHTTPTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return await super().handle_async_request(request)

    async with client_for(dv_sandbox, transport=Recording()) as client:
        await client.create("accounts", {"name": "H"})
        _ = [r async for r in client.query("accounts", page_size=10)]
    api_requests = [r for r in seen if "/api/data/" in r.url.path]
    assert len(api_requests) == 2
    for request in api_requests:
        assert request.headers["Accept"] == "application/json"
        assert request.headers["OData-MaxVersion"] == "4.0"
        assert request.headers["OData-Version"] == "4.0"
        assert request.headers["Authorization"].startswith("Bearer ")
    create, read = api_requests
    assert "If-None-Match" not in create.headers  # would mean create-only on a write
    assert read.headers["Prefer"] == "odata.maxpagesize=10"
