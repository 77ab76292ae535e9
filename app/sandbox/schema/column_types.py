"""What kind of value each declared column holds, and the labels of choice columns.

Dataverse types every attribute (String, Money, DateTime, Picklist, Lookup, ...). The
sandbox stores rows schema-less, so the type is derived here from the column's name and
the entity's declarations. It drives the formatted values that ``odata.include-annotations``
asks for and the attribute metadata of ``EntityDefinitions(...)/Attributes``.

Labels are Dataverse's default (English) labels for the sales tables' states, statuses
and the standard choice columns; a choice column whose labels
the sandbox does not know gets no formatted value rather than an invented one.
"""

from __future__ import annotations

from app.sandbox.schema.attributes import MONEY_COLUMNS
from app.sandbox.schema.entities import BY_SET, SYSTEM_LOOKUPS, EntityType

_DATES = frozenset(
    {
        "createdon", "modifiedon", "overriddencreatedon", "begindate", "enddate",
        "estimatedclosedate", "actualclosedate", "requestdeliveryby", "datefulfilled",
        "submitdate", "lastbackofficesubmit", "duedate", "datedelivered", "effectivefrom",
        "effectiveto", "expireson", "closedon", "validfromdate", "validtodate", "installedon",
        "nav_overdueamountsasof", "actualdeliveryon",
    }
)  # fmt: skip
_INTEGERS = frozenset(
    {
        "numberofemployees", "quantitydecimal", "closeprobability", "sequencenumber",
        "lineitemnumber", "filesize", "currencyprecision", "importsequencenumber",
        "timezoneruleversionnumber", "utcconversiontimezonecode", "revisionnumber",
        "bcbi_businesscentraldocumentoccurrencenumber", "bcbi_businesscentrallinenumber",
        "langid", "rank", "customizationlevel",
    }
)  # fmt: skip
_DECIMALS = frozenset(
    {
        "quantity", "quantityonhand", "quantityshipped", "quantitybackordered",
        "quantitycancelled", "percentage", "discountpercentage", "exchangerate", "stockweight",
        "stockvolume",
    }
)  # fmt: skip
_MEMOS = frozenset({"description", "notetext", "documentbody", "largetext", "text"})
_GUIDS = frozenset({"applicationid", "azureactivedirectoryobjectid", "bcbi_companyid"})
_BOOLEANS = frozenset(
    {"willcall", "creditonhold", "workflowsdkstepenabled", "asyncautodelete", "canbebypassed",
     "canusereadonlyconnection", "enablepluginprofiler", "usekeyvaultconfiguration"}
)  # fmt: skip
# Choice columns whose names do not end in "code" (webhook registration tables).
_PICKLISTS = frozenset(
    {"contract", "authtype", "messageformat", "messagecharset", "connectionmode",
     "namespaceformat", "userclaim", "schematype", "mode", "stage", "supporteddeployment",
     "invocationsource", "componentstate"}
)  # fmt: skip
_ENTITY_NAMES = frozenset(
    {"objecttypecode", "regardingobjecttypecode", "primaryobjecttypecode",
     "secondaryobjecttypecode", "eventhandlertypecode"}
)  # fmt: skip
_NOT_CHOICES = frozenset({"isocurrencycode", "utcconversiontimezonecode"})

_SHIPPING = {1: "Airborne", 2: "DHL", 3: "FedEx", 4: "UPS", 5: "Postal Mail", 6: "Full Load",
             7: "Will Call"}  # fmt: skip
_FREIGHT = {1: "FOB", 2: "No Charge"}
_CHOICE_LABELS: dict[str, dict[int, str]] = {
    "productstructure": {1: "Product", 2: "Product Family", 3: "Product Bundle"},
    "pricingmethodcode": {
        1: "Currency Amount", 2: "Percent of List", 3: "Percent Markup - Current Cost",
        4: "Percent Margin - Current Cost", 5: "Percent Markup - Standard Cost",
        6: "Percent Margin - Standard Cost",
    },
    "quantitysellingcode": {1: "No Control", 2: "Whole", 3: "Whole and Fractional"},
    "roundingpolicycode": {1: "None", 2: "Up", 3: "Down", 4: "To Nearest"},
    "roundingoptioncode": {1: "Ends in", 2: "Multiple of"},
    "paymenttermscode": {1: "Net 30", 2: "2% 10, Net 30", 3: "Net 45", 4: "Net 60"},
    "shippingmethodcode": _SHIPPING,
    "freighttermscode": _FREIGHT,
    "accessmode": {0: "Read-Write", 1: "Administrative", 2: "Read", 3: "Support User",
                   4: "Non-interactive", 5: "Delegated Admin"},
    "source": {1: "Auto Post", 2: "Manual Post", 3: "ActionHub Post"},
    "contract": {1: "OneWay", 2: "Queue", 3: "Rest", 4: "TwoWay", 5: "Topic",
                 6: "Queue (Persistent)", 7: "Event Hub", 8: "Webhook", 9: "Event Grid",
                 10: "Managed Data Lake"},
    "authtype": {1: "ACS", 2: "SAS Key", 3: "SAS Token", 4: "Webhook Key", 5: "Http Header",
                 6: "Http Query String", 7: "Connection String", 8: "Access Key"},
    "messageformat": {1: "Binary XML", 2: "Json", 3: "Text XML"},
    "mode": {0: "Synchronous", 1: "Asynchronous"},
    "stage": {10: "Pre-validation", 20: "Pre-operation", 40: "Post-operation"},
    "supporteddeployment": {0: "Server Only", 1: "Microsoft Dynamics 365 Client for Outlook Only",
                            2: "Both"},
}  # fmt: skip
_PRODUCT_TYPES = {1: "Sales Inventory", 2: "Miscellaneous Charges", 3: "Services", 4: "Flat Fees"}
_LINE_TYPES = {1: "Product", 2: "Bundle", 3: "Required Bundle Product",
               4: "Optional Bundle Product"}  # fmt: skip
