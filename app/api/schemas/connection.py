"""Bodies of the connection setup, test/enable/deploy and assisted setup endpoints.

Secrets go in (client_secret, password, odata_access_key, the client certificate's key) and
never come out: reads say only whether each is set and, to admins and for long ones, the
last four characters; for the certificate, its thumbprint, subject and expiry.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.auth.encryption import secret_hint
from app.connection.client_certificate import certificate_facts
from app.connection.webhook_registration import WebhookReport
from app.models.integration import AssistedSetup, AuthenticationType, ConnectionSetup
from app.settings import Settings

Text = Field(default="", max_length=250)
Secret = Field(default="", max_length=1024)
Certificate = Field(default="", max_length=32768)  # PEM or base64 .pfx, a chain included


class SecretState(BaseModel):
    is_set: bool
    hint: str | None = None

    @classmethod
    def of(cls, settings: Settings, ciphertext: str, *, show_hint: bool) -> SecretState:
        hint = secret_hint(ciphertext, settings) if show_hint else None
        return cls(is_set=bool(ciphertext), hint=hint)


class CertificateState(BaseModel):
    """The stored certificate's public facts; its private key is never shown."""

    is_set: bool
    thumbprint: str | None = None
    subject: str | None = None
    expires_at: datetime | None = None


WEBHOOK_TEXT = (
    "The CRM change notifications (webhook) as the last registration or removal left them; "
    "null when nothing was registered again. The webhook key is never shown."
)


class WebhookRead(BaseModel):
    """The CRM change notifications: registered or not, where, how many steps, and why not
    (or what failed). The key the CRM sends is never shown."""

    registered: bool = Field(
        description="Whether the CRM holds Salesbridge's webhook (a service endpoint with steps)."
    )
    url: str = Field(description="The URL the CRM posts its change notifications to.")
    steps: int = Field(
        description="How many steps (a message on a CRM table: Create, Update or Delete) "
        "send notifications."
    )
    reason: str = Field(
        description="Why nothing is registered, or what the last registration or removal "
        "could not do; empty when all is well."
    )

    @classmethod
    def of(cls, report: WebhookReport) -> WebhookRead:
        return cls(**asdict(report))


class ConnectionRead(BaseModel):
    server_address: str
    is_enabled: bool
    authentication_type: AuthenticationType
    tenant_id: str
    token_url: str
    client_id: str
    client_secret: SecretState
    client_certificate: CertificateState
    user_name: str
    password: SecretState
    connection_string: str
    api_version: str
    dataverse_connection_enabled: bool
    is_solution_installed: bool
    item_availability_enabled: bool
    odata_url: str
    odata_user_name: str
    odata_access_key: SecretState
    sales_order_integration_enabled: bool
    bidirectional_sales_order_integration: bool
    auto_create_sales_orders: bool
    auto_process_sales_quotes: bool
    integration_user_id: uuid.UUID | None
    disable_reason: str
    modified_at: datetime
    webhook: WebhookRead | None = Field(default=None, description=WEBHOOK_TEXT)

    @classmethod
    def from_setup(
        cls, settings: Settings, setup: ConnectionSetup, *, show_hints: bool = True
    ) -> ConnectionRead:
        """``show_hints``: the last four characters of each secret, for admins only."""
        hidden = {
            "client_secret_encrypted",
            "client_certificate_encrypted",
            "password_encrypted",
            "odata_access_key_encrypted",
        }
        plain = setup.model_dump(exclude=hidden, warnings=False)
        secrets = {
            name: SecretState.of(settings, getattr(setup, column), show_hint=show_hints)
            for name, column in (
                ("client_secret", "client_secret_encrypted"),
                ("password", "password_encrypted"),
                ("odata_access_key", "odata_access_key_encrypted"),
            )
        }
        certificate = certificate_facts(settings, setup.client_certificate_encrypted)
        return cls.model_validate({**plain, **secrets, "client_certificate": certificate})


