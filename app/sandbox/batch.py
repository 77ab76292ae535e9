"""``$batch``: multipart/mixed requests, atomic changesets, Content-ID references.

Parts run in order. A changeset runs in one transaction: its first failure rolls all of it
back and answers that failure alone. Without ``Prefer: odata.continue-on-error`` the batch
stops at the first failure and answers 400 with only the failing part; with it, every
part runs and the batch answers 200 with each result inline.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qsl, unquote, urlsplit

from app.sandbox.errors import SandboxError, too_many_in_batch, too_many_in_changeset
from app.sandbox.operations.render import Operation, Outcome, error_outcome, parse_prefer
from app.sandbox.webapi import CallContext, WebApi

MAX_OPERATIONS = 1000
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)


@dataclass
class BatchRequest:
    op: Operation
    content_id: str | None = None


@dataclass
class Changeset:
    requests: list[BatchRequest] = field(default_factory=list)


class _ChangesetFailedError(Exception):
    def __init__(self, outcome: Outcome, content_id: str | None) -> None:
        super().__init__(outcome.status)
        self.outcome = outcome
        self.content_id = content_id


def _boundary(content_type: str) -> str:
    match = _BOUNDARY.search(content_type)
    if not match or not content_type.lower().startswith("multipart/mixed"):
        raise SandboxError(
            400, "0x0", "A $batch request needs Content-Type multipart/mixed with a boundary."
        )
    return match.group(1)


def _split(text: str, boundary: str) -> list[str]:
    pieces = text.split(f"--{boundary}")
    parts: list[str] = []
    for piece in pieces[1:]:
        if piece.startswith("--"):
            break
        parts.append(piece.removeprefix("\n").removesuffix("\n"))
    return parts


def _headers(block: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.split("\n"):
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


def _request(content: str, api_path: str, content_id: str | None) -> BatchRequest:
    head, _, body = content.partition("\n\n")
    request_line, _, header_block = head.partition("\n")
    words = request_line.split()
    if len(words) < 2:
        raise SandboxError(400, "0x0", f"Invalid request line in $batch: '{request_line}'.")
    target = urlsplit(words[1])
    path = unquote(target.path)
    marker = path.find(api_path)
    path = path[marker + len(api_path) :] if marker >= 0 else path.lstrip("/")
    query = dict(parse_qsl(target.query, keep_blank_values=True))
    op = Operation(words[0].upper(), path, query, _headers(header_block), body.strip().encode())
    return BatchRequest(op, content_id)


def parse_batch(body: bytes, content_type: str, api_path: str) -> list[BatchRequest | Changeset]:
    text = body.decode("utf-8").replace("\r\n", "\n")
    parts: list[BatchRequest | Changeset] = []
    for part in _split(text, _boundary(content_type)):
        header_block, _, content = part.partition("\n\n")
        headers = _headers(header_block)
        kind = headers.get("content-type", "")
        if kind.lower().startswith("multipart/mixed"):
            changeset = Changeset()
            for inner in _split(content, _boundary(kind)):
                inner_headers_block, _, inner_content = inner.partition("\n\n")
                inner_headers = _headers(inner_headers_block)
                changeset.requests.append(
                    _request(inner_content, api_path, inner_headers.get("content-id"))
                )
            parts.append(changeset)
        else:
            parts.append(_request(content, api_path, headers.get("content-id")))
    return parts


def _http_part(outcome: Outcome, content_id: str | None) -> str:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id:
        lines.append(f"Content-ID: {content_id}")
    reason = HTTPStatus(outcome.status).phrase
    lines += ["", f"HTTP/1.1 {outcome.status} {reason}", "OData-Version: 4.0"]
    headers = dict(outcome.headers)
    if "OData-EntityId" in headers:
        headers.setdefault("Location", headers["OData-EntityId"])
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += ["", outcome.body.decode("utf-8")]
    return "\r\n".join(lines)


def _multipart(parts: list[str], boundary: str) -> str:
    body = "".join(f"--{boundary}\r\n{part}\r\n" for part in parts)
    return body + f"--{boundary}--\r\n"


class BatchRunner:
    def __init__(self, webapi: WebApi) -> None:
        self.webapi = webapi

    def run(self, body: bytes, headers: dict[str, str], call: CallContext) -> Outcome:
        try:
            parts = parse_batch(body, headers.get("content-type", ""), self.webapi.api_path)
            _check_sizes(parts)
        except SandboxError as error:
            return error_outcome(error)
        _inherit_impersonation(parts, headers)
        should_continue = parse_prefer(headers.get("prefer")).continue_on_error
        rendered: list[str] = []
        for part in parts:
            text, ok = self._run_part(part, call)
            if not ok and not should_continue:
                return self._response(400, [text])
            rendered.append(text)
        return self._response(200, rendered)

    def _run_part(self, part: BatchRequest | Changeset, call: CallContext) -> tuple[str, bool]:
        if isinstance(part, BatchRequest):
            outcome = self.webapi.execute(part.op, CallContext(call.api_url))
            return _http_part(outcome, part.content_id), outcome.is_success
        changeset_call = CallContext(call.api_url)
        done: list[str] = []
        try:
            with self.webapi.store.transaction():
                for request in part.requests:
                    done.append(self._run_changed(request, changeset_call))
        except _ChangesetFailedError as failed:
            return _http_part(failed.outcome, failed.content_id), False
        boundary = f"changesetresponse_{uuid.uuid4()}"
        text = f"Content-Type: multipart/mixed; boundary={boundary}\r\n\r\n" + _multipart(
            done, boundary
        )
        return text, True

    def _run_changed(self, request: BatchRequest, call: CallContext) -> str:
        if request.op.method == "GET":
            error = SandboxError(400, "0x0", "GET requests are not allowed inside a change set.")
            raise _ChangesetFailedError(error_outcome(error), request.content_id)
        outcome = self.webapi.execute(request.op, call, in_changeset=True)
        if not outcome.is_success:
            raise _ChangesetFailedError(outcome, request.content_id)
        if request.content_id and outcome.entity_url:
            call.content_ids[f"${request.content_id}"] = outcome.entity_url
        return _http_part(outcome, request.content_id)

    def _response(self, status: int, parts: list[str]) -> Outcome:
        boundary = f"batchresponse_{uuid.uuid4()}"
        body = _multipart(parts, boundary).encode()
        return Outcome(status, {"Content-Type": f"multipart/mixed; boundary={boundary}"}, body)


_IMPERSONATION = ("mscrmcallerid", "callerobjectid")


def _inherit_impersonation(parts: list[BatchRequest | Changeset], headers: dict[str, str]) -> None:
    """An impersonation header on the ``$batch`` request applies to every part that does
    not name a user of its own."""
    inherited = {name: headers[name] for name in _IMPERSONATION if headers.get(name)}
    if not inherited:
        return
    for part in parts:
        for request in part.requests if isinstance(part, Changeset) else [part]:
            if not any(request.op.headers.get(name) for name in _IMPERSONATION):
                request.op.headers.update(inherited)


def _check_sizes(parts: list[BatchRequest | Changeset]) -> None:
    total = 0
    for part in parts:
        if isinstance(part, Changeset):
            if len(part.requests) > MAX_OPERATIONS:
                raise too_many_in_changeset(MAX_OPERATIONS)
            total += len(part.requests)
        else:
            total += 1
    if total > MAX_OPERATIONS:
        raise too_many_in_batch(MAX_OPERATIONS)
