"""Protocol conformance: service document, $metadata, headers, errors, auth, key lookup."""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET

import httpx
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models.security import Role
from app.settings import Settings
from tests.factories import bearer_headers, create_user
from tests.odata import factories
from tests.odata.conftest import CRM_1000

ROOT = "/odata/v4/"
EDMX = "{http://docs.oasis-open.org/odata/ns/edmx}"
EDM = "{http://docs.oasis-open.org/odata/ns/edm}"


async def test_service_document_lists_the_sets(
    client: httpx.AsyncClient, reader: dict[str, str]
) -> None:
    response = await client.get(ROOT, headers=reader)
    assert response.status_code == 200
    assert response.headers["OData-Version"] == "4.0"
    body = response.json()
    assert body["@odata.context"].endswith("/odata/v4/$metadata")
    assert {e["name"] for e in body["value"]} == {
        "ItemAvailability",
        "ItemAvailabilityByLocation",
        "ProductItemAvailability",
    }
    assert all(e["kind"] == "EntitySet" and e["url"] == e["name"] for e in body["value"])


async def test_metadata_xml_is_well_formed_csdl(
    client: httpx.AsyncClient, reader: dict[str, str]
) -> None:
    response = await client.get(ROOT + "$metadata", headers=reader)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(response.content)  # noqa: S314 - our own server's document
    assert root.tag == f"{EDMX}Edmx" and root.attrib["Version"] == "4.0"
    schema = root.find(f"{EDMX}DataServices/{EDM}Schema")
    assert schema is not None and schema.attrib["Namespace"] == "Salesbridge"
    types = {t.attrib["Name"]: t for t in schema.findall(f"{EDM}EntityType")}
    keys = {
        name: [r.attrib["Name"] for r in t.findall(f"{EDM}Key/{EDM}PropertyRef")]
        for name, t in types.items()
    }
    assert keys == {
        "ItemAvailability": ["ItemNo"],
        "ItemAvailabilityByLocation": ["ItemNo", "LocationCode"],
        "ProductItemAvailability": ["ItemNo"],
    }
    props = {
        p.attrib["Name"]: p.attrib for p in types["ItemAvailability"].findall(f"{EDM}Property")
    }
    assert props["ProjectedAvailable"] == {
        "Name": "ProjectedAvailable",
        "Type": "Edm.Decimal",
        "Nullable": "false",
        "Precision": "18",
        "Scale": "5",
    }
    assert (
        props["CRMProductId"]["Type"] == "Edm.Guid" and props["CRMProductId"]["Nullable"] == "true"
    )
    assert props["ItemNo"]["MaxLength"] == "20" and props["ItemNo"]["Nullable"] == "false"
    assert props["Blocked"]["Type"] == "Edm.Boolean"
    assert props["LastModified"]["Type"] == "Edm.DateTimeOffset"
    product = {
        p.attrib["Name"]: p.attrib
        for p in types["ProductItemAvailability"].findall(f"{EDM}Property")
    }
    assert set(product) == {"CRM_ID", "ItemNo", "UOM", "Inventory"}
    container = schema.find(f"{EDM}EntityContainer")
    assert container is not None
    terms = {a.attrib["Term"]: a for a in container.findall(f"{EDM}Annotation")}
    assert terms["Capabilities.ConformanceLevel"].attrib["EnumMember"].endswith("/Intermediate")
    assert terms["Core.ODataVersions"].attrib["String"] == "4.0"
    assert terms["Capabilities.BatchSupported"].attrib["Bool"] == "false"
    for entity_set in container.findall(f"{EDM}EntitySet"):
        set_terms = {a.attrib["Term"] for a in entity_set.findall(f"{EDM}Annotation")}
        assert {
            "Capabilities.FilterRestrictions",
            "Capabilities.SortRestrictions",
            "Capabilities.ExpandRestrictions",
            "Capabilities.SearchRestrictions",
            "Capabilities.TopSupported",
            "Capabilities.SkipSupported",
            "Capabilities.CountRestrictions",
        } <= set_terms
    references = {
        r.find(f"{EDMX}Include").attrib["Alias"] for r in root.findall(f"{EDMX}Reference")
    }  # type: ignore[union-attr]
    assert references == {"Core", "Capabilities"}


