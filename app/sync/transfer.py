"""Field transfer, pure: ERP values -> CRM values and CRM record -> ERP values.

Nothing here touches a session or a client. A field mapping becomes a ``FieldRule``; a
transfer keeps the rules for its direction (``to_crm`` / ``from_crm`` plus
``bidirectional``), takes constants, applies the transformation and the not-null rule,
and normalises values so that "did anything change" is a plain comparison:

- money and quantities are ``Decimal`` (never float), in the JSON payload too;
- lookups are kept as references: ``ErpRef(table, code)`` on the way to the CRM (the
  caller resolves the coupled CRM id), a CRM id on the way back (resolved to an ERP code);
- not-null: an empty source value is not transferred at all (the destination keeps its
  value; BC's "Not Null" for owner and similar lookups);
- clear-value-on-failed-sync: when a lookup cannot be resolved, the field is cleared
  instead of failing the record;
- option sets (payment terms, shipment method, shipping agent): an ERP code becomes its
  CRM option value and back through the option mappings; a value without a pair is an
  ``UnmappedOption``, which fails the record that needs it (or, with
  clear-value-on-failed-sync, clears the field instead).

Product rules of the seed that are pure values live here too (type code, quantity
precision, negative price and inventory -> 0, blocked -> retired).
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import IntEnum
from typing import Any

from app.dataverse.addressing import bind, bind_field
from app.mappings.field_catalog import (
    LOOKUP_TABLES,
    TRANSFORMATIONS,
    FieldType,
    crm_fields,
    entity_set_for,
    erp_fields,
)
from app.mappings.option_sets import OptionTable, UnmappedOption, option_set_for
from app.models.integration import Direction, FieldMappingStatus, IntegrationFieldMapping

PRODUCT_QUANTITY_PRECISION = 2  # BC's GetProductQuantityPrecision()
NEGATIVE_TO_ZERO = ("price", "quantityonhand")


class ProductType(IntEnum):
    sales_inventory = 1
    miscellaneous_charges = 2
    services = 3
    flat_fees = 4


class ProductState(IntEnum):
    active = 0
    retired = 1
    draft = 2


PRODUCT_STATUS = {ProductState.active: 1, ProductState.retired: 2, ProductState.draft: 0}
PRODUCT_TYPES = {"item": ProductType.sales_inventory, "resource": ProductType.services}


@dataclass(frozen=True)
class FieldRule:
    """One enabled field mapping, as plain data."""

    erp_field: str
    crm_field: str
    direction: Direction
    constant_value: str = ""
    not_null: bool = False
    clear_value_on_failed_sync: bool = False
    transformation: str = ""
    # ERP codes <-> the CRM attribute's option values; not hashed (its tables are dicts):
    # a rule's hash is its field pair and direction, what the passes' caches key on.
    options: OptionTable | None = field(default=None, hash=False)

    @property
    def goes_to_crm(self) -> bool:
        return bool(self.crm_field) and self.direction in (
            Direction.to_crm,
            Direction.bidirectional,
        )

    @property
    def comes_from_crm(self) -> bool:
        return bool(self.erp_field) and self.direction in (
            Direction.from_crm,
            Direction.bidirectional,
        )


@dataclass(frozen=True)
class ErpRef:
    """A code of an ERP row whose coupled CRM id is the value of a CRM lookup."""

    table: str
    code: str


@dataclass(frozen=True)
class CrmRef:
    """A CRM id whose coupled ERP row's code is the value of an ERP field."""

    table: str
    crm_id: uuid.UUID


def rules_from(
    field_mappings: Iterable[IntegrationFieldMapping],
    options: Mapping[str, OptionTable] | None = None,
) -> list[FieldRule]:
    """The enabled field mappings; ``options`` (by option set) translate ERP codes."""
    return [
        FieldRule(
            erp_field=m.field,
            crm_field=m.integration_field,
            direction=Direction(m.direction),
            constant_value=m.constant_value,
            not_null=m.not_null,
            clear_value_on_failed_sync=m.clear_value_on_failed_sync,
            transformation=m.transformation,
            options=_option_table(m, options or {}),
        )
        for m in field_mappings
        if m.status == FieldMappingStatus.enabled
    ]


def _option_table(
    mapping: IntegrationFieldMapping, options: Mapping[str, OptionTable]
) -> OptionTable | None:
    option_set = option_set_for(mapping.integration_field)
    if option_set is None or not (mapping.field and mapping.integration_field):
        return None
    return options.get(option_set.name, OptionTable(option_set))


# --- values ------------------------------------------------------------------------------


def is_empty(value: Any) -> bool:
    return value is None or value == ""


