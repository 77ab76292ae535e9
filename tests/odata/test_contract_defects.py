"""The contract defects found by a client: plain-text counts, huge substring arguments,
named company keys, and query options sent to the service document."""

from __future__ import annotations

import logging

import httpx
import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth import tokens
from app.models.security import Role
from app.settings import Settings
from tests.factories import create_user

ROOT = "/odata/v4/"
HUGE_SUBSTRINGS = [
    "substring(ItemNo, 99999999999999999999) eq ''",
    f"substring(ItemNo, {2**63}) eq ''",
    f"substring(ItemNo, {2**31}) eq ''",
    "substring(ItemNo, 1, 99999999999999999999) eq ''",
    "substring(ItemNo, @start) eq ''",
    "substring(ItemNo, 0, @length) eq ''",
]
ALIASES = {"@start": "99999999999999999999", "@length": str(2**63)}


@pytest.fixture
async def erp_user(session: AsyncSession, settings: Settings) -> dict[str, str]:
    await create_user(session, user_name="erp", roles=(Role.integration_user,), password=None)
    await session.commit()
    token, _ = tokens.create_access_token(
        settings, subject="erp", roles=["integration-user"], version=0, key_id=None
    )
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.usefixtures("catalogue")
async def test_count_answers_accept_text_plain(
    client: httpx.AsyncClient, reader: dict[str, str], settings: Settings
) -> None:
    company = f"Company('{settings.company_name}')/"
    for prefix in ("", company, f"Company(Name='{settings.company_name}')/"):
        for accept in ("text/plain", "text/plain;q=0.9, application/json", "*/*", "text/*"):
            response = await client.get(
                f"{ROOT}{prefix}ItemAvailability/$count", headers={**reader, "Accept": accept}
            )
            assert (response.status_code, response.text) == (200, "6"), (prefix, accept)
            assert response.headers["content-type"] == "text/plain; charset=utf-8"
    refused = await client.get(
        f"{ROOT}ItemAvailability/$count", headers={**reader, "Accept": "application/xml"}
    )
    assert refused.status_code == 406
    value = await client.get(
        f"{ROOT}ItemAvailability('1000')/Inventory/$value",
        headers={**reader, "Accept": "text/plain"},
    )
    assert (value.status_code, value.text) == (200, "17.5")


@pytest.mark.usefixtures("catalogue")
async def test_huge_substring_arguments_are_400_on_odata(
    client: httpx.AsyncClient, reader: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        for text in HUGE_SUBSTRINGS:
            for path in ("ItemAvailability", "ItemAvailability/$count"):
                params = {"$filter": text, **ALIASES}
                response = await client.get(ROOT + path, params=params, headers=reader)
                assert response.status_code == 400, (text, path, response.text)
                assert response.json()["error"]["code"] == "BadRequest_InvalidFilter"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no traceback logged
    fine = await client.get(
        ROOT + "ItemAvailability",
        params={"$filter": f"substring(ItemNo, {2**31 - 2}) eq ''", "$select": "ItemNo"},
        headers=reader,
    )
    assert fine.status_code == 200 and len(fine.json()["value"]) == 6


async def test_huge_substring_arguments_are_400_on_rest_lists(
    client: httpx.AsyncClient, erp_user: dict[str, str]
) -> None:
    for text in HUGE_SUBSTRINGS:
        if "@" in text:
            continue  # the ERP lists take no parameter aliases
        response = await client.get(
            "/api/v1/items", params={"$filter": text.replace("ItemNo", "no")}, headers=erp_user
        )
        assert response.status_code == 400, (text, response.text)
        assert "substring" in response.json()["detail"]


@pytest.mark.usefixtures("catalogue")
async def test_company_by_named_key(
    client: httpx.AsyncClient, reader: dict[str, str], settings: Settings
) -> None:
    name = settings.company_name
    for company in (f"Company(Name='{name}')", f"Company( Name = '{name}' )", f"Company('{name}')"):
        response = await client.get(f"{ROOT}{company}/ItemAvailability('1000')", headers=reader)
        assert response.status_code == 200, (company, response.text)
        assert response.json()["ItemNo"] == "1000"
    other = await client.get(f"{ROOT}Company(Name='Nope')/ItemAvailability", headers=reader)
    assert other.status_code == 404
    wrong_key = await client.get(f"{ROOT}Company(Code='{name}')/ItemAvailability", headers=reader)
    assert wrong_key.status_code == 400


async def test_service_document_refuses_query_options(
    client: httpx.AsyncClient, reader: dict[str, str], settings: Settings
) -> None:
    company = f"Company('{settings.company_name}')/"
    for path in ("", company, "$metadata"):
        for query in ("$filter=ItemNo eq '1000'", "$top=1", "filter=x", "$select=ItemNo"):
            response = await client.get(f"{ROOT}{path}?{query}", headers=reader)
            assert response.status_code == 400, (path, query, response.text)
            assert response.json()["error"]["code"] == "BadRequest_InvalidRequest"
    plain = await client.get(f"{ROOT}?$format=json", headers=reader)
    assert plain.status_code == 200 and plain.json()["value"]
    assert (await client.get(f"{ROOT}$metadata?$format=json", headers=reader)).status_code == 200
