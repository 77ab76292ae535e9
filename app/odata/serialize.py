"""Rows -> OData JSON bytes with orjson.

Every row read ends with the entity as JSON text, built by the database
(``EntitySet.json_column``). The common answer (every property, minimal metadata) is made
of those texts, each with its ``@odata.etag`` put in front: no per-value work in Python.
Other answers build dicts from the row's values.

Metadata levels (JSON Format §3.1): ``minimal`` adds context, etag, nextLink, count;
``full`` also id, editLink, type and the types of non-default properties; ``none`` keeps
only nextLink and count. Each entity's weak ETag hashes that whole-entity JSON (every
property, whatever ``$select`` or version was asked), so it changes exactly when the
entity's data changes, and the same entity has the same ETag in every answer.
"""

from __future__ import annotations

import operator
import uuid
import zlib
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import orjson

from app.odata.entity_sets import EntitySet, Property

MINIMAL, FULL, NONE = "minimal", "full", "none"
_DUMP_OPTIONS = orjson.OPT_UTC_Z
_Fragment = orjson.Fragment


def _default(value: Any) -> Any:
    # asyncpg's UUID is not uuid.UUID, which is all orjson knows natively.
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        return _Fragment(format(value, "f"))
    msg = f"cannot serialise {type(value).__name__}"
    raise TypeError(msg)


_TYPE_ANNOTATIONS = {
    "Edm.Decimal": "#Decimal",
    "Edm.Guid": "#Guid",
    "Edm.DateTimeOffset": "#DateTimeOffset",
}


def etag(row: Sequence[Any]) -> str:
    """A weak validator of the entity's content: two fast checksums, 64 bits together.

    Hashing the entity's JSON makes it change exactly when the entity does (any write, a
    new coupling), with no version column to keep; weak ETags need no cryptographic
    strength. ``row``'s last value is that JSON text (``EntitySet.json_column``).
    """
    data = row[-1].encode()
    return 'W/"%016x"' % (zlib.crc32(data) << 32 | zlib.adler32(data))  # noqa: UP031 - faster


def _to_bool(value: Any) -> Any:
    return value if value is None else bool(value)


def json_number(value: Any) -> Any:
    """A decimal as selected (``Property.output_column``) -> what orjson writes as the exact
    JSON number: doubles as they are, exact text as a raw JSON fragment."""
    return _Fragment(value) if value.__class__ is str else value


def fragment_text(value: Any) -> Any:
    """The text of a ``json_number`` fragment (for tokens), other values unchanged."""
    return orjson.dumps(value).decode() if isinstance(value, _Fragment) else value


class RowConverter:
    """Driver rows -> JSON-ready rows. The SQL already yields GUID and timestamp text and
    decimals as doubles or exact text (``Property.output_column``); what is left is the text
    of decimals sent as JSON numbers and SQLite's 0/1 for booleans. Rows that need nothing
    pass through as they are."""

    def __init__(
        self, entity_set: EntitySet, dialect_name: str, *, decimals_as_text: bool = False
    ) -> None:
        self.steps: list[tuple[int, Callable[[Any], Any]]] = []
        for index, prop in enumerate(entity_set.properties):
            if prop.is_decimal and not decimals_as_text:
                self.steps.append((index, json_number))
            elif prop.edm_type == "Edm.Boolean" and dialect_name == "sqlite":
                self.steps.append((index, _to_bool if prop.nullable else bool))

    def __call__(self, row: Sequence[Any]) -> Sequence[Any]:
        if not self.steps:
            return row
        values = list(row)
        for index, convert in self.steps:
            values[index] = convert(values[index])
        return values


_converters: dict[tuple[str, str, bool], RowConverter] = {}


def converter_for(
    entity_set: EntitySet, dialect_name: str, *, decimals_as_text: bool = False
) -> RowConverter:
    key = (entity_set.name, dialect_name, decimals_as_text)
    found = _converters.get(key)
    if found is None:
        found = RowConverter(entity_set, dialect_name, decimals_as_text=decimals_as_text)
        _converters[key] = found
    return found


def key_segment(entity_set: EntitySet, values: dict[str, Any]) -> str:
    def literal(value: Any) -> str:
        return "'" + quote(str(value).replace("'", "''"), safe="") + "'"

    if len(entity_set.key) == 1:
        return f"{entity_set.name}({literal(values[entity_set.key[0]])})"
    parts = ",".join(f"{name}={literal(values[name])}" for name in entity_set.key)
    return f"{entity_set.name}({parts})"


