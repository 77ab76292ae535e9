"""``DataverseClient``: the operations Salesbridge performs on the Dataverse Web API.

    async with DataverseClient(server, credentials=ClientCredentials(...)) as crm:
        me = await crm.whoami()
        product_id = await crm.create("products", {"name": "Bike", "productnumber": "1000"})
        async for row in crm.query("products", select=["name"], page_size=500):
            ...

Every operation goes through one ``Sender`` (retry table, Retry-After gate, adaptive
concurrency). Creates carry a client-generated primary key, so replaying a create after a
dropped connection cannot make a second row: if the replay finds the row, that is success.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpx

from app import exact_json
from app.dataverse import addressing, batch, batch_results, paging
from app.dataverse.addressing import RecordKey
from app.dataverse.auth import ClientCredentialsAuth, scope_for_server, token_url_for_tenant
from app.dataverse.client_assertion import ClientCertificate
from app.dataverse.entities import primary_key_for
from app.dataverse.errors import DuplicateRecordError, NotFoundError
from app.dataverse.public_addresses import PublicAddressTransport
from app.dataverse.retry import RetryPolicy
from app.dataverse.sender import Exchange, GatedTransport, Sender, SendStats
from app.dataverse.throttle import DATAVERSE_MAX_CONCURRENCY, AdaptiveLimiter, gate_for_user
from app.dataverse.usage import UsageObserver

STANDARD_HEADERS = {
    "Accept": "application/json",
    "OData-MaxVersion": "4.0",
    "OData-Version": "4.0",
}
# Reads only: stops cached $expand results; on a write it would mean "create only".
READ_HEADERS = {"If-None-Match": "null"}
MAX_BATCH_OPERATIONS = 1000  # Dataverse's documented cap per $batch


@dataclass(frozen=True)
class ClientCredentials:
    """An app registration's id and its secret or certificate; the token URL comes from the
    tenant if unset."""

    client_id: str
    client_secret: str = ""
    tenant_id: str = ""
    token_url: str = ""
    certificate: ClientCertificate | None = None

    def __repr__(self) -> str:
        return f"ClientCredentials(client_id={self.client_id!r}, tenant_id={self.tenant_id!r})"


@dataclass(frozen=True)
class WhoAmI:
    user_id: uuid.UUID
    business_unit_id: uuid.UUID
    organization_id: uuid.UUID


class DataverseClient:
    def __init__(
        self,
        base_url: str,
        *,
        api_version: str = "9.2",
        auth: httpx.Auth | None = None,
        credentials: ClientCredentials | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout | float = httpx.Timeout(60.0, connect=10.0),
        retry_policy: RetryPolicy | None = None,
        initial_concurrency: int = 4,
        max_concurrency: int = DATAVERSE_MAX_CONCURRENCY,
        max_pages: int = paging.DEFAULT_MAX_PAGES,
        observer: UsageObserver | None = None,
        public_addresses_only: bool = False,
        caller_id: uuid.UUID | None = None,
    ) -> None:
        """``caller_id``: act on behalf of that CRM user (Dataverse's ``MSCRMCallerID``
        header on every request; the application user needs the right to impersonate)."""
        self.server_url = base_url.rstrip("/")
        self.api_url = f"{self.server_url}/api/data/v{api_version.lstrip('v')}/"
        self._api = httpx.URL(self.api_url)
        self.max_pages = max_pages
        self._owns_auth = auth is None  # close only what we made
        limits = httpx.Limits(max_connections=max_concurrency)
        if transport is None and public_addresses_only:  # the token request included
            inner: httpx.AsyncBaseTransport = PublicAddressTransport(limits=limits)
            auth_transport: httpx.AsyncBaseTransport | None = PublicAddressTransport()
        else:
            inner = transport or httpx.AsyncHTTPTransport(limits=limits)
            auth_transport = transport
        self.auth = auth or _auth_from_credentials(credentials, self.server_url, auth_transport)
        gate = gate_for_user(self.server_url, credentials.client_id if credentials else None)
        http = httpx.AsyncClient(
            base_url=self.api_url,
            auth=self.auth,
            transport=GatedTransport(inner, gate, observer),
            timeout=timeout,
            headers={
                **STANDARD_HEADERS,
                **({"MSCRMCallerID": str(caller_id)} if caller_id else {}),
            },
        )
        limiter = AdaptiveLimiter(
            initial=min(initial_concurrency, max_concurrency), maximum=max_concurrency
        )
        self._sender = Sender(
            http,
            gate=gate,
            limiter=limiter,
            policy=retry_policy or RetryPolicy(),
            observer=observer,
        )

    @property
    def stats(self) -> SendStats:
        return self._sender.stats

    @property
    def limiter(self) -> AdaptiveLimiter:
        return self._sender.limiter

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._sender.observer is not None:
            await self._sender.observer.flush()
        await self._sender.http.aclose()
        if self._owns_auth and isinstance(self.auth, ClientCredentialsAuth):
            await self.auth.aclose()

    # --- reads -----------------------------------------------------------------------------

    async def whoami(self) -> WhoAmI:
        """The connection test; ``user_id`` tells our own writes apart in ``_modifiedby_value``."""
        payload = exact_json.decode((await self._send("GET", "WhoAmI")).response.content)
        return WhoAmI(
            user_id=uuid.UUID(payload["UserId"]),
            business_unit_id=uuid.UUID(payload["BusinessUnitId"]),
            organization_id=uuid.UUID(payload["OrganizationId"]),
        )

    async def get(
        self,
        entity_set: str,
        key: RecordKey,
        *,
        select: Sequence[str] | None = None,
        expand: str | None = None,
    ) -> dict[str, Any]:
        """One record by id or alternate key; ``NotFoundError`` if it does not exist."""
        params = _query_params(select=select, expand=expand)
        path = addressing.record_path(entity_set, key)
        exchange = await self._send("GET", path, params=params, headers=READ_HEADERS)
        record: dict[str, Any] = exact_json.decode(exchange.response.content)
        return record

    async def query(
        self,
        entity_set: str,
        *,
        select: Sequence[str] | None = None,
        filter: str | None = None,
        orderby: str | Sequence[str] | None = None,
        top: int | None = None,
        expand: str | None = None,
        page_size: int | None = None,
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Records one by one, a page at a time: memory holds one page, whatever the total.

        With ``page_size`` the pages follow ``@odata.nextLink`` under ``Prefer:
        odata.maxpagesize``; ``top`` then caps the rows on our side (Dataverse ignores or
        mishandles ``$top`` together with paging). Without it, ``$top`` goes to the server.
        """
        order = [orderby] if isinstance(orderby, str) else orderby
        params = _query_params(select=select, expand=expand, filter=filter, orderby=order)
        if top is not None and page_size is None:
            params["$top"] = str(top)
        remaining = top
        async with aclosing(self.pages(entity_set, params=params, page_size=page_size)) as pages:
            async for page in pages:
                for record in page:
                    if remaining is not None:
                        if remaining <= 0:
                            return
                        remaining -= 1
                    yield record

    async def pages(
        self, entity_set: str, *, params: Mapping[str, str], page_size: int | None = None
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        """Raw pages (lists of records) of a query; ``params`` are the OData options."""
        headers = dict(READ_HEADERS)
        if page_size is not None:
            headers["Prefer"] = paging.prefer_page_size(page_size)
        guard = paging.NextLinkGuard(self._api, max_pages=self.max_pages)
        url, query = entity_set, dict(params) or None
        while True:
            # params=None for a next link: httpx would replace its query string with {}.
            exchange = await self._send("GET", url, params=query, headers=headers)
            payload = exact_json.decode(exchange.response.content)
            yield payload.get("value", [])
            next_link = payload.get("@odata.nextLink")
            if not next_link:
                return
            url, query = guard.check(next_link), None
            del payload, exchange  # let the page go before the next one arrives

    # --- writes ----------------------------------------------------------------------------

    async def create(
        self,
        entity_set: str,
        body: Mapping[str, Any],
        *,
        id: uuid.UUID | None = None,
        primary_key: str | None = None,
    ) -> uuid.UUID:
        """Create with a client-generated primary key; returns the id.

        The id travels in the body, so a replay after a lost answer finds the row it
        already made: that ``DuplicateRecordError`` on a replay counts as success. On a first
        attempt it is a real conflict and is raised.
        """
        record_id = id or uuid.uuid4()
        payload = {**body, primary_key_for(entity_set, primary_key=primary_key): str(record_id)}
        try:
            await self._send("POST", entity_set, **_json(payload))
        except DuplicateRecordError as exc:
            if not exc.after_ambiguous_attempt:
                raise
            self.stats.replayed_duplicates += 1
        return record_id

    async def update(
        self,
        entity_set: str,
        key: RecordKey,
        body: Mapping[str, Any],
        *,
        etag: str = "*",
    ) -> None:
        """Update only (``If-Match: *`` or a row version): never creates; 404 if missing."""
        path = addressing.record_path(entity_set, key)
        await self._send("PATCH", path, **_json(body, {"If-Match": etag}))

    async def upsert(
        self,
        entity_set: str,
        key: RecordKey,
        body: Mapping[str, Any],
        *,
        primary_key: str | None = None,
    ) -> uuid.UUID | None:
        """Create or update by id or alternate key; returns the record id.

        Dataverse names a record upserted by alternate key by those key values in
        ``OData-EntityId``, not by its id, so that upsert asks for the id in the answer
        (``return=representation`` with ``$select`` of the primary key alone).
        """
        path = addressing.record_path(entity_set, key)
        if not isinstance(key, Mapping):
            exchange = await self._send("PATCH", path, **_json(body))
            found = addressing.parse_entity_id(exchange.response.headers.get("OData-EntityId"))
            return found or uuid.UUID(str(key))
        pk = primary_key_for(entity_set, primary_key=primary_key)
        exchange = await self._send(
            "PATCH",
            path,
            params={"$select": pk},
            **_json(body, {"Prefer": "return=representation"}),
        )
        return addressing.record_id_of(exchange.response, primary_key=pk)

    async def delete(self, entity_set: str, key: RecordKey, *, missing_ok: bool = False) -> None:
        """Delete; a replay that finds the row gone (our first try worked) is success."""
        try:
            await self._send("DELETE", addressing.record_path(entity_set, key))
        except NotFoundError as exc:
            if not (missing_ok or exc.after_ambiguous_attempt):
                raise

    async def set_state(
        self, entity_set: str, key: RecordKey, *, statecode: int, statuscode: int
    ) -> None:
        """The SetState message is a PATCH of both columns (CED salesorder.md)."""
        await self.update(entity_set, key, {"statecode": statecode, "statuscode": statuscode})

    async def associate(
        self,
        entity_set: str,
        key: RecordKey,
        navigation_property: str,
        *,
        target_set: str,
        target_key: RecordKey,
        is_single_valued: bool = False,
    ) -> None:
        """Link two records through ``<nav>/$ref`` (POST to a collection, PUT to a lookup)."""
        path = f"{addressing.record_path(entity_set, key)}/{navigation_property}/$ref"
        target = {"@odata.id": self.api_url + addressing.record_path(target_set, target_key)}
        try:
            await self._send("PUT" if is_single_valued else "POST", path, **_json(target))
        except DuplicateRecordError as exc:
            if not exc.after_ambiguous_attempt:
                raise  # already linked before we started: the caller should know

    async def disassociate(
        self,
        entity_set: str,
        key: RecordKey,
        navigation_property: str,
        *,
        target_key: RecordKey | None = None,
    ) -> None:
        """Unlink: a lookup (no ``target_key``) or one member of a collection."""
        nav = navigation_property
        if target_key is not None:
            nav += f"({addressing.key_predicate(target_key)})"
        await self._send("DELETE", f"{addressing.record_path(entity_set, key)}/{nav}/$ref")

    async def batch(
        self, items: Sequence[batch.BatchItem], *, continue_on_error: bool = True
    ) -> list[batch_results.BatchResult]:
        """Send a ``$batch``; one result per operation, in order. A failed record fails alone
        (or with its change set); it never raises for the whole batch."""
        count = sum(len(i.operations) if isinstance(i, batch.ChangeSet) else 1 for i in items)
        if not 0 < count <= MAX_BATCH_OPERATIONS:
            msg = f"a batch holds 1 to {MAX_BATCH_OPERATIONS} operations, not {count}"
            raise ValueError(msg)
        prepared = batch.assign_content_ids(items, include_top_level=not continue_on_error)
        boundary = f"batch_{uuid.uuid4()}"
        headers = {"Content-Type": f"multipart/mixed; boundary={boundary}"}
        if continue_on_error:
            headers["Prefer"] = "odata.continue-on-error"
        body = batch.build_body(prepared, api_path=self._api.path, boundary=boundary)
        exchange = await self._send(
            "POST", "$batch", content=body, headers=headers, accept_multipart_error=True
        )
        response = exchange.response
        parts = batch.parse_response(response.content, response.headers.get("Content-Type", ""))
        has_stopped = response.status_code >= httpx.codes.BAD_REQUEST
        results = batch_results.match_results(prepared, parts, has_stopped=has_stopped)
        if exchange.after_ambiguous_attempt:
            results = batch_results.accept_replayed_duplicates(prepared, results)
            self.stats.replayed_duplicates += sum(r.is_replayed_duplicate for r in results)
        return results

    async def _send(self, method: str, url: str, **kwargs: Any) -> Exchange:
        label = f"{method} {url.split('?', 1)[0]}"
        return await self._sender.send(method, url, label=label, **kwargs)


def _json(body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """httpx arguments for a JSON body with exact decimals (``app.exact_json``)."""
    return {
        "content": exact_json.encode(dict(body)),
        "headers": {"Content-Type": exact_json.CONTENT_TYPE, **(headers or {})},
    }


def _query_params(
    *,
    select: Sequence[str] | None = None,
    expand: str | None = None,
    filter: str | None = None,
    orderby: Sequence[str] | None = None,
) -> dict[str, str]:
    params: dict[str, str] = {}
    if select:
        params["$select"] = ",".join(select)
    if filter:
        params["$filter"] = filter
    if orderby:
        params["$orderby"] = ",".join(orderby)
    if expand:
        params["$expand"] = expand
    return params


def _auth_from_credentials(
    credentials: ClientCredentials | None,
    server_url: str,
    transport: httpx.AsyncBaseTransport | None,
) -> ClientCredentialsAuth:
    if credentials is None:
        msg = "DataverseClient needs auth= (an httpx.Auth) or credentials="
        raise ValueError(msg)
    token_url = credentials.token_url or token_url_for_tenant(credentials.tenant_id)
    if not (credentials.token_url or credentials.tenant_id):
        msg = "client credentials need a tenant id or a token URL"
        raise ValueError(msg)
    return ClientCredentialsAuth(
        token_url=token_url,
        client_id=credentials.client_id,
        client_secret=credentials.client_secret,
        certificate=credentials.certificate,
        scope=scope_for_server(server_url),
        transport=transport,
    )
