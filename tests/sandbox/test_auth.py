"""Token endpoint (Entra v2.0 client credentials) and bearer checks on every call."""

from __future__ import annotations

import httpx

from tests.fixtures.sandbox import RunningSandbox
from tests.sandbox.conftest import ODATA_HEADERS, error_of, fetch_token


async def test_token_endpoint_issues_a_bearer_token(sandbox: RunningSandbox) -> None:
    response = await fetch_token(sandbox)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == sandbox.config.token_lifetime_seconds
    assert body["access_token"].count(".") == 2  # a JWT


async def test_wrong_secret_is_401_with_an_oauth_error(sandbox: RunningSandbox) -> None:
    response = await fetch_token(sandbox, client_secret="wrong")
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "invalid_client"
    assert body["error_codes"] == [7000215]
    assert body["error_description"].startswith("AADSTS7000215")


async def test_unknown_client_is_401(sandbox: RunningSandbox) -> None:
    response = await fetch_token(sandbox, client_id="someone-else")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_wrong_grant_and_scope_are_400(sandbox: RunningSandbox) -> None:
    grant = await fetch_token(sandbox, grant_type="password")
    assert grant.status_code == 400
    assert grant.json()["error"] == "unsupported_grant_type"
    scope = await fetch_token(sandbox, scope=sandbox.base_url)
    assert scope.status_code == 400
    assert scope.json()["error"] == "invalid_scope"


async def test_every_web_api_call_needs_a_valid_bearer(sandbox: RunningSandbox) -> None:
    async with httpx.AsyncClient(base_url=sandbox.api_url, headers=ODATA_HEADERS) as client:
        missing = await client.get("WhoAmI")
        forged = await client.get("accounts", headers={"Authorization": "Bearer a.b.c"})
        token = (await fetch_token(sandbox)).json()["access_token"]
        tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        altered = await client.get("accounts", headers={"Authorization": f"Bearer {tampered}"})
    for response in (missing, forged, altered):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        error_of(response)
    assert sandbox.state.counters.unauthorized == 3


async def test_whoami_returns_the_application_user(
    api: httpx.AsyncClient, sandbox: RunningSandbox
) -> None:
    response = await api.get("WhoAmI")
    assert response.status_code == 200
    assert response.headers["OData-Version"] == "4.0"
    body = response.json()
    assert body["@odata.context"].endswith("$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse")
    assert set(body) == {"@odata.context", "BusinessUnitId", "UserId", "OrganizationId"}
    user = (await api.get(f"systemusers({body['UserId']})")).json()
    assert user["applicationid"] == sandbox.config.client_id
    assert user["_businessunitid_value"] == body["BusinessUnitId"]


async def test_expired_token_is_refused() -> None:
    from app.sandbox import SandboxConfig
    from tests.fixtures.sandbox import start_sandbox

    with start_sandbox(SandboxConfig(token_lifetime_seconds=0)) as running:
        token = (await fetch_token(running)).json()["access_token"]
        headers = {**ODATA_HEADERS, "Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=running.api_url, headers=headers) as client:
            response = await client.get("WhoAmI")
    assert response.status_code == 401