class ConnectionUpdate(BaseModel):
    """Only the fields sent change; "" clears a text field or a secret."""

    model_config = ConfigDict(extra="forbid")

    server_address: str = Text
    authentication_type: AuthenticationType = AuthenticationType.oauth_client_secret
    tenant_id: str = Field(default="", max_length=100)
    token_url: str = Text
    client_id: str = Field(default="", max_length=100)
    client_secret: str = Secret
    client_certificate: str = Certificate
    client_certificate_password: str = Secret
    user_name: str = Text
    password: str = Secret
    connection_string: str = Field(default="", max_length=2048)
    api_version: str = Field(default="9.2", max_length=10)
    dataverse_connection_enabled: bool = False
    item_availability_enabled: bool = False
    odata_url: str = Text
    reset_odata_url: bool = False
    odata_user_name: str = Field(default="", max_length=100)
    odata_access_key: str = Secret
    issue_odata_access_key: bool = False
    sales_order_integration_enabled: bool = False
    bidirectional_sales_order_integration: bool = False
    auto_create_sales_orders: bool = False
    auto_process_sales_quotes: bool = False


class CheckStepRead(BaseModel):
    name: str
    ok: bool
    detail: str


class ConnectionTestRead(BaseModel):
    ok: bool
    steps: list[CheckStepRead]
    integration_user_id: uuid.UUID | None
    crm_version: str


class DisableRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=250)


class RoleRead(BaseModel):
    name: str
    role_id: uuid.UUID
    was_created: bool
    was_assigned: bool


class DeployRead(BaseModel):
    integration_user_id: uuid.UUID
    solution_id: uuid.UUID
    solution_action: str
    roles: list[RoleRead]
    nav_connection_action: str
    webhook: WebhookRead | None = Field(default=None, description=WEBHOOK_TEXT)


# --- assisted setup ---------------------------------------------------------------------


class CrmUrlStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    server_address: str = Field(max_length=250)


class CredentialsStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    authentication_type: AuthenticationType = AuthenticationType.oauth_client_secret
    tenant_id: str | None = Field(default=None, max_length=100)
    token_url: str | None = Field(default=None, max_length=250)
    client_id: str | None = Field(default=None, max_length=100)
    client_secret: str | None = Field(default=None, max_length=1024)
    client_certificate: str | None = Field(default=None, max_length=32768)
    client_certificate_password: str | None = Field(default=None, max_length=1024)
    user_name: str | None = Field(default=None, max_length=250)
    password: str | None = Field(default=None, max_length=1024)
    connection_string: str | None = Field(default=None, max_length=2048)


class OptionsStep(BaseModel):
    """The seed's advanced settings."""

    model_config = ConfigDict(extra="forbid")

    import_solution: bool | None = None
    publish_item_availability: bool | None = None
    odata_url: str | None = Field(default=None, max_length=250)
    odata_user_name: str | None = Field(default=None, max_length=100)
    odata_access_key: str | None = Field(default=None, max_length=1024)
    issue_odata_access_key: bool | None = None
    enable_sales_order_integration: bool | None = None
    bidirectional_sales_order_integration: bool | None = None
    auto_create_sales_orders: bool | None = None
    auto_process_sales_quotes: bool | None = None
    enable_dataverse_connection: bool | None = None
    api_version: str | None = Field(default=None, max_length=10)


class StepRead(BaseModel):
    name: str
    title: str
    is_required: bool
    is_completed: bool


class AssistedSetupRead(BaseModel):
    id: uuid.UUID
    status: str
    current_step: str
    steps: list[StepRead]
    answers: dict[str, Any]
    secrets: dict[str, bool]
    result: dict[str, Any]
    finished_at: datetime | None

    @classmethod
    def from_flow(cls, settings: Settings, flow: AssistedSetup) -> AssistedSetupRead:
        from app.connection.assisted_setup import SECRET_ANSWERS, STEPS, read_secrets

        secrets = read_secrets(settings, flow)
        steps = [
            StepRead(
                name=step.name,
                title=step.title,
                is_required=step.is_required,
                is_completed=step.name in flow.completed_steps,
            )
            for step in STEPS
        ]
        return cls(
            id=flow.system_id,
            status=str(flow.status),
            current_step=flow.current_step,
            steps=steps,
            answers=dict(flow.answers),
            secrets={name: bool(secrets.get(name)) for name in SECRET_ANSWERS},
            result=dict(flow.result),
            finished_at=flow.finished_at,
        )
