"""Settings from the environment (prefix ``SALESBRIDGE_``) or a ``.env`` file.

Secrets that are not given are generated once into the data dir (mode 0600) so a fresh
install works with no set-up and keeps working across restarts.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from pydantic import Field, PrivateAttr, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.file_modes import make_private_dir

ODATA_PAGE_SIZE_HARD_CAP = 20_000


def _fernet_key() -> str:
    """What ``Fernet.generate_key()`` returns (32 random bytes, URL-safe base64), made here so
    that reading the settings does not load cryptography into every process."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _read_or_create_secret(path: Path, make: Callable[[], str] | None = None) -> str:
    if path.exists():
        return path.read_text().strip()
    make_private_dir(path.parent)
    value = make() if make is not None else secrets.token_urlsafe(48)
    # O_EXCL: two processes starting together must not each write a different secret.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SALESBRIDGE_", env_file=".env", extra="ignore", validate_default=True
    )

    data_dir: Path = Path(".salesbridge")
    database_url: str = ""
    redis_url: str = ""
    secret_key: SecretStr = SecretStr("")
    encryption_keys: SecretStr = SecretStr("")
    access_key_pepper: SecretStr = SecretStr("")
    company_name: str = "CRONUS"
    odata_max_page_size: int = Field(default=1000, ge=1, le=ODATA_PAGE_SIZE_HARD_CAP)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str = ""
    log_level: str = "INFO"
    log_format: Literal["console", "json"] = "console"
    token_minutes: int = Field(default=30, ge=1, le=24 * 60)
    token_issuer: str = "salesbridge"  # noqa: S105 - an issuer name
    token_audience: str = "salesbridge-api"  # noqa: S105 - an audience name
    console_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    console_session_hours: int = Field(default=12, ge=1, le=7 * 24)
    login_max_failures: int = Field(default=10, ge=1)
    login_window_seconds: int = Field(default=300, ge=1)
    # Past the limit, password checks for a user name wait (doubling, up to this); see
    # app/auth/throttle.py. They are slowed, never refused.
    login_backoff_max_seconds: int = Field(default=10, ge=0, le=120)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_url_bytes: int = Field(default=16 * 1024, ge=1024)  # path + query; $filter caps at 4096
    max_header_bytes: int = Field(default=32 * 1024, ge=1024)  # all names + values together
    max_header_count: int = Field(default=100, ge=10)
    trusted_proxies: str = ""
    # CRM and token URLs on loopback, private, link-local or cloud metadata addresses are
    # refused unless this is set (an on-premises CRM, the sandbox, the demo).
    allow_private_crm_addresses: bool = False
    embedded_worker: bool = True
    scheduler_tick_seconds: int = Field(default=5, ge=1, le=60)
    job_timeout_seconds: int = Field(default=300, ge=5)
    # BC's Sales & Receivables "Write-in Product Type/No.": the ERP item or resource that a
    # CRM order line without a product (a write-in) becomes; empty = such lines fail.
    write_in_product_type: Literal["item", "resource"] = "item"
    write_in_product_no: str = Field(default="", max_length=20)
    # Near-real-time sync. Off: no webhook is registered in the CRM (an existing one is
    # removed on the next enable or redeploy) and the periodic runs alone carry changes.
    webhooks_enabled: bool = True
    # Where the CRM posts its change notifications, under SALESBRIDGE_PUBLIC_URL.
    webhook_path: str = Field(default="/api/v1/crm/notifications", pattern=r"^/[A-Za-z0-9/_.-]*$")
    # How long a worker gathers "these tables changed" messages before it wakes the
    # mappings that read them, so a burst of writes becomes one run per mapping.
    sync_debounce_ms: int = Field(default=1000, ge=0, le=60_000)
    _has_public_url: bool = PrivateAttr(default=False)

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        self.data_dir = self.data_dir.expanduser()
        self._has_public_url = bool(self.public_url)
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'salesbridge.db'}"
        if not self.secret_key.get_secret_value():
            self.secret_key = SecretStr(_read_or_create_secret(self.data_dir / "secret_key"))
        if not self.encryption_keys.get_secret_value():
            key = _read_or_create_secret(self.data_dir / "encryption_key", _fernet_key)
            self.encryption_keys = SecretStr(key)
        if not self.access_key_pepper.get_secret_value():
            pepper = _read_or_create_secret(self.data_dir / "access_key_pepper")
            self.access_key_pepper = SecretStr(pepper)
        if not self.public_url:
            self.public_url = f"http://{self.host}:{self.port}"
        return self

    @property
    def has_public_url(self) -> bool:
        """SALESBRIDGE_PUBLIC_URL was given: every absolute link uses it, never Host."""
        return self._has_public_url

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def uses_embedded_redis(self) -> bool:
        return not self.redis_url

    @property
    def embedded_redis_dir(self) -> Path:
        return self.data_dir / "redis"

    @property
    def odata_url(self) -> str:
        """The item availability URL handed to the CRM, as BC stores it in
        ``nav_connection``: the OData V3 ``ProductItemAvailability`` of the company."""
        return product_item_availability_url(self.public_url, self.company_name)


def product_item_availability_url(base_url: str, company_name: str) -> str:
    """``<base>/ODataV3/Company('<name>')/ProductItemAvailability``, the name quoted as in
    an OData key (quotes doubled) and percent-encoded as BC writes it."""
    company = quote(company_name.replace("'", "''"), safe="")
    return f"{base_url.rstrip('/')}/ODataV3/Company('{company}')/ProductItemAvailability"


@lru_cache
def get_settings() -> Settings:
    return Settings()
