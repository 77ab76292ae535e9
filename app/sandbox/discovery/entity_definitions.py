"""Metadata discovery: ``EntityDefinitions``, read-only, for the tables the sandbox serves.

- ``EntityDefinitions`` and ``EntityDefinitions(LogicalName='account')`` (or by MetadataId),
  with ``$select``, ``$filter`` and ``$expand`` of ``Attributes``, ``Keys``,
  ``ManyToOneRelationships``, ``OneToManyRelationships``, ``ManyToManyRelationships``
  (each with a nested ``$select`` / ``$filter``);
- ``EntityDefinitions(...)/Attributes`` (also ``Attributes(LogicalName='name')`` and the
  cast ``Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata`` with
  ``$expand=OptionSet``), ``/Keys`` and the three relationship collections.

Creating or changing metadata is not implemented (501).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.sandbox.config import SandboxConfig
from app.sandbox.discovery.metadata_filter import compile_metadata_filter, unknown_metadata_property
from app.sandbox.errors import SandboxError, resource_not_found, unsupported
from app.sandbox.operations.expand import split_top_level
from app.sandbox.operations.keys import split_segment
from app.sandbox.operations.render import Operation, Outcome, json_outcome
from app.sandbox.schema.attributes import Schema
from app.sandbox.schema.entities import BY_LOGICAL, ENTITIES, EntityType
from app.sandbox.schema.metadata_items import (
    attribute_item,
    entity_item,
    key_item,
    many_to_many,
    many_to_one,
    one_to_many,
    option_set,
)

_NAMESPACE = "Microsoft.Dynamics.CRM."
_PART_TYPES = {
    "Attributes": "AttributeMetadata",
    "Keys": "EntityKeyMetadata",
    "ManyToOneRelationships": "OneToManyRelationshipMetadata",
    "OneToManyRelationships": "OneToManyRelationshipMetadata",
    "ManyToManyRelationships": "ManyToManyRelationshipMetadata",
}
_READ_OPTIONS = {"$select", "$filter", "$expand"}
Expander = Callable[[dict[str, Any]], Any]


def _not_found(key: str) -> SandboxError:
    return SandboxError(404, "0x80040217", f"Could not find an entity with the key {key}.")


class EntityDefinitions:
    def __init__(self, schema: Schema, config: SandboxConfig) -> None:
        self.schema = schema
        self.alternate_keys = config.alternate_keys
        self.items = {e.logical: entity_item(e, i) for i, e in enumerate(ENTITIES)}
        self._parts: dict[str, dict[str, list[dict[str, Any]]]] = {}

    def parts(self, entity: EntityType) -> dict[str, list[dict[str, Any]]]:
        if entity.logical not in self._parts:
            columns = sorted(self.schema.attributes(entity))
            self._parts[entity.logical] = {
                "Attributes": [attribute_item(entity, c, self.schema) for c in columns],
                "Keys": [key_item(entity, k) for k in self.alternate_keys.get(entity.set_name, [])],
                "ManyToOneRelationships": many_to_one(entity),
                "OneToManyRelationships": one_to_many(entity),
                "ManyToManyRelationships": many_to_many(entity),
            }
        return self._parts[entity.logical]

    def answer(self, segments: list[str], op: Operation, api_url: str) -> Outcome:
        if op.method != "GET":
            msg = "The sandbox serves metadata read-only; it cannot create or change tables."
            raise unsupported(msg)
        for name in op.query:
            if name.startswith("$") and name not in _READ_OPTIONS:
                msg = f"The sandbox does not support {name} in metadata queries."
                raise unsupported(msg)
        name, key = split_segment(segments[0])
        if name != "EntityDefinitions":
            raise resource_not_found(name)
        context = f"{api_url}$metadata#EntityDefinitions"
        if key is None:
            if len(segments) > 1:
                raise resource_not_found(segments[1])
            return self._entities(op.query, context)
        entity = self._find(key)
        if len(segments) == 1:
            row = self._entity_row(entity, op.query)
            return json_outcome(200, {"@odata.context": f"{context}/$entity", **row})
        return self._part(entity, segments[1:], op.query, context)

    def _find(self, key: str) -> EntityType:
        text = key.strip()
        if text.startswith("LogicalName="):
            logical = text.removeprefix("LogicalName=").strip("'")
            if logical in BY_LOGICAL:
                return BY_LOGICAL[logical]
        for logical, item in self.items.items():
            if item["MetadataId"] == text.lower():
                return BY_LOGICAL[logical]
        raise _not_found(text)

    def _expanders(self, entity: EntityType) -> dict[str, Expander]:
        return {name: _constant(rows) for name, rows in self.parts(entity).items()}

    def _entity_row(self, entity: EntityType, query: dict[str, str]) -> dict[str, Any]:
        return _shape(self.items[entity.logical], query, "EntityMetadata", self._expanders(entity))

    def _entities(self, query: dict[str, str], context: str) -> Outcome:
        items = _filtered(list(self.items.values()), query.get("$filter"), "EntityMetadata")
        rows = [self._entity_row(BY_LOGICAL[item["LogicalName"]], query) for item in items]
        return json_outcome(200, {"@odata.context": context, "value": rows})

    def _part(
        self, entity: EntityType, rest: list[str], query: dict[str, str], context: str
    ) -> Outcome:
        name, key = split_segment(rest[0])
        if name not in _PART_TYPES:
            raise resource_not_found(name)
        items = self.parts(entity)[name]
        type_name = _PART_TYPES[name]
        if len(rest) > 1:  # a cast: Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata
            cast = rest[1].removeprefix(_NAMESPACE)
            if name != "Attributes" or len(rest) > 2:
                raise resource_not_found(rest[-1])
            items = [item for item in items if item["@odata.type"] == f"#{_NAMESPACE}{cast}"]
            type_name = cast
        expanders: dict[str, Expander] = {}
        if name == "Attributes":
            expanders["OptionSet"] = lambda item: option_set(entity, item["LogicalName"])
        context += f"('{self.items[entity.logical]['MetadataId']}')/{name}"
        if key is not None:
            wanted = key.removeprefix("LogicalName=").strip("'").lower()
            match = [i for i in items if wanted in (i.get("LogicalName"), i.get("MetadataId"))]
            if not match:
                raise resource_not_found(rest[0])
            row = _shape(match[0], query, type_name, expanders)
            return json_outcome(200, {"@odata.context": f"{context}/$entity", **row})
        items = _filtered(items, query.get("$filter"), type_name)
        rows = [_shape(item, query, type_name, expanders) for item in items]
        return json_outcome(200, {"@odata.context": context, "value": rows})


def _constant(rows: list[dict[str, Any]]) -> Expander:
    return lambda _: rows


def _select(text: str) -> set[str]:
    return {name.strip() for name in text.split(",") if name.strip()}


def _filtered(
    items: list[dict[str, Any]], text: str | None, type_name: str
) -> list[dict[str, Any]]:
    if not text:
        return items
    known = frozenset(name for item in items for name in item)
    keep = compile_metadata_filter(text, known=known, type_name=type_name)
    return [item for item in items if keep(item)]


def _selected(item: dict[str, Any], text: str | None, type_name: str) -> dict[str, Any]:
    if not text:
        return dict(item)
    names = _select(text)
    for name in names:
        if name not in item:
            raise unknown_metadata_property(name, type_name)
    return {k: v for k, v in item.items() if k in names or k in ("MetadataId", "@odata.type")}


def _shape(
    item: dict[str, Any], query: dict[str, str], type_name: str, expanders: dict[str, Expander]
) -> dict[str, Any]:
    """One item with ``$select`` applied and the requested expansions added."""
    row = _selected(item, query.get("$select"), type_name)
    for expansion in split_top_level(query.get("$expand", ""), ","):
        name, _, nested = expansion.partition("(")
        name = name.strip()
        if name not in expanders:
            raise unknown_metadata_property(name, type_name)
        row[name] = _nested(expanders[name](item), nested.removesuffix(")"), name)
    return row


def _nested(value: Any, options: str, name: str) -> Any:
    wanted: dict[str, str] = {}
    for option in split_top_level(options, ";"):
        key, _, text = option.partition("=")
        if key.strip() not in ("$select", "$filter"):
            msg = f"The sandbox supports $select and $filter inside $expand={name}."
            raise unsupported(msg)
        wanted[key.strip()] = text
    if isinstance(value, dict):
        return _selected(value, wanted.get("$select"), name)
    if not isinstance(value, list):
        return value
    rows = _filtered(value, wanted.get("$filter"), name)
    return [_selected(row, wanted.get("$select"), name) for row in rows]
