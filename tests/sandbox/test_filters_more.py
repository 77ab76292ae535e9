"""``$filter`` forms real clients send: parameter aliases, column comparison, lookup
paths, and how unknown or unimplemented functions are answered."""

from __future__ import annotations

import httpx

from tests.sandbox.conftest import entity_id, error_of


async def _names(api: httpx.AsyncClient, entity_set: str, **params: str) -> list[str]:
    response = await api.get(entity_set, params=params)
    assert response.status_code == 200, response.text
    key = "fullname" if entity_set == "contacts" else "name"
    return sorted(row[key] for row in response.json()["value"])


async def test_in_with_parameter_aliases(api: httpx.AsyncClient) -> None:
    """Microsoft documents passing Microsoft.Dynamics.CRM.In's arguments as parameter
    aliases (@p1, @p2 given as query parameters), the way to send values containing an
    apostrophe; aliases also work as plain comparison values."""
    for name in ("O'Brien Ltd", "Contoso", "Fabrikam"):
        await api.post("accounts", json={"name": name})
    found = await _names(
        api,
        "accounts",
        **{
            "$filter": "Microsoft.Dynamics.CRM.In(PropertyName=@p1,PropertyValues=@p2)",
            "@p1": "'name'",
            "@p2": '["O\'Brien Ltd","Contoso"]',
        },
    )
    assert found == ["Contoso", "O'Brien Ltd"]
    alias = {"$filter": "name eq @name", "@name": "'O''Brien Ltd'"}
    assert await _names(api, "accounts", **alias) == ["O'Brien Ltd"]
    missing = await api.get("accounts", params={"$filter": "name eq @nothing"})
    assert missing.status_code == 400


async def test_column_comparison(api: httpx.AsyncClient) -> None:
    """Dataverse compares two columns of the same row (firstname eq lastname)."""
    await api.post("contacts", json={"firstname": "Lee", "lastname": "Lee"})
    await api.post("contacts", json={"firstname": "Ann", "lastname": "Lee"})
    assert await _names(api, "contacts", **{"$filter": "firstname eq lastname"}) == ["Lee Lee"]
    assert await _names(api, "contacts", **{"$filter": "firstname ne lastname"}) == ["Ann Lee"]


async def test_lookup_path(api: httpx.AsyncClient) -> None:
    """A filter may follow a single-valued navigation property to a column of the related
    row (primarycontactid/fullname eq '...'); a path through anything else is refused."""
    ann = entity_id(await api.post("contacts", json={"firstname": "Ann", "lastname": "Lee"}))
    await api.post(
        "accounts", json={"name": "With Ann", "primarycontactid@odata.bind": f"/contacts({ann})"}
    )
    await api.post("accounts", json={"name": "Alone"})
    path = {"$filter": "primarycontactid/fullname eq 'ann lee'"}
    assert await _names(api, "accounts", **path) == ["With Ann"]
    unknown = await api.get("accounts", params={"$filter": "primarycontactid/nosuch eq 1"})
    assert unknown.status_code == 400
    lambda_path = await api.get(
        "accounts", params={"$filter": "contact_customer_accounts/any(c:c/fullname eq 'x')"}
    )
    assert lambda_path.status_code == 501


async def test_unknown_and_unimplemented_functions(api: httpx.AsyncClient) -> None:
    """A function that does not exist is a 400 from Dataverse's OData parser ("An unknown
    function with name ... was found"); a real Dataverse query function the sandbox lacks
    is a clear 501."""
    unknown = await api.get("accounts", params={"$filter": "frobnicate(name,'x')"})
    assert unknown.status_code == 400
    assert "unknown function with name 'frobnicate'" in error_of(unknown)["message"]
    fake = await api.get("accounts", params={"$filter": "Microsoft.Dynamics.CRM.Frob(x=1)"})
    assert fake.status_code == 400
    lacking = await api.get(
        "accounts",
        params={
            "$filter": "Microsoft.Dynamics.CRM.LastXDays(PropertyName='createdon',PropertyValue=7)"
        },
    )
    assert lacking.status_code == 501
