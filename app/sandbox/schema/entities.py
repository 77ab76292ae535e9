"""The tables the sandbox serves: entity sets, keys, lookups, ownership, states, choices.

Option values and state/status pairs are Dataverse's own (as BC's integration code and
Microsoft's entity reference give them). Attributes other than lookups are schema-less:
any lower-case name is stored as sent, so the sandbox does not reject columns it was not told about.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Ownership = Literal["user", "organization", "businessunit", "none"]


@dataclass(frozen=True)
class Lookup:
    """A single-valued navigation property; polymorphic ones are bound with a suffix."""

    name: str
    targets: tuple[str, ...]  # entity sets
    # Polymorphic in Dataverse though the sandbox serves one target (a step's event
    # handler is a plug-in type or a service endpoint): bound with the target's suffix.
    polymorphic: bool = False

    @property
    def is_polymorphic(self) -> bool:
        return self.polymorphic or len(self.targets) > 1


@dataclass(frozen=True)
class StateModel:
    initial: tuple[int, int]
    statuses: dict[int, tuple[int, ...]]  # statecode -> valid statuscodes, default first
    editable: frozenset[int]  # states in which other columns may be changed
    labels: dict[int, str]


@dataclass(frozen=True)
class EntityType:
    set_name: str
    logical: str
    primary_name: str | None
    ownership: Ownership
    lookups: dict[str, Lookup] = field(default_factory=dict)
    state: StateModel | None = None
    has_money: bool = False
    parent: str | None = None  # lookup to the header whose state guards this line
    choices: dict[str, frozenset[int]] = field(default_factory=dict)
    is_updatable: bool = True
    is_system: bool = False  # a platform table: read through the Web API, never written
    # Columns Dataverse accepts in writes but never returns (IsValidForRead false): secrets.
    write_only: frozenset[str] = frozenset()

    @property
    def pk(self) -> str:
        return f"{self.logical}id"

    @property
    def type_name(self) -> str:
        return f"Microsoft.Dynamics.CRM.{self.logical}"


_SIMPLE = StateModel((0, 1), {0: (1,), 1: (2,)}, frozenset({0, 1}), {0: "Active", 1: "Inactive"})
_PRODUCT = StateModel(
    (2, 0),
    {0: (1,), 1: (2,), 2: (0,), 3: (3,)},
    frozenset({0, 1, 2, 3}),
    {0: "Active", 1: "Retired", 2: "Draft", 3: "Under Revision"},
)
_STEP = StateModel((0, 1), {0: (1,), 1: (2,)}, frozenset({0, 1}), {0: "Enabled", 1: "Disabled"})
_PRICELEVEL = StateModel(
    (0, 100001), {0: (100001,), 1: (100002,)}, frozenset({0, 1}), {0: "Active", 1: "Inactive"}
)
_OPPORTUNITY = StateModel(
    (0, 1), {0: (1, 2), 1: (3,), 2: (4, 5)}, frozenset({0}), {0: "Open", 1: "Won", 2: "Lost"}
)
_QUOTE = StateModel(
    (0, 1),
    {0: (1,), 1: (2, 3), 2: (4,), 3: (5, 6, 7)},
    frozenset({0}),
    {0: "Draft", 1: "Active", 2: "Won", 3: "Closed"},
)
_SALESORDER = StateModel(
    (0, 1),
    {0: (1, 2, 700970000), 1: (3,), 2: (4,), 3: (100001, 100002), 4: (100003,)},
    frozenset({0}),
    {0: "Active", 1: "Submitted", 2: "Canceled", 3: "Fulfilled", 4: "Invoiced"},
)
_INVOICE = StateModel(
    (0, 1),
    {0: (1, 2, 4, 5, 6), 1: (3, 7), 2: (100001, 100002), 3: (100003,)},
    frozenset({0, 1}),
    {0: "Active", 1: "Closed", 2: "Paid", 3: "Canceled"},
)


def _lookups(*items: tuple[str, str | tuple[str, ...]]) -> dict[str, Lookup]:
    found: dict[str, Lookup] = {}
    for name, targets in items:
        found[name] = Lookup(name, (targets,) if isinstance(targets, str) else targets)
    return found


_CUSTOMER = ("accounts", "contacts")
_NOTE_TARGETS = (
    "accounts", "contacts", "opportunities", "quotes", "salesorders", "invoices", "products",
)  # fmt: skip
_OWNER = ("ownerid", "systemusers")
_CURRENCY = ("transactioncurrencyid", "transactioncurrencies")
_LINE_TYPES = frozenset({1, 2, 3, 4})
# A stock org's option sets: payment terms 1 Net 30, 2 2% 10 Net 30, 3 Net 45, 4 Net 60;
# freight terms 1 FOB, 2 No Charge; shipping method 1 Airborne, 2 DHL, 3 FedEx, 4 UPS,
# 5 Postal Mail, 6 Full Load, 7 Will Call.
_PAYMENT_TERMS, _FREIGHT_TERMS = frozenset(range(1, 5)), frozenset({1, 2})
_SHIPPING_METHODS = frozenset(range(1, 8))
_DOCUMENT_OPTIONS = {
    "paymenttermscode": _PAYMENT_TERMS,
    "freighttermscode": _FREIGHT_TERMS,
    "shippingmethodcode": _SHIPPING_METHODS,
}
_ACCOUNT_OPTIONS = {
    "paymenttermscode": _PAYMENT_TERMS,
    **{f"{prefix}freighttermscode": _FREIGHT_TERMS for prefix in ("address1_", "address2_")},
    **{f"{prefix}shippingmethodcode": _SHIPPING_METHODS for prefix in ("address1_", "address2_")},
}

ENTITIES: tuple[EntityType, ...] = (
    EntityType("uomschedules", "uomschedule", "name", "organization", state=_SIMPLE),
    EntityType(
        "uoms",
        "uom",
        "name",
        "none",
        _lookups(("uomscheduleid", "uomschedules"), ("baseuom", "uoms")),
        parent="uomscheduleid",
    ),
    EntityType(
        "products",
        "product",
        "name",
        "organization",
        _lookups(
            ("defaultuomscheduleid", "uomschedules"),
            ("defaultuomid", "uoms"),
            ("pricelevelid", "pricelevels"),
            ("parentproductid", "products"),
            _CURRENCY,
        ),
        _PRODUCT,
        has_money=True,
        choices={
            "producttypecode": frozenset({1, 2, 3, 4}),
            "productstructure": frozenset({1, 2, 3}),
        },
    ),
    EntityType(
        "pricelevels",
        "pricelevel",
        "name",
        "organization",
        _lookups(_CURRENCY),
        _PRICELEVEL,
        has_money=True,
    ),  # fmt: skip
    EntityType(
        "productpricelevels",
        "productpricelevel",
        None,
        "organization",
        _lookups(
            ("pricelevelid", "pricelevels"),
            ("productid", "products"),
            ("uomid", "uoms"),
            ("uomscheduleid", "uomschedules"),
            _CURRENCY,
        ),
        has_money=True,
        choices={
            "pricingmethodcode": frozenset(range(1, 7)),
            "quantitysellingcode": frozenset({1, 2, 3}),
            "roundingpolicycode": frozenset({1, 2, 3, 4}),
            "roundingoptioncode": frozenset({1, 2}),
        },
    ),
    EntityType(
        "opportunities",
        "opportunity",
        "name",
        "user",
        _lookups(
            ("customerid", _CUSTOMER),
            ("parentaccountid", "accounts"),
            ("parentcontactid", "contacts"),
            ("pricelevelid", "pricelevels"),
            _CURRENCY,
            _OWNER,
        ),
        _OPPORTUNITY,
        has_money=True,
    ),
    EntityType(
        "quotes",
        "quote",
        "name",
        "user",
        _lookups(
            ("customerid", _CUSTOMER),
            ("opportunityid", "opportunities"),
            ("pricelevelid", "pricelevels"),
            _CURRENCY,
            _OWNER,
        ),
        _QUOTE,
        has_money=True,
        choices=_DOCUMENT_OPTIONS,
    ),
    EntityType(
        "quotedetails",
        "quotedetail",
        None,
        "none",
        _lookups(("quoteid", "quotes"), ("productid", "products"), ("uomid", "uoms"), _CURRENCY),
        has_money=True,
        parent="quoteid",
        choices={"producttypecode": _LINE_TYPES},
    ),
    EntityType(
        "salesorders",
        "salesorder",
        "name",
        "user",
        _lookups(
            ("customerid", _CUSTOMER),
            ("opportunityid", "opportunities"),
            ("quoteid", "quotes"),
            ("pricelevelid", "pricelevels"),
            _CURRENCY,
            _OWNER,
        ),
        _SALESORDER,
        has_money=True,
        choices=_DOCUMENT_OPTIONS,
    ),
    EntityType(
        "salesorderdetails",
        "salesorderdetail",
        None,
        "none",
        _lookups(
            ("salesorderid", "salesorders"),
            ("productid", "products"),
            ("uomid", "uoms"),
            ("quotedetailid", "quotedetails"),
            _CURRENCY,
        ),
        has_money=True,
        parent="salesorderid",
        choices={"producttypecode": _LINE_TYPES},
    ),
    EntityType(
        "invoices",
        "invoice",
        "name",
        "user",
        _lookups(
            ("customerid", _CUSTOMER),
            ("salesorderid", "salesorders"),
            ("opportunityid", "opportunities"),
            ("pricelevelid", "pricelevels"),
            _CURRENCY,
            _OWNER,
        ),
        _INVOICE,
        has_money=True,
        choices=_DOCUMENT_OPTIONS,
    ),
    EntityType(
        "invoicedetails",
        "invoicedetail",
        None,
        "none",
        _lookups(
            ("invoiceid", "invoices"),
            ("productid", "products"),
            ("uomid", "uoms"),
            ("salesorderdetailid", "salesorderdetails"),
            _CURRENCY,
        ),
        has_money=True,
        parent="invoiceid",
        choices={"producttypecode": _LINE_TYPES},
    ),
    EntityType(
        "accounts",
        "account",
        "name",
        "user",
        _lookups(
            ("parentaccountid", "accounts"),
            ("primarycontactid", "contacts"),
            ("defaultpricelevelid", "pricelevels"),
            ("nav_accountstatisticsid", "nav_accountstatisticses"),
            _CURRENCY,
            _OWNER,
        ),
        _SIMPLE,
        has_money=True,
        choices=_ACCOUNT_OPTIONS,
    ),
    EntityType(
        "contacts",
        "contact",
        "fullname",
        "user",
        _lookups(("parentcustomerid", _CUSTOMER), _CURRENCY, _OWNER),
        _SIMPLE,
        has_money=True,
    ),
    EntityType("systemusers", "systemuser", "fullname", "businessunit"),
    EntityType(
        "transactioncurrencies",
        "transactioncurrency",
        "currencyname",
        "organization",
        state=_SIMPLE,
    ),  # fmt: skip
    EntityType(
        "annotations",
        "annotation",
        "subject",
        "user",
        _lookups(("objectid", _NOTE_TARGETS), _OWNER),
    ),
    EntityType(
        "posts",
        "post",
        "text",
        "organization",
        _lookups(("regardingobjectid", _NOTE_TARGETS)),
        is_updatable=False,
        # PAD post.md: source 1 Auto / 2 Manual / 3 ActionHub; type 1 Check-in .. 7 Status.
        choices={"source": frozenset({1, 2, 3}), "type": frozenset(range(1, 8))},
    ),
    EntityType("roles", "role", "name", "businessunit", _lookups(("parentroleid", "roles"))),
    EntityType("solutions", "solution", "friendlyname", "none"),
    EntityType("nav_connections", "nav_connection", "nav_name", "organization", state=_SIMPLE),
    EntityType("sdkmessages", "sdkmessage", "name", "organization", is_system=True),
    EntityType(
        "sdkmessagefilters",
        "sdkmessagefilter",
        "name",
        "organization",
        _lookups(("sdkmessageid", "sdkmessages")),
        is_system=True,
    ),
    # Webhook registration (Microsoft's "Register a webhook"): a service endpoint with
    # contract 8 (Webhook) and the steps that send a message's events to it. Options and
    # states as in Dataverse's table reference (serviceendpoint, sdkmessageprocessingstep).
    EntityType(
        "serviceendpoints",
        "serviceendpoint",
        "name",
        "organization",
        choices={
            "contract": frozenset(range(1, 11)),  # 8 Webhook
            "authtype": frozenset(range(1, 9)),  # 4 WebhookKey, 5 HttpHeader, 6 HttpQueryString
            "messageformat": frozenset({1, 2, 3}),  # 2 Json
            "connectionmode": frozenset({1, 2}),
            "namespaceformat": frozenset({1, 2}),
            "userclaim": frozenset({1, 2, 3}),
            "messagecharset": frozenset({0, 1}),
            "schematype": frozenset({1, 2}),
        },
        write_only=frozenset({"authvalue", "saskey", "sastoken"}),
    ),
    EntityType(
        "sdkmessageprocessingsteps",
        "sdkmessageprocessingstep",
        "name",
        "organization",
        {
            "eventhandler": Lookup("eventhandler", ("serviceendpoints",), polymorphic=True),
            **_lookups(
                ("sdkmessageid", "sdkmessages"),
                ("sdkmessagefilterid", "sdkmessagefilters"),
                ("impersonatinguserid", "systemusers"),
            ),
        },
        _STEP,
        choices={
            "mode": frozenset({0, 1}),  # 0 Synchronous, 1 Asynchronous
            "stage": frozenset({5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 80, 90}),
            "supporteddeployment": frozenset({0, 1, 2}),
            "invocationsource": frozenset({-1, 0, 1}),
        },
    ),
    # The org itself: one row, seeded; its sales order processing flag is what integrations
    # set (issopintegrationenabled).
    EntityType("organizations", "organization", "name", "none"),
    EntityType(
        "nav_accountstatisticses",
        "nav_accountstatistics",
        "nav_name",
        "organization",
        _lookups(_CURRENCY),
        _SIMPLE,
        has_money=True,
    ),
)

BY_SET: dict[str, EntityType] = {entity.set_name: entity for entity in ENTITIES}
BY_LOGICAL: dict[str, EntityType] = {entity.logical: entity for entity in ENTITIES}

# Lookups the server sets, read as ``_<name>_value`` and expandable, never bound by a client.
SYSTEM_LOOKUPS: dict[str, str] = {
    "createdby": "systemusers",
    "modifiedby": "systemusers",
    "createdonbehalfby": "systemusers",
    "modifiedonbehalfby": "systemusers",
    "owninguser": "systemusers",
}

# Many-to-many relationships: name -> (set, set).
RELATIONSHIPS: dict[str, tuple[str, str]] = {
    "systemuserroles_association": ("systemusers", "roles"),
}

# Rows deleted with their parent (parental cascade): parent set -> (child set, lookup).
CASCADES: dict[str, tuple[tuple[str, str], ...]] = {
    "uomschedules": (("uoms", "uomscheduleid"),),
    "pricelevels": (("productpricelevels", "pricelevelid"),),
    "products": (("productpricelevels", "productid"),),
    "quotes": (("quotedetails", "quoteid"),),
    "salesorders": (("salesorderdetails", "salesorderid"),),
    "invoices": (("invoicedetails", "invoiceid"),),
    "serviceendpoints": (("sdkmessageprocessingsteps", "eventhandler"),),
}
for _target in _NOTE_TARGETS:
    CASCADES[_target] = (
        *CASCADES.get(_target, ()),
        ("annotations", "objectid"),
        ("posts", "regardingobjectid"),
    )

# Lookup columns the store indexes, so child lists and cascades are index scans.
INDEXED_LOOKUPS: tuple[tuple[str, str], ...] = tuple(
    sorted(
        {
            (child, f"_{lookup}_value")
            for cascades in CASCADES.values()
            for child, lookup in cascades
        }
    )
)

# Columns the server sets; values a client sends for them are ignored, as Dataverse does.
SERVER_SET = frozenset(
    {
        "createdon", "modifiedon", "versionnumber", "_createdby_value", "_modifiedby_value",
        "_createdonbehalfby_value", "_modifiedonbehalfby_value", "_owningbusinessunit_value",
        "_owninguser_value", "_organizationid_value",
    }
)  # fmt: skip
