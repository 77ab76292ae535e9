"""Create, retrieve, update, upsert, delete: status codes, headers and error bodies as
Dataverse's Web API documents them."""

from __future__ import annotations

import uuid

import httpx

from tests.fixtures.sandbox import RunningSandbox
from tests.sandbox.conftest import entity_id, error_of


async def test_create_answers_204_with_odata_entityid(
    api: httpx.AsyncClient, sandbox: RunningSandbox
) -> None:
    response = await api.post("accounts", json={"name": "Contoso"})
    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["OData-Version"] == "4.0"
    assert response.headers["OData-EntityId"].startswith(f"{sandbox.api_url}accounts(")
    row = sandbox.state.get("accounts", entity_id(response))
    assert row is not None and row["name"] == "Contoso"


async def test_return_representation_answers_201_with_body(
    api: httpx.AsyncClient, sandbox: RunningSandbox
) -> None:
    response = await api.post(
        "accounts?$select=name",
        json={"name": "Fabrikam"},
        headers={"Prefer": "return=representation"},
    )
    assert response.status_code == 201
    assert response.headers["Preference-Applied"] == "return=representation"
    assert "OData-EntityId" not in response.headers
    body = response.json()
    assert body["@odata.context"].endswith("$metadata#accounts(name)/$entity")
    assert body["@odata.etag"] == response.headers["ETag"]
    assert body["@odata.etag"].startswith('W/"')
    assert set(body) == {"@odata.context", "@odata.etag", "name", "accountid"}


async def test_server_sets_system_columns(api: httpx.AsyncClient, sandbox: RunningSandbox) -> None:
    created = await api.post("contacts", json={"firstname": "Ann", "lastname": "Lee"})
    row = (await api.get(f"contacts({entity_id(created)})")).json()
    assert row["fullname"] == "Ann Lee"
    assert row["_modifiedby_value"] == row["_createdby_value"] == sandbox.state.user_id
    assert row["_ownerid_value"] == sandbox.state.user_id
    assert row["createdon"].endswith("Z") and row["modifiedon"] == row["createdon"]
    assert row["@odata.etag"] == f'W/"{row["versionnumber"]}"'
    assert row["_transactioncurrencyid_value"] == sandbox.state.identity.base_currency_id


async def test_client_supplied_id_is_kept_and_a_duplicate_is_refused(
    api: httpx.AsyncClient,
) -> None:
    record_id = str(uuid.uuid4())
    first = await api.post(
        "products", json={"productid": record_id, "name": "P", "productnumber": "P-1"}
    )
    assert entity_id(first) == record_id
    again = await api.post("products", json={"productid": record_id, "name": "P"})
    assert again.status_code == 412
    assert error_of(again)["code"] == "0x80040237"
    same_key = await api.post("products", json={"name": "Q", "productnumber": "p-1"})
    assert same_key.status_code == 412  # alternate keys are unique, case-insensitively
    assert error_of(same_key)["code"] == "0x80060892"


