"""The Dynamics 365 Sales connection setup: one row, validated changes, test, enable/disable.

Secrets (client secret, password, the OData access key handed to the CRM) are encrypted
on the way in and are never returned: ``app.api.schemas.connection`` shows only whether
each is set (and, to admins, its last four characters). A change of where the CRM
secrets would be sent (CRM host, token URL, authentication type) clears them unless the
same change gives them again. Enabling needs the Dataverse connection and a
CRM that answers (token + WhoAmI); it creates the default mappings if there are none and
sets the CRM job queue entries ready. Disabling puts them on hold.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth.encryption import encrypt_secret
from app.clock import utc_now
from app.connection import crm_settings, defaults, webhook_registration
from app.connection.client_certificate import CERTIFICATE_FIELDS, apply_certificate_change
from app.connection.credential_check import check_new_credentials
from app.connection.odata_credentials import ODATA_FIELDS, apply_odata_changes
from app.connection.setup_validation import (
    SecretDestination,
    check_api_version,
    check_connection_string,
    check_crm_url,
    missing_credentials,
    raise_if_incomplete,
)
from app.db import current_actor
from app.errors import ConflictError, InvalidInputError
from app.jobs import queue
from app.logs import get_logger
from app.models.integration import AuthenticationType, ConnectionSetup, JobQueueEntry, JobStatus
from app.settings import Settings

log = get_logger("salesbridge.sync.connection")

SECRET_FIELDS = {"client_secret": "client_secret_encrypted", "password": "password_encrypted"}
# Settings that identify the CRM: they cannot change under an enabled connection, whose
# couplings and job queue entries point at that CRM.
IDENTITY_FIELDS = ("server_address", "authentication_type", "tenant_id", "token_url", "client_id",
                   "user_name", "api_version", "connection_string")  # fmt: skip
ON_PREMISES_TYPES = (AuthenticationType.ad, AuthenticationType.ifd)


async def get_connection_setup(session: AsyncSession, settings: Settings) -> ConnectionSetup:
    """The one setup row, created (disabled, OData URL = our own service) on first use."""
    statement = select(ConnectionSetup).order_by(col(ConnectionSetup.id))
    setup = (await session.exec(statement)).first()
    if setup is None:
        setup = ConnectionSetup(odata_url=settings.odata_url.rstrip("/"))
        session.add(setup)
        await session.flush()
    return setup


def _normalize(settings: Settings, setup: ConnectionSetup, name: str, value: Any) -> Any:
    allow_private = settings.allow_private_crm_addresses
    if name == "server_address" and value:
        is_on_premises = setup.authentication_type in ON_PREMISES_TYPES
        return check_crm_url(
            value, label="CRM URL", allow_private=allow_private, allow_plain_http=is_on_premises
        )
    if name == "token_url" and value:
        return check_crm_url(value, label="token URL", allow_private=allow_private)
    if name == "api_version":
        return check_api_version(value)
    if name == "connection_string":
        return check_connection_string(value)
    return value


def _apply_plain(settings: Settings, setup: ConnectionSetup, changes: Mapping[str, Any]) -> None:
    if "authentication_type" in changes:  # first: it decides whether http is allowed
        setup.authentication_type = AuthenticationType(changes["authentication_type"])
    for name, value in changes.items():
        setattr(setup, name, _normalize(settings, setup, name, value))


def secret_destination(setup: ConnectionSetup) -> SecretDestination:
    return SecretDestination.of(
        server_address=setup.server_address,
        authentication_type=str(setup.authentication_type),
        tenant_id=setup.tenant_id,
        token_url=setup.token_url,
    )


def _clear_moved_secrets(
    setup: ConnectionSetup, before: SecretDestination, changes: Mapping[str, Any]
) -> None:
    """A stored secret never goes to a new place unless it is given in the same change:
    otherwise whoever may change the URLs could have it sent to a host of their own."""
    moved = secret_destination(setup).moved_from(before)
    if not moved:
        return
    for name, column in SECRET_FIELDS.items():
        if getattr(setup, column) and not changes.get(name):
            setattr(setup, column, "")
            log.warning(
                "connection_secret_cleared", category="security", cleared=name, changed=moved
            )


def _check_identity_change(setup: ConnectionSetup, changes: Mapping[str, Any]) -> None:
    changed = [n for n in IDENTITY_FIELDS if n in changes and changes[n] != getattr(setup, n)]
    if changed and setup.is_enabled:
        msg = f"Disable the connection before changing {', '.join(changed)}."
        raise ConflictError(msg)
    if "server_address" in changed:
        # Another CRM: the user id and the solution state belong to the old one.
        setup.integration_user_id = None
        setup.is_solution_installed = False


def check_flags(setup: ConnectionSetup) -> None:
    """Rules between the switches (BC: the Sales features need the Dataverse connection)."""
    legacy = setup.sales_order_integration_enabled
    bidirectional = setup.bidirectional_sales_order_integration
    if (legacy or bidirectional) and not setup.dataverse_connection_enabled:
        msg = "Sales order integration requires the Dataverse connection: enable it first."
        raise ConflictError(msg)
    if legacy and bidirectional:
        msg = "Choose either the legacy or the bidirectional sales order integration, not both."
        raise InvalidInputError(msg)
    if (setup.auto_create_sales_orders or setup.auto_process_sales_quotes) and not (
        legacy or bidirectional
    ):
        msg = "Automatic sales order and quote processing requires sales order integration."
        raise ConflictError(msg)
    if setup.is_enabled and not setup.dataverse_connection_enabled:
        msg = "The Sales connection is enabled: disable it before the Dataverse connection."
        raise ConflictError(msg)


def _check_auth_type_change(setup: ConnectionSetup, changes: Mapping[str, Any]) -> None:
    if "authentication_type" not in changes:
        return
    missing = [m for m in missing_credentials(setup) if m != "server_address"]
    if missing:
        kind = str(setup.authentication_type)
        msg = f"The authentication type {kind} needs {', '.join(missing)}."
        raise InvalidInputError(msg)


def _sales_order_flags(setup: ConnectionSetup) -> tuple[bool, bool]:
    return setup.sales_order_integration_enabled, setup.bidirectional_sales_order_integration


async def update_connection_setup(
    session: AsyncSession, settings: Settings, *, changes: Mapping[str, Any]
) -> ConnectionSetup:
    """Apply validated changes; on any error the caller's transaction rolls them back."""
    setup = await get_connection_setup(session, settings)
    sales_orders_before = _sales_order_flags(setup)
    destination_before = secret_destination(setup)
    odata_before = crm_settings.OdataSettings.of(setup)
    plain = {
        k: v
        for k, v in changes.items()
        if k not in SECRET_FIELDS and k not in ODATA_FIELDS and k not in CERTIFICATE_FIELDS
    }
    _check_identity_change(setup, plain)
    _apply_plain(settings, setup, plain)
    _clear_moved_secrets(setup, destination_before, changes)
    for name, column in SECRET_FIELDS.items():
        if name in changes:
            setattr(setup, column, encrypt_secret(settings, changes[name] or ""))
    apply_certificate_change(settings, setup, changes=changes)
    await apply_odata_changes(session, settings, setup=setup, changes=changes)
    _check_auth_type_change(setup, changes)
    check_flags(setup)
    await check_new_credentials(settings, setup, changes=changes)
    session.add(setup)
    await session.flush()
    if setup.is_enabled:
        if _sales_order_flags(setup) != sales_orders_before:
            await defaults.recreate_sales_order_mappings(session, setup=setup)
        await defaults.sync_other_jobs(session, setup=setup)
    # Last, so a refusal above leaves the CRM as it was; a CRM error undoes the change.
    await crm_settings.push_setup_changes(
        settings, setup, was_processing_orders=any(sales_orders_before), odata_before=odata_before
    )
    if setup.is_enabled and _sales_order_flags(setup) != sales_orders_before:
        # The sales order mappings were recreated: they may read other CRM tables now.
        await webhook_registration.register_webhook(session, settings, setup)
    log.info("connection_setup_updated", fields=sorted(changes))
    return setup