async def test_metadata_json(client: httpx.AsyncClient, reader: dict[str, str]) -> None:
    by_format = await client.get(ROOT + "$metadata?$format=json", headers=reader)
    by_accept = await client.get(
        ROOT + "$metadata", headers={**reader, "Accept": "application/json"}
    )
    assert by_format.status_code == by_accept.status_code == 200
    assert by_format.json() == by_accept.json()
    document = by_format.json()
    assert document["$Version"] == "4.0"
    entity = document["Salesbridge"]["ItemAvailability"]
    assert entity["$Key"] == ["ItemNo"]
    assert entity["Inventory"] == {"$Type": "Edm.Decimal", "$Precision": 18, "$Scale": 5}
    assert (
        document["Salesbridge"]["Container"]["ItemAvailability"]["$Type"]
        == "Salesbridge.ItemAvailability"
    )


async def test_anonymous_gets_401_with_basic_challenge(client: httpx.AsyncClient) -> None:
    for path in ("", "$metadata", "ItemAvailability", "ItemAvailability('1')", "Nope"):
        response = await client.get(ROOT + path)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith('Basic realm="Salesbridge OData"')
        assert response.json()["error"]["code"] == "Authentication_InvalidCredentials"
        assert response.headers["OData-Version"] == "4.0"


