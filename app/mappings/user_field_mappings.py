"""An admin's own field mappings on any table mapping: add (validated) and delete.

BC lets users add field mappings to every integration table mapping; here a new one is
checked before it is stored, so it cannot fail every record later:

- both fields exist (the ERP table's fields, the CRM entity's attributes), or one of them
  and a constant for the other side, going that way;
- its direction fits the mapping's (a field cannot flow against a one-way mapping);
- the side it writes can be written: not a key, system or computed column on the ERP side,
  not a system, key or state attribute on the CRM side, and nothing else writes it;
- the types meet: text with text, numbers without losing digits, dates with dates,
  a CRM lookup with the code of the ERP table coupled to its entity, an option set with a
  code (translated by the option mappings), other choices with whole numbers; constants
  must read as the destination's type.

Such field mappings are marked ``user_defined``: only they can be deleted (a default one
is disabled instead), and "use default synchronization setup" keeps them. A PATCH that
changes a field mapping's direction, constant or status passes the same checks (every
default field mapping does).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.errors import ConflictError, InvalidInputError
from app.mappings import table_mappings
from app.mappings.field_catalog import (
    ERP_MODELS,
    LOOKUP_TABLES,
    TRANSFORMATIONS,
    FieldInfo,
    FieldType,
    crm_fields,
    erp_fields,
)
from app.mappings.option_sets import option_set_for
from app.mappings.table_mappings import (
    check_match_flag,
    field_mapping_label,
    get_field_mapping_or_raise,
    get_mapping,
    get_mapping_or_raise,
    is_direction_compatible,
    is_enabled,
    list_field_mappings,
)
from app.models.integration import (
    Direction,
    FieldMappingStatus,
    IntegrationFieldMapping,
    IntegrationTableMapping,
)

ERP_SYSTEM_FIELDS = frozenset({"system_id", "created_at", "modified_at", "modified_by"})
CRM_SYSTEM_ATTRIBUTES = frozenset(
    {"createdon", "modifiedon", "versionnumber", "createdby", "modifiedby", "statecode",
     "statuscode"}
)  # fmt: skip
# What each CRM type accepts from the ERP (ERP -> CRM) and gives the ERP (CRM -> ERP).
_TO_CRM: dict[FieldType, frozenset[FieldType]] = {
    FieldType.string: frozenset({FieldType.string}),
    FieldType.integer: frozenset({FieldType.integer}),
    FieldType.decimal: frozenset({FieldType.decimal, FieldType.integer}),
    FieldType.money: frozenset({FieldType.decimal, FieldType.integer}),
    FieldType.boolean: frozenset({FieldType.boolean}),
    FieldType.date: frozenset({FieldType.date}),
    FieldType.datetime: frozenset({FieldType.datetime}),
    FieldType.uuid: frozenset({FieldType.uuid}),
}
_FROM_CRM: dict[FieldType, frozenset[FieldType]] = {
    FieldType.string: frozenset({FieldType.string}),
    FieldType.integer: frozenset({FieldType.integer, FieldType.decimal}),
    FieldType.decimal: frozenset({FieldType.decimal}),
    FieldType.money: frozenset({FieldType.decimal}),
    FieldType.boolean: frozenset({FieldType.boolean}),
    FieldType.date: frozenset({FieldType.date}),
    FieldType.datetime: frozenset({FieldType.datetime}),
    FieldType.uuid: frozenset({FieldType.uuid}),
}


def _flows(direction: Direction) -> tuple[bool, bool]:
    """(goes to the CRM, comes from the CRM) for a field mapping's direction."""
    return direction != Direction.from_crm, direction != Direction.to_crm


def erp_key_fields(table: str) -> frozenset[str]:
    """Columns that identify an ERP row (unique): never overwritten from the CRM."""
    model = ERP_MODELS.get(table)
    if model is None:
        return frozenset()
    table_object: sa.Table = model.__table__  # type: ignore[attr-defined]
    return frozenset(column.name for column in table_object.columns if column.unique)


