"""Integration table mappings and their field mappings (add and delete user-defined ones);
reset to the defaults."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from app.api.deps import AdminUser, IntegrationUser, SessionDep, SettingsDep
from app.api.schemas.connection import WebhookRead
from app.api.schemas.mappings import (
    FieldMappingCreate,
    FieldMappingRead,
    FieldMappingUpdate,
    FieldRead,
    IntegrationFieldsRead,
    MappingRead,
    MappingUpdate,
    ResetDefaultsRead,
)
from app.connection import defaults, webhook_registration
from app.connection.connection_setup import get_connection_setup
from app.mappings import table_mappings, user_field_mappings

router = APIRouter(prefix="/mappings", tags=["mappings"])


@router.get("", response_model=list[MappingRead])
async def list_mappings(session: SessionDep, _user: IntegrationUser) -> list[MappingRead]:
    return [MappingRead.from_row(row) for row in await table_mappings.list_mappings(session)]


@router.post("/reset-defaults", response_model=ResetDefaultsRead)
async def reset_defaults(
    session: SessionDep, settings: SettingsDep, _user: AdminUser
) -> ResetDefaultsRead:
    """ "Use default synchronization setup": default mappings and jobs recreated, couplings kept."""
    setup = await get_connection_setup(session, settings)
    result = await defaults.recreate_default_setup(session, setup=setup)
    webhook = await webhook_registration.refresh_if_enabled(session, settings, setup)
    return ResetDefaultsRead(
        **vars(result), webhook=None if webhook is None else WebhookRead.of(webhook)
    )


@router.get("/{name}", response_model=MappingRead)
async def get_mapping(session: SessionDep, _user: IntegrationUser, name: str) -> MappingRead:
    return MappingRead.from_row(await table_mappings.get_mapping_or_raise(session, name))


@router.patch("/{name}", response_model=MappingRead)
async def update_mapping(
    session: SessionDep, _user: AdminUser, name: str, body: MappingUpdate
) -> MappingRead:
    changes = body.model_dump(exclude_unset=True)
    return MappingRead.from_row(
        await table_mappings.update_mapping(session, name=name, changes=changes)
    )


@router.get("/{name}/fields", response_model=list[FieldMappingRead])
async def list_field_mappings(
    session: SessionDep, _user: IntegrationUser, name: str
) -> list[FieldMappingRead]:
    rows = await table_mappings.list_field_mappings(session, name=name)
    return [FieldMappingRead.from_row(row) for row in rows]


@router.get("/{name}/fields/{field_id}", response_model=FieldMappingRead)
async def get_field_mapping(
    session: SessionDep, _user: IntegrationUser, name: str, field_id: uuid.UUID
) -> FieldMappingRead:
    row = await table_mappings.get_field_mapping_or_raise(session, name=name, field_id=field_id)
    return FieldMappingRead.from_row(row)


@router.patch("/{name}/fields/{field_id}", response_model=FieldMappingRead)
async def update_field_mapping(
    session: SessionDep, _user: AdminUser, name: str, field_id: uuid.UUID, body: FieldMappingUpdate
) -> FieldMappingRead:
    changes = body.model_dump(exclude_unset=True)
    row = await user_field_mappings.update_field_mapping(
        session, name=name, field_id=field_id, changes=changes
    )
    return FieldMappingRead.from_row(row)


@router.post("/{name}/fields", response_model=FieldMappingRead, status_code=201)
async def add_field_mapping(
    session: SessionDep, _user: AdminUser, name: str, body: FieldMappingCreate
) -> FieldMappingRead:
    """A user-defined field mapping, checked for fields, types and directions."""
    values = body.model_dump()
    row = await user_field_mappings.add_field_mapping(session, name=name, values=values)
    return FieldMappingRead.from_row(row)


@router.delete("/{name}/fields/{field_id}", status_code=204)
async def delete_field_mapping(
    session: SessionDep, _user: AdminUser, name: str, field_id: uuid.UUID
) -> Response:
    """Only user-defined field mappings; a default one is disabled instead."""
    await user_field_mappings.delete_field_mapping(session, name=name, field_id=field_id)
    return Response(status_code=204)


@router.get("/{name}/integration-fields", response_model=IntegrationFieldsRead)
async def integration_fields(
    session: SessionDep, _user: IntegrationUser, name: str
) -> IntegrationFieldsRead:
    mapping = await table_mappings.get_mapping_or_raise(session, name)
    erp, crm = table_mappings.integration_fields(mapping)
    return IntegrationFieldsRead(
        mapping_name=mapping.name,
        table_name=mapping.table_name,
        integration_table=mapping.integration_table,
        erp_fields=[FieldRead.from_info(info) for info in erp],
        crm_fields=[FieldRead.from_info(info) for info in crm],
    )