async def test_bad_key_and_password_are_refused(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    await create_user(session, user_name="pw", roles=(Role.product_availability,))
    await session.commit()
    password_auth = factories.basic_header("pw", "correct horse battery staple")
    assert (await client.get(ROOT, headers=password_auth)).status_code == 401  # keys only
    wrong = factories.basic_header("pw", "sbk_AAAAAAAAAAAA_" + "x" * 43)
    assert (await client.get(ROOT, headers=wrong)).status_code == 401
    garbage = {"Authorization": "Basic !!!"}
    assert (await client.get(ROOT, headers=garbage)).status_code == 401


async def test_wrong_role_is_403_and_admin_allowed(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user_only = await factories.odata_reader(
        session, settings, user_name="u", roles=(Role.integration_user,)
    )
    admin = await factories.odata_reader(
        session, settings, user_name="a", roles=(Role.integration_admin,)
    )
    response = await client.get(ROOT, headers=user_only)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "Authorization_Forbidden"
    assert (await client.get(ROOT, headers=admin)).status_code == 200


async def test_bearer_token_works(client: httpx.AsyncClient, session: AsyncSession) -> None:
    await create_user(session, user_name="bt", roles=(Role.product_availability,))
    await session.commit()
    headers = await bearer_headers(client, user_name="bt")
    assert (await client.get(ROOT + "ItemAvailability", headers=headers)).status_code == 200
    bad = {"Authorization": "Bearer not-a-token"}
    assert (await client.get(ROOT, headers=bad)).status_code == 401


async def test_revoked_key_stops_working_once_the_cache_entry_is_gone(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    from sqlalchemy import update

    from app.clock import utc_now
    from app.models.security import WebServiceAccessKey
    from app.odata import auth as odata_auth

    headers = await factories.odata_reader(session, settings, user_name="rv")
    assert (await client.get(ROOT, headers=headers)).status_code == 200
    await session.execute(update(WebServiceAccessKey).values(revoked_at=utc_now()))
    await session.commit()
    assert odata_auth.CACHE_SECONDS <= 5  # the documented bound on revocation delay
    odata_auth.clear_cache()  # what the 5 s expiry does; no test sleeps
    assert (await client.get(ROOT, headers=headers)).status_code == 401


async def test_key_lookup_etag_and_304(
    client: httpx.AsyncClient, reader: dict[str, str], catalogue: None
) -> None:
    response = await client.get(ROOT + "ItemAvailability('1000')", headers=reader)
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"].endswith("$metadata#ItemAvailability/$entity")
    assert body["ItemNo"] == "1000" and body["Inventory"] == 17.5
    assert body["QtyOnSalesOrder"] == 3 and body["ProjectedAvailable"] == 14.5
    assert body["CRMProductId"] == str(CRM_1000)
    tag = response.headers["ETag"]
    assert tag.startswith('W/"') and body["@odata.etag"] == tag
    again = await client.get(
        ROOT + "ItemAvailability('1000')", headers={**reader, "If-None-Match": tag}
    )
    assert again.status_code == 304 and again.content == b""
    other = await client.get(
        ROOT + "ItemAvailability('1000')", headers={**reader, "If-None-Match": 'W/"x"'}
    )
    assert other.status_code == 200
    named = await client.get(ROOT + "ItemAvailability(ItemNo='1000')", headers=reader)
    assert named.json()["ItemNo"] == "1000"
    missing = await client.get(ROOT + "ItemAvailability('nope')", headers=reader)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "BadRequest_NotFound"


async def test_etag_changes_when_stock_changes(
    client: httpx.AsyncClient, reader: dict[str, str], catalogue: None, session: AsyncSession
) -> None:
    before = (await client.get(ROOT + "ItemAvailability('1001')", headers=reader)).headers["ETag"]
    await factories.add_ledger(session, [("1001", "BLUE", 1)], start=100)
    await session.commit()
    after = await client.get(
        ROOT + "ItemAvailability('1001')", headers={**reader, "If-None-Match": before}
    )
    assert after.status_code == 200 and after.headers["ETag"] != before
    assert after.json()["Inventory"] == 101


async def test_quotes_in_keys_and_composite_keys(
    client: httpx.AsyncClient, reader: dict[str, str], session: AsyncSession
) -> None:
    await factories.add_items(session, ["O'NEIL"])
    await factories.add_ledger(session, [("O'NEIL", "BLUE", 3)])
    await session.commit()
    one = await client.get(ROOT + "ItemAvailability('O''NEIL')", headers=reader)
    assert one.status_code == 200 and one.json()["Inventory"] == 3
    located = await client.get(
        ROOT + "ItemAvailabilityByLocation(ItemNo='O''NEIL',LocationCode='BLUE')", headers=reader
    )
    assert located.status_code == 200 and located.json()["LocationCode"] == "BLUE"
    full = located.json()
    assert full["@odata.context"].endswith("#ItemAvailabilityByLocation/$entity")
    bad = await client.get(ROOT + "ItemAvailabilityByLocation('x')", headers=reader)
    assert bad.status_code == 400
    unquoted = await client.get(ROOT + "ItemAvailability(1000)", headers=reader)
    assert unquoted.status_code == 400


async def test_property_and_value(
    client: httpx.AsyncClient, reader: dict[str, str], catalogue: None
) -> None:
    prop = await client.get(ROOT + "ItemAvailability('1000')/Inventory", headers=reader)
    assert prop.status_code == 200 and prop.json()["value"] == 17.5
    raw = await client.get(ROOT + "ItemAvailability('1000')/ItemNo/$value", headers=reader)
    assert raw.status_code == 200 and raw.text == "1000"
    assert raw.headers["content-type"].startswith("text/plain")


async def test_metadata_levels(
    client: httpx.AsyncClient, reader: dict[str, str], catalogue: None
) -> None:
    url = ROOT + "ItemAvailability('1000')"
    full = await client.get(
        url, headers={**reader, "Accept": "application/json;odata.metadata=full"}
    )
    assert "odata.metadata=full" in full.headers["content-type"]
    body = full.json()
    assert body["@odata.type"] == "#Salesbridge.ItemAvailability"
    assert body["@odata.id"].endswith("/odata/v4/ItemAvailability('1000')")
    assert body["Inventory@odata.type"] == "#Decimal"
    none = await client.get(url + "?$format=application/json;odata.metadata=none", headers=reader)
    assert "odata.metadata=none" in none.headers["content-type"]
    assert not [k for k in none.json() if k.startswith("@")]
    minimal = await client.get(url, headers={**reader, "Accept": "application/json"})
    assert "odata.metadata=minimal" in minimal.headers["content-type"]
    assert "@odata.type" not in minimal.json() and "@odata.etag" in minimal.json()


ERROR_CASES = [
    ("ItemAvailability?$expand=Foo", {}, 501, "NotImplemented"),
    ("ItemAvailability?$search=bolt", {}, 501, "NotImplemented"),
    ("ItemAvailability?$apply=groupby((ItemNo))", {}, 501, "NotImplemented"),
    ("ItemAvailability?$compute=Inventory add 1 as X", {}, 501, "NotImplemented"),
    ("ItemAvailability?$filter=matchesPattern(ItemNo,'1')", {}, 501, "NotImplemented_Filter"),
    ("$batch", {}, 501, "NotImplemented"),
    ("ItemAvailability?$format=xml", {}, 406, "BadRequest_NotAcceptable"),
    ("ItemAvailability", {"Accept": "application/xml"}, 406, "BadRequest_NotAcceptable"),
    ("ItemAvailability", {"OData-MaxVersion": "3.0"}, 400, "BadRequest_InvalidRequest"),
    ("ItemAvailability?$top=-1", {}, 400, "BadRequest_InvalidRequest"),
    ("ItemAvailability?$top=abc", {}, 400, "BadRequest_InvalidRequest"),
    ("ItemAvailability?$count=maybe", {}, 400, "BadRequest_InvalidRequest"),
    ("ItemAvailability?$select=Nope", {}, 400, "BadRequest_InvalidRequest"),
    ("ItemAvailability?$orderby=Nope", {}, 400, "BadRequest_InvalidRequest"),
    ("ItemAvailability?$orderby=ItemNo sideways", {}, 400, "BadRequest_InvalidRequest"),
    ("ItemAvailability?$bogus=1", {}, 400, "BadRequest_InvalidRequest"),
    ("ItemAvailability?$top=1&$top=2", {}, 400, "BadRequest_InvalidRequest"),
    ("ItemAvailability?$skiptoken=garbage", {}, 400, "BadRequest_InvalidRequest"),
    ("NoSuchSet", {}, 404, "BadRequest_NotFound"),
    ("ItemAvailability/Nope", {}, 404, "BadRequest_NotFound"),
    ("Company('Other')/ItemAvailability", {}, 404, "BadRequest_NotFound"),
]


async def test_errors_are_odata_json(client: httpx.AsyncClient, reader: dict[str, str]) -> None:
    """One test (one database reset) for every error shape; each case says what it checks."""
    for path, headers, status, code in ERROR_CASES:
        response = await client.get(ROOT + path, headers={**reader, **headers})
        assert response.status_code == status, (path, response.text)
        error = response.json()["error"]
        assert error["code"] == code and error["message"], path
        assert response.headers["OData-Version"] == "4.0"


async def test_writes_are_405(client: httpx.AsyncClient, reader: dict[str, str]) -> None:
    response = await client.post(ROOT + "ItemAvailability", headers=reader, json={})
    assert (
        response.status_code == 405
        and response.json()["error"]["code"] == "BadRequest_MethodNotAllowed"
    )


async def test_unknown_odata_version_path_is_odata_404(
    client: httpx.AsyncClient, reader: dict[str, str]
) -> None:
    response = await client.get("/odata/v3/ItemAvailability", headers=reader)
    assert response.status_code == 404 and "error" in response.json()


async def test_company_path_serves_the_same_data(
    client: httpx.AsyncClient, reader: dict[str, str], catalogue: None, settings: Settings
) -> None:
    plain = await client.get(ROOT + "ItemAvailability", headers=reader)
    company = await client.get(
        ROOT + f"Company('{settings.company_name}')/ItemAvailability", headers=reader
    )
    assert company.status_code == 200
    assert company.json()["value"] == plain.json()["value"]
    product = await client.get(
        ROOT + f"Company('{settings.company_name}')/ProductItemAvailability",
        params={"$filter": f"CRM_ID eq {CRM_1000}"},
        headers=reader,
    )
    assert [r["ItemNo"] for r in product.json()["value"]] == ["1000"]
    assert json.loads(product.text)["value"][0]["Inventory"] == 17.5


def test_basic_header_helper_round_trips() -> None:
    header = factories.basic_header("u", "k")["Authorization"]
    assert base64.b64decode(header.split()[1]) == b"u:k"
