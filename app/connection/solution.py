"""Deploy (or redeploy) the integration solution in the CRM.

Ensures the ``MicrosoftDynamicsNavIntegration`` solution record exists at our version,
that the three integration roles exist and are assigned to the integration user
(``systemuserroles_association``), and, when item availability is published, writes the
``nav_connection`` row the CRM uses to call our OData service (ERP URL, OData URL, OData
user name and access key). Every step is idempotent, so a redeploy repairs what was
changed by hand; it never touches mappings or couplings.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from app.connection import webhook_registration
from app.connection.connection_setup import get_connection_setup
from app.connection.crm_settings import write_nav_connection
from app.connection.setup_validation import raise_if_incomplete
from app.dataverse import DataverseClient
from app.dataverse.addressing import odata_literal, record_path
from app.dataverse.errors import NotFoundError as CrmNotFoundError
from app.errors import NotConfiguredError
from app.logs import get_logger
from app.settings import Settings
from app.sync.crm_client import build_crm_client, crm_errors

log = get_logger("salesbridge.sync.solution")

SOLUTION_NAME = "MicrosoftDynamicsNavIntegration"
SOLUTION_FRIENDLY_NAME = "Dynamics 365 Business Central Integration (Salesbridge)"
SOLUTION_VERSION = "1.0.0.0"
USER_ROLES = "systemuserroles_association"


@dataclass(frozen=True)
class RoleSpec:
    name: str
    role_id: uuid.UUID


# The two ids BC assigns (CRMIntegrationManagement.ImportCRMSolution); the third role has
# no published id, so ours is derived from its name and found by name first.
ROLES = (
    RoleSpec("Integration Administrator", uuid.UUID("8c8d4f51-a72b-e511-80d9-3863bb349780")),
    RoleSpec("Integration User", uuid.UUID("6f960e32-a72b-e511-80d9-3863bb349780")),
    RoleSpec(
        "Product Availability User",
        uuid.uuid5(uuid.NAMESPACE_URL, "salesbridge/role/product-availability-user"),
    ),
)


@dataclass
class RoleReport:
    name: str
    role_id: uuid.UUID
    was_created: bool
    was_assigned: bool  # newly assigned by this deployment


@dataclass
class DeployReport:
    integration_user_id: uuid.UUID
    solution_id: uuid.UUID
    solution_action: str  # created | updated | unchanged
    roles: list[RoleReport] = field(default_factory=list)
    nav_connection_action: str = "skipped"  # created | updated | skipped
    webhook: webhook_registration.WebhookReport | None = None


async def _first(crm: DataverseClient, entity_set: str, *, filter: str, select: list[str]) -> Any:
    async for row in crm.query(entity_set, filter=filter, select=select, top=1):
        return row
    return None


async def _ensure_solution(crm: DataverseClient) -> tuple[uuid.UUID, str]:
    found = await _first(
        crm, "solutions", filter=f"uniquename eq {odata_literal(SOLUTION_NAME)}",
        select=["solutionid", "version"],
    )  # fmt: skip
    if found is None:
        body = {"uniquename": SOLUTION_NAME, "friendlyname": SOLUTION_FRIENDLY_NAME,
                "version": SOLUTION_VERSION}  # fmt: skip
        return await crm.create("solutions", body), "created"
    solution_id = uuid.UUID(str(found["solutionid"]))
    if _version_tuple(str(found.get("version") or "0")) < _version_tuple(SOLUTION_VERSION):
        await crm.update("solutions", solution_id, {"version": SOLUTION_VERSION})
        return solution_id, "updated"
    return solution_id, "unchanged"


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for part in text.split("."):
        parts.append(int(part) if part.isdigit() else 0)
    return tuple(parts)


async def _ensure_role(crm: DataverseClient, spec: RoleSpec) -> tuple[uuid.UUID, bool]:
    try:
        await crm.get("roles", spec.role_id, select=["roleid"])
        return spec.role_id, False
    except CrmNotFoundError:
        pass
    by_name = await _first(
        crm, "roles", filter=f"name eq {odata_literal(spec.name)}", select=["roleid"]
    )
    if by_name is not None:
        return uuid.UUID(str(by_name["roleid"])), False
    return await crm.create("roles", {"name": spec.name}, id=spec.role_id), True


async def _assigned_roles(crm: DataverseClient, user_id: uuid.UUID) -> set[uuid.UUID]:
    path = f"{record_path('systemusers', user_id)}/{USER_ROLES}"
    found: set[uuid.UUID] = set()
    async for page in crm.pages(path, params={"$select": "roleid"}):
        found.update(uuid.UUID(str(row["roleid"])) for row in page)
    return found


async def _assign_roles(crm: DataverseClient, user_id: uuid.UUID) -> list[RoleReport]:
    try:
        assigned = await _assigned_roles(crm, user_id)
    except CrmNotFoundError:
        msg = f"The integration user {user_id} does not exist in the CRM: test the connection."
        raise NotConfiguredError(msg) from None
    reports = []
    for spec in ROLES:
        role_id, was_created = await _ensure_role(crm, spec)
        is_new = role_id not in assigned
        if is_new:
            await crm.associate(
                "systemusers", user_id, USER_ROLES, target_set="roles", target_key=role_id
            )
        reports.append(RoleReport(spec.name, role_id, was_created, is_new))
    return reports


async def deploy_solution(session: AsyncSession, settings: Settings) -> DeployReport:
    """Deploy or redeploy; marks the solution installed in the setup."""
    setup = await get_connection_setup(session, settings)
    raise_if_incomplete(setup, action="deploy the integration solution")
    async with build_crm_client(settings, setup) as crm:
        with crm_errors("deploy the integration solution"):
            user_id = setup.integration_user_id or (await crm.whoami()).user_id
            solution_id, solution_action = await _ensure_solution(crm)
            roles = await _assign_roles(crm, user_id)
            nav_action = await write_nav_connection(crm, settings, setup)
    setup.integration_user_id = user_id
    setup.is_solution_installed = True
    session.add(setup)
    await session.flush()
    log.info("solution_deployed", solution=solution_action, nav_connection=nav_action)
    # A redeploy repairs the change notifications too (or removes them when disabled).
    webhook = await webhook_registration.register_webhook(session, settings, setup)
    return DeployReport(user_id, solution_id, solution_action, roles, nav_action, webhook)