async def set_crm_jobs_status(session: AsyncSession, *, enabled: bool) -> int:
    """Disabling puts every CRM entry on hold; enabling sets held ones ready to run now.

    Enabling gives held entries all their attempts again, as "set ready" does: an entry
    that had used up its attempts before the disable would otherwise fail for good at once.
    """
    now = utc_now()
    values: dict[str, Any] = {"modified_at": now, "modified_by": current_actor.get()}
    if enabled:
        sources = [JobStatus.on_hold]
        values.update(status=JobStatus.ready, earliest_start_at=now, attempt=0)
    else:
        sources = [JobStatus.ready, JobStatus.on_hold_with_inactivity_timeout, JobStatus.error]
        values.update(status=JobStatus.on_hold)
    statement = (
        update(JobQueueEntry)
        .where(
            col(JobQueueEntry.kind).in_(list(queue.CRM_JOB_KINDS)),
            col(JobQueueEntry.status).in_(sources),
        )
        .values(**values)
    )
    result = await session.exec(statement)
    return int(result.rowcount or 0)


async def mark_enabled(session: AsyncSession, *, setup: ConnectionSetup) -> None:
    """Enable after the caller verified the CRM: defaults if none, held jobs ready."""
    if not setup.dataverse_connection_enabled:
        msg = "The Sales connection requires the Dataverse connection: enable it first."
        raise ConflictError(msg)
    raise_if_incomplete(setup, action="enable the connection")
    setup.is_enabled = True
    setup.disable_reason = ""
    session.add(setup)
    await session.flush()
    if not await defaults.has_default_mappings(session):
        await defaults.recreate_default_setup(session, setup=setup)
    else:
        await defaults.sync_other_jobs(session, setup=setup)
    await set_crm_jobs_status(session, enabled=True)
    log.info("connection_enabled")


async def disable_connection(
    session: AsyncSession, settings: Settings, *, reason: str = ""
) -> ConnectionSetup:
    setup = await get_connection_setup(session, settings)
    setup.is_enabled = False
    setup.disable_reason = reason[:250]
    session.add(setup)
    await session.flush()
    held = await set_crm_jobs_status(session, enabled=False)
    # Never fails the disable: a CRM out of reach keeps the ids for the next enable.
    await webhook_registration.unregister_webhook(session, settings, setup)
    log.info("connection_disabled", job_queue_entries_on_hold=held)
    return setup


@dataclass
class CheckStep:
    name: str
    ok: bool
    detail: str


@dataclass
class ConnectionTestResult:
    steps: list[CheckStep] = field(default_factory=list)
    integration_user_id: uuid.UUID | None = None
    crm_version: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(step.ok for step in self.steps)

    def first_failure(self) -> str:
        return next((f"{s.name}: {s.detail}" for s in self.steps if not s.ok), "")
