"""The CRM client for the connection setup; the only place stored CRM secrets are decrypted.

Interactive actions (test connection, deploy the solution, match-based coupling) use a
short retry budget so a request answers within seconds; Dataverse errors become API
errors an admin can act on, without secrets (the client's messages carry none).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from app.auth.encryption import decrypt_secret
from app.dataverse import DataverseClient, RetryPolicy, client_from_connection
from app.dataverse.errors import (
    AuthError,
    DataverseConfigError,
    DataverseError,
    FailureKind,
)
from app.errors import NotConfiguredError, SalesbridgeError
from app.models.integration import ConnectionSetup
from app.settings import Settings
from app.sync import crm_usage

INTERACTIVE_RETRY = RetryPolicy(
    max_attempts=2, max_throttled_attempts=3, max_delay_seconds=2.0, deadline_seconds=20.0
)
INTERACTIVE_TIMEOUT = httpx.Timeout(15.0, connect=5.0)


class CrmUnavailableError(SalesbridgeError):
    """The CRM could not be reached or answered with an error (502: not our fault)."""

    status_code = 502


class CrmRefusedError(SalesbridgeError):
    """The CRM refused the configured credentials or permissions (409: fix the setup)."""

    status_code = 409


def build_crm_client(
    settings: Settings, setup: ConnectionSetup, *, interactive: bool = True, **options: Any
) -> DataverseClient:
    """A client for the configured CRM; ``NotConfiguredError`` naming what is missing."""
    if not setup.server_address:
        msg = "The Dynamics 365 Sales connection is not set up: enter the CRM URL first."
        raise NotConfiguredError(msg)
    if interactive:
        options.setdefault("retry_policy", INTERACTIVE_RETRY)
        options.setdefault("timeout", INTERACTIVE_TIMEOUT)
    label = crm_usage.connection_label(setup.server_address, setup.client_id)
    options.setdefault("observer", crm_usage.observer_for(settings.redis_url, label=label))
    # No loopback, private, link-local or metadata address unless the operator allows it.
    options.setdefault("public_addresses_only", not settings.allow_private_crm_addresses)
    try:
        return client_from_connection(
            server_address=setup.server_address,
            api_version=setup.api_version,
            authentication_type=setup.authentication_type,
            client_id=setup.client_id,
            client_secret=decrypt_secret(settings, setup.client_secret_encrypted),
            client_certificate=decrypt_secret(settings, setup.client_certificate_encrypted),
            tenant_id=setup.tenant_id,
            token_url=setup.token_url,
            **options,
        )
    except (DataverseConfigError, ValueError) as exc:
        msg = f"The CRM connection cannot be used: {exc}."
        raise NotConfiguredError(msg) from None


def describe_crm_error(exc: DataverseError) -> str:
    return exc.message


@contextmanager
def crm_errors(action: str) -> Iterator[None]:
    """Turn Dataverse errors raised while doing ``action`` into API errors."""
    try:
        yield
    except AuthError as exc:
        msg = (
            f"Could not {action}: the CRM refused the connection's credentials or "
            f"permissions. {exc.message}"
        )
        raise CrmRefusedError(msg) from None
    except DataverseError as exc:
        if exc.failure_kind == FailureKind.config:
            msg = f"Could not {action}: {exc.message}"
            raise CrmRefusedError(msg) from None
        hint = " Try again later." if exc.failure_kind == FailureKind.transient else ""
        msg = f"Could not {action}: {exc.message}.{hint}"
        raise CrmUnavailableError(msg) from None