def _erp_info(mapping: IntegrationTableMapping, name: str) -> FieldInfo:
    info = erp_fields(mapping.table_name).get(name)
    if info is None:
        msg = (
            f"The ERP table {mapping.table_name} has no field {name[:100]!r}; GET "
            f"/api/v1/mappings/{mapping.name}/integration-fields lists the fields."
        )
        raise InvalidInputError(msg)
    return info


def _crm_info(mapping: IntegrationTableMapping, name: str) -> FieldInfo:
    info = crm_fields(mapping.integration_table).get(name)
    if info is None:
        msg = (
            f"The CRM {mapping.integration_table} has no attribute {name[:100]!r}; GET "
            f"/api/v1/mappings/{mapping.name}/integration-fields lists the attributes."
        )
        raise InvalidInputError(msg)
    return info


def _check_shape(mapping: IntegrationTableMapping, field: IntegrationFieldMapping) -> None:
    """Two fields, or one field and a constant that travels towards it."""
    if not (field.field or field.integration_field):
        msg = "A field mapping needs the ERP field, the CRM attribute, or one and a constant."
        raise InvalidInputError(msg)
    if field.field and field.integration_field:
        if field.constant_value:
            msg = "A constant value needs either the ERP field or the CRM attribute empty."
            raise InvalidInputError(msg)
        return
    if not field.constant_value:
        msg = "With only one side given, the field mapping needs a constant value for it."
        raise InvalidInputError(msg)
    wanted = Direction.to_crm if field.integration_field else Direction.from_crm
    if field.direction != wanted:
        side = "CRM attribute" if field.integration_field else "ERP field"
        msg = f"A constant for the {side} only travels {wanted.value}: set that direction."
        raise InvalidInputError(msg)


def _check_direction(mapping: IntegrationTableMapping, field: IntegrationFieldMapping) -> None:
    if not is_direction_compatible(mapping.direction, field.direction):
        msg = (
            f"The mapping {mapping.name} is {Direction(mapping.direction)}: a field mapping "
            f"cannot go {Direction(field.direction)} in it."
        )
        raise InvalidInputError(msg)


def _check_writable(mapping: IntegrationTableMapping, field: IntegrationFieldMapping) -> None:
    to_crm, from_crm = _flows(field.direction)
    if to_crm and field.integration_field:
        entity = mapping.integration_table
        if field.integration_field in CRM_SYSTEM_ATTRIBUTES | {f"{entity}id"}:
            msg = (
                f"{field.integration_field} is set by the CRM or by the synchronization's own "
                "rules: it cannot be written by a field mapping."
            )
            raise InvalidInputError(msg)
    if from_crm and field.field:
        info = _erp_info(mapping, field.field)
        if info.is_computed or field.field in ERP_SYSTEM_FIELDS:
            msg = f"{field.field} is computed or kept by the ERP: the CRM cannot write it."
            raise InvalidInputError(msg)
        if field.field in erp_key_fields(mapping.table_name):
            msg = (
                f"{field.field} identifies the ERP {mapping.table_name}: it cannot be written "
                "from the CRM (use direction to_crm)."
            )
            raise InvalidInputError(msg)


def _type_problem(erp: FieldInfo, crm: FieldInfo, *, to_crm: bool) -> str | None:
    """Why the two types cannot meet in this direction, or None when they can."""
    if crm.type == FieldType.lookup:
        targets = [t for t in crm.target.split("|") if t in LOOKUP_TABLES]
        if erp.type != FieldType.string or not targets:
            return f"the lookup {crm.name} is filled from the code of a coupled ERP table"
        return None
    if crm.type == FieldType.choice:
        if option_set_for(crm.name) is not None:
            ok = erp.type == FieldType.string
            return None if ok else f"{crm.name} is an option set: map an ERP code to it"
        ok = erp.type == FieldType.integer
        return None if ok else f"{crm.name} is a choice: map a whole number to it"
    accepted = (_TO_CRM if to_crm else _FROM_CRM).get(crm.type, frozenset())
    source_type = erp.type if to_crm else crm.type
    destination_type = crm.type if to_crm else erp.type
    if erp.type not in accepted:
        return (
            f"a {source_type.value} value cannot be written into a {destination_type.value} "
            "field without losing or changing it"
        )
    return None


