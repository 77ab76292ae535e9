"""Test connection (token, WhoAmI, version) and enabling, which requires a passing test.

The test answers what worked and what failed, step by step, in words an admin can act
on; it stores the integration user id WhoAmI reports (its own writes are never synced
back). Nothing here logs or returns a secret, and a failure is a classified reason
(``check_reasons``), never the body the other side answered.
"""

from __future__ import annotations

import httpx
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import utc_now
from app.connection import crm_settings, webhook_registration
from app.connection.check_reasons import NOT_DATAVERSE, UNREACHABLE, crm_failure, token_failure
from app.connection.connection_setup import (
    CheckStep,
    ConnectionTestResult,
    get_connection_setup,
    mark_enabled,
)
from app.connection.setup_validation import raise_if_incomplete
from app.dataverse import DataverseClient
from app.dataverse.auth import ClientCredentialsAuth
from app.dataverse.client import STANDARD_HEADERS
from app.dataverse.errors import DataverseError
from app.dataverse.public_addresses import PublicAddressTransport
from app.errors import ConflictError, SalesbridgeError
from app.logs import get_logger
from app.models.integration import ConnectionSetup
from app.settings import Settings
from app.sync.crm_client import INTERACTIVE_TIMEOUT, build_crm_client

log = get_logger("salesbridge.sync.connection_check")


async def _token_step(crm: DataverseClient) -> CheckStep:
    if not isinstance(crm.auth, ClientCredentialsAuth):
        return CheckStep("token", ok=True, detail="no token needed for this authentication type")
    try:
        await crm.auth.get_token()
    except DataverseError as exc:
        reason = token_failure(exc, credential=crm.auth.credential_name)
        return CheckStep("token", ok=False, detail=reason)
    return CheckStep("token", ok=True, detail=f"signed in as application {crm.auth.client_id}")


async def _version_step(settings: Settings, crm: DataverseClient) -> tuple[CheckStep, str]:
    """The CRM's build from ``RetrieveVersion()``; else at least that our API version answers."""
    public_only = not settings.allow_private_crm_addresses
    async with httpx.AsyncClient(
        auth=crm.auth,
        base_url=crm.api_url,
        headers=STANDARD_HEADERS,
        timeout=INTERACTIVE_TIMEOUT,
        transport=PublicAddressTransport() if public_only else None,
    ) as http:
        try:
            response = await http.get("RetrieveVersion()")
            if response.status_code == httpx.codes.OK:
                version = str(response.json().get("Version", ""))[:40]
                return CheckStep(
                    "version", ok=True, detail=f"Dynamics 365 version {version}"
                ), version
            root = await http.get("")
        except httpx.HTTPError:
            return CheckStep("version", ok=False, detail=f"the CRM gave {UNREACHABLE}"), ""
        except (ValueError, AttributeError):
            return CheckStep("version", ok=False, detail=NOT_DATAVERSE), ""
        except DataverseError as exc:
            return CheckStep("version", ok=False, detail=crm_failure(exc)), ""
    if root.status_code == httpx.codes.OK:
        detail = f"Web API {crm.api_url} answers (the server does not report its build)"
        return CheckStep("version", ok=True, detail=detail), ""
    detail = f"the Web API version in {crm.api_url} is not served (HTTP {root.status_code})"
    return CheckStep("version", ok=False, detail=detail), ""


async def run_connection_test(settings: Settings, setup: ConnectionSetup) -> ConnectionTestResult:
    """Token, WhoAmI, version; stops at the first failure (later steps need the earlier)."""
    result = ConnectionTestResult()
    try:
        crm = build_crm_client(settings, setup)
    except SalesbridgeError as exc:
        result.steps.append(CheckStep("configuration", ok=False, detail=exc.detail))
        return result
    async with crm:
        result.steps.append(await _token_step(crm))
        if not result.ok:
            return result
        try:
            who = await crm.whoami()
        except DataverseError as exc:
            result.steps.append(CheckStep("whoami", ok=False, detail=crm_failure(exc)))
            return result
        except (ValueError, KeyError, TypeError):
            result.steps.append(CheckStep("whoami", ok=False, detail=NOT_DATAVERSE))
            return result
        result.integration_user_id = who.user_id
        result.steps.append(CheckStep("whoami", ok=True, detail=f"integration user {who.user_id}"))
        step, result.crm_version = await _version_step(settings, crm)
        result.steps.append(step)
    return result


def record_test(setup: ConnectionSetup, result: ConnectionTestResult) -> None:
    """Keep the outcome on the setup (the console's overview shows the last one)."""
    if result.integration_user_id is not None:
        setup.integration_user_id = result.integration_user_id
    setup.last_tested_at, setup.last_test_ok = utc_now(), result.ok
    setup.last_test_message = result.first_failure()[:500]


async def test_connection(session: AsyncSession, settings: Settings) -> ConnectionTestResult:
    """Test the stored setup; a successful WhoAmI stores the integration user id."""
    setup = await get_connection_setup(session, settings)
    raise_if_incomplete(setup, action="test the connection")
    result = await run_connection_test(settings, setup)
    record_test(setup, result)
    session.add(setup)
    await session.flush()
    log.info("connection_tested", ok=result.ok, steps=[s.name for s in result.steps if s.ok])
    return result


async def enable_connection(session: AsyncSession, settings: Settings) -> ConnectionSetup:
    """BC's EnableCRMConnection: verify the CRM, then enable (defaults, jobs ready) and
    register the change notifications (a failure there is reported, never fatal)."""
    setup = await get_connection_setup(session, settings)
    if not setup.dataverse_connection_enabled:
        msg = "The Sales connection requires the Dataverse connection: enable it first."
        raise ConflictError(msg)
    raise_if_incomplete(setup, action="enable the connection")
    result = await test_connection(session, settings)
    if not result.ok:
        failure = result.first_failure()
        msg = f"The connection test failed, so the connection stays disabled: {failure}"
        raise ConflictError(msg)
    await mark_enabled(session, setup=setup)
    await crm_settings.push_sales_order_processing(settings, setup)
    # Last: the CRM calls above may still undo the enable; this one never does.
    await webhook_registration.register_webhook(session, settings, setup)
    return setup
