"""Operations in and out: the request/response records shared by HTTP and ``$batch``, the
``Prefer`` header, and how rows are written as OData JSON."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from app import exact_json
from app.sandbox.errors import SandboxError, bad_syntax
from app.sandbox.operations.records import etag
from app.sandbox.schema.entities import EntityType

JSON = "application/json; odata.metadata=minimal"


@dataclass
class Operation:
    method: str
    path: str  # relative to the service root, decoded: "accounts(<id>)/name"
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""

    def json_body(self) -> dict[str, Any]:
        if not self.body.strip():
            return {}
        try:
            value = exact_json.decode(self.body)  # amounts as Decimal, exact
        except ValueError as exc:
            raise SandboxError(
                400, "0x80048d19", f"The request body is not valid JSON: {exc}"
            ) from exc
        if not isinstance(value, dict):
            raise SandboxError(400, "0x80048d19", "The request body must be a JSON object.")
        return value


@dataclass
class Outcome:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    entity_url: str | None = None  # "accounts(<id>)", what a Content-ID refers to

    @property
    def is_success(self) -> bool:
        return self.status < 400


def error_outcome(error: SandboxError) -> Outcome:
    # Dataverse sends its errors as OData JSON, with the same content type as data.
    headers = {"Content-Type": JSON, **error.headers}
    return Outcome(error.status, headers, error.body())


def json_outcome(
    status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
) -> Outcome:
    body = exact_json.encode(payload)
    return Outcome(status, {"Content-Type": JSON, **(headers or {})}, body)


@dataclass
class Preferences:
    return_representation: bool = False
    max_page_size: int | None = None
    annotations: tuple[str, ...] = ()
    annotations_text: str = ""  # as sent, echoed in Preference-Applied
    continue_on_error: bool = False

    def applied(self, *, page_size: int | None = None) -> dict[str, str]:
        """The ``Preference-Applied`` header for a read that honoured these preferences."""
        applied = []
        if self.annotations:
            applied.append(f'odata.include-annotations="{self.annotations_text}"')
        if page_size is not None:
            applied.append(f"odata.maxpagesize={page_size}")
        return {"Preference-Applied": ",".join(applied)} if applied else {}

    def wants_annotation(self, name: str) -> bool:
        term = name.split("@", 1)[-1]
        for pattern in self.annotations:
            if pattern == "*" or pattern == term:
                return True
            if pattern.endswith(".*") and term.startswith(pattern[:-1]):
                return True
        return False


def parse_prefer(header: str | None) -> Preferences:
    preferences = Preferences()
    for item in re.split(r",(?=(?:[^\"]*\"[^\"]*\")*[^\"]*$)", header or ""):
        name, _, value = item.strip().partition("=")
        name = name.strip().lower()
        value = value.strip().strip('"')
        if name == "return" and value == "representation":
            preferences.return_representation = True
        elif name == "odata.maxpagesize":
            if not value.isdigit() or int(value) < 1:
                msg = "odata.maxpagesize must be a positive integer."
                raise bad_syntax(msg)
            preferences.max_page_size = int(value)
        elif name == "odata.include-annotations":
            preferences.annotations = tuple(v.strip() for v in value.split(",") if v.strip())
            preferences.annotations_text = value
        elif name == "odata.continue-on-error":
            preferences.continue_on_error = True
    return preferences


def project(doc: dict[str, Any], entity: EntityType, select: list[str] | None) -> dict[str, Any]:
    """One row as Dataverse writes it: ETag first, the key always, lookups as _x_value
    (annotations are added by app/sandbox/operations/formatted_values.py when asked for)."""
    row: dict[str, Any] = {"@odata.etag": etag(doc)}
    if select is None:
        row.update((name, value) for name, value in doc.items() if "@" not in name)
    else:
        for name in select:
            row[name] = doc.get(name)
        row[entity.pk] = doc[entity.pk]
    for name in entity.write_only.intersection(row):
        row[name] = None  # a secret is written, never read back (IsValidForRead false)
    return row


def context_url(api_url: str, entity: EntityType, select: list[str] | None, *, single: bool) -> str:
    columns = f"({','.join(select)})" if select else ""
    return f"{api_url}$metadata#{entity.set_name}{columns}{'/$entity' if single else ''}"


def entity_url(entity: EntityType, doc: dict[str, Any]) -> str:
    return f"{entity.set_name}({doc[entity.pk]})"


def key_literal(value: Any) -> str:
    """A key value as an OData URL literal: strings quoted (``'`` doubled), numbers bare."""
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def key_url(entity: EntityType, key: dict[str, Any]) -> str:
    """``accounts(accountnumber='A-1')``: a record named by the alternate key it was
    addressed with, as Dataverse writes it in ``OData-EntityId``."""
    values = ",".join(f"{name}={key_literal(value)}" for name, value in key.items())
    return f"{entity.set_name}({values})"