def _check_types(mapping: IntegrationTableMapping, field: IntegrationFieldMapping) -> None:
    if not (field.field and field.integration_field):
        return
    erp, crm = _erp_info(mapping, field.field), _crm_info(mapping, field.integration_field)
    to_crm, from_crm = _flows(field.direction)
    for goes, flows in ((to_crm, True), (from_crm, False)):
        problem = _type_problem(erp, crm, to_crm=flows) if goes else None
        if problem:
            way = "to the CRM" if flows else "from the CRM"
            msg = f"{field.field} -> {field.integration_field} cannot go {way}: {problem}."
            raise InvalidInputError(msg)
    if field.transformation and not (erp.type == FieldType.string and crm.type == FieldType.string):
        msg = "A transformation (trim, uppercase, lowercase) applies to text fields only."
        raise InvalidInputError(msg)


def _enum_of(table: str, name: str) -> type[Enum] | None:
    model = ERP_MODELS.get(table)
    info = model.model_fields.get(name) if model is not None else None
    annotation = info.annotation if info is not None else None
    return annotation if isinstance(annotation, type) and issubclass(annotation, Enum) else None


def _constant_problem(value: str, kind: FieldType) -> str | None:
    """Why ``value`` cannot be read as ``kind``, or None."""
    try:
        if kind in (FieldType.integer, FieldType.choice):
            int(value)
        elif kind in (FieldType.decimal, FieldType.money):
            Decimal(value)
        elif kind == FieldType.boolean and value.lower() not in ("true", "false", "1", "0"):
            return "a boolean constant is true or false"
        elif kind == FieldType.date:
            dt.date.fromisoformat(value)
        elif kind == FieldType.datetime:
            dt.datetime.fromisoformat(value)
        elif kind == FieldType.uuid:
            uuid.UUID(value)
        elif kind in (FieldType.lookup, FieldType.json):
            return "a constant cannot fill a lookup or a structured field"
    except (ValueError, InvalidOperation):
        return f"{value[:50]!r} is not a {kind.value}"
    return None


def _check_constant(mapping: IntegrationTableMapping, field: IntegrationFieldMapping) -> None:
    if not field.constant_value:
        return
    if field.integration_field:
        info = _crm_info(mapping, field.integration_field)
        problem = _constant_problem(field.constant_value, info.type)
    else:
        info = _erp_info(mapping, field.field)
        problem = _constant_problem(field.constant_value, info.type)
        choices = _enum_of(mapping.table_name, field.field)
        if problem is None and choices is not None:
            allowed = [str(member.value) for member in choices]
            if field.constant_value not in allowed:
                problem = f"{field.field} is one of {', '.join(allowed)}"
    if problem:
        msg = f"The constant for {info.name} cannot be used: {problem}."
        raise InvalidInputError(msg)


def _check_unique(
    field: IntegrationFieldMapping, others: Sequence[IntegrationFieldMapping]
) -> None:
    """Not the same pair twice, and no destination written by two enabled field mappings."""
    for other in others:
        if (other.field, other.integration_field) == (field.field, field.integration_field):
            label = field_mapping_label(other)
            msg = f"The field mapping {label} exists already ({other.system_id})."
            raise ConflictError(msg)
    if not is_enabled(field):
        return
    to_crm, from_crm = _flows(field.direction)
    for other in (o for o in others if is_enabled(o)):
        other_to, other_from = _flows(other.direction)
        same_crm = to_crm and other_to and field.integration_field == other.integration_field
        same_erp = from_crm and other_from and field.field and field.field == other.field
        if (same_crm and field.integration_field) or same_erp:
            target = field.integration_field if same_crm else field.field
            msg = (
                f"{target} is written by the field mapping {field_mapping_label(other)} "
                "already: disable that one first."
            )
            raise ConflictError(msg)


