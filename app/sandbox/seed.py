"""What a fresh org holds: the organization (row and ids), its root business unit, the
application user the client credentials map to, the base currency and the integration
security roles."""

from __future__ import annotations

import uuid

from app.sandbox.config import SandboxConfig
from app.sandbox.discovery.sdk_messages import seed_messages
from app.sandbox.operations.payload import BindContext
from app.sandbox.operations.records import Identity, Records
from app.sandbox.schema.attributes import schema_for
from app.sandbox.schema.entities import BY_SET
from app.sandbox.security import SEEDED_ROLES
from app.sandbox.store import Store

__all__ = ["SEEDED_ROLES", "load_or_seed"]
_CURRENCIES = {"USD": ("US Dollar", "$"), "EUR": ("Euro", "€"), "SEK": ("Swedish Krona", "kr"),
               "GBP": ("Pound Sterling", "£"), "DKK": ("Danish Krone", "kr")}  # fmt: skip


def load_or_seed(store: Store, config: SandboxConfig) -> Identity:
    """The org's identity, seeding a new org on first start (and after a data reset); rows
    a newer sandbox seeds (roles, message tables) are added to an older file on start."""
    stored = store.get_meta("identity")
    if stored is not None:
        organization_id, business_unit_id, user_id, currency_id = stored.split(",")
        identity = Identity(organization_id, business_unit_id, user_id, currency_id)
        with store.transaction():
            _top_up(_records(store, identity, config), identity)
        return identity
    identity = Identity(*(str(uuid.uuid4()) for _ in range(4)))
    records = _records(store, identity, config)
    with store.transaction():
        _seed_organization(records, identity)
        _seed_rows(records, identity, config)
        _top_up(records, identity)
        store.set_meta("identity", ",".join(
            (identity.organization_id, identity.business_unit_id, identity.user_id,
             identity.base_currency_id)))  # fmt: skip
    return identity


def _records(store: Store, identity: Identity, config: SandboxConfig) -> Records:
    api_path = f"/api/data/v{config.api_version}/"
    context = BindContext(store, config.alternate_keys, api_path, schema=schema_for(config))
    return Records(store, identity, context)


def _top_up(records: Records, identity: Identity) -> None:
    if records.store.get("organizations", identity.organization_id) is None:
        _seed_organization(records, identity)
    for role_name, role_id in SEEDED_ROLES.items():
        if records.store.get("roles", role_id) is None:
            records.create(BY_SET["roles"], {"roleid": role_id, "name": role_name})
    seed_messages(records)


def _seed_organization(records: Records, identity: Identity) -> None:
    # Sales fulfils orders itself until an integration turns this on (BC does on enable).
    records.create(
        BY_SET["organizations"],
        {"organizationid": identity.organization_id, "name": "Sandbox organization",
         "issopintegrationenabled": False, "expirechangetrackingindays": 7},
    )  # fmt: skip


def _seed_rows(records: Records, identity: Identity, config: SandboxConfig) -> None:
    records.create(
        BY_SET["systemusers"],
        {
            "systemuserid": identity.user_id,
            "firstname": "#",
            "lastname": config.client_id,
            "applicationid": config.client_id,
            "domainname": f"{config.client_id}@{config.tenant_id}",
            "internalemailaddress": f"{config.client_id}@{config.tenant_id}",
            "isdisabled": False,
            "accessmode": 4,  # non-interactive (application user)
        },
    )
    code = config.base_currency_code.upper()
    name, symbol = _CURRENCIES.get(code, (code, code))
    records.create(
        BY_SET["transactioncurrencies"],
        {
            "transactioncurrencyid": identity.base_currency_id,
            "isocurrencycode": code,
            "currencyname": name,
            "currencysymbol": symbol,
            "currencyprecision": 2,
            "exchangerate": 1.0,
        },
    )
