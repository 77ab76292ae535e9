"""The assisted setup ("Set up Dynamics 365 Sales connection"): a small state machine.

Steps, in order: ``crm_url`` -> ``credentials`` -> ``options`` (the seed's advanced
settings), then ``finish``, which does what BC's wizard does (FinalizeSetup): apply the
answers to the connection setup, test the connection, deploy the solution if asked,
enable the connection with the default mappings and job queue entries, and say what the
admin must do next. State lives in ``assisted_setup`` (secrets Fernet-encrypted), so the
flow survives restarts and several API processes. Finish is one transaction: if any step
fails, nothing of it is stored and the flow can be corrected and finished again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth.encryption import decrypt_secret, encrypt_secret
from app.clock import utc_now
from app.connection import connection_setup, crm_settings, defaults, solution, webhook_registration
from app.connection.connection_check import record_test, run_connection_test
from app.connection.odata_credentials import check_access_key, check_odata_user
from app.connection.setup_validation import (
    OAUTH_TYPES,
    SecretDestination,
    answers_move_secrets,
    check_api_version,
    check_connection_string,
    check_crm_url,
    check_url,
)
from app.dataverse.client_assertion import CertificateError, load_client_certificate
from app.errors import ConflictError, InvalidInputError, NotFoundError
from app.logs import get_logger
from app.models.integration import AssistedSetup, AssistedSetupStatus, AuthenticationType
from app.settings import Settings

log = get_logger("salesbridge.sync.assisted_setup")


@dataclass(frozen=True)
class Step:
    name: str
    title: str
    is_required: bool


STEPS = (
    Step("crm_url", "Enter the Dynamics 365 Sales URL", is_required=True),
    Step("credentials", "Sign-in: authentication type and credentials", is_required=True),
    Step(
        "options", "Advanced settings: solution, item availability, sales orders", is_required=False
    ),
)
STEP_NAMES = tuple(step.name for step in STEPS)
SECRET_ANSWERS = ("client_secret", "password", "odata_access_key", "client_certificate")
CRM_SECRETS = ("client_secret", "password")
OPTION_DEFAULTS: dict[str, Any] = {
    "import_solution": True,
    "publish_item_availability": False,
    "enable_sales_order_integration": False,
    "bidirectional_sales_order_integration": False,
    "auto_create_sales_orders": False,
    "auto_process_sales_quotes": False,
    "enable_dataverse_connection": True,
    "api_version": "9.2",
}


async def get_current(session: AsyncSession) -> AssistedSetup | None:
    statement = (
        select(AssistedSetup)
        .where(AssistedSetup.status != AssistedSetupStatus.cancelled)
        .order_by(col(AssistedSetup.id).desc())
    )
    return (await session.exec(statement)).first()


async def get_current_or_raise(session: AsyncSession) -> AssistedSetup:
    current = await get_current(session)
    if current is None:
        msg = "No assisted setup has been started: POST /api/v1/assisted-setup to start one."
        raise NotFoundError(msg)
    return current


async def _in_progress_or_raise(session: AsyncSession) -> AssistedSetup:
    current = await get_current_or_raise(session)
    if current.status != AssistedSetupStatus.in_progress:
        msg = "The assisted setup has finished: start a new one to change the connection."
        raise ConflictError(msg)
    return current


async def start(session: AsyncSession, settings: Settings) -> AssistedSetup:
    """A new flow (an unfinished one is cancelled), prefilled from the current setup."""
    for running in await session.exec(
        select(AssistedSetup).where(AssistedSetup.status == AssistedSetupStatus.in_progress)
    ):
        running.status = AssistedSetupStatus.cancelled
        session.add(running)
    setup = await connection_setup.get_connection_setup(session, settings)
    answers = {
        "server_address": setup.server_address,
        "authentication_type": str(setup.authentication_type),
        "tenant_id": setup.tenant_id,
        "token_url": setup.token_url,
        "client_id": setup.client_id,
        "user_name": setup.user_name,
        "connection_string": setup.connection_string,
        **OPTION_DEFAULTS,
        "api_version": setup.api_version,
        "odata_url": setup.odata_url or settings.odata_url.rstrip("/"),
        "odata_user_name": setup.odata_user_name,
    }
    flow = AssistedSetup(current_step=STEP_NAMES[0], answers=answers)
    session.add(flow)
    await session.flush()
    return flow


def read_secrets(settings: Settings, flow: AssistedSetup) -> dict[str, str]:
    if not flow.secrets_encrypted:
        return {}
    loaded: dict[str, str] = json.loads(decrypt_secret(settings, flow.secrets_encrypted))
    return loaded


def _store(settings: Settings, flow: AssistedSetup, answers: Mapping[str, Any]) -> None:
    secrets = read_secrets(settings, flow)
    moved = answers_move_secrets(flow.answers, {**flow.answers, **answers})
    for name in CRM_SECRETS if moved else ():
        if name in secrets and not answers.get(name):  # to be given again, for the new place
            del secrets[name]
            log.warning("connection_secret_cleared", category="security", cleared=name,
                        changed=moved, where="assisted setup")  # fmt: skip
    plain = dict(flow.answers)
    for name, value in answers.items():
        if name in SECRET_ANSWERS:
            if value:
                secrets[name] = value
        else:
            plain[name] = value
    flow.answers = plain  # a new dict: the JSON column notices reassignment only
    flow.secrets_encrypted = encrypt_secret(settings, json.dumps(secrets)) if secrets else ""


def _check_order(flow: AssistedSetup, step: str) -> None:
    if step not in STEP_NAMES:
        msg = f"Unknown step {step[:40]!r}: the steps are {', '.join(STEP_NAMES)}."
        raise NotFoundError(msg)
    earlier = STEP_NAMES[: STEP_NAMES.index(step)]
    missing = [name for name in earlier if name not in flow.completed_steps]
    if missing:
        msg = f"Complete the step {missing[0]} before {step}."
        raise ConflictError(msg)


def _check_crm_url(
    settings: Settings, flow: AssistedSetup, answers: Mapping[str, Any]
) -> dict[str, Any]:
    url = str(answers.get("server_address") or "")
    if not url:
        msg = "Enter the Dynamics 365 Sales URL, for example https://contoso.crm4.dynamics.com."
        raise InvalidInputError(msg)
    on_premises = flow.answers.get("authentication_type") in ("ad", "ifd")
    checked = check_crm_url(
        url,
        label="CRM URL",
        allow_private=settings.allow_private_crm_addresses,
        allow_plain_http=on_premises,
    )
    return {"server_address": checked}


async def _secrets_at_hand(
    session: AsyncSession,
    settings: Settings,
    flow: AssistedSetup,
    merged: Mapping[str, Any],
    *,
    given: Mapping[str, Any],
) -> dict[str, bool]:
    """Which CRM secrets the flow has: given now, given in an earlier step, or stored. A
    stored or earlier one counts only while it would still go where it went before."""
    stored = await connection_setup.get_connection_setup(session, settings)
    moved = SecretDestination.of_answers(merged).moved_from(
        connection_setup.secret_destination(stored)
    )
    earlier = {} if answers_move_secrets(flow.answers, merged) else read_secrets(settings, flow)
    kept = {"client_secret": stored.client_secret_encrypted, "password": stored.password_encrypted}
    has = {
        name: bool(given.get(name) or earlier.get(name) or (kept[name] and not moved))
        for name in CRM_SECRETS
    }
    # The certificate's private key never leaves: only assertions signed for the token
    # endpoint they go to do, so a stored certificate counts wherever the answers point.
    certificate = stored.client_certificate_encrypted or earlier.get("client_certificate")
    has["client_certificate"] = bool(given.get("client_certificate") or certificate)
    return has


def _needed(
    kind: AuthenticationType, merged: Mapping[str, Any], has_secret: Mapping[str, bool]
) -> list[tuple[str, bool]]:
    if kind in OAUTH_TYPES:
        is_certificate = kind == AuthenticationType.oauth_certificate
        credential = "client_certificate" if is_certificate else "client_secret"
        has_authority = bool(merged.get("tenant_id") or merged.get("token_url"))
        return [
            ("client_id", bool(merged.get("client_id"))),
            (credential, has_secret[credential]),
            ("tenant_id or token_url", has_authority),
        ]
    return [("user_name", bool(merged.get("user_name"))), ("password", has_secret["password"])]


async def _check_credentials(
    session: AsyncSession, settings: Settings, flow: AssistedSetup, answers: Mapping[str, Any]
) -> dict[str, Any]:
    values = {k: v for k, v in answers.items() if v is not None}
    merged = {**flow.answers, **values}
    kind = AuthenticationType(merged.get("authentication_type") or "oauth_client_secret")
    merged["authentication_type"] = kind.value
    has_secret = await _secrets_at_hand(session, settings, flow, merged, given=values)
    missing = [name for name, is_present in _needed(kind, merged, has_secret) if not is_present]
    if missing:
        msg = f"The authentication type {kind.value} needs {', '.join(missing)}."
        raise InvalidInputError(msg)
    if values.get("token_url"):
        values["token_url"] = check_crm_url(
            values["token_url"],
            label="token URL",
            allow_private=settings.allow_private_crm_addresses,
        )
    if values.get("connection_string"):
        check_connection_string(values["connection_string"])
    password = values.pop("client_certificate_password", "")
    if values.get("client_certificate"):
        values["client_certificate"] = _checked_certificate(values["client_certificate"], password)
    values["authentication_type"] = kind.value
    return values


def _checked_certificate(text: str, password: str) -> str:
    """The certificate as stored (key decrypted): the password is used now, never kept."""
    try:
        return load_client_certificate(text, password=password).to_pem()
    except CertificateError as exc:
        msg = f"The client certificate cannot be used: {exc}."
        raise InvalidInputError(msg) from None


async def _check_options(
    session: AsyncSession, settings: Settings, flow: AssistedSetup, answers: Mapping[str, Any]
) -> dict[str, Any]:
    values = {k: v for k, v in answers.items() if v is not None}
    merged = {**flow.answers, **values}
    values["api_version"] = check_api_version(str(merged.get("api_version") or "9.2"))
    legacy, bidirectional = (
        bool(merged.get("enable_sales_order_integration")),
        bool(merged.get("bidirectional_sales_order_integration")),
    )
    if legacy and bidirectional:
        msg = "Choose either the legacy or the bidirectional sales order integration, not both."
        raise InvalidInputError(msg)
    if (legacy or bidirectional) and not merged.get("enable_dataverse_connection"):
        msg = "Sales order integration requires the Dataverse connection: enable it as well."
        raise ConflictError(msg)
    wants_auto = merged.get("auto_create_sales_orders") or merged.get("auto_process_sales_quotes")
    if wants_auto and not (legacy or bidirectional):
        msg = "Automatic sales order and quote processing requires sales order integration."
        raise ConflictError(msg)
    if merged.get("publish_item_availability"):
        await _check_item_availability(session, settings, flow, merged)
    if values.get("odata_url"):
        values["odata_url"] = check_url(values["odata_url"], label="OData URL")
    return values


async def _check_item_availability(
    session: AsyncSession, settings: Settings, flow: AssistedSetup, merged: Mapping[str, Any]
) -> None:
    user_name = str(merged.get("odata_user_name") or "")
    if not user_name or not merged.get("odata_url"):
        msg = "Publishing item availability needs the OData URL and the OData user name."
        raise InvalidInputError(msg)
    user = await check_odata_user(session, user_name)
    key = merged.get("odata_access_key") or read_secrets(settings, flow).get("odata_access_key")
    if key:
        await check_access_key(session, settings, user=user, key=str(key))
    elif not merged.get("issue_odata_access_key"):
        msg = "Give the OData user's access key, or ask for a new one (issue_odata_access_key)."
        raise InvalidInputError(msg)


async def put_step(
    session: AsyncSession, settings: Settings, *, step: str, answers: Mapping[str, Any]
) -> AssistedSetup:
    """Validate and store one step's answers; the flow moves on to the next step."""
    flow = await _in_progress_or_raise(session)
    _check_order(flow, step)
    if step == "crm_url":
        checked = _check_crm_url(settings, flow, answers)
    elif step == "credentials":
        checked = await _check_credentials(session, settings, flow, answers)
    else:
        checked = await _check_options(session, settings, flow, answers)
    _store(settings, flow, checked)
    if step not in flow.completed_steps:
        flow.completed_steps = [*flow.completed_steps, step]
    pending = [name for name in STEP_NAMES if name not in flow.completed_steps]
    flow.current_step = pending[0] if pending else "finish"
    session.add(flow)
    await session.flush()
    return flow


