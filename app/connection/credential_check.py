"""New credentials for an enabled connection are tried against the CRM before they are kept.

Client secrets and certificates expire and are replaced while the integration runs, so a
replacement is accepted without disabling the connection (which would hold every job);
but a wrong one would be stored silently and every sync after it would fail. So while the
connection is enabled, a changed secret, password or certificate must get a token and
answer WhoAmI as the same integration user, or the change is refused and the stored
credentials stay. Clearing them is refused: the connection would stop working.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from app.connection.check_reasons import crm_failure, token_failure
from app.dataverse.auth import ClientCredentialsAuth
from app.dataverse.errors import AuthError, DataverseError, FailureKind
from app.errors import ConflictError, SalesbridgeError
from app.logs import get_logger
from app.models.integration import ConnectionSetup
from app.settings import Settings
from app.sync.crm_client import CrmRefusedError, CrmUnavailableError, build_crm_client

log = get_logger("salesbridge.connection.credential_check")

CREDENTIAL_FIELDS = ("client_secret", "password", "client_certificate")


def changed_credentials(changes: Mapping[str, Any]) -> list[str]:
    return [name for name in CREDENTIAL_FIELDS if name in changes]


async def check_new_credentials(
    settings: Settings, setup: ConnectionSetup, *, changes: Mapping[str, Any]
) -> None:
    """While enabled: the changed credentials must sign in as the integration user."""
    changed = changed_credentials(changes)
    if not setup.is_enabled or not changed:
        return
    cleared = [name for name in changed if not changes[name]]
    if cleared:
        msg = (
            f"The connection is enabled: it cannot work without its {', '.join(cleared)}. "
            "Give the new value, or disable the connection first."
        )
        raise ConflictError(msg)
    user_id = await _sign_in(settings, setup, what=" and ".join(changed))
    if setup.integration_user_id is not None and user_id != setup.integration_user_id:
        msg = (
            f"Not saved: the new {' and '.join(changed)} sign in as CRM user {user_id}, not as "
            f"the integration user {setup.integration_user_id}. Disable the connection to "
            "connect as another user."
        )
        raise ConflictError(msg)
    log.info("new_credentials_verified", fields=changed)


async def _sign_in(settings: Settings, setup: ConnectionSetup, *, what: str) -> uuid.UUID:
    refused = f"Not saved: the CRM refused the new {what}"
    try:
        crm = build_crm_client(settings, setup)
    except SalesbridgeError as exc:
        msg = f"{refused}. {exc.detail}"
        raise ConflictError(msg) from None
    async with crm:
        signing_in_with: str | None = None  # the credential, while the token step runs
        try:
            if isinstance(crm.auth, ClientCredentialsAuth):
                signing_in_with = crm.auth.credential_name
                await crm.auth.get_token()
                signing_in_with = None
            return (await crm.whoami()).user_id
        except DataverseError as exc:
            # Classified, as the connection test words it: never the other side's text.
            reason = (
                crm_failure(exc)
                if signing_in_with is None
                else token_failure(exc, credential=signing_in_with)
            )
            if isinstance(exc, AuthError) or exc.failure_kind == FailureKind.config:
                msg = f"{refused}: {reason}."
                raise CrmRefusedError(msg) from None
            msg = (
                f"Not saved: the CRM could not be reached to try the new {what} ({reason}). "
                "Try again later."
            )
            raise CrmUnavailableError(msg) from None