def as_decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, Decimal):
        return value
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def transform(value: Any, transformation: str) -> Any:
    if not isinstance(value, str) or not transformation:
        return value
    if transformation == "trim":
        return value.strip()
    if transformation == "uppercase":
        return value.upper()
    if transformation == "lowercase":
        return value.lower()
    msg = f"unknown transformation {transformation!r}; known: {', '.join(TRANSFORMATIONS[1:])}"
    raise ValueError(msg)


def normalize(value: Any) -> Any:
    """The comparable form of a value: Decimal without trailing zeros, str dates, UUIDs."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):  # its shortest text, as JSON wrote it
        return Decimal(repr(value)).normalize()
    if isinstance(value, int | Decimal):
        # Exact: amounts go to the CRM as their exact digits and are read back as Decimal
        # (app.exact_json), so a value we sent compares equal to what comes back.
        return Decimal(value).normalize()
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def same_value(left: Any, right: Any) -> bool:
    """Equal after normalising; empty strings and nulls are the same emptiness."""
    if is_empty(left) and is_empty(right):
        return True
    return bool(normalize(left) == normalize(right))


def to_json(value: Any) -> Any:
    """A JSON-ready value: whole Decimal -> int, others stay Decimal (written exactly by
    app.exact_json), dates -> ISO text, UUID -> text."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


# --- ERP -> CRM --------------------------------------------------------------------------


@functools.cache  # the catalog is fixed at import; asked per field of every record
def crm_lookup_target(entity: str, crm_field: str) -> str | None:
    """The entity a CRM lookup attribute points at (first target if polymorphic)."""
    info = crm_fields(entity).get(crm_field)
    if info is None or info.type != FieldType.lookup:
        return None
    return info.target.split("|")[0]


def _constant_for_crm(rule: FieldRule, entity: str) -> Any:
    info = crm_fields(entity).get(rule.crm_field)
    if info is not None and info.type in (FieldType.integer, FieldType.choice):
        return int(rule.constant_value)
    if info is not None and info.type == FieldType.boolean:
        return rule.constant_value.lower() in ("1", "true", "yes")
    return rule.constant_value


def to_crm_values(
    rules: Iterable[FieldRule], erp: Mapping[str, Any], *, entity: str
) -> dict[str, Any]:
    """The CRM attribute values for an ERP row; lookups come back as ``ErpRef`` or None."""
    values: dict[str, Any] = {}
    for rule in rules:
        if not rule.goes_to_crm:
            continue
        if not rule.erp_field:
            values[rule.crm_field] = _constant_for_crm(rule, entity)
            continue
        value = transform(erp.get(rule.erp_field), rule.transformation)
        if rule.not_null and is_empty(value):
            continue
        if rule.options is not None:
            option = rule.options.crm_value(value)
            cleared = isinstance(option, UnmappedOption) and rule.clear_value_on_failed_sync
            values[rule.crm_field] = None if cleared else option
            continue
        target = crm_lookup_target(entity, rule.crm_field)
        if target is not None and target in LOOKUP_TABLES:
            values[rule.crm_field] = ErpRef(LOOKUP_TABLES[target], str(value or ""))
            continue
        values[rule.crm_field] = as_decimal(value) if isinstance(value, float) else value
    return values


def unmapped_option(values: Mapping[str, Any]) -> str | None:
    """Why a record cannot be written: a value with no option mapping, if any."""
    return next((v.message for v in values.values() if isinstance(v, UnmappedOption)), None)


def clearable_lookups(rules: Iterable[FieldRule]) -> frozenset[str]:
    return frozenset(r.crm_field for r in rules if r.clear_value_on_failed_sync and r.crm_field)


def read_crm_value(record: Mapping[str, Any], entity: str, crm_field: str) -> Any:
    """A CRM record's value of an attribute as the transfer compares it (lookups -> UUID)."""
    if crm_lookup_target(entity, crm_field) is not None:
        raw = record.get(f"_{crm_field.lower()}_value")
        return uuid.UUID(str(raw)) if raw else None
    return record.get(crm_field)


def changed_crm_fields(
    desired: Mapping[str, Any], current: Mapping[str, Any], *, entity: str
) -> dict[str, Any]:
    """The desired values that differ from the CRM record (constants to idtype excluded)."""
    return {
        name: value
        for name, value in desired.items()
        if not name.endswith("idtype")
        and not same_value(value, read_crm_value(current, entity, name))
    }


