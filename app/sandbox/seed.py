"""What a fresh org holds: the organization (row and ids), its root business unit, the
application user the client credentials map to, the base currency and the integration
security roles."""

from __future__ import annotations

import uuid

from app.sandbox.attributes import schema_for
from app.sandbox.config import SandboxConfig
from app.sandbox.entities import BY_SET
from app.sandbox.payload import BindContext
from app.sandbox.records import Identity, Records
from app.sandbox.store import Store

# Role ids BC's integration assigns (reference/bc-integration.md §7).
SEEDED_ROLES = {
    "System Administrator": "627090ff-40a3-4053-8790-584edc5be201",
    "Integration Administrator": "8c8d4f51-a72b-e511-80d9-3863bb349780",
    "Integration User": "6f960e32-a72b-e511-80d9-3863bb349780",
    "Product Availability User": str(
        uuid.uuid5(uuid.NAMESPACE_URL, "sandbox/product-availability")
    ),
}
_CURRENCIES = {"USD": ("US Dollar", "$"), "EUR": ("Euro", "€"), "SEK": ("Swedish Krona", "kr"),
               "GBP": ("Pound Sterling", "£"), "DKK": ("Danish Krone", "kr")}  # fmt: skip


def load_or_seed(store: Store, config: SandboxConfig) -> Identity:
    """The org's identity, seeding a new org on first start (and after a data reset)."""
    stored = store.get_meta("identity")
    api_path = f"/api/data/v{config.api_version}/"
    context = BindContext(store, config.alternate_keys, api_path, schema=schema_for(config))
    if stored is not None:
        organization_id, business_unit_id, user_id, currency_id = stored.split(",")
        identity = Identity(organization_id, business_unit_id, user_id, currency_id)
        if store.get("organizations", organization_id) is None:  # seeded by an older sandbox
            with store.transaction():
                _seed_organization(Records(store, identity, context), identity)
        return identity
    identity = Identity(*(str(uuid.uuid4()) for _ in range(4)))
    records = Records(store, identity, context)
    with store.transaction():
        _seed_organization(records, identity)
        _seed_rows(records, identity, config)
        store.set_meta("identity", ",".join(
            (identity.organization_id, identity.business_unit_id, identity.user_id,
             identity.base_currency_id)))  # fmt: skip
    return identity


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
    for role_name, role_id in SEEDED_ROLES.items():
        records.create(BY_SET["roles"], {"roleid": role_id, "name": role_name})
