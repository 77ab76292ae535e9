"""OData V3 JSON ("JSON light"): content negotiation, payloads and the error body.

A V3 payload names its metadata with ``odata.metadata``, its annotations ``odata.*``
(``odata.count`` as a string, ``odata.nextLink``, ``odata.etag``), and writes Edm.Decimal
(like Edm.Int64) as a JSON string, so no client parses an amount into a binary float.
Levels: ``minimalmetadata`` (default), ``fullmetadata`` (adds ``odata.type``, ``odata.id``,
``odata.editLink`` and the types of non-string properties), ``nometadata``.
Verbose JSON (``odata=verbose``) and Atom are not served (406).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import orjson

from app.errors import SalesbridgeError
from app.odata.entity_sets import EntitySet, Property
from app.odata.errors import ODataNotAcceptableError, odata_code_for
from app.odata.serialize import RowConverter, etag, key_segment

MINIMAL, FULL, NONE = "minimalmetadata", "fullmetadata", "nometadata"
JSON_TYPE = "application/json"
VERSION_HEADER = (b"dataserviceversion", b"3.0;")
_ODATA_PARAMETER = re.compile(r";\s*odata\s*=\s*([a-z]+)", re.IGNORECASE)
_DUMP = orjson.OPT_UTC_Z
_TYPED = ("Edm.Decimal", "Edm.Guid", "Edm.DateTimeOffset")


def content_type(level: str) -> str:
    return f"{JSON_TYPE};odata={level};streaming=true;charset=utf-8"


def metadata_level(format_option: str | None, accept: str | None) -> str:
    """The JSON light level asked for by ``$format`` (which wins) or ``Accept``; 406 else."""
    if format_option is not None:
        lowered = format_option.strip().lower()
        if lowered == "json":
            return MINIMAL
        if lowered.startswith(JSON_TYPE):
            return _level_of(lowered) or MINIMAL
        msg = f"The format '{format_option[:40]}' is not available; use $format=json."
        raise ODataNotAcceptableError(msg)
    if not accept:
        return MINIMAL
    for media_range in accept.split(","):
        lowered = media_range.strip().lower()
        if lowered.startswith((JSON_TYPE, "*/*", "application/*")) or lowered == "":
            found = _level_of(lowered, quiet=True)
            if found is not None:
                return found
    msg = "This service answers with OData V3 JSON (application/json) only."
    raise ODataNotAcceptableError(msg)


def _level_of(media: str, *, quiet: bool = False) -> str | None:
    match = _ODATA_PARAMETER.search(media)
    if match is None:
        return MINIMAL
    level = match.group(1).lower()
    if level in (MINIMAL, FULL, NONE):
        return level
    if quiet:
        return None  # e.g. odata=verbose: not served, another media range may be
    msg = f"JSON odata={level} is not available; use minimalmetadata, fullmetadata or nometadata."
    raise ODataNotAcceptableError(msg)


class EntityWriter:
    """Converted rows (all properties, declaration order) -> JSON light entity objects."""

    def __init__(
        self, entity_set: EntitySet, selected: Sequence[Property], *, level: str, root: str
    ) -> None:
        names = [p.name for p in entity_set.properties]
        self.entity_set, self.level, self.root = entity_set, level, root
        self.columns = [(p.name, names.index(p.name)) for p in selected]
        self.key_columns = {k: names.index(k) for k in entity_set.key}
        self.types = {p.name: p.edm_type for p in selected if p.edm_type in _TYPED}

    def entity(self, row: Sequence[Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.level == FULL:
            segment = key_segment(self.entity_set, {k: row[i] for k, i in self.key_columns.items()})
            out["odata.type"] = self.entity_set.qualified_type
            out["odata.id"] = f"{self.root}{segment}"
            out["odata.etag"] = etag(row)
            out["odata.editLink"] = segment
        elif self.level == MINIMAL:
            out["odata.etag"] = etag(row)
        for name, index in self.columns:
            if name in self.types and self.level == FULL:
                out[f"{name}@odata.type"] = self.types[name]
            out[name] = row[index]
        return out


def collection(
    writer: EntityWriter,
    rows: Sequence[Sequence[Any]],
    *,
    convert: RowConverter,
    context: str,
    count: int | None,
    next_link: str | None,
) -> bytes:
    body: dict[str, Any] = {}
    if writer.level != NONE:
        body["odata.metadata"] = context
    if count is not None:
        body["odata.count"] = str(count)  # Edm.Int64: a string in V3 JSON
    body["value"] = [writer.entity(convert(row)) for row in rows]
    if next_link is not None:
        body["odata.nextLink"] = next_link
    return orjson.dumps(body, option=_DUMP)


def entity(writer: EntityWriter, row: Sequence[Any], *, context: str) -> bytes:
    body: dict[str, Any] = {}
    if writer.level != NONE:
        body["odata.metadata"] = context
    body.update(writer.entity(row))
    return orjson.dumps(body, option=_DUMP)


def property_value(value: Any, *, context: str | None) -> bytes:
    body: dict[str, Any] = {} if context is None else {"odata.metadata": context}
    body["value"] = value
    return orjson.dumps(body, option=_DUMP)


def service_document(metadata_url: str, names: Sequence[str]) -> bytes:
    value = [{"name": name, "url": name} for name in names]
    return orjson.dumps({"odata.metadata": metadata_url, "value": value})


def error_body(exc: SalesbridgeError) -> bytes:
    message = {"lang": "en-US", "value": exc.detail}
    return orjson.dumps({"odata.error": {"code": odata_code_for(exc), "message": message}})


def internal_error_body() -> bytes:
    message = {"lang": "en-US", "value": "Something went wrong."}
    return orjson.dumps({"odata.error": {"code": "Internal_ServerError", "message": message}})
