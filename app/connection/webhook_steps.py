"""Which CRM notifications Salesbridge asks for: one step per message and CRM table read.

A mapping reads the CRM unless its direction is ``to_crm``; each CRM table such a mapping
reads gets a Create, an Update and a Delete step. The Update step names the columns the
mappings read (``filteringattributes``), so an edit of a column nobody syncs sends no
notification; when a mapping reads a column the catalog does not know (a user-defined
mapping on a custom attribute), the list cannot be trusted and is left empty (every update
notifies): a notification too many costs a cheap run, one too few waits for the periodic run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.mappings.field_catalog import crm_fields
from app.models.integration import Direction, IntegrationFieldMapping, IntegrationTableMapping
from app.sync.transfer import rules_from

MESSAGES = ("Create", "Update", "Delete")
STATE_COLUMN = "statecode"  # every pass reads it where the table has it (transfer.crm_select)


@dataclass(frozen=True, order=True)
class StepKey:
    message: str  # Create | Update | Delete
    entity: str  # the CRM table's logical name (sdkmessagefilter.primaryobjecttypecode)


@dataclass(frozen=True)
class WantedStep:
    key: StepKey
    filtering_attributes: str  # comma-separated logical names; "" = every update

    @property
    def name(self) -> str:
        return step_name(self.key)


def step_name(key: StepKey) -> str:
    return f"Salesbridge: {key.message} of {key.entity}"


def reads_crm(mapping: IntegrationTableMapping) -> bool:
    return Direction(mapping.direction) != Direction.to_crm


def _filter_attributes(entity: str, text: str) -> set[str]:
    """The attributes an integration table filter names (lookups written ``_x_value``)."""
    return {
        info.name
        for info in crm_fields(entity).values()
        if re.search(rf"\b{re.escape(info.filter_name)}\b", text)
    }


def read_attributes(
    mapping: IntegrationTableMapping, fields: list[IntegrationFieldMapping]
) -> set[str] | None:
    """The CRM columns a mapping's CRM -> ERP pass depends on; None when not all are known."""
    known = crm_fields(mapping.integration_table)
    if not known:
        return None
    names = {
        rule.crm_field.lower()
        for rule in rules_from(fields)
        if rule.comes_from_crm and rule.crm_field and not rule.crm_field.endswith("idtype")
    }
    if not names <= known.keys():
        return None
    names |= _filter_attributes(mapping.integration_table, mapping.integration_table_filter)
    if STATE_COLUMN in known:
        names.add(STATE_COLUMN)
    return names


async def wanted_steps(session: AsyncSession) -> dict[StepKey, WantedStep]:
    """The steps the current mappings need, by (message, CRM table)."""
    mappings = [m for m in await session.exec(select(IntegrationTableMapping)) if reads_crm(m)]
    if not mappings:
        return {}
    statement = select(IntegrationFieldMapping).where(
        col(IntegrationFieldMapping.mapping_name).in_([m.name for m in mappings])
    )
    fields_by_mapping: dict[str, list[IntegrationFieldMapping]] = {}
    for field in await session.exec(statement):
        fields_by_mapping.setdefault(field.mapping_name, []).append(field)
    attributes: dict[str, set[str] | None] = {}
    for mapping in mappings:
        entity = mapping.integration_table
        read = read_attributes(mapping, fields_by_mapping.get(mapping.name, []))
        if entity not in attributes:
            attributes[entity] = read
        else:
            before = attributes[entity]
            attributes[entity] = None if before is None or read is None else before | read
    steps: dict[StepKey, WantedStep] = {}
    for entity, read in sorted(attributes.items()):
        for message in MESSAGES:
            key = StepKey(message, entity)
            filtering = ",".join(sorted(read)) if message == "Update" and read else ""
            steps[key] = WantedStep(key, filtering)
    return steps
