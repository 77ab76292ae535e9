"""Metadata discovery: ``EntityDefinitions`` and ``sdkmessagefilters``, what a client reads
to learn entity set names, keys, attributes, relationships and supported messages."""

from __future__ import annotations

import httpx

from tests.sandbox.conftest import error_of


async def test_entity_definition_by_logical_name(api: httpx.AsyncClient) -> None:
    """EntityDefinitions(LogicalName='x') returns the table's metadata: entity set name,
    primary id and name attributes, ownership; $select trims it to the named properties."""
    row = (
        await api.get(
            "EntityDefinitions(LogicalName='salesorder')",
            params={"$select": "EntitySetName,PrimaryIdAttribute,PrimaryImageAttribute"},
        )
    ).json()
    assert row["EntitySetName"] == "salesorders"
    assert row["PrimaryIdAttribute"] == "salesorderid" and row["PrimaryImageAttribute"] is None
    assert "LogicalName" not in row and row["@odata.context"].endswith("/$entity")
    full = (await api.get(f"EntityDefinitions({row['MetadataId']})")).json()
    assert full["LogicalName"] == "salesorder" and full["OwnershipType"] == "UserOwned"
    missing = await api.get("EntityDefinitions(LogicalName='nosuch')")
    assert missing.status_code == 404
    bad_select = await api.get("EntityDefinitions", params={"$select": "Nope"})
    assert bad_select.status_code == 400
    assert "Could not find a property named 'Nope'" in error_of(bad_select)["message"]


async def test_filter_entity_definitions(api: httpx.AsyncClient) -> None:
    """$filter on EntityDefinitions selects tables by their metadata properties."""
    found = (
        await api.get(
            "EntityDefinitions",
            params={
                "$select": "LogicalName,EntitySetName",
                "$filter": "LogicalName eq 'account' or EntitySetName eq 'opportunities'",
            },
        )
    ).json()["value"]
    assert sorted(r["LogicalName"] for r in found) == ["account", "opportunity"]
    owned = (
        await api.get(
            "EntityDefinitions",
            params={"$select": "LogicalName", "$filter": "OwnershipType eq 'UserOwned'"},
        )
    ).json()["value"]
    assert "account" in {r["LogicalName"] for r in owned}
    assert "product" not in {r["LogicalName"] for r in owned}


async def test_attributes_keys_and_relationships(api: httpx.AsyncClient) -> None:
    """An entity's Attributes (with their types and lookup targets), alternate Keys and
    ManyToOne / OneToMany relationships, as collections or expanded on the definition."""
    base = "EntityDefinitions(LogicalName='account')"
    keys = (await api.get(f"{base}/Keys", params={"$select": "KeyAttributes"})).json()["value"]
    assert [k["KeyAttributes"] for k in keys] == [["accountnumber"]]
    attributes = (
        await api.get(
            f"{base}/Attributes",
            params={
                "$select": "LogicalName,AttributeType,Targets",
                "$filter": "AttributeType eq Microsoft.Dynamics.CRM.AttributeTypeCode'Lookup'",
            },
        )
    ).json()["value"]
    by_name = {a["LogicalName"]: a for a in attributes}
    assert by_name["primarycontactid"]["Targets"] == ["contact"]
    name = (await api.get(f"{base}/Attributes(LogicalName='name')")).json()
    assert name["AttributeType"] == "String" and name["IsPrimaryName"] is True
    many_to_one = (await api.get(f"{base}/ManyToOneRelationships")).json()["value"]
    navs = {r["ReferencingEntityNavigationPropertyName"] for r in many_to_one}
    assert {"primarycontactid", "parentaccountid", "createdby"} <= navs
    expanded = (
        await api.get(
            base,
            params={
                "$select": "LogicalName",
                "$expand": "Keys($select=KeyAttributes),"
                "OneToManyRelationships($select=ReferencingEntity;"
                "$filter=ReferencingEntity eq 'contact')",
            },
        )
    ).json()
    assert expanded["Keys"][0]["KeyAttributes"] == ["accountnumber"]
    referencing = [r["ReferencingEntity"] for r in expanded["OneToManyRelationships"]]
    assert referencing and set(referencing) == {"contact"}


async def test_choice_labels_through_the_picklist_cast(api: httpx.AsyncClient) -> None:
    """Option labels are read through the PicklistAttributeMetadata cast with
    $expand=OptionSet."""
    options = (
        await api.get(
            "EntityDefinitions(LogicalName='product')/Attributes/"
            "Microsoft.Dynamics.CRM.PicklistAttributeMetadata",
            params={"$select": "LogicalName", "$expand": "OptionSet"},
        )
    ).json()["value"]
    types = next(o for o in options if o["LogicalName"] == "producttypecode")
    labels = {
        o["Value"]: o["Label"]["UserLocalizedLabel"]["Label"] for o in types["OptionSet"]["Options"]
    }
    assert labels[1] == "Sales Inventory"


async def test_metadata_is_read_only(api: httpx.AsyncClient) -> None:
    """Creating tables through the Web API is not emulated: refused, never pretended."""
    created = await api.post("EntityDefinitions", json={"SchemaName": "new_thing"})
    assert created.status_code == 501


async def test_sdk_message_filters(api: httpx.AsyncClient) -> None:
    """sdkmessagefilters list the messages each table supports; a client asks, with a
    lookup path and $expand of the message's name, whether a message exists for a table."""
    rows = (
        await api.get(
            "sdkmessagefilters",
            params={
                "$select": "sdkmessagefilterid",
                "$expand": "sdkmessageid($select=name)",
                "$filter": "(sdkmessageid/name eq 'Create' or "
                "sdkmessageid/name eq 'CreateMultiple') and primaryobjecttypecode eq 'account'",
            },
        )
    ).json()["value"]
    assert [r["sdkmessageid"]["name"] for r in rows] == ["Create"]
    posts = (
        await api.get(
            "sdkmessagefilters",
            params={"$filter": "primaryobjecttypecode eq 'post' and sdkmessageid/name eq 'Update'"},
        )
    ).json()["value"]
    assert posts == []  # posts cannot be updated
    refused = await api.post("sdkmessages", json={"name": "Mine"})
    assert refused.status_code == 400
