"""Register Salesbridge's webhook in the CRM: one service endpoint and its steps.

The endpoint (``serviceendpoints``: contract Webhook, JSON, the key in an HTTP header)
points at ``webhook_url``; one asynchronous post-operation step per message and CRM table
read (``webhook_steps``) sends it the changes. This module decides when and whether
(connection enabled, webhooks on, a URL the CRM can call, a mapping reading the CRM) and
reports; ``webhook_registrar`` does the CRM side. Registration converges on what the
mappings want and is idempotent (nothing is created twice, unwanted steps are deleted,
hand edits repaired). The one ``crm_webhook`` row keeps the ids, so a disable removes
exactly what was registered, and a removal that could not reach the CRM is finished by
the next enable or redeploy.

Nothing here fails the action that asked for it (enable, redeploy, disable, reset of the
defaults): a refusal or an unreachable CRM becomes the report's reason and ``last_error``,
and the periodic synchronization carries the changes. The key never leaves this module
except inside the endpoint's ``authvalue``; CRM messages are scrubbed of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth.encryption import SecretDecryptionError
from app.clock import utc_now
from app.connection.webhook_key import new_webhook_key, set_webhook_key, webhook_key
from app.connection.webhook_registrar import Registrar
from app.connection.webhook_steps import step_name, wanted_steps
from app.connection.webhook_url import unreachable_reason, webhook_url
from app.dataverse.errors import DataverseError
from app.errors import SalesbridgeError
from app.logs import get_logger
from app.models.integration import ConnectionSetup, CrmWebhook
from app.settings import Settings
from app.sync.crm_client import build_crm_client

log = get_logger("salesbridge.connection.webhook")

MAX_REASON = 2000
PERIODIC = "the periodic synchronization carries CRM changes"
DISABLED = "The Sales connection is disabled: no change notifications are registered."


@dataclass(frozen=True)
class WebhookReport:
    """What the API shows: whether notifications are registered, where, and why not."""

    registered: bool
    url: str
    steps: int
    reason: str = ""

    @classmethod
    def of(cls, row: CrmWebhook | None) -> WebhookReport:
        if row is None:
            return cls(registered=False, url="", steps=0)
        registered = row.service_endpoint_id is not None and bool(row.steps)
        return cls(registered, row.url, len(row.steps), row.last_error)


async def get_locked_row(session: AsyncSession) -> CrmWebhook:
    """The one row, created on first use; locked (PostgreSQL) so two registrations queue."""
    statement = select(CrmWebhook).order_by(col(CrmWebhook.id)).limit(1).with_for_update()
    row = (await session.exec(statement)).first()
    if row is None:
        row = CrmWebhook()
        session.add(row)
        await session.flush()
    return row


async def current_report(session: AsyncSession) -> WebhookReport:
    statement = select(CrmWebhook).order_by(col(CrmWebhook.id)).limit(1)
    return WebhookReport.of((await session.exec(statement)).first())


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text[:MAX_REASON]


def _failure(exc: Exception) -> str:
    if isinstance(exc, DataverseError):
        return exc.message
    if isinstance(exc, SalesbridgeError):
        return exc.detail
    return "the CRM's answer could not be read"


# Errors that end a registration or removal as a reported failure; the caller carries on.
CRM_FAILURES = (DataverseError, SalesbridgeError, KeyError, TypeError, ValueError)


def _has_registration(row: CrmWebhook) -> bool:
    return row.service_endpoint_id is not None or bool(row.steps)


def _key_for(settings: Settings, row: CrmWebhook) -> str:
    """The stored key; a new one when there is none (or it no longer decrypts)."""
    try:
        key = webhook_key(settings, row)
    except SecretDecryptionError:
        key = ""
    if not key:
        key = new_webhook_key()
        set_webhook_key(settings, row, key)
        log.info("crm_webhook_key_created")
    return key


async def _why_not(settings: Settings, setup: ConnectionSetup) -> str:
    if not settings.webhooks_enabled:
        return (
            f"Change notifications are turned off (SALESBRIDGE_WEBHOOKS_ENABLED=false): {PERIODIC}."
        )
    if not setup.is_enabled:
        return DISABLED
    unreachable = await unreachable_reason(settings)
    if unreachable:
        return f"Not registered: {unreachable} Until then {PERIODIC}."
    return ""


async def _remove(
    session: AsyncSession, settings: Settings, setup: ConnectionSetup, row: CrmWebhook, reason: str
) -> WebhookReport:
    """Remove what is registered; the reason stays on the row. A CRM that cannot be reached
    leaves the ids in place, so the next enable or redeploy finishes the removal."""
    if _has_registration(row):
        try:
            async with build_crm_client(settings, setup) as crm:
                registrar = Registrar(crm, row)
                await registrar.remove_all()
            log.info("crm_webhook_removed", steps_deleted=registrar.deleted)
        except CRM_FAILURES as exc:
            failure = _scrub(_failure(exc), _secrets(settings, row))
            reason = (
                f"Could not remove the webhook from the CRM ({failure}); the next enable "
                "or redeploy of the solution removes it."
            )
            log.warning("crm_webhook_removal_failed", reason=failure)
    row.last_error = reason[:MAX_REASON]
    session.add(row)
    await session.flush()
    return WebhookReport.of(row)


def _secrets(settings: Settings, row: CrmWebhook) -> list[str]:
    try:
        return [webhook_key(settings, row)]
    except SecretDecryptionError:
        return []


async def register_webhook(
    session: AsyncSession, settings: Settings, setup: ConnectionSetup
) -> WebhookReport:
    """Make the CRM's registration match the mappings (or remove it when it should not
    exist); never raises for the CRM's sake: the report says what happened."""
    row = await get_locked_row(session)
    reason = await _why_not(settings, setup)
    wanted = {} if reason else await wanted_steps(session)
    if not reason and not wanted:
        reason = "No mapping reads the CRM, so no change notification is needed."
    if reason:
        log.info("crm_webhook_not_registered", reason=reason)
        return await _remove(session, settings, setup, row, reason)
    url = webhook_url(settings)
    key = _key_for(settings, row)
    created = deleted = 0
    try:
        async with build_crm_client(settings, setup) as crm:
            registrar = Registrar(crm, row)
            endpoint_id = await registrar.ensure_endpoint(url, key)
            row.url = url
            missing = await registrar.converge_steps(endpoint_id, wanted)
            created, deleted = registrar.created, registrar.deleted
    except CRM_FAILURES as exc:
        failure = _scrub(_failure(exc), [key])
        row.last_error = (
            f"Could not register the webhook in the CRM: {failure}. Until it is registered "
            f"{PERIODIC}; redeploy the solution to try again."
        )[:MAX_REASON]
        log.warning("crm_webhook_registration_failed", reason=failure)
        session.add(row)
        await session.flush()
        return WebhookReport.of(row)
    row.registered_at = utc_now()
    row.last_error = ""
    if missing:
        names = ", ".join(step_name(k).removeprefix("Salesbridge: ") for k in missing)
        row.last_error = f"The CRM offers no notification for: {names}."[:MAX_REASON]
    session.add(row)
    await session.flush()
    log.info(
        "crm_webhook_registered",
        url=url,
        steps=len(row.steps),
        steps_created=created,
        steps_deleted=deleted,
    )
    return WebhookReport.of(row)


async def unregister_webhook(
    session: AsyncSession, settings: Settings, setup: ConnectionSetup
) -> WebhookReport:
    """Remove the registration (the connection is being disabled); never raises for the
    CRM's sake."""
    row = await get_locked_row(session)
    return await _remove(session, settings, setup, row, DISABLED)


async def refresh_if_enabled(
    session: AsyncSession, settings: Settings, setup: ConnectionSetup
) -> WebhookReport | None:
    """After the mappings changed as a whole ("use default synchronization setup")."""
    if not setup.is_enabled:
        return None
    return await register_webhook(session, settings, setup)