class EntityWriter:
    """Turns full rows (all properties, declaration order) into output dicts."""

    def __init__(
        self, entity_set: EntitySet, selected: Sequence[Property], *, level: str, root: str
    ) -> None:
        names = [p.name for p in entity_set.properties]
        self.entity_set = entity_set
        self.level = level
        self.root = root
        self.columns = [(p.name, names.index(p.name)) for p in selected]
        self.names = [name for name, _index in self.columns]
        picks = [index for _name, index in self.columns]
        self.pick = operator.itemgetter(*picks) if len(picks) > 1 else (lambda r: (r[picks[0]],))
        self.whole = picks == list(range(len(names)))
        self.width = len(names)
        # The common answer is made of the database's JSON of each entity alone.
        self.uses_json = self.level == MINIMAL and self.whole
        self.tagged_names = ("@odata.etag", *self.names)
        self.key_columns = {k: names.index(k) for k in entity_set.key}
        self.type_notes = [
            (f"{p.name}@odata.type", _TYPE_ANNOTATIONS[p.edm_type])
            for p in selected
            if p.edm_type in _TYPE_ANNOTATIONS
        ]

    def entities(
        self, rows: Sequence[Sequence[Any]], convert: RowConverter | None = None
    ) -> list[Any]:
        """Entities from driver rows, converted on the way (``convert``) if given."""
        if not self.uses_json:
            return [self.entity(convert(row) if convert else row) for row in rows]
        # The common case, inlined: the database's JSON text of each entity with its ETag
        # put in front (as etag() computes it), sent as a raw JSON fragment.
        fragment, crc32, adler32 = _Fragment, zlib.crc32, zlib.adler32
        out = []
        for row in rows:
            text = row[-1]
            data = text.encode()
            tag = crc32(data) << 32 | adler32(data)
            out.append(fragment('{"@odata.etag":"W/\\"%016x\\"",%s' % (tag, text[1:])))  # noqa: UP031
        return out

    def entity(self, row: Sequence[Any]) -> dict[str, Any]:
        """One entity from converted ``row`` values (``RowConverter``)."""
        values = row[: self.width] if self.whole else self.pick(row)  # not the JSON text
        if self.level == NONE:
            return dict(zip(self.names, values))  # noqa: B905 - equal by construction
        if self.level == MINIMAL:
            return dict(zip(self.tagged_names, (etag(row), *values)))  # noqa: B905
        out: dict[str, Any] = {"@odata.etag": etag(row)}
        segment = key_segment(self.entity_set, {k: row[i] for k, i in self.key_columns.items()})
        out["@odata.type"] = f"#{self.entity_set.qualified_type}"
        out["@odata.id"] = f"{self.root}{segment}"
        out["@odata.editLink"] = segment
        out.update(self.type_notes)
        out.update(zip(self.names, values, strict=True))
        return out


_writers: dict[tuple[str, tuple[str, ...], str, str], EntityWriter] = {}


def writer_for(
    entity_set: EntitySet, selected: Sequence[Property], *, level: str, root: str
) -> EntityWriter:
    """The writer for this selection, kept: requests repeat a few of them (hosts are few)."""
    key = (entity_set.name, tuple(p.name for p in selected), level, root)
    found = _writers.get(key)
    if found is None:
        found = EntityWriter(entity_set, selected, level=level, root=root)
        if len(_writers) < 256:  # a flood of made-up hosts is not kept
            _writers[key] = found
    return found


def collection_payload(
    writer: EntityWriter,
    rows: Sequence[Sequence[Any]],
    *,
    convert: RowConverter | None = None,
    context: str,
    count: int | None,
    next_link: str | None,
) -> bytes:
    body: dict[str, Any] = {}
    if writer.level != NONE:
        body["@odata.context"] = context
    if count is not None:
        body["@odata.count"] = count
    body["value"] = writer.entities(rows, convert)
    if next_link is not None:
        body["@odata.nextLink"] = next_link
    return orjson.dumps(body, option=_DUMP_OPTIONS, default=_default)


def entity_payload(writer: EntityWriter, row: Sequence[Any], *, context: str) -> bytes:
    body: dict[str, Any] = {}
    if writer.level != NONE:
        body["@odata.context"] = context
    body.update(writer.entity(row))
    return orjson.dumps(body, option=_DUMP_OPTIONS, default=_default)


def entity_payload_from_json(text: str, *, context: str, tag: str) -> bytes:
    """A single entity (minimal metadata, every property) from its JSON (``json_column``)."""
    head = orjson.dumps({"@odata.context": context, "@odata.etag": tag})
    return head[:-1] + b"," + text[1:].encode()


def value_payload(value: Any, *, context: str | None) -> bytes:
    body: dict[str, Any] = {}
    if context is not None:
        body["@odata.context"] = context
    body["value"] = value
    return orjson.dumps(body, option=_DUMP_OPTIONS, default=_default)


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=_DUMP_OPTIONS, default=_default)