def crm_select(rules: Iterable[FieldRule], entity: str) -> list[str]:
    """The ``$select`` that reads every mapped attribute (lookups as ``_x_value``)."""
    names = {"modifiedon", "_modifiedby_value", "versionnumber", f"{entity}id"}
    for rule in rules:
        if not rule.crm_field or rule.crm_field.endswith("idtype"):
            continue
        is_lookup = crm_lookup_target(entity, rule.crm_field) is not None
        names.add(f"_{rule.crm_field.lower()}_value" if is_lookup else rule.crm_field)
    if "statecode" in crm_fields(entity):
        names.add("statecode")
    return sorted(names)


# --- CRM -> ERP --------------------------------------------------------------------------


def _erp_value(table: str, field: str, value: Any) -> Any:
    info = erp_fields(table).get(field)
    if info is None:
        return value
    if info.type == FieldType.decimal:
        return as_decimal(value) if value is not None else Decimal(0)
    if info.type == FieldType.boolean and isinstance(value, str):
        return value.lower() in ("1", "true", "yes")
    if info.type == FieldType.date and isinstance(value, str) and value:
        return dt.date.fromisoformat(value[:10])
    if info.type == FieldType.string and value is None:
        return None if _is_nullable_code(table, field) else ""
    return value


def _is_nullable_code(table: str, field: str) -> bool:
    # Reference columns (foreign keys) hold NULL for "none"; plain text holds "".
    return field.endswith("_code") or field in ("base_unit_of_measure", "customer_price_group")


def from_crm_values(
    rules: Iterable[FieldRule], record: Mapping[str, Any], *, entity: str, table: str
) -> dict[str, Any]:
    """The ERP field values for a CRM record; lookups come back as ``CrmRef`` or None."""
    values: dict[str, Any] = {}
    for rule in rules:
        if not rule.comes_from_crm:
            continue
        if not rule.crm_field:
            values[rule.erp_field] = rule.constant_value
            continue
        raw = read_crm_value(record, entity, rule.crm_field)
        if rule.not_null and is_empty(raw):
            continue
        if rule.options is not None:
            code = rule.options.erp_code(raw, attribute=rule.crm_field)
            cleared = isinstance(code, UnmappedOption) and rule.clear_value_on_failed_sync
            values[rule.erp_field] = "" if cleared else code
            continue
        target = crm_lookup_target(entity, rule.crm_field)
        if target is not None and target in LOOKUP_TABLES:
            values[rule.erp_field] = CrmRef(LOOKUP_TABLES[target], raw) if raw else None
            continue
        values[rule.erp_field] = _erp_value(
            table, rule.erp_field, transform(raw, rule.transformation)
        )
    return values


def changed_erp_fields(desired: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: value for name, value in desired.items() if not same_value(value, current.get(name))
    }


# --- product rules of the seed -----------------------------------------------------------


def product_values(values: Mapping[str, Any], *, table: str, is_insert: bool) -> dict[str, Any]:
    """Items are sales inventory (1), resources services (3); negative price/stock -> 0."""
    shaped = dict(values)
    for name in NEGATIVE_TO_ZERO:
        number = as_decimal(shaped.get(name))
        if number is not None and number < 0:
            shaped[name] = Decimal(0)
    shaped["producttypecode"] = int(PRODUCT_TYPES[table])
    if is_insert:
        shaped["quantitydecimal"] = PRODUCT_QUANTITY_PRECISION
    return shaped


def product_state(*, is_blocked: bool) -> ProductState:
    """A product is active once created, retired while its ERP record is blocked."""
    return ProductState.retired if is_blocked else ProductState.active


def state_body(state: ProductState) -> dict[str, int]:
    return {"statecode": int(state), "statuscode": PRODUCT_STATUS[state]}


# --- the CRM payload ---------------------------------------------------------------------


def _navigation(entity: str, name: str, values: Mapping[str, Any]) -> tuple[str, str]:
    """(navigation property, target entity) for a lookup; polymorphic ones by ``<x>type``."""
    targets = crm_fields(entity)[name].target.split("|")
    if len(targets) == 1:
        return name, targets[0]
    chosen = str(values.get(f"{name}type") or targets[0])
    target = chosen if chosen in targets else targets[0]
    return f"{name}_{target}", target


def crm_payload(values: Mapping[str, Any], *, entity: str) -> dict[str, Any]:
    """The Web API body: lookups as ``<nav>@odata.bind`` (null clears), numbers as JSON.

    ``<lookup>type`` constants (``owneridtype``) are not columns: they pick the target of a
    polymorphic lookup and are not sent.
    """
    payload: dict[str, Any] = {}
    for name, value in values.items():
        if name.endswith("idtype"):
            continue
        if crm_lookup_target(entity, name) is None:
            payload[name] = to_json(value)
            continue
        nav, target = _navigation(entity, name, values)
        payload[bind_field(nav)] = bind(entity_set_for(target), value) if value else None
    return payload