async def test_update_with_if_match(api: httpx.AsyncClient) -> None:
    created = await api.post("accounts", json={"name": "Old"})
    url = f"accounts({entity_id(created)})"
    first = await api.get(url)
    etag = first.headers["ETag"]
    updated = await api.patch(url, json={"name": "New"}, headers={"If-Match": etag})
    assert updated.status_code == 204
    assert updated.headers["OData-EntityId"].endswith(url)
    stale = await api.patch(url, json={"name": "Newer"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert "RowVersion" in error_of(stale)["message"]
    after = (await api.get(url)).json()
    assert after["name"] == "New"
    assert after["versionnumber"] > first.json()["versionnumber"]
    unchanged = await api.get(url, headers={"If-None-Match": after["@odata.etag"]})
    assert unchanged.status_code == 304


async def test_update_of_missing_record_with_if_match_star_is_404(api: httpx.AsyncClient) -> None:
    missing = str(uuid.uuid4())
    response = await api.patch(
        f"accounts({missing})", json={"name": "x"}, headers={"If-Match": "*"}
    )
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "0x80040217"
    assert missing in error["message"]


async def test_upsert_creates_then_updates(api: httpx.AsyncClient) -> None:
    record_id = str(uuid.uuid4())
    prefer = {"Prefer": "return=representation"}
    created = await api.patch(f"accounts({record_id})", json={"name": "A"}, headers=prefer)
    assert created.status_code == 201
    assert created.json()["accountid"] == record_id
    updated = await api.patch(f"accounts({record_id})", json={"name": "B"}, headers=prefer)
    assert updated.status_code == 200
    assert updated.json()["name"] == "B"
    plain = await api.patch(f"accounts({record_id})", json={"name": "C"})
    assert plain.status_code == 204 and plain.headers["OData-EntityId"].endswith(f"({record_id})")
    create_only = await api.patch(
        f"accounts({record_id})", json={"name": "D"}, headers={"If-None-Match": "*"}
    )
    assert create_only.status_code == 412
    assert error_of(create_only)["message"] == "A record with matching key values already exists."


async def test_alternate_key_in_url_and_upsert(
    api: httpx.AsyncClient, sandbox: RunningSandbox
) -> None:
    """An upsert addressed by alternate key answers with the key values in OData-EntityId
    (Dataverse does not put the GUID there), whether it created or updated the row."""
    created = await api.patch("products(productnumber='ITEM-1')", json={"name": "Bike"})
    assert created.status_code == 204
    assert created.headers["OData-EntityId"] == f"{api.base_url}products(productnumber='ITEM-1')"
    row = (await api.get("products(productnumber='item-1')")).json()
    assert row["productnumber"] == "ITEM-1" and row["name"] == "Bike"
    updated = await api.patch("products(productnumber='ITEM-1')", json={"name": "Bicycle"})
    assert updated.headers["OData-EntityId"] == created.headers["OData-EntityId"]
    quoted = await api.patch("accounts(accountnumber='O''Brien')", json={"name": "O'Brien"})
    assert quoted.headers["OData-EntityId"].endswith("accounts(accountnumber='O''Brien')")
    assert sandbox.state.count("products") == 1
    assert sandbox.state.rows("products")[0]["productid"] == row["productid"]
    unknown_key = await api.get("products(name='Bicycle')")
    assert unknown_key.status_code == 400
    assert "key in the request URI is not valid" in error_of(unknown_key)["message"]
    named_user_key = await api.get(f"systemusers(systemuserid={sandbox.state.user_id})")
    assert named_user_key.status_code == 400


async def test_delete(api: httpx.AsyncClient) -> None:
    created = await api.post("accounts", json={"name": "Gone"})
    url = f"accounts({entity_id(created)})"
    assert (await api.delete(url)).status_code == 204
    response = await api.get(url)
    assert response.status_code == 404
    assert error_of(response)["code"] == "0x80040217"
    assert (await api.delete(url)).status_code == 404


async def test_delete_cascades_to_lines_and_notes(
    api: httpx.AsyncClient, sandbox: RunningSandbox
) -> None:
    order = entity_id(await api.post("salesorders", json={"name": "SO"}))
    await api.post(
        "salesorderdetails",
        json={"salesorderid@odata.bind": f"/salesorders({order})", "quantity": 1},
    )
    await api.post(
        "annotations",
        json={"subject": "n", "objectid_salesorder@odata.bind": f"/salesorders({order})"},
    )
    assert (await api.delete(f"salesorders({order})")).status_code == 204
    assert sandbox.state.count("salesorderdetails") == 0
    assert sandbox.state.count("annotations") == 0


async def test_unknown_segment_and_bad_properties(api: httpx.AsyncClient) -> None:
    response = await api.get("Account")
    assert response.status_code == 404
    assert error_of(response) == {
        "code": "0x8006088a",
        "message": "Resource not found for the segment 'Account'.",
    }
    select = await api.get("accounts?$select=Name")
    assert select.status_code == 400
    assert error_of(select)["message"].startswith("Could not find a property named 'Name'")
    bad_json = await api.post(
        "accounts", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert bad_json.status_code == 400
    upper = await api.post("accounts", json={"Name": "x"})
    assert upper.status_code == 400 and error_of(upper)["code"] == "0x80048d19"


async def test_single_property_put_and_delete(api: httpx.AsyncClient) -> None:
    url = (
        f"accounts({entity_id(await api.post('accounts', json={'name': 'x', 'description': 'd'}))})"
    )
    assert (await api.put(f"{url}/name", json={"value": "renamed"})).status_code == 204
    assert (await api.delete(f"{url}/description")).status_code == 204
    assert (await api.get(f"{url}/name")).json()["value"] == "renamed"
    assert (await api.get(url)).json()["description"] is None


async def test_metadata_and_service_document_list_every_entity_set(api: httpx.AsyncClient) -> None:
    from app.sandbox.schema.entities import ENTITIES

    metadata = await api.get("$metadata")
    assert metadata.status_code == 200
    service = (await api.get("")).json()
    names = {item["name"] for item in service["value"]}
    for entity in ENTITIES:
        assert f'EntitySet Name="{entity.set_name}"' in metadata.text
        assert entity.set_name in names
    assert '<FunctionImport Name="WhoAmI"' in metadata.text
    assert "nav_accountstatisticses" in names and "systemusers" in names
