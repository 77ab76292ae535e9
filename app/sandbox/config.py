"""Settings of one sandbox server: credentials, storage, service protection limits, faults.

Limits and faults are off by default and can be changed while the server runs (the
control API under ``/_sandbox/`` writes into the same object).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

# Alternate keys the sandbox defines. Dataverse tables have none by default; an
# integration's solution adds them, and these are the natural keys Salesbridge couples on.
DEFAULT_ALTERNATE_KEYS: dict[str, list[tuple[str, ...]]] = {
    "products": [("productnumber",)],
    "accounts": [("accountnumber",)],
    "uomschedules": [("name",)],
    "pricelevels": [("name",)],
    "transactioncurrencies": [("isocurrencycode",)],
    "salesorders": [("ordernumber",)],
    "quotes": [("quotenumber",)],
    "invoices": [("invoicenumber",)],
    "solutions": [("uniquename",)],
}

LIMIT_FIELDS = (
    "max_requests_per_window",
    "window_seconds",
    "max_concurrent_requests",
    "retry_after_seconds",
    "early_grace_seconds",
)
FAULT_FIELDS = ("error_rate", "error_statuses", "throttle_rate", "latency_ms", "drop_rate", "seed")
WEBHOOK_FIELDS = (
    "drop_rate",
    "duplicate_rate",
    "fail_rate",
    "delay_ms",
    "seed",
    "max_attempts",
    "backoff_ms",
    "max_backoff_ms",
    "timeout_ms",
    "concurrency",
)
_AT_LEAST_ONE = ("max_attempts", "timeout_ms", "concurrency")


@dataclass
class WebhookSettings:
    """How the sandbox's asynchronous service delivers webhooks, and its delivery faults.

    Faults are off by default; ``GET``/``PATCH /_sandbox/webhooks`` read and change them.
    """

    drop_rate: float = 0.0  # share of deliveries never sent (a lost notification)
    duplicate_rate: float = 0.0  # share delivered twice, with the same OperationId
    fail_rate: float = 0.0  # share of attempts failed without sending (then retried)
    delay_ms: int = 0  # added before each delivery
    seed: int | None = None  # for the fault draws, so a seeded run repeats
    max_attempts: int = 5  # then the delivery is recorded as failed
    backoff_ms: int = 500  # before the 2nd attempt; doubles per attempt
    max_backoff_ms: int = 30_000
    timeout_ms: int = 5_000  # per attempt
    concurrency: int = 8  # deliveries in flight at once

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in WEBHOOK_FIELDS}

    def update(self, values: dict[str, Any]) -> None:
        """Apply a control-API change: all of it or, on a bad value, none of it."""
        types = {f.name: str(f.type) for f in fields(self)}
        coerced: dict[str, Any] = {}
        for name, value in values.items():
            if name not in WEBHOOK_FIELDS:
                msg = f"unknown setting {name!r}; allowed: {', '.join(WEBHOOK_FIELDS)}"
                raise ValueError(msg)
            coerced[name] = _coerce(name, value, types[name])
            if name in _AT_LEAST_ONE and coerced[name] < 1:
                msg = f"{name} must be at least 1"
                raise ValueError(msg)
        for name, value in coerced.items():
            setattr(self, name, value)


@dataclass
class SandboxConfig:
    client_id: str = "sandbox-client"
    client_secret: str = "sandbox-secret"  # noqa: S105 - the sandbox's own well-known default
    tenant_id: str = "sandbox-tenant"
    # Certificates registered on the app (PEM, public part): client assertions signed with
    # their keys sign in like the secret does (app/sandbox/client_assertion.py).
    client_certificates: tuple[str, ...] = ()
    db_path: Path | None = None  # None = in-memory
    api_version: str = "9.2"
    max_page_size: int = 5000
    token_lifetime_seconds: int = 3600
    base_currency_code: str = "USD"
    alternate_keys: dict[str, list[tuple[str, ...]]] = field(
        default_factory=lambda: dict(DEFAULT_ALTERNATE_KEYS)
    )
    # Custom columns per entity set, declared on top of the standard ones
    # (app/sandbox/schema/attributes.py); names outside both are refused like Dataverse does.
    extra_attributes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Service protection limits (per user, i.e. per client id); None = off.
    max_requests_per_window: int | None = None
    window_seconds: float = 300.0
    max_concurrent_requests: int | None = None
    retry_after_seconds: int | None = None  # None = seconds until the window has room (>= 1)
    # A request on another connection than the 429's counts as "early" only from this long
    # after the 429 was fully written: requests the client sent before it could read the
    # 429 may still be in the kernel or an event loop's queue (docs/sandbox.md). Requests
    # on the 429's own connection need no grace: they were sent after it was read.
    early_grace_seconds: float = 0.5
    # Fault injection; 0 = off.
    error_rate: float = 0.0  # share of requests answered 500/503 before they run
    error_statuses: tuple[int, ...] = (500, 503)
    throttle_rate: float = 0.0  # share of requests answered 429 (requests limit) at random
    latency_ms: int = 0  # added to every Web API request
    drop_rate: float = 0.0  # share of requests whose connection is closed after they ran
    seed: int | None = None
    # Webhook deliveries (app/sandbox/webhooks): retries, timeouts and their own faults.
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)

    def limits(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in LIMIT_FIELDS}

    def faults(self) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in FAULT_FIELDS}
        values["error_statuses"] = list(self.error_statuses)
        return values

    def update(self, values: dict[str, Any], *, allowed: tuple[str, ...]) -> None:
        """Apply a control-API change; unknown names are refused, types are checked."""
        types = {f.name: f.type for f in fields(self)}
        for name, value in values.items():
            if name not in allowed:
                msg = f"unknown setting {name!r}; allowed: {', '.join(allowed)}"
                raise ValueError(msg)
            setattr(self, name, _coerce(name, value, str(types[name])))


def _coerce(name: str, value: Any, type_name: str) -> Any:
    if value is None:
        if "None" not in type_name:
            msg = f"{name} cannot be null"
            raise ValueError(msg)
        return None
    if name == "error_statuses":
        statuses = tuple(int(v) for v in value)
        if any(s < 500 or s > 599 for s in statuses) or not statuses:
            msg = "error_statuses must be a non-empty list of 5xx codes"
            raise ValueError(msg)
        return statuses
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"{name} must be a number"
        raise ValueError(msg)
    if value < 0:
        msg = f"{name} must not be negative"
        raise ValueError(msg)
    if name.endswith("_rate") and value > 1:
        msg = f"{name} is a share between 0 and 1"
        raise ValueError(msg)
    return int(value) if type_name.startswith("int") else float(value)
