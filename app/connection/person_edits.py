"""A change made in the CRM as one of its users, through the configured connection.

What a salesperson does in Dynamics 365 Sales, made from here so that the CRM -> ERP half
of the integration can be shown (``bin/salesbridge crm-edit``; the demo prints one): the
application user acts on the person's behalf (Dataverse's ``MSCRMCallerID``), so the row
is stamped as modified by that person, not by the integration. The application user
needs the right to act on behalf of others (the Delegate role; the demo grants it in its
sandbox), or the CRM refuses with a message that says so.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.connection.connection_setup import get_connection_setup
from app.dataverse import DataverseClient
from app.errors import InvalidInputError, NotFoundError
from app.models.integration import Direction, IntegrationTableMapping
from app.settings import Settings
from app.sync.crm_client import build_crm_client, crm_errors


@dataclass(frozen=True)
class PersonEdit:
    entity_set: str
    record_id: uuid.UUID
    user_id: uuid.UUID
    changes: dict[str, Any]
    mappings: list[str]  # the mappings that bring this table's changes into the ERP


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


async def _user_id(crm: DataverseClient, email: str) -> uuid.UUID:
    found = [
        row
        async for row in crm.query(
            "systemusers",
            select=["systemuserid"],
            filter=f"internalemailaddress eq {_quoted(email)}",
            top=2,
        )
    ]
    if len(found) != 1:
        msg = f"The CRM has {'no' if not found else 'more than one'} user with e-mail {email!r}."
        raise NotFoundError(msg)
    return uuid.UUID(str(found[0]["systemuserid"]))


@dataclass(frozen=True)
class _Table:
    logical_name: str
    primary_id: str
    primary_name: str


async def _table(crm: DataverseClient, entity_set: str) -> _Table:
    definitions = [
        row
        async for row in crm.query(
            "EntityDefinitions",
            select=["LogicalName", "PrimaryIdAttribute", "PrimaryNameAttribute"],
            filter=f"EntitySetName eq {_quoted(entity_set)}",
        )
    ]
    if not definitions:
        msg = f"The CRM has no table with the entity set name {entity_set!r} (e.g. accounts)."
        raise NotFoundError(msg)
    found = definitions[0]
    return _Table(found["LogicalName"], found["PrimaryIdAttribute"], found["PrimaryNameAttribute"])


async def _record_id(
    crm: DataverseClient, entity_set: str, table: _Table, record: str
) -> uuid.UUID:
    """The row: its id as given, or the one row whose primary name is ``record``."""
    try:
        return uuid.UUID(record)
    except ValueError:
        pass
    name = table.primary_name
    rows = [
        row
        async for row in crm.query(
            entity_set, select=[table.primary_id], filter=f"{name} eq {_quoted(record)}", top=2
        )
    ]
    if len(rows) != 1:
        what = "no row" if not rows else "more than one row"
        msg = f"{entity_set} has {what} whose {name} is {record!r}; give the row's id instead."
        raise NotFoundError(msg)
    return uuid.UUID(str(rows[0][table.primary_id]))


async def _inbound_mappings(session: AsyncSession, logical_name: str) -> list[str]:
    statement = select(IntegrationTableMapping.name).where(
        col(IntegrationTableMapping.integration_table) == logical_name,
        col(IntegrationTableMapping.direction) != Direction.to_crm,
    )
    return sorted(await session.exec(statement))


async def edit_as_user(
    session: AsyncSession,
    settings: Settings,
    *,
    entity_set: str,
    record: str,
    changes: Mapping[str, Any],
    user_email: str,
) -> PersonEdit:
    """Change ``record`` of ``entity_set`` in the CRM as the CRM user ``user_email``."""
    if not changes:
        msg = "Name at least one column to change (FIELD=VALUE)."
        raise InvalidInputError(msg)
    setup = await get_connection_setup(session, settings)
    with crm_errors(f"change {entity_set} in the CRM as {user_email}"):
        async with build_crm_client(settings, setup) as crm:
            user_id = await _user_id(crm, user_email)
            table = await _table(crm, entity_set)
            record_id = await _record_id(crm, entity_set, table, record)
        async with build_crm_client(settings, setup, caller_id=user_id) as as_person:
            await as_person.update(entity_set, record_id, dict(changes))
    mappings = await _inbound_mappings(session, table.logical_name)
    return PersonEdit(entity_set, record_id, user_id, dict(changes), mappings)
