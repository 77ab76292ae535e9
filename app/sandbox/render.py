"""Operations in and out: the request/response records shared by HTTP and ``$batch``, the
``Prefer`` header, and how rows are written as OData JSON."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from app import exact_json
from app.sandbox.entities import EntityType
from app.sandbox.errors import SandboxError, bad_syntax
from app.sandbox.records import etag

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
    headers = {"Content-Type": "application/json; charset=utf-8", **error.headers}
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
    continue_on_error: bool = False

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
        elif name == "odata.continue-on-error":
            preferences.continue_on_error = True
    return preferences


def project(
    doc: dict[str, Any], entity: EntityType, select: list[str] | None, prefs: Preferences
) -> dict[str, Any]:
    """One row as Dataverse writes it: ETag first, the key always, lookups as _x_value."""
    row: dict[str, Any] = {"@odata.etag": etag(doc)}
    if select is None:
        for name, value in doc.items():
            if "@" not in name or (value is not None and prefs.wants_annotation(name)):
                row[name] = value
        return row
    for name in select:
        row[name] = doc.get(name)
        annotation = name + "@Microsoft.Dynamics.CRM.lookuplogicalname"
        if doc.get(annotation) and prefs.wants_annotation(annotation):
            row[annotation] = doc[annotation]
    row[entity.pk] = doc[entity.pk]
    return row


def context_url(api_url: str, entity: EntityType, select: list[str] | None, *, single: bool) -> str:
    columns = f"({','.join(select)})" if select else ""
    return f"{api_url}$metadata#{entity.set_name}{columns}{'/$entity' if single else ''}"


def entity_url(entity: EntityType, doc: dict[str, Any]) -> str:
    return f"{entity.set_name}({doc[entity.pk]})"