def check_field_mapping(
    mapping: IntegrationTableMapping,
    field: IntegrationFieldMapping,
    others: Sequence[IntegrationFieldMapping],
) -> None:
    """Every check of the module docstring; ``others``: the mapping's other field mappings."""
    _check_shape(mapping, field)
    for side, check in ((field.field, _erp_info), (field.integration_field, _crm_info)):
        if side:
            check(mapping, side)
    _check_direction(mapping, field)
    _check_writable(mapping, field)
    _check_types(mapping, field)
    _check_constant(mapping, field)
    if field.transformation not in TRANSFORMATIONS:
        msg = f"Unknown transformation: use one of {', '.join(t for t in TRANSFORMATIONS if t)}."
        raise InvalidInputError(msg)
    if field.use_for_match_based_coupling:
        check_match_flag(mapping, field)
    _check_unique(field, [o for o in others if o.system_id != field.system_id])


async def add_field_mapping(
    session: AsyncSession, *, name: str, values: Mapping[str, Any]
) -> IntegrationFieldMapping:
    """A new user-defined field mapping, validated as the module docstring says."""
    mapping = await get_mapping_or_raise(session, name)
    field = IntegrationFieldMapping(mapping_name=mapping.name, user_defined=True, **values)
    field.field, field.integration_field = field.field.strip(), field.integration_field.strip()
    check_field_mapping(mapping, field, await list_field_mappings(session, name=mapping.name))
    session.add(field)
    await session.flush()
    return field


async def update_field_mapping(
    session: AsyncSession, *, name: str, field_id: uuid.UUID, changes: Mapping[str, Any]
) -> IntegrationFieldMapping:
    """A PATCH: a new direction or a re-enabled field mapping passes the same checks."""
    field = await table_mappings.update_field_mapping(
        session, name=name, field_id=field_id, changes=changes
    )
    if is_enabled(field) and {"direction", "status", "constant_value"} & changes.keys():
        mapping = await get_mapping_or_raise(session, name)
        check_field_mapping(mapping, field, await list_field_mappings(session, name=name))
    return field


async def delete_field_mapping(session: AsyncSession, *, name: str, field_id: uuid.UUID) -> None:
    field = await get_field_mapping_or_raise(session, name=name, field_id=field_id)
    if not field.user_defined:
        msg = (
            f"{field_mapping_label(field)} is a default field mapping: disable it instead "
            '(PATCH with {"status": "disabled"}); only user-defined ones can be deleted.'
        )
        raise ConflictError(msg)
    await session.delete(field)
    await session.flush()


# --- kept through "use default synchronization setup" ------------------------------------


async def saved_user_fields(
    session: AsyncSession, mapping_names: Sequence[str]
) -> list[IntegrationFieldMapping]:
    """Detached copies of the user-defined field mappings of mappings about to be recreated."""
    statement = select(IntegrationFieldMapping).where(
        col(IntegrationFieldMapping.mapping_name).in_(list(mapping_names)),
        col(IntegrationFieldMapping.user_defined).is_(True),
    )
    kept = {"id", "created_at", "modified_at", "modified_by"}
    return [
        IntegrationFieldMapping(**row.model_dump(exclude=kept, warnings=False))
        for row in await session.exec(statement)
    ]


async def restore_user_fields(
    session: AsyncSession, saved: Sequence[IntegrationFieldMapping]
) -> int:
    """Add them back to the recreated mappings: disabled where a default now writes the same
    destination or the mapping's direction no longer fits. Returns how many came back."""
    restored = 0
    for field in saved:
        mapping = await get_mapping(session, field.mapping_name)
        if mapping is None:  # not recreated (e.g. sales orders turned off): nothing to add to
            continue
        others = await list_field_mappings(session, name=mapping.name)
        pair = (field.field, field.integration_field)
        if any((o.field, o.integration_field) == pair for o in others):
            continue  # a default covers the same pair now
        try:
            _check_direction(mapping, field)
            _check_unique(field, others)
        except (InvalidInputError, ConflictError):
            field.status = FieldMappingStatus.disabled
        session.add(field)
        await session.flush()
        restored += 1
    return restored
