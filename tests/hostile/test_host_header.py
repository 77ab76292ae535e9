"""With SALESBRIDGE_PUBLIC_URL set, every absolute link uses it, whatever Host says.

A caller picks the Host header; copied into ``@odata.context``, ``@odata.nextLink`` or a
REST list's ``next``, it makes links that send the next reader (and its credentials)
wherever the caller wanted. Over real HTTP with forged Host headers.
"""

from __future__ import annotations

import orjson
from sqlmodel.ext.asyncio.session import AsyncSession

from app.settings import Settings
from tests import factories
from tests.hostile.live import raw_request, serve
from tests.odata import factories as odata_factories

PUBLIC_URL = "https://salesbridge.example.com/bridge"
FORGED = "evil.example:8443"


async def _arrange(session: AsyncSession, settings: Settings) -> tuple[str, str]:
    """Items to page through; the Basic header of an OData reader and an admin's bearer."""
    await odata_factories.add_items(session, ["A1", "A2", "A3"])
    basic = (await odata_factories.odata_reader(session, settings))["Authorization"]
    admin = await factories.create_user(session, user_name="root", password=None)
    key = await factories.create_access_key(session, settings, user=admin)
    await session.commit()
    return basic, key


def _get(target: str, authorization: str, host: str) -> bytes:
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}", "Connection: close",
             f"Authorization: {authorization}", "Prefer: odata.maxpagesize=1"]  # fmt: skip
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _links(port: int, basic: str, key: str, host: str) -> list[str]:
    token_form = f"username=root&password={key}".encode()
    head = (f"POST /api/v1/auth/token HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(token_form)}\r\n\r\n").encode()  # fmt: skip
    token = orjson.loads((await raw_request(port, head, token_form)).body)["access_token"]
    odata = await raw_request(port, _get("/odata/v4/ItemAvailability", basic, host))
    root = await raw_request(port, _get("/odata/v4/", basic, host))
    rest = await raw_request(port, _get("/api/v1/items?$top=1", f"Bearer {token}", host))
    page, service, items = (orjson.loads(r.body) for r in (odata, root, rest))
    return [page["@odata.context"], page["@odata.nextLink"], service["@odata.context"],
            items["next"]]  # fmt: skip


async def test_the_public_url_starts_every_link_whatever_the_host_header(
    session: AsyncSession, settings: Settings
) -> None:
    basic, key = await _arrange(session, settings)
    given = {name: getattr(settings, name) for name in Settings.model_fields}
    public = Settings(**{**given, "public_url": PUBLIC_URL})  # as from the environment
    assert public.has_public_url

    with serve(public) as port:
        links = await _links(port, basic, key, FORGED)

    assert len(links) == 4
    for link in links:
        assert link.startswith(f"{PUBLIC_URL}/"), link
        assert "evil.example" not in link


async def test_without_a_public_url_links_follow_the_request(
    session: AsyncSession, settings: Settings
) -> None:
    """Unchanged when no public URL is configured: links are where the caller asked."""
    basic, key = await _arrange(session, settings)
    assert not settings.has_public_url

    with serve(settings) as port:
        links = await _links(port, basic, key, "bridge.internal:8000")

    assert all(link.startswith("http://bridge.internal:8000/") for link in links), links
