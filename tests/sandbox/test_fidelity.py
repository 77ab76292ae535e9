"""Where the sandbox must not be friendlier than Dataverse: each answer a client could
rely on here and not against a real org (issue 17), over HTTP."""

from __future__ import annotations

import httpx

from tests.fixtures.sandbox import RunningSandbox
from tests.sandbox.conftest import entity_id, error_of

JSON = "application/json; odata.metadata=minimal"


async def _account_with_contact(api: httpx.AsyncClient) -> tuple[str, str]:
    contact = entity_id(await api.post("contacts", json={"firstname": "Ann", "lastname": "Lee"}))
    body = {"name": "Contoso", "primarycontactid@odata.bind": f"/contacts({contact})"}
    return entity_id(await api.post("accounts", json=body)), contact


async def test_expand_a_lookup_with_nested_select(api: httpx.AsyncClient) -> None:
    """Dataverse expands a single-valued navigation property inline as an object (null when
    the lookup is empty), with only the columns its nested $select names plus the key."""
    account, contact = await _account_with_contact(api)
    row = (
        await api.get(
            f"accounts({account})",
            params={"$select": "name", "$expand": "primarycontactid($select=fullname)"},
        )
    ).json()
    expanded = row["primarycontactid"]
    assert expanded["fullname"] == "Ann Lee" and expanded["contactid"] == contact
    assert "firstname" not in expanded and "@odata.etag" in expanded
    listed = (
        await api.get("accounts", params={"$expand": "parentaccountid($select=name),createdby"})
    ).json()["value"][0]
    assert listed["parentaccountid"] is None
    assert listed["createdby"]["systemuserid"] == listed["_createdby_value"]


async def test_expand_a_collection_and_a_polymorphic_lookup(api: httpx.AsyncClient) -> None:
    """Collection-valued navigation properties expand to an array; a polymorphic lookup is
    expanded by its target-suffixed name (customerid_account), null for the other target."""
    account, contact = await _account_with_contact(api)
    bind = {"name": "Deal", "customerid_account@odata.bind": f"/accounts({account})"}
    await api.post("opportunities", json=bind)
    row = (
        await api.get(
            "opportunities",
            params={"$expand": "customerid_account($select=name),customerid_contact"},
        )
    ).json()["value"][0]
    assert row["customerid_account"]["name"] == "Contoso" and row["customerid_contact"] is None
    children = (
        await api.get(
            f"accounts({account})",
            params={"$expand": "account_opportunity_customerid($select=name)"},
        )
    ).json()
    assert [o["name"] for o in children["account_opportunity_customerid"]] == ["Deal"]


async def test_expand_and_apply_are_never_ignored(api: httpx.AsyncClient) -> None:
    """Dataverse's OData parser refuses an $expand of a name that is no navigation property
    (400); what the sandbox does not implement ($apply, nested $filter) is refused with 501
    on single reads, collections and write representations alike, never answered 200."""
    account, _ = await _account_with_contact(api)
    unknown = await api.get(f"accounts({account})", params={"$expand": "nosuchthing"})
    assert unknown.status_code == 400
    assert "Could not find a property named 'nosuchthing'" in error_of(unknown)["message"]
    plain = await api.get(f"accounts({account})", params={"$expand": "name"})
    assert plain.status_code == 400 and "not a navigation property" in error_of(plain)["message"]
    for params in ({"$apply": "groupby((name))"}, {"$expand": "createdby($filter=true)"}):
        assert (await api.get(f"accounts({account})", params=params)).status_code == 501
        assert (await api.get("accounts", params=params)).status_code == 501
        posted = await api.post(
            "accounts",
            params=params,
            json={"name": "X"},
            headers={"Prefer": "return=representation"},
        )
        assert posted.status_code == 501
    created = await api.post(
        "accounts",
        params={"$select": "name", "$expand": "primarycontactid($select=fullname)"},
        json={"name": "Rep"},
        headers={"Prefer": "return=representation"},
    )
    assert created.status_code == 201 and created.json()["primarycontactid"] is None


async def test_no_304_with_annotations_or_expand(api: httpx.AsyncClient) -> None:
    """A conditional GET answers 304 only without $expand and without requested
    annotations; Dataverse never answers 304 to those, it sends the row."""
    account, _ = await _account_with_contact(api)
    first = await api.get(f"accounts({account})")
    tag = {"If-None-Match": first.headers["ETag"]}
    assert (await api.get(f"accounts({account})", headers=tag)).status_code == 304
    annotated = {**tag, "Prefer": 'odata.include-annotations="*"'}
    assert (await api.get(f"accounts({account})", headers=annotated)).status_code == 200
    expanded = await api.get(
        f"accounts({account})", headers=tag, params={"$expand": "primarycontactid"}
    )
    assert expanded.status_code == 200


async def test_a_body_id_that_differs_from_the_url_is_refused(
    api: httpx.AsyncClient, sandbox: RunningSandbox
) -> None:
    """Dataverse refuses a PATCH whose body names another record id than the URL (400):
    neither the addressed record nor the body's id is written or created."""
    first = entity_id(await api.post("accounts", json={"name": "First"}))
    other = "6b1f2e2a-9c1d-4a55-8f00-000000000001"
    moved = await api.patch(f"accounts({first})", json={"accountid": other, "name": "Moved"})
    assert moved.status_code == 400
    absent = "6b1f2e2a-9c1d-4a55-8f00-000000000002"
    created = await api.patch(f"accounts({absent})", json={"accountid": other, "name": "New"})
    assert created.status_code == 400
    assert sandbox.state.get("accounts", other) is None
    assert sandbox.state.get("accounts", absent) is None
    assert sandbox.state.get("accounts", first)["name"] == "First"  # type: ignore[index]
    same = await api.patch(f"accounts({first})", json={"accountid": first.upper(), "name": "Ok"})
    assert same.status_code == 204


async def test_count_takes_only_true_or_false(api: httpx.AsyncClient) -> None:
    """OData's $count is a boolean: another value is a bad request."""
    response = await api.get("accounts", params={"$count": "yes"})
    assert response.status_code == 400
    assert error_of(response)["message"] == "'yes' is not a valid count option."
    assert (await api.get("accounts", params={"$count": "false"})).status_code == 200


async def test_total_record_count_is_minus_one_without_count(api: httpx.AsyncClient) -> None:
    """Asked for with Prefer but without $count=true, Dataverse still sends the total record
    count annotations: -1 and not exceeded."""
    await api.post("accounts", json={"name": "One"})
    prefer = {
        "Prefer": 'odata.include-annotations="Microsoft.Dynamics.CRM.totalrecordcount,'
        'Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"'
    }
    body = (await api.get("accounts", headers=prefer)).json()
    assert body["@Microsoft.Dynamics.CRM.totalrecordcount"] == -1
    assert body["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] is False
    assert "@odata.count" not in body
    counted = (await api.get("accounts", headers=prefer, params={"$count": "true"})).json()
    assert counted["@Microsoft.Dynamics.CRM.totalrecordcount"] == 1 and counted["@odata.count"] == 1


async def test_errors_carry_the_odata_json_content_type(api: httpx.AsyncClient) -> None:
    """Dataverse sends error bodies as OData JSON, the same content type as its data."""
    missing = await api.get("accounts(00000000-0000-0000-0000-000000000001)")
    assert missing.status_code == 404 and missing.headers["Content-Type"] == JSON
    bad = await api.get("accounts", params={"$select": "nosuch"})
    assert bad.status_code == 400 and bad.headers["Content-Type"] == JSON