_STATUS_LABELS: dict[str, dict[int, str]] = {
    "products": {0: "Draft", 1: "Active", 2: "Retired", 3: "Under Revision"},
    "pricelevels": {100001: "Active", 100002: "Inactive"},
    "opportunities": {1: "In Progress", 2: "On Hold", 3: "Won", 4: "Canceled", 5: "Out-Sold"},
    "quotes": {1: "In Progress", 2: "In Progress", 3: "Open", 4: "Won", 5: "Lost",
               6: "Canceled", 7: "Revised"},
    "salesorders": {1: "New", 2: "Pending", 3: "In Progress", 4: "No Money",
                    100001: "Complete", 100002: "Partial", 100003: "Invoiced",
                    700970000: "In Progress"},
    "sdkmessageprocessingsteps": {1: "Enabled", 2: "Disabled"},
    "invoices": {1: "New", 2: "Partially Shipped", 3: "Canceled (deprecated)", 4: "Billed",
                 5: "Booked (applies to services)", 6: "Installed (applies to services)",
                 7: "Paid in Full (deprecated)", 100001: "Complete", 100002: "Partial",
                 100003: "Canceled"},
}  # fmt: skip
_ACTIVE_INACTIVE = {1: "Active", 2: "Inactive"}


def lookup_name(column: str) -> str | None:
    """``_x_value`` -> ``x``; None for any other column."""
    if column.startswith("_") and column.endswith("_value") and len(column) > 7:
        return column[1:-6]
    return None


def lookup_targets(entity: EntityType, name: str) -> tuple[str, ...]:
    """The entity sets a lookup (by logical name) can point at; empty if not served."""
    lookup = entity.lookups.get(name)
    if lookup is not None:
        return lookup.targets
    target = SYSTEM_LOOKUPS.get(name)
    if name == "ownerid" and entity.ownership == "user":
        target = "systemusers"
    return (target,) if target in BY_SET else ()


def attribute_type(entity: EntityType, column: str) -> str:
    """Dataverse's AttributeType of a declared column (as it is read)."""
    lookup = lookup_name(column)
    if lookup is not None:
        if lookup == "ownerid":
            return "Owner"
        if lookup in ("customerid", "parentcustomerid"):
            return "Customer"
        return "Lookup"
    if column == entity.pk:
        return "Uniqueidentifier"
    return _plain_type(column)


def _plain_type(column: str) -> str:
    if column == "statecode":
        return "State"
    if column == "statuscode":
        return "Status"
    if column == "versionnumber":
        return "BigInt"
    if column in MONEY_COLUMNS:
        return "Money"
    if column in _DATES:
        return "DateTime"
    if column in _BOOLEANS or column.startswith("is"):
        return "Boolean"
    for names, kind in (
        (_INTEGERS, "Integer"), (_DECIMALS, "Decimal"), (_MEMOS, "Memo"),
        (_GUIDS, "Uniqueidentifier"), (_ENTITY_NAMES, "EntityName"),
    ):  # fmt: skip
        if column in names:
            return kind
    if (
        column in _PICKLISTS
        or column == "accessmode"
        or (column.endswith("code") and column not in _NOT_CHOICES and "postal" not in column)
    ):
        return "Picklist"
    return "String"


def option_labels(entity: EntityType, column: str) -> dict[int, str] | None:
    """Value -> label for a State, Status or Picklist column; None when not known."""
    if column == "statecode" and entity.state is not None:
        return dict(entity.state.labels)
    if column == "statuscode" and entity.state is not None:
        return _STATUS_LABELS.get(entity.set_name, _ACTIVE_INACTIVE)
    if column == "producttypecode":
        return _PRODUCT_TYPES if entity.set_name == "products" else _LINE_TYPES
    for suffix, labels in _CHOICE_LABELS.items():
        if column == suffix or column.endswith("_" + suffix):
            return labels
    return None
