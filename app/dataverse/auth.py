"""OAuth 2.0 client credentials as an ``httpx.Auth`` flow.

The application proves who it is with a client secret or with a certificate (a client
assertion it signs for each token request, ``app.dataverse.client_assertion``). The token
is fetched from ``<authority>/<tenant>/oauth2/v2.0/token`` (or a configured URL)
for the scope ``<server>/.default``, cached until shortly before it expires, and fetched
again once if Dataverse answers 401 (a revoked or rotated token). A second 401 goes back to
the client, which raises ``AuthError``. The client secret is never logged, never put in an
exception message and never in ``repr``; nor is the certificate's private key.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass

import httpx

from app.dataverse.client_assertion import CLIENT_ASSERTION_TYPE, ClientCertificate
from app.dataverse.errors import AuthError, DataverseProtocolError, DataverseTransportError

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"


def token_url_for_tenant(tenant_id: str, *, authority: str = DEFAULT_AUTHORITY) -> str:
    return f"{authority.rstrip('/')}/{tenant_id}/oauth2/v2.0/token"


def scope_for_server(server_url: str) -> str:
    return f"{server_url.rstrip('/')}/.default"


@dataclass
class _CachedToken:
    value: str
    refresh_at: float  # monotonic time after which we fetch a new one


class ClientCredentialsAuth(httpx.Auth):
    """Bearer tokens from a client-credentials grant, shared by all requests of a client."""

    requires_response_body = False

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str = "",
        certificate: ClientCertificate | None = None,
        scope: str,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (token_url and client_id and scope) or bool(client_secret) == bool(certificate):
            msg = (
                "client credentials need a token URL, a client id, a scope and either a "
                "client secret or a certificate"
            )
            raise ValueError(msg)
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self._certificate = certificate
        self.scope = scope
        self._transport = transport
        self._timeout_seconds = timeout_seconds
        self._clock = clock
        self._token: _CachedToken | None = None
        self._lock = asyncio.Lock()
        self._http: httpx.AsyncClient | None = None
        self.tokens_fetched = 0

    def __repr__(self) -> str:
        return f"ClientCredentialsAuth(token_url={self.token_url!r}, client_id={self.client_id!r})"

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        msg = "ClientCredentialsAuth is async only; use it with httpx.AsyncClient"
        raise RuntimeError(msg)
        yield request  # pragma: no cover - makes this a generator

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.get_token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == httpx.codes.UNAUTHORIZED:
            token = await self.get_token(stale=token)
            request.headers["Authorization"] = f"Bearer {token}"
            yield request

    async def get_token(self, *, stale: str | None = None) -> str:
        """A valid token; ``stale`` is one the server refused, so fetch past the cache."""
        async with self._lock:
            cached = self._token
            is_fresh = cached is not None and self._clock() < cached.refresh_at
            if cached is not None and is_fresh and cached.value != stale:
                return cached.value
            self._token = await self._fetch()
            return self._token.value

    async def _fetch(self) -> _CachedToken:
        form = {"grant_type": "client_credentials", "client_id": self.client_id}
        form["scope"] = self.scope
        if self._certificate is not None:
            form["client_assertion_type"] = CLIENT_ASSERTION_TYPE
            form["client_assertion"] = self._certificate.sign_assertion(
                token_url=self.token_url, client_id=self.client_id
            )
        else:
            form["client_secret"] = self._client_secret
        if self._http is None:
            self._http = httpx.AsyncClient(transport=self._transport, timeout=self._timeout_seconds)
        try:
            response = await self._http.post(self.token_url, data=form)
        except httpx.TransportError as exc:
            msg = f"cannot reach the token endpoint {self.token_url}: {type(exc).__name__}"
            raise DataverseTransportError(msg) from exc
        self.tokens_fetched += 1
        if response.status_code != httpx.codes.OK:
            raise self._refusal(response)
        return self._read_token(response)

    def _read_token(self, response: httpx.Response) -> _CachedToken:
        try:
            payload = response.json()
            value = str(payload["access_token"])
            lifetime = float(payload.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError) as exc:
            msg = f"the token endpoint {self.token_url} answered without a usable access_token"
            raise DataverseProtocolError(msg) from exc
        # Refresh a little early (10% of the lifetime, at most 5 minutes) so a token never
        # expires between being attached and being checked.
        margin = min(300.0, lifetime * 0.1)
        return _CachedToken(value=value, refresh_at=self._clock() + lifetime - margin)

    @property
    def credential_name(self) -> str:
        """What proves the application's identity: ``certificate`` or ``client secret``."""
        return "certificate" if self._certificate is not None else "client secret"

    def _refusal(self, response: httpx.Response) -> AuthError:
        code, description = _oauth_error(response)
        credential = (
            "certificate is not registered on the app, or"
            if self._certificate is not None
            else "client secret is"
        )
        what = (
            f"the client id or {credential} wrong or expired"
            if response.status_code in (400, 401)
            and code in ("invalid_client", "unauthorized_client")
            else "the token request was refused"
        )
        message = (
            f"cannot sign in to Dataverse: {what} (client id {self.client_id!r}, "
            f"token URL {self.token_url}); check the connection setup"
            + (f". Details: {description}" if description else "")
        )
        return AuthError(
            message,
            status_code=response.status_code,
            code=code,
            source="the identity provider",
        )


def _oauth_error(response: httpx.Response) -> tuple[str, str]:
    """``error`` / ``error_description`` of an OAuth error answer (RFC 6749 §5.2)."""
    try:
        payload = response.json()
    except ValueError:
        return "", response.text[:200]
    if not isinstance(payload, dict):
        return "", ""
    return str(payload.get("error", "")), str(payload.get("error_description", ""))[:300]
