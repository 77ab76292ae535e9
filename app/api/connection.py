"""Connection setup, test, enable/disable, solution deployment and the assisted setup.

Reads are open to integration users (without secrets, and without the last four characters
an admin sees); every change needs the admin.
"""

from __future__ import annotations

from fastapi import APIRouter
from sqlmodel.ext.asyncio.session import AsyncSession

from app.api.deps import AdminUser, IntegrationUser, SessionDep, SettingsDep
from app.api.schemas.connection import (
    AssistedSetupRead,
    CheckStepRead,
    ConnectionRead,
    ConnectionTestRead,
    ConnectionUpdate,
    CredentialsStep,
    CrmUrlStep,
    DeployRead,
    DisableRequest,
    OptionsStep,
    RoleRead,
    WebhookRead,
)
from app.connection import (
    assisted_setup,
    connection_check,
    connection_setup,
    solution,
    webhook_registration,
)
from app.models.security import Role

router = APIRouter(tags=["connection"])


async def _with_webhook(session: AsyncSession, read: ConnectionRead) -> ConnectionRead:
    """The change notifications' state as the last registration or removal left it."""
    read.webhook = WebhookRead.of(await webhook_registration.current_report(session))
    return read


@router.get("/connection", response_model=ConnectionRead)
async def get_connection(
    session: SessionDep, settings: SettingsDep, user: IntegrationUser
) -> ConnectionRead:
    setup = await connection_setup.get_connection_setup(session, settings)
    is_admin = Role.integration_admin in user.role_set
    return await _with_webhook(
        session, ConnectionRead.from_setup(settings, setup, show_hints=is_admin)
    )


@router.patch("/connection", response_model=ConnectionRead)
async def update_connection(
    session: SessionDep, settings: SettingsDep, _user: AdminUser, body: ConnectionUpdate
) -> ConnectionRead:
    changes = body.model_dump(exclude_unset=True)
    setup = await connection_setup.update_connection_setup(session, settings, changes=changes)
    return ConnectionRead.from_setup(settings, setup)


@router.post("/connection/test", response_model=ConnectionTestRead)
async def test_connection(
    session: SessionDep, settings: SettingsDep, _user: AdminUser
) -> ConnectionTestRead:
    result = await connection_check.test_connection(session, settings)
    steps = [CheckStepRead(name=s.name, ok=s.ok, detail=s.detail) for s in result.steps]
    return ConnectionTestRead(
        ok=result.ok,
        steps=steps,
        integration_user_id=result.integration_user_id,
        crm_version=result.crm_version,
    )


@router.post("/connection/enable", response_model=ConnectionRead)
async def enable_connection(
    session: SessionDep, settings: SettingsDep, _user: AdminUser
) -> ConnectionRead:
    setup = await connection_check.enable_connection(session, settings)
    return await _with_webhook(session, ConnectionRead.from_setup(settings, setup))


@router.post("/connection/disable", response_model=ConnectionRead)
async def disable_connection(
    session: SessionDep, settings: SettingsDep, _user: AdminUser, body: DisableRequest | None = None
) -> ConnectionRead:
    reason = body.reason if body is not None else ""
    setup = await connection_setup.disable_connection(session, settings, reason=reason)
    return await _with_webhook(session, ConnectionRead.from_setup(settings, setup))


@router.post("/connection/deploy-solution", response_model=DeployRead)
async def deploy_solution(
    session: SessionDep, settings: SettingsDep, _user: AdminUser
) -> DeployRead:
    report = await solution.deploy_solution(session, settings)
    return DeployRead(
        integration_user_id=report.integration_user_id,
        solution_id=report.solution_id,
        solution_action=report.solution_action,
        roles=[RoleRead(**vars(role)) for role in report.roles],
        nav_connection_action=report.nav_connection_action,
        webhook=None if report.webhook is None else WebhookRead.of(report.webhook),
    )


@router.post("/assisted-setup", response_model=AssistedSetupRead, status_code=201)
async def start_assisted_setup(
    session: SessionDep, settings: SettingsDep, _user: AdminUser
) -> AssistedSetupRead:
    flow = await assisted_setup.start(session, settings)
    return AssistedSetupRead.from_flow(settings, flow)


@router.get("/assisted-setup", response_model=AssistedSetupRead)
async def get_assisted_setup(
    session: SessionDep, settings: SettingsDep, _user: AdminUser
) -> AssistedSetupRead:
    flow = await assisted_setup.get_current_or_raise(session)
    return AssistedSetupRead.from_flow(settings, flow)


@router.put("/assisted-setup/steps/crm_url", response_model=AssistedSetupRead)
async def put_crm_url(
    session: SessionDep, settings: SettingsDep, _user: AdminUser, body: CrmUrlStep
) -> AssistedSetupRead:
    answers = body.model_dump(exclude_unset=True)
    flow = await assisted_setup.put_step(session, settings, step="crm_url", answers=answers)
    return AssistedSetupRead.from_flow(settings, flow)


@router.put("/assisted-setup/steps/credentials", response_model=AssistedSetupRead)
async def put_credentials(
    session: SessionDep, settings: SettingsDep, _user: AdminUser, body: CredentialsStep
) -> AssistedSetupRead:
    answers = body.model_dump(exclude_unset=True)
    flow = await assisted_setup.put_step(session, settings, step="credentials", answers=answers)
    return AssistedSetupRead.from_flow(settings, flow)


@router.put("/assisted-setup/steps/options", response_model=AssistedSetupRead)
async def put_options(
    session: SessionDep, settings: SettingsDep, _user: AdminUser, body: OptionsStep
) -> AssistedSetupRead:
    answers = body.model_dump(exclude_unset=True)
    flow = await assisted_setup.put_step(session, settings, step="options", answers=answers)
    return AssistedSetupRead.from_flow(settings, flow)


@router.post("/assisted-setup/finish", response_model=AssistedSetupRead)
async def finish_assisted_setup(
    session: SessionDep, settings: SettingsDep, _user: AdminUser
) -> AssistedSetupRead:
    flow = await assisted_setup.finish(session, settings)
    return AssistedSetupRead.from_flow(settings, flow)


@router.delete("/assisted-setup", response_model=AssistedSetupRead)
async def cancel_assisted_setup(
    session: SessionDep, settings: SettingsDep, _user: AdminUser
) -> AssistedSetupRead:
    flow = await assisted_setup.cancel(session)
    return AssistedSetupRead.from_flow(settings, flow)
