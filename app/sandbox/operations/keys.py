"""Record addressing: ``set(<guid>)``, ``set(pk=<guid>)``, ``set(key='v',key2=2)``.

Shared by request URLs and ``@odata.bind`` values, as in Dataverse, where an alternate key
works in both places.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from app.sandbox.errors import SandboxError, bad_syntax, invalid_key, resource_not_found
from app.sandbox.operations.filters import GUID, IDENTIFIER
from app.sandbox.schema.entities import BY_SET, EntityType

_SEGMENT = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_.]*)(?:\((?P<key>.*)\))?$", re.DOTALL)


@dataclass(frozen=True)
class RecordRef:
    """A record as addressed: by primary key (``record_id``) or by alternate key."""

    entity: EntityType
    record_id: str | None = None
    key: dict[str, Any] | None = None

    def describe(self) -> str:
        if self.record_id is not None:
            return self.record_id
        return ",".join(f"{name}={value!r}" for name, value in (self.key or {}).items())


def split_segment(segment: str) -> tuple[str, str | None]:
    match = _SEGMENT.match(segment)
    if not match:
        raise resource_not_found(segment)
    return match.group("name"), match.group("key")


def split_path(path: str) -> list[str]:
    """Split on ``/`` outside quotes, so a key value may contain one."""
    if "'" not in path:  # nothing quoted: the common case, without the scan
        return [segment for segment in path.split("/") if segment != ""]
    segments: list[str] = []
    current: list[str] = []
    quoted = False
    for char in path:
        if char == "'":
            quoted = not quoted
        if char == "/" and not quoted:
            segments.append("".join(current))
            current = []
        else:
            current.append(char)
    segments.append("".join(current))
    return [segment for segment in segments if segment != ""]


def _key_parts(text: str) -> list[str]:
    if "'" not in text:
        return [part.strip() for part in text.split(",")]
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == "'":
            quoted = not quoted
        if char == "," and not quoted:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return parts


def _key_value(text: str, entity: EntityType) -> Any:
    if len(text) >= 2 and text[0] == "'" and text[-1] == "'":
        return text[1:-1].replace("''", "'")
    if GUID.match(text):
        return text.lower()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"-?\d+\.\d+", text):
        return float(text)
    raise invalid_key(entity.logical)


def parse_key(
    key_text: str, entity: EntityType, alternate_keys: dict[str, list[tuple[str, ...]]]
) -> RecordRef:
    parts = _key_parts(key_text)
    if len(parts) == 1 and "=" not in parts[0].split("'")[0]:
        value = parts[0]
        if not GUID.match(value):
            raise invalid_key(entity.logical)
        return RecordRef(entity, record_id=value.lower())
    key: dict[str, Any] = {}
    for part in parts:
        name, sep, raw = part.partition("=")
        name = name.strip()
        if not sep or not IDENTIFIER.match(name):
            raise invalid_key(entity.logical)
        key[name] = _key_value(raw.strip(), entity)
    if list(key) == [entity.pk]:
        # systemuser/team inherit their key from principal: a named key is refused.
        if entity.set_name == "systemusers" or not GUID.match(str(key[entity.pk])):
            raise invalid_key(entity.logical)
        return RecordRef(entity, record_id=str(key[entity.pk]))
    defined = {frozenset(attrs) for attrs in alternate_keys.get(entity.set_name, [])}
    if frozenset(key) not in defined:
        raise invalid_key(entity.logical)
    return RecordRef(entity, key=key)


def parse_reference(
    text: str, alternate_keys: dict[str, list[tuple[str, ...]]], *, api_path: str
) -> RecordRef:
    """``/accounts(<id>)``, ``accounts(<id>)`` or an absolute URL -> the record it names."""
    path = text.strip()
    marker = path.find(api_path)
    if marker >= 0:
        path = path[marker + len(api_path) :]
    path = path.lstrip("/")
    segments = split_path(path)
    if len(segments) != 1:
        msg = f"'{text}' does not name one record."
        raise bad_syntax(msg)
    name, key_text = split_segment(segments[0])
    entity = BY_SET.get(name)
    if entity is None:
        raise resource_not_found(name)
    if key_text is None:
        raise SandboxError(400, "0x80060888", f"'{text}' does not name one record.")
    return parse_key(key_text, entity, alternate_keys)
