"""The webhook Salesbridge registers in the CRM: its one row and the key the CRM sends.

The key is generated here, handed to the CRM in the service endpoint's ``authvalue`` (an
HTTP header), stored encrypted like every other credential, and compared in constant
time on every delivery.
"""

from __future__ import annotations

import hmac
import secrets

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth.encryption import decrypt_secret, encrypt_secret
from app.models.integration import CrmWebhook
from app.settings import Settings

WEBHOOK_KEY_HEADER = "x-salesbridge-webhook-key"


async def get_crm_webhook(session: AsyncSession) -> CrmWebhook | None:
    return (await session.exec(select(CrmWebhook).order_by(col(CrmWebhook.id)).limit(1))).first()


def new_webhook_key() -> str:
    return secrets.token_urlsafe(32)


def set_webhook_key(settings: Settings, row: CrmWebhook, key: str) -> None:
    row.secret_encrypted = encrypt_secret(settings, key)


def webhook_key(settings: Settings, row: CrmWebhook) -> str:
    return decrypt_secret(settings, row.secret_encrypted)


def is_webhook_key(settings: Settings, row: CrmWebhook | None, presented: str) -> bool:
    """True only for the stored key; compared in constant time, so a wrong key's timing
    says nothing about the right one."""
    if row is None or not row.secret_encrypted or not presented:
        return False
    return hmac.compare_digest(webhook_key(settings, row).encode(), presented.encode())
