"""The attributes each entity set declares, so unknown names are refused as Dataverse does.

Dataverse validates every name against the entity type: ``$select``, ``$filter`` and
``$orderby`` naming an unknown property answer 400 "Could not find a property named ..."
and a body writing one answers 400 "The property '...' does not exist on type ...". The
sandbox stores rows schema-less, so this list is what it checks against: the documented
attributes of each Dataverse table we use, those BC's field mappings and integration
solution name, the columns the server sets, and ``_<lookup>_value`` for every lookup.
Dataverse has many more columns per table; a name missing here that a real org has is
added here, or per sandbox with ``SandboxConfig.extra_attributes`` (custom columns).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from app.sandbox.config import SandboxConfig
from app.sandbox.errors import unknown_property
from app.sandbox.schema.entities import BY_SET, ENTITIES, EntityType

# Every table: audit and system columns.
_SYSTEM = (
    "createdon", "modifiedon", "versionnumber", "overriddencreatedon", "importsequencenumber",
    "timezoneruleversionnumber", "utcconversiontimezonecode", "_createdby_value",
    "_modifiedby_value", "_createdonbehalfby_value", "_modifiedonbehalfby_value",
)  # fmt: skip
_OWNERSHIP = {
    "user": ("_owninguser_value", "_owningbusinessunit_value", "_owningteam_value"),
    "organization": ("_organizationid_value",),
    "businessunit": ("_businessunitid_value",),
    "none": (),
}
_STATE = ("statecode", "statuscode")
_MONEY = ("exchangerate",)  # every table with money columns carries the rate it used


def _address(prefix: str) -> tuple[str, ...]:
    parts = (
        "name", "line1", "line2", "line3", "city", "postalcode", "country", "stateorprovince",
        "county", "telephone1", "fax", "composite", "primarycontactname",
        "freighttermscode", "shippingmethodcode",
    )  # fmt: skip
    return tuple(prefix + part for part in parts)


MONEY_COLUMNS: set[str] = set()  # every column declared through _with_base


def _with_base(*money: str) -> tuple[str, ...]:
    """Money columns and their ``_base`` twins (the amount in the base currency)."""
    names = tuple(name for column in money for name in (column, f"{column}_base"))
    MONEY_COLUMNS.update(names)
    return names


_DOCUMENT_TOTALS = _with_base(
    "totalamount", "totalamountlessfreight", "totaldiscountamount", "totallineitemamount",
    "totallineitemdiscountamount", "totaltax", "discountamount", "freightamount",
)  # fmt: skip
_DOCUMENT = (
    "name", "description", "discountpercentage", "paymenttermscode", "shippingmethodcode",
    "freighttermscode", "pricingerrorcode", "ispricelocked", "willcall", "customeridtype",
    "requestdeliveryby", "prioritycode", "owneridtype",
    *_address("billto_"), *_address("shipto_"), *_DOCUMENT_TOTALS,
)  # fmt: skip
_LINE = (
    "quantity", "productdescription", "description", "ispriceoverridden",
    "isproductoverridden", "lineitemnumber", "sequencenumber", "producttypecode",
    "requestdeliveryby", "willcall", "productname", "productnumber",
    *_with_base(
        "priceperunit", "manualdiscountamount", "volumediscountamount", "tax", "baseamount",
        "extendedamount",
    ),
    *_address("shipto_"),
)  # fmt: skip
_STATISTICS = _with_base(
    "nav_balancelcy", "nav_outstandingorderslcy", "nav_shippednotinvoicedlcy",
    "nav_outstandinginvoiceslcy", "nav_outstandingserviceorderslcy",
    "nav_servshippednotinvoicedlcy", "nav_outstandingservinvoiceslcy", "nav_totallcy",
    "nav_creditlimitlcy", "nav_overdueamountslcy", "nav_totalsaleslcy",
    "nav_invoicedprepaymentamountlcy",
)  # fmt: skip

# Entity set -> its own attributes (system, ownership, state and lookups are added below).
OWN_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "uomschedules": ("name", "baseuomname", "description"),
    "uoms": ("name", "quantity", "isschedulebaseuom"),
    "products": (
        "productnumber", "name", "description", "producttypecode", "productstructure",
        "quantitydecimal", "quantityonhand", "isstockitem", "iskit", "vendorid", "vendorname",
        "vendorpartnumber", "suppliername", "stockweight", "stockvolume", "validfromdate",
        "validtodate", "productid", "hierarchypath",
        *_with_base("price", "currentcost", "standardcost"),
    ),
    "pricelevels": (
        "name", "description", "begindate", "enddate", "freighttermscode", "paymentmethodcode",
        "shippingmethodcode",
    ),
    "productpricelevels": (
        "percentage", "pricingmethodcode", "quantitysellingcode", "roundingpolicycode",
        "roundingoptioncode", "productnumber", *_with_base("amount", "roundingoptionamount"),
    ),
    "opportunities": (
        "name", "description", "estimatedclosedate", "actualclosedate", "closeprobability",
        "isrevenuesystemcalculated", "stepname", "owneridtype", "customeridtype",
        *_with_base("estimatedvalue", "actualvalue"),
    ),
    "quotes": (*_DOCUMENT, "quotenumber", "revisionnumber", "effectivefrom", "effectiveto",
               "expireson", "closedon"),
    "quotedetails": _LINE,
    "salesorders": (
        *_DOCUMENT, "ordernumber", "datefulfilled", "submitdate", "submitstatus",
        "submitstatusdescription", "lastbackofficesubmit", "bcbi_companyid",
        "bcbi_businesscentralordernumber", "bcbi_businesscentraldocumentoccurrencenumber",
    ),
    "salesorderdetails": (
        *_LINE, "quantityshipped", "quantitybackordered", "quantitycancelled",
        "bcbi_businesscentrallinenumber",
    ),
    "invoices": (*_DOCUMENT, "invoicenumber", "duedate", "datedelivered"),
    "invoicedetails": (
        *_LINE, "quantityshipped", "quantitybackordered", "quantitycancelled",
        "actualdeliveryon",
    ),
    "accounts": (
        "name", "accountnumber", "description", "emailaddress1", "emailaddress2",
        "telephone1", "telephone2", "fax", "websiteurl", "paymenttermscode",
        "customertypecode", "accountcategorycode", "industrycode", "numberofemployees",
        "creditonhold", "owneridtype", *_address("address1_"), *_address("address2_"),
        *_with_base("creditlimit", "revenue"),
    ),
    "contacts": (
        "firstname", "middlename", "lastname", "fullname", "salutation", "jobtitle",
        "description", "emailaddress1", "emailaddress2", "telephone1", "telephone2",
        "mobilephone", "fax", "pager", "websiteurl", "parentcustomeridtype", "owneridtype",
        *_address("address1_"),
    ),
    "systemusers": (
        "fullname", "firstname", "lastname", "middlename", "domainname",
        "internalemailaddress", "azureactivedirectoryobjectid", "applicationid", "isdisabled",
        "islicensed", "isintegrationuser", "accessmode", "mobilephone", "address1_telephone1",
        "title",
    ),
    "transactioncurrencies": (
        "isocurrencycode", "currencyname", "currencysymbol", "exchangerate", "currencyprecision",
    ),
    "annotations": (
        "subject", "notetext", "isdocument", "filename", "mimetype", "documentbody",
        "filesize", "objecttypecode", "langid",
    ),
    "posts": ("text", "largetext", "source", "type", "regardingobjecttypecode"),
    "roles": ("name", "ismanaged"),
    "solutions": (
        "uniquename", "friendlyname", "version", "description", "ismanaged", "isvisible",
        "installedon",
    ),
    "sdkmessages": (
        "name", "categoryname", "isprivate", "isreadonly", "isvalidforexecuteasync",
        "workflowsdkstepenabled", "availability",
    ),
    "sdkmessagefilters": (
        "name", "primaryobjecttypecode", "secondaryobjecttypecode",
        "iscustomprocessingstepallowed", "isvisible", "availability", "workflowsdkstepenabled",
    ),
    "serviceendpoints": (
        "name", "description", "contract", "url", "authtype", "authvalue", "isauthvalueset",
        "messageformat", "messagecharset", "namespaceaddress", "namespaceformat", "path",
        "solutionnamespace", "connectionmode", "userclaim", "saskey", "saskeyname", "sastoken",
        "issaskeyset", "issastokenset", "schematype", "usekeyvaultconfiguration",
        "introducedversion", "runtimeintegrationproperties", "ismanaged", "componentstate",
        "solutionid", "serviceendpointidunique",
    ),
    "sdkmessageprocessingsteps": (
        "name", "description", "mode", "stage", "rank", "supporteddeployment",
        "asyncautodelete", "filteringattributes", "configuration", "canbebypassed",
        "canusereadonlyconnection", "category", "enablepluginprofiler", "eventexpander",
        "eventhandlertypecode", "invocationsource", "introducedversion", "ismanaged",
        "componentstate", "customizationlevel", "solutionid", "sdkmessageprocessingstepidunique",
        "runtimeintegrationproperties",
    ),
    "organizations": ("name", "issopintegrationenabled", "expirechangetrackingindays"),
    "nav_connections": (
        "nav_name", "nav_dynamicsnavurl", "nav_dynamicsnavodataurl",
        "nav_dynamicsnavodatausername", "nav_dynamicsnavodataaccesskey",
    ),
    "nav_accountstatisticses": (
        "nav_name", "nav_customerno", "nav_overdueamountsasof", *_STATISTICS,
    ),
}  # fmt: skip


def standard_attributes(entity: EntityType) -> frozenset[str]:
    """What Dataverse (as the sandbox knows it) declares on ``entity``."""
    names = {entity.pk, *_SYSTEM, *_OWNERSHIP[entity.ownership], *OWN_ATTRIBUTES[entity.set_name]}
    if entity.ownership == "user":
        names.add("_ownerid_value")
    if entity.state is not None:
        names.update(_STATE)
    if entity.has_money:
        names.update(_MONEY)
    if entity.primary_name:
        names.add(entity.primary_name)
    names.update(f"_{lookup}_value" for lookup in entity.lookups)
    return frozenset(names)


class Schema:
    """The declared attributes of every entity set of one sandbox."""

    def __init__(
        self,
        extra: Mapping[str, Iterable[str]] | None = None,
        alternate_keys: Mapping[str, list[tuple[str, ...]]] | None = None,
    ) -> None:
        declared: dict[str, set[str]] = {e.set_name: set(standard_attributes(e)) for e in ENTITIES}
        self._extra: dict[str, frozenset[str]] = {}
        for set_name, names in (extra or {}).items():
            if set_name not in BY_SET:
                msg = f"extra_attributes names an unknown entity set {set_name!r}"
                raise ValueError(msg)
            declared[set_name].update(names)
            self._extra[set_name] = frozenset(names)
        for set_name, keys in (alternate_keys or {}).items():
            declared[set_name].update(name for key in keys for name in key)
        self._declared = {name: frozenset(names) for name, names in declared.items()}

    def attributes(self, entity: EntityType) -> frozenset[str]:
        return self._declared[entity.set_name]

    def extra(self, entity: EntityType) -> frozenset[str]:
        """The custom columns this sandbox declares on ``entity``."""
        return self._extra.get(entity.set_name, frozenset())

    def declares(self, entity: EntityType, name: str) -> bool:
        return name in self._declared[entity.set_name]

    def check(self, entity: EntityType, name: str) -> None:
        """A name in ``$select``, ``$filter`` or ``$orderby``: 400 unless declared."""
        if not self.declares(entity, name):
            raise unknown_property(name, entity.logical)


def schema_for(config: SandboxConfig) -> Schema:
    return Schema(config.extra_attributes, config.alternate_keys)


STANDARD_SCHEMA = Schema()
