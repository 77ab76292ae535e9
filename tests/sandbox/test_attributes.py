"""Declared attributes: unknown names in $select/$filter/$orderby and in bodies are refused
the way Dataverse refuses them; declared but unset ones read as null."""

from __future__ import annotations

import uuid

import httpx

from app.sandbox import SandboxConfig
from app.sandbox.schema.attributes import STANDARD_SCHEMA
from app.sandbox.schema.entities import ENTITIES
from tests.fixtures.sandbox import RunningSandbox, start_sandbox
from tests.sandbox.conftest import api_client, entity_id, error_of

NOT_FOUND = "Could not find a property named '{}' on type 'Microsoft.Dynamics.CRM.account'."


async def _refused_name(response: httpx.Response, name: str) -> None:
    assert response.status_code == 400, response.text
    assert error_of(response) == {"code": "0x0", "message": NOT_FOUND.format(name)}


async def test_unknown_names_in_queries_are_refused(api: httpx.AsyncClient) -> None:
    await api.post("accounts", json={"name": "Known", "telephone1": "123"})
    queries = {
        "nosuch": [
            {"$filter": "nosuch eq 'x'"},
            {"$filter": "name eq 'Known' and (nosuch ne 1 or telephone1 eq '123')"},
            {"$filter": "contains(nosuch,'x')"},
            {"$filter": "Microsoft.Dynamics.CRM.In(PropertyName='nosuch',PropertyValues=['a'])"},
            {"$select": "name,nosuch"},
            {"$orderby": "nosuch desc"},
        ],
        "Name": [{"$select": "Name"}],  # names are case-sensitive
        "primarycontactid": [{"$select": "primarycontactid"}],  # a lookup reads as _x_value
    }
    for name, variants in queries.items():
        for params in variants:
            await _refused_name(await api.get("accounts", params=params), name)
    await _refused_name(await api.get("accounts/$count?$filter=nosuch eq 1"), "nosuch")
    record = entity_id(await api.post("accounts", json={"name": "Other"}))
    await _refused_name(await api.get(f"accounts({record})?$select=nosuch"), "nosuch")


async def test_declared_names_work_and_unset_ones_read_as_null(api: httpx.AsyncClient) -> None:
    await api.post("accounts", json={"name": "Known", "telephone1": "123"})
    params = {
        "$select": "name,fax,address1_city,_primarycontactid_value,_ownerid_value,createdon",
        "$filter": "fax eq null and telephone1 eq '123' and _parentaccountid_value eq null",
        "$orderby": "address1_city,versionnumber desc",
    }
    response = await api.get("accounts", params=params)
    assert response.status_code == 200, response.text
    [row] = response.json()["value"]
    assert row["name"] == "Known" and row["_ownerid_value"] and row["createdon"]
    assert row["fax"] is None and row["address1_city"] is None
    assert row["_primarycontactid_value"] is None


async def test_unknown_names_in_bodies_are_refused_and_nothing_is_written(
    api: httpx.AsyncClient, sandbox: RunningSandbox
) -> None:
    created = await api.post("accounts", json={"name": "x", "nosuch": 1})
    assert created.status_code == 400
    error = error_of(created)
    assert error["code"] == "0x80048d19"
    assert (
        "The property 'nosuch' does not exist on type 'Microsoft.Dynamics.CRM.account'"
        in (error["message"])
    )
    assert sandbox.state.count("accounts") == 0
    record = entity_id(await api.post("accounts", json={"name": "kept"}))
    updated = await api.patch(f"accounts({record})", json={"name": "changed", "city": "Oslo"})
    assert updated.status_code == 400 and "'city' does not exist" in error_of(updated)["message"]
    upserted = await api.patch(f"accounts({uuid.uuid4()})", json={"name": "new", "nosuch": 2})
    assert upserted.status_code == 400
    assert [row["name"] for row in sandbox.state.rows("accounts")] == ["kept"]
    # A column of another table is unknown here too (statecode: notes have no state).
    note = await api.post("annotations", json={"subject": "n", "statecode": 0})
    assert note.status_code == 400 and "'statecode' does not exist" in error_of(note)["message"]


async def test_unknown_single_property_segment_is_not_found(api: httpx.AsyncClient) -> None:
    record = entity_id(await api.post("accounts", json={"name": "x"}))
    for method in ("GET", "PUT", "DELETE"):
        body = {"value": "v"} if method == "PUT" else None
        response = await api.request(method, f"accounts({record})/nosuch", json=body)
        assert response.status_code == 404
        assert error_of(response) == {
            "code": "0x8006088a",
            "message": "Resource not found for the segment 'nosuch'.",
        }
    assert (await api.get(f"accounts({record})/telephone1")).json()["value"] is None


async def test_extra_attributes_declare_custom_columns() -> None:
    config = SandboxConfig(extra_attributes={"accounts": ("new_region",)})
    with start_sandbox(config) as running:
        async with await api_client(running) as api:
            created = await api.post("accounts", json={"name": "c", "new_region": "north"})
            assert created.status_code == 204
            found = await api.get("accounts?$select=new_region&$filter=new_region eq 'NORTH'")
            assert [row["new_region"] for row in found.json()["value"]] == ["north"]
            # Declared on accounts only.
            other = await api.post("contacts", json={"lastname": "c", "new_region": "north"})
            assert other.status_code == 400


async def test_every_entity_set_declares_its_keys_lookups_and_server_columns() -> None:
    for entity in ENTITIES:
        declared = STANDARD_SCHEMA.attributes(entity)
        expected = {entity.pk, "createdon", "modifiedon", "versionnumber", "_modifiedby_value"}
        expected |= {f"_{lookup}_value" for lookup in entity.lookups}
        if entity.primary_name:
            expected.add(entity.primary_name)
        if entity.state is not None:
            expected |= {"statecode", "statuscode"}
        assert expected <= declared, entity.set_name
        assert not set(entity.lookups) & declared, entity.set_name
