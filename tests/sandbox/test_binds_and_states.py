"""Lookups (``@odata.bind`` incl. polymorphic suffixes and alternate keys, ``$ref``) and the
option values and state rules Dataverse documents."""

from __future__ import annotations

import httpx

from app.sandbox.seed import SEEDED_ROLES
from tests.fixtures.sandbox import RunningSandbox
from tests.sandbox.conftest import entity_id, error_of

ANNOTATIONS = {"Prefer": 'odata.include-annotations="*"'}


async def _active_product(api: httpx.AsyncClient, number: str) -> str:
    product = entity_id(await api.post("products", json={"name": number, "productnumber": number}))
    activated = await api.patch(f"products({product})", json={"statecode": 0, "statuscode": 1})
    assert activated.status_code == 204
    return product


async def test_polymorphic_bind_reads_back_as_value(api: httpx.AsyncClient) -> None:
    account = entity_id(await api.post("accounts", json={"name": "A"}))
    order = await api.post(
        "salesorders",
        json={"name": "SO-1", "customerid_account@odata.bind": f"/accounts({account})"},
    )
    assert order.status_code == 204
    row = (await api.get(f"salesorders({entity_id(order)})", headers=ANNOTATIONS)).json()
    assert row["_customerid_value"] == account
    assert row["_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "account"
    plain = (await api.get(f"salesorders({entity_id(order)})")).json()
    assert "_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname" not in plain


async def test_bad_binds_are_refused(api: httpx.AsyncClient) -> None:
    account = entity_id(await api.post("accounts", json={"name": "A"}))
    unsuffixed = await api.post(
        "salesorders", json={"customerid@odata.bind": f"/accounts({account})"}
    )
    assert unsuffixed.status_code == 400
    assert "undeclared property 'customerid'" in error_of(unsuffixed)["message"]
    wrong_case = await api.post("quotes", json={"PriceLevelId@odata.bind": f"/accounts({account})"})
    assert wrong_case.status_code == 400
    wrong_target = await api.post(
        "contacts", json={"parentcustomerid_contact@odata.bind": f"/accounts({account})"}
    )
    assert wrong_target.status_code == 400
    missing = await api.post(
        "contacts",
        json={
            "parentcustomerid_account@odata.bind": "/accounts(00000000-0000-0000-0000-000000000001)"
        },
    )
    assert missing.status_code == 404 and error_of(missing)["code"] == "0x80040217"
    as_value = await api.post("contacts", json={"_parentcustomerid_value": account})
    assert as_value.status_code == 400
    primitive = await api.post("quotes", json={"pricelevelid": account})
    assert primitive.status_code == 400


async def test_bind_by_alternate_key_and_clear(
    api: httpx.AsyncClient, sandbox: RunningSandbox
) -> None:
    product = await _active_product(api, "ITEM-9")
    level = entity_id(await api.post("pricelevels", json={"name": "Default"}))
    item = await api.post(
        "productpricelevels",
        json={
            "productid@odata.bind": "/products(productnumber='ITEM-9')",
            "pricelevelid@odata.bind": f"{sandbox.api_url}pricelevels(name='Default')",
            "amount": 12.5,
            "pricingmethodcode": 1,
        },
    )
    assert item.status_code == 204
    url = f"productpricelevels({entity_id(item)})"
    row = (await api.get(url)).json()
    assert row["_productid_value"] == product and row["_pricelevelid_value"] == level
    assert (await api.patch(url, json={"pricelevelid@odata.bind": None})).status_code == 204
    assert (await api.get(url)).json()["_pricelevelid_value"] is None
    assert (
        await api.put(f"{url}/pricelevelid/$ref", json={"@odata.id": f"pricelevels({level})"})
    ).status_code == 204
    assert (await api.get(url)).json()["_pricelevelid_value"] == level
    assert (await api.delete(f"{url}/pricelevelid/$ref")).status_code == 204
    assert (await api.get(url)).json()["_pricelevelid_value"] is None


async def test_role_association_with_ref(api: httpx.AsyncClient, sandbox: RunningSandbox) -> None:
    user = sandbox.state.user_id
    role = SEEDED_ROLES["Integration Administrator"]
    link = f"systemusers({user})/systemuserroles_association/$ref"
    response = await api.post(link, json={"@odata.id": f"{sandbox.api_url}roles({role})"})
    assert response.status_code == 204
    again = await api.post(link, json={"@odata.id": f"{sandbox.api_url}roles({role})"})
    assert again.status_code == 412
    roles = (await api.get(f"systemusers({user})/systemuserroles_association?$select=name")).json()
    assert [r["name"] for r in roles["value"]] == ["Integration Administrator"]
    removed = await api.delete(f"systemusers({user})/systemuserroles_association({role})/$ref")
    assert removed.status_code == 204
    assert sandbox.state.associated("systemuserroles_association", user) == []


async def test_products_start_draft_and_must_be_activated(api: httpx.AsyncClient) -> None:
    product = entity_id(
        await api.post("products", json={"name": "P", "productnumber": "P", "producttypecode": 1})
    )
    row = (await api.get(f"products({product})")).json()
    assert (row["statecode"], row["statuscode"]) == (2, 0)  # Draft
    order = entity_id(await api.post("salesorders", json={"name": "SO"}))
    line = {
        "salesorderid@odata.bind": f"/salesorders({order})",
        "productid@odata.bind": f"/products({product})",
        "quantity": 1,
    }
    refused = await api.post("salesorderdetails", json=line)
    assert refused.status_code == 400 and "not active" in error_of(refused)["message"]
    bad_status = await api.patch(f"products({product})", json={"statecode": 0, "statuscode": 2})
    assert bad_status.status_code == 400
    assert "is not a valid status code" in error_of(bad_status)["message"]
    assert (await api.patch(f"products({product})", json={"statecode": 0})).status_code == 204
    assert (await api.get(f"products({product})")).json()["statuscode"] == 1
    assert (await api.post("salesorderdetails", json=line)).status_code == 204
    born_active = await api.post("products", json={"name": "Q", "statecode": 0})
    assert born_active.status_code == 400


async def test_only_active_orders_are_editable(api: httpx.AsyncClient) -> None:
    product = await _active_product(api, "X")
    order = entity_id(await api.post("salesorders", json={"name": "SO", "freightamount": 5}))
    url = f"salesorders({order})"
    line = await api.post("salesorderdetails", json={
        "salesorderid@odata.bind": f"/{url}", "productid@odata.bind": f"/products({product})",
        "quantity": 3, "priceperunit": 10, "manualdiscountamount": 2,
    })  # fmt: skip
    detail = (await api.get(f"salesorderdetails({entity_id(line)})")).json()
    assert (detail["baseamount"], detail["extendedamount"]) == (30, 28)
    totals = (await api.get(url)).json()
    assert (totals["totallineitemamount"], totals["totalamount"]) == (28, 33)
    assert (await api.patch(url, json={"statecode": 1})).status_code == 204  # submit
    submitted = (await api.get(url)).json()
    assert (submitted["statecode"], submitted["statuscode"]) == (1, 3)
    edit = await api.patch(url, json={"name": "changed"})
    assert edit.status_code == 400
    add_line = await api.post(
        "salesorderdetails", json={"salesorderid@odata.bind": f"/{url}", "quantity": 1}
    )
    assert add_line.status_code == 400
    reopen = await api.patch(
        url, json={"statecode": 0, "statuscode": 2, "lastbackofficesubmit": "2025-01-01"}
    )
    assert reopen.status_code == 204
    assert (await api.patch(url, json={"name": "changed"})).status_code == 204


async def test_quotes_and_opportunities(api: httpx.AsyncClient) -> None:
    quote = f"quotes({entity_id(await api.post('quotes', json={'name': 'Q'}))})"
    assert (await api.patch(quote, json={"statecode": 1, "statuscode": 2})).status_code == 204
    assert (await api.patch(quote, json={"name": "edited"})).status_code == 400  # only drafts
    opportunity = f"opportunities({entity_id(await api.post('opportunities', json={'name': 'O'}))})"
    won = await api.patch(opportunity, json={"statecode": 1, "statuscode": 3})
    assert won.status_code == 400 and "WinOpportunity" in error_of(won)["message"]
    close = {"OpportunityClose": {"subject": "won", "opportunityid@odata.bind": f"/{opportunity}"}}
    assert (await api.post("WinOpportunity", json={**close, "Status": 3})).status_code == 204
    closed = (await api.get(opportunity)).json()
    assert (closed["statecode"], closed["statuscode"]) == (1, 3)
    assert (await api.patch(opportunity, json={"name": "late edit"})).status_code == 400
    assert (await api.post("LoseOpportunity", json={**close, "Status": 4})).status_code == 400


async def test_option_values_are_validated(api: httpx.AsyncClient) -> None:
    bad = await api.post("products", json={"name": "P", "producttypecode": 7})
    assert bad.status_code == 400
    error = error_of(bad)
    assert error["code"] == "0x80044331" and "producttypecode" in error["message"]
    for code in (1, 2, 3, 4):
        assert (
            await api.post("products", json={"name": f"P{code}", "producttypecode": code})
        ).status_code == 204
    level = await api.post(
        "pricelevels", json={"name": "L"}, headers={"Prefer": "return=representation"}
    )
    assert (level.json()["statecode"], level.json()["statuscode"]) == (0, 100001)
    invoice = await api.post(
        "invoices", json={"name": "I"}, headers={"Prefer": "return=representation"}
    )
    invoice_url = f"invoices({invoice.json()['invoiceid']})"
    assert (
        await api.patch(invoice_url, json={"statecode": 2, "statuscode": 100001})
    ).status_code == 204
    assert (await api.patch(invoice_url, json={"name": "paid, read-only"})).status_code == 400


async def test_unit_group_creates_its_base_unit(api: httpx.AsyncClient) -> None:
    group = entity_id(await api.post("uomschedules", json={"name": "PCS", "baseuomname": "PCS"}))
    units = (await api.get(f"uoms?$filter=_uomscheduleid_value eq {group}")).json()["value"]
    assert len(units) == 1
    assert (
        units[0]["name"] == "PCS"
        and units[0]["isschedulebaseuom"] is True
        and units[0]["quantity"] == 1
    )


async def test_note_gets_object_type_and_size(api: httpx.AsyncClient) -> None:
    account = entity_id(await api.post("accounts", json={"name": "A"}))
    note = await api.post(
        "annotations",
        json={
            "subject": "s",
            "notetext": "t",
            "objectid_account@odata.bind": f"/accounts({account})",
        },
        headers={"Prefer": "return=representation"},
    )
    body = note.json()
    assert (body["objecttypecode"], body["filesize"], body["isdocument"]) == ("account", 0, False)
    assert body["_objectid_value"] == account
