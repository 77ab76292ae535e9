"""Integration table and field mappings: read, change with validation, list fields.

Filters are OData ``$filter`` strings validated by compiling them (``app.odata.filters``)
against the right side's fields: the ERP table's columns for ``table_filter``, the CRM
entity's attributes (as detached ``column()`` objects) for ``integration_table_filter``.
A filter naming an unknown field, or comparing a field with the wrong type, is refused
with the reason, before anything is written.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.errors import InvalidInputError, NotFoundError
from app.mappings.field_catalog import (
    FieldInfo,
    FieldType,
    crm_fields,
    crm_filter_columns,
    erp_fields,
    erp_filter_columns,
)
from app.models.integration import (
    Direction,
    FieldMappingStatus,
    IntegrationFieldMapping,
    IntegrationTableMapping,
)
from app.odata.errors import ODataFilterError
from app.odata.filters import compile_filter

MAX_MATCH_PRIORITY = 100


async def list_mappings(session: AsyncSession) -> list[IntegrationTableMapping]:
    statement = select(IntegrationTableMapping).order_by(col(IntegrationTableMapping.name))
    return list(await session.exec(statement))


async def get_mapping(session: AsyncSession, name: str) -> IntegrationTableMapping | None:
    statement = select(IntegrationTableMapping).where(IntegrationTableMapping.name == name)
    return (await session.exec(statement)).first()


async def get_mapping_or_raise(session: AsyncSession, name: str) -> IntegrationTableMapping:
    mapping = await get_mapping(session, name)
    if mapping is None:
        known = ", ".join(m.name for m in await list_mappings(session)) or "none yet"
        msg = f"There is no integration table mapping named {name[:60]!r} (mappings: {known})."
        raise NotFoundError(msg)
    return mapping


def validate_table_filter(table_name: str, text: str) -> str:
    text = text.strip()
    if text:
        _compile("table filter", text, erp_filter_columns(table_name), f"ERP table {table_name}")
    return text


def validate_integration_table_filter(entity: str, text: str) -> str:
    text = text.strip()
    if text:
        _compile("integration table filter", text, crm_filter_columns(entity), f"CRM {entity}")
    return text


def _compile(label: str, text: str, columns: Mapping[str, Any], side: str) -> None:
    try:
        compile_filter(text, columns)
    except ODataFilterError as exc:
        named = [name for name in columns if re.search(rf"\b{re.escape(name)}\b", text)]
        fields = f" (fields in the filter: {', '.join(named)})" if named else ""
        msg = f"Invalid {label} for the {side}: {exc.detail}{fields}"
        raise InvalidInputError(msg) from None


async def _check_dependencies(
    session: AsyncSession, mapping: IntegrationTableMapping, text: str
) -> str:
    names = [part.strip() for part in text.split("|") if part.strip()]
    known = {m.name for m in await list_mappings(session)}
    unknown = [name for name in names if name not in known]
    if unknown:
        msg = f"The dependency filter names unknown mappings: {', '.join(unknown)}."
        raise InvalidInputError(msg)
    if mapping.name in names:
        msg = f"The mapping {mapping.name} cannot depend on itself."
        raise InvalidInputError(msg)
    return "|".join(names)


def _check_field_directions(
    mapping: IntegrationTableMapping, direction: Direction, fields: list[IntegrationFieldMapping]
) -> None:
    clashing = [
        field_mapping_label(f)
        for f in fields
        if not is_direction_compatible(direction, f.direction)
    ]
    if clashing:
        msg = (
            f"The mapping {mapping.name} cannot become {direction.value}: these field mappings "
            f"go the other way: {', '.join(clashing)}. Change or disable them first."
        )
        raise InvalidInputError(msg)


def is_direction_compatible(mapping_direction: Direction, field_direction: Direction) -> bool:
    opposite = {Direction.to_crm: Direction.from_crm, Direction.from_crm: Direction.to_crm}
    return opposite.get(mapping_direction) != field_direction


def field_mapping_label(field: IntegrationFieldMapping) -> str:
    left = field.field or f"'{field.constant_value}'"
    right = field.integration_field or f"'{field.constant_value}'"
    return f"{left} -> {right}"


async def update_mapping(
    session: AsyncSession, *, name: str, changes: Mapping[str, Any]
) -> IntegrationTableMapping:
    """Apply validated changes to a table mapping (all or nothing)."""
    mapping = await get_mapping_or_raise(session, name)
    values = dict(changes)
    if "table_filter" in values:
        values["table_filter"] = validate_table_filter(mapping.table_name, values["table_filter"])
    if "integration_table_filter" in values:
        values["integration_table_filter"] = validate_integration_table_filter(
            mapping.integration_table, values["integration_table_filter"]
        )
    if "dependency_filter" in values:
        values["dependency_filter"] = await _check_dependencies(
            session, mapping, values["dependency_filter"]
        )
    if "direction" in values and values["direction"] != mapping.direction:
        enabled = [f for f in await list_field_mappings(session, name=name) if is_enabled(f)]
        _check_field_directions(mapping, Direction(values["direction"]), enabled)
    for key, value in values.items():
        setattr(mapping, key, value)
    session.add(mapping)
    await session.flush()
    return mapping


def is_enabled(field: IntegrationFieldMapping) -> bool:
    return field.status == FieldMappingStatus.enabled


async def list_field_mappings(session: AsyncSession, *, name: str) -> list[IntegrationFieldMapping]:
    await get_mapping_or_raise(session, name)
    statement = (
        select(IntegrationFieldMapping)
        .where(IntegrationFieldMapping.mapping_name == name)
        .order_by(col(IntegrationFieldMapping.id))
    )
    return list(await session.exec(statement))


async def get_field_mapping_or_raise(
    session: AsyncSession, *, name: str, field_id: uuid.UUID
) -> IntegrationFieldMapping:
    await get_mapping_or_raise(session, name)
    statement = select(IntegrationFieldMapping).where(
        IntegrationFieldMapping.mapping_name == name, IntegrationFieldMapping.system_id == field_id
    )
    found = (await session.exec(statement)).first()
    if found is None:
        msg = f"The mapping {name} has no field mapping {field_id}."
        raise NotFoundError(msg)
    return found


def check_match_flag(mapping: IntegrationTableMapping, field: IntegrationFieldMapping) -> None:
    if not (field.field and field.integration_field):
        msg = "A constant cannot be used for match-based coupling: choose a field-to-field mapping."
        raise InvalidInputError(msg)
    info = crm_fields(mapping.integration_table).get(field.integration_field)
    if info is not None and info.type == FieldType.lookup:
        msg = (
            f"{field.integration_field} is a lookup: match-based coupling compares plain values, "
            "use a text or number field."
        )
        raise InvalidInputError(msg)
    if erp_fields(mapping.table_name).get(field.field, FieldInfo("", FieldType.string)).is_computed:
        msg = f"{field.field} is computed and cannot be used for match-based coupling."
        raise InvalidInputError(msg)


async def update_field_mapping(
    session: AsyncSession, *, name: str, field_id: uuid.UUID, changes: Mapping[str, Any]
) -> IntegrationFieldMapping:
    mapping = await get_mapping_or_raise(session, name)
    field = await get_field_mapping_or_raise(session, name=name, field_id=field_id)
    for key, value in changes.items():
        setattr(field, key, value)
    if not is_direction_compatible(mapping.direction, field.direction) and is_enabled(field):
        msg = (
            f"The field mapping {field_mapping_label(field)} cannot be {field.direction} "
            f"in the {mapping.direction} mapping {mapping.name}."
        )
        raise InvalidInputError(msg)
    if field.constant_value and field.field and field.integration_field:
        msg = "A constant value needs either the ERP field or the CRM field empty."
        raise InvalidInputError(msg)
    if field.use_for_match_based_coupling:
        check_match_flag(mapping, field)
    if not 0 <= field.match_priority <= MAX_MATCH_PRIORITY:
        msg = f"The match priority must be between 0 and {MAX_MATCH_PRIORITY}."
        raise InvalidInputError(msg)
    session.add(field)
    await session.flush()
    return field


def integration_fields(mapping: IntegrationTableMapping) -> tuple[list[FieldInfo], list[FieldInfo]]:
    """The fields each side offers this mapping: (ERP fields, CRM attributes)."""
    erp = sorted(erp_fields(mapping.table_name).values(), key=lambda info: info.name)
    crm = sorted(crm_fields(mapping.integration_table).values(), key=lambda info: info.name)
    return erp, crm
