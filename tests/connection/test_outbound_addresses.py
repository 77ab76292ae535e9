"""No SSRF: CRM and token URLs on loopback, private, link-local or metadata addresses are
refused when saved and again when connecting, unless the operator allows them.

The live app here runs with SALESBRIDGE_ALLOW_PRIVATE_CRM_ADDRESSES off (the suite's
default settings turn it on for the sandbox, which listens on 127.0.0.1).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth.encryption import encrypt_secret
from app.dataverse.public_addresses import PrivateAddressError, PublicAddressTransport
from app.models.integration import ConnectionSetup
from app.settings import Settings
from tests.connection.foreign_host import foreign_host

API = "/api/v1"
PRIVATE_HOSTS = [
    "10.0.0.5", "172.16.3.4:8443", "192.168.1.10", "127.0.0.1:8100", "0.0.0.0",  # noqa: S104
    "localhost", "crm.localhost", "[::1]", "[::ffff:127.0.0.1]", "[fe80::1]",
    "[fd00:ec2::254]", "169.254.169.254", "100.100.100.200", "168.63.129.16",
    "127.1", "2130706433", "0x7f000001", "0177.0.0.1", "127.0.0.1.", "[64:ff9b::a00:1]",
]  # fmt: skip
REFUSED = "SALESBRIDGE_ALLOW_PRIVATE_CRM_ADDRESSES"


@pytest.fixture
def allow_private_crm_addresses() -> bool:
    return False


def _body(**changes: Any) -> dict[str, Any]:
    body = {
        "server_address": "https://contoso.crm4.dynamics.com",
        "authentication_type": "oauth_client_secret",
        "token_url": "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
        "client_id": "app-id",
        "client_secret": "the client secret",
    }
    return {**body, **changes}


async def test_private_crm_and_token_urls_are_refused(
    live: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    failures = []
    for host in PRIVATE_HOSTS:
        for field in ("server_address", "token_url"):
            body = _body(**{field: f"https://{host}/"})
            response = await live.patch(f"{API}/connection", json=body, headers=admin)
            if response.status_code != 400 or REFUSED not in response.json()["detail"]:
                failures.append(f"{field}={host}: {response.status_code} {response.text[:120]}")
    plain = await live.patch(
        f"{API}/connection", json=_body(server_address="http://127.0.0.1:8100"), headers=admin
    )

    assert failures == []
    assert plain.status_code == 400
    stored = (await live.get(f"{API}/connection", headers=admin)).json()
    assert stored["server_address"] == ""  # nothing of it was kept


async def test_public_urls_are_accepted(live: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await live.patch(f"{API}/connection", json=_body(), headers=admin)

    assert response.status_code == 200, response.text
    assert response.json()["server_address"] == "https://contoso.crm4.dynamics.com"


async def test_the_assisted_setup_refuses_private_addresses_too(
    live: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    assert (await live.post(f"{API}/assisted-setup", headers=admin)).status_code == 201
    steps = f"{API}/assisted-setup/steps"
    url = await live.put(
        f"{steps}/crm_url", json={"server_address": "https://169.254.169.254"}, headers=admin
    )
    assert url.status_code == 400 and REFUSED in url.json()["detail"], url.text
    ok = await live.put(
        f"{steps}/crm_url", json={"server_address": "https://contoso.crm.dynamics.com"},
        headers=admin,
    )  # fmt: skip
    assert ok.status_code == 200, ok.text
    credentials = await live.put(
        f"{steps}/credentials",
        json={"client_id": "app", "client_secret": "s" * 20, "token_url": "https://[::1]/t"},
        headers=admin,
    )
    assert credentials.status_code == 400 and REFUSED in credentials.json()["detail"]


async def test_an_address_stored_earlier_is_refused_when_connecting(
    live: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession, settings: Settings
) -> None:
    """Saved while private addresses were allowed (or resolved differently then): the
    connection test still never reaches it, and says why."""
    with foreign_host() as host:
        session.add(
            ConnectionSetup(
                server_address=host.base_url,
                token_url=host.token_url,
                client_id="app",
                client_secret_encrypted=encrypt_secret(settings, "the stored client secret"),
            )
        )
        await session.commit()
        response = await live.post(f"{API}/connection/test", headers=admin)

    assert response.status_code == 200, response.text
    result = response.json()
    assert result["ok"] is False
    [step] = result["steps"]
    assert step["name"] == "token" and step["ok"] is False
    assert "public addresses only" in step["detail"] and REFUSED in step["detail"]
    assert host.received == []


async def test_names_are_checked_after_resolving_them() -> None:
    """A name is not refused when saved (it could be anything): the connection is, once
    the name resolves to a loopback address."""
    with foreign_host() as host:
        port = host.base_url.rsplit(":", 1)[1]
        async with httpx.AsyncClient(transport=PublicAddressTransport()) as client:
            for url in (f"http://localhost:{port}/", f"http://127.1:{port}/"):
                with pytest.raises(PrivateAddressError):
                    await client.get(url)
        async with httpx.AsyncClient() as control:
            assert (await control.get(f"http://localhost:{port}/x")).status_code == 404
    assert [path for _method, path, _body in host.received] == ["/x"]
