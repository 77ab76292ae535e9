"""``$batch``: changesets are atomic, Content-ID references, continue-on-error, and the
per-operation responses."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx

from tests.fixtures.sandbox import RunningSandbox


def _request(
    method: str, url: str, body: dict[str, Any] | None = None, content_id: int | None = None
) -> str:
    head = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        head.append(f"Content-ID: {content_id}")
    lines = [
        *head,
        "",
        f"{method} {url} HTTP/1.1",
        "Content-Type: application/json; type=entry",
        "",
    ]
    lines.append(json.dumps(body) if body is not None else "")
    return "\r\n".join(lines)


def _changeset(parts: list[str]) -> str:
    boundary = f"changeset_{uuid.uuid4().hex}"
    inner = "".join(f"--{boundary}\r\n{part}\r\n" for part in parts) + f"--{boundary}--"
    return f"Content-Type: multipart/mixed; boundary={boundary}\r\n\r\n{inner}"


async def _batch(
    api: httpx.AsyncClient, parts: list[str], *, prefer: str | None = None
) -> httpx.Response:
    boundary = f"batch_{uuid.uuid4().hex}"
    body = "".join(f"--{boundary}\r\n{part}\r\n" for part in parts) + f"--{boundary}--\r\n"
    headers = {"Content-Type": f'multipart/mixed; boundary="{boundary}"'}
    if prefer:
        headers["Prefer"] = prefer
    return await api.post("$batch", content=body.encode(), headers=headers)


def _statuses(response: httpx.Response) -> list[int]:
    return [int(code) for code in re.findall(r"HTTP/1\.1 (\d{3})", response.text)]


async def test_changeset_with_content_id_references(
    api: httpx.AsyncClient, sandbox: RunningSandbox
) -> None:
    path = "/api/data/v9.2/"
    child = {"lastname": "Child", "parentcustomerid_account@odata.bind": "$1"}
    changeset = _changeset([
        _request("POST", f"{path}accounts", {"name": "Parent"}, content_id=1),
        _request("POST", f"{path}contacts", child, content_id=2),
        _request("PATCH", "$1", {"telephone1": "555"}, content_id=3),
    ])  # fmt: skip
    response = await _batch(
        api, [changeset, _request("GET", f"{sandbox.api_url}accounts?$select=name")]
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("multipart/mixed; boundary=batchresponse_")
    assert "boundary=changesetresponse_" in response.text
    assert _statuses(response) == [204, 204, 204, 200]
    assert response.text.count("OData-EntityId:") == 3 and "Content-ID: 2" in response.text
    account = sandbox.state.rows("accounts")[0]
    contact = sandbox.state.rows("contacts")[0]
    assert account["telephone1"] == "555"
    assert contact["_parentcustomerid_value"] == account["accountid"]


async def test_failing_changeset_rolls_back_entirely(
    api: httpx.AsyncClient, sandbox: RunningSandbox
) -> None:
    changeset = _changeset([
        _request("POST", "accounts", {"name": "kept?"}, content_id=1),
        _request("POST", "products", {"name": "bad", "producttypecode": 99}, content_id=2),
    ])  # fmt: skip
    response = await _batch(api, [changeset])
    assert response.status_code == 400
    assert _statuses(response) == [400]
    assert '"code":"0x80044331"' in response.text
    assert sandbox.state.count("accounts") == 0
    assert sandbox.state.count("products") == 0


async def test_stops_at_first_failure_without_continue_on_error(
    api: httpx.AsyncClient, sandbox: RunningSandbox
) -> None:
    parts = [
        _request("POST", "accounts", {"name": "first"}),
        _request("POST", "accounts", {"name": "bad", "Name": "x"}),
        _request("POST", "accounts", {"name": "never"}),
    ]
    response = await _batch(api, parts)
    assert response.status_code == 400
    assert _statuses(response) == [400]
    assert [row["name"] for row in sandbox.state.rows("accounts")] == ["first"]


async def test_continue_on_error_runs_every_part(
    api: httpx.AsyncClient, sandbox: RunningSandbox
) -> None:
    parts = [
        _changeset(
            [
                _request("POST", "accounts", {"name": "a1"}),
                _request("POST", "accounts", {"Name": "bad"}),
            ]
        ),
        _changeset(
            [
                _request("POST", "accounts", {"name": "b1"}),
                _request("POST", "accounts", {"name": "b2"}),
            ]
        ),
        _request("DELETE", f"accounts({uuid.uuid4()})"),
        _request("POST", "accounts", {"name": "c"}),
    ]
    response = await _batch(api, parts, prefer="odata.continue-on-error")
    assert response.status_code == 200
    assert _statuses(response) == [400, 204, 204, 404, 204]
    assert sorted(row["name"] for row in sandbox.state.rows("accounts")) == ["b1", "b2", "c"]


async def test_batch_errors(api: httpx.AsyncClient, sandbox: RunningSandbox) -> None:
    undeclared = await _batch(
        api,
        [_changeset([_request("POST", "contacts", {"parentcustomerid_account@odata.bind": "$7"})])],
    )
    assert "Content-ID Reference: '$7' does not exist in the batch context." in undeclared.text
    get_in_changeset = await _batch(api, [_changeset([_request("GET", "accounts")])])
    assert get_in_changeset.status_code == 400
    too_many = await _batch(
        api, [_request("POST", "accounts", {"name": str(i)}) for i in range(1001)]
    )
    assert too_many.status_code == 400
    assert too_many.json()["error"]["message"].startswith(
        "Only batch messages with a maximum number of '1000'"
    )
    assert sandbox.state.count("accounts") == 0
