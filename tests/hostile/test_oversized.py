"""Oversized heads and bodies over real HTTP: a clear 4xx (413/414/431/400), never a 5xx or a hang.

The app runs in uvicorn with httptools (what ``salesbridge serve`` picks); every request is
sent as raw bytes by ``live.raw_request``, which fails the test if no answer comes in time.
The caps are settings (``max_url_bytes``, ``max_header_bytes``, ``max_header_count``,
``max_body_bytes``); the defaults are what these tests send against.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from app.main import create_app
from app.settings import Settings
from tests.factories import bearer_headers, create_user
from tests.hostile.live import raw_request, request_head, serve
from tests.odata import factories as odata_factories

ITEMS = "/api/v1/items"
ODATA = "/odata/v4/ItemAvailability"


@pytest.fixture
def port(settings: Settings) -> Iterator[int]:
    with serve(settings) as running:
        yield running


@pytest.fixture
async def auth(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> dict[str, str]:
    """Both callers: an admin's bearer header (REST) and a reader's Basic header (OData)."""
    await create_user(session, user_name="admin")
    await session.commit()
    bearer = (await bearer_headers(client, user_name="admin"))["Authorization"]
    basic = (await odata_factories.odata_reader(session, settings))["Authorization"]
    return {"rest": bearer, "odata": basic}


def _house_error(body: object, kind: str) -> None:
    assert isinstance(body, dict) and body["error"] == kind and body["detail"], body


def _odata_error(body: object, code: str) -> None:
    assert isinstance(body, dict) and body["error"]["code"] == code, body
    assert body["error"]["message"]


async def test_oversized_headers_are_431(
    port: int, auth: dict[str, str], settings: Settings
) -> None:
    just_under = "a" * (settings.max_header_bytes - 2048)
    cases = {
        "one 64 KiB value": [("X-Big", "a" * 65_536)],
        "one 1 MiB value": [("X-Big", "a" * 1_048_576)],
        "a huge cookie": [("Cookie", "session=" + "b" * 100_000)],
        "many headers": [(f"X-H{n}", "v") for n in range(settings.max_header_count + 1)],
        "many small headers, large in sum": [(f"X-H{n}", "c" * 500) for n in range(90)],
    }
    for path, kind in ((ITEMS, "rest"), (ODATA, "odata")):
        caller = [("Authorization", auth[kind])]
        for name, extra in cases.items():
            response = await raw_request(port, request_head("GET", path, caller + extra))
            assert response.status == 431, (name, path, response.body[:200])
            if kind == "rest":
                _house_error(response.json(), "HeadersTooLarge")
            else:
                _odata_error(response.json(), "BadRequest_HeadersTooLarge")
        # just under the caps is served normally
        near = caller + [("X-Near", just_under)] + [(f"X-H{n}", "v") for n in range(80)]
        response = await raw_request(port, request_head("GET", path, near))
        assert response.status == 200, (path, response.body[:200])


async def test_oversized_targets_are_414_or_400(port: int, auth: dict[str, str]) -> None:
    rest, odata = [("Authorization", auth["rest"])], [("Authorization", auth["odata"])]
    long_filter = "%20or%20".join(["ItemNo%20eq%20%271%27"] * 1000)  # ~27 KiB
    cases = [
        (f"{ODATA}?$filter={long_filter}", odata),
        (f"{ODATA}('{'1' * 20_000}')", odata),
        (f"{ITEMS}?$filter={long_filter}", rest),
        (f"{ITEMS}?{'x' * 20_000}=1", rest),
    ]
    for target, caller in cases:
        response = await raw_request(port, request_head("GET", target, caller))
        assert response.status == 414, (target[:60], response.body[:200])
        body = response.json()
        if target.startswith("/odata"):
            _odata_error(body, "BadRequest_URITooLong")
        else:
            _house_error(body, "URITooLong")
    # Past ~64 KiB uvicorn's parser itself refuses the request line: a plain-text 400.
    huge = await raw_request(port, request_head("GET", f"{ODATA}?$filter={'x' * 100_000}", odata))
    assert huge.status == 400
    # A filter under the URL cap but over the $filter cap is the parser's clear 400.
    near = "%20or%20".join(["ItemNo%20eq%20%271%27"] * 400)
    response = await raw_request(port, request_head("GET", f"{ODATA}?$filter={near}", odata))
    assert response.status == 400, response.body[:200]
    _odata_error(response.json(), "BadRequest_InvalidFilter")
    response = await raw_request(port, request_head("GET", f"{ITEMS}?$filter={near}", rest))
    assert response.status == 422, response.body[:200]  # over the list filter's max_length
    _house_error(response.json(), "ValidationFailed")


def _json_post(path: str, bearer: str, length: int | None) -> bytes:
    headers = [("Authorization", bearer), ("Content-Type", "application/json")]
    if length is None:
        headers.append(("Transfer-Encoding", "chunked"))
    else:
        headers.append(("Content-Length", str(length)))
    return request_head("POST", path, headers)


def _chunked(payload: bytes, size: int = 1 << 20) -> bytes:
    parts = [
        f"{len(payload[i : i + size]):x}\r\n".encode() + payload[i : i + size] + b"\r\n"
        for i in range(0, len(payload), size)
    ]
    return b"".join(parts) + b"0\r\n\r\n"


async def test_oversized_bodies_are_413(
    port: int, auth: dict[str, str], settings: Settings
) -> None:
    limit = settings.max_body_bytes
    too_big = b'{"no": "' + b"a" * limit + b'"}'
    for bearer in (auth["rest"], "Bearer not-a-token"):  # refused before auth is even checked
        declared = await raw_request(port, _json_post(ITEMS, bearer, len(too_big)), too_big[:4096])
        assert declared.status == 413, declared.body[:200]
        _house_error(declared.json(), "PayloadTooLarge")
    chunked = await raw_request(port, _json_post(ITEMS, auth["rest"], None), _chunked(too_big))
    assert chunked.status == 413, chunked.body[:200]  # was the body parser's 400
    _house_error(chunked.json(), "PayloadTooLarge")
    lying = request_head("POST", ITEMS, [("Authorization", auth["rest"]), ("Content-Length", "x")])
    assert (await raw_request(port, lying)).status in (400, 413)


async def test_hostile_json_within_the_size_cap_is_a_clear_4xx(
    port: int, auth: dict[str, str]
) -> None:
    bearer = auth["rest"]
    bodies = {
        "nested 100,000 deep": b"[" * 100_000 + b"]" * 100_000,
        "nested objects": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        "a 5 MB string": b'{"no": "' + b"a" * 5_000_000 + b'"}',
        "200,000 keys": b"{" + b",".join(b'"k%d":1' % n for n in range(200_000)) + b"}",
        "not JSON": b"\xff\xfe{" * 1000,
    }
    for name, body in bodies.items():
        response = await raw_request(port, _json_post(ITEMS, bearer, len(body)), body)
        assert response.status in (400, 422), (name, response.body[:200])
        body_json = response.json()
        assert isinstance(body_json, dict) and body_json["detail"], name
        assert len(response.body) < 10_000, name  # the echo of a bad input is bounded
    too_many_rows = b"[" + b",".join(b'{"no": "B%d"}' % n for n in range(6000)) + b"]"
    bad_rows = b"[" + b",".join(b'{"no": 1, "x": 2, "y": 3}' for _ in range(5000)) + b"]"
    for rows in (too_many_rows, bad_rows):
        path = f"{ITEMS}/bulk-upsert"
        bulk = await raw_request(port, _json_post(path, bearer, len(rows)), rows)
        assert bulk.status in (400, 422), bulk.body[:200]
        assert len(bulk.body) < 10_000  # 15,000 row problems, the first few listed


async def test_the_caps_are_settings(settings: Settings) -> None:
    """Lower caps from the settings take effect, on the REST API and the OData service alike."""
    strict = settings.model_copy(
        update={"max_url_bytes": 1024, "max_header_bytes": 2048, "max_header_count": 10,
                "max_body_bytes": 1024}
    )  # fmt: skip
    application = create_app(strict, should_migrate=False)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            long_target = await client.get(f"{ITEMS}?q={'x' * 1100}")
            big_header = await client.get(ITEMS, headers={"X-Big": "a" * 2100})
            many = await client.get(ITEMS, headers={f"X-H{n}": "v" for n in range(11)})
            body = await client.post(ITEMS, content=b"{" + b" " * 1100 + b"}")
            fits = await client.get(f"{ODATA}?$top={'1' * 3}", headers={"X-Small": "a" * 500})
    assert [r.status_code for r in (long_target, big_header, many, body)] == [414, 431, 431, 413]
    assert fits.status_code == 401  # under every cap: on to authentication
