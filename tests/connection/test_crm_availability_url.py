"""What the CRM is given works: the URL, user name and key the solution deployment writes
into ``nav_connection`` read ``ProductItemAvailability`` as OData V3, over real HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models.integration import ConnectionSetup
from app.models.security import Role
from app.settings import Settings
from tests.connection.conftest import API, configure
from tests.factories import create_access_key, create_user
from tests.fixtures.sandbox import RunningSandbox
from tests.fixtures.services import free_port
from tests.hostile.live import serve
from tests.odata import factories

CRM_PRODUCT = uuid.UUID("6f1d2b8e-0c4a-4e57-9a51-8d1d6a3c2b10")


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def settings(settings: Settings, port: int) -> Settings:
    """The suite's settings, with the public URL of the server this test starts."""
    return settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}", "port": port})


@pytest.fixture
def live(settings: Settings, port: int) -> Iterator[str]:
    with serve(settings, port=port):
        yield settings.public_url


async def _deploy(
    client: httpx.AsyncClient, admin: dict[str, str], sandbox: RunningSandbox, **odata: Any
) -> dict[str, Any]:
    await configure(client, admin, sandbox, item_availability_enabled=True, **odata)
    response = await client.post(f"{API}/connection/deploy-solution", headers=admin)
    assert response.status_code == 200, response.text
    (nav,) = sandbox.state.rows("nav_connections")
    return nav


async def test_the_stored_url_serves_product_item_availability(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    session: AsyncSession,
    settings: Settings,
    sandbox: RunningSandbox,
    live: str,
) -> None:
    user = await create_user(
        session, user_name="crm-reader", roles=(Role.product_availability,), password=None
    )
    key = await create_access_key(session, settings, user=user)
    await factories.add_items(session, ["1000", "1001"])
    await factories.add_ledger(session, [("1000", "", "12.5"), ("1001", "", 3)])
    await factories.couple(session, "1000", CRM_PRODUCT)
    await factories.couple(session, "1001", uuid.uuid4())
    await session.commit()

    nav = await _deploy(client, admin, sandbox, odata_user_name="crm-reader", odata_access_key=key)
    url = nav["nav_dynamicsnavodataurl"]
    assert url == f"{live}/ODataV3/Company('CRONUS')/ProductItemAvailability"
    auth = (nav["nav_dynamicsnavodatausername"], nav["nav_dynamicsnavodataaccesskey"])
    async with httpx.AsyncClient(auth=auth, timeout=30) as crm_side:
        everything = await crm_side.get(url)
        assert everything.status_code == 200, everything.text
        assert everything.headers["dataserviceversion"] == "3.0;"
        assert everything.headers["content-type"].startswith("application/json;odata=")
        assert sorted(r["ItemNo"] for r in everything.json()["value"]) == ["1000", "1001"]
        one = await crm_side.get(url, params={"$filter": f"CRM_ID eq guid'{CRM_PRODUCT}'"})
        (row,) = one.json()["value"]
        assert (row["CRM_ID"], row["ItemNo"], row["Inventory"]) == (
            str(CRM_PRODUCT),
            "1000",
            "12.5",
        )
        assert one.json()["odata.metadata"] == (f"{live}/ODataV3/$metadata#ProductItemAvailability")


async def test_redeploy_moves_a_stored_v4_root_to_the_v3_url(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    session: AsyncSession,
    settings: Settings,
    sandbox: RunningSandbox,
) -> None:
    user = await create_user(
        session, user_name="crm-reader", roles=(Role.product_availability,), password=None
    )
    key = await create_access_key(session, settings, user=user)
    await session.commit()
    legacy = {"odata_url": "https://erp.example.com/odata/v4/"}
    first = await _deploy(
        client, admin, sandbox, odata_user_name="crm-reader", odata_access_key=key, **legacy
    )
    expected = "https://erp.example.com/ODataV3/Company('CRONUS')/ProductItemAvailability"
    assert first["nav_dynamicsnavodataurl"] == expected
    setup = (await session.exec(select(ConnectionSetup))).one()
    await session.refresh(setup)
    assert setup.odata_url == expected  # the setup shows what the CRM was given
    custom = "https://proxy.example.com/availability"
    again = await _deploy(client, admin, sandbox, odata_url=custom)
    assert again["nav_dynamicsnavodataurl"] == custom  # an admin's own URL is kept
