"""Option mappings: ERP codes <-> CRM option values (payment terms, shipment methods,
shipping agents). Reads are open to integration users; every change needs the admin."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query, Response

from app.api.deps import AdminUser, IntegrationUser, SessionDep
from app.api.schemas.mappings import (
    OptionMappingCreate,
    OptionMappingRead,
    OptionMappingUpdate,
    OptionResetRead,
    OptionSetRead,
)
from app.mappings import option_mappings
from app.mappings.option_sets import OPTION_SETS

router = APIRouter(prefix="/option-mappings", tags=["mappings"])


@router.get("", response_model=list[OptionMappingRead])
async def list_option_mappings(
    session: SessionDep,
    _user: IntegrationUser,
    option_set: str | None = Query(default=None, max_length=30),
) -> list[OptionMappingRead]:
    rows = await option_mappings.list_option_mappings(session, option_set=option_set)
    return [OptionMappingRead.from_row(row) for row in rows]


@router.get("/option-sets", response_model=list[OptionSetRead])
async def list_option_sets(_user: IntegrationUser) -> list[OptionSetRead]:
    """The option sets and the CRM attributes that take their values."""
    return [
        OptionSetRead(name=s.name, title=s.title, crm_attributes=list(s.crm_attributes))
        for s in OPTION_SETS.values()
    ]


@router.post("", response_model=OptionMappingRead, status_code=201)
async def create_option_mapping(
    session: SessionDep, _user: AdminUser, body: OptionMappingCreate
) -> OptionMappingRead:
    row = await option_mappings.create_option_mapping(session, **body.model_dump())
    return OptionMappingRead.from_row(row)


@router.post("/reset-defaults", response_model=OptionResetRead)
async def reset_option_mappings(
    session: SessionDep,
    _user: AdminUser,
    option_set: str | None = Query(default=None, max_length=30),
) -> OptionResetRead:
    """Replace the pairs of one option set (or of every set) by the defaults."""
    count = await option_mappings.reset_option_mappings(session, option_set=option_set)
    return OptionResetRead(option_mappings=count)


@router.get("/{mapping_id}", response_model=OptionMappingRead)
async def get_option_mapping(
    session: SessionDep, _user: IntegrationUser, mapping_id: uuid.UUID
) -> OptionMappingRead:
    return OptionMappingRead.from_row(await option_mappings.get_or_raise(session, mapping_id))


@router.patch("/{mapping_id}", response_model=OptionMappingRead)
async def update_option_mapping(
    session: SessionDep, _user: AdminUser, mapping_id: uuid.UUID, body: OptionMappingUpdate
) -> OptionMappingRead:
    changes = body.model_dump(exclude_unset=True)
    row = await option_mappings.update_option_mapping(
        session, mapping_id=mapping_id, changes=changes
    )
    return OptionMappingRead.from_row(row)


@router.delete("/{mapping_id}", status_code=204)
async def delete_option_mapping(
    session: SessionDep, _user: AdminUser, mapping_id: uuid.UUID
) -> Response:
    await option_mappings.delete_option_mapping(session, mapping_id=mapping_id)
    return Response(status_code=204)
