"""Resource paths under ``/odata/v4/``: what is being asked for.

``""`` service document, ``$metadata``, ``Set``, ``Set/$count``, ``Set('k')`` or
``Set(K1='a',K2='b')`` (quotes doubled inside keys), ``Set('k')/Prop[/$value]``, each
optionally behind BC's ``Company('<name>')/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from app.odata.entity_sets import ENTITY_SETS, EntitySet
from app.odata.errors import ODataBadRequestError, ODataNotFoundError, ODataNotImplementedError

_UNSUPPORTED_SEGMENTS = {"$batch", "$crossjoin", "$all", "$entity", "$ref", "$filter", "$each"}


@dataclass
class Resource:
    kind: str  # service, metadata, collection, count, entity, property, value
    entity_set: EntitySet | None = None
    key: dict[str, str] = field(default_factory=dict)
    property_name: str | None = None
    company: str | None = None


def split_segments(path: str) -> list[str]:
    """Split on ``/`` outside single-quoted key literals."""
    segments: list[str] = []
    current: list[str] = []
    quoted = False
    for char in path:
        if char == "'":
            quoted = not quoted
        if char == "/" and not quoted:
            segments.append("".join(current))
            current = []
            continue
        current.append(char)
    segments.append("".join(current))
    return segments


def parse_resource(
    path: str, *, company_name: str, entity_sets: Mapping[str, EntitySet] = ENTITY_SETS
) -> Resource:
    segments = split_segments(path)
    if segments and segments[-1] == "":
        segments.pop()
    company = None
    if segments and segments[0].startswith("Company(") and segments[0].endswith(")"):
        company = parse_company(segments[0][len("Company(") : -1], company_name=company_name)
        segments = segments[1:]
    if not segments:
        return Resource("service", company=company)
    if segments == ["$metadata"]:
        return Resource("metadata", company=company)
    head, rest = segments[0], segments[1:]
    if head in _UNSUPPORTED_SEGMENTS or any(s in _UNSUPPORTED_SEGMENTS for s in rest):
        msg = "This kind of request is not supported by this service."
        raise ODataNotImplementedError(msg)
    name, _, key_text = head.partition("(")
    entity_set = entity_sets.get(name)
    if entity_set is None:
        msg = f"The resource '{name[:80]}' does not exist."
        raise ODataNotFoundError(msg)
    if not key_text:
        return _collection_resource(entity_set, rest, company)
    if not key_text.endswith(")"):
        msg = f"Invalid key in '{head[:80]}'."
        raise ODataBadRequestError(msg)
    key = parse_key(entity_set, key_text[:-1])
    return _entity_resource(entity_set, key, rest, company)


def parse_company(key_text: str, *, company_name: str) -> str:
    """``'CRONUS'`` or ``Name='CRONUS'`` (the Company set's key is Name); 404 for another."""
    name, separator, literal = key_text.partition("=")
    if separator and name.strip() == "Name" and not name.lstrip().startswith("'"):
        key_text = literal
    company = _parse_string_literal(key_text)
    if company != company_name:
        msg = f"The company '{company[:80]}' does not exist."
        raise ODataNotFoundError(msg)
    return company


def _collection_resource(entity_set: EntitySet, rest: list[str], company: str | None) -> Resource:
    if not rest:
        return Resource("collection", entity_set, company=company)
    if rest == ["$count"]:
        return Resource("count", entity_set, company=company)
    msg = f"The resource '{'/'.join(rest)[:80]}' does not exist on {entity_set.name}."
    raise ODataNotFoundError(msg)


def _entity_resource(
    entity_set: EntitySet, key: dict[str, str], rest: list[str], company: str | None
) -> Resource:
    if not rest:
        return Resource("entity", entity_set, key, company=company)
    prop = entity_set.by_name.get(rest[0])
    if prop is None or len(rest) > 2 or (len(rest) == 2 and rest[1] != "$value"):
        msg = f"The resource '{'/'.join(rest)[:80]}' does not exist on {entity_set.name}."
        raise ODataNotFoundError(msg)
    kind = "value" if len(rest) == 2 else "property"
    return Resource(kind, entity_set, key, property_name=prop.name, company=company)


def parse_key(entity_set: EntitySet, text: str) -> dict[str, str]:
    parts = _split_key_parts(text)
    if len(parts) == 1 and "=" not in parts[0].split("'", 1)[0]:
        if len(entity_set.key) != 1:
            msg = f"{entity_set.name} has a composite key: name each part, e.g. ItemNo='1000'."
            raise ODataBadRequestError(msg)
        return {entity_set.key[0]: _parse_string_literal(parts[0])}
    values: dict[str, str] = {}
    for part in parts:
        name, separator, literal = part.partition("=")
        name = name.strip()
        if not separator or name not in entity_set.key or name in values:
            msg = f"Invalid key part '{part[:60]}' for {entity_set.name}."
            raise ODataBadRequestError(msg)
        values[name] = _parse_string_literal(literal)
    if set(values) != set(entity_set.key):
        msg = f"The key of {entity_set.name} is {', '.join(entity_set.key)}."
        raise ODataBadRequestError(msg)
    return values


def _split_key_parts(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == "'":
            quoted = not quoted
        if char == "," and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _parse_string_literal(text: str) -> str:
    text = text.strip()
    if len(text) < 2 or not (text.startswith("'") and text.endswith("'")):
        msg = f"Key values are strings in single quotes, e.g. ('1000'); got {text[:60]!r}."
        raise ODataBadRequestError(msg)
    inner = text[1:-1]
    if "'" in inner.replace("''", ""):
        msg = "A quote inside a key value must be doubled ('')."
        raise ODataBadRequestError(msg)
    return inner.replace("''", "'")
