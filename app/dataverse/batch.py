"""``$batch``: building the multipart request and reading the multipart answer.

Format (PAD execute-batch-operations-using-web-api.md): a ``multipart/mixed`` body of
``application/http`` parts; a change set is a nested ``multipart/mixed`` part whose
operations are atomic and may carry ``Content-ID: n`` so later operations refer to the
created record as ``$n`` (in the URL or in an ``@odata.bind`` value). Answers come back in
request order; a failed change set comes back as the single failing answer. Without
``Prefer: odata.continue-on-error`` the batch stops at the first failure and later items
have no answer (``BatchOutcome.not_run``).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from app import exact_json
from app.dataverse import addressing
from app.dataverse.entities import primary_key_for
from app.dataverse.errors import DataverseProtocolError

CRLF = "\r\n"


@dataclass(frozen=True)
class BatchOperation:
    """One request inside a batch; ``path`` is relative to the API root or a ``$n``."""

    method: str
    path: str
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    content_id: str | None = None
    record_id: uuid.UUID | None = None  # the client-generated id of a create
    id_column: str | None = None  # where the answer's representation carries the id

    @property
    def label(self) -> str:
        return f"{self.method} {self.path.split('?', 1)[0]}"


@dataclass(frozen=True)
class ChangeSet:
    """Operations that succeed or fail together."""

    operations: Sequence[BatchOperation]


BatchItem = BatchOperation | ChangeSet


def reference(content_id: str) -> str:
    """The ``$n`` that refers to the record created by the operation with that Content-ID."""
    return f"${content_id}"


def create_op(
    entity_set: str,
    body: Mapping[str, Any],
    *,
    id: uuid.UUID | None = None,
    primary_key: str | None = None,
    content_id: str | None = None,
) -> BatchOperation:
    record_id = id or uuid.uuid4()
    full_body = {**body, primary_key_for(entity_set, primary_key=primary_key): str(record_id)}
    return BatchOperation("POST", entity_set, full_body, content_id=content_id, record_id=record_id)


def update_op(
    entity_set: str, key: addressing.RecordKey, body: Mapping[str, Any], *, etag: str = "*"
) -> BatchOperation:
    path = addressing.record_path(entity_set, key)
    return BatchOperation("PATCH", path, dict(body), headers={"If-Match": etag})


def upsert_op(
    entity_set: str,
    key: addressing.RecordKey,
    body: Mapping[str, Any],
    *,
    primary_key: str | None = None,
) -> BatchOperation:
    """By id: the id is known. By alternate key: Dataverse's ``OData-EntityId`` names the
    record by the key values, so the operation asks for its id in the answer."""
    path = addressing.record_path(entity_set, key)
    if not isinstance(key, Mapping):
        return BatchOperation("PATCH", path, dict(body), record_id=uuid.UUID(str(key)))
    pk = primary_key_for(entity_set, primary_key=primary_key)
    return BatchOperation(
        "PATCH",
        f"{path}?$select={pk}",
        dict(body),
        headers={"Prefer": "return=representation"},
        id_column=pk,
    )


def delete_op(entity_set: str, key: addressing.RecordKey) -> BatchOperation:
    return BatchOperation("DELETE", addressing.record_path(entity_set, key))


def set_state_op(
    entity_set: str, key: addressing.RecordKey, *, statecode: int, statuscode: int
) -> BatchOperation:
    body = {"statecode": statecode, "statuscode": statuscode}
    return update_op(entity_set, key, body)


def get_op(
    entity_set: str, key: addressing.RecordKey, *, select: Sequence[str] | None = None
) -> BatchOperation:
    path = addressing.record_path(entity_set, key)
    if select:
        path += "?$select=" + ",".join(select)
    return BatchOperation("GET", path)


def assign_content_ids(
    items: Sequence[BatchItem], *, include_top_level: bool = False
) -> list[BatchItem]:
    """Give every change-set operation (and, when asked, every other one) a Content-ID.

    Answers inside a change set are matched by it. A batch that stops at its first failure
    answers with that failure alone, so there every operation needs one to say which failed.
    """
    ops = [
        op for item in items for op in (item.operations if isinstance(item, ChangeSet) else [item])
    ]
    taken = {op.content_id for op in ops if op.content_id}
    fresh = (str(n) for n in itertools.count(1) if str(n) not in taken)

    def named(op: BatchOperation) -> BatchOperation:
        return op if op.content_id is not None else replace(op, content_id=next(fresh))

    prepared: list[BatchItem] = []
    for item in items:
        if isinstance(item, ChangeSet):
            prepared.append(ChangeSet([named(op) for op in item.operations]))
        else:
            prepared.append(named(item) if include_top_level else item)
    return prepared


# --- building -----------------------------------------------------------------------------


def build_body(items: Sequence[BatchItem], *, api_path: str, boundary: str) -> bytes:
    """The multipart request body; ``api_path`` is the API root path, e.g. ``/api/data/v9.2/``."""
    lines: list[str] = []
    for index, item in enumerate(items):
        lines.append(f"--{boundary}")
        if isinstance(item, ChangeSet):
            if not item.operations:
                msg = f"change set #{index} has no operations"
                raise ValueError(msg)
            inner = f"changeset_{uuid.uuid4()}"
            lines += [f"Content-Type: multipart/mixed; boundary={inner}", ""]
            for op in item.operations:
                if op.method == "GET":
                    msg = "GET is not allowed inside a change set"
                    raise ValueError(msg)
                lines.append(f"--{inner}")
                lines += _operation_lines(op, api_path=api_path)
            lines.append(f"--{inner}--")
        else:
            lines += _operation_lines(item, api_path=api_path)
    lines.append(f"--{boundary}--")
    lines.append("")
    return CRLF.join(lines).encode()


def _operation_lines(op: BatchOperation, *, api_path: str) -> list[str]:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if op.content_id is not None:
        lines.append(f"Content-ID: {op.content_id}")
    target = op.path if op.path.startswith("$") else api_path + op.path
    lines += ["", f"{op.method} {target} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in op.headers.items()]
    if op.body is not None:
        lines += [
            "Content-Type: application/json; type=entry",
            "",
            exact_json.encode(op.body).decode(),
        ]
    else:
        lines += [""]
    return lines


# --- parsing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpPart:
    """One answer inside the batch answer."""

    status_code: int
    headers: Mapping[str, str]  # lower-cased names
    body: bytes
    content_id: str | None = None

    def json(self) -> Any:
        return exact_json.decode(self.body) if self.body.strip() else None


@dataclass(frozen=True)
class ChangeSetPart:
    parts: Sequence[HttpPart]


def boundary_of(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.lower() == "boundary" and value:
            return value.strip('"')
    msg = f"a multipart answer without a boundary: {content_type[:100]!r}"
    raise DataverseProtocolError(msg)


def parse_response(body: bytes, content_type: str) -> list[HttpPart | ChangeSetPart]:
    parsed: list[HttpPart | ChangeSetPart] = []
    for headers, payload in _split_multipart(body, boundary_of(content_type)):
        part_type = headers.get("content-type", "")
        if part_type.lower().startswith("multipart/mixed"):
            inner = _split_multipart(payload, boundary_of(part_type))
            parsed.append(ChangeSetPart([_http_part(h, p) for h, p in inner]))
        else:
            parsed.append(_http_part(headers, payload))
    return parsed


def _split_multipart(body: bytes, boundary: str) -> list[tuple[dict[str, str], bytes]]:
    delimiter = b"--" + boundary.encode()
    chunks = body.split(delimiter)
    if len(chunks) < 2:
        msg = f"the batch answer has no part with boundary {boundary!r}"
        raise DataverseProtocolError(msg)
    parts: list[tuple[dict[str, str], bytes]] = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        headers, payload = _split_headers(_trim_line_breaks(chunk))
        parts.append((headers, payload))
    return parts


def _trim_line_breaks(chunk: bytes) -> bytes:
    # The line break after a delimiter and the one before the next belong to the delimiters.
    if chunk.startswith(b"\r\n"):
        chunk = chunk[2:]
    elif chunk.startswith(b"\n"):
        chunk = chunk[1:]
    if chunk.endswith(b"\r\n"):
        return chunk[:-2]
    return chunk[:-1] if chunk.endswith(b"\n") else chunk


def _split_headers(block: bytes) -> tuple[dict[str, str], bytes]:
    """Header lines up to the first empty line, then the rest as the payload."""
    headers: dict[str, str] = {}
    rest = block
    while rest:
        line, sep, remainder = rest.partition(b"\n")
        text = line.rstrip(b"\r").decode("utf-8", "replace")
        rest = remainder if sep else b""
        if not text.strip():
            break
        name, _, value = text.partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers, rest


def _http_part(mime_headers: Mapping[str, str], payload: bytes) -> HttpPart:
    status_line, _, rest = payload.partition(b"\n")
    fields = status_line.decode("utf-8", "replace").split()
    if len(fields) < 2 or not fields[0].startswith("HTTP/") or not fields[1].isdigit():
        msg = f"a batch part without an HTTP status line: {status_line[:80]!r}"
        raise DataverseProtocolError(msg)
    headers, body = _split_headers(rest)
    return HttpPart(
        status_code=int(fields[1]),
        headers=headers,
        body=body.strip(),
        content_id=mime_headers.get("content-id"),
    )
