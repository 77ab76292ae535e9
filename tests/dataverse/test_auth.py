"""Client credentials against the sandbox's token endpoint: caching, refresh, refusals."""

from __future__ import annotations

import asyncio

import pytest

from app.dataverse import DataverseClient, client_from_connection
from app.dataverse.auth import ClientCredentialsAuth, scope_for_server, token_url_for_tenant
from app.dataverse.errors import AuthError, DataverseConfigError, FailureKind
from app.sandbox import SandboxConfig
from tests.dataverse.conftest import FAST_RETRY, credentials_for
from tests.fixtures.sandbox import RunningSandbox, start_sandbox


async def test_token_is_fetched_once_and_shared(dv_sandbox: RunningSandbox) -> None:
    async with DataverseClient(dv_sandbox.base_url, credentials=credentials_for(dv_sandbox)) as crm:
        await asyncio.gather(*(crm.whoami() for _ in range(20)))
        assert isinstance(crm.auth, ClientCredentialsAuth)
        assert crm.auth.tokens_fetched == 1
        assert crm.auth.scope == f"{dv_sandbox.base_url}/.default"


async def test_a_refused_token_is_refreshed_once() -> None:
    frozen = 0.0  # our cache believes the token is fresh forever; the server knows better
    with start_sandbox(SandboxConfig(token_lifetime_seconds=1)) as sandbox:
        auth = ClientCredentialsAuth(
            token_url=sandbox.token_url,
            client_id=sandbox.config.client_id,
            client_secret=sandbox.config.client_secret,
            scope=sandbox.scope,
            clock=lambda: frozen,
        )
        async with DataverseClient(sandbox.base_url, auth=auth) as crm:
            await crm.whoami()
            await asyncio.sleep(2.05)  # the server-side expiry (exp is in whole seconds)
            await crm.whoami()
            assert auth.tokens_fetched == 2
            assert sandbox.state.counters.unauthorized == 1
        await auth.aclose()


async def test_wrong_secret_gives_a_clear_auth_error(dv_sandbox: RunningSandbox) -> None:
    secret = "not-the-secret-value-1234"
    credentials = credentials_for(dv_sandbox, secret=secret)
    async with DataverseClient(dv_sandbox.base_url, credentials=credentials) as crm:
        with pytest.raises(AuthError) as caught:
            await crm.whoami()
    error = caught.value
    text = str(error)
    assert "client id or client secret is wrong" in text
    assert "sandbox-client" in text and "check the connection setup" in text
    assert error.code == "invalid_client" and error.status_code == 401
    assert error.failure_kind is FailureKind.config
    assert secret not in text and secret not in repr(crm.auth) and secret not in repr(credentials)
    assert dv_sandbox.state.counters.total_requests == 0  # nothing reached the Web API


async def test_unknown_tenant_is_refused_with_its_reason(dv_sandbox: RunningSandbox) -> None:
    token_url = dv_sandbox.token_url.replace("sandbox-tenant", "other-tenant")
    auth = ClientCredentialsAuth(
        token_url=token_url, client_id="sandbox-client", client_secret="sandbox-secret",
        scope=dv_sandbox.scope,
    )  # fmt: skip
    async with DataverseClient(dv_sandbox.base_url, auth=auth) as crm:
        with pytest.raises(AuthError, match="token request was refused.*other-tenant"):
            await crm.whoami()
    await auth.aclose()


async def test_client_from_connection_values(dv_sandbox: RunningSandbox) -> None:
    client = client_from_connection(
        server_address=dv_sandbox.base_url + "/",
        api_version="9.2",
        authentication_type="oauth_client_secret",
        tenant_id="sandbox-tenant",
        token_url=dv_sandbox.token_url,
        client_id="sandbox-client",
        client_secret="sandbox-secret",
        retry_policy=FAST_RETRY,
    )
    async with client as crm:
        assert str((await crm.whoami()).user_id) == dv_sandbox.state.user_id
        assert crm.api_url == dv_sandbox.api_url


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"server_address": "contoso.crm.dynamics.com"}, "server address must be the CRM URL"),
        ({"authentication_type": "ad"}, "'ad' is not supported"),
        ({"client_secret": ""}, "missing: client secret"),
        ({"tenant_id": "", "token_url": ""}, "missing: tenant id or token URL"),
    ],
)
def test_client_from_connection_names_what_to_fix(changes: dict[str, str], message: str) -> None:
    values = {
        "server_address": "https://contoso.crm4.dynamics.com",
        "api_version": "9.2",
        "authentication_type": "oauth_client_secret",
        "tenant_id": "t",
        "token_url": "",
        "client_id": "c",
        "client_secret": "s",
    } | changes
    with pytest.raises(DataverseConfigError, match=message) as caught:
        client_from_connection(**values)  # type: ignore[arg-type]
    assert caught.value.failure_kind is FailureKind.config


def test_token_url_and_scope_from_the_tenant() -> None:
    assert (
        token_url_for_tenant("contoso-tenant")
        == "https://login.microsoftonline.com/contoso-tenant/oauth2/v2.0/token"
    )
    assert scope_for_server("https://contoso.crm4.dynamics.com/") == (
        "https://contoso.crm4.dynamics.com/.default"
    )
