"""Filters, sorts and selections reach only the public fields: never a digest, hash or secret.

OData: every column of every table that an entity set does not show is tried, by name, in
``$filter``, ``$select`` and ``$orderby`` of every entity set. REST: on every list route,
the hidden columns of the table it lists plus the secret-bearing columns of every table, in
``$filter``, ``$orderby`` and ``field=value`` (``sort`` shares ``$orderby``'s resolution).
Each must be refused as unknown (400), so no query can probe a hidden value one comparison
at a time.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

import app.models.all_tables  # noqa: F401 - every table registered
from app.odata.entity_sets import ENTITY_SETS
from app.settings import Settings
from tests.factories import bearer_headers, create_user
from tests.odata import factories as odata_factories

ALL_COLUMNS = sorted(
    {column.name for table in SQLModel.metadata.tables.values() for column in table.columns}
)
# The ones an attacker wants most; each must exist, or the test would prove nothing about it.
SECRETS = (
    "password_hash",
    "key_digest",
    "client_secret_encrypted",
    "password_encrypted",
    "odata_access_key_encrypted",
    "secrets_encrypted",
    "token_version",
    "failure_count",
)


def test_the_secret_columns_exist() -> None:
    assert set(SECRETS) <= set(ALL_COLUMNS)


def _hidden(public: set[str]) -> list[str]:
    """Every column name of every table that is not (case-insensitively) a public name."""
    folded = {name.casefold() for name in public}
    return [name for name in ALL_COLUMNS if name.casefold() not in folded]


async def test_odata_options_reach_only_entity_set_properties(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    reader = await odata_factories.odata_reader(session, settings)
    tried = 0
    for entity_set in ENTITY_SETS.values():
        hidden = _hidden({p.name for p in entity_set.properties})
        assert set(SECRETS) <= set(hidden)
        url = f"/odata/v4/{entity_set.name}"
        for name in hidden:
            for option, value in (
                ("$filter", f"{name} eq null"),
                ("$select", name),
                ("$orderby", f"{name} desc"),
            ):
                response = await client.get(url, params={option: value}, headers=reader)
                assert response.status_code == 400, (entity_set.name, option, value, response.text)
                error = response.json()["error"]
                assert error["code"].startswith("BadRequest"), error
                assert name in error["message"] or option == "$filter", error
                tried += 1
    assert tried > 1500


def _list_routes(openapi: dict[str, Any]) -> dict[str, set[str]]:
    """Every list route (no path parameters) with ``$filter``: path -> its items' fields."""
    schemas = openapi["components"]["schemas"]
    routes: dict[str, set[str]] = {}
    for path, operations in openapi["paths"].items():
        get = operations.get("get")
        if get is None or "{" in path:
            continue
        if not any(p["name"] == "$filter" for p in get.get("parameters", [])):
            continue
        page = get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        items = schemas[page.rsplit("/", 1)[1]]["properties"]["items"]["items"]["$ref"]
        routes[path] = set(schemas[items.rsplit("/", 1)[1]]["properties"])
    return routes


def _own_table_columns(fields: set[str]) -> set[str]:
    """The columns of the table the route lists: the one sharing the most names with it."""
    best = max(
        SQLModel.metadata.tables.values(), key=lambda t: len(fields & {c.name for c in t.columns})
    )
    return {column.name for column in best.columns}


async def test_rest_list_filters_reach_only_public_fields(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await create_user(session, user_name="admin")
    await session.commit()
    admin = await bearer_headers(client, user_name="admin")
    routes = _list_routes((await client.get("/openapi.json")).json())
    assert len(routes) >= 15
    tried = 0
    for path, fields in routes.items():
        folded = {name.casefold() for name in fields}
        own_hidden = {c for c in _own_table_columns(fields) if c.casefold() not in folded}
        for name in sorted((own_hidden | set(SECRETS)) - fields):
            for params in ({"$filter": f"{name} eq null"}, {"$orderby": name}, {name: "x"}):
                response = await client.get(path, params=params, headers=admin)
                assert response.status_code == 400, (path, params, response.text)
                body = response.json()
                assert body["error"] in ("InvalidInput", "ODataFilter"), body
                assert name in body["detail"], body  # refused as an unknown name
                tried += 1
    assert tried > 400


@pytest.mark.parametrize("name", ["no", "description"])
async def test_public_fields_still_filter(
    client: httpx.AsyncClient, session: AsyncSession, name: str
) -> None:
    """The refusals above are about the names, not a broken filter: public names work."""
    await create_user(session, user_name="admin")
    await session.commit()
    admin = await bearer_headers(client, user_name="admin")
    response = await client.get(
        "/api/v1/items", params={"$filter": f"{name} eq 'x'", "$orderby": name}, headers=admin
    )
    assert response.status_code == 200, response.text