def _connection_changes(flow: AssistedSetup, secrets: Mapping[str, str]) -> dict[str, Any]:
    answers = flow.answers
    changes: dict[str, Any] = {
        name: answers[name]
        for name in ("server_address", "authentication_type", "tenant_id", "token_url",
                     "client_id", "user_name", "connection_string", "api_version")
        if name in answers
    }  # fmt: skip
    changes.update(
        dataverse_connection_enabled=bool(answers.get("enable_dataverse_connection")),
        sales_order_integration_enabled=bool(answers.get("enable_sales_order_integration")),
        bidirectional_sales_order_integration=bool(
            answers.get("bidirectional_sales_order_integration")
        ),
        auto_create_sales_orders=bool(answers.get("auto_create_sales_orders")),
        auto_process_sales_quotes=bool(answers.get("auto_process_sales_quotes")),
        item_availability_enabled=bool(answers.get("publish_item_availability")),
    )
    for name in ("client_secret", "password", "client_certificate"):
        if secrets.get(name):
            changes[name] = secrets[name]
    if answers.get("publish_item_availability"):
        changes.update(
            odata_url=answers.get("odata_url"), odata_user_name=answers["odata_user_name"]
        )
        if secrets.get("odata_access_key"):
            changes["odata_access_key"] = secrets["odata_access_key"]
        elif answers.get("issue_odata_access_key"):
            changes["issue_odata_access_key"] = True
    return changes


