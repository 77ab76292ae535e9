"""Turning a JSON body into column values: binds, read-only and unknown names, choices.

Only attributes the entity declares (app/sandbox/schema/attributes.py) can be written; server-set
columns are ignored, and lookups are written with ``<nav>@odata.bind`` only.

A body is applied to a copy of the stored document; lookups land as ``_<nav>_value`` plus
the target's logical name, the way Dataverse returns them.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app.exact_json import number
from app.sandbox.errors import (
    SandboxError,
    content_id_missing,
    does_not_exist,
    key_does_not_exist,
    payload_error,
    validation_error,
)
from app.sandbox.operations.filters import GUID, normalize_datetime
from app.sandbox.operations.keys import RecordRef, parse_reference
from app.sandbox.schema.attributes import STANDARD_SCHEMA, Schema
from app.sandbox.schema.entities import BY_SET, RELATIONSHIPS, SERVER_SET, EntityType, Lookup
from app.sandbox.store import Store
from app.sandbox.webhooks.auth import check_endpoint
from app.sandbox.webhooks.steps import WEBHOOK_CONTRACT

LOGICAL_ANNOTATION = "@Microsoft.Dynamics.CRM.lookuplogicalname"
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$")
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass
class Changes:
    """What a body asks for, split the way the state rules need it."""

    columns: dict[str, Any] = field(default_factory=dict)
    state: int | None = None
    status: int | None = None
    associations: list[tuple[str, str]] = field(default_factory=list)  # (relationship, id)

    @property
    def has_columns(self) -> bool:
        return bool(self.columns)


@dataclass
class BindContext:
    store: Store
    alternate_keys: dict[str, list[tuple[str, ...]]]
    api_path: str  # "/api/data/v9.2/"
    content_ids: dict[str, str] = field(default_factory=dict)  # "$1" -> "accounts(<id>)"
    schema: Schema = STANDARD_SCHEMA


def resolve_ref(ref: RecordRef, store: Store) -> dict[str, Any] | None:
    if ref.record_id is not None:
        return store.get(ref.entity.set_name, ref.record_id)
    return store.find_by_key(ref.entity.set_name, ref.key or {})


def reference_to_ref(text: str, context: BindContext) -> RecordRef:
    if text.startswith("$"):
        if text not in context.content_ids:
            raise content_id_missing(text)
        text = context.content_ids[text]
    return parse_reference(text, context.alternate_keys, api_path=context.api_path)


def _find_lookup(entity: EntityType, nav: str) -> tuple[Lookup, str] | None:
    """Navigation name -> (lookup, target set); polymorphic ones need the target suffix."""
    direct = entity.lookups.get(nav)
    if direct is not None and not direct.is_polymorphic:
        return direct, direct.targets[0]
    for lookup in entity.lookups.values():
        if lookup.is_polymorphic and nav.startswith(lookup.name + "_"):
            suffix = nav[len(lookup.name) + 1 :]
            for target in lookup.targets:
                if BY_SET[target].logical == suffix:
                    return lookup, target
    return None


def _undeclared(entity: EntityType, name: str) -> SandboxError:
    return payload_error(
        entity.set_name,
        f"An undeclared property '{name}' which only has property annotations in the payload "
        f"but no property value was found in the payload. In OData, only declared navigation "
        f"properties and declared named streams can be represented as properties without values.",
    )


def _not_on_type(entity: EntityType, name: str) -> SandboxError:
    return payload_error(
        entity.set_name,
        f"The property '{name}' does not exist on type '{entity.type_name}'. Make sure to only "
        f"use property names that are defined by the type.",
    )


def _bind(entity: EntityType, nav: str, value: Any, changes: Changes, context: BindContext) -> None:
    if nav in RELATIONSHIPS and isinstance(value, list):
        for item in value:
            ref = reference_to_ref(str(item), context)
            target = resolve_ref(ref, context.store)
            if target is None:
                raise does_not_exist(ref.entity.logical, ref.describe())
            changes.associations.append((nav, target[ref.entity.pk]))
        return
    found = _find_lookup(entity, nav)
    if found is None:
        raise _undeclared(entity, nav)
    lookup, target_set = found
    column = f"_{lookup.name}_value"
    if value is None:
        changes.columns[column] = None
        changes.columns[column + LOGICAL_ANNOTATION] = None
        return
    if not isinstance(value, str):
        raise payload_error(entity.set_name, f"The value of '{nav}@odata.bind' must be a URL.")
    ref = reference_to_ref(value, context)
    if ref.entity.set_name != target_set:
        raise payload_error(
            entity.set_name,
            f"'{nav}' refers to {BY_SET[target_set].type_name}, not {ref.entity.type_name}.",
        )
    target = resolve_ref(ref, context.store)
    if target is None:
        if ref.record_id is None:
            raise key_does_not_exist(ref.entity.logical, ref.describe())
        raise does_not_exist(ref.entity.logical, ref.describe())
    changes.columns[column] = target[ref.entity.pk]
    changes.columns[column + LOGICAL_ANNOTATION] = ref.entity.logical


def read_changes(
    entity: EntityType, body: dict[str, Any], context: BindContext, *, record_id: str | None
) -> Changes:
    changes = Changes()
    for name, value in body.items():
        if name.startswith("@odata.") or name.startswith("@"):
            continue
        if name.endswith("@odata.bind"):
            _bind(entity, name[: -len("@odata.bind")], value, changes, context)
            continue
        if "@" in name:
            continue  # other instance annotations are ignored, as Dataverse does
        if name in entity.lookups or _find_lookup(entity, name) is not None:
            raise payload_error(
                entity.set_name,
                "A 'PrimitiveValue' node with non-null value was found when trying to read the "
                "value of a navigation property; however, a 'StartArray' node, a 'StartObject' "
                "node, or a 'PrimitiveValue' node with null value was expected.",
            )
        if name in SERVER_SET:
            continue
        if (
            not _NAME.match(name)
            or (name.startswith("_") and name.endswith("_value"))
            or not context.schema.declares(entity, name)
        ):
            raise _not_on_type(entity, name)
        _read_column(entity, name, value, changes, record_id=record_id)
    return changes


def _read_column(
    entity: EntityType, name: str, value: Any, changes: Changes, *, record_id: str | None
) -> None:
    if isinstance(value, dict | list):
        raise SandboxError(501, "0x80040800", "The sandbox does not support deep insert.")
    if name == entity.pk:
        if not isinstance(value, str) or not GUID.match(value):
            raise payload_error(entity.set_name, f"Cannot convert '{value}' to Edm.Guid.")
        if record_id is not None and value.lower() != record_id:
            raise payload_error(entity.set_name, f"'{name}' cannot be changed.")
        changes.columns[name] = value.lower()
        return
    if name in ("statecode", "statuscode") and entity.state is not None:
        if not isinstance(value, int) or isinstance(value, bool):
            msg = f"'{name}' must be a whole number."
            raise validation_error(msg)
        if name == "statecode":
            changes.state = value
        else:
            changes.status = value
        return
    allowed = entity.choices.get(name)
    if allowed is not None and value is not None and value not in allowed:
        msg = (
            f"The value {value} of '{name}' on record of type '{entity.logical}' is outside "
            f"the valid range."
        )
        raise validation_error(msg)
    if isinstance(value, str) and _DATETIME.match(value):
        value = normalize_datetime(value)
    changes.columns[name] = value


def computed_columns(entity: EntityType, doc: dict[str, Any]) -> None:
    """Columns Dataverse derives from others (full names, note sizes, line amounts)."""
    if entity.set_name in ("contacts", "systemusers"):
        parts = [doc.get("firstname"), doc.get("lastname")]
        if any(parts):
            doc["fullname"] = " ".join(str(part) for part in parts if part)
    if entity.set_name == "annotations":
        doc.setdefault("isdocument", False)
        body = doc.get("documentbody")
        try:
            doc["filesize"] = len(base64.b64decode(body)) if body else 0
        except (binascii.Error, ValueError) as exc:
            msg = "documentbody must be base64."
            raise validation_error(msg) from exc
        target = doc.get("_objectid_value" + LOGICAL_ANNOTATION)
        if target:
            doc["objecttypecode"] = target
    if entity.set_name == "posts":
        regarding = doc.get("_regardingobjectid_value" + LOGICAL_ANNOTATION)
        if regarding:
            doc["regardingobjecttypecode"] = regarding
    if entity.set_name == "serviceendpoints":
        if doc.get("contract") == WEBHOOK_CONTRACT:
            try:
                check_endpoint(doc)
            except ValueError as exc:
                raise validation_error(str(exc)) from exc
        for secret, flag in (("authvalue", "isauthvalueset"), ("saskey", "issaskeyset"),
                             ("sastoken", "issastokenset")):  # fmt: skip
            doc[flag] = bool(doc.get(secret))
    if entity.parent in ("quoteid", "salesorderid", "invoiceid"):
        _line_amounts(doc)


def _line_amounts(doc: dict[str, Any]) -> None:
    quantity = doc.get("quantity")
    price = doc.get("priceperunit")
    if not _is_number(quantity) or not _is_number(price):
        return
    # Decimal arithmetic, as Dataverse computes amounts.
    base = round(number(quantity) * number(price), 2)
    discount = number(doc.get("manualdiscountamount")) + number(doc.get("volumediscountamount"))
    doc["baseamount"] = base
    doc["extendedamount"] = round(base - discount + number(doc.get("tax")), 2)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)
