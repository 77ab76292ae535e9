"""The OData V3 path (/ODataV3/): BC's URL form, JSON light, V3 options, literals and errors."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.odata import factories
from tests.odata.conftest import CRM_1000

ROOT = "/ODataV3/"
PIA = "/ODataV3/Company('CRONUS')/ProductItemAvailability"
IA = "/ODataV3/Company('CRONUS')/ItemAvailability"
MINIMAL = "application/json;odata=minimalmetadata;streaming=true;charset=utf-8"
EDM = "{http://schemas.microsoft.com/ado/2009/11/edm}"
EDMX = "{http://schemas.microsoft.com/ado/2007/06/edmx}"

pytestmark = pytest.mark.usefixtures("catalogue")


async def _get(
    client: httpx.AsyncClient, reader: dict[str, str], url: str, **params: str
) -> httpx.Response:
    return await client.get(url, params=params, headers=reader)


async def test_collection_is_json_light_with_v3_headers(
    client: httpx.AsyncClient, reader: dict[str, str]
) -> None:
    response = await _get(client, reader, PIA)
    assert response.status_code == 200, response.text
    assert response.headers["dataserviceversion"] == "3.0;"
    assert "odata-version" not in response.headers
    assert response.headers["content-type"] == MINIMAL
    body = response.json()
    assert body["odata.metadata"] == f"http://testserver{ROOT}$metadata#ProductItemAvailability"
    (row,) = body["value"]
    assert row["odata.etag"].startswith('W/"')
    assert {k: v for k, v in row.items() if k != "odata.etag"} == {
        "CRM_ID": str(CRM_1000), "ItemNo": "1000", "UOM": None, "Inventory": "17.5",
    }  # fmt: skip


async def test_v3_literals_filter_and_inline_count(
    client: httpx.AsyncClient, reader: dict[str, str]
) -> None:
    by_guid = await _get(client, reader, PIA, **{"$filter": f"CRM_ID eq guid'{CRM_1000}'"})
    assert [r["ItemNo"] for r in by_guid.json()["value"]] == ["1000"]
    other = await _get(client, reader, PIA, **{"$filter": f"CRM_ID eq guid'{uuid.uuid4()}'"})
    assert other.json()["value"] == []
    counted = await _get(
        client, reader, IA,
        **{"$filter": "Inventory ge 17.5M and substringof('00', ItemNo)",
           "$inlinecount": "allpages", "$select": "ItemNo,Inventory",
           "$orderby": "Inventory desc"},
    )  # fmt: skip
    body = counted.json()
    assert body["odata.count"] == "3"  # Edm.Int64 is a string in V3 JSON
    assert body["odata.metadata"].endswith("$metadata#ItemAvailability&$select=ItemNo,Inventory")
    found = [(r["ItemNo"], r["Inventory"]) for r in body["value"]]
    assert found == [("1001", "100"), ("1003", "30"), ("1000", "17.5")]
    none = await _get(client, reader, IA, **{"$inlinecount": "none", "$top": "1"})
    assert "odata.count" not in none.json()
    since = (
        "LastModified gt datetime'2000-01-01T00:00:00' "
        "and LastModified lt datetimeoffset'2999-01-01T00:00:00Z'"
    )
    assert len((await _get(client, reader, IA, **{"$filter": since})).json()["value"]) == 6
    suffixes = "Inventory eq 100L or Inventory eq 17.5d or Inventory eq 2.0f"
    matched = {
        r["ItemNo"]
        for r in (await _get(client, reader, IA, **{"$filter": suffixes})).json()["value"]
    }
    assert matched == {"1000", "1001"}


async def test_paging_follows_odata_next_link(
    client: httpx.AsyncClient, reader: dict[str, str]
) -> None:
    seen: list[str] = []
    url: str | None = f"{IA}?$format=json&$inlinecount=allpages"
    headers = {**reader, "Prefer": "odata.maxpagesize=2"}
    while url is not None:
        body = (await client.get(url, headers=headers)).json()
        assert body["odata.count"] == "6"
        seen += [r["ItemNo"] for r in body["value"]]
        link = body.get("odata.nextLink")
        if link is not None:
            repeated = parse_qs(urlsplit(link).query)
            assert repeated["$inlinecount"] == ["allpages"] and repeated["$skiptoken"]
        url = link
    assert seen == ["1000", "1001", "1002", "1003", "1004", "A%_1"]


async def test_metadata_levels_and_formats(
    client: httpx.AsyncClient, reader: dict[str, str]
) -> None:
    full = await _get(
        client, reader, f"{IA}('1000')", **{"$format": "application/json;odata=fullmetadata"}
    )
    body = full.json()
    assert full.headers["content-type"].startswith("application/json;odata=fullmetadata")
    assert body["odata.metadata"].endswith("$metadata#ItemAvailability/@Element")
    assert body["odata.type"] == "Salesbridge.ItemAvailability"
    assert body["odata.id"] == f"http://testserver{ROOT}ItemAvailability('1000')"
    assert body["odata.editLink"] == "ItemAvailability('1000')"
    assert body["Inventory@odata.type"] == "Edm.Decimal" and body["Inventory"] == "17.5"
    assert full.headers["etag"] == body["odata.etag"]
    bare = await client.get(
        f"{IA}('1000')", headers={**reader, "Accept": "application/json;odata=nometadata"}
    )
    assert not [k for k in bare.json() if k.startswith("odata.")]
    for accept in ("application/json;odata=verbose", "application/atom+xml"):
        refused = await client.get(IA, headers={**reader, "Accept": accept})
        assert refused.status_code == 406, accept
        assert refused.json()["odata.error"]["code"] == "BadRequest_NotAcceptable"
    assert (await _get(client, reader, IA, **{"$format": "atom"})).status_code == 406
    either = await client.get(
        IA, headers={**reader, "Accept": "application/json;odata=verbose, */*"}
    )
    assert either.status_code == 200


async def test_single_property_value_and_count(
    client: httpx.AsyncClient, reader: dict[str, str]
) -> None:
    entity = await _get(client, reader, f"{PIA}('1000')")
    assert entity.json()["CRM_ID"] == str(CRM_1000)
    again = await client.get(
        f"{PIA}('1000')", headers={**reader, "If-None-Match": entity.headers["etag"]}
    )
    assert again.status_code == 304
    prop = (await _get(client, reader, f"{PIA}('1000')/Inventory")).json()
    assert prop == {
        "odata.metadata": f"http://testserver{ROOT}$metadata#Edm.Decimal",
        "value": "17.5",
    }
    raw = await _get(client, reader, f"{PIA}('1000')/Inventory/$value")
    assert (raw.text, raw.headers["content-type"]) == ("17.5", "text/plain; charset=utf-8")
    count = await client.get(f"{IA}/$count", headers={**reader, "Accept": "text/plain"})
    assert (count.status_code, count.text) == (200, "6")
    by_name = await _get(
        client, reader, "/ODataV3/Company(Name='CRONUS')/ItemAvailability(ItemNo='1003')"
    )
    assert by_name.json()["Inventory"] == "30"
    assert (await _get(client, reader, f"{PIA}('1001')")).status_code == 404  # not coupled


async def test_service_document_and_metadata(
    client: httpx.AsyncClient, reader: dict[str, str]
) -> None:
    service = (await _get(client, reader, ROOT)).json()
    assert service == {
        "odata.metadata": f"http://testserver{ROOT}$metadata",
        "value": [{"name": "ProductItemAvailability", "url": "ProductItemAvailability"},
                  {"name": "ItemAvailability", "url": "ItemAvailability"}],
    }  # fmt: skip
    assert (await _get(client, reader, "/ODataV3/Company('CRONUS')/")).json() == service
    metadata = await _get(client, reader, f"{ROOT}$metadata")
    assert metadata.headers["dataserviceversion"] == "3.0;"
    root = ET.fromstring(metadata.content)  # noqa: S314 - our own server's document
    assert root.tag == f"{EDMX}Edmx" and root.attrib["Version"] == "1.0"
    types = {t.attrib["Name"]: t for t in root.iter(f"{EDM}EntityType")}
    assert set(types) == {"ProductItemAvailability", "ItemAvailability"}
    props = {
        p.attrib["Name"]: p.attrib for p in types["ProductItemAvailability"].iter(f"{EDM}Property")
    }
    assert props["CRM_ID"]["Type"] == "Edm.Guid"
    assert (props["Inventory"]["Precision"], props["Inventory"]["Scale"]) == ("18", "5")
    assert {s.attrib["Name"] for s in root.iter(f"{EDM}EntitySet")} == set(types)


@pytest.mark.parametrize(
    ("url", "status", "code"),
    [
        (f"{ROOT}?$filter=ItemNo eq '1000'", 400, "BadRequest_InvalidRequest"),
        (f"{IA}?$count=true", 400, "BadRequest_InvalidRequest"),
        (f"{IA}?$FILTER=ItemNo eq '1000'", 400, "BadRequest_InvalidRequest"),
        (f"{IA}?$inlinecount=some", 400, "BadRequest_InvalidRequest"),
        (f"{IA}?$filter=contains(ItemNo,'1')", 400, "BadRequest_InvalidFilter"),
        (f"{IA}?$filter=ItemNo in ('1000')", 400, "BadRequest_InvalidFilter"),
        (f"{IA}?$filter=CRM_ID eq guid'nope'", 400, "BadRequest_InvalidFilter"),
        (f"{IA}?$filter=ItemNo eq @p&@p='1'", 400, "BadRequest_InvalidFilter"),
        (f"{IA}?$filter=replace(ItemNo,'1','2') eq '2000'", 501, "NotImplemented_Filter"),
        (f"{IA}?$expand=Nope", 501, "NotImplemented"),
        (
            f"{IA}?$filter=substring(ItemNo, 99999999999999999999) eq ''",
            400,
            "BadRequest_InvalidFilter",
        ),
        ("/ODataV3/Company('Other')/ItemAvailability", 404, "BadRequest_NotFound"),
        ("/ODataV3/ItemAvailabilityByLocation", 404, "BadRequest_NotFound"),
    ],
)
async def test_errors_have_the_v3_shape(
    client: httpx.AsyncClient, reader: dict[str, str], url: str, status: int, code: str
) -> None:
    response = await client.get(url, headers=reader)
    assert response.status_code == status, response.text
    assert response.headers["dataserviceversion"] == "3.0;"
    error = response.json()["odata.error"]
    assert error["code"] == code
    assert error["message"]["lang"] == "en-US" and error["message"]["value"]


async def test_same_auth_versions_and_read_only(
    client: httpx.AsyncClient, reader: dict[str, str]
) -> None:
    anonymous = await client.get(PIA)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith('Basic realm="Salesbridge OData"')
    assert anonymous.json()["odata.error"]["code"] == "Authentication_InvalidCredentials"
    wrong = await client.get(PIA, headers=factories.basic_header("crm", "sbk_wrong"))
    assert wrong.status_code == 401
    old = await client.get(PIA, headers={**reader, "MaxDataServiceVersion": "2.0"})
    assert old.status_code == 400
    assert (
        await client.get(PIA, headers={**reader, "MaxDataServiceVersion": "3.0;NetFx"})
    ).status_code == 200
    assert (await client.post(PIA, headers=reader, json={})).status_code == 405
    lower = await client.get("/odatav3/Company('CRONUS')/ProductItemAvailability", headers=reader)
    assert lower.status_code == 200