def _next_steps(*, is_enabled: bool, is_solution_installed: bool) -> list[str]:
    steps: list[str] = []
    if not is_enabled:
        steps.append(
            "Enable the Dataverse connection and then the Sales connection "
            "(PATCH /api/v1/connection, POST /api/v1/connection/enable)."
        )
    if not is_solution_installed:
        steps.append(
            "Deploy the integration solution so the integration user gets its security roles "
            "(POST /api/v1/connection/deploy-solution)."
        )
    steps.append(
        "Couple salespeople to Dynamics 365 Sales users (POST /api/v1/couplings/match with "
        'mapping_name "SALESPEOPLE"): records whose salesperson is not coupled fail to sync.'
    )
    steps.append(
        "Couple existing records (match-based coupling per mapping: CURRENCY, UNIT OF MEASURE, "
        "CUSTOMER, ITEM-PRODUCT, ...) before the first synchronization."
    )
    return steps


async def finish(session: AsyncSession, settings: Settings) -> AssistedSetup:
    """BC's FinalizeSetup; one transaction, so a failure leaves everything as it was."""
    flow = await _in_progress_or_raise(session)
    missing = [s.name for s in STEPS if s.is_required and s.name not in flow.completed_steps]
    if missing:
        msg = f"Complete the step {missing[0]} before finishing."
        raise ConflictError(msg)
    secrets = read_secrets(settings, flow)
    setup = await connection_setup.get_connection_setup(session, settings)
    if setup.is_enabled:  # reconnecting: the wizard's settings replace the old ones
        await connection_setup.disable_connection(session, settings, reason="assisted setup")
    changes = _connection_changes(flow, secrets)
    setup = await connection_setup.update_connection_setup(session, settings, changes=changes)
    test = await run_connection_test(settings, setup)
    if not test.ok:
        failure = test.first_failure()
        msg = f"The connection test failed: {failure}. Correct the step and finish again."
        raise ConflictError(msg)
    record_test(setup, test)
    deployed = None
    if flow.answers.get("import_solution"):
        deployed = await solution.deploy_solution(session, settings)
    reset = webhook = None
    if setup.dataverse_connection_enabled:
        setup.is_enabled, setup.disable_reason = True, ""
        session.add(setup)
        await session.flush()
        # Reconnecting uses the default synchronization setup (the seed's note).
        reset = await defaults.recreate_default_setup(session, setup=setup)
        await connection_setup.set_crm_jobs_status(session, enabled=True)
        await crm_settings.push_sales_order_processing(settings, setup)
        webhook = await webhook_registration.register_webhook(session, settings, setup)
    flow.result = {
        "is_enabled": setup.is_enabled,
        "integration_user_id": str(test.integration_user_id),
        "crm_version": test.crm_version,
        "solution": None if deployed is None else {
            "solution_action": deployed.solution_action,
            "roles": [role.name for role in deployed.roles],
            "nav_connection_action": deployed.nav_connection_action,
        },
        "mappings": [] if reset is None else reset.mappings,
        "job_queue_entries": 0 if reset is None else reset.job_queue_entries,
        "webhook": None if webhook is None else asdict(webhook),
        "next_steps": _next_steps(
            is_enabled=setup.is_enabled,
            is_solution_installed=setup.is_solution_installed,
        ),
    }  # fmt: skip
    flow.status, flow.current_step, flow.finished_at = AssistedSetupStatus.finished, "", utc_now()
    flow.secrets_encrypted = ""  # applied to the setup; no second copy is kept
    session.add(flow)
    await session.flush()
    log.info("assisted_setup_finished", is_enabled=setup.is_enabled)
    return flow


async def cancel(session: AsyncSession) -> AssistedSetup:
    flow = await _in_progress_or_raise(session)
    flow.status = AssistedSetupStatus.cancelled
    flow.secrets_encrypted = ""
    session.add(flow)
    await session.flush()
    return flow
